//! A Terraform/OpenTofu plugin (protocol 6) host and resource framework, knowing Terraform and
//! nothing about any provider's domain.
//!
//! * [`host`]: the go-plugin handshake, AutoMTLS, hclog logs, side services, signals.
//! * [`adapter`]: the tfplugin6 `Provider` service, the only code that sees the wire.
//! * [`resource`]: the traits a provider, its resources and data sources implement, over typed
//!   [`model`]s, with a [`context::Ctx`] carrying the provider's data, cancellation and deadline.
//! * [`schema`] (defaults, validators, plan modifiers), [`plan`] (applying them), [`value`],
//!   [`codec`], [`diagnostics`], [`timeouts`].

// The derive macro names `::tfplugin::...`; this lets it work inside this crate's tests too.
extern crate self as tfplugin;

pub mod adapter;
pub mod codec;
pub mod context;
pub mod diagnostics;
pub mod host;
pub mod model;
pub mod plan;
pub mod resource;
pub mod schema;
pub mod timeouts;
pub mod value;
pub mod wire;

pub use context::{Ctx, Interrupted};
pub use diagnostics::{AttributePath, Diagnostics};
pub use host::intent::Intent;
pub use host::{PluginInfo, serve_main};
pub use model::{Model, Set, Tf};
pub use resource::{
    AnyDataSource, AnyResource, DataSource, Plan, Provider, Resource, StateUpgrader,
};
pub use schema::{Attribute, Block, NestedBlock, Schema, Validator};
pub use value::{Type, Value};
