//! Generated gRPC code for Terraform's plugin protocol 6 and go-plugin's side services.
//! The .proto sources are in `proto/`; PROTOCOL_NOTES.md says where each fact comes from.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

pub mod plugin {
    tonic::include_proto!("plugin");
}
