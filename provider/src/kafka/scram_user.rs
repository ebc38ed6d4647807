//! `ferry_scram_user`: one SASL/SCRAM credential (a user name and mechanism) on a cluster.
//!
//! Kafka stores a salted hash and returns only the mechanism and iteration count, never the
//! password. So the password in state is the one last written by ferry: a password changed
//! out of band is not seen (change `password` or `password_version` to write it again), a
//! credential deleted out of band is drift (planned for re-creation), and an iteration count
//! changed out of band is drift (planned back, which rewrites the password).

use async_trait::async_trait;
use ferry_kafka::{ScramMechanism, Secret};
use tfplugin::{
    Attribute, AttributePath, Block, Diagnostics, Model, Resource, Schema, Tf, Type, Validator,
    Value,
};

use super::connection::{ConnectionModel, cluster_block};
use crate::provider::{Ctx, FerryData};

pub struct ScramUserResource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ScramUserModel {
    pub id: Tf<String>,
    pub name: Tf<String>,
    pub mechanism: Tf<String>,
    pub iterations: Tf<i64>,
    pub password: Tf<String>,
    pub password_version: Tf<String>,
    pub cluster: Tf<ConnectionModel>,
}

/// The import id: the mechanism, `|`, the user name (last, so a name containing `|` parses).
pub const ID_FORMAT: &str = "mechanism|name";

pub fn credential_id(mechanism: ScramMechanism, name: &str) -> String {
    format!("{}|{name}", mechanism.name())
}

pub fn parse_id(id: &str) -> Result<(ScramMechanism, String), String> {
    let Some((mechanism, name)) = id.split_once('|') else {
        return Err("expected the mechanism and the user name separated by |".into());
    };
    let mechanism = ScramMechanism::parse(mechanism).ok_or_else(|| {
        format!(
            "mechanism {mechanism:?} is not one of {}",
            ScramMechanism::NAMES.join(", ")
        )
    })?;
    if name.is_empty() {
        return Err("the user name is empty".into());
    }
    Ok((mechanism, name.to_string()))
}

/// Kafka's SCRAM user names: not empty, and no `,` or `=` (they would break the SCRAM
/// message format; Kafka escapes neither in the credentials it stores).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("the user name is empty".into())
    } else if name.contains([',', '=']) || name.chars().any(char::is_whitespace) {
        Err(format!("{name:?} contains `,`, `=` or white space"))
    } else {
        Ok(())
    }
}

fn name_validator() -> Validator {
    Validator::custom(
        "Invalid SCRAM user name",
        "Not empty; no `,`, `=` or white space.",
        |value, path, diags| {
            if let Value::String(s) = value
                && let Err(why) = check_name(s)
            {
                diags.attribute_error(path.clone(), "Invalid SCRAM user name", why);
            }
        },
    )
}

pub fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block::new(
            "A SASL/SCRAM credential: the password `name` logs in with over `mechanism`. Kafka \
             keeps only a salted hash, so the password cannot be read back: ferry writes it on \
             create and whenever `password`, `password_version` or `iterations` change. A \
             credential deleted out of band is re-created; a password changed out of band is \
             not detected.",
        )
        .attribute(
            Attribute::computed("id", Type::String)
                .describe(&format!("`{ID_FORMAT}`. Also the import id."))
                .use_state_for_unknown(),
        )
        .attribute(
            Attribute::required("name", Type::String)
                .describe("The user name (the principal is `User:<name>`).")
                .validate(name_validator())
                .requires_replace(),
        )
        .attribute(
            Attribute::optional_computed("mechanism", Type::String)
                .describe("The SCRAM mechanism the credential is for (MSK uses SCRAM-SHA-512).")
                .default(Value::string("SCRAM-SHA-512"))
                .validate(Validator::one_of(
                    ScramMechanism::NAMES,
                    "Invalid SCRAM mechanism",
                ))
                .requires_replace(),
        )
        .attribute(
            Attribute::optional_computed("iterations", Type::Number)
                .describe("The hash iteration count Kafka stores the credential with.")
                .default(Value::int(ScramMechanism::MIN_ITERATIONS.into()))
                .validate(Validator::int_range(
                    ScramMechanism::MIN_ITERATIONS.into(),
                    ScramMechanism::MAX_ITERATIONS.into(),
                    "Invalid SCRAM iteration count",
                )),
        )
        .attribute(
            Attribute::required("password", Type::String)
                .sensitive()
                .describe(
                    "The password. Sensitive; stored in state (as every attribute is) but never \
                     read from Kafka, which cannot return it.",
                ),
        )
        .attribute(
            Attribute::optional("password_version", Type::String).describe(
                "Any value; changing it writes the password again (rotation when the password \
                 itself comes from elsewhere, or to repair one changed out of band).",
            ),
        )
        .block(cluster_block()),
    }
}

impl ScramUserModel {
    fn mechanism(&self) -> ScramMechanism {
        self.mechanism
            .known()
            .and_then(|m| ScramMechanism::parse(m))
            .unwrap_or(ScramMechanism::Sha512)
    }

    fn iterations(&self) -> i32 {
        self.iterations
            .known()
            .and_then(|i| i32::try_from(*i).ok())
            .unwrap_or(ScramMechanism::MIN_ITERATIONS)
    }

    fn with_id(self) -> ScramUserModel {
        let id = self
            .name
            .known()
            .map(|n| credential_id(self.mechanism(), n));
        ScramUserModel {
            id: id.map_or(Tf::Null, Tf::Known),
            mechanism: Tf::Known(self.mechanism().name().into()),
            ..self
        }
    }
}

/// Writes the credential; `None` (with a diagnostic) when Kafka refused it.
async fn write(
    ctx: &Ctx,
    m: &ScramUserModel,
    diags: &mut Diagnostics,
    summary: &str,
) -> Option<()> {
    let admin = ctx.data().admin(&m.cluster, diags).await?;
    let (Some(name), Some(password)) = (m.name.known(), m.password.known()) else {
        diags.error(
            summary,
            "The user name and password must be known at apply time.",
        );
        return None;
    };
    match admin
        .upsert_scram_credential(
            name,
            m.mechanism(),
            m.iterations(),
            &Secret::new(password.clone()),
        )
        .await
    {
        Ok(()) => Some(()),
        Err(e) => {
            diags.error_from(None, summary, &e);
            None
        }
    }
}

#[async_trait]
impl Resource<FerryData> for ScramUserResource {
    type Model = ScramUserModel;

    fn type_name(&self) -> &'static str {
        "ferry_scram_user"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &ScramUserModel, diags: &mut Diagnostics) {
        super::connection::validate_cluster(&config.cluster, diags);
    }

    async fn create(
        &self,
        ctx: &Ctx,
        planned: ScramUserModel,
        diags: &mut Diagnostics,
    ) -> Option<ScramUserModel> {
        write(ctx, &planned, diags, "Could not create SCRAM credential").await?;
        Some(planned.with_id())
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: ScramUserModel,
        diags: &mut Diagnostics,
    ) -> Option<ScramUserModel> {
        let Some(admin) = ctx.data().admin(&state.cluster, diags).await else {
            return Some(state);
        };
        let Some(name) = state.name.known().cloned() else {
            return Some(state);
        };
        match admin.describe_scram_user(&name).await {
            Ok(found) => {
                let mechanism = state.mechanism();
                let credential = found.into_iter().find(|c| c.mechanism == mechanism)?;
                Some(
                    ScramUserModel {
                        iterations: Tf::Known(credential.iterations.into()),
                        ..state
                    }
                    .with_id(),
                )
            }
            Err(e) => {
                diags.error_from(None, "Could not read SCRAM credential", &e);
                Some(state)
            }
        }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: ScramUserModel,
        planned: ScramUserModel,
        diags: &mut Diagnostics,
    ) -> ScramUserModel {
        let rewrite = prior.password != planned.password
            || prior.password_version != planned.password_version
            || prior.iterations != planned.iterations;
        if rewrite
            && write(ctx, &planned, diags, "Could not update SCRAM credential")
                .await
                .is_none()
        {
            return prior;
        }
        planned.with_id()
    }

    async fn delete(&self, ctx: &Ctx, prior: ScramUserModel, diags: &mut Diagnostics) {
        let Some(admin) = ctx.data().admin(&prior.cluster, diags).await else {
            return;
        };
        let Some(name) = prior.name.known() else {
            return;
        };
        match admin.delete_scram_credential(name, prior.mechanism()).await {
            Ok(()) => {}
            // Already gone: nothing to delete.
            Err(e) if e.code() == Some(ferry_kafka::KafkaErrorCode::ResourceNotFound) => {}
            Err(e) => diags.error_from(None, "Could not delete SCRAM credential", &e),
        }
    }

    async fn import(
        &self,
        _ctx: &Ctx,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<ScramUserModel> {
        match parse_id(id) {
            // The password is unknown to Kafka: it stays null, so the next apply writes the
            // configured one once.
            Ok((mechanism, name)) => Some(
                ScramUserModel {
                    name: Tf::Known(name),
                    mechanism: Tf::Known(mechanism.name().into()),
                    ..ScramUserModel::default()
                }
                .with_id(),
            ),
            Err(why) => {
                diags.attribute_error(
                    AttributePath::root("id"),
                    "Invalid import id",
                    format!(
                        "Import a SCRAM credential as {ID_FORMAT:?}, e.g. \"SCRAM-SHA-512|alice\"; {id:?}: {why}."
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

    #[test]
    fn schema_and_model_agree_and_the_password_is_sensitive() {
        let s = schema();
        tfplugin::model::check_model_matches::<ScramUserModel>(&s.block).unwrap();
        assert!(s.block.find_attribute("password").unwrap().sensitive);
    }

    #[test]
    fn import_ids_round_trip() {
        let (m, n) = parse_id("scram-sha-256|team|a").unwrap();
        assert_eq!((m, n.as_str()), (ScramMechanism::Sha256, "team|a"));
        assert_eq!(credential_id(m, &n), "SCRAM-SHA-256|team|a");
        assert!(parse_id("alice").unwrap_err().contains("separated"));
        assert!(parse_id("PLAIN|alice").unwrap_err().contains("mechanism"));
        assert!(parse_id("SCRAM-SHA-512|").unwrap_err().contains("empty"));
    }

    #[test]
    fn defaults_fill_a_credential() {
        let m = ScramUserModel {
            name: "alice".into(),
            ..ScramUserModel::default()
        };
        assert_eq!(m.mechanism(), ScramMechanism::Sha512);
        assert_eq!(m.iterations(), 4096);
        assert_eq!(m.with_id().id, Tf::Known("SCRAM-SHA-512|alice".to_string()));
    }
}
