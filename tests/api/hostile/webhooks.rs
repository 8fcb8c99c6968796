//! Hostile callers: webhooks. See mod.rs.

#[allow(unused_imports)]
use crate::helpers::*;
