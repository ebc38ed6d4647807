//! ferry-mirror: copies Kafka topics between clusters exactly once, translates consumer-group
//! offsets exactly, and reports progress through the target cluster itself.
//!
//! This library is not an API: the provider and the runtime share `ferry-mirror-api` only.
//! Transition: until the provider has moved to that crate, the modules it still imports
//! (`spec`, `status`, `clients`, `topics`, `verify`, `groups`) stay public here; the rest is
//! private, and the crate becomes binary-only once nothing imports it.

pub mod clients;
pub mod groups;
pub use ferry_mirror_api::spec;
pub mod status;
pub mod topics;
pub mod verify;

mod cli;
mod connect;
mod copier;
mod end_offsets;
mod http;
mod mapping;
mod memory;
mod metrics;
mod progress;

pub use cli::main;
