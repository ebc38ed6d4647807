//! Kafka itself: connections, the topic resource and data sources, and the rules they share.

pub mod acl;
pub mod acls_data_source;
pub mod connection;
pub mod quota;
pub mod reads;
pub mod reassign;
pub mod scram_user;
pub mod topic;
pub mod topic_data_source;
pub mod topic_rules;
pub mod topics_data_source;
