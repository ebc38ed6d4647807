//! The ferry provider itself: its configuration block, its registry of resources and data
//! sources, and the data they share once configured.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ferry_kafka::{Admin, ConnectionConfig};
use tfplugin::{AnyDataSource, AnyResource, AttributePath, Diagnostics, Model, Schema, Tf};
use tokio::sync::{Mutex, OnceCell};

use crate::kafka::connection::{self, ConnectionModel, Origin, Resolved, SaslModel, TlsModel};
use crate::kafka::reads::TopicReads;
use crate::msk::client::{self as aws, AwsModel, Msk};

pub struct FerryProvider;

/// The provider block: the default Kafka connection (the same attributes as every `cluster`
/// block) and the `aws` settings of the MSK resources.
#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ProviderModel {
    pub bootstrap_servers: Tf<Vec<String>>,
    pub timeout: Tf<String>,
    pub tls: Tf<TlsModel>,
    pub sasl: Tf<SaslModel>,
    pub aws: Tf<AwsModel>,
}

impl ProviderModel {
    pub fn connection(&self) -> ConnectionModel {
        ConnectionModel {
            bootstrap_servers: self.bootstrap_servers.clone(),
            timeout: self.timeout.clone(),
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
        }
    }
}

/// What every resource gets through `Ctx::data` after ConfigureProvider: the Kafka
/// connections and the AWS (MSK) client.
pub struct FerryData {
    default_connection: Resolved,
    /// One connection attempt per cluster per provider process: a failure is remembered, so
    /// fifty topics on an unreachable cluster fail after one timeout, not fifty.
    admins: Mutex<HashMap<ConnectionConfig, Result<Admin, String>>>,
    aws: Tf<AwsModel>,
    /// Built on first use, so a configuration without MSK objects never looks for AWS
    /// credentials or a region.
    msk: OnceCell<Msk>,
    /// Per-cluster topic snapshots, so a plan's reads cost round trips per batch, not per topic.
    topic_reads: TopicReads,
}

pub type Ctx = tfplugin::Ctx<FerryData>;

#[async_trait]
impl tfplugin::Provider for FerryProvider {
    type Data = FerryData;
    type Model = ProviderModel;

    fn name(&self) -> &'static str {
        "ferry"
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: connection::connection_block(
                "ferry manages Kafka topics on any Kafka cluster, Amazon MSK clusters, and migrations \
                 between them. The settings here are the default Kafka connection; each resource may \
                 name its own with a `cluster` block. The `aws` block configures the MSK resources.",
                false,
            )
            .block(aws::aws_block()),
        }
    }

    fn validate(&self, config: &ProviderModel, diags: &mut Diagnostics) {
        connection::parse(
            &Tf::Known(config.connection()),
            Origin::Provider,
            &AttributePath::default(),
            diags,
        );
    }

    async fn configure(&self, config: ProviderModel, diags: &mut Diagnostics) -> Option<FerryData> {
        let default_connection = connection::parse(
            &Tf::Known(config.connection()),
            Origin::Provider,
            &AttributePath::default(),
            diags,
        );
        Some(FerryData {
            default_connection,
            admins: Mutex::new(HashMap::new()),
            aws: config.aws,
            msk: OnceCell::new(),
            topic_reads: TopicReads::default(),
        })
    }

    fn resources(&self) -> Vec<Arc<dyn AnyResource<FerryData>>> {
        vec![
            Arc::new(crate::kafka::topic::TopicResource),
            Arc::new(crate::kafka::acl::AclResource),
            Arc::new(crate::kafka::scram_user::ScramUserResource),
            Arc::new(crate::kafka::quota::QuotaResource),
            Arc::new(crate::mirror::resource::MirrorResource),
            Arc::new(crate::msk::cluster::ClusterResource),
            Arc::new(crate::msk::configuration::ConfigurationResource),
            Arc::new(crate::msk::serverless::ServerlessClusterResource),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn AnyDataSource<FerryData>>> {
        vec![
            Arc::new(crate::kafka::topic_data_source::TopicDataSource),
            Arc::new(crate::kafka::topics_data_source::TopicsDataSource),
            Arc::new(crate::kafka::acls_data_source::AclsDataSource),
            Arc::new(crate::msk::data_sources::ClusterDataSource),
            Arc::new(crate::msk::data_sources::BootstrapBrokersDataSource),
            Arc::new(crate::msk::data_sources::ConfigurationDataSource),
            Arc::new(crate::msk::data_sources::KafkaVersionDataSource),
        ]
    }
}

impl FerryData {
    pub fn topic_reads(&self) -> &TopicReads {
        &self.topic_reads
    }

    /// The MSK client, built from the provider's `aws` block on first use.
    pub async fn msk(&self) -> Msk {
        self.msk
            .get_or_init(|| aws::connect(&self.aws))
            .await
            .clone()
    }

    /// Where an object lives: its own `cluster` block, else the provider's.
    pub fn resolve(&self, cluster: &Tf<ConnectionModel>, diags: &mut Diagnostics) -> Resolved {
        match connection::parse(
            cluster,
            Origin::ClusterBlock,
            &AttributePath::root("cluster"),
            diags,
        ) {
            Resolved::Missing => self.default_connection.clone(),
            other => other,
        }
    }

    /// An admin connection for the object, or an error diagnostic saying what is missing.
    pub async fn admin(
        &self,
        cluster: &Tf<ConnectionModel>,
        diags: &mut Diagnostics,
    ) -> Option<Admin> {
        match self.resolve(cluster, diags) {
            Resolved::Known(config) => self.admin_for(&config, diags).await,
            Resolved::Unknown => {
                diags.attribute_error(
                    AttributePath::root("cluster"),
                    "Kafka connection not known yet",
                    "The connection settings depend on values that are not known yet.",
                );
                None
            }
            Resolved::Missing => {
                missing_connection(diags);
                None
            }
        }
    }

    pub async fn admin_for(
        &self,
        config: &ConnectionConfig,
        diags: &mut Diagnostics,
    ) -> Option<Admin> {
        if diags.has_errors() {
            return None;
        }
        let mut admins = self.admins.lock().await;
        let entry = match admins.get(config) {
            Some(cached) => cached.clone(),
            None => {
                let result = Admin::connect(config).await.map_err(|e| e.to_string());
                admins.insert(config.clone(), result.clone());
                result
            }
        };
        match entry {
            Ok(admin) => Some(admin),
            Err(message) => {
                diags.error("Cannot connect to Kafka", message);
                None
            }
        }
    }
}

#[cfg(test)]
impl FerryData {
    /// Provider data with no Kafka connection and default AWS settings.
    pub fn for_tests() -> FerryData {
        FerryData {
            default_connection: Resolved::Missing,
            admins: Mutex::new(HashMap::new()),
            aws: Tf::Null,
            msk: OnceCell::new(),
            topic_reads: TopicReads::default(),
        }
    }
}

pub fn missing_connection(diags: &mut Diagnostics) {
    diags.attribute_error(
        AttributePath::root("cluster"),
        "No Kafka connection configured",
        "Say where Kafka is in one of two places: `bootstrap_servers` in the provider \"ferry\" block \
         (or the FERRY_KAFKA_BOOTSTRAP_SERVERS environment variable), or a `cluster { bootstrap_servers = [...] }` \
         block in this resource.",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::Provider;

    #[test]
    fn every_schema_converts_with_json_types() {
        let p = FerryProvider;
        let schemas = p
            .resources()
            .iter()
            .map(|r| (r.type_name(), r.schema()))
            .chain(p.data_sources().iter().map(|d| (d.type_name(), d.schema())))
            .collect::<Vec<_>>();
        for (name, schema) in &schemas {
            let proto = tfplugin::adapter::schema_to_proto(schema);
            for a in &proto.block.as_ref().unwrap().attributes {
                serde_json::from_slice::<serde_json::Value>(&a.r#type)
                    .unwrap_or_else(|e| panic!("{name}.{}: {e}", a.name));
            }
        }
        let names: Vec<&str> = schemas.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"ferry_topic") && names.contains(&"ferry_topics"));
    }

    #[test]
    fn provider_model_is_the_connection_plus_aws() {
        let block = FerryProvider.schema().block;
        tfplugin::model::check_model_matches::<ProviderModel>(&block).unwrap();
        let conn = connection::connection_block("", false);
        for a in &conn.attributes {
            assert!(block.find_attribute(&a.name).is_some(), "{} kept", a.name);
        }
    }
}
