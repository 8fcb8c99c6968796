//! wa-gateway: a self-hosted, multi-tenant gateway in front of the hosted WhatsApp Messaging
//! REST API. See README.md and DESIGN.md for the architecture.

pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod db;
pub mod edge;
pub mod error;
pub mod idempotency;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod quota;
pub mod sessions;
pub mod sim;
pub mod startup;
pub mod telemetry;
pub mod tenancy;
pub mod upstream;
pub mod webhooks;
