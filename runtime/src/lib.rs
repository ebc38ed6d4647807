//! ferry-mirror: copies Kafka topics between clusters exactly once, translates consumer-group
//! offsets exactly, and reports progress through the target cluster itself.

pub mod clients;
pub mod copier;
pub mod groups;
pub mod http;
pub mod mapping;
pub mod memory;
pub mod metrics;
pub mod progress;
pub mod spec;
pub mod status;
pub mod topics;
pub mod verify;
