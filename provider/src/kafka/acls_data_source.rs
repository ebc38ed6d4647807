//! `data "ferry_acls"`: the ACLs of a cluster, filtered by principal, resource and more.

use async_trait::async_trait;
use ferry_kafka::{AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType};
use tfplugin::{Attribute, Block, DataSource, Diagnostics, Model, Schema, Tf, Type, Validator};

use super::acl::{binding_id, report_acl_error};
use super::connection::{ConnectionModel, cluster_block};
use crate::provider::{Ctx, FerryData};

pub struct AclsDataSource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct AclsDataModel {
    pub principal: Tf<String>,
    pub host: Tf<String>,
    pub operation: Tf<String>,
    pub permission: Tf<String>,
    pub resource_type: Tf<String>,
    pub resource_name: Tf<String>,
    pub pattern_type: Tf<String>,
    pub id: Tf<String>,
    pub acls: Tf<Vec<AclEntry>>,
    pub cluster: Tf<ConnectionModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct AclEntry {
    pub id: Tf<String>,
    pub principal: Tf<String>,
    pub host: Tf<String>,
    pub operation: Tf<String>,
    pub permission: Tf<String>,
    pub resource_type: Tf<String>,
    pub resource_name: Tf<String>,
    pub pattern_type: Tf<String>,
}

const ENTRY_FIELDS: [&str; 8] = [
    "id",
    "principal",
    "host",
    "operation",
    "permission",
    "resource_type",
    "resource_name",
    "pattern_type",
];

fn schema() -> Schema {
    let filter = |name: &str, what: &str| {
        Attribute::optional(name, Type::String).describe(&format!("Only ACLs with this {what}."))
    };
    Schema {
        version: 0,
        block: Block::new(
            "Lists a cluster's ACLs. Every filter is optional; leaving them all out lists every ACL. \
             Filters match the ACLs' own fields exactly (a resource_name filter does not return \
             PREFIXED ACLs whose prefix would cover the name).",
        )
        .attribute(filter("principal", "principal, e.g. `User:alice`"))
        .attribute(filter("host", "host"))
        .attribute(
            filter("operation", "operation")
                .validate(Validator::one_of(AclOperation::NAMES, "Invalid ACL operation")),
        )
        .attribute(
            filter("permission", "permission")
                .validate(Validator::one_of(AclPermission::NAMES, "Invalid ACL permission")),
        )
        .attribute(
            filter("resource_type", "resource type")
                .validate(Validator::one_of(AclResourceType::NAMES, "Invalid ACL resource type")),
        )
        .attribute(filter("resource_name", "resource name"))
        .attribute(
            filter("pattern_type", "pattern type")
                .validate(Validator::one_of(AclPatternType::NAMES, "Invalid ACL pattern type")),
        )
        .attribute(Attribute::computed("id", Type::String).describe("The filter, as text."))
        .attribute(
            Attribute::computed(
                "acls",
                Type::list(Type::object(
                    ENTRY_FIELDS.iter().map(|f| (*f, Type::String)),
                )),
            )
            .describe(
                "The matching ACLs, sorted by resource type (TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID), resource name, pattern type, principal, host, operation and permission, each with the attributes of `ferry_acl` (its `id` is \
                 `ferry_acl`'s import id).",
            ),
        )
        .block(cluster_block()),
    }
}

impl AclsDataModel {
    fn filter(&self) -> AclFilter {
        AclFilter {
            principal: self.principal.known().cloned(),
            host: self.host.known().cloned(),
            operation: self.operation.known().and_then(|s| AclOperation::parse(s)),
            permission: self
                .permission
                .known()
                .and_then(|s| AclPermission::parse(s)),
            resource_type: self
                .resource_type
                .known()
                .and_then(|s| AclResourceType::parse(s)),
            resource_name: self.resource_name.known().cloned(),
            pattern_type: self
                .pattern_type
                .known()
                .and_then(|s| AclPatternType::parse(s)),
        }
    }

    fn filter_text(&self) -> String {
        let fields = [
            ("principal", &self.principal),
            ("host", &self.host),
            ("operation", &self.operation),
            ("permission", &self.permission),
            ("resource_type", &self.resource_type),
            ("resource_name", &self.resource_name),
            ("pattern_type", &self.pattern_type),
        ];
        let set: Vec<String> = fields
            .iter()
            .filter_map(|(k, v)| v.known().map(|v| format!("{k}={v}")))
            .collect();
        if set.is_empty() {
            "all".into()
        } else {
            set.join(",")
        }
    }
}

#[async_trait]
impl DataSource<FerryData> for AclsDataSource {
    type Model = AclsDataModel;

    fn type_name(&self) -> &'static str {
        "ferry_acls"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &AclsDataModel, diags: &mut Diagnostics) {
        super::connection::validate_cluster(&config.cluster, diags);
    }

    async fn read(
        &self,
        ctx: &Ctx,
        config: AclsDataModel,
        diags: &mut Diagnostics,
    ) -> Option<AclsDataModel> {
        let admin = ctx.data().admin(&config.cluster, diags).await?;
        let found = match admin.describe_acls(&config.filter()).await {
            Ok(f) => f,
            Err(e) => {
                report_acl_error(diags, "Could not list ACLs", &e);
                return None;
            }
        };
        let acls = found
            .iter()
            .map(|b| AclEntry {
                id: Tf::Known(binding_id(b)),
                principal: Tf::Known(b.principal.clone()),
                host: Tf::Known(b.host.clone()),
                operation: Tf::Known(b.operation.name().into()),
                permission: Tf::Known(b.permission.name().into()),
                resource_type: Tf::Known(b.resource_type.name().into()),
                resource_name: Tf::Known(b.resource_name.clone()),
                pattern_type: Tf::Known(b.pattern_type.name().into()),
            })
            .collect();
        Some(AclsDataModel {
            id: Tf::Known(config.filter_text()),
            acls: Tf::Known(acls),
            ..config
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_matches_schema() {
        tfplugin::model::check_model_matches::<AclsDataModel>(&schema().block).unwrap();
        let mut fields = AclEntry::ATTRIBUTES.to_vec();
        fields.sort_unstable();
        let mut expected = ENTRY_FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(fields, expected);
    }

    #[test]
    fn unset_filters_match_anything() {
        let m = AclsDataModel {
            principal: "User:a".into(),
            resource_type: "TOPIC".into(),
            ..AclsDataModel::default()
        };
        let f = m.filter();
        assert_eq!(f.principal.as_deref(), Some("User:a"));
        assert_eq!(f.resource_type, Some(AclResourceType::Topic));
        assert_eq!((f.operation, f.pattern_type, f.host), (None, None, None));
        assert_eq!(m.filter_text(), "principal=User:a,resource_type=TOPIC");
        assert_eq!(AclsDataModel::default().filter_text(), "all");
    }
}
