//! The recurring error answers and path parameters of the routes the gateway serves itself
//! (the admin API's, and the tenant's local `/v1` rows), documented once each so the
//! handlers' annotations name them (`responses(..., NoSuchTenant)`, `params(TenantPath)`)
//! instead of repeating their text. A handler taking `web::Path<TenantPath>` documents
//! the path parameters through it (utoipa's actix extras).

use std::collections::BTreeMap;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use uuid::Uuid;

/// One answer in the error shape (`ErrorBody`) under its status.
fn error_answer(status: u16, description: &str) -> BTreeMap<String, RefOr<Response>> {
    let content = ContentBuilder::new()
        .schema(Ref::from_schema_name("ErrorBody"))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .build();
    BTreeMap::from([(status.to_string(), response.into())])
}

macro_rules! error_answers {
    ($($name:ident => $status:literal, $description:literal;)*) => {$(
        #[doc = concat!("`", stringify!($status), "`: ", $description, ".")]
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error_answer($status, $description)
            }
        }
    )*};
}

error_answers! {
    MalformedBody => 400, "Malformed body";
    InvalidQuery => 400, "Invalid query";
    NoSuchTenant => 404, "No such tenant";
    NoSuchKey => 404, "No such key for this tenant";
    NameTaken => 409, "The name is taken";
    InvalidTenant => 422, "Invalid name, plan or quota";
    NoSuchSession => 404, "No such session (another tenant's, or one of the other mode, is not found either)";
    WritesSessions => 403, "The key lacks `sessions:write`";
    UpstreamUnreachable => 502, "The upstream is unreachable";
    WritesWebhooks => 403, "The key lacks `webhooks:write`";
    NoSuchWebhook => 404, "No such session or webhook";
    DeliveryPending => 409, "The delivery is still pending";
    BadDeliveryFilter => 400, "A bad status or limit";
    ReadsEvents => 403, "The key lacks `events:read`, or may not use the session named";
}

/// `/admin/v1/tenants/{tenant_id}...`
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The tenant's id
    pub tenant_id: Uuid,
}

/// `/admin/v1/tenants/{tenant_id}/keys/{key_id}...`
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The tenant's id
    pub tenant_id: Uuid,
    /// The key's id
    pub key_id: String,
}

/// `/v1/sessions/{session}...`: the tenant's name for one of its sessions.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// Session name
    #[param(example = "default")]
    pub session: String,
}

/// `/v1/sessions/{session}/webhooks/{id}...`: the webhook after its session.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookId {
    /// The webhook's id
    pub id: String,
}

/// `.../webhooks/deliveries/{id}...`: the delivery after its session.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryId {
    /// The delivery's id
    pub id: String,
}
