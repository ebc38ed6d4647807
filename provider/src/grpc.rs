//! The tfplugin6 `Provider` service: decodes requests, calls the framework traits, encodes
//! answers. This is the only module that knows the protocol's message shapes.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_proto::tfplugin6 as tf;
use tf::provider_server::Provider as ProviderRpc;
use tonic::{Request, Response, Status};

use crate::framework::diagnostics::{Diagnostic, PathStep, Severity};
use crate::framework::schema::{Block, Nesting};
use crate::framework::{
    AttributePath, DataSource, Diagnostics, Plan, Resource, Schema, Type, Value, codec, plan,
};
use crate::provider::{self, ProviderState};

/// A schema with its implied value type, computed once.
struct Typed<T: ?Sized> {
    schema: Schema,
    ty: Type,
    imp: Arc<T>,
}

pub struct ProviderService {
    state: Arc<ProviderState>,
    provider_schema: Schema,
    provider_type: Type,
    resources: HashMap<&'static str, Typed<dyn Resource>>,
    data_sources: HashMap<&'static str, Typed<dyn DataSource>>,
}

impl Default for ProviderService {
    fn default() -> Self {
        let provider_schema = provider::schema();
        let provider_type = provider_schema.block.implied_type();
        let resources = provider::resources()
            .into_iter()
            .map(|imp| {
                let schema = imp.schema();
                let ty = schema.block.implied_type();
                (imp.type_name(), Typed { schema, ty, imp })
            })
            .collect();
        let data_sources = provider::data_sources()
            .into_iter()
            .map(|imp| {
                let schema = imp.schema();
                let ty = schema.block.implied_type();
                (imp.type_name(), Typed { schema, ty, imp })
            })
            .collect();
        ProviderService {
            state: Arc::new(ProviderState::default()),
            provider_schema,
            provider_type,
            resources,
            data_sources,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions between framework types and protocol messages.

fn schema_to_proto(schema: &Schema) -> tf::Schema {
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
                description: a.description.clone(),
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
                nesting: match b.nesting {
                    Nesting::Single => NestingMode::Single,
                    Nesting::List => NestingMode::List,
                    Nesting::Set => NestingMode::Set,
                } as i32,
                min_items: b.min_items,
                max_items: b.max_items,
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

fn diagnostics_to_proto(diags: &Diagnostics) -> Vec<tf::Diagnostic> {
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
            attribute: d.path.as_ref().map(path_to_proto),
        })
        .collect()
}

/// Decodes a DynamicValue (msgpack, or JSON when that is what was sent).
fn decode(
    value: Option<&tf::DynamicValue>,
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
    result.unwrap_or_else(|e| {
        diags.error(
            format!("Cannot decode {what}"),
            format!("The value sent by Terraform does not match the schema: {e}"),
        );
        Value::Null
    })
}

fn encode(value: &Value, ty: &Type) -> Option<tf::DynamicValue> {
    Some(tf::DynamicValue {
        msgpack: codec::encode_msgpack(value, ty),
        json: Vec::new(),
    })
}

fn unknown_type(kind: &str, name: &str) -> Diagnostics {
    let mut d = Diagnostics::default();
    d.error(
        format!("Unknown {kind} type {name:?}"),
        "This version of the ferry provider does not have it.",
    );
    d
}

impl ProviderService {
    fn resource(&self, name: &str) -> Result<&Typed<dyn Resource>, Diagnostics> {
        self.resources
            .get(name)
            .ok_or_else(|| unknown_type("resource", name))
    }
    fn data_source(&self, name: &str) -> Result<&Typed<dyn DataSource>, Diagnostics> {
        self.data_sources
            .get(name)
            .ok_or_else(|| unknown_type("data source", name))
    }
}

/// Static checks every object gets: deprecations and the `cluster` block's settings.
fn validate_common(schema: &Schema, config: &Value, diags: &mut Diagnostics) {
    plan::deprecation_warnings(&schema.block, config, diags);
    if schema.block.blocks.iter().any(|b| b.name == "cluster") {
        crate::connection::parse(
            config.get("cluster"),
            crate::connection::Origin::ClusterBlock,
            &AttributePath::root("cluster"),
            diags,
        );
    }
}

#[tonic::async_trait]
impl ProviderRpc for ProviderService {
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
            &self.provider_type,
            "provider configuration",
            &mut diags,
        );
        crate::connection::parse(
            &config,
            crate::connection::Origin::Provider,
            &AttributePath::default(),
            &mut diags,
        );
        Ok(Response::new(tf::validate_provider_config::Response {
            diagnostics: diagnostics_to_proto(&diags),
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
                let config = decode(req.config.as_ref(), &r.ty, "configuration", &mut diags);
                validate_common(&r.schema, &config, &mut diags);
                r.imp.validate(&config, &mut diags);
                diags
            }
        };
        Ok(Response::new(tf::validate_resource_config::Response {
            diagnostics: diagnostics_to_proto(&diags),
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
                let config = decode(req.config.as_ref(), &ds.ty, "configuration", &mut diags);
                validate_common(&ds.schema, &config, &mut diags);
                ds.imp.validate(&config, &mut diags);
                diags
            }
        };
        Ok(Response::new(tf::validate_data_resource_config::Response {
            diagnostics: diagnostics_to_proto(&diags),
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
                    match codec::decode_json(&raw.json, &r.ty) {
                        Ok(v) => {
                            let v = r.imp.upgrade_state(req.version, v, &mut diags);
                            encode(&v, &r.ty)
                        }
                        Err(e) => {
                            diags.error("Cannot read stored state", e.to_string());
                            None
                        }
                    }
                }
            }
        };
        Ok(Response::new(tf::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diagnostics_to_proto(&diags),
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
            &self.provider_type,
            "provider configuration",
            &mut diags,
        );
        self.state.configure(&config, &mut diags);
        Ok(Response::new(tf::configure_provider::Response {
            diagnostics: diagnostics_to_proto(&diags),
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
                let current = decode(req.current_state.as_ref(), &r.ty, "state", &mut diags);
                if current.is_null() || diags.has_errors() {
                    req.current_state
                } else {
                    tracing::debug!(type_name = %req.type_name, "ReadResource");
                    let next = r.imp.read(&self.state, &current, &mut diags).await;
                    encode(&next, &r.ty)
                }
            }
        };
        Ok(Response::new(tf::read_resource::Response {
            new_state,
            diagnostics: diagnostics_to_proto(&diags),
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
                    diagnostics: diagnostics_to_proto(&d),
                    ..Default::default()
                }));
            }
        };
        let prior = decode(req.prior_state.as_ref(), &r.ty, "prior state", &mut diags);
        let proposed = decode(
            req.proposed_new_state.as_ref(),
            &r.ty,
            "proposed state",
            &mut diags,
        );
        let config = decode(req.config.as_ref(), &r.ty, "configuration", &mut diags);
        let mut p = Plan {
            prior,
            config,
            planned: proposed,
            requires_replace: Vec::new(),
        };
        // A null proposal is a destroy: nothing to plan.
        if !p.planned.is_null() && !diags.has_errors() {
            if p.is_create() {
                plan::mark_computed_unknown(&r.schema.block, &p.config, &mut p.planned);
            }
            p.requires_replace = plan::replacement_paths(&r.schema.block, &p.prior, &p.planned);
            tracing::debug!(type_name = %req.type_name, create = p.is_create(), "PlanResourceChange");
            r.imp.plan(&self.state, &mut p, &mut diags).await;
        }
        Ok(Response::new(tf::plan_resource_change::Response {
            planned_state: encode(&p.planned, &r.ty),
            requires_replace: p.requires_replace.iter().map(path_to_proto).collect(),
            planned_private: req.prior_private,
            diagnostics: diagnostics_to_proto(&diags),
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
                    diagnostics: diagnostics_to_proto(&d),
                    ..Default::default()
                }));
            }
        };
        let prior = decode(req.prior_state.as_ref(), &r.ty, "prior state", &mut diags);
        let planned = decode(
            req.planned_state.as_ref(),
            &r.ty,
            "planned state",
            &mut diags,
        );
        let new_state = if diags.has_errors() {
            prior
        } else if planned.is_null() {
            tracing::info!(type_name = %req.type_name, "deleting");
            r.imp.delete(&self.state, &prior, &mut diags).await;
            // Keep the object in state if deletion failed, so it is not forgotten.
            if diags.has_errors() {
                prior
            } else {
                Value::Null
            }
        } else if prior.is_null() {
            tracing::info!(type_name = %req.type_name, "creating");
            r.imp.create(&self.state, &planned, &mut diags).await
        } else {
            tracing::info!(type_name = %req.type_name, "updating");
            r.imp
                .update(&self.state, &prior, &planned, &mut diags)
                .await
        };
        Ok(Response::new(tf::apply_resource_change::Response {
            new_state: encode(&new_state, &r.ty),
            private: req.planned_private,
            diagnostics: diagnostics_to_proto(&diags),
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
                let state = r.imp.import(&self.state, &req.id, &mut diags).await;
                if !state.is_null() {
                    imported.push(tf::import_resource_state::ImportedResource {
                        type_name: req.type_name.clone(),
                        state: encode(&state, &r.ty),
                        ..Default::default()
                    });
                }
            }
        }
        Ok(Response::new(tf::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: diagnostics_to_proto(&diags),
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
                let config = decode(req.config.as_ref(), &ds.ty, "configuration", &mut diags);
                if diags.has_errors() {
                    None
                } else {
                    let v = ds.imp.read(&self.state, &config, &mut diags).await;
                    encode(&v, &ds.ty)
                }
            }
        };
        Ok(Response::new(tf::read_data_source::Response {
            state,
            diagnostics: diagnostics_to_proto(&diags),
            ..Default::default()
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<tf::stop_provider::Request>,
    ) -> Result<Response<tf::stop_provider::Response>, Status> {
        tracing::info!("Terraform asked the provider to stop; interrupting long waits");
        provider::request_stop();
        Ok(Response::new(tf::stop_provider::Response::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_converts_and_types_parse_as_json() {
        let svc = ProviderService::default();
        for (name, t) in &svc.resources {
            let p = schema_to_proto(&t.schema);
            for a in &p.block.as_ref().unwrap().attributes {
                serde_json::from_slice::<serde_json::Value>(&a.r#type)
                    .unwrap_or_else(|e| panic!("{name}.{}: {e}", a.name));
            }
        }
        for (name, t) in &svc.data_sources {
            let p = schema_to_proto(&t.schema);
            for a in &p.block.as_ref().unwrap().attributes {
                serde_json::from_slice::<serde_json::Value>(&a.r#type)
                    .unwrap_or_else(|e| panic!("{name}.{}: {e}", a.name));
            }
        }
        assert!(svc.resources.contains_key("ferry_topic"));
        assert!(svc.data_sources.contains_key("ferry_topics"));
    }

    #[test]
    fn diagnostic_paths_become_protocol_steps() {
        let mut d = Diagnostics::default();
        d.attribute_error(AttributePath::root("config").key("retention.ms"), "s", "d");
        let p = diagnostics_to_proto(&d);
        assert_eq!(p[0].severity, tf::diagnostic::Severity::Error as i32);
        assert_eq!(p[0].attribute.as_ref().unwrap().steps.len(), 2);
    }
}
