//! The ferry Terraform/OpenTofu provider, one folder per domain: `kafka/` (topics),
//! `mirror/` (migrations and their workers), `msk/` (Amazon MSK). The plugin protocol lives in the `tfplugin` crate.

pub mod kafka;
pub mod mirror;
pub mod msk;
pub mod provider;
