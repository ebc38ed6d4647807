//! Data sources. Each is one type implementing `framework::DataSource`.

pub mod topic;
pub mod topics;
