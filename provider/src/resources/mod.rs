//! Managed resources. Each is one type implementing `framework::Resource`.

pub mod topic;
