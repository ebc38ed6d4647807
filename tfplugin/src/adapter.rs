//! The tfplugin6 `Provider` service: decodes requests, calls the provider's resources through
//! their erased forms, encodes answers. This is the only module that knows the protocol's
//! message shapes; it knows nothing of any provider's domain.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ferry_proto::tfplugin6 as tf;
use tf::provider_server::Provider as ProviderRpc;
use tonic::{Request, Response, Status};

use crate::context::{Ctx, StopSignal};
use crate::diagnostics::{Diagnostic, PathStep, Severity};
use crate::host::intent::Intent;
use crate::model::Model;
use crate::resource::{AnyDataSource, AnyResource, Provider};
use crate::schema::{Block, Nesting};
use crate::{AttributePath, Diagnostics, Schema, Type, Value, codec, plan, wire};

/// A schema with the type its values have on the wire, computed once.
struct Typed<T: ?Sized> {
    schema: Schema,
    ty: Type,
    imp: Arc<T>,
}

pub struct ProviderService<P: Provider> {
    provider: Arc<P>,
    data: RwLock<Option<Arc<P::Data>>>,
    stop: StopSignal,
    intent: Intent,
    provider_schema: Schema,
    provider_type: Type,
    resources: HashMap<&'static str, Typed<dyn AnyResource<P::Data>>>,
    data_sources: HashMap<&'static str, Typed<dyn AnyDataSource<P::Data>>>,
}

impl<P: Provider> ProviderService<P> {
    pub fn new(provider: P, stop: StopSignal, intent: Intent) -> Self {
        let provider_schema = provider.schema();
        let provider_type = wire::wire_type(&provider_schema.block);
        let resources = provider
            .resources()
            .into_iter()
            .map(|imp| {
                let schema = imp.schema();
                let ty = wire::wire_type(&schema.block);
                (imp.type_name(), Typed { schema, ty, imp })
            })
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|imp| {
                let schema = imp.schema();
                let ty = wire::wire_type(&schema.block);
                (imp.type_name(), Typed { schema, ty, imp })
            })
            .collect();
        ProviderService {
            provider: Arc::new(provider),
            data: RwLock::new(None),
            stop,
            intent,
            provider_schema,
            provider_type,
            resources,
            data_sources,
        }
    }

    /// The context for one request, or an error if the provider was never configured.
    fn ctx(&self, diags: &mut Diagnostics) -> Option<Ctx<P::Data>> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner()).clone();
        match data {
            Some(d) => Some(Ctx::new(d, self.stop.clone(), self.intent)),
            None => {
                diags.error(
                    "Provider not configured",
                    "The CLI called this operation before ConfigureProvider succeeded; check the provider block's diagnostics.",
                );
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions between framework types and protocol messages.

/// A schema as the protocol carries it (descriptions include the schema-level rules).
pub fn schema_to_proto(schema: &Schema) -> tf::Schema {
    tf::Schema {
        version: schema.version,
        block: Some(block_to_proto(&schema.block, schema.version)),
    }
}

fn block_to_proto(block: &Block, version: i64) -> tf::schema::Block {
    use tf::schema::nested_block::NestingMode;
    tf::schema::Block {
        version,
        attributes: block
            .attributes
            .iter()
            .map(|a| tf::schema::Attribute {
                name: a.name.clone(),
                r#type: a.ty.to_json().to_string().into_bytes(),
                description: a.full_description(),
                required: a.required,
                optional: a.optional,
                computed: a.computed,
                sensitive: a.sensitive,
                description_kind: tf::StringKind::Plain as i32,
                deprecated: a.deprecation.is_some(),
                deprecation_message: a.deprecation.clone().unwrap_or_default(),
                ..Default::default()
            })
            .collect(),
        block_types: block
            .blocks
            .iter()
            .map(|b| tf::schema::NestedBlock {
                type_name: b.name.clone(),
                block: Some(block_to_proto(&b.block, 0)),
                // A single block is a list of at most one on the wire (see `wire`).
                nesting: match b.nesting {
                    Nesting::Single | Nesting::List => NestingMode::List,
                    Nesting::Set => NestingMode::Set,
                } as i32,
                min_items: match b.nesting {
                    Nesting::Single => b.min_items.min(1),
                    _ => b.min_items,
                },
                max_items: match b.nesting {
                    Nesting::Single => 1,
                    _ => b.max_items,
                },
            })
            .collect(),
        description: block.description.clone(),
        description_kind: tf::StringKind::Plain as i32,
        deprecated: block.deprecated,
        deprecation_message: String::new(),
    }
}

fn path_to_proto(path: &AttributePath) -> tf::AttributePath {
    use tf::attribute_path::{Step, step::Selector};
    tf::AttributePath {
        steps: path
            .0
            .iter()
            .map(|s| Step {
                selector: Some(match s {
                    PathStep::Attribute(a) => Selector::AttributeName(a.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

/// Diagnostics with their paths as Terraform sees the value of `block` (the resource, data
/// source or provider the request was about).
fn diagnostics_to_proto(diags: &Diagnostics, block: Option<&Block>) -> Vec<tf::Diagnostic> {
    diags
        .0
        .iter()
        .map(|d: &Diagnostic| tf::Diagnostic {
            severity: match d.severity {
                Severity::Error => tf::diagnostic::Severity::Error,
                Severity::Warning => tf::diagnostic::Severity::Warning,
            } as i32,
            summary: d.summary.clone(),
            detail: d.detail.clone(),
            attribute: d.path.as_ref().map(|p| match block {
                Some(b) => path_to_proto(&wire::path_to_wire(b, p)),
                None => path_to_proto(p),
            }),
        })
        .collect()
}

/// Decodes a DynamicValue (msgpack, or JSON when that is what was sent) of `block`, whose wire
/// type is `ty`, into the shape resources see.
fn decode(
    value: Option<&tf::DynamicValue>,
    block: &Block,
    ty: &Type,
    what: &str,
    diags: &mut Diagnostics,
) -> Value {
    let Some(dv) = value else { return Value::Null };
    let result = if dv.msgpack.is_empty() && !dv.json.is_empty() {
        codec::decode_json(&dv.json, ty)
    } else {
        codec::decode_msgpack(&dv.msgpack, ty)
    };
    match result {
        Ok(v) => wire::from_wire(block, v),
        Err(e) => {
            diags.error(
                format!("Cannot decode {what}"),
                format!("The value sent by Terraform does not match the schema: {e}"),
            );
            Value::Null
        }
    }
}

/// Encodes a value of `block` (wire type `ty`) in the shape Terraform expects.
fn encode(value: &Value, block: &Block, ty: &Type) -> Option<tf::DynamicValue> {
    Some(tf::DynamicValue {
        msgpack: codec::encode_msgpack(&wire::to_wire(block, value.clone()), ty),
        json: Vec::new(),
    })
}

/// Stored JSON state in, current wire value out. `prior_ty` is the type resources see in the
/// schema version that wrote it; the JSON decoder accepts a single block as an object (written
/// before single blocks were lists on the wire) or as a list of one (written since).
fn upgrade_json(
    json: &[u8],
    prior_ty: &Type,
    upgrade: impl FnOnce(Value, &mut Diagnostics) -> Value,
    block: &Block,
    ty: &Type,
    diags: &mut Diagnostics,
) -> Option<tf::DynamicValue> {
    match codec::decode_json(json, prior_ty) {
        Ok(v) => {
            let v = upgrade(v, diags);
            encode(&v, block, ty)
        }
        Err(e) => {
            diags.error("Cannot read stored state", e.to_string());
            None
        }
    }
}

fn unknown_type(kind: &str, name: &str) -> Diagnostics {
    let mut d = Diagnostics::default();
    d.error(
        format!("Unknown {kind} type {name:?}"),
        "This version of the ferry provider does not have it.",
    );
    d
}

impl<P: Provider> ProviderService<P> {
    fn resource(&self, name: &str) -> Result<&Typed<dyn AnyResource<P::Data>>, Diagnostics> {
        self.resources
            .get(name)
            .ok_or_else(|| unknown_type("resource", name))
    }
    fn data_source(&self, name: &str) -> Result<&Typed<dyn AnyDataSource<P::Data>>, Diagnostics> {
        self.data_sources
            .get(name)
            .ok_or_else(|| unknown_type("data source", name))
    }
    /// The block diagnostics about a resource's value point into.
    fn resource_block(&self, name: &str) -> Option<&Block> {
        self.resources.get(name).map(|t| &t.schema.block)
    }
    fn data_source_block(&self, name: &str) -> Option<&Block> {
        self.data_sources.get(name).map(|t| &t.schema.block)
    }
}

#[tonic::async_trait]
impl<P: Provider> ProviderRpc for ProviderService<P> {
    async fn get_metadata(
        &self,
        _request: Request<tf::get_metadata::Request>,
    ) -> Result<Response<tf::get_metadata::Response>, Status> {
        Ok(Response::new(tf::get_metadata::Response {
            server_capabilities: Some(tf::ServerCapabilities::default()),
            resources: self
                .resources
                .keys()
                .map(|n| tf::get_metadata::ResourceMetadata {
                    type_name: n.to_string(),
                })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|n| tf::get_metadata::DataSourceMetadata {
                    type_name: n.to_string(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<tf::get_provider_schema::Request>,
    ) -> Result<Response<tf::get_provider_schema::Response>, Status> {
        tracing::debug!("GetProviderSchema");
        Ok(Response::new(tf::get_provider_schema::Response {
            provider: Some(schema_to_proto(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(n, t)| (n.to_string(), schema_to_proto(&t.schema)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(n, t)| (n.to_string(), schema_to_proto(&t.schema)))
                .collect(),
            server_capabilities: Some(tf::ServerCapabilities::default()),
            ..Default::default()
        }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _request: Request<tf::get_resource_identity_schemas::Request>,
    ) -> Result<Response<tf::get_resource_identity_schemas::Response>, Status> {
        Ok(Response::new(
            tf::get_resource_identity_schemas::Response::default(),
        ))
    }

    async fn validate_provider_config(
        &self,
        request: Request<tf::validate_provider_config::Request>,
    ) -> Result<Response<tf::validate_provider_config::Response>, Status> {
        let req = request.into_inner();
        let mut diags = Diagnostics::default();
        let config = decode(
            req.config.as_ref(),
            &self.provider_schema.block,
            &self.provider_type,
            "provider configuration",
            &mut diags,
        );
        if !diags.has_errors() {
            plan::validate(
                &self.provider_schema.block,
                &config,
                &AttributePath::default(),
                &mut diags,
            );
            if let Some(m) =
                P::Model::decode_or_report(&config, "provider configuration", &mut diags)
            {
                self.provider.validate(&m, &mut diags);
            }
        }
        Ok(Response::new(tf::validate_provider_config::Response {
            diagnostics: diagnostics_to_proto(&diags, Some(&self.provider_schema.block)),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<tf::validate_resource_config::Request>,
    ) -> Result<Response<tf::validate_resource_config::Response>, Status> {
        let req = request.into_inner();
        let diags = match self.resource(&req.type_name) {
            Err(d) => d,
            Ok(r) => {
                let mut diags = Diagnostics::default();
                let config = decode(
                    req.config.as_ref(),
                    &r.schema.block,
                    &r.ty,
                    "configuration",
                    &mut diags,
                );
                if !diags.has_errors() {
                    r.imp.validate(&config, &mut diags);
                }
                diags
            }
        };
        Ok(Response::new(tf::validate_resource_config::Response {
            diagnostics: diagnostics_to_proto(&diags, self.resource_block(&req.type_name)),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<tf::validate_data_resource_config::Request>,
    ) -> Result<Response<tf::validate_data_resource_config::Response>, Status> {
        let req = request.into_inner();
        let diags = match self.data_source(&req.type_name) {
            Err(d) => d,
            Ok(ds) => {
                let mut diags = Diagnostics::default();
                let config = decode(
                    req.config.as_ref(),
                    &ds.schema.block,
                    &ds.ty,
                    "configuration",
                    &mut diags,
                );
                if !diags.has_errors() {
                    ds.imp.validate(&config, &mut diags);
                }
                diags
            }
        };
        Ok(Response::new(tf::validate_data_resource_config::Response {
            diagnostics: diagnostics_to_proto(&diags, self.data_source_block(&req.type_name)),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<tf::upgrade_resource_state::Request>,
    ) -> Result<Response<tf::upgrade_resource_state::Response>, Status> {
        let req = request.into_inner();
        let mut diags = Diagnostics::default();
        let upgraded = match self.resource(&req.type_name) {
            Err(d) => {
                diags = d;
                None
            }
            Ok(r) => {
                let raw = req.raw_state.unwrap_or_default();
                if raw.json.is_empty() {
                    diags.error(
                        "Unsupported state format",
                        "ferry stores state as JSON; this state is in the legacy flatmap format.",
                    );
                    None
                } else {
                    // Old state is decoded with the schema it was written with.
                    match r.imp.schema_for_version(req.version) {
                        None => {
                            r.imp.upgrade(req.version, Value::Null, &mut diags);
                            None
                        }
                        Some(prior_ty) => upgrade_json(
                            &raw.json,
                            &prior_ty,
                            |v, diags| r.imp.upgrade(req.version, v, diags),
                            &r.schema.block,
                            &r.ty,
                            &mut diags,
                        ),
                    }
                }
            }
        };
        Ok(Response::new(tf::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diagnostics_to_proto(&diags, self.resource_block(&req.type_name)),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<tf::configure_provider::Request>,
    ) -> Result<Response<tf::configure_provider::Response>, Status> {
        let req = request.into_inner();
        tracing::info!(terraform_version = %req.terraform_version, "configuring the ferry provider");
        let mut diags = Diagnostics::default();
        let config = decode(
            req.config.as_ref(),
            &self.provider_schema.block,
            &self.provider_type,
            "provider configuration",
            &mut diags,
        );
        if !diags.has_errors()
            && let Some(m) =
                P::Model::decode_or_report(&config, "provider configuration", &mut diags)
            && let Some(data) = self.provider.configure(m, &mut diags).await
        {
            *self.data.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(data));
        }
        Ok(Response::new(tf::configure_provider::Response {
            diagnostics: diagnostics_to_proto(&diags, Some(&self.provider_schema.block)),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<tf::read_resource::Request>,
    ) -> Result<Response<tf::read_resource::Response>, Status> {
        let req = request.into_inner();
        let mut diags = Diagnostics::default();
        let new_state = match self.resource(&req.type_name) {
            Err(d) => {
                diags = d;
                req.current_state
            }
            Ok(r) => {
                let current = decode(
                    req.current_state.as_ref(),
                    &r.schema.block,
                    &r.ty,
                    "state",
                    &mut diags,
                );
                if current.is_null() || diags.has_errors() {
                    req.current_state
                } else if let Some(ctx) = self.ctx(&mut diags) {
                    tracing::debug!(type_name = %req.type_name, "ReadResource");
                    let next = r.imp.read(&ctx, &current, &mut diags).await;
                    encode(&next, &r.schema.block, &r.ty)
                } else {
                    req.current_state
                }
            }
        };
        Ok(Response::new(tf::read_resource::Response {
            new_state,
            diagnostics: diagnostics_to_proto(&diags, self.resource_block(&req.type_name)),
            private: req.private,
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<tf::plan_resource_change::Request>,
    ) -> Result<Response<tf::plan_resource_change::Response>, Status> {
        let req = request.into_inner();
        let mut diags = Diagnostics::default();
        let r = match self.resource(&req.type_name) {
            Ok(r) => r,
            Err(d) => {
                return Ok(Response::new(tf::plan_resource_change::Response {
                    diagnostics: diagnostics_to_proto(&d, None),
                    ..Default::default()
                }));
            }
        };
        let prior = decode(
            req.prior_state.as_ref(),
            &r.schema.block,
            &r.ty,
            "prior state",
            &mut diags,
        );
        let proposed = decode(
            req.proposed_new_state.as_ref(),
            &r.schema.block,
            &r.ty,
            "proposed state",
            &mut diags,
        );
        let config = decode(
            req.config.as_ref(),
            &r.schema.block,
            &r.ty,
            "configuration",
            &mut diags,
        );
        let mut planned = proposed.clone();
        let mut requires_replace = Vec::new();
        // A null proposal is a destroy: nothing to plan.
        if !proposed.is_null()
            && !diags.has_errors()
            && let Some(ctx) = self.ctx(&mut diags)
        {
            tracing::debug!(type_name = %req.type_name, create = prior.is_null(), "PlanResourceChange");
            (planned, requires_replace) = r
                .imp
                .plan(&ctx, &prior, &config, proposed, &mut diags)
                .await;
        }
        Ok(Response::new(tf::plan_resource_change::Response {
            planned_state: encode(&planned, &r.schema.block, &r.ty),
            requires_replace: requires_replace
                .iter()
                .map(|p| path_to_proto(&wire::path_to_wire(&r.schema.block, p)))
                .collect(),
            planned_private: req.prior_private,
            diagnostics: diagnostics_to_proto(&diags, self.resource_block(&req.type_name)),
            ..Default::default()
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<tf::apply_resource_change::Request>,
    ) -> Result<Response<tf::apply_resource_change::Response>, Status> {
        let req = request.into_inner();
        let mut diags = Diagnostics::default();
        let r = match self.resource(&req.type_name) {
            Ok(r) => r,
            Err(d) => {
                return Ok(Response::new(tf::apply_resource_change::Response {
                    new_state: req.prior_state,
                    diagnostics: diagnostics_to_proto(&d, None),
                    ..Default::default()
                }));
            }
        };
        let prior = decode(
            req.prior_state.as_ref(),
            &r.schema.block,
            &r.ty,
            "prior state",
            &mut diags,
        );
        let planned = decode(
            req.planned_state.as_ref(),
            &r.schema.block,
            &r.ty,
            "planned state",
            &mut diags,
        );
        let ctx = if diags.has_errors() {
            None
        } else {
            self.ctx(&mut diags)
        };
        let new_state = if let Some(ctx) = ctx {
            if planned.is_null() {
                tracing::info!(type_name = %req.type_name, "deleting");
                r.imp.delete(&ctx, &prior, &mut diags).await;
                // Keep the object in state if deletion failed, so it is not forgotten.
                if diags.has_errors() {
                    prior
                } else {
                    Value::Null
                }
            } else if prior.is_null() {
                tracing::info!(type_name = %req.type_name, "creating");
                r.imp.create(&ctx, &planned, &mut diags).await
            } else {
                tracing::info!(type_name = %req.type_name, "updating");
                r.imp.update(&ctx, &prior, &planned, &mut diags).await
            }
        } else {
            prior
        };
        Ok(Response::new(tf::apply_resource_change::Response {
            new_state: encode(&new_state, &r.schema.block, &r.ty),
            private: req.planned_private,
            diagnostics: diagnostics_to_proto(&diags, self.resource_block(&req.type_name)),
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<tf::import_resource_state::Request>,
    ) -> Result<Response<tf::import_resource_state::Response>, Status> {
        let req = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut imported = Vec::new();
        match self.resource(&req.type_name) {
            Err(d) => diags = d,
            Ok(r) => {
                tracing::info!(type_name = %req.type_name, id = %req.id, "importing");
                let state = match self.ctx(&mut diags) {
                    Some(ctx) => r.imp.import(&ctx, &req.id, &mut diags).await,
                    None => Value::Null,
                };
                if !state.is_null() {
                    imported.push(tf::import_resource_state::ImportedResource {
                        type_name: req.type_name.clone(),
                        state: encode(&state, &r.schema.block, &r.ty),
                        ..Default::default()
                    });
                }
            }
        }
        Ok(Response::new(tf::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: diagnostics_to_proto(&diags, self.resource_block(&req.type_name)),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<tf::read_data_source::Request>,
    ) -> Result<Response<tf::read_data_source::Response>, Status> {
        let req = request.into_inner();
        let mut diags = Diagnostics::default();
        let state = match self.data_source(&req.type_name) {
            Err(d) => {
                diags = d;
                None
            }
            Ok(ds) => {
                let config = decode(
                    req.config.as_ref(),
                    &ds.schema.block,
                    &ds.ty,
                    "configuration",
                    &mut diags,
                );
                match self.ctx(&mut diags) {
                    Some(ctx) if !diags.has_errors() => {
                        let v = ds.imp.read(&ctx, &config, &mut diags).await;
                        encode(&v, &ds.schema.block, &ds.ty)
                    }
                    _ => None,
                }
            }
        };
        Ok(Response::new(tf::read_data_source::Response {
            state,
            diagnostics: diagnostics_to_proto(&diags, self.data_source_block(&req.type_name)),
            ..Default::default()
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<tf::stop_provider::Request>,
    ) -> Result<Response<tf::stop_provider::Response>, Status> {
        tracing::info!("Terraform asked the provider to stop; interrupting long waits");
        self.stop.trigger();
        Ok(Response::new(tf::stop_provider::Response::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_converts_with_full_descriptions_and_json_types() {
        use crate::schema::{Attribute, NestedBlock, Validator};
        let schema = Schema {
            version: 2,
            block: Block::new("r")
                .attribute(
                    Attribute::optional("workers", Type::Number)
                        .describe("Workers.")
                        .validate(Validator::int_range(1, 64, "Invalid worker count"))
                        .default(Value::int(1)),
                )
                .block(NestedBlock::single(
                    "inner",
                    Block::new("").attribute(Attribute::optional("m", Type::map(Type::String))),
                )),
        };
        let p = schema_to_proto(&schema);
        let block = p.block.unwrap();
        assert_eq!(block.version, 2);
        let workers = &block.attributes[0];
        assert_eq!(workers.description, "Workers. From 1 to 64. Default: `1`.");
        assert!(workers.optional && workers.computed);
        let inner = block.block_types[0].block.as_ref().unwrap();
        let ty: serde_json::Value = serde_json::from_slice(&inner.attributes[0].r#type).unwrap();
        assert_eq!(ty, serde_json::json!(["map", "string"]));
    }

    /// `name`, `cluster { servers, sasl { password } }` (required), `timeouts`.
    fn connection_schema() -> Block {
        use crate::schema::{Attribute, NestedBlock};
        let sasl = Block::new("").attribute(Attribute::optional("password", Type::String));
        let mut cluster = NestedBlock::single(
            "cluster",
            Block::new("")
                .attribute(Attribute::optional("servers", Type::list(Type::String)))
                .block(NestedBlock::single("sasl", sasl)),
        );
        cluster.min_items = 1;
        cluster.max_items = 1;
        Block::new("")
            .attribute(Attribute::required("name", Type::String))
            .block(cluster)
            .block(crate::timeouts::block())
    }

    #[test]
    fn single_blocks_are_list_blocks_of_at_most_one() {
        use tf::schema::nested_block::NestingMode;
        let p = schema_to_proto(&Schema {
            version: 0,
            block: connection_schema(),
        });
        let block = p.block.unwrap();
        let find = |b: &tf::schema::Block, n: &str| {
            b.block_types
                .iter()
                .find(|x| x.type_name == n)
                .cloned()
                .unwrap()
        };
        let cluster = find(&block, "cluster");
        assert_eq!(cluster.nesting, NestingMode::List as i32);
        assert_eq!((cluster.min_items, cluster.max_items), (1, 1), "required");
        let sasl = find(cluster.block.as_ref().unwrap(), "sasl");
        assert_eq!(sasl.nesting, NestingMode::List as i32);
        assert_eq!((sasl.min_items, sasl.max_items), (0, 1), "optional");
        let timeouts = find(&block, "timeouts");
        assert_eq!(timeouts.nesting, NestingMode::List as i32);
        assert_eq!((timeouts.min_items, timeouts.max_items), (0, 1));
    }

    fn decode_wire(dv: &tf::DynamicValue, block: &Block) -> Value {
        codec::decode_msgpack(&dv.msgpack, &wire::wire_type(block)).unwrap()
    }

    #[test]
    fn old_object_shaped_state_and_new_list_shaped_state_both_upgrade() {
        let block = connection_schema();
        let ty = wire::wire_type(&block);
        let internal = block.implied_type();
        let old = br#"{"name":"m","cluster":{"servers":["a:9092"],"sasl":{"password":"p"}},"timeouts":null}"#;
        let new = br#"{"name":"m","cluster":[{"servers":["a:9092"],"sasl":[{"password":"p"}]}],"timeouts":[]}"#;
        let mut seen = Vec::new();
        for json in [&old[..], &new[..]] {
            let mut diags = Diagnostics::default();
            let dv = upgrade_json(
                json,
                &internal,
                |v, _| {
                    seen.push(v.clone());
                    v
                },
                &block,
                &ty,
                &mut diags,
            )
            .unwrap();
            assert!(diags.0.is_empty(), "{:?}", diags.0);
            let out = decode_wire(&dv, &block);
            let cluster = &out.get("cluster").as_list().unwrap()[0];
            assert_eq!(
                cluster.get("sasl").as_list().unwrap()[0].get("password"),
                &Value::string("p")
            );
            assert_eq!(out.get("timeouts"), &Value::List(vec![]));
        }
        // The resource's upgrader saw the same object-shaped value both times.
        assert_eq!(seen[0], seen[1]);
        assert_eq!(
            seen[0].get("cluster").get("sasl").get("password"),
            &Value::string("p")
        );
        // An absent optional block, stored either way, is absent.
        for json in [
            &br#"{"name":"m","cluster":{"servers":[],"sasl":null}}"#[..],
            &br#"{"name":"m","cluster":[{"servers":[],"sasl":[]}]}"#[..],
        ] {
            let mut diags = Diagnostics::default();
            let dv = upgrade_json(json, &internal, |v, _| v, &block, &ty, &mut diags).unwrap();
            let out = decode_wire(&dv, &block);
            assert_eq!(
                out.get("cluster").as_list().unwrap()[0].get("sasl"),
                &Value::List(vec![])
            );
        }
        // Garbage is still an error.
        let mut diags = Diagnostics::default();
        let bad = br#"{"name":"m","cluster":[{"servers":[]},{"servers":[]}]}"#;
        assert!(upgrade_json(bad, &internal, |v, _| v, &block, &ty, &mut diags).is_none());
        assert!(diags.has_errors());
    }

    #[test]
    fn diagnostics_inside_single_blocks_point_at_item_zero() {
        let block = connection_schema();
        let mut d = Diagnostics::default();
        d.attribute_error(
            AttributePath::root("cluster").attr("sasl").attr("password"),
            "s",
            "d",
        );
        let p = diagnostics_to_proto(&d, Some(&block));
        use tf::attribute_path::step::Selector;
        let steps: Vec<Selector> = p[0]
            .attribute
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|s| s.selector.clone().unwrap())
            .collect();
        assert_eq!(
            steps,
            vec![
                Selector::AttributeName("cluster".into()),
                Selector::ElementKeyInt(0),
                Selector::AttributeName("sasl".into()),
                Selector::ElementKeyInt(0),
                Selector::AttributeName("password".into()),
            ]
        );
    }

    #[test]
    fn diagnostic_paths_become_protocol_steps() {
        let mut d = Diagnostics::default();
        d.attribute_error(AttributePath::root("config").key("retention.ms"), "s", "d");
        let p = diagnostics_to_proto(&d, None);
        assert_eq!(p[0].severity, tf::diagnostic::Severity::Error as i32);
        assert_eq!(p[0].attribute.as_ref().unwrap().steps.len(), 2);
    }
}
