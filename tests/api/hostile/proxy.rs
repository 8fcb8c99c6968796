//! Hostile callers: proxy. See mod.rs.

#[allow(unused_imports)]
use crate::helpers::*;
