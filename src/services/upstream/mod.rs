//! The hosted API: its client, and the gateway every call to it goes through.

pub mod client;
pub mod error;
pub mod gateway;

pub use client::{
    TestUpstream, UpstreamAnswer, UpstreamCall, UpstreamClient, Upstreams,
    FORWARDED_ANSWER_HEADERS, RAPIDAPI_HOST, RAPIDAPI_KEY,
};
pub use error::{Origin, UpstreamError, UpstreamErrorKind};
pub use gateway::{Admitted, Gateway, GatewayError, OwnAnswer, Payer};
