//! Client quotas (KIP-546): the byte rates, request share and mutation rate a user, client id
//! or IP address may use, through DescribeClientQuotas and AlterClientQuotas. librdkafka has
//! no call for either, so both go over its own connection as raw requests (`protocol`,
//! `native::raw_request`), each bounded by the connection's timeout.

use std::collections::BTreeMap;
use std::fmt;

use crate::admin::{Admin, AdminError};
use crate::native::{self, error_code};
use crate::protocol::{self, EntityComponent, QuotaMatch, QuotaOp, WireError};

/// The name of one part of a quota entity: a given name, or the type's default entity (which
/// applies to every user, client id or address without a quota of its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    fn wire(&self) -> Option<String> {
        match self {
            EntityName::Default => None,
            EntityName::Named(n) => Some(n.clone()),
        }
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityName::Default => f.write_str("the default"),
            EntityName::Named(n) => write!(f, "{n:?}"),
        }
    }
}

/// What a quota applies to. Kafka accepts a user, a client id, a user with a client id, or an
/// IP address on its own; each part may be the type's default entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct QuotaEntity {
    pub user: Option<EntityName>,
    pub client_id: Option<EntityName>,
    pub ip: Option<EntityName>,
}

/// Kafka's entity type names (`ClientQuotaEntity.USER`, `CLIENT_ID`, `IP`).
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

impl QuotaEntity {
    /// Whether Kafka accepts this combination: not empty, an IP address alone, no empty
    /// names.
    pub fn check(&self) -> Result<(), String> {
        if self.user.is_none() && self.client_id.is_none() && self.ip.is_none() {
            return Err("a quota entity needs a user, a client id or an IP address".into());
        }
        if self.ip.is_some() && (self.user.is_some() || self.client_id.is_some()) {
            return Err(
                "an IP address quota stands alone: it cannot be combined with a user or client id"
                    .into(),
            );
        }
        for (what, part) in self.parts() {
            if part == &EntityName::Named(String::new()) {
                return Err(format!("the {what} name is empty"));
            }
        }
        Ok(())
    }

    /// Whether the entity is an IP address (whose only quota key is
    /// `connection_creation_rate`).
    pub fn is_ip(&self) -> bool {
        self.ip.is_some()
    }

    fn parts(&self) -> impl Iterator<Item = (&'static str, &EntityName)> {
        [
            (USER, self.user.as_ref()),
            (CLIENT_ID, self.client_id.as_ref()),
            (IP, self.ip.as_ref()),
        ]
        .into_iter()
        .filter_map(|(t, n)| n.map(|n| (t, n)))
    }

    fn components(&self) -> Vec<EntityComponent> {
        self.parts()
            .map(|(t, n)| (t.to_string(), n.wire()))
            .collect()
    }

    /// Whether a response's entity is this one (Kafka does not promise an order).
    fn is(&self, components: &[EntityComponent]) -> bool {
        let mut mine = self.components();
        let mut theirs = components.to_vec();
        mine.sort();
        theirs.sort();
        mine == theirs
    }
}

impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .parts()
            .map(|(t, n)| match n {
                EntityName::Default => format!("the default {t}"),
                EntityName::Named(n) => format!("{t} {n:?}"),
            })
            .collect();
        f.write_str(&parts.join(" with "))
    }
}

/// A quota key Kafka knows (`QuotaConfig` in Kafka 4.3) and the values it accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaKey {
    pub name: &'static str,
    /// Kafka refuses a fractional value (LONG and INT keys).
    pub whole: bool,
    /// The largest value Kafka accepts.
    pub max: f64,
    /// A key for IP entities (`connection_creation_rate`); the others are for users and
    /// client ids.
    pub for_ip: bool,
    pub about: &'static str,
}

pub const QUOTA_KEYS: &[QuotaKey] = &[
    QuotaKey {
        name: "producer_byte_rate",
        whole: true,
        max: i64::MAX as f64,
        for_ip: false,
        about: "bytes per second a producer may send, per broker",
    },
    QuotaKey {
        name: "consumer_byte_rate",
        whole: true,
        max: i64::MAX as f64,
        for_ip: false,
        about: "bytes per second a consumer may fetch, per broker",
    },
    QuotaKey {
        name: "request_percentage",
        whole: false,
        max: i32::MAX as f64,
        for_ip: false,
        about: "the share of one request-handler and network thread, in percent, per broker",
    },
    QuotaKey {
        name: "controller_mutation_rate",
        whole: false,
        max: i32::MAX as f64,
        for_ip: false,
        about: "partitions created or deleted per second",
    },
    QuotaKey {
        name: "connection_creation_rate",
        whole: true,
        max: i32::MAX as f64,
        for_ip: true,
        about: "new connections per second from the address, per broker",
    },
];

pub fn quota_key(name: &str) -> Option<&'static QuotaKey> {
    QUOTA_KEYS.iter().find(|k| k.name == name)
}

impl QuotaKey {
    /// Parses a value written as text and checks it: a finite number above zero, whole for
    /// rates Kafka stores as integers, at most what Kafka stores.
    pub fn parse(&self, text: &str) -> Result<f64, String> {
        let trimmed = text.trim();
        let v: f64 = trimmed
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && trimmed == text)
            .ok_or_else(|| format!("{text:?} is not a number"))?;
        if v <= 0.0 {
            return Err(format!("{text} is not above zero"));
        }
        if self.whole && v.fract() != 0.0 {
            return Err(format!("{text} is not a whole number"));
        }
        if v > self.max {
            return Err(format!(
                "{text} is above {}, the largest Kafka keeps",
                self.max
            ));
        }
        Ok(v)
    }
}

/// A quota value as text: the shortest form that reads back as the same number
/// (`1048576`, `12.5`).
pub fn format_quota_value(v: f64) -> String {
    format!("{v}")
}

fn wire_error(operation: &'static str, context: &str, e: WireError) -> Result<(), AdminError> {
    if e.code == 0 {
        return Ok(());
    }
    let code = error_code(i32::from(e.code));
    let message = e
        .message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| code.to_string());
    Err(AdminError::Kafka {
        operation,
        code,
        message: format!("{context}: {message}"),
    })
}

fn decode_error(operation: &'static str, e: protocol::DecodeError) -> AdminError {
    AdminError::Other {
        operation,
        message: format!("could not read the broker's answer: {}", e.0),
    }
}

impl Admin {
    /// The quotas set on exactly this entity (not those it inherits from a default or a
    /// broader entity); empty when it has none.
    pub async fn describe_quotas(
        &self,
        entity: &QuotaEntity,
    ) -> Result<BTreeMap<String, f64>, AdminError> {
        const OP: &str = "describing client quotas";
        let filter: Vec<(String, QuotaMatch)> = entity
            .parts()
            .map(|(t, n)| {
                let m = match n {
                    EntityName::Default => QuotaMatch::Default,
                    EntityName::Named(n) => QuotaMatch::Exact(n.clone()),
                };
                (t.to_string(), m)
            })
            .collect();
        let response = self
            .blocking(move |rk, timeout| {
                // Strict: only entities with exactly these types, not e.g. user+client-id
                // entities when asking for a user.
                let body = protocol::describe_client_quotas_request(&filter, true);
                native::raw_request(
                    rk,
                    protocol::DESCRIBE_CLIENT_QUOTAS,
                    protocol::CLIENT_QUOTAS_VERSION,
                    true,
                    &body,
                    timeout,
                )
            })
            .await?
            .map_err(|e| AdminError::native(OP, e))?;
        let (error, entries) = protocol::describe_client_quotas_response(&response)
            .map_err(|e| decode_error(OP, e))?;
        wire_error(OP, &entity.to_string(), error)?;
        Ok(entries
            .into_iter()
            .filter(|e| entity.is(&e.entity))
            .flat_map(|e| e.values)
            .collect())
    }

    /// Sets the keys in `set` and removes the keys in `remove` on this entity, in one
    /// request; keys named in neither are left alone. Returns once a describe shows the
    /// change (or the connection's timeout says the broker is still behind).
    pub async fn alter_quotas(
        &self,
        entity: &QuotaEntity,
        set: &BTreeMap<String, f64>,
        remove: &[String],
    ) -> Result<(), AdminError> {
        const OP: &str = "altering client quotas";
        if set.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let ops: Vec<QuotaOp> = set
            .iter()
            .map(|(k, v)| QuotaOp {
                key: k.clone(),
                value: *v,
                remove: false,
            })
            .chain(remove.iter().map(|k| QuotaOp {
                key: k.clone(),
                value: 0.0,
                remove: true,
            }))
            .collect();
        let request = vec![(entity.components(), ops)];
        let response = self
            .blocking(move |rk, timeout| {
                let body = protocol::alter_client_quotas_request(&request, false);
                native::raw_request(
                    rk,
                    protocol::ALTER_CLIENT_QUOTAS,
                    protocol::CLIENT_QUOTAS_VERSION,
                    true,
                    &body,
                    timeout,
                )
            })
            .await?
            .map_err(|e| AdminError::native(OP, e))?;
        let entries =
            protocol::alter_client_quotas_response(&response).map_err(|e| decode_error(OP, e))?;
        let context = entity.to_string();
        let Some((error, _)) = entries.into_iter().find(|(_, e)| entity.is(e)) else {
            return Err(AdminError::Other {
                operation: OP,
                message: format!("the broker's answer does not mention {context}"),
            });
        };
        wire_error(OP, &context, error)?;
        self.until_visible("client quota change", || async {
            self.describe_quotas(entity).await.is_ok_and(|now| {
                set.iter().all(|(k, v)| now.get(k) == Some(v))
                    && remove.iter().all(|k| !now.contains_key(k))
            })
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> Option<EntityName> {
        Some(EntityName::Named(n.into()))
    }

    #[test]
    fn entity_combinations_follow_kafka() {
        let user_client = QuotaEntity {
            user: named("alice"),
            client_id: Some(EntityName::Default),
            ip: None,
        };
        assert!(user_client.check().is_ok());
        assert_eq!(
            user_client.components(),
            vec![
                ("user".to_string(), Some("alice".to_string())),
                ("client-id".to_string(), None)
            ]
        );
        assert_eq!(
            user_client.to_string(),
            "user \"alice\" with the default client-id"
        );
        assert!(QuotaEntity::default().check().is_err());
        let ip_and_user = QuotaEntity {
            user: named("alice"),
            ip: named("10.0.0.1"),
            ..QuotaEntity::default()
        };
        assert!(ip_and_user.check().unwrap_err().contains("IP"));
        let empty = QuotaEntity {
            client_id: named(""),
            ..QuotaEntity::default()
        };
        assert!(empty.check().unwrap_err().contains("empty"));
    }

    #[test]
    fn response_entities_match_in_any_order() {
        let e = QuotaEntity {
            user: named("alice"),
            client_id: named("app"),
            ip: None,
        };
        assert!(e.is(&[
            ("client-id".into(), Some("app".into())),
            ("user".into(), Some("alice".into())),
        ]));
        assert!(!e.is(&[("user".into(), Some("alice".into()))]));
        assert!(!e.is(&[
            ("client-id".into(), None),
            ("user".into(), Some("alice".into())),
        ]));
    }

    #[test]
    fn values_are_checked_as_kafka_does() {
        let bytes = quota_key("producer_byte_rate").unwrap();
        assert_eq!(bytes.parse("1048576"), Ok(1_048_576.0));
        assert_eq!(bytes.parse("1e6"), Ok(1_000_000.0));
        assert!(bytes.parse("1.5").unwrap_err().contains("whole"));
        assert!(bytes.parse("0").unwrap_err().contains("above zero"));
        assert!(bytes.parse("-5").unwrap_err().contains("above zero"));
        assert!(bytes.parse("fast").unwrap_err().contains("not a number"));
        assert!(bytes.parse(" 5").unwrap_err().contains("not a number"));
        assert!(bytes.parse("inf").unwrap_err().contains("not a number"));
        let pct = quota_key("request_percentage").unwrap();
        assert_eq!(pct.parse("12.5"), Ok(12.5));
        assert!(pct.parse("3e9").unwrap_err().contains("largest"));
        assert!(quota_key("connection_creation_rate").unwrap().for_ip);
        assert_eq!(quota_key("producer_bytes_rate"), None);
    }

    #[test]
    fn values_format_as_they_read_back() {
        assert_eq!(format_quota_value(1_048_576.0), "1048576");
        assert_eq!(format_quota_value(12.5), "12.5");
        assert_eq!(format_quota_value(0.1), "0.1");
    }
}
