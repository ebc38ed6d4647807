//! The small framework resources are written against: values, schemas, diagnostics and the
//! resource traits. The tfplugin6 adapter in `crate::grpc` is the only code that sees the wire.

pub mod codec;
pub mod diagnostics;
pub mod plan;
pub mod resource;
pub mod schema;
pub mod timeouts;
pub mod value;

pub use diagnostics::{AttributePath, Diagnostics};
pub use resource::{DataSource, Plan, Resource};
pub use schema::{Attribute, Block, NestedBlock, Schema};
pub use value::{Type, Value};
