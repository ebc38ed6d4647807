//! The traits a resource or data source implements. Nothing here knows about gRPC or msgpack.

use async_trait::async_trait;

use super::diagnostics::{AttributePath, Diagnostics};
use super::schema::Schema;
use super::value::Value;
use crate::provider::ProviderState;

/// One planned change, handed to [`Resource::plan`] to adjust.
#[derive(Debug, Clone)]
pub struct Plan {
    /// State before the change; null when creating.
    pub prior: Value,
    /// The configuration as written (may hold unknowns).
    pub config: Value,
    /// What the resource will look like after apply; the resource may refine it.
    pub planned: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttributePath>,
}

impl Plan {
    pub fn is_create(&self) -> bool {
        self.prior.is_null()
    }
    /// True when the top-level attribute differs between prior and planned state.
    pub fn changed(&self, name: &str) -> bool {
        self.prior.get(name) != self.planned.get(name)
    }
}

#[async_trait]
pub trait Resource: Send + Sync {
    /// The type name users write, e.g. `ferry_topic`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    /// Checks the configuration alone (values may be unknown). No network.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Refines a plan: checks against the live system, marks computed values unknown, adds
    /// replacement paths. The framework has already planned computed attributes and
    /// `force_new` replacements.
    async fn plan(&self, _provider: &ProviderState, _plan: &mut Plan, _diags: &mut Diagnostics) {}

    /// Creates the object; returns the new state (null if nothing was created).
    async fn create(
        &self,
        provider: &ProviderState,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value;

    /// Reads the live object; returns null when it no longer exists.
    async fn read(&self, provider: &ProviderState, state: &Value, diags: &mut Diagnostics)
    -> Value;

    /// Updates in place; returns the new state.
    async fn update(
        &self,
        provider: &ProviderState,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value;

    async fn delete(&self, provider: &ProviderState, prior: &Value, diags: &mut Diagnostics);

    /// Turns an import id into a state that `read` completes. The default refuses.
    async fn import(&self, _provider: &ProviderState, id: &str, diags: &mut Diagnostics) -> Value {
        diags.error(
            format!("{} cannot be imported", self.type_name()),
            format!("Import of id {id:?} is not supported by this resource type."),
        );
        Value::Null
    }

    /// Moves state stored by an older schema version to the current one. The JSON decoding by
    /// the current schema already drops removed attributes and fills new ones with null.
    fn upgrade_state(&self, _from_version: i64, state: Value, _diags: &mut Diagnostics) -> Value {
        state
    }
}

#[async_trait]
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    async fn read(
        &self,
        provider: &ProviderState,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Value;
}
