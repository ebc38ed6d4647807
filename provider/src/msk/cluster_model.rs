//! `ferry_msk_cluster`'s schema and model (the shape of the AWS provider's `aws_msk_cluster`),
//! and conversions between the model and aws-sdk-kafka's types.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_kafka::operation::get_bootstrap_brokers::GetBootstrapBrokersOutput;
use aws_sdk_kafka::types::{self as t, ClientBroker, ClusterInfo, EnhancedMonitoring, StorageMode};
use tfplugin::timeouts::{self, Timeouts};
use tfplugin::{Attribute, Block, Model, NestedBlock, Schema, Tf, Type, Validator, Value};

use super::{non_empty, pick};

pub const ENHANCED_MONITORING: &[&str] = &[
    "DEFAULT",
    "PER_BROKER",
    "PER_TOPIC_PER_BROKER",
    "PER_TOPIC_PER_PARTITION",
];
pub const CLIENT_BROKER: &[&str] = &["TLS", "TLS_PLAINTEXT", "PLAINTEXT"];
pub const STORAGE_MODES: &[&str] = &["LOCAL", "TIERED"];
pub const PUBLIC_ACCESS: &[&str] = &["DISABLED", "SERVICE_PROVIDED_EIPS"];

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ClusterModel {
    pub id: Tf<String>,
    pub arn: Tf<String>,
    pub cluster_name: Tf<String>,
    pub kafka_version: Tf<String>,
    pub number_of_broker_nodes: Tf<i64>,
    pub enhanced_monitoring: Tf<String>,
    pub storage_mode: Tf<String>,
    pub tags: Tf<BTreeMap<String, String>>,
    pub current_version: Tf<String>,
    pub state: Tf<String>,
    pub bootstrap_brokers: Tf<String>,
    pub bootstrap_brokers_tls: Tf<String>,
    pub bootstrap_brokers_sasl_scram: Tf<String>,
    pub bootstrap_brokers_sasl_iam: Tf<String>,
    pub bootstrap_brokers_public_tls: Tf<String>,
    pub bootstrap_brokers_public_sasl_scram: Tf<String>,
    pub bootstrap_brokers_public_sasl_iam: Tf<String>,
    pub zookeeper_connect_string: Tf<String>,
    pub zookeeper_connect_string_tls: Tf<String>,
    pub broker_node_group_info: Tf<BrokerNodeGroupModel>,
    pub encryption_info: Tf<EncryptionModel>,
    pub client_authentication: Tf<ClientAuthModel>,
    pub configuration_info: Tf<ConfigurationInfoModel>,
    pub open_monitoring: Tf<OpenMonitoringModel>,
    pub logging_info: Tf<LoggingModel>,
    pub timeouts: Tf<Timeouts>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct BrokerNodeGroupModel {
    pub instance_type: Tf<String>,
    pub client_subnets: Tf<Vec<String>>,
    pub security_groups: Tf<Vec<String>>,
    pub storage_info: Tf<StorageInfoModel>,
    pub connectivity_info: Tf<ConnectivityModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct StorageInfoModel {
    pub ebs_storage_info: Tf<EbsModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct EbsModel {
    pub volume_size: Tf<i64>,
    pub provisioned_throughput: Tf<ThroughputModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ThroughputModel {
    pub enabled: Tf<bool>,
    pub volume_throughput: Tf<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ConnectivityModel {
    pub public_access: Tf<PublicAccessModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct PublicAccessModel {
    pub r#type: Tf<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct EncryptionModel {
    pub encryption_at_rest_kms_key_arn: Tf<String>,
    pub encryption_in_transit: Tf<InTransitModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct InTransitModel {
    pub client_broker: Tf<String>,
    pub in_cluster: Tf<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ClientAuthModel {
    pub unauthenticated: Tf<bool>,
    pub sasl: Tf<SaslAuthModel>,
    pub tls: Tf<TlsAuthModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct SaslAuthModel {
    pub iam: Tf<bool>,
    pub scram: Tf<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct TlsAuthModel {
    pub certificate_authority_arns: Tf<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ConfigurationInfoModel {
    pub arn: Tf<String>,
    pub revision: Tf<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct OpenMonitoringModel {
    pub prometheus: Tf<PrometheusModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct PrometheusModel {
    pub jmx_exporter: Tf<ExporterModel>,
    pub node_exporter: Tf<ExporterModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ExporterModel {
    pub enabled_in_broker: Tf<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct LoggingModel {
    pub broker_logs: Tf<BrokerLogsModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct BrokerLogsModel {
    pub cloudwatch_logs: Tf<CloudwatchModel>,
    pub firehose: Tf<FirehoseModel>,
    pub s3: Tf<S3Model>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct CloudwatchModel {
    pub enabled: Tf<bool>,
    pub log_group: Tf<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct FirehoseModel {
    pub enabled: Tf<bool>,
    pub delivery_stream: Tf<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct S3Model {
    pub enabled: Tf<bool>,
    pub bucket: Tf<String>,
    pub prefix: Tf<String>,
}

/// Bootstrap strings keep their value unless connectivity or authentication changes.
const LISTENERS_FOLLOW: &[&str] = &[
    "broker_node_group_info",
    "client_authentication",
    "encryption_info",
];

fn bootstrap(name: &str, what: &str) -> Attribute {
    Attribute::computed(name, Type::String)
        .describe(&format!(
            "Comma-separated host:port list of the brokers' {what} listeners; null when the cluster has none."
        ))
        .use_state_for_unknown()
        .computed_if_changed(LISTENERS_FOLLOW)
}

fn enabled(what: &str) -> Attribute {
    Attribute::optional("enabled_in_broker", Type::Bool).describe(what)
}

pub fn schema() -> Schema {
    let volume_shrinks = |before: &Value, after: &Value| match (before.as_i64(), after.as_i64()) {
        (Some(b), Some(a)) => a < b,
        _ => false,
    };
    let storage = NestedBlock::single(
        "storage_info",
        Block::new("Broker storage.").block(NestedBlock::single(
            "ebs_storage_info",
            Block::new("EBS volumes of the brokers.")
                .attribute(
                    Attribute::optional_computed("volume_size", Type::Number)
                        .describe(
                            "Size in GiB of each broker's EBS volume. Grows in place \
                             (UpdateBrokerStorage); AWS cannot shrink a volume.",
                        )
                        .validate(Validator::int_range(1, 16384, "Invalid volume size"))
                        .requires_replace_if("Shrinking it replaces the cluster.", volume_shrinks),
                )
                .block(NestedBlock::single(
                    "provisioned_throughput",
                    Block::new("Provisioned storage throughput (for kafka.m5.4xlarge and larger).")
                        .attribute(
                            Attribute::optional("enabled", Type::Bool)
                                .describe("Whether it is on."),
                        )
                        .attribute(
                            Attribute::optional("volume_throughput", Type::Number)
                                .describe("MiB/s per broker, from 250.")
                                .validate(Validator::int_range(
                                    250,
                                    2375,
                                    "Invalid volume throughput",
                                )),
                        ),
                )),
        )),
    );
    let connectivity = NestedBlock::single(
        "connectivity_info",
        Block::new("How clients reach the brokers.").block(NestedBlock::single(
            "public_access",
            Block::new("Public access (UpdateConnectivity in place).").attribute(
                Attribute::optional_computed("type", Type::String)
                    .describe("Public access type.")
                    .validate(Validator::one_of(
                        PUBLIC_ACCESS,
                        "Invalid public access type",
                    )),
            ),
        )),
    );
    let mut broker_node_group = NestedBlock::single(
        "broker_node_group_info",
        Block::new("The brokers: instance type, network placement, storage.")
            .attribute(
                Attribute::required("instance_type", Type::String)
                    .describe("Broker instance type, e.g. \"kafka.m5.large\". Changes in place (UpdateBrokerType)."),
            )
            .attribute(
                Attribute::required("client_subnets", Type::list(Type::String))
                    .describe("Subnets of the brokers, one per availability zone.")
                    .requires_replace(),
            )
            .attribute(
                Attribute::optional("security_groups", Type::list(Type::String))
                    .describe("Security groups of the brokers' network interfaces.")
                    .requires_replace(),
            )
            .block(storage)
            .block(connectivity),
    );
    // Required: MSK cannot place brokers without it.
    broker_node_group.min_items = 1;
    broker_node_group.max_items = 1;
    let encryption = NestedBlock::single(
        "encryption_info",
        Block::new("Encryption at rest and in transit.")
            .attribute(
                Attribute::optional_computed("encryption_at_rest_kms_key_arn", Type::String)
                    .describe("KMS key for data at rest. Defaults to the AWS managed key.")
                    .requires_replace(),
            )
            .block(NestedBlock::single(
                "encryption_in_transit",
                Block::new("Encryption in transit.")
                    .attribute(
                        Attribute::optional_computed("client_broker", Type::String)
                            .describe("Between clients and brokers (UpdateSecurity in place). AWS defaults to TLS.")
                            .validate(Validator::one_of(CLIENT_BROKER, "Invalid client_broker")),
                    )
                    .attribute(
                        Attribute::optional_computed("in_cluster", Type::Bool)
                            .describe("Between brokers. AWS defaults to true.")
                            .requires_replace(),
                    ),
            )),
    );
    let client_auth = NestedBlock::single(
        "client_authentication",
        Block::new("How clients authenticate (UpdateSecurity in place).")
            .attribute(
                Attribute::optional("unauthenticated", Type::Bool)
                    .describe("Allow unauthenticated clients."),
            )
            .block(NestedBlock::single(
                "sasl",
                Block::new("SASL authentication.")
                    .attribute(
                        Attribute::optional("iam", Type::Bool).describe("IAM access control."),
                    )
                    .attribute(
                        Attribute::optional("scram", Type::Bool)
                            .describe("SASL/SCRAM with secrets in AWS Secrets Manager."),
                    ),
            ))
            .block(NestedBlock::single(
                "tls",
                Block::new("Mutual TLS authentication.").attribute(
                    Attribute::optional("certificate_authority_arns", Type::list(Type::String))
                        .describe("ARNs of AWS Private CAs that issue client certificates."),
                ),
            )),
    );
    let configuration = NestedBlock::single(
        "configuration_info",
        Block::new(
            "The MSK configuration the brokers run with (UpdateClusterConfiguration in place).",
        )
        .attribute(
            Attribute::required("arn", Type::String).describe("ARN of a ferry_msk_configuration."),
        )
        .attribute(
            Attribute::required("revision", Type::Number)
                .describe("Its revision, e.g. ferry_msk_configuration.x.latest_revision.")
                .validate(Validator::int_range(
                    1,
                    i64::from(i32::MAX),
                    "Invalid revision",
                )),
        ),
    );
    let exporter = |name: &str, what: &str| {
        NestedBlock::single(
            name,
            Block::new(what).attribute(enabled("Whether the exporter runs on the brokers.")),
        )
    };
    let open_monitoring = NestedBlock::single(
        "open_monitoring",
        Block::new("Open monitoring with Prometheus (UpdateMonitoring in place).").block(
            NestedBlock::single(
                "prometheus",
                Block::new(
                    "Prometheus exporters on every broker (JMX on port 11001, node on 11002).",
                )
                .block(exporter("jmx_exporter", "The JMX exporter."))
                .block(exporter("node_exporter", "The node exporter.")),
            ),
        ),
    );
    let logging = NestedBlock::single(
        "logging_info",
        Block::new("Broker log delivery (UpdateMonitoring in place).").block(NestedBlock::single(
            "broker_logs",
            Block::new("Where broker logs go.")
                .block(NestedBlock::single(
                    "cloudwatch_logs",
                    Block::new("CloudWatch Logs.")
                        .attribute(
                            Attribute::required("enabled", Type::Bool)
                                .describe("Whether logs go there."),
                        )
                        .attribute(
                            Attribute::optional("log_group", Type::String)
                                .describe("Log group name."),
                        ),
                ))
                .block(NestedBlock::single(
                    "firehose",
                    Block::new("Kinesis Data Firehose.")
                        .attribute(
                            Attribute::required("enabled", Type::Bool)
                                .describe("Whether logs go there."),
                        )
                        .attribute(
                            Attribute::optional("delivery_stream", Type::String)
                                .describe("Delivery stream name."),
                        ),
                ))
                .block(NestedBlock::single(
                    "s3",
                    Block::new("Amazon S3.")
                        .attribute(
                            Attribute::required("enabled", Type::Bool)
                                .describe("Whether logs go there."),
                        )
                        .attribute(
                            Attribute::optional("bucket", Type::String).describe("Bucket name."),
                        )
                        .attribute(
                            Attribute::optional("prefix", Type::String).describe("Key prefix."),
                        ),
                )),
        )),
    );

    Schema {
        version: 0,
        block: Block::new(
            "An Amazon MSK provisioned cluster. Create waits until it is ACTIVE; changes AWS can make in \
             place are applied one cluster operation at a time, each awaited; the rest replace the cluster. \
             Its bootstrap broker strings feed `ferry_topic`'s and `ferry_mirror`'s cluster blocks.",
        )
        .attribute(Attribute::computed("id", Type::String).describe("The cluster ARN.").use_state_for_unknown())
        .attribute(Attribute::computed("arn", Type::String).describe("The cluster ARN.").use_state_for_unknown())
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
            Attribute::required("kafka_version", Type::String)
                .describe("Apache Kafka version, e.g. \"3.6.0\". Changes in place (UpdateClusterKafkaVersion)."),
        )
        .attribute(
            Attribute::required("number_of_broker_nodes", Type::Number)
                .describe("Brokers in the cluster, a multiple of the number of client subnets. Changes in place (UpdateBrokerCount).")
                .validate(Validator::int_range(1, 60, "Invalid broker count")),
        )
        .attribute(
            Attribute::optional("enhanced_monitoring", Type::String)
                .describe("CloudWatch metrics level (UpdateMonitoring in place).")
                .validate(Validator::one_of(ENHANCED_MONITORING, "Invalid enhanced_monitoring"))
                .default(Value::string("DEFAULT")),
        )
        .attribute(
            Attribute::optional("storage_mode", Type::String)
                .describe("LOCAL or TIERED storage.")
                .validate(Validator::one_of(STORAGE_MODES, "Invalid storage_mode"))
                .default(Value::string("LOCAL"))
                .requires_replace(),
        )
        .attribute(
            Attribute::optional("tags", Type::map(Type::String))
                .describe("Tags of the cluster (TagResource / UntagResource in place)."),
        )
        .attribute(Attribute::computed("current_version", Type::String).describe(
            "The cluster's version token, which every update names; it changes with each cluster operation.",
        ))
        .attribute(Attribute::computed("state", Type::String).describe("ACTIVE, CREATING, UPDATING, ..."))
        .attribute(bootstrap("bootstrap_brokers", "PLAINTEXT"))
        .attribute(bootstrap("bootstrap_brokers_tls", "TLS"))
        .attribute(bootstrap("bootstrap_brokers_sasl_scram", "SASL/SCRAM"))
        .attribute(bootstrap("bootstrap_brokers_sasl_iam", "SASL/IAM"))
        .attribute(bootstrap("bootstrap_brokers_public_tls", "public TLS"))
        .attribute(bootstrap("bootstrap_brokers_public_sasl_scram", "public SASL/SCRAM"))
        .attribute(bootstrap("bootstrap_brokers_public_sasl_iam", "public SASL/IAM"))
        .attribute(
            Attribute::computed("zookeeper_connect_string", Type::String)
                .describe("ZooKeeper connection string (ZooKeeper-mode clusters only).")
                .use_state_for_unknown(),
        )
        .attribute(
            Attribute::computed("zookeeper_connect_string_tls", Type::String)
                .describe("ZooKeeper TLS connection string (ZooKeeper-mode clusters only).")
                .use_state_for_unknown(),
        )
        .block(broker_node_group)
        .block(encryption)
        .block(client_auth)
        .block(configuration)
        .block(open_monitoring)
        .block(logging)
        .block(timeouts::block()),
    }
}

pub fn check_cluster_name(v: &Value, at: &tfplugin::AttributePath, d: &mut tfplugin::Diagnostics) {
    let Some(s) = v.as_str() else { return };
    let ok = (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        d.attribute_error(
            at.clone(),
            "Invalid cluster name",
            format!(
                "{s:?}: start with a letter, then letters, digits and '-', at most 64 characters."
            ),
        );
    }
}

// ------------------------------------------------------------------------------ model → AWS

fn b(v: &Tf<bool>) -> Option<bool> {
    v.known().copied()
}
fn s(v: &Tf<String>) -> Option<String> {
    v.known().cloned()
}
fn i(v: &Tf<i64>) -> Option<i32> {
    v.known().map(|x| *x as i32)
}

impl ClusterModel {
    pub fn ebs(&self) -> Option<EbsModel> {
        self.broker_node_group_info
            .known()?
            .storage_info
            .known()?
            .ebs_storage_info
            .known()
            .cloned()
    }
    pub fn public_access(&self) -> Option<String> {
        self.broker_node_group_info
            .known()?
            .connectivity_info
            .known()?
            .public_access
            .known()?
            .r#type
            .known()
            .cloned()
    }
    pub fn client_broker(&self) -> Option<String> {
        self.encryption_info
            .known()?
            .encryption_in_transit
            .known()?
            .client_broker
            .known()
            .cloned()
    }
}

pub fn throughput(m: &Tf<ThroughputModel>) -> Option<t::ProvisionedThroughput> {
    m.known().map(|p| {
        t::ProvisionedThroughput::builder()
            .set_enabled(b(&p.enabled))
            .set_volume_throughput(i(&p.volume_throughput))
            .build()
    })
}

pub fn connectivity(public: Option<String>) -> t::ConnectivityInfo {
    t::ConnectivityInfo::builder()
        .public_access(t::PublicAccess::builder().set_type(public).build())
        .build()
}

pub fn broker_node_group(m: &BrokerNodeGroupModel) -> t::BrokerNodeGroupInfo {
    let ebs = m
        .storage_info
        .known()
        .and_then(|s| s.ebs_storage_info.known())
        .map(|e| {
            t::StorageInfo::builder()
                .ebs_storage_info(
                    t::EbsStorageInfo::builder()
                        .set_volume_size(i(&e.volume_size))
                        .set_provisioned_throughput(throughput(&e.provisioned_throughput))
                        .build(),
                )
                .build()
        });
    let public = m
        .connectivity_info
        .known()
        .and_then(|c| c.public_access.known())
        .map(|p| connectivity(s(&p.r#type)));
    t::BrokerNodeGroupInfo::builder()
        .set_instance_type(s(&m.instance_type))
        .set_client_subnets(m.client_subnets.known().cloned())
        .set_security_groups(m.security_groups.known().cloned())
        .set_storage_info(ebs)
        .set_connectivity_info(public)
        .build()
}

pub fn encryption(m: &EncryptionModel) -> t::EncryptionInfo {
    t::EncryptionInfo::builder()
        .set_encryption_at_rest(s(&m.encryption_at_rest_kms_key_arn).map(|k| {
            t::EncryptionAtRest::builder()
                .data_volume_kms_key_id(k)
                .build()
        }))
        .set_encryption_in_transit(m.encryption_in_transit.known().map(in_transit))
        .build()
}

pub fn in_transit(m: &InTransitModel) -> t::EncryptionInTransit {
    t::EncryptionInTransit::builder()
        .set_client_broker(s(&m.client_broker).map(|c| ClientBroker::from(c.as_str())))
        .set_in_cluster(b(&m.in_cluster))
        .build()
}

pub fn client_auth(m: &ClientAuthModel) -> t::ClientAuthentication {
    t::ClientAuthentication::builder()
        .set_sasl(m.sasl.known().map(|x| {
            t::Sasl::builder()
                .set_iam(b(&x.iam).map(|e| t::Iam::builder().enabled(e).build()))
                .set_scram(b(&x.scram).map(|e| t::Scram::builder().enabled(e).build()))
                .build()
        }))
        .set_tls(m.tls.known().map(|x| {
            let arns = x.certificate_authority_arns.known().cloned();
            t::Tls::builder()
                .enabled(arns.as_ref().is_some_and(|a| !a.is_empty()))
                .set_certificate_authority_arn_list(arns)
                .build()
        }))
        .set_unauthenticated(
            b(&m.unauthenticated).map(|e| t::Unauthenticated::builder().enabled(e).build()),
        )
        .build()
}

pub fn configuration_info(m: &ConfigurationInfoModel) -> t::ConfigurationInfo {
    t::ConfigurationInfo::builder()
        .set_arn(s(&m.arn))
        .set_revision(m.revision.known().copied())
        .build()
}

pub fn open_monitoring(m: &Tf<OpenMonitoringModel>) -> t::OpenMonitoringInfo {
    let p = m.known().and_then(|o| o.prometheus.known());
    let on = |e: Option<&Tf<ExporterModel>>| {
        e.and_then(|x| x.known())
            .and_then(|x| b(&x.enabled_in_broker))
            .unwrap_or(false)
    };
    t::OpenMonitoringInfo::builder()
        .prometheus(
            t::PrometheusInfo::builder()
                .jmx_exporter(
                    t::JmxExporterInfo::builder()
                        .enabled_in_broker(on(p.map(|p| &p.jmx_exporter)))
                        .build(),
                )
                .node_exporter(
                    t::NodeExporterInfo::builder()
                        .enabled_in_broker(on(p.map(|p| &p.node_exporter)))
                        .build(),
                )
                .build(),
        )
        .build()
}

pub fn logging(m: &Tf<LoggingModel>) -> t::LoggingInfo {
    let logs = m.known().and_then(|l| l.broker_logs.known());
    let cw = logs.and_then(|l| l.cloudwatch_logs.known());
    let fh = logs.and_then(|l| l.firehose.known());
    let s3 = logs.and_then(|l| l.s3.known());
    t::LoggingInfo::builder()
        .broker_logs(
            t::BrokerLogs::builder()
                .cloud_watch_logs(
                    t::CloudWatchLogs::builder()
                        .enabled(cw.and_then(|c| b(&c.enabled)).unwrap_or(false))
                        .set_log_group(cw.and_then(|c| s(&c.log_group)))
                        .build(),
                )
                .firehose(
                    t::Firehose::builder()
                        .enabled(fh.and_then(|c| b(&c.enabled)).unwrap_or(false))
                        .set_delivery_stream(fh.and_then(|c| s(&c.delivery_stream)))
                        .build(),
                )
                .s3(t::S3::builder()
                    .enabled(s3.and_then(|c| b(&c.enabled)).unwrap_or(false))
                    .set_bucket(s3.and_then(|c| s(&c.bucket)))
                    .set_prefix(s3.and_then(|c| s(&c.prefix)))
                    .build())
                .build(),
        )
        .build()
}

pub fn enhanced(m: &ClusterModel) -> EnhancedMonitoring {
    EnhancedMonitoring::from(m.enhanced_monitoring.or("DEFAULT".into()).as_str())
}

pub fn storage_mode(m: &ClusterModel) -> StorageMode {
    StorageMode::from(m.storage_mode.or("LOCAL".into()).as_str())
}

pub fn tags(m: &ClusterModel) -> HashMap<String, String> {
    m.tags.or(BTreeMap::new()).into_iter().collect()
}

// ------------------------------------------------------------------------------ AWS → model

/// The state for `info`, keeping what the configuration (in `prior`) does not manage null.
pub fn from_info(prior: &ClusterModel, info: &ClusterInfo, importing: bool) -> ClusterModel {
    let arn = info.cluster_arn().map(str::to_string);
    let software = info.current_broker_software_info();
    let bng = info.broker_node_group_info();
    let prior_bng = prior
        .broker_node_group_info
        .known()
        .cloned()
        .unwrap_or_default();
    let broker_node_group_info = pick(
        &prior.broker_node_group_info,
        importing,
        bng.map(|g| from_broker_node_group(&prior_bng, g, importing)),
    );
    let prior_enc = prior.encryption_info.known().cloned().unwrap_or_default();
    let prior_auth = prior
        .client_authentication
        .known()
        .cloned()
        .unwrap_or_default();
    let prior_mon = prior.open_monitoring.known().cloned().unwrap_or_default();
    let prior_log = prior.logging_info.known().cloned().unwrap_or_default();
    let configuration = software.and_then(|s| {
        Some(ConfigurationInfoModel {
            arn: Tf::Known(s.configuration_arn()?.to_string()),
            revision: s.configuration_revision().into(),
        })
    });
    let tags: BTreeMap<String, String> = info
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    ClusterModel {
        id: arn.clone().into(),
        arn: arn.into(),
        cluster_name: info.cluster_name().map(str::to_string).into(),
        kafka_version: software
            .and_then(|s| s.kafka_version())
            .map(str::to_string)
            .into(),
        number_of_broker_nodes: info.number_of_broker_nodes().map(i64::from).into(),
        enhanced_monitoring: Tf::Known(
            info.enhanced_monitoring()
                .map_or("DEFAULT", |e| e.as_str())
                .to_string(),
        ),
        storage_mode: Tf::Known(
            info.storage_mode()
                .map_or("LOCAL", |e| e.as_str())
                .to_string(),
        ),
        tags: if tags.is_empty() && (prior.tags.is_null() || importing) {
            Tf::Null
        } else {
            Tf::Known(tags)
        },
        current_version: info.current_version().map(str::to_string).into(),
        state: info.state().map(|s| s.as_str().to_string()).into(),
        zookeeper_connect_string: non_empty(info.zookeeper_connect_string()),
        zookeeper_connect_string_tls: non_empty(info.zookeeper_connect_string_tls()),
        broker_node_group_info,
        encryption_info: pick(
            &prior.encryption_info,
            importing,
            info.encryption_info()
                .map(|e| from_encryption(&prior_enc, e, importing)),
        ),
        client_authentication: pick(
            &prior.client_authentication,
            importing,
            unless_empty(
                importing,
                info.client_authentication()
                    .map(|a| from_client_auth(&prior_auth, a, importing)),
            ),
        ),
        configuration_info: pick(&prior.configuration_info, importing, configuration),
        open_monitoring: pick(
            &prior.open_monitoring,
            importing,
            info.open_monitoring()
                .map(|o| from_open_monitoring(&prior_mon, o, importing)),
        ),
        logging_info: pick(
            &prior.logging_info,
            importing,
            unless_empty(
                importing,
                info.logging_info()
                    .map(|l| from_logging(&prior_log, l, importing)),
            ),
        ),
        timeouts: prior.timeouts.clone(),
        // Bootstrap strings come from GetBootstrapBrokers.
        ..prior.clone()
    }
}

/// On import, a block AWS reports with nothing in it (`"clientAuthentication": {}`) is not
/// adopted: the configuration that matches such a cluster has no such block.
fn unless_empty<T: Default + PartialEq>(importing: bool, v: Option<T>) -> Option<T> {
    v.filter(|x| !importing || *x != T::default())
}

pub fn set_bootstrap(m: &mut ClusterModel, out: &GetBootstrapBrokersOutput) {
    m.bootstrap_brokers = non_empty(out.bootstrap_broker_string());
    m.bootstrap_brokers_tls = non_empty(out.bootstrap_broker_string_tls());
    m.bootstrap_brokers_sasl_scram = non_empty(out.bootstrap_broker_string_sasl_scram());
    m.bootstrap_brokers_sasl_iam = non_empty(out.bootstrap_broker_string_sasl_iam());
    m.bootstrap_brokers_public_tls = non_empty(out.bootstrap_broker_string_public_tls());
    m.bootstrap_brokers_public_sasl_scram =
        non_empty(out.bootstrap_broker_string_public_sasl_scram());
    m.bootstrap_brokers_public_sasl_iam = non_empty(out.bootstrap_broker_string_public_sasl_iam());
}

/// Bootstrap strings that could not be read stay null, never unknown, in a saved state.
pub fn settle_bootstrap(m: &mut ClusterModel) {
    for f in [
        &mut m.bootstrap_brokers,
        &mut m.bootstrap_brokers_tls,
        &mut m.bootstrap_brokers_sasl_scram,
        &mut m.bootstrap_brokers_sasl_iam,
        &mut m.bootstrap_brokers_public_tls,
        &mut m.bootstrap_brokers_public_sasl_scram,
        &mut m.bootstrap_brokers_public_sasl_iam,
        &mut m.zookeeper_connect_string,
        &mut m.zookeeper_connect_string_tls,
        &mut m.current_version,
        &mut m.state,
    ] {
        if f.is_unknown() {
            *f = Tf::Null;
        }
    }
}

fn from_broker_node_group(
    prior: &BrokerNodeGroupModel,
    g: &t::BrokerNodeGroupInfo,
    importing: bool,
) -> BrokerNodeGroupModel {
    let prior_storage = prior.storage_info.known().cloned().unwrap_or_default();
    let prior_ebs = prior_storage
        .ebs_storage_info
        .known()
        .cloned()
        .unwrap_or_default();
    let ebs = g
        .storage_info()
        .and_then(|s| s.ebs_storage_info())
        .map(|e| EbsModel {
            volume_size: e.volume_size().map(i64::from).into(),
            provisioned_throughput: pick(
                &prior_ebs.provisioned_throughput,
                importing,
                e.provisioned_throughput().map(|p| ThroughputModel {
                    enabled: p.enabled().into(),
                    volume_throughput: p.volume_throughput().map(i64::from).into(),
                }),
            ),
        });
    let storage = ebs.map(|e| StorageInfoModel {
        ebs_storage_info: pick(&prior_storage.ebs_storage_info, importing, Some(e)),
    });
    let prior_conn = prior.connectivity_info.known().cloned().unwrap_or_default();
    let conn = g.connectivity_info().map(|c| ConnectivityModel {
        public_access: pick(
            &prior_conn.public_access,
            importing,
            c.public_access().map(|p| PublicAccessModel {
                r#type: p.r#type().unwrap_or("DISABLED").to_string().into(),
            }),
        ),
    });
    BrokerNodeGroupModel {
        instance_type: g.instance_type().map(str::to_string).into(),
        client_subnets: Tf::Known(g.client_subnets().to_vec()),
        security_groups: pick(
            &prior.security_groups,
            importing,
            Some(g.security_groups().to_vec()).filter(|v| !v.is_empty()),
        ),
        storage_info: pick(&prior.storage_info, importing, storage),
        connectivity_info: pick(&prior.connectivity_info, importing, conn),
    }
}

fn from_encryption(
    prior: &EncryptionModel,
    e: &t::EncryptionInfo,
    importing: bool,
) -> EncryptionModel {
    let transit = e.encryption_in_transit();
    EncryptionModel {
        encryption_at_rest_kms_key_arn: non_empty(
            e.encryption_at_rest()
                .and_then(|r| r.data_volume_kms_key_id()),
        ),
        encryption_in_transit: pick(
            &prior.encryption_in_transit,
            importing,
            Some(InTransitModel {
                // AWS's defaults when the cluster reports nothing.
                client_broker: Tf::Known(
                    transit
                        .and_then(|t| t.client_broker())
                        .map_or("TLS", |c| c.as_str())
                        .to_string(),
                ),
                in_cluster: Tf::Known(transit.and_then(|t| t.in_cluster()).unwrap_or(true)),
            }),
        ),
    }
}

fn from_client_auth(
    prior: &ClientAuthModel,
    a: &t::ClientAuthentication,
    importing: bool,
) -> ClientAuthModel {
    ClientAuthModel {
        unauthenticated: pick(
            &prior.unauthenticated,
            importing,
            a.unauthenticated().and_then(|u| u.enabled()),
        ),
        sasl: pick(
            &prior.sasl,
            importing,
            a.sasl().map(|x| SaslAuthModel {
                iam: x.iam().and_then(|v| v.enabled()).into(),
                scram: x.scram().and_then(|v| v.enabled()).into(),
            }),
        ),
        tls: pick(
            &prior.tls,
            importing,
            a.tls().map(|x| TlsAuthModel {
                certificate_authority_arns: Some(x.certificate_authority_arn_list().to_vec())
                    .filter(|v| !v.is_empty())
                    .into(),
            }),
        ),
    }
}

fn from_open_monitoring(
    prior: &OpenMonitoringModel,
    o: &t::OpenMonitoring,
    importing: bool,
) -> OpenMonitoringModel {
    let prior_p = prior.prometheus.known().cloned().unwrap_or_default();
    OpenMonitoringModel {
        prometheus: pick(
            &prior.prometheus,
            importing,
            o.prometheus().map(|p| PrometheusModel {
                jmx_exporter: pick(
                    &prior_p.jmx_exporter,
                    importing,
                    p.jmx_exporter().map(|j| ExporterModel {
                        enabled_in_broker: j.enabled_in_broker().into(),
                    }),
                ),
                node_exporter: pick(
                    &prior_p.node_exporter,
                    importing,
                    p.node_exporter().map(|j| ExporterModel {
                        enabled_in_broker: j.enabled_in_broker().into(),
                    }),
                ),
            }),
        ),
    }
}

fn from_logging(prior: &LoggingModel, l: &t::LoggingInfo, importing: bool) -> LoggingModel {
    let prior_b = prior.broker_logs.known().cloned().unwrap_or_default();
    LoggingModel {
        broker_logs: pick(
            &prior.broker_logs,
            importing,
            unless_empty(
                importing,
                l.broker_logs().map(|bl| BrokerLogsModel {
                    cloudwatch_logs: pick(
                        &prior_b.cloudwatch_logs,
                        importing,
                        bl.cloud_watch_logs().map(|c| CloudwatchModel {
                            enabled: c.enabled().into(),
                            log_group: c.log_group().map(str::to_string).into(),
                        }),
                    ),
                    firehose: pick(
                        &prior_b.firehose,
                        importing,
                        bl.firehose().map(|c| FirehoseModel {
                            enabled: c.enabled().into(),
                            delivery_stream: c.delivery_stream().map(str::to_string).into(),
                        }),
                    ),
                    s3: pick(
                        &prior_b.s3,
                        importing,
                        bl.s3().map(|c| S3Model {
                            enabled: c.enabled().into(),
                            bucket: c.bucket().map(str::to_string).into(),
                            prefix: c.prefix().map(str::to_string).into(),
                        }),
                    ),
                }),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::model::check_model_matches;

    fn nested(b: &Block, name: &str) -> Block {
        b.blocks
            .iter()
            .find(|x| x.name == name)
            .unwrap()
            .block
            .clone()
    }

    #[test]
    fn schema_and_models_agree() {
        let s = schema().block;
        check_model_matches::<ClusterModel>(&s).unwrap();
        let bng = nested(&s, "broker_node_group_info");
        check_model_matches::<BrokerNodeGroupModel>(&bng).unwrap();
        let storage = nested(&bng, "storage_info");
        check_model_matches::<StorageInfoModel>(&storage).unwrap();
        let ebs = nested(&storage, "ebs_storage_info");
        check_model_matches::<EbsModel>(&ebs).unwrap();
        check_model_matches::<ThroughputModel>(&nested(&ebs, "provisioned_throughput")).unwrap();
        let conn = nested(&bng, "connectivity_info");
        check_model_matches::<ConnectivityModel>(&conn).unwrap();
        check_model_matches::<PublicAccessModel>(&nested(&conn, "public_access")).unwrap();
        let enc = nested(&s, "encryption_info");
        check_model_matches::<EncryptionModel>(&enc).unwrap();
        check_model_matches::<InTransitModel>(&nested(&enc, "encryption_in_transit")).unwrap();
        let auth = nested(&s, "client_authentication");
        check_model_matches::<ClientAuthModel>(&auth).unwrap();
        check_model_matches::<SaslAuthModel>(&nested(&auth, "sasl")).unwrap();
        check_model_matches::<TlsAuthModel>(&nested(&auth, "tls")).unwrap();
        check_model_matches::<ConfigurationInfoModel>(&nested(&s, "configuration_info")).unwrap();
        let om = nested(&s, "open_monitoring");
        check_model_matches::<OpenMonitoringModel>(&om).unwrap();
        let prom = nested(&om, "prometheus");
        check_model_matches::<PrometheusModel>(&prom).unwrap();
        check_model_matches::<ExporterModel>(&nested(&prom, "jmx_exporter")).unwrap();
        let log = nested(&s, "logging_info");
        check_model_matches::<LoggingModel>(&log).unwrap();
        let bl = nested(&log, "broker_logs");
        check_model_matches::<BrokerLogsModel>(&bl).unwrap();
        check_model_matches::<CloudwatchModel>(&nested(&bl, "cloudwatch_logs")).unwrap();
        check_model_matches::<FirehoseModel>(&nested(&bl, "firehose")).unwrap();
        check_model_matches::<S3Model>(&nested(&bl, "s3")).unwrap();
    }

    #[test]
    fn cluster_names_follow_aws_rules() {
        let mut d = tfplugin::Diagnostics::default();
        let at = tfplugin::AttributePath::root("cluster_name");
        for ok in ["a", "ferry-target-1"] {
            check_cluster_name(&Value::string(ok), &at, &mut d);
        }
        assert!(!d.has_errors());
        for bad in ["1abc", "has_underscore", ""] {
            let mut d = tfplugin::Diagnostics::default();
            check_cluster_name(&Value::string(bad), &at, &mut d);
            assert!(d.has_errors(), "{bad:?} must be rejected");
        }
    }
}
