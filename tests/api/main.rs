//! Every integration test builds into this one binary; it only lists the modules.

mod helpers;

mod embedded_db;
mod foundation;
mod sim;
mod webhooks;
