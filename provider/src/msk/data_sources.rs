//! MSK data sources: `ferry_msk_cluster` (by name or ARN), `ferry_msk_bootstrap_brokers`,
//! `ferry_msk_configuration` (by name or ARN) and `ferry_msk_kafka_version`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_kafka::operation::get_bootstrap_brokers::GetBootstrapBrokersOutput;
use tfplugin::{
    Attribute, AttributePath, Block, Ctx, DataSource, Diagnostics, Model, Schema, Tf, Type,
};

use super::client::{Call, Msk};
use super::non_empty;
use crate::provider::FerryData;

const BROKER_STRINGS: &[(&str, &str)] = &[
    ("bootstrap_brokers", "PLAINTEXT"),
    ("bootstrap_brokers_tls", "TLS"),
    ("bootstrap_brokers_sasl_scram", "SASL/SCRAM"),
    ("bootstrap_brokers_sasl_iam", "SASL/IAM"),
    ("bootstrap_brokers_public_tls", "public TLS"),
    ("bootstrap_brokers_public_sasl_scram", "public SASL/SCRAM"),
    ("bootstrap_brokers_public_sasl_iam", "public SASL/IAM"),
];

fn with_broker_strings(mut b: Block) -> Block {
    for (name, what) in BROKER_STRINGS {
        b = b.attribute(Attribute::computed(name, Type::String).describe(&format!(
            "Comma-separated host:port list of the {what} listeners; null when there are none."
        )));
    }
    b
}

/// The seven bootstrap strings, as both data sources carry them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerStrings([Tf<String>; 7]);

impl BrokerStrings {
    fn from(out: &GetBootstrapBrokersOutput) -> BrokerStrings {
        BrokerStrings([
            non_empty(out.bootstrap_broker_string()),
            non_empty(out.bootstrap_broker_string_tls()),
            non_empty(out.bootstrap_broker_string_sasl_scram()),
            non_empty(out.bootstrap_broker_string_sasl_iam()),
            non_empty(out.bootstrap_broker_string_public_tls()),
            non_empty(out.bootstrap_broker_string_public_sasl_scram()),
            non_empty(out.bootstrap_broker_string_public_sasl_iam()),
        ])
    }
}

async fn broker_strings(msk: &Msk, arn: &str, diags: &mut Diagnostics) -> Option<BrokerStrings> {
    match msk
        .client
        .get_bootstrap_brokers()
        .cluster_arn(arn)
        .send()
        .await
        .action("GetBootstrapBrokers")
    {
        Ok(out) => Some(BrokerStrings::from(&out)),
        Err(e) => {
            e.report(diags, None, "Could not read the bootstrap brokers");
            None
        }
    }
}

// ------------------------------------------------------------------ ferry_msk_bootstrap_brokers

pub struct BootstrapBrokersDataSource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct BootstrapBrokersModel {
    pub cluster_arn: Tf<String>,
    pub bootstrap_brokers: Tf<String>,
    pub bootstrap_brokers_tls: Tf<String>,
    pub bootstrap_brokers_sasl_scram: Tf<String>,
    pub bootstrap_brokers_sasl_iam: Tf<String>,
    pub bootstrap_brokers_public_tls: Tf<String>,
    pub bootstrap_brokers_public_sasl_scram: Tf<String>,
    pub bootstrap_brokers_public_sasl_iam: Tf<String>,
}

impl BootstrapBrokersModel {
    fn set(&mut self, s: BrokerStrings) {
        let [a, b, c, d, e, f, g] = s.0;
        self.bootstrap_brokers = a;
        self.bootstrap_brokers_tls = b;
        self.bootstrap_brokers_sasl_scram = c;
        self.bootstrap_brokers_sasl_iam = d;
        self.bootstrap_brokers_public_tls = e;
        self.bootstrap_brokers_public_sasl_scram = f;
        self.bootstrap_brokers_public_sasl_iam = g;
    }
}

pub fn bootstrap_schema() -> Schema {
    Schema {
        version: 0,
        block: with_broker_strings(
            Block::new("The bootstrap broker strings of an MSK cluster, for every listener kind.")
                .attribute(
                    Attribute::required("cluster_arn", Type::String)
                        .describe("ARN of the cluster."),
                ),
        ),
    }
}

#[async_trait]
impl DataSource<FerryData> for BootstrapBrokersDataSource {
    type Model = BootstrapBrokersModel;
    fn type_name(&self) -> &'static str {
        "ferry_msk_bootstrap_brokers"
    }
    fn schema(&self) -> Schema {
        bootstrap_schema()
    }
    async fn read(
        &self,
        ctx: &Ctx<FerryData>,
        config: BootstrapBrokersModel,
        diags: &mut Diagnostics,
    ) -> Option<BootstrapBrokersModel> {
        read_bootstrap(&ctx.data().msk().await, config, diags).await
    }
}

pub async fn read_bootstrap(
    msk: &Msk,
    config: BootstrapBrokersModel,
    diags: &mut Diagnostics,
) -> Option<BootstrapBrokersModel> {
    let arn = config.cluster_arn.or(String::new());
    let strings = broker_strings(msk, &arn, diags).await?;
    let mut out = config;
    out.set(strings);
    Some(out)
}

// ------------------------------------------------------------------ ferry_msk_cluster

pub struct ClusterDataSource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ClusterDataModel {
    pub arn: Tf<String>,
    pub cluster_name: Tf<String>,
    pub kafka_version: Tf<String>,
    pub number_of_broker_nodes: Tf<i64>,
    pub state: Tf<String>,
    pub current_version: Tf<String>,
    pub tags: Tf<BTreeMap<String, String>>,
    pub zookeeper_connect_string: Tf<String>,
    pub zookeeper_connect_string_tls: Tf<String>,
    pub bootstrap_brokers: Tf<String>,
    pub bootstrap_brokers_tls: Tf<String>,
    pub bootstrap_brokers_sasl_scram: Tf<String>,
    pub bootstrap_brokers_sasl_iam: Tf<String>,
    pub bootstrap_brokers_public_tls: Tf<String>,
    pub bootstrap_brokers_public_sasl_scram: Tf<String>,
    pub bootstrap_brokers_public_sasl_iam: Tf<String>,
}

pub fn cluster_schema() -> Schema {
    let computed = |n: &str, t: Type, d: &str| Attribute::computed(n, t).describe(d);
    Schema {
        version: 0,
        block: with_broker_strings(
            Block::new("An existing MSK provisioned cluster, found by name or ARN.")
                .attribute(
                    Attribute::optional_computed("arn", Type::String)
                        .describe("ARN of the cluster. Set this or cluster_name."),
                )
                .attribute(
                    Attribute::optional_computed("cluster_name", Type::String)
                        .describe("Name of the cluster. Set this or arn."),
                )
                .attribute(computed(
                    "kafka_version",
                    Type::String,
                    "Apache Kafka version.",
                ))
                .attribute(computed(
                    "number_of_broker_nodes",
                    Type::Number,
                    "Number of brokers.",
                ))
                .attribute(computed(
                    "state",
                    Type::String,
                    "ACTIVE, CREATING, UPDATING, ...",
                ))
                .attribute(computed(
                    "current_version",
                    Type::String,
                    "The cluster's version token.",
                ))
                .attribute(computed(
                    "tags",
                    Type::map(Type::String),
                    "Tags of the cluster.",
                ))
                .attribute(computed(
                    "zookeeper_connect_string",
                    Type::String,
                    "ZooKeeper connection string, if any.",
                ))
                .attribute(computed(
                    "zookeeper_connect_string_tls",
                    Type::String,
                    "ZooKeeper TLS connection string, if any.",
                )),
        ),
    }
}

#[async_trait]
impl DataSource<FerryData> for ClusterDataSource {
    type Model = ClusterDataModel;
    fn type_name(&self) -> &'static str {
        "ferry_msk_cluster"
    }
    fn schema(&self) -> Schema {
        cluster_schema()
    }
    fn validate(&self, config: &ClusterDataModel, diags: &mut Diagnostics) {
        one_of(
            &config.arn,
            &config.cluster_name,
            "arn",
            "cluster_name",
            diags,
        );
    }
    async fn read(
        &self,
        ctx: &Ctx<FerryData>,
        config: ClusterDataModel,
        diags: &mut Diagnostics,
    ) -> Option<ClusterDataModel> {
        read_cluster(&ctx.data().msk().await, config, diags).await
    }
}

/// Exactly one of two lookup keys.
fn one_of(a: &Tf<String>, b: &Tf<String>, an: &str, bn: &str, diags: &mut Diagnostics) {
    if a.is_unknown() || b.is_unknown() {
        return;
    }
    if a.is_null() == b.is_null() {
        diags.attribute_error(
            AttributePath::root(an),
            format!("Set either {an} or {bn}"),
            format!("Look the object up by exactly one of {an} and {bn}."),
        );
    }
}

pub async fn read_cluster(
    msk: &Msk,
    config: ClusterDataModel,
    diags: &mut Diagnostics,
) -> Option<ClusterDataModel> {
    let info = if let Some(arn) = config.arn.known() {
        match msk
            .client
            .describe_cluster()
            .cluster_arn(arn)
            .send()
            .await
            .action("DescribeCluster")
        {
            Ok(out) => out.cluster_info,
            Err(e) => {
                e.report(
                    diags,
                    Some(AttributePath::root("arn")),
                    "Could not read the MSK cluster",
                );
                return None;
            }
        }
    } else {
        let name = config.cluster_name.or(String::new());
        let mut found = Vec::new();
        let mut pages = msk
            .client
            .list_clusters()
            .cluster_name_filter(&name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            match page.action("ListClusters") {
                Ok(p) => found.extend(
                    p.cluster_info_list
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|c| c.cluster_name() == Some(name.as_str())),
                ),
                Err(e) => {
                    e.report(diags, None, "Could not list MSK clusters");
                    return None;
                }
            }
        }
        if found.len() != 1 {
            diags.attribute_error(
                AttributePath::root("cluster_name"),
                "MSK cluster not found",
                format!(
                    "{} provisioned clusters are named {name:?} in this account and region; expected exactly one.",
                    found.len()
                ),
            );
            return None;
        }
        found.pop()
    };
    let Some(info) = info else {
        diags.error(
            "MSK cluster not found",
            "DescribeCluster returned no cluster.",
        );
        return None;
    };
    let arn = info.cluster_arn().unwrap_or_default().to_string();
    let mut out = ClusterDataModel {
        arn: Tf::Known(arn.clone()),
        cluster_name: info.cluster_name().map(str::to_string).into(),
        kafka_version: info
            .current_broker_software_info()
            .and_then(|s| s.kafka_version())
            .map(str::to_string)
            .into(),
        number_of_broker_nodes: info.number_of_broker_nodes().map(i64::from).into(),
        state: info.state().map(|s| s.as_str().to_string()).into(),
        current_version: info.current_version().map(str::to_string).into(),
        tags: Tf::Known(
            info.tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        ),
        zookeeper_connect_string: non_empty(info.zookeeper_connect_string()),
        zookeeper_connect_string_tls: non_empty(info.zookeeper_connect_string_tls()),
        ..ClusterDataModel::default()
    };
    // Brokers of a cluster still being created have no addresses yet.
    if info.state().is_some_and(|s| s.as_str() == "ACTIVE") {
        let [a, b, c, d, e, f, g] = broker_strings(msk, &arn, diags).await?.0;
        out.bootstrap_brokers = a;
        out.bootstrap_brokers_tls = b;
        out.bootstrap_brokers_sasl_scram = c;
        out.bootstrap_brokers_sasl_iam = d;
        out.bootstrap_brokers_public_tls = e;
        out.bootstrap_brokers_public_sasl_scram = f;
        out.bootstrap_brokers_public_sasl_iam = g;
    }
    Some(out)
}

// ------------------------------------------------------------------ ferry_msk_configuration

pub struct ConfigurationDataSource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ConfigurationDataModel {
    pub arn: Tf<String>,
    pub name: Tf<String>,
    pub description: Tf<String>,
    pub kafka_versions: Tf<Vec<String>>,
    pub latest_revision: Tf<i64>,
    pub server_properties: Tf<String>,
}

pub fn configuration_schema() -> Schema {
    let computed = |n: &str, t: Type, d: &str| Attribute::computed(n, t).describe(d);
    Schema {
        version: 0,
        block: Block::new(
            "An existing MSK configuration, found by name or ARN, with its latest revision.",
        )
        .attribute(
            Attribute::optional_computed("arn", Type::String).describe("ARN. Set this or name."),
        )
        .attribute(
            Attribute::optional_computed("name", Type::String).describe("Name. Set this or arn."),
        )
        .attribute(computed("description", Type::String, "Description."))
        .attribute(computed(
            "kafka_versions",
            Type::list(Type::String),
            "Kafka versions it is for.",
        ))
        .attribute(computed(
            "latest_revision",
            Type::Number,
            "The newest revision.",
        ))
        .attribute(computed(
            "server_properties",
            Type::String,
            "The properties of the newest revision.",
        )),
    }
}

#[async_trait]
impl DataSource<FerryData> for ConfigurationDataSource {
    type Model = ConfigurationDataModel;
    fn type_name(&self) -> &'static str {
        "ferry_msk_configuration"
    }
    fn schema(&self) -> Schema {
        configuration_schema()
    }
    fn validate(&self, config: &ConfigurationDataModel, diags: &mut Diagnostics) {
        one_of(&config.arn, &config.name, "arn", "name", diags);
    }
    async fn read(
        &self,
        ctx: &Ctx<FerryData>,
        config: ConfigurationDataModel,
        diags: &mut Diagnostics,
    ) -> Option<ConfigurationDataModel> {
        read_configuration(&ctx.data().msk().await, config, diags).await
    }
}

pub async fn read_configuration(
    msk: &Msk,
    config: ConfigurationDataModel,
    diags: &mut Diagnostics,
) -> Option<ConfigurationDataModel> {
    let arn = match config.arn.known() {
        Some(a) => a.clone(),
        None => {
            let name = config.name.or(String::new());
            let mut found = Vec::new();
            let mut pages = msk.client.list_configurations().into_paginator().send();
            while let Some(page) = pages.next().await {
                match page.action("ListConfigurations") {
                    Ok(p) => found.extend(
                        p.configurations
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|c| c.name() == Some(name.as_str()))
                            .filter_map(|c| c.arn),
                    ),
                    Err(e) => {
                        e.report(diags, None, "Could not list MSK configurations");
                        return None;
                    }
                }
            }
            if found.len() != 1 {
                diags.attribute_error(
                    AttributePath::root("name"),
                    "MSK configuration not found",
                    format!(
                        "{} configurations are named {name:?} in this account and region; expected exactly one.",
                        found.len()
                    ),
                );
                return None;
            }
            found.remove(0)
        }
    };
    let state = super::configuration::ConfigurationModel {
        arn: Tf::Known(arn.clone()),
        ..Default::default()
    };
    // The resource's read, as right after an import: everything AWS says.
    let Some(read) = super::configuration::read(msk, state, diags).await else {
        diags.attribute_error(
            AttributePath::root("arn"),
            "MSK configuration not found",
            format!("No configuration {arn}."),
        );
        return None;
    };
    Some(ConfigurationDataModel {
        arn: read.arn,
        name: read.name,
        description: read.description,
        kafka_versions: match read.kafka_versions {
            Tf::Null => Tf::Known(Vec::new()),
            v => v,
        },
        latest_revision: read.latest_revision,
        server_properties: read.server_properties,
    })
}

// ------------------------------------------------------------------ ferry_msk_kafka_version

pub struct KafkaVersionDataSource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct KafkaVersionModel {
    pub preferred_versions: Tf<Vec<String>>,
    pub version: Tf<String>,
    pub status: Tf<String>,
    pub available_versions: Tf<Vec<String>>,
}

pub fn kafka_version_schema() -> Schema {
    Schema {
        version: 0,
        block: Block::new("The Apache Kafka versions MSK offers, and the first of your preferred ones it has.")
            .attribute(
                Attribute::optional("preferred_versions", Type::list(Type::String))
                    .describe("Versions in order of preference; the first one MSK offers is chosen. Unset: the newest ACTIVE one."),
            )
            .attribute(Attribute::computed("version", Type::String).describe("The chosen version."))
            .attribute(Attribute::computed("status", Type::String).describe("Its status: ACTIVE or DEPRECATED."))
            .attribute(
                Attribute::computed("available_versions", Type::list(Type::String))
                    .describe("Every version MSK lists, in its order."),
            ),
    }
}

#[async_trait]
impl DataSource<FerryData> for KafkaVersionDataSource {
    type Model = KafkaVersionModel;
    fn type_name(&self) -> &'static str {
        "ferry_msk_kafka_version"
    }
    fn schema(&self) -> Schema {
        kafka_version_schema()
    }
    async fn read(
        &self,
        ctx: &Ctx<FerryData>,
        config: KafkaVersionModel,
        diags: &mut Diagnostics,
    ) -> Option<KafkaVersionModel> {
        read_kafka_version(&ctx.data().msk().await, config, diags).await
    }
}

pub async fn read_kafka_version(
    msk: &Msk,
    config: KafkaVersionModel,
    diags: &mut Diagnostics,
) -> Option<KafkaVersionModel> {
    let mut versions = Vec::new();
    let mut pages = msk.client.list_kafka_versions().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page.action("ListKafkaVersions") {
            Ok(p) => versions.extend(p.kafka_versions.unwrap_or_default()),
            Err(e) => {
                e.report(diags, None, "Could not list Kafka versions");
                return None;
            }
        }
    }
    let listed: Vec<(String, String)> = versions
        .iter()
        .filter_map(|v| {
            Some((
                v.version()?.to_string(),
                v.status().map_or("", |s| s.as_str()).to_string(),
            ))
        })
        .collect();
    let chosen = match config.preferred_versions.known() {
        Some(preferred) => preferred
            .iter()
            .find_map(|p| listed.iter().find(|(v, _)| v == p)),
        None => listed
            .iter()
            .filter(|(_, s)| s == "ACTIVE")
            .max_by(|a, b| version_key(&a.0).cmp(&version_key(&b.0))),
    };
    let Some((version, status)) = chosen.cloned() else {
        diags.attribute_error(
            AttributePath::root("preferred_versions"),
            "No such Kafka version in MSK",
            format!(
                "MSK offers {}; none of the preferred versions is among them.",
                listed
                    .iter()
                    .map(|(v, _)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    };
    Some(KafkaVersionModel {
        version: Tf::Known(version),
        status: Tf::Known(status),
        available_versions: Tf::Known(listed.into_iter().map(|(v, _)| v).collect()),
        ..config
    })
}

/// "3.6.0" < "3.10.1"; anything not numeric (e.g. "3.7.x.kraft") sorts by its numeric prefix.
fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map_while(|p| p.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_kafka::Client;
    use aws_sdk_kafka::operation::describe_cluster::DescribeClusterOutput;
    use aws_sdk_kafka::operation::list_clusters::ListClustersOutput;
    use aws_sdk_kafka::operation::list_kafka_versions::ListKafkaVersionsOutput;
    use aws_sdk_kafka::types::{ClusterInfo, ClusterState, KafkaVersion, KafkaVersionStatus};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use tfplugin::model::check_model_matches;

    use super::*;
    use crate::msk::client::{Poll, retry_config};

    const ARN: &str = "arn:aws:kafka:eu-west-1:1:cluster/target/x";

    fn msk(rules: &[&Rule]) -> Msk {
        let client = mock_client!(aws_sdk_kafka, RuleMode::Sequential, rules, |c| c
            .retry_config(retry_config(1).with_initial_backoff(Duration::from_millis(1))));
        Msk {
            client,
            poll: Poll::default(),
        }
    }

    #[test]
    fn schemas_and_models_agree() {
        check_model_matches::<BootstrapBrokersModel>(&bootstrap_schema().block).unwrap();
        check_model_matches::<ClusterDataModel>(&cluster_schema().block).unwrap();
        check_model_matches::<ConfigurationDataModel>(&configuration_schema().block).unwrap();
        check_model_matches::<KafkaVersionModel>(&kafka_version_schema().block).unwrap();
    }

    #[tokio::test]
    async fn a_cluster_is_found_by_exact_name_among_prefix_matches() {
        let list = mock!(Client::list_clusters)
            .match_requests(|r| r.cluster_name_filter() == Some("target"))
            .then_output(|| {
                let c = |name: &str, arn: &str| {
                    ClusterInfo::builder()
                        .cluster_name(name)
                        .cluster_arn(arn)
                        .state(ClusterState::Active)
                        .build()
                };
                ListClustersOutput::builder()
                    .cluster_info_list(c("target-old", "arn:other"))
                    .cluster_info_list(c("target", ARN))
                    .build()
            });
        let brokers = mock!(Client::get_bootstrap_brokers)
            .match_requests(|r| r.cluster_arn() == Some(ARN))
            .then_output(|| {
                GetBootstrapBrokersOutput::builder()
                    .bootstrap_broker_string_sasl_iam("b-1:9098")
                    .build()
            });
        let msk = msk(&[&list, &brokers]);
        let mut d = Diagnostics::default();
        let config = ClusterDataModel {
            cluster_name: "target".into(),
            ..Default::default()
        };
        let out = read_cluster(&msk, config, &mut d).await.unwrap();
        assert!(!d.has_errors());
        assert_eq!(out.arn, Tf::Known(ARN.into()));
        assert_eq!(out.bootstrap_brokers_sasl_iam, Tf::Known("b-1:9098".into()));
        assert_eq!(out.bootstrap_brokers, Tf::Null);
    }

    #[tokio::test]
    async fn a_cluster_still_creating_has_no_brokers_yet() {
        let describe = mock!(Client::describe_cluster).then_output(|| {
            DescribeClusterOutput::builder()
                .cluster_info(
                    ClusterInfo::builder()
                        .cluster_arn(ARN)
                        .state(ClusterState::Creating)
                        .build(),
                )
                .build()
        });
        let msk = msk(&[&describe]);
        let mut d = Diagnostics::default();
        let config = ClusterDataModel {
            arn: ARN.into(),
            ..Default::default()
        };
        let out = read_cluster(&msk, config, &mut d).await.unwrap();
        assert_eq!(out.state, Tf::Known("CREATING".into()));
        assert_eq!(out.bootstrap_brokers_tls, Tf::Null);
    }

    fn versions() -> Rule {
        mock!(Client::list_kafka_versions).then_output(|| {
            let v = |n: &str, s: KafkaVersionStatus| {
                KafkaVersion::builder().version(n).status(s).build()
            };
            ListKafkaVersionsOutput::builder()
                .kafka_versions(v("2.8.1", KafkaVersionStatus::Deprecated))
                .kafka_versions(v("3.6.0", KafkaVersionStatus::Active))
                .kafka_versions(v("3.10.1", KafkaVersionStatus::Active))
                .kafka_versions(v("3.9.x", KafkaVersionStatus::Active))
                .build()
        })
    }

    #[tokio::test]
    async fn the_first_preferred_version_msk_offers_is_chosen() {
        let list = versions();
        let msk = msk(&[&list]);
        let mut d = Diagnostics::default();
        let config = KafkaVersionModel {
            preferred_versions: Tf::Known(vec!["4.0.0".into(), "2.8.1".into(), "3.6.0".into()]),
            ..Default::default()
        };
        let out = read_kafka_version(&msk, config, &mut d).await.unwrap();
        assert_eq!(out.version, Tf::Known("2.8.1".into()));
        assert_eq!(out.status, Tf::Known("DEPRECATED".into()));
        assert_eq!(out.available_versions.known().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn without_preferences_the_newest_active_version_is_chosen() {
        let list = versions();
        let msk = msk(&[&list]);
        let mut d = Diagnostics::default();
        let out = read_kafka_version(&msk, KafkaVersionModel::default(), &mut d)
            .await
            .unwrap();
        assert_eq!(out.version, Tf::Known("3.10.1".into()));

        let list = versions();
        let msk2 = super::super::client::Msk {
            client: mock_client!(aws_sdk_kafka, RuleMode::Sequential, [&list]),
            poll: Poll::default(),
        };
        let config = KafkaVersionModel {
            preferred_versions: Tf::Known(vec!["9.9.9".into()]),
            ..Default::default()
        };
        let mut d = Diagnostics::default();
        assert!(read_kafka_version(&msk2, config, &mut d).await.is_none());
        assert!(
            d.0[0].detail.contains("3.6.0"),
            "names what exists: {}",
            d.0[0].detail
        );
    }

    #[test]
    fn exactly_one_lookup_key() {
        let mut d = Diagnostics::default();
        one_of(&Tf::Null, &Tf::Null, "arn", "name", &mut d);
        one_of(&"a".into(), &"b".into(), "arn", "name", &mut d);
        assert_eq!(d.0.len(), 2);
        let mut ok = Diagnostics::default();
        one_of(&"a".into(), &Tf::Null, "arn", "name", &mut ok);
        one_of(&Tf::Unknown, &Tf::Null, "arn", "name", &mut ok);
        assert!(ok.0.is_empty());
    }
}
