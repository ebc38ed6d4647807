//! `ferry_acl`: one Kafka ACL binding. Every attribute identifies the binding, so any change
//! replaces it; each binding is its own object, so adding one to a `for_each` set touches no
//! other, and a binding deleted out of band is planned back (drift).

use std::time::Duration;

use async_trait::async_trait;
use ferry_kafka::{
    AclBinding, AclOperation, AclPatternType, AclPermission, AclResourceType, Admin, AdminError,
    KafkaErrorCode,
};
use tfplugin::{
    Attribute, AttributePath, Block, Diagnostics, Model, Resource, Schema, Tf, Type, Validator,
    Value,
};

use super::connection::{ConnectionModel, cluster_block};
use crate::provider::{Ctx, FerryData};

pub struct AclResource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct AclModel {
    pub id: Tf<String>,
    pub principal: Tf<String>,
    pub host: Tf<String>,
    pub operation: Tf<String>,
    pub permission: Tf<String>,
    pub resource_type: Tf<String>,
    pub resource_name: Tf<String>,
    pub pattern_type: Tf<String>,
    pub cluster: Tf<ConnectionModel>,
}

/// The import id: the seven fields joined by `|`, the resource name last (so a group or
/// transactional id containing `|` still parses).
pub const ID_FORMAT: &str =
    "principal|host|operation|permission|resource_type|pattern_type|resource_name";

pub fn binding_id(b: &AclBinding) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}|{}",
        b.principal,
        b.host,
        b.operation,
        b.permission,
        b.resource_type,
        b.pattern_type,
        b.resource_name
    )
}

pub fn parse_id(id: &str) -> Result<AclBinding, String> {
    let parts: Vec<&str> = id.splitn(7, '|').collect();
    let [
        principal,
        host,
        operation,
        permission,
        resource_type,
        pattern_type,
        resource_name,
    ] = parts[..]
    else {
        return Err(format!(
            "expected 7 fields separated by |, got {}",
            parts.len()
        ));
    };
    check_principal(principal)?;
    let bad = |what: &str, v: &str, names: &[&str]| {
        format!("{what} {v:?} is not one of {}", names.join(", "))
    };
    Ok(AclBinding {
        principal: principal.to_string(),
        host: host.to_string(),
        operation: AclOperation::parse(operation)
            .ok_or_else(|| bad("operation", operation, AclOperation::NAMES))?,
        permission: AclPermission::parse(permission)
            .ok_or_else(|| bad("permission", permission, AclPermission::NAMES))?,
        resource_type: AclResourceType::parse(resource_type)
            .ok_or_else(|| bad("resource type", resource_type, AclResourceType::NAMES))?,
        pattern_type: AclPatternType::parse(pattern_type)
            .ok_or_else(|| bad("pattern type", pattern_type, AclPatternType::NAMES))?,
        resource_name: resource_name.to_string(),
    })
    .and_then(|b| {
        if b.resource_name.is_empty() {
            Err("the resource name is empty".into())
        } else if b.host.is_empty() {
            Err("the host is empty (use * for any host)".into())
        } else {
            Ok(b)
        }
    })
}

/// `Type:name`, as Kafka parses principals (`User:alice`, `User:CN=client,O=example`).
pub fn check_principal(p: &str) -> Result<(), String> {
    match p.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(format!(
            "{p:?} is not a principal; write Type:name, e.g. \"User:alice\""
        )),
    }
}

fn principal_validator() -> Validator {
    Validator::custom(
        "Invalid principal",
        "`Type:name`, e.g. `User:alice` or `User:CN=client,O=example` (mutual TLS).",
        |value, path, diags| {
            if let Value::String(s) = value
                && let Err(why) = check_principal(s)
            {
                diags.attribute_error(path.clone(), "Invalid principal", why);
            }
        },
    )
}

fn names(list: &'static [&'static str], summary: &'static str) -> Validator {
    Validator::one_of(list, summary)
}

pub fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block::new(
            "One Kafka ACL: whether `principal` may perform `operation` on a resource from \
             `host`. The cluster needs an authorizer (`authorizer.class.name`; on MSK, IAM or \
             SASL/SCRAM with ACLs enabled). Every attribute identifies the ACL, so changing one \
             replaces it.",
        )
        .attribute(
            Attribute::computed("id", Type::String)
                .describe(&format!(
                    "The ACL's fields joined by `|`: `{ID_FORMAT}`. Also the import id."
                ))
                .use_state_for_unknown(),
        )
        .attribute(
            Attribute::required("principal", Type::String)
                .describe("Who the ACL is for, e.g. `User:alice`.")
                .validate(principal_validator())
                .requires_replace(),
        )
        .attribute(
            Attribute::optional_computed("host", Type::String)
                .describe("The client address the ACL applies to; `*` (default) for any host.")
                .default(Value::string("*"))
                .requires_replace(),
        )
        .attribute(
            Attribute::required("operation", Type::String)
                .describe("The operation allowed or denied.")
                .validate(names(AclOperation::NAMES, "Invalid ACL operation"))
                .requires_replace(),
        )
        .attribute(
            Attribute::optional_computed("permission", Type::String)
                .describe("`ALLOW` (default) or `DENY`.")
                .default(Value::string("ALLOW"))
                .validate(names(AclPermission::NAMES, "Invalid ACL permission"))
                .requires_replace(),
        )
        .attribute(
            Attribute::required("resource_type", Type::String)
                .describe("The kind of resource protected.")
                .validate(names(AclResourceType::NAMES, "Invalid ACL resource type"))
                .requires_replace(),
        )
        .attribute(
            Attribute::required("resource_name", Type::String)
                .describe(
                    "The resource's name (a topic, group or transactional id; `kafka-cluster` for \
                     CLUSTER), or with `pattern_type = \"PREFIXED\"` a name prefix. `*` with \
                     LITERAL means every resource of the type.",
                )
                .requires_replace(),
        )
        .attribute(
            Attribute::optional_computed("pattern_type", Type::String)
                .describe(
                    "`LITERAL` (default): the name exactly; `PREFIXED`: every name starting with it.",
                )
                .default(Value::string("LITERAL"))
                .validate(names(AclPatternType::NAMES, "Invalid ACL pattern type"))
                .requires_replace(),
        )
        .block(cluster_block()),
    }
}

impl AclModel {
    /// The binding, when every field is known and valid (validators ran at validate time).
    fn binding(&self) -> Option<AclBinding> {
        Some(AclBinding {
            principal: self.principal.known()?.clone(),
            host: self.host.known().cloned().unwrap_or_else(|| "*".into()),
            operation: AclOperation::parse(self.operation.known()?)?,
            permission: AclPermission::parse(self.permission.known().map_or("ALLOW", |s| s))?,
            resource_type: AclResourceType::parse(self.resource_type.known()?)?,
            pattern_type: AclPatternType::parse(
                self.pattern_type.known().map_or("LITERAL", |s| s),
            )?,
            resource_name: self.resource_name.known()?.clone(),
        })
    }

    fn with_binding(self, b: &AclBinding) -> AclModel {
        AclModel {
            id: Tf::Known(binding_id(b)),
            principal: Tf::Known(b.principal.clone()),
            host: Tf::Known(b.host.clone()),
            operation: Tf::Known(b.operation.name().into()),
            permission: Tf::Known(b.permission.name().into()),
            resource_type: Tf::Known(b.resource_type.name().into()),
            resource_name: Tf::Known(b.resource_name.clone()),
            pattern_type: Tf::Known(b.pattern_type.name().into()),
            ..self
        }
    }
}

/// An ACL call's error as a diagnostic; a cluster without an authorizer is said plainly.
pub fn report_acl_error(diags: &mut Diagnostics, summary: &str, e: &AdminError) {
    if e.code() == Some(KafkaErrorCode::SecurityDisabled) {
        diags.error(
            summary,
            format!(
                "{e}. The cluster has no authorizer, so it keeps no ACLs: set \
                 authorizer.class.name on the brokers (StandardAuthorizer in KRaft), or on MSK \
                 enable IAM or SASL/SCRAM authentication."
            ),
        );
    } else {
        diags.error_from(None, summary, e);
    }
}

/// Kafka applies ACL changes through its metadata log: a read right after a create or delete
/// can still see the old set. Waits (briefly, within the connection's timeout) until it shows.
async fn wait_until(ctx: &Ctx, admin: &Admin, b: &AclBinding, present: bool) -> bool {
    let deadline = std::time::Instant::now() + admin.timeout();
    loop {
        if let Ok(found) = admin.describe_acls(&b.exact_filter()).await
            && found.contains(b) == present
        {
            return true;
        }
        if std::time::Instant::now() >= deadline
            || ctx.sleep(Duration::from_millis(100)).await.is_err()
        {
            return false;
        }
    }
}

#[async_trait]
impl Resource<FerryData> for AclResource {
    type Model = AclModel;

    fn type_name(&self) -> &'static str {
        "ferry_acl"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &AclModel, diags: &mut Diagnostics) {
        super::connection::validate_cluster(&config.cluster, diags);
    }

    async fn create(
        &self,
        ctx: &Ctx,
        planned: AclModel,
        diags: &mut Diagnostics,
    ) -> Option<AclModel> {
        let admin = ctx.data().admin(&planned.cluster, diags).await?;
        let Some(binding) = planned.binding() else {
            diags.error(
                "ACL values not known",
                "Every attribute of an ACL must be known at apply time.",
            );
            return None;
        };
        if let Err(e) = admin.create_acls(std::slice::from_ref(&binding)).await {
            report_acl_error(diags, "Could not create ACL", &e);
            return None;
        }
        if !wait_until(ctx, &admin, &binding, true).await {
            diags.attribute_warning(
                AttributePath::root("id"),
                "ACL created but not listed yet",
                "Kafka accepted the ACL but did not list it within the connection timeout.",
            );
        }
        Some(planned.with_binding(&binding))
    }

    async fn read(&self, ctx: &Ctx, state: AclModel, diags: &mut Diagnostics) -> Option<AclModel> {
        let Some(admin) = ctx.data().admin(&state.cluster, diags).await else {
            return Some(state);
        };
        let Some(binding) = state.binding() else {
            diags.error(
                "ACL state incomplete",
                "The stored state does not name a whole ACL.",
            );
            return Some(state);
        };
        match admin.describe_acls(&binding.exact_filter()).await {
            Ok(found) if found.contains(&binding) => Some(state.with_binding(&binding)),
            Ok(_) => None,
            Err(e) => {
                report_acl_error(diags, "Could not read ACL", &e);
                Some(state)
            }
        }
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        prior: AclModel,
        planned: AclModel,
        _diags: &mut Diagnostics,
    ) -> AclModel {
        // Every ACL attribute replaces; only the `cluster` block (local to Terraform) changes here.
        AclModel {
            cluster: planned.cluster,
            ..prior
        }
    }

    async fn delete(&self, ctx: &Ctx, prior: AclModel, diags: &mut Diagnostics) {
        let Some(admin) = ctx.data().admin(&prior.cluster, diags).await else {
            return;
        };
        let Some(binding) = prior.binding() else {
            return;
        };
        if let Err(e) = admin.delete_acls(&[binding.exact_filter()]).await {
            report_acl_error(diags, "Could not delete ACL", &e);
            return;
        }
        wait_until(ctx, &admin, &binding, false).await;
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<AclModel> {
        match parse_id(id) {
            Ok(b) => Some(AclModel::default().with_binding(&b)),
            Err(why) => {
                diags.error(
                    "Invalid import id",
                    format!("Import an ACL as {ID_FORMAT:?}, e.g. \"User:alice|*|READ|ALLOW|TOPIC|LITERAL|orders\"; {id:?}: {why}."),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_and_model_agree_and_everything_replaces() {
        let s = schema();
        tfplugin::model::check_model_matches::<AclModel>(&s.block).unwrap();
        for a in &s.block.attributes {
            if a.name != "id" {
                assert!(
                    a.has_modifier(|m| matches!(
                        m,
                        tfplugin::schema::PlanModifier::RequiresReplace
                    )),
                    "{} replaces",
                    a.name
                );
            }
        }
    }

    #[test]
    fn import_ids_round_trip_and_keep_bars_in_names() {
        let b = parse_id("User:alice|*|read|ALLOW|GROUP|PREFIXED|team|a").unwrap();
        assert_eq!(b.resource_name, "team|a");
        assert_eq!(b.operation, AclOperation::Read);
        assert_eq!(parse_id(&binding_id(&b)).unwrap(), b);
        assert_eq!(
            binding_id(&b),
            "User:alice|*|READ|ALLOW|GROUP|PREFIXED|team|a"
        );
    }

    #[test]
    fn bad_import_ids_say_why() {
        assert!(
            parse_id("User:alice|*|READ")
                .unwrap_err()
                .contains("7 fields")
        );
        assert!(
            parse_id("alice|*|READ|ALLOW|TOPIC|LITERAL|t")
                .unwrap_err()
                .contains("Type:name")
        );
        assert!(
            parse_id("User:a|*|FLY|ALLOW|TOPIC|LITERAL|t")
                .unwrap_err()
                .contains("operation")
        );
        assert!(
            parse_id("User:a|*|READ|ALLOW|TOPIC|MATCH|t")
                .unwrap_err()
                .contains("pattern type")
        );
        assert!(
            parse_id("User:a|*|READ|ALLOW|TOPIC|LITERAL|")
                .unwrap_err()
                .contains("empty")
        );
    }

    #[test]
    fn principals_need_a_type() {
        assert!(check_principal("User:CN=x,O=y").is_ok());
        assert!(check_principal("User:").is_err());
        assert!(check_principal("alice").is_err());
    }

    #[test]
    fn defaults_fill_a_binding() {
        let m = AclModel {
            principal: "User:a".into(),
            operation: "WRITE".into(),
            resource_type: "TOPIC".into(),
            resource_name: "t".into(),
            ..AclModel::default()
        };
        let b = m.binding().unwrap();
        assert_eq!(
            (b.host.as_str(), b.permission, b.pattern_type),
            ("*", AclPermission::Allow, AclPatternType::Literal)
        );
    }
}
