//! wa-gateway: a self-hosted, multi-tenant gateway in front of the hosted WhatsApp Messaging
//! REST API. See README.md and DESIGN.md for the architecture.

pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod services;
pub mod sim;
pub mod startup;
pub mod store;
pub mod telemetry;
