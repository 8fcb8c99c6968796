//! Hostile callers: edge. See mod.rs.

#[allow(unused_imports)]
use crate::helpers::*;
