//! The ferry Terraform/OpenTofu provider as a library: the binary in main.rs only checks the
//! handshake environment and calls [`plugin::server::serve`].

pub mod connection;
pub mod data_sources;
pub mod framework;
pub mod grpc;
pub mod launcher;
pub mod plugin;
pub mod provider;
pub mod resources;
pub mod topics_common;
