//! The traits a provider, its resources and its data sources implement, generic over the
//! provider's configured data `D`. Resources see typed models; the erased forms below are what
//! the adapter stores, converting between models and wire values in one place.

use std::sync::Arc;

use async_trait::async_trait;

use super::context::Ctx;
use super::diagnostics::{AttributePath, Diagnostics};
use super::model::Model;
use super::plan;
use super::schema::Schema;
use super::value::{Type, Value};

/// One planned change, handed to [`Resource::plan`] to refine.
#[derive(Debug, Clone)]
pub struct Plan<M> {
    /// State before the change; `None` when creating.
    pub prior: Option<M>,
    /// The configuration as written (may hold unknowns).
    pub config: M,
    /// What the resource will look like after apply, after the schema's defaults and plan
    /// modifiers. The resource may refine it.
    pub planned: M,
    /// Attributes whose change forces replacement (from the schema; the resource may add).
    pub requires_replace: Vec<AttributePath>,
}

impl<M> Plan<M> {
    pub fn is_create(&self) -> bool {
        self.prior.is_none()
    }
    pub fn replaces(&self) -> bool {
        !self.requires_replace.is_empty()
    }
}

/// Moves state written under an older schema version to the current model. The adapter
/// decodes the stored JSON with `prior_schema`, so attributes can be renamed or retyped.
pub struct StateUpgrader<M> {
    pub from_version: i64,
    pub prior_schema: Schema,
    pub upgrade: fn(Value, &mut Diagnostics) -> Option<M>,
}

#[async_trait]
pub trait Resource<D: Send + Sync + 'static>: Send + Sync + 'static {
    type Model: Model;

    /// The type name users write, e.g. `ferry_topic`.
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;

    /// Cross-attribute checks of the configuration (values may be unknown). No network.
    /// Single-attribute rules belong in the schema's validators.
    fn validate(&self, _config: &Self::Model, _diags: &mut Diagnostics) {}

    /// Refines a plan: checks against the live system, adds replacement paths.
    async fn plan(&self, _ctx: &Ctx<D>, _plan: &mut Plan<Self::Model>, _diags: &mut Diagnostics) {}

    /// Creates the object; returns its state, or `None` if nothing was created.
    async fn create(
        &self,
        ctx: &Ctx<D>,
        planned: Self::Model,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model>;

    /// Reads the live object; `None` when it no longer exists (drift: removed from state).
    async fn read(
        &self,
        ctx: &Ctx<D>,
        state: Self::Model,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model>;

    /// Updates in place; returns the new state (the prior one when nothing changed).
    async fn update(
        &self,
        ctx: &Ctx<D>,
        prior: Self::Model,
        planned: Self::Model,
        diags: &mut Diagnostics,
    ) -> Self::Model;

    async fn delete(&self, ctx: &Ctx<D>, prior: Self::Model, diags: &mut Diagnostics);

    /// Turns an import id into a state that `read` completes. The default refuses.
    async fn import(
        &self,
        _ctx: &Ctx<D>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model> {
        diags.error(
            format!("{} cannot be imported", self.type_name()),
            format!("Import of id {id:?} is not supported by this resource type."),
        );
        None
    }

    /// Upgraders from each older schema version still readable.
    fn state_upgraders(&self) -> Vec<StateUpgrader<Self::Model>> {
        Vec::new()
    }
}

#[async_trait]
pub trait DataSource<D: Send + Sync + 'static>: Send + Sync + 'static {
    type Model: Model;
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Self::Model, _diags: &mut Diagnostics) {}
    async fn read(
        &self,
        ctx: &Ctx<D>,
        config: Self::Model,
        diags: &mut Diagnostics,
    ) -> Option<Self::Model>;
}

/// The provider itself: its block, its configure step and its registry.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What resources get from [`Ctx::data`] once configured.
    type Data: Send + Sync + 'static;
    type Model: Model;

    /// The name in resource type names and `TF_LOG_PROVIDER_<NAME>`, e.g. "ferry".
    fn name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Self::Model, _diags: &mut Diagnostics) {}
    /// Builds the data resources share. Values may be unknown during plan.
    async fn configure(&self, config: Self::Model, diags: &mut Diagnostics) -> Option<Self::Data>;
    fn resources(&self) -> Vec<Arc<dyn AnyResource<Self::Data>>>;
    fn data_sources(&self) -> Vec<Arc<dyn AnyDataSource<Self::Data>>>;
}

// ---------------------------------------------------------------------------------------------
// Erased forms: values in, values out.

/// A resource seen through wire values. Implemented for every [`Resource`].
#[async_trait]
pub trait AnyResource<D: Send + Sync + 'static>: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, config: &Value, diags: &mut Diagnostics);
    /// Plans a create or update: schema rules first, then the resource's own.
    async fn plan(
        &self,
        ctx: &Ctx<D>,
        prior: &Value,
        config: &Value,
        proposed: Value,
        diags: &mut Diagnostics,
    ) -> (Value, Vec<AttributePath>);
    async fn create(&self, ctx: &Ctx<D>, planned: &Value, diags: &mut Diagnostics) -> Value;
    async fn read(&self, ctx: &Ctx<D>, state: &Value, diags: &mut Diagnostics) -> Value;
    async fn update(
        &self,
        ctx: &Ctx<D>,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value;
    async fn delete(&self, ctx: &Ctx<D>, prior: &Value, diags: &mut Diagnostics);
    async fn import(&self, ctx: &Ctx<D>, id: &str, diags: &mut Diagnostics) -> Value;
    /// The schema to decode state stored at `version` with (`None`: not upgradable).
    fn schema_for_version(&self, version: i64) -> Option<Type>;
    fn upgrade(&self, version: i64, state: Value, diags: &mut Diagnostics) -> Value;
}

/// The schema's validators, then the object's own checks on its model.
fn validate_with_schema<M: Model>(
    schema: &Schema,
    config: &Value,
    diags: &mut Diagnostics,
    own: impl FnOnce(&M, &mut Diagnostics),
) {
    plan::validate(&schema.block, config, &AttributePath::default(), diags);
    let had_errors = diags.has_errors();
    let mut decode_diags = Diagnostics::default();
    match M::decode_or_report(config, "configuration", &mut decode_diags) {
        Some(m) => own(&m, diags),
        // A value the validators already rejected need not be reported twice.
        None if had_errors => {}
        None => diags.extend(decode_diags),
    }
}

fn encode<M: Model>(m: Option<M>) -> Value {
    m.map_or(Value::Null, |m| m.to_value())
}

/// Keeps each attribute's original value where the resource left it untouched, so a value the
/// model cannot represent exactly (a list with one unknown element) reaches Terraform as sent.
fn merge_untouched(original: &Value, decoded: &Value, result: Value) -> Value {
    match (original, decoded, result) {
        (Value::Object(orig), Value::Object(dec), Value::Object(mut res)) => {
            for (name, value) in res.iter_mut() {
                if dec.get(name) == Some(value)
                    && let Some(o) = orig.get(name)
                {
                    *value = o.clone();
                }
            }
            Value::Object(res)
        }
        (_, _, result) => result,
    }
}

#[async_trait]
impl<D, R> AnyResource<D> for R
where
    D: Send + Sync + 'static,
    R: Resource<D>,
{
    fn type_name(&self) -> &'static str {
        Resource::type_name(self)
    }
    fn schema(&self) -> Schema {
        Resource::schema(self)
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_with_schema(&Resource::schema(self), config, diags, |m: &R::Model, d| {
            Resource::validate(self, m, d)
        });
    }

    async fn plan(
        &self,
        ctx: &Ctx<D>,
        prior: &Value,
        config: &Value,
        mut proposed: Value,
        diags: &mut Diagnostics,
    ) -> (Value, Vec<AttributePath>) {
        let schema = Resource::schema(self);
        let replace = plan::plan_attributes(&schema.block, prior, config, &mut proposed);
        let decoded = (
            if prior.is_null() {
                Some(None)
            } else {
                R::Model::decode_or_report(prior, "prior state", diags).map(Some)
            },
            R::Model::decode_or_report(config, "configuration", diags),
            R::Model::decode_or_report(&proposed, "planned state", diags),
        );
        let (Some(prior_m), Some(config_m), Some(planned_m)) = decoded else {
            return (proposed, replace);
        };
        let before = planned_m.to_value();
        let mut p = Plan {
            prior: prior_m,
            config: config_m,
            planned: planned_m,
            requires_replace: replace,
        };
        Resource::plan(self, ctx, &mut p, diags).await;
        let planned = merge_untouched(&proposed, &before, p.planned.to_value());
        (planned, p.requires_replace)
    }

    async fn create(&self, ctx: &Ctx<D>, planned: &Value, diags: &mut Diagnostics) -> Value {
        let Some(m) = R::Model::decode_or_report(planned, "planned state", diags) else {
            return Value::Null;
        };
        encode(Resource::create(self, ctx, m, diags).await)
    }

    async fn read(&self, ctx: &Ctx<D>, state: &Value, diags: &mut Diagnostics) -> Value {
        let Some(m) = R::Model::decode_or_report(state, "state", diags) else {
            return state.clone();
        };
        encode(Resource::read(self, ctx, m, diags).await)
    }

    async fn update(
        &self,
        ctx: &Ctx<D>,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let (Some(p), Some(n)) = (
            R::Model::decode_or_report(prior, "prior state", diags),
            R::Model::decode_or_report(planned, "planned state", diags),
        ) else {
            return prior.clone();
        };
        Resource::update(self, ctx, p, n, diags).await.to_value()
    }

    async fn delete(&self, ctx: &Ctx<D>, prior: &Value, diags: &mut Diagnostics) {
        if let Some(m) = R::Model::decode_or_report(prior, "state", diags) {
            Resource::delete(self, ctx, m, diags).await;
        }
    }

    async fn import(&self, ctx: &Ctx<D>, id: &str, diags: &mut Diagnostics) -> Value {
        encode(Resource::import(self, ctx, id, diags).await)
    }

    fn schema_for_version(&self, version: i64) -> Option<Type> {
        let current = Resource::schema(self);
        if version == current.version {
            return Some(current.block.implied_type());
        }
        self.state_upgraders()
            .into_iter()
            .find(|u| u.from_version == version)
            .map(|u| u.prior_schema.block.implied_type())
    }

    fn upgrade(&self, version: i64, state: Value, diags: &mut Diagnostics) -> Value {
        if version == Resource::schema(self).version {
            return state;
        }
        match self
            .state_upgraders()
            .into_iter()
            .find(|u| u.from_version == version)
        {
            Some(u) => encode((u.upgrade)(state, diags)),
            None => {
                diags.error(
                    "Cannot upgrade stored state",
                    format!(
                        "State was written by schema version {version}, which this provider cannot read."
                    ),
                );
                Value::Null
            }
        }
    }
}

/// A data source seen through wire values.
#[async_trait]
pub trait AnyDataSource<D: Send + Sync + 'static>: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, config: &Value, diags: &mut Diagnostics);
    async fn read(&self, ctx: &Ctx<D>, config: &Value, diags: &mut Diagnostics) -> Value;
}

#[async_trait]
impl<D, S> AnyDataSource<D> for S
where
    D: Send + Sync + 'static,
    S: DataSource<D>,
{
    fn type_name(&self) -> &'static str {
        DataSource::type_name(self)
    }
    fn schema(&self) -> Schema {
        DataSource::schema(self)
    }
    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_with_schema(
            &DataSource::schema(self),
            config,
            diags,
            |m: &S::Model, d| DataSource::validate(self, m, d),
        );
    }
    async fn read(&self, ctx: &Ctx<D>, config: &Value, diags: &mut Diagnostics) -> Value {
        let Some(m) = S::Model::decode_or_report(config, "configuration", diags) else {
            return Value::Null;
        };
        encode(DataSource::read(self, ctx, m, diags).await)
    }
}
