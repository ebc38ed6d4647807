//! Managed resources. Each is one type implementing `framework::Resource`.

pub mod mirror;
pub mod topic;
