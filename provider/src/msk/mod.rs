//! Amazon MSK: `ferry_msk_cluster`, `ferry_msk_configuration` and their data sources, on
//! aws-sdk-kafka. `client.rs` holds the provider's `aws` block, error reporting and the waits.

pub mod client;
pub mod cluster;
pub mod cluster_model;
pub mod configuration;
pub mod data_sources;
pub mod serverless;
pub mod timestamps;

/// A value of an optional attribute or block as read back from AWS: kept null when the
/// configuration (prior state) does not manage it, so AWS defaults never show as drift;
/// right after import everything AWS says is taken.
pub fn pick<T>(prior: &tfplugin::Tf<T>, importing: bool, aws: Option<T>) -> tfplugin::Tf<T> {
    if prior.is_null() && !importing {
        tfplugin::Tf::Null
    } else {
        aws.into()
    }
}

/// An empty string from AWS means "none".
pub fn non_empty(s: Option<&str>) -> tfplugin::Tf<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string).into()
}
