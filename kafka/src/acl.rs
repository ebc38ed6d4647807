//! Kafka ACLs: typed bindings and filters, and the admin calls that create, list and delete
//! them (through librdkafka's CreateAcls, DescribeAcls and DeleteAcls).

use std::fmt;

use rdkafka::bindings as rd;

use crate::admin::{Admin, AdminError};
use crate::native::acl::{self as native, NativeAcl};

macro_rules! names {
    ($(#[$m:meta])* $ty:ident : $rd:ty { $($variant:ident = $name:literal => $value:path),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty { $($variant),* }

        impl $ty {
            /// The names users write, which are Kafka's own (`kafka-acls.sh`, the Java API).
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            pub fn parse(name: &str) -> Option<$ty> {
                match name.to_ascii_uppercase().as_str() {
                    $($name => Some($ty::$variant),)*
                    _ => None,
                }
            }
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
            fn native(self) -> $rd {
                match self { $($ty::$variant => $value),* }
            }
            fn from_native(v: $rd) -> Option<$ty> {
                match v { $($value => Some($ty::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

names! {
    /// What an ACL protects.
    AclResourceType: rd::rd_kafka_ResourceType_t {
        Topic = "TOPIC" => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
        Group = "GROUP" => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_GROUP,
        Cluster = "CLUSTER" => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER,
        TransactionalId = "TRANSACTIONAL_ID" => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID,
    }
}

names! {
    /// How the resource name is matched: exactly, or as a prefix.
    AclPatternType: rd::rd_kafka_ResourcePatternType_t {
        Literal = "LITERAL" => rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL,
        Prefixed = "PREFIXED" => rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
    }
}

names! {
    /// The operation an ACL allows or denies.
    AclOperation: rd::rd_kafka_AclOperation_t {
        All = "ALL" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ALL,
        Read = "READ" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_READ,
        Write = "WRITE" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_WRITE,
        Create = "CREATE" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_CREATE,
        Delete = "DELETE" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_DELETE,
        Alter = "ALTER" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ALTER,
        Describe = "DESCRIBE" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_DESCRIBE,
        ClusterAction = "CLUSTER_ACTION" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
        DescribeConfigs = "DESCRIBE_CONFIGS" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
        AlterConfigs = "ALTER_CONFIGS" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
        IdempotentWrite = "IDEMPOTENT_WRITE" => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
    }
}

names! {
    /// Whether the ACL allows or denies.
    AclPermission: rd::rd_kafka_AclPermissionType_t {
        Allow = "ALLOW" => rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
        Deny = "DENY" => rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY,
    }
}

/// One ACL: `principal` may (or may not) do `operation` from `host` on the resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: AclResourceType,
    pub resource_name: String,
    pub pattern_type: AclPatternType,
    /// `User:alice`, `User:CN=client,O=example` (mutual TLS), ...
    pub principal: String,
    /// An IP address, or `*` for any host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

/// Which ACLs to list or delete: `None` matches anything. A filter's pattern type `None`
/// matches both literal and prefixed bindings with exactly that name (not the bindings that
/// would apply to it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<AclResourceType>,
    pub resource_name: Option<String>,
    pub pattern_type: Option<AclPatternType>,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission: Option<AclPermission>,
}

impl AclBinding {
    /// The filter that matches this binding and nothing else.
    pub fn exact_filter(&self) -> AclFilter {
        AclFilter {
            resource_type: Some(self.resource_type),
            resource_name: Some(self.resource_name.clone()),
            pattern_type: Some(self.pattern_type),
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: Some(self.operation),
            permission: Some(self.permission),
        }
    }

    fn native(&self) -> NativeAcl {
        NativeAcl {
            resource_type: self.resource_type.native(),
            resource_name: Some(self.resource_name.clone()),
            pattern_type: self.pattern_type.native(),
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: self.operation.native(),
            permission: self.permission.native(),
        }
    }

    /// A binding as the broker reported it; `None` for kinds this crate does not model.
    fn from_native(n: NativeAcl) -> Option<AclBinding> {
        Some(AclBinding {
            resource_type: AclResourceType::from_native(n.resource_type)?,
            resource_name: n.resource_name?,
            pattern_type: AclPatternType::from_native(n.pattern_type)?,
            principal: n.principal?,
            host: n.host?,
            operation: AclOperation::from_native(n.operation)?,
            permission: AclPermission::from_native(n.permission)?,
        })
    }
}

impl AclFilter {
    fn native(&self) -> NativeAcl {
        NativeAcl {
            resource_type: self.resource_type.map_or(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_ANY,
                AclResourceType::native,
            ),
            resource_name: self.resource_name.clone(),
            pattern_type: self.pattern_type.map_or(
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY,
                AclPatternType::native,
            ),
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation.map_or(
                rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY,
                AclOperation::native,
            ),
            permission: self.permission.map_or(
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                AclPermission::native,
            ),
        }
    }
}

impl Admin {
    /// Creates the bindings (creating one that exists already is not an error in Kafka).
    pub async fn create_acls(&self, acls: &[AclBinding]) -> Result<(), AdminError> {
        let acls: Vec<NativeAcl> = acls.iter().map(AclBinding::native).collect();
        self.blocking(move |rk, timeout| native::create_acls(rk, &acls, timeout))
            .await?
            .map_err(|e| AdminError::native("creating ACLs", e))
    }

    /// The bindings matching `filter`, sorted. A cluster without an authorizer answers with a
    /// `SecurityDisabled` error.
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<Vec<AclBinding>, AdminError> {
        let filter = filter.native();
        let found = self
            .blocking(move |rk, timeout| native::describe_acls(rk, &filter, timeout))
            .await?
            .map_err(|e| AdminError::native("listing ACLs", e))?;
        let mut out: Vec<AclBinding> = found
            .into_iter()
            .filter_map(AclBinding::from_native)
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes every binding matching one of the filters; returns what was deleted.
    pub async fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<AclBinding>, AdminError> {
        let filters: Vec<NativeAcl> = filters.iter().map(AclFilter::native).collect();
        let deleted = self
            .blocking(move |rk, timeout| native::delete_acls(rk, &filters, timeout))
            .await?
            .map_err(|e| AdminError::native("deleting ACLs", e))?;
        Ok(deleted
            .into_iter()
            .filter_map(AclBinding::from_native)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_parse_ignores_case() {
        for n in AclOperation::NAMES {
            assert_eq!(AclOperation::parse(n).unwrap().name(), *n);
        }
        for n in AclResourceType::NAMES {
            let t = AclResourceType::parse(n).unwrap();
            assert_eq!(AclResourceType::from_native(t.native()), Some(t));
        }
        assert_eq!(AclPermission::parse("deny"), Some(AclPermission::Deny));
        assert_eq!(AclPatternType::parse("MATCH"), None);
        assert_eq!(AclOperation::parse("ANY"), None);
    }

    #[test]
    fn an_exact_filter_names_every_field() {
        let b = AclBinding {
            resource_type: AclResourceType::Cluster,
            resource_name: "kafka-cluster".into(),
            pattern_type: AclPatternType::Literal,
            principal: "User:ops".into(),
            host: "*".into(),
            operation: AclOperation::AlterConfigs,
            permission: AclPermission::Allow,
        };
        let n = b.exact_filter().native();
        assert_eq!(n, b.native());
        assert_eq!(AclBinding::from_native(n), Some(b));
        let any = AclFilter::default().native();
        assert_eq!(
            any.operation,
            rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY
        );
        assert_eq!(any.principal, None);
    }
}
