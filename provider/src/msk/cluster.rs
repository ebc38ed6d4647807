//! `ferry_msk_cluster`: an Amazon MSK provisioned cluster. Create waits until ACTIVE; each
//! in-place change is its own AWS call naming the cluster's `current_version`, awaited through
//! its cluster operation before the next one starts; read treats a missing cluster as gone.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kafka::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kafka::types::{BrokerEbsVolumeInfo, ClusterInfo, ClusterState};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tfplugin::timeouts::{Operation, Timeouts};
use tfplugin::{AttributePath, Ctx, Diagnostics, Plan, Resource, Schema};

use super::client::{Call, Msk, wait_cluster_active, wait_cluster_gone, wait_operation};
use super::cluster_model::{self as m, ClusterModel};
use crate::provider::FerryData;

pub struct ClusterResource;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120 * 60);

#[async_trait]
impl Resource<FerryData> for ClusterResource {
    type Model = ClusterModel;

    fn type_name(&self) -> &'static str {
        "ferry_msk_cluster"
    }

    fn schema(&self) -> Schema {
        m::schema()
    }

    fn validate(&self, config: &ClusterModel, diags: &mut Diagnostics) {
        validate(config, diags);
    }

    async fn plan(
        &self,
        _ctx: &Ctx<FerryData>,
        plan: &mut Plan<ClusterModel>,
        _diags: &mut Diagnostics,
    ) {
        plan_replacements(plan);
    }

    async fn create(
        &self,
        ctx: &Ctx<FerryData>,
        planned: ClusterModel,
        diags: &mut Diagnostics,
    ) -> Option<ClusterModel> {
        let msk = ctx.data().msk().await;
        create(&msk, ctx, planned, diags).await
    }

    async fn read(
        &self,
        ctx: &Ctx<FerryData>,
        state: ClusterModel,
        diags: &mut Diagnostics,
    ) -> Option<ClusterModel> {
        let msk = ctx.data().msk().await;
        read(&msk, state, diags).await
    }

    async fn update(
        &self,
        ctx: &Ctx<FerryData>,
        prior: ClusterModel,
        planned: ClusterModel,
        diags: &mut Diagnostics,
    ) -> ClusterModel {
        let msk = ctx.data().msk().await;
        update(&msk, ctx, prior, planned, diags).await
    }

    async fn delete(&self, ctx: &Ctx<FerryData>, prior: ClusterModel, diags: &mut Diagnostics) {
        let msk = ctx.data().msk().await;
        delete(&msk, ctx, prior, diags).await
    }

    async fn import(
        &self,
        _ctx: &Ctx<FerryData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<ClusterModel> {
        if !(id.starts_with("arn:") && id.contains(":cluster/")) {
            diags.error(
                "Invalid import id",
                format!(
                    "Import an MSK cluster by its ARN (arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID); got {id:?}."
                ),
            );
            return None;
        }
        Some(ClusterModel {
            id: id.into(),
            arn: id.into(),
            ..ClusterModel::default()
        })
    }
}

pub fn validate(config: &ClusterModel, diags: &mut Diagnostics) {
    let subnets = config
        .broker_node_group_info
        .known()
        .and_then(|b| b.client_subnets.known())
        .map(Vec::len);
    if let (Some(n), Some(subnets)) = (config.number_of_broker_nodes.known(), subnets)
        && subnets > 0
        && n % subnets as i64 != 0
    {
        diags.attribute_error(
            AttributePath::root("number_of_broker_nodes"),
            "Broker count does not fit the subnets",
            format!(
                "MSK places the same number of brokers in each client subnet: {n} brokers cannot be spread \
                 over {subnets} subnets. Use a multiple of {subnets}."
            ),
        );
    }
}

/// Removing the configuration replaces the cluster: MSK cannot detach one.
pub fn plan_replacements(plan: &mut Plan<ClusterModel>) {
    let Some(prior) = &plan.prior else { return };
    let detached = AttributePath::root("configuration_info");
    if prior.configuration_info.known().is_some()
        && plan.planned.configuration_info.is_null()
        && !plan.requires_replace.contains(&detached)
    {
        plan.requires_replace.push(detached);
    }
}

fn arn_of(m: &ClusterModel) -> String {
    m.arn.known().or(m.id.known()).cloned().unwrap_or_default()
}

pub async fn create<D>(
    msk: &Msk,
    ctx: &Ctx<D>,
    planned: ClusterModel,
    diags: &mut Diagnostics,
) -> Option<ClusterModel> {
    let Some(bng) = planned.broker_node_group_info.known() else {
        diags.attribute_error(
            AttributePath::root("broker_node_group_info"),
            "Missing broker_node_group_info",
            "An MSK cluster needs its brokers' instance type and client subnets.",
        );
        return None;
    };
    let out = msk
        .client
        .create_cluster()
        .cluster_name(planned.cluster_name.or(String::new()))
        .kafka_version(planned.kafka_version.or(String::new()))
        .number_of_broker_nodes(planned.number_of_broker_nodes.or(0) as i32)
        .broker_node_group_info(m::broker_node_group(bng))
        .set_encryption_info(planned.encryption_info.known().map(m::encryption))
        .set_client_authentication(planned.client_authentication.known().map(m::client_auth))
        .set_configuration_info(
            planned
                .configuration_info
                .known()
                .map(m::configuration_info),
        )
        .set_open_monitoring(
            planned
                .open_monitoring
                .known()
                .map(|_| m::open_monitoring(&planned.open_monitoring)),
        )
        .set_logging_info(
            planned
                .logging_info
                .known()
                .map(|_| m::logging(&planned.logging_info)),
        )
        .enhanced_monitoring(m::enhanced(&planned))
        .storage_mode(m::storage_mode(&planned))
        .set_tags(planned.tags.known().map(|_| m::tags(&planned)))
        .send()
        .await
        .action("CreateCluster");
    let arn = match out {
        Ok(o) => o.cluster_arn.unwrap_or_default(),
        Err(e) => {
            e.report(diags, None, "Could not create the MSK cluster");
            return None;
        }
    };
    let mut state = ClusterModel {
        id: arn.as_str().into(),
        arn: arn.as_str().into(),
        ..planned
    };
    let within = Timeouts::get(&state.timeouts, Operation::Create, DEFAULT_TIMEOUT);
    match wait_cluster_active(msk, &ctx.with_timeout(within), &arn).await {
        Ok(info) => refresh(msk, &mut state, &info, false, diags).await,
        Err(e) => {
            // The cluster exists: keep it in state (Terraform taints it) and say why.
            e.report(diags, "MSK cluster created but not ACTIVE");
            m::settle_bootstrap(&mut state);
        }
    }
    Some(state)
}

/// Fills `state` from a described cluster and its bootstrap brokers (when ACTIVE).
async fn refresh(
    msk: &Msk,
    state: &mut ClusterModel,
    info: &ClusterInfo,
    importing: bool,
    diags: &mut Diagnostics,
) {
    *state = m::from_info(state, info, importing);
    if info.state() == Some(&ClusterState::Active) {
        match msk
            .client
            .get_bootstrap_brokers()
            .cluster_arn(arn_of(state))
            .send()
            .await
            .action("GetBootstrapBrokers")
        {
            Ok(out) => m::set_bootstrap(state, &out),
            Err(e) => e.report(diags, None, "Could not read the bootstrap brokers"),
        }
    }
    m::settle_bootstrap(state);
}

pub async fn read(msk: &Msk, state: ClusterModel, diags: &mut Diagnostics) -> Option<ClusterModel> {
    let arn = arn_of(&state);
    let importing = state.kafka_version.is_null();
    let info = match msk
        .client
        .describe_cluster()
        .cluster_arn(&arn)
        .send()
        .await
        .action("DescribeCluster")
    {
        Ok(out) => out.cluster_info?,
        Err(e) if e.is_not_found() => return None,
        Err(e) => {
            e.report(diags, None, "Could not read the MSK cluster");
            return Some(state);
        }
    };
    let mut next = state;
    refresh(msk, &mut next, &info, importing, diags).await;
    Some(next)
}

/// Output of an update call: the operation to wait for.
pub trait OperationOutput {
    fn operation_arn(&self) -> Option<&str>;
}

macro_rules! operation_output {
    ($($t:ty),*) => {$(
        impl OperationOutput for $t {
            fn operation_arn(&self) -> Option<&str> {
                self.cluster_operation_arn()
            }
        }
    )*};
}
operation_output!(
    aws_sdk_kafka::operation::update_broker_storage::UpdateBrokerStorageOutput,
    aws_sdk_kafka::operation::update_broker_type::UpdateBrokerTypeOutput,
    aws_sdk_kafka::operation::update_broker_count::UpdateBrokerCountOutput,
    aws_sdk_kafka::operation::update_cluster_kafka_version::UpdateClusterKafkaVersionOutput,
    aws_sdk_kafka::operation::update_cluster_configuration::UpdateClusterConfigurationOutput,
    aws_sdk_kafka::operation::update_monitoring::UpdateMonitoringOutput,
    aws_sdk_kafka::operation::update_security::UpdateSecurityOutput,
    aws_sdk_kafka::operation::update_connectivity::UpdateConnectivityOutput
);

/// Runs update calls one after another, each with the version the previous one left.
struct Chain<'a, D> {
    msk: &'a Msk,
    ctx: &'a Ctx<D>,
    arn: String,
    version: String,
}

impl<D> Chain<'_, D> {
    /// One update: the call, its operation awaited, the cluster's new version read.
    async fn step<F, Fut, O, E>(
        &mut self,
        action: &'static str,
        path: &str,
        call: F,
        diags: &mut Diagnostics,
    ) -> bool
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        O: OperationOutput,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let at = Some(AttributePath::root(path));
        let out = match call(self.version.clone()).await.action(action) {
            Ok(o) => o,
            Err(e) => {
                e.report(diags, at, "Could not update the MSK cluster");
                return false;
            }
        };
        if let Some(op) = out.operation_arn()
            && let Err(e) = wait_operation(self.msk, self.ctx, op).await
        {
            e.report(
                diags,
                &format!("MSK cluster update {action} did not complete"),
            );
            return false;
        }
        match self
            .msk
            .client
            .describe_cluster()
            .cluster_arn(&self.arn)
            .send()
            .await
            .action("DescribeCluster")
        {
            Ok(d) => {
                if let Some(v) = d.cluster_info.and_then(|i| i.current_version) {
                    self.version = v;
                }
                true
            }
            Err(e) => {
                e.report(
                    diags,
                    None,
                    "Could not read the MSK cluster after an update",
                );
                false
            }
        }
    }
}

pub async fn update<D>(
    msk: &Msk,
    ctx: &Ctx<D>,
    prior: ClusterModel,
    planned: ClusterModel,
    diags: &mut Diagnostics,
) -> ClusterModel {
    let arn = arn_of(&prior);
    let within = Timeouts::get(&planned.timeouts, Operation::Update, DEFAULT_TIMEOUT);
    let ctx = ctx.with_timeout(within);
    let mut chain = Chain {
        msk,
        ctx: &ctx,
        arn: arn.clone(),
        version: prior.current_version.or(String::new()),
    };
    let ok = run_updates(&mut chain, &prior, &planned, diags).await;
    // Tags carry no cluster version.
    let ok = ok
        && update_tags(
            msk,
            &arn,
            &prior.tags.or(Default::default()),
            &planned.tags.or(Default::default()),
            diags,
        )
        .await;
    // The state is what AWS now says: after a failed step, the steps before it stay applied.
    let base = if ok { planned } else { prior };
    let info = match msk
        .client
        .describe_cluster()
        .cluster_arn(&arn)
        .send()
        .await
        .action("DescribeCluster")
    {
        Ok(out) => out.cluster_info,
        Err(e) => {
            e.report(
                diags,
                None,
                "Could not read the MSK cluster after updating it",
            );
            None
        }
    };
    let mut state = base;
    match info {
        Some(info) => refresh(msk, &mut state, &info, false, diags).await,
        None => m::settle_bootstrap(&mut state),
    }
    state
}

async fn run_updates<D>(
    c: &mut Chain<'_, D>,
    prior: &ClusterModel,
    planned: &ClusterModel,
    diags: &mut Diagnostics,
) -> bool {
    let client = c.msk.client.clone();
    let arn = c.arn.clone();

    // Storage (volume size, provisioned throughput).
    let (pe, ne) = (prior.ebs(), planned.ebs());
    if let Some(ne) = &ne
        && pe.as_ref() != Some(ne)
        && (ne.volume_size.known().is_some() || ne.provisioned_throughput.known().is_some())
    {
        let volume = BrokerEbsVolumeInfo::builder()
            .kafka_broker_node_id("All")
            .set_volume_size_gb(ne.volume_size.known().map(|v| *v as i32))
            .set_provisioned_throughput(m::throughput(&ne.provisioned_throughput))
            .build();
        let ok = c
            .step(
                "UpdateBrokerStorage",
                "broker_node_group_info",
                |v| {
                    client
                        .update_broker_storage()
                        .cluster_arn(&arn)
                        .current_version(v)
                        .target_broker_ebs_volume_info(volume)
                        .send()
                },
                diags,
            )
            .await;
        if !ok {
            return false;
        }
    }

    // Instance type.
    let instance = |x: &ClusterModel| {
        x.broker_node_group_info
            .known()
            .and_then(|b| b.instance_type.known().cloned())
    };
    if let Some(target) = instance(planned)
        && instance(prior).as_ref() != Some(&target)
    {
        let ok = c
            .step(
                "UpdateBrokerType",
                "broker_node_group_info",
                |v| {
                    client
                        .update_broker_type()
                        .cluster_arn(&arn)
                        .current_version(v)
                        .target_instance_type(target)
                        .send()
                },
                diags,
            )
            .await;
        if !ok {
            return false;
        }
    }

    // Broker count.
    if let Some(n) = planned.number_of_broker_nodes.known()
        && prior.number_of_broker_nodes.known() != Some(n)
    {
        let ok = c
            .step(
                "UpdateBrokerCount",
                "number_of_broker_nodes",
                |v| {
                    client
                        .update_broker_count()
                        .cluster_arn(&arn)
                        .current_version(v)
                        .target_number_of_broker_nodes(*n as i32)
                        .send()
                },
                diags,
            )
            .await;
        if !ok {
            return false;
        }
    }

    // Kafka version, with the configuration when both change (AWS applies them together).
    let config_changed = planned.configuration_info != prior.configuration_info
        && planned.configuration_info.known().is_some();
    let mut config_done = false;
    if let Some(version) = planned.kafka_version.known()
        && prior.kafka_version.known() != Some(version)
    {
        let config = config_changed
            .then(|| {
                planned
                    .configuration_info
                    .known()
                    .map(m::configuration_info)
            })
            .flatten();
        config_done = config.is_some();
        let ok = c
            .step(
                "UpdateClusterKafkaVersion",
                "kafka_version",
                |v| {
                    client
                        .update_cluster_kafka_version()
                        .cluster_arn(&arn)
                        .current_version(v)
                        .target_kafka_version(version)
                        .set_configuration_info(config)
                        .send()
                },
                diags,
            )
            .await;
        if !ok {
            return false;
        }
    }

    // Configuration.
    if config_changed
        && !config_done
        && let Some(info) = planned
            .configuration_info
            .known()
            .map(m::configuration_info)
    {
        let ok = c
            .step(
                "UpdateClusterConfiguration",
                "configuration_info",
                |v| {
                    client
                        .update_cluster_configuration()
                        .cluster_arn(&arn)
                        .current_version(v)
                        .configuration_info(info)
                        .send()
                },
                diags,
            )
            .await;
        if !ok {
            return false;
        }
    }

    // Monitoring and logging: one call carries all three.
    if planned.enhanced_monitoring != prior.enhanced_monitoring
        || planned.open_monitoring != prior.open_monitoring
        || planned.logging_info != prior.logging_info
    {
        let ok = c
            .step(
                "UpdateMonitoring",
                "open_monitoring",
                |v| {
                    client
                        .update_monitoring()
                        .cluster_arn(&arn)
                        .current_version(v)
                        .enhanced_monitoring(m::enhanced(planned))
                        .open_monitoring(m::open_monitoring(&planned.open_monitoring))
                        .logging_info(m::logging(&planned.logging_info))
                        .send()
                },
                diags,
            )
            .await;
        if !ok {
            return false;
        }
    }

    // Security: client authentication and client-broker encryption.
    let auth_changed = planned.client_authentication != prior.client_authentication
        && planned.client_authentication.known().is_some();
    let broker_enc = planned.client_broker();
    let enc_changed = broker_enc.is_some() && broker_enc != prior.client_broker();
    if auth_changed || enc_changed {
        let auth = auth_changed
            .then(|| planned.client_authentication.known().map(m::client_auth))
            .flatten();
        let enc = enc_changed.then(|| {
            aws_sdk_kafka::types::EncryptionInfo::builder()
                .encryption_in_transit(
                    aws_sdk_kafka::types::EncryptionInTransit::builder()
                        .set_client_broker(broker_enc.as_deref().map(Into::into))
                        .build(),
                )
                .build()
        });
        let ok = c
            .step(
                "UpdateSecurity",
                if auth_changed {
                    "client_authentication"
                } else {
                    "encryption_info"
                },
                |v| {
                    client
                        .update_security()
                        .cluster_arn(&arn)
                        .current_version(v)
                        .set_client_authentication(auth)
                        .set_encryption_info(enc)
                        .send()
                },
                diags,
            )
            .await;
        if !ok {
            return false;
        }
    }

    // Public access.
    if let Some(public) = planned.public_access()
        && prior.public_access().as_ref() != Some(&public)
    {
        let ok = c
            .step(
                "UpdateConnectivity",
                "broker_node_group_info",
                |v| {
                    client
                        .update_connectivity()
                        .cluster_arn(&arn)
                        .current_version(v)
                        .connectivity_info(m::connectivity(Some(public)))
                        .send()
                },
                diags,
            )
            .await;
        if !ok {
            return false;
        }
    }
    true
}

/// TagResource / UntagResource for the difference between two tag maps (shared with
/// ferry_msk_serverless_cluster).
pub async fn update_tags(
    msk: &Msk,
    arn: &str,
    before: &std::collections::BTreeMap<String, String>,
    after: &std::collections::BTreeMap<String, String>,
    diags: &mut Diagnostics,
) -> bool {
    let removed: Vec<String> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    let set: std::collections::HashMap<String, String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let at = || Some(AttributePath::root("tags"));
    if !removed.is_empty()
        && let Err(e) = msk
            .client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .action("UntagResource")
    {
        e.report(diags, at(), "Could not remove tags");
        return false;
    }
    if !set.is_empty()
        && let Err(e) = msk
            .client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(set))
            .send()
            .await
            .action("TagResource")
    {
        e.report(diags, at(), "Could not set tags");
        return false;
    }
    true
}

pub async fn delete<D>(msk: &Msk, ctx: &Ctx<D>, prior: ClusterModel, diags: &mut Diagnostics) {
    let arn = arn_of(&prior);
    match msk
        .client
        .delete_cluster()
        .cluster_arn(&arn)
        .send()
        .await
        .action("DeleteCluster")
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return,
        Err(e) => return e.report(diags, None, "Could not delete the MSK cluster"),
    }
    let within = Timeouts::get(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
    if let Err(e) = wait_cluster_gone(msk, &ctx.with_timeout(within), &arn).await {
        e.report(diags, "MSK cluster deletion did not finish");
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
