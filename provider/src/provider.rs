//! The ferry provider itself: its configuration block, its registry of resources and data
//! sources, and the connections it shares between them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ferry_kafka::{Admin, ConnectionConfig};
use tokio::sync::Mutex;

use crate::connection::{self, Origin, Resolved};
use crate::framework::{AttributePath, DataSource, Diagnostics, Resource, Schema, Value};

/// Configured state shared by every request after ConfigureProvider.
pub struct ProviderState {
    default_connection: RwLock<Resolved>,
    /// One connection attempt per cluster per provider process: a failure is remembered, so
    /// fifty topics on an unreachable cluster fail after one timeout, not fifty.
    admins: Mutex<HashMap<ConnectionConfig, Result<Admin, String>>>,
}

impl Default for ProviderState {
    fn default() -> Self {
        ProviderState {
            default_connection: RwLock::new(Resolved::Missing),
            admins: Mutex::new(HashMap::new()),
        }
    }
}

pub fn schema() -> Schema {
    Schema {
        version: 0,
        block: connection::connection_block(
            "ferry manages Kafka topics on any Kafka cluster, Amazon MSK clusters, and migrations \
             between them. The settings here are the default Kafka connection; each resource may \
             name its own with a `cluster` block.",
            false,
        ),
    }
}

/// All resource types, in one place.
pub fn resources() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(crate::resources::topic::TopicResource),
        Arc::new(crate::resources::mirror::MirrorResource),
    ]
}

/// All data source types, in one place.
pub fn data_sources() -> Vec<Arc<dyn DataSource>> {
    vec![
        Arc::new(crate::data_sources::topic::TopicDataSource),
        Arc::new(crate::data_sources::topics::TopicsDataSource),
    ]
}

impl ProviderState {
    /// Records the provider block's default connection (possibly unknown during plan).
    pub fn configure(&self, config: &Value, diags: &mut Diagnostics) {
        let resolved =
            connection::parse(config, Origin::Provider, &AttributePath::default(), diags);
        *self.default_connection.write().expect("lock poisoned") = resolved;
    }

    /// Where the object with this value lives: its own `cluster` block, else the provider's.
    pub fn resolve(&self, object: &Value, diags: &mut Diagnostics) -> Resolved {
        match connection::parse(
            object.get("cluster"),
            Origin::ClusterBlock,
            &AttributePath::root("cluster"),
            diags,
        ) {
            Resolved::Missing => self
                .default_connection
                .read()
                .expect("lock poisoned")
                .clone(),
            other => other,
        }
    }

    /// An admin connection for the object, or an error diagnostic saying what is missing.
    pub async fn admin(&self, object: &Value, diags: &mut Diagnostics) -> Option<Admin> {
        match self.resolve(object, diags) {
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

static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Terraform called StopProvider (e.g. Ctrl-C): long waits should return promptly.
pub fn request_stop() {
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(std::sync::atomic::Ordering::Relaxed)
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
