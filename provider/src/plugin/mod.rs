//! go-plugin hosting: the handshake with Terraform/OpenTofu, AutoMTLS, hclog-style logs and
//! the side services every plugin serves next to the provider.

pub mod handshake;
pub mod logging;
pub mod server;
pub mod services;
pub mod tls;
