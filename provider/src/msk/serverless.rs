//! `ferry_msk_serverless_cluster`: an Amazon MSK Serverless cluster, through the MSK v2 API
//! (CreateClusterV2, DescribeClusterV2, DeleteCluster). A resource of its own rather than a mode
//! of `ferry_msk_cluster`: a serverless cluster has no brokers, Kafka version, storage,
//! configuration or monitoring, and only IAM authentication, so nearly every argument of the
//! provisioned resource would be invalid for it; the AWS provider splits them the same way
//! (`aws_msk_serverless_cluster`). Create waits until ACTIVE; only tags change in place; read
//! treats a missing cluster as gone; import by ARN.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kafka::types::{self as t, Cluster, ClusterState, ClusterType};
use tfplugin::timeouts::{self, Operation, Timeouts};
use tfplugin::{
    Attribute, AttributePath, Block, Ctx, Diagnostics, Model, NestedBlock, Plan, Resource, Schema,
    Set, Tf, Type, Validator, Value,
};

use super::client::{Call, Msk, WaitError, poll_until};
use super::cluster_model::check_cluster_name;
use crate::provider::FerryData;

pub struct ServerlessClusterResource;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120 * 60);
pub const MAX_VPC_CONFIGS: i64 = 5;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ServerlessModel {
    pub id: Tf<String>,
    pub arn: Tf<String>,
    pub cluster_name: Tf<String>,
    pub tags: Tf<BTreeMap<String, String>>,
    pub state: Tf<String>,
    pub bootstrap_brokers_sasl_iam: Tf<String>,
    pub vpc_config: Tf<Vec<VpcConfigModel>>,
    pub client_authentication: Tf<ServerlessAuthModel>,
    pub timeouts: Tf<Timeouts>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct VpcConfigModel {
    pub subnet_ids: Tf<Set<String>>,
    pub security_group_ids: Tf<Set<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ServerlessAuthModel {
    pub sasl: Tf<ServerlessSaslModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ServerlessSaslModel {
    pub iam: Tf<bool>,
}

fn check_ids(
    v: &Value,
    at: &AttributePath,
    d: &mut Diagnostics,
    prefix: &str,
    what: &str,
    at_least_one: bool,
) {
    let Some(items) = v.as_list() else { return };
    if at_least_one && items.is_empty() {
        d.attribute_error(
            at.clone(),
            format!("No {what} ids"),
            format!("A VPC configuration needs at least one {what} id."),
        );
    }
    for item in items {
        if let Some(s) = item.as_str()
            && !s.starts_with(prefix)
        {
            d.attribute_error(
                at.clone(),
                format!("Invalid {what} id"),
                format!("{s:?} is not a {what} id ({prefix}...)."),
            );
        }
    }
}

fn check_subnets(v: &Value, at: &AttributePath, d: &mut Diagnostics) {
    check_ids(v, at, d, "subnet-", "subnet", true);
}

fn check_security_groups(v: &Value, at: &AttributePath, d: &mut Diagnostics) {
    check_ids(v, at, d, "sg-", "security group", false);
}

pub fn schema() -> Schema {
    let mut vpc = NestedBlock::list(
        "vpc_config",
        Block::new(
            "Where clients reach the cluster: one block per VPC (at most five). Changing it \
             replaces the cluster.",
        )
        .attribute(
            Attribute::required("subnet_ids", Type::set(Type::String))
                .describe("Subnets whose clients can reach the cluster.")
                .validate(Validator::custom(
                    "Invalid subnet ids",
                    "At least one; each a subnet id (`subnet-...`).",
                    check_subnets,
                )),
        )
        .attribute(
            Attribute::optional_computed("security_group_ids", Type::set(Type::String))
                .describe("Security groups of the cluster's endpoints. AWS uses the VPC's default security group when unset.")
                .validate(Validator::custom(
                    "Invalid security group ids",
                    "Each a security group id (`sg-...`).",
                    check_security_groups,
                )),
        ),
    )
    .requires_replace();
    vpc.min_items = 1;
    vpc.max_items = MAX_VPC_CONFIGS;
    let mut auth = NestedBlock::single(
        "client_authentication",
        Block::new(
            "How clients authenticate. MSK Serverless supports IAM access control only. Changing it \
             replaces the cluster.",
        )
        .block({
            let mut sasl = NestedBlock::single(
                "sasl",
                Block::new("SASL authentication.").attribute(
                    Attribute::required("iam", Type::Bool)
                        .describe("IAM access control; must be true."),
                ),
            );
            sasl.min_items = 1;
            sasl.max_items = 1;
            sasl
        }),
    )
    .requires_replace();
    auth.min_items = 1;
    auth.max_items = 1;
    Schema {
        version: 0,
        block: Block::new(
            "An Amazon MSK Serverless cluster (MSK v2 API). Create waits until it is ACTIVE; only \
             tags change in place, everything else replaces the cluster. Clients connect with \
             SASL/IAM to `bootstrap_brokers_sasl_iam`.",
        )
        .attribute(
            Attribute::computed("id", Type::String)
                .describe("The cluster ARN.")
                .use_state_for_unknown(),
        )
        .attribute(
            Attribute::computed("arn", Type::String)
                .describe("The cluster ARN.")
                .use_state_for_unknown(),
        )
        .attribute(
            Attribute::required("cluster_name", Type::String)
                .describe("Cluster name, unique in the account and region.")
                .validate(Validator::custom(
                    "Invalid cluster name",
                    "Starts with a letter; letters, digits and `-`; 1 to 64 characters.",
                    check_cluster_name,
                ))
                .requires_replace(),
        )
        .attribute(
            Attribute::optional("tags", Type::map(Type::String))
                .describe("Tags of the cluster (TagResource / UntagResource in place)."),
        )
        .attribute(
            Attribute::computed("state", Type::String)
                .describe("ACTIVE, CREATING, DELETING, FAILED, ..."),
        )
        .attribute(
            Attribute::computed("bootstrap_brokers_sasl_iam", Type::String)
                .describe(
                    "Comma-separated host:port list of the cluster's SASL/IAM endpoint \
                     (GetBootstrapBrokers, read once the cluster is ACTIVE); null before.",
                )
                .use_state_for_unknown(),
        )
        .block(vpc)
        .block(auth)
        .block(timeouts::block()),
    }
}

#[async_trait]
impl Resource<FerryData> for ServerlessClusterResource {
    type Model = ServerlessModel;

    fn type_name(&self) -> &'static str {
        "ferry_msk_serverless_cluster"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &ServerlessModel, diags: &mut Diagnostics) {
        validate(config, diags);
    }

    async fn plan(
        &self,
        _ctx: &Ctx<FerryData>,
        plan: &mut Plan<ServerlessModel>,
        _diags: &mut Diagnostics,
    ) {
        plan_security_groups(plan);
    }

    async fn create(
        &self,
        ctx: &Ctx<FerryData>,
        planned: ServerlessModel,
        diags: &mut Diagnostics,
    ) -> Option<ServerlessModel> {
        let msk = ctx.data().msk().await;
        create(&msk, ctx, planned, diags).await
    }

    async fn read(
        &self,
        ctx: &Ctx<FerryData>,
        state: ServerlessModel,
        diags: &mut Diagnostics,
    ) -> Option<ServerlessModel> {
        let msk = ctx.data().msk().await;
        read(&msk, state, diags).await
    }

    async fn update(
        &self,
        ctx: &Ctx<FerryData>,
        prior: ServerlessModel,
        planned: ServerlessModel,
        diags: &mut Diagnostics,
    ) -> ServerlessModel {
        let msk = ctx.data().msk().await;
        update(&msk, prior, planned, diags).await
    }

    async fn delete(&self, ctx: &Ctx<FerryData>, prior: ServerlessModel, diags: &mut Diagnostics) {
        let msk = ctx.data().msk().await;
        delete(&msk, ctx, prior, diags).await
    }

    async fn import(
        &self,
        _ctx: &Ctx<FerryData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<ServerlessModel> {
        import(id, diags)
    }
}

/// Cross-attribute rules: IAM must be on (the only authentication MSK Serverless has).
pub fn validate(config: &ServerlessModel, diags: &mut Diagnostics) {
    let iam = config
        .client_authentication
        .known()
        .and_then(|a| a.sasl.known())
        .and_then(|s| s.iam.known());
    if iam == Some(&false) {
        diags.attribute_error(
            AttributePath::root("client_authentication")
                .attr("sasl")
                .attr("iam"),
            "MSK Serverless needs IAM authentication",
            "MSK Serverless clusters support SASL/IAM only; set iam = true.",
        );
    }
}

/// On create, `security_group_ids` left out is chosen by AWS: known after apply. (The
/// schema-level rules mark computed attributes unknown only in single nested blocks.)
pub fn plan_security_groups(plan: &mut Plan<ServerlessModel>) {
    if !plan.is_create() {
        return;
    }
    if let Tf::Known(vpcs) = &mut plan.planned.vpc_config {
        for v in vpcs.iter_mut() {
            if v.security_group_ids.is_null() {
                v.security_group_ids = Tf::Unknown;
            }
        }
    }
}

pub fn import(id: &str, diags: &mut Diagnostics) -> Option<ServerlessModel> {
    let parts: Vec<&str> = id.split(':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[2] != "kafka" || !parts[5].contains('/') {
        diags.error(
            "Invalid import id",
            format!(
                "Import an MSK Serverless cluster by its ARN \
                 (arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID); got {id:?}."
            ),
        );
        return None;
    }
    Some(ServerlessModel {
        id: id.into(),
        arn: id.into(),
        ..ServerlessModel::default()
    })
}

fn arn_of(m: &ServerlessModel) -> String {
    m.arn.known().or(m.id.known()).cloned().unwrap_or_default()
}

fn sorted(v: &[String]) -> Set<String> {
    let mut v = v.to_vec();
    v.sort();
    Set(v)
}

/// The CreateClusterV2 request's serverless part.
pub fn request(m: &ServerlessModel) -> t::ServerlessRequest {
    let vpcs = m
        .vpc_config
        .known()
        .map(|v| {
            v.iter()
                .map(|c| {
                    t::VpcConfig::builder()
                        .set_subnet_ids(c.subnet_ids.known().map(|s| s.0.clone()))
                        .set_security_group_ids(c.security_group_ids.known().map(|s| s.0.clone()))
                        .build()
                })
                .collect()
        })
        .unwrap_or_default();
    let iam = m
        .client_authentication
        .known()
        .and_then(|a| a.sasl.known())
        .and_then(|s| s.iam.known().copied())
        .unwrap_or(true);
    t::ServerlessRequest::builder()
        .set_vpc_configs(Some(vpcs))
        .client_authentication(
            t::ServerlessClientAuthentication::builder()
                .sasl(
                    t::ServerlessSasl::builder()
                        .iam(t::Iam::builder().enabled(iam).build())
                        .build(),
                )
                .build(),
        )
        .build()
}

/// The state for a described cluster. Tags AWS reports but the configuration leaves out are
/// kept null only while there are none.
pub fn from_cluster(prior: &ServerlessModel, c: &Cluster, importing: bool) -> ServerlessModel {
    let arn = c
        .cluster_arn()
        .map(str::to_string)
        .or(prior.arn.known().cloned());
    let sls = c.serverless();
    let vpc_config = sls.map(|s| {
        s.vpc_configs()
            .iter()
            .map(|v| VpcConfigModel {
                subnet_ids: Tf::Known(sorted(v.subnet_ids())),
                security_group_ids: Tf::Known(sorted(v.security_group_ids())),
            })
            .collect::<Vec<_>>()
    });
    let iam = sls
        .and_then(|s| s.client_authentication())
        .and_then(|a| a.sasl())
        .and_then(|s| s.iam())
        .and_then(|i| i.enabled());
    let client_authentication = Tf::Known(ServerlessAuthModel {
        sasl: Tf::Known(ServerlessSaslModel {
            iam: Tf::Known(iam.unwrap_or(false)),
        }),
    });
    let tags: BTreeMap<String, String> = c
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    ServerlessModel {
        id: arn.clone().into(),
        arn: arn.into(),
        cluster_name: c.cluster_name().map(str::to_string).into(),
        tags: if tags.is_empty() && (prior.tags.is_null() || importing) {
            Tf::Null
        } else {
            Tf::Known(tags)
        },
        state: c.state().map(|s| s.as_str().to_string()).into(),
        bootstrap_brokers_sasl_iam: prior.bootstrap_brokers_sasl_iam.clone(),
        vpc_config: vpc_config.map_or(prior.vpc_config.clone(), Tf::Known),
        client_authentication,
        timeouts: prior.timeouts.clone(),
    }
}

/// Why DescribeClusterV2 answered something other than a serverless cluster.
fn not_serverless(arn: &str, c: &Cluster) -> Option<String> {
    match c.cluster_type() {
        Some(ClusterType::Serverless) | None => None,
        Some(other) => Some(format!(
            "{arn} is a {} cluster, not a serverless one; manage it with ferry_msk_cluster.",
            other.as_str()
        )),
    }
}

async fn describe(msk: &Msk, arn: &str) -> Result<Option<Cluster>, super::client::AwsError> {
    msk.client
        .describe_cluster_v2()
        .cluster_arn(arn)
        .send()
        .await
        .action("DescribeClusterV2")
        .map(|o| o.cluster_info)
}

/// Waits until the cluster is ACTIVE; FAILED reports AWS's state info.
pub async fn wait_active<D>(msk: &Msk, ctx: &Ctx<D>, arn: &str) -> Result<Cluster, WaitError> {
    poll_until(ctx, msk.poll, || async {
        let Some(c) = describe(msk, arn).await.map_err(WaitError::Aws)? else {
            return Ok(Err("no cluster info".to_string()));
        };
        match c.state() {
            Some(ClusterState::Active) => Ok(Ok(c)),
            Some(ClusterState::Failed) => {
                let si = c.state_info();
                Err(WaitError::Failed(format!(
                    "Serverless cluster {arn} is FAILED: {} {}",
                    si.and_then(|s| s.code()).unwrap_or("(no code)"),
                    si.and_then(|s| s.message()).unwrap_or("(no message)")
                )))
            }
            other => Ok(Err(
                other.map_or("unknown".into(), |s| s.as_str().to_string())
            )),
        }
    })
    .await
}

/// Waits until DescribeClusterV2 answers NotFound.
pub async fn wait_gone<D>(msk: &Msk, ctx: &Ctx<D>, arn: &str) -> Result<(), WaitError> {
    poll_until(ctx, msk.poll, || async {
        match describe(msk, arn).await {
            Ok(c) => Ok(Err(c
                .and_then(|c| c.state)
                .map_or("unknown".into(), |s| s.as_str().to_string()))),
            Err(e) if e.is_not_found() => Ok(Ok(())),
            Err(e) => Err(WaitError::Aws(e)),
        }
    })
    .await
}

/// Fills `state` from a described cluster, and its SASL/IAM bootstrap string once ACTIVE.
async fn refresh(
    msk: &Msk,
    state: &mut ServerlessModel,
    c: &Cluster,
    importing: bool,
    diags: &mut Diagnostics,
) {
    *state = from_cluster(state, c, importing);
    if c.state() == Some(&ClusterState::Active) {
        match msk
            .client
            .get_bootstrap_brokers()
            .cluster_arn(arn_of(state))
            .send()
            .await
            .action("GetBootstrapBrokers")
        {
            Ok(out) => {
                state.bootstrap_brokers_sasl_iam =
                    super::non_empty(out.bootstrap_broker_string_sasl_iam())
            }
            Err(e) => e.report(diags, None, "Could not read the bootstrap brokers"),
        }
    }
    settle(state);
}

/// Nothing unknown in a saved state.
fn settle(m: &mut ServerlessModel) {
    for f in [&mut m.bootstrap_brokers_sasl_iam, &mut m.state] {
        if f.is_unknown() {
            *f = Tf::Null;
        }
    }
    if let Tf::Known(vpcs) = &mut m.vpc_config {
        for v in vpcs.iter_mut() {
            if v.security_group_ids.is_unknown() {
                v.security_group_ids = Tf::Null;
            }
        }
    }
}

pub async fn create<D>(
    msk: &Msk,
    ctx: &Ctx<D>,
    planned: ServerlessModel,
    diags: &mut Diagnostics,
) -> Option<ServerlessModel> {
    let tags = planned
        .tags
        .known()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let out = msk
        .client
        .create_cluster_v2()
        .cluster_name(planned.cluster_name.or(String::new()))
        .serverless(request(&planned))
        .set_tags(tags)
        .send()
        .await
        .action("CreateClusterV2");
    let arn = match out {
        Ok(o) => o.cluster_arn.unwrap_or_default(),
        Err(e) => {
            e.report(diags, None, "Could not create the MSK Serverless cluster");
            return None;
        }
    };
    let mut state = ServerlessModel {
        id: arn.as_str().into(),
        arn: arn.as_str().into(),
        ..planned
    };
    let within = Timeouts::get(&state.timeouts, Operation::Create, DEFAULT_TIMEOUT);
    match wait_active(msk, &ctx.with_timeout(within), &arn).await {
        Ok(c) => refresh(msk, &mut state, &c, false, diags).await,
        Err(e) => {
            // The cluster exists: keep it in state (Terraform taints it) and say why.
            e.report(diags, "MSK Serverless cluster created but not ACTIVE");
            if let WaitError::Interrupted(_, last) = &e {
                state.state = Tf::Known(last.clone());
            }
            settle(&mut state);
        }
    }
    Some(state)
}

pub async fn read(
    msk: &Msk,
    state: ServerlessModel,
    diags: &mut Diagnostics,
) -> Option<ServerlessModel> {
    let arn = arn_of(&state);
    let importing = state.cluster_name.is_null();
    let c = match describe(msk, &arn).await {
        Ok(c) => c?,
        Err(e) if e.is_not_found() => return None,
        Err(e) => {
            e.report(diags, None, "Could not read the MSK Serverless cluster");
            return Some(state);
        }
    };
    if let Some(why) = not_serverless(&arn, &c) {
        diags.error("Not an MSK Serverless cluster", why);
        return if importing { None } else { Some(state) };
    }
    let mut next = state;
    refresh(msk, &mut next, &c, importing, diags).await;
    Some(next)
}

/// Only tags change in place; every other argument replaces the cluster.
pub async fn update(
    msk: &Msk,
    prior: ServerlessModel,
    planned: ServerlessModel,
    diags: &mut Diagnostics,
) -> ServerlessModel {
    let arn = arn_of(&prior);
    let ok = super::cluster::update_tags(
        msk,
        &arn,
        &prior.tags.or(BTreeMap::new()),
        &planned.tags.or(BTreeMap::new()),
        diags,
    )
    .await;
    let mut state = if ok { planned } else { prior };
    match describe(msk, &arn).await {
        Ok(Some(c)) => refresh(msk, &mut state, &c, false, diags).await,
        Ok(None) => settle(&mut state),
        Err(e) => {
            e.report(
                diags,
                None,
                "Could not read the MSK Serverless cluster after updating it",
            );
            settle(&mut state);
        }
    }
    state
}

pub async fn delete<D>(msk: &Msk, ctx: &Ctx<D>, prior: ServerlessModel, diags: &mut Diagnostics) {
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
        Err(e) => return e.report(diags, None, "Could not delete the MSK Serverless cluster"),
    }
    let within = Timeouts::get(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
    if let Err(e) = wait_gone(msk, &ctx.with_timeout(within), &arn).await {
        e.report(diags, "MSK Serverless cluster deletion did not finish");
    }
}

#[cfg(test)]
#[path = "serverless_tests.rs"]
mod tests;
