//! The HTTP layer: the edge, the route table, the tenant and admin handlers, the documents.
//! It turns requests into service calls and every error into the one error shape.

pub mod admin;
mod app;
pub mod body;
pub mod console;
pub mod edge;
pub mod error;
pub mod extract;
pub mod ingress;
pub mod listener;
pub mod openapi;
pub mod ops;
pub mod quota_headers;
pub mod routes;
pub mod state;
pub mod tenant;

pub use app::app;
