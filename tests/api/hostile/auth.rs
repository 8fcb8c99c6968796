//! Hostile callers: auth. See mod.rs.

#[allow(unused_imports)]
use crate::helpers::*;
