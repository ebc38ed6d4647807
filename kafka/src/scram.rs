//! SCRAM users: the credentials a broker keeps for SASL/SCRAM (salted hashes, never the
//! password), through librdkafka's DescribeUserScramCredentials and AlterUserScramCredentials.

use rdkafka::bindings as rd;

use crate::admin::{Admin, AdminError};
use crate::connection::Secret;
use crate::native::scram::{self as native, Alteration};

/// A SCRAM mechanism a credential is stored for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// The names users write, which are Kafka's (`kafka-configs.sh --add-config 'SCRAM-SHA-512=...'`).
    pub const NAMES: &'static [&'static str] = &["SCRAM-SHA-256", "SCRAM-SHA-512"];

    pub fn parse(name: &str) -> Option<ScramMechanism> {
        match name.to_ascii_uppercase().as_str() {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }
    fn native(self) -> native::Mechanism {
        match self {
            ScramMechanism::Sha256 => native::Mechanism::RD_KAFKA_SCRAM_MECHANISM_SHA_256,
            ScramMechanism::Sha512 => native::Mechanism::RD_KAFKA_SCRAM_MECHANISM_SHA_512,
        }
    }
    fn from_native(m: native::Mechanism) -> Option<ScramMechanism> {
        match m {
            rd::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_256 => {
                Some(ScramMechanism::Sha256)
            }
            rd::rd_kafka_ScramMechanism_t::RD_KAFKA_SCRAM_MECHANISM_SHA_512 => {
                Some(ScramMechanism::Sha512)
            }
            _ => None,
        }
    }

    /// The iteration counts Kafka accepts (`kafka-configs.sh` refuses others).
    pub const MIN_ITERATIONS: i32 = 4096;
    pub const MAX_ITERATIONS: i32 = 16384;
}

/// One stored credential of a user (Kafka returns no more than this: never the password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    pub iterations: i32,
}

impl Admin {
    /// The user's SCRAM credentials; empty when it has none.
    pub async fn describe_scram_user(
        &self,
        user: &str,
    ) -> Result<Vec<ScramCredential>, AdminError> {
        let owned = user.to_string();
        let found = self
            .blocking(move |rk, timeout| native::describe(rk, &owned, timeout))
            .await?
            .map_err(|e| AdminError::native("describing SCRAM credentials", e))?;
        let mut out: Vec<ScramCredential> = found
            .into_iter()
            .filter_map(|(m, iterations)| {
                ScramMechanism::from_native(m).map(|mechanism| ScramCredential {
                    mechanism,
                    iterations,
                })
            })
            .collect();
        out.sort_by_key(|c| c.mechanism);
        Ok(out)
    }

    /// Sets (creates or replaces) the user's credential for `mechanism`.
    pub async fn upsert_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        iterations: i32,
        password: &Secret,
    ) -> Result<(), AdminError> {
        let (name, password) = (user.to_string(), password.clone());
        let user = name.clone();
        self.blocking(move |rk, timeout| {
            native::alter(
                rk,
                &[Alteration::Upsert {
                    user: &user,
                    mechanism: mechanism.native(),
                    iterations,
                    password: password.expose(),
                }],
                timeout,
            )
        })
        .await?
        .map_err(|e| AdminError::native("setting SCRAM credential", e))?;
        self.until_visible("SCRAM credential", || async {
            self.describe_scram_user(&name).await.is_ok_and(|found| {
                found
                    .iter()
                    .any(|c| c.mechanism == mechanism && c.iterations == iterations)
            })
        })
        .await;
        Ok(())
    }

    /// Deletes the user's credential for `mechanism`.
    pub async fn delete_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<(), AdminError> {
        let name = user.to_string();
        let user = name.clone();
        self.blocking(move |rk, timeout| {
            native::alter(
                rk,
                &[Alteration::Delete {
                    user: &user,
                    mechanism: mechanism.native(),
                }],
                timeout,
            )
        })
        .await?
        .map_err(|e| AdminError::native("deleting SCRAM credential", e))?;
        self.until_visible("SCRAM credential deletion", || async {
            self.describe_scram_user(&name)
                .await
                .is_ok_and(|found| found.iter().all(|c| c.mechanism != mechanism))
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_round_trip() {
        for name in ScramMechanism::NAMES {
            let m = ScramMechanism::parse(name).unwrap();
            assert_eq!(m.name(), *name);
            assert_eq!(ScramMechanism::from_native(m.native()), Some(m));
        }
        assert_eq!(ScramMechanism::parse("PLAIN"), None);
    }
}
