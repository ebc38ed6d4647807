//! `ferry_quota`: the client quotas of one Kafka quota entity (a user, a client id, a user
//! with a client id, or an IP address; each part may be the type's default entity).
//!
//! The resource owns the entity's quota keys: `config` lists them all, a key removed from
//! `config` is removed from Kafka, a key set or changed out of band is drift (planned back),
//! and destroy removes every key. An entity that already has quotas is not adopted on create:
//! it is imported.

use std::collections::BTreeMap;

use async_trait::async_trait;
use ferry_kafka::Admin;
use ferry_kafka::quota::{
    EntityName, QUOTA_KEYS, QuotaEntity, QuotaKey, format_quota_value, quota_key,
};
use tfplugin::{
    Attribute, AttributePath, Block, Diagnostics, Model, Resource, Schema, Tf, Type, Validator,
    Value,
};

use super::connection::{ConnectionModel, cluster_block};
use crate::provider::{Ctx, FerryData};

pub struct QuotaResource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct QuotaModel {
    pub id: Tf<String>,
    pub user: Tf<String>,
    pub default_user: Tf<bool>,
    pub client_id: Tf<String>,
    pub default_client_id: Tf<bool>,
    pub ip: Tf<String>,
    pub default_ip: Tf<bool>,
    pub config: Tf<BTreeMap<String, String>>,
    pub cluster: Tf<ConnectionModel>,
}

/// The import id, in the words of the attributes, parts joined by `|`.
pub const ID_EXAMPLES: &str = "`user=alice`, `user=alice|client_id=billing`, `default_user`, \
     `default_user|client_id=billing`, `user=alice|default_client_id`, `client_id=billing`, \
     `default_client_id`, `ip=192.0.2.10`, `default_ip`";

/// The entity's id: `user=NAME` or `default_user`, then `client_id=NAME` or
/// `default_client_id`, or `ip=ADDRESS` or `default_ip`, joined by `|`.
pub fn entity_id(e: &QuotaEntity) -> String {
    let part = |attr: &str, name: &Option<EntityName>| match name {
        None => None,
        Some(EntityName::Default) => Some(format!("default_{attr}")),
        Some(EntityName::Named(n)) => Some(format!("{attr}={n}")),
    };
    [
        part("user", &e.user),
        part("client_id", &e.client_id),
        part("ip", &e.ip),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("|")
}

/// Reads an id written by [`entity_id`]. A user name is everything up to `|client_id=` or a
/// final `|default_client_id`; a client id or address is the rest of the id.
pub fn parse_id(id: &str) -> Result<QuotaEntity, String> {
    fn client(rest: &str) -> Result<Option<EntityName>, String> {
        if rest == "default_client_id" {
            Ok(Some(EntityName::Default))
        } else if let Some(name) = rest.strip_prefix("client_id=") {
            Ok(Some(EntityName::Named(name.to_string())))
        } else {
            Err(format!(
                "{rest:?} is not `client_id=NAME` or `default_client_id`"
            ))
        }
    }
    let mut e = QuotaEntity::default();
    if id == "default_ip" {
        e.ip = Some(EntityName::Default);
    } else if let Some(address) = id.strip_prefix("ip=") {
        e.ip = Some(EntityName::Named(address.to_string()));
    } else if let Some(rest) = id.strip_prefix("default_user") {
        e.user = Some(EntityName::Default);
        if !rest.is_empty() {
            let Some(rest) = rest.strip_prefix('|') else {
                return Err(format!("unexpected {rest:?} after default_user"));
            };
            e.client_id = client(rest)?;
        }
    } else if let Some(rest) = id.strip_prefix("user=") {
        if let Some(name) = rest.strip_suffix("|default_client_id") {
            e.user = Some(EntityName::Named(name.to_string()));
            e.client_id = Some(EntityName::Default);
        } else if let Some((name, client_id)) = rest.split_once("|client_id=") {
            e.user = Some(EntityName::Named(name.to_string()));
            e.client_id = Some(EntityName::Named(client_id.to_string()));
        } else {
            e.user = Some(EntityName::Named(rest.to_string()));
        }
    } else {
        e.client_id = client(id).map_err(|_| {
            "expected it to start with user=, default_user, client_id=, default_client_id, \
             ip= or default_ip"
                .to_string()
        })?;
    }
    e.check()?;
    Ok(e)
}

fn non_empty(summary: &'static str) -> Validator {
    Validator::custom(summary, "Not empty.", |value, path, diags| {
        if value.as_str() == Some("") {
            diags.attribute_error(
                path.clone(),
                "Empty quota entity name",
                "Kafka refuses an empty name; for the default entity of this type set the \
                 matching default_* attribute instead.",
            );
        }
    })
}

fn ip_validator() -> Validator {
    Validator::custom(
        "Invalid IP address",
        "An IPv4 or IPv6 address.",
        |value, path, diags| {
            if let Some(s) = value.as_str()
                && s.parse::<std::net::IpAddr>().is_err()
            {
                diags.attribute_error(
                    path.clone(),
                    "Invalid IP address",
                    format!("{s:?} is not an IPv4 or IPv6 address."),
                );
            }
        },
    )
}

/// Checks one `config` entry: a key Kafka knows, with a value it keeps.
pub fn check_entry(key: &str, value: &str) -> Result<f64, String> {
    let Some(k) = quota_key(key) else {
        return Err(format!(
            "{key:?} is not a client quota key; use {}.",
            QUOTA_KEYS
                .iter()
                .map(|k| format!("{:?}", k.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    k.parse(value).map_err(|why| {
        let kind = if k.whole {
            "a whole number above zero"
        } else {
            "a number above zero"
        };
        format!("{key} must be {kind}: {why}.")
    })
}

fn config_validator() -> Validator {
    Validator::custom(
        "Invalid quota",
        "At least one key. Keys: `producer_byte_rate`, `consumer_byte_rate` (whole bytes per \
         second), `request_percentage` (percent of one thread), `controller_mutation_rate` \
         (partitions per second) for users and client ids; `connection_creation_rate` (whole \
         connections per second) for IP addresses. Values are numbers above zero.",
        |value, path, diags| {
            let Value::Map(entries) = value else {
                return;
            };
            if entries.is_empty() {
                diags.attribute_error(
                    path.clone(),
                    "No quotas",
                    "Set at least one quota key; to remove all of an entity's quotas, \
                     destroy the resource.",
                );
            }
            for (key, v) in entries {
                let Some(text) = v.as_str() else {
                    continue;
                };
                if let Err(why) = check_entry(key, text) {
                    diags.attribute_error(path.clone().key(key), "Invalid quota", why);
                }
            }
        },
    )
}

/// `default_*` attributes: false and null say the same (no default entity).
fn flag_changed(prior: &Value, planned: &Value) -> bool {
    prior.as_bool().unwrap_or(false) != planned.as_bool().unwrap_or(false)
}

fn entity_attribute(name: &str, description: &str) -> Attribute {
    Attribute::optional(name, Type::String)
        .describe(description)
        .requires_replace()
}

fn default_attribute(name: &str, what: &str) -> Attribute {
    Attribute::optional_computed(name, Type::Bool)
        .describe(&format!(
            "`true`: the default {what} entity, whose quotas apply to every {what} without \
             quotas of its own (Kafka's `--entity-default`). Conflicts with `{}`.",
            name.trim_start_matches("default_")
        ))
        .default(Value::Bool(false))
        .requires_replace_if("Replaces the resource when it changes.", flag_changed)
}

pub fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block::new(
            "The client quotas of one Kafka quota entity: a user, a client id, a user with a \
             client id, or an IP address, each of which may be the default entity of its type. \
             `config` holds every quota of the entity: removing a key removes that quota, a \
             quota changed or added out of band is planned back, and destroy removes them all.",
        )
        .attribute(
            Attribute::computed("id", Type::String)
                .describe(&format!(
                    "The entity, in the attributes' words, parts joined by `|`: {ID_EXAMPLES}. \
                     Also the import id."
                ))
                .use_state_for_unknown(),
        )
        .attribute(
            entity_attribute(
                "user",
                "The user the quota applies to: the principal's name, `alice` for `User:alice`.",
            )
            .validate(non_empty("Empty user name")),
        )
        .attribute(default_attribute("default_user", "user"))
        .attribute(
            entity_attribute(
                "client_id",
                "The client id the quota applies to (`client.id` of producers and consumers).",
            )
            .validate(non_empty("Empty client id")),
        )
        .attribute(default_attribute("default_client_id", "client id"))
        .attribute(
            entity_attribute(
                "ip",
                "The client IP address the quota applies to, on its own (no user or client id).",
            )
            .validate(ip_validator()),
        )
        .attribute(default_attribute("default_ip", "IP address"))
        .attribute(
            Attribute::required("config", Type::map(Type::String))
                .describe(
                    "The quotas, e.g. `{ producer_byte_rate = 1048576, consumer_byte_rate = \
                     2097152 }`. Byte rates and request percentages apply per broker.",
                )
                .validate(config_validator()),
        )
        .block(cluster_block()),
    }
}

/// One entity part from its name attribute and its default flag; `Err(())` when either is
/// unknown.
fn part(name: &Tf<String>, default: &Tf<bool>) -> Result<Option<EntityName>, ()> {
    if name.is_unknown() || default.is_unknown() {
        return Err(());
    }
    Ok(match (name.known(), default.known()) {
        (Some(n), _) => Some(EntityName::Named(n.clone())),
        (None, Some(true)) => Some(EntityName::Default),
        _ => None,
    })
}

impl QuotaModel {
    /// The entity, when every part of it is known.
    fn entity(&self) -> Option<QuotaEntity> {
        Some(QuotaEntity {
            user: part(&self.user, &self.default_user).ok()?,
            client_id: part(&self.client_id, &self.default_client_id).ok()?,
            ip: part(&self.ip, &self.default_ip).ok()?,
        })
    }

    fn with_entity(self, e: &QuotaEntity) -> QuotaModel {
        let name = |p: &Option<EntityName>| match p {
            Some(EntityName::Named(n)) => Tf::Known(n.clone()),
            _ => Tf::Null,
        };
        let default = |p: &Option<EntityName>| Tf::Known(p == &Some(EntityName::Default));
        QuotaModel {
            id: Tf::Known(entity_id(e)),
            user: name(&e.user),
            default_user: default(&e.user),
            client_id: name(&e.client_id),
            default_client_id: default(&e.client_id),
            ip: name(&e.ip),
            default_ip: default(&e.ip),
            ..self
        }
    }

    /// `config` as numbers (validated at validate time); `None` if not known.
    fn values(&self) -> Option<BTreeMap<String, f64>> {
        self.config
            .known()?
            .iter()
            .map(|(k, v)| check_entry(k, v).ok().map(|v| (k.clone(), v)))
            .collect()
    }

    /// `config` of a state, as Kafka last showed it: any key, any number (a quota set out of
    /// band, by a broker with other rules than this schema's, is changed or removed, never a
    /// reason to fail). Text that is not a number reads as NaN, which equals nothing, so the
    /// planned value is written.
    fn stored_values(&self) -> BTreeMap<String, f64> {
        self.config
            .known()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.trim().parse().unwrap_or(f64::NAN)))
            .collect()
    }
}

/// The live quotas as `config`, keeping the text of `prior` for values that read back as
/// the same number (`1e6` stays `1e6`, not `1000000`).
pub fn config_from_live(
    live: &BTreeMap<String, f64>,
    prior: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    live.iter()
        .map(|(k, v)| {
            let same = prior
                .and_then(|p| p.get(k))
                .filter(|text| text.trim().parse::<f64>().ok() == Some(*v));
            let text = same.cloned().unwrap_or_else(|| format_quota_value(*v));
            (k.clone(), text)
        })
        .collect()
}

/// What to send to go from `prior` to `planned`: keys to set (new or changed values) and
/// keys to remove.
pub fn changes(
    prior: &BTreeMap<String, f64>,
    planned: &BTreeMap<String, f64>,
) -> (BTreeMap<String, f64>, Vec<String>) {
    let set = planned
        .iter()
        .filter(|(k, v)| prior.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let remove = prior
        .keys()
        .filter(|k| !planned.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

fn keys_for(entity: &QuotaEntity) -> impl Iterator<Item = &'static QuotaKey> + '_ {
    QUOTA_KEYS.iter().filter(|k| k.for_ip == entity.is_ip())
}

async fn admin_and_entity(
    ctx: &Ctx,
    m: &QuotaModel,
    diags: &mut Diagnostics,
) -> Option<(Admin, QuotaEntity)> {
    let admin = ctx.data().admin(&m.cluster, diags).await?;
    let Some(entity) = m.entity() else {
        diags.error(
            "Quota entity not known",
            "The user, client id and IP address must be known at apply time.",
        );
        return None;
    };
    Some((admin, entity))
}

#[async_trait]
impl Resource<FerryData> for QuotaResource {
    type Model = QuotaModel;

    fn type_name(&self) -> &'static str {
        "ferry_quota"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &QuotaModel, diags: &mut Diagnostics) {
        super::connection::validate_cluster(&config.cluster, diags);
        let mut conflict = false;
        for (name, default, attr) in [
            (&config.user, &config.default_user, "default_user"),
            (
                &config.client_id,
                &config.default_client_id,
                "default_client_id",
            ),
            (&config.ip, &config.default_ip, "default_ip"),
        ] {
            if !name.is_null() && default.known() == Some(&true) {
                conflict = true;
                diags.attribute_error(
                    AttributePath::root(attr),
                    "Conflicting quota entity",
                    format!(
                        "Set either {} (one named entity) or {attr} = true (the default \
                         entity), not both.",
                        attr.trim_start_matches("default_")
                    ),
                );
            }
        }
        if conflict {
            return;
        }
        let Some(entity) = config.entity() else {
            return;
        };
        if let Err(why) = entity.check() {
            diags.error(
                "Invalid quota entity",
                format!(
                    "{why}. Set user or default_user, client_id or default_client_id (or both), \
                     or ip or default_ip on its own."
                ),
            );
            return;
        }
        if let Some(cfg) = config.config.known() {
            for key in cfg.keys() {
                if let Some(k) = quota_key(key)
                    && k.for_ip != entity.is_ip()
                {
                    diags.attribute_error(
                        AttributePath::root("config").key(key),
                        "Quota key not for this entity",
                        format!(
                            "{key} applies to {}; {entity} takes {}.",
                            if k.for_ip {
                                "IP addresses"
                            } else {
                                "users and client ids"
                            },
                            keys_for(&entity)
                                .map(|k| k.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
    }

    async fn create(
        &self,
        ctx: &Ctx,
        planned: QuotaModel,
        diags: &mut Diagnostics,
    ) -> Option<QuotaModel> {
        const SUMMARY: &str = "Could not set client quotas";
        let (admin, entity) = admin_and_entity(ctx, &planned, diags).await?;
        let Some(values) = planned.values() else {
            diags.error(SUMMARY, "The quota values must be known at apply time.");
            return None;
        };
        match admin.describe_quotas(&entity).await {
            Ok(existing) if !existing.is_empty() => {
                diags.error(
                    SUMMARY,
                    format!(
                        "{entity} already has quotas ({}). Import them to manage them here: \
                         terraform import <address> '{}'.",
                        existing
                            .iter()
                            .map(|(k, v)| format!("{k}={}", format_quota_value(*v)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        entity_id(&entity)
                    ),
                );
                return None;
            }
            Ok(_) => {}
            Err(e) => {
                diags.error_from(None, SUMMARY, &e);
                return None;
            }
        }
        if let Err(e) = admin.alter_quotas(&entity, &values, &[]).await {
            diags.error_from(None, SUMMARY, &e);
            return None;
        }
        Some(planned.with_entity(&entity))
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: QuotaModel,
        diags: &mut Diagnostics,
    ) -> Option<QuotaModel> {
        let Some(admin) = ctx.data().admin(&state.cluster, diags).await else {
            return Some(state);
        };
        let Some(entity) = state.entity() else {
            diags.error(
                "Quota state incomplete",
                "The stored state does not name a quota entity.",
            );
            return Some(state);
        };
        match admin.describe_quotas(&entity).await {
            // No quotas left: the entity's quotas were removed out of band.
            Ok(live) if live.is_empty() => None,
            Ok(live) => {
                let config = config_from_live(&live, state.config.known());
                Some(
                    QuotaModel {
                        config: Tf::Known(config),
                        ..state
                    }
                    .with_entity(&entity),
                )
            }
            Err(e) => {
                diags.error_from(None, "Could not read client quotas", &e);
                Some(state)
            }
        }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: QuotaModel,
        planned: QuotaModel,
        diags: &mut Diagnostics,
    ) -> QuotaModel {
        const SUMMARY: &str = "Could not change client quotas";
        let Some((admin, entity)) = admin_and_entity(ctx, &planned, diags).await else {
            return prior;
        };
        let Some(after) = planned.values() else {
            diags.error(SUMMARY, "The quota values must be known at apply time.");
            return prior;
        };
        let (set, remove) = changes(&prior.stored_values(), &after);
        if let Err(e) = admin.alter_quotas(&entity, &set, &remove).await {
            diags.error_from(None, SUMMARY, &e);
            return prior;
        }
        planned.with_entity(&entity)
    }

    async fn delete(&self, ctx: &Ctx, prior: QuotaModel, diags: &mut Diagnostics) {
        const SUMMARY: &str = "Could not remove client quotas";
        let Some((admin, entity)) = admin_and_entity(ctx, &prior, diags).await else {
            return;
        };
        // Every key the entity has now, and every key in state.
        let mut keys: Vec<String> = match admin.describe_quotas(&entity).await {
            Ok(live) => live.into_keys().collect(),
            Err(e) => {
                diags.error_from(None, SUMMARY, &e);
                return;
            }
        };
        for k in prior.config.known().into_iter().flat_map(|c| c.keys()) {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        if let Err(e) = admin.alter_quotas(&entity, &BTreeMap::new(), &keys).await {
            diags.error_from(None, SUMMARY, &e);
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<QuotaModel> {
        match parse_id(id) {
            // `read` fills `config` from the cluster (and finds nothing to import if the
            // entity has no quotas).
            Ok(e) => Some(QuotaModel::default().with_entity(&e)),
            Err(why) => {
                diags.attribute_error(
                    AttributePath::root("id"),
                    "Invalid import id",
                    format!(
                        "Import a quota entity by its id, one of {ID_EXAMPLES}; {id:?}: {why}."
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> Option<EntityName> {
        Some(EntityName::Named(n.into()))
    }

    #[test]
    fn schema_and_model_agree() {
        tfplugin::model::check_model_matches::<QuotaModel>(&schema().block).unwrap();
    }

    #[test]
    fn import_ids_round_trip() {
        let cases = [
            QuotaEntity {
                user: named("alice"),
                ..QuotaEntity::default()
            },
            QuotaEntity {
                user: named("CN=app,O=example"),
                client_id: named("billing|v2"),
                ip: None,
            },
            QuotaEntity {
                user: Some(EntityName::Default),
                client_id: named("billing"),
                ip: None,
            },
            QuotaEntity {
                user: named("alice"),
                client_id: Some(EntityName::Default),
                ip: None,
            },
            QuotaEntity {
                user: Some(EntityName::Default),
                ..QuotaEntity::default()
            },
            QuotaEntity {
                client_id: Some(EntityName::Default),
                ..QuotaEntity::default()
            },
            QuotaEntity {
                client_id: named("billing"),
                ..QuotaEntity::default()
            },
            QuotaEntity {
                ip: named("2001:db8::1"),
                ..QuotaEntity::default()
            },
            QuotaEntity {
                ip: Some(EntityName::Default),
                ..QuotaEntity::default()
            },
        ];
        for e in cases {
            let id = entity_id(&e);
            assert_eq!(parse_id(&id), Ok(e), "{id}");
        }
        assert_eq!(
            entity_id(&parse_id("user=alice|client_id=billing").unwrap()),
            "user=alice|client_id=billing"
        );
    }

    #[test]
    fn bad_import_ids_say_why() {
        assert!(parse_id("alice").unwrap_err().contains("start with"));
        assert!(parse_id("user=").unwrap_err().contains("empty"));
        assert!(
            parse_id("default_user|ip=1.2.3.4")
                .unwrap_err()
                .contains("client_id")
        );
        assert!(parse_id("default_userx").unwrap_err().contains("after"));
    }

    #[test]
    fn config_entries_are_checked_per_key() {
        assert_eq!(
            check_entry("producer_byte_rate", "1048576"),
            Ok(1_048_576.0)
        );
        assert_eq!(check_entry("request_percentage", "12.5"), Ok(12.5));
        let e = check_entry("producer_bytes_rate", "1").unwrap_err();
        assert!(
            e.contains("not a client quota key") && e.contains("producer_byte_rate"),
            "{e}"
        );
        let e = check_entry("consumer_byte_rate", "1.5").unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        let e = check_entry("controller_mutation_rate", "fast").unwrap_err();
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn the_config_validator_reports_at_the_key() {
        let mut diags = Diagnostics::default();
        let value = Value::Map(BTreeMap::from([
            ("producer_byte_rate".into(), Value::string("1024")),
            ("consumer_byte_rate".into(), Value::string("-1")),
            ("bogus".into(), Value::string("1")),
        ]));
        config_validator().run(&value, &AttributePath::root("config"), &mut diags);
        let paths: Vec<_> = diags.0.iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                Some(AttributePath::root("config").key("bogus")),
                Some(AttributePath::root("config").key("consumer_byte_rate")),
            ]
        );
        let mut diags = Diagnostics::default();
        config_validator().run(
            &Value::Map(BTreeMap::new()),
            &AttributePath::root("config"),
            &mut diags,
        );
        assert!(diags.has_errors());
    }

    #[test]
    fn validation_refuses_conflicts_combinations_and_foreign_keys() {
        let run = |m: QuotaModel| {
            let mut diags = Diagnostics::default();
            QuotaResource.validate(&m, &mut diags);
            diags
                .0
                .iter()
                .map(|d| (d.path.clone(), d.detail.clone()))
                .collect::<Vec<_>>()
        };
        let config = |k: &str| Tf::Known(BTreeMap::from([(k.to_string(), "10".to_string())]));
        let ok = QuotaModel {
            user: "alice".into(),
            default_client_id: Tf::Known(true),
            config: config("producer_byte_rate"),
            ..QuotaModel::default()
        };
        assert_eq!(run(ok.clone()), vec![]);
        let both = run(QuotaModel {
            default_user: Tf::Known(true),
            ..ok.clone()
        });
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].0, Some(AttributePath::root("default_user")));
        let mixed = run(QuotaModel {
            ip: "10.0.0.1".into(),
            ..ok.clone()
        });
        assert!(mixed[0].1.contains("IP address"), "{mixed:?}");
        let none = run(QuotaModel {
            config: config("producer_byte_rate"),
            ..QuotaModel::default()
        });
        assert!(none[0].1.contains("needs a user"), "{none:?}");
        let foreign = run(QuotaModel {
            ip: "10.0.0.1".into(),
            config: config("producer_byte_rate"),
            ..QuotaModel::default()
        });
        assert_eq!(
            foreign[0].0,
            Some(AttributePath::root("config").key("producer_byte_rate"))
        );
        assert!(foreign[0].1.contains("connection_creation_rate"));
        // Schema validators' errors on other attributes do not hide the entity's.
        let mut diags = Diagnostics::default();
        diags.error("earlier", "from a schema validator");
        QuotaResource.validate(
            &QuotaModel {
                ip: "10.0.0.1".into(),
                client_id: "app".into(),
                config: config("connection_creation_rate"),
                ..QuotaModel::default()
            },
            &mut diags,
        );
        assert_eq!(diags.0.len(), 2, "{diags:?}");
        assert!(diags.0[1].detail.contains("IP address"), "{diags:?}");
        // Unknown parts are checked later, when known.
        assert_eq!(
            run(QuotaModel {
                user: Tf::Unknown,
                ..ok
            }),
            vec![]
        );
    }

    #[test]
    fn live_values_keep_the_written_text_when_equal() {
        let live = BTreeMap::from([
            ("producer_byte_rate".to_string(), 1_000_000.0),
            ("consumer_byte_rate".to_string(), 2048.0),
            ("request_percentage".to_string(), 0.1),
        ]);
        let prior = BTreeMap::from([
            ("producer_byte_rate".to_string(), "1e6".to_string()),
            ("consumer_byte_rate".to_string(), "1024".to_string()),
        ]);
        assert_eq!(
            config_from_live(&live, Some(&prior)),
            BTreeMap::from([
                ("producer_byte_rate".to_string(), "1e6".to_string()),
                ("consumer_byte_rate".to_string(), "2048".to_string()),
                ("request_percentage".to_string(), "0.1".to_string()),
            ])
        );
    }

    #[test]
    fn changes_set_what_differs_and_remove_what_is_gone() {
        let prior = BTreeMap::from([
            ("producer_byte_rate".to_string(), 10.0),
            ("consumer_byte_rate".to_string(), 20.0),
            ("request_percentage".to_string(), 5.0),
        ]);
        let planned = BTreeMap::from([
            ("producer_byte_rate".to_string(), 10.0),
            ("consumer_byte_rate".to_string(), 30.0),
            ("controller_mutation_rate".to_string(), 1.5),
        ]);
        let (set, remove) = changes(&prior, &planned);
        assert_eq!(
            set,
            BTreeMap::from([
                ("consumer_byte_rate".to_string(), 30.0),
                ("controller_mutation_rate".to_string(), 1.5),
            ])
        );
        assert_eq!(remove, vec!["request_percentage".to_string()]);
    }

    #[test]
    fn stored_values_out_of_the_schemas_range_are_replaced_not_refused() {
        let prior = QuotaModel {
            config: Tf::Known(BTreeMap::from([
                ("producer_byte_rate".to_string(), "0".to_string()),
                ("consumer_byte_rate".to_string(), "oops".to_string()),
                ("request_percentage".to_string(), "50".to_string()),
            ])),
            ..QuotaModel::default()
        };
        let planned = BTreeMap::from([
            ("producer_byte_rate".to_string(), 1024.0),
            ("consumer_byte_rate".to_string(), 2048.0),
        ]);
        let (set, remove) = changes(&prior.stored_values(), &planned);
        assert_eq!(set, planned);
        assert_eq!(remove, vec!["request_percentage".to_string()]);
    }

    #[test]
    fn models_carry_the_entity_both_ways() {
        let e = QuotaEntity {
            user: Some(EntityName::Default),
            client_id: named("billing"),
            ip: None,
        };
        let m = QuotaModel::default().with_entity(&e);
        assert_eq!(m.default_user, Tf::Known(true));
        assert_eq!(m.user, Tf::Null);
        assert_eq!(m.default_ip, Tf::Known(false));
        assert_eq!(m.id, Tf::Known("default_user|client_id=billing".into()));
        assert_eq!(m.entity(), Some(e));
    }
}
