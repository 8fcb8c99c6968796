//! The security schemes of the document, and which a route needs: chosen by the route's
//! [`Guard`] in the route table, so the document says what the extractor enforces.

use crate::http::routes::local::Guard;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::Components;

/// Security scheme names, as they appear in the document and in Swagger UI's Authorize dialog.
pub const TENANT_BEARER: &str = "tenantBearer";
pub const TENANT_API_KEY: &str = "tenantApiKey";
pub const TENANT_RAPIDAPI_KEY: &str = "rapidApiKey";
/// The key in the `x-api-key` query parameter: the event streams only.
pub const TENANT_QUERY_KEY: &str = "tenantQueryKey";
pub const ADMIN_JWT: &str = "adminJwt";
/// The optional `WAGW_METRICS_TOKEN` guarding `/metrics`.
pub const METRICS_TOKEN: &str = "metricsToken";

/// What a route guarded so requires: any one of the listed requirements (an empty list: none).
pub fn requirements(guard: Guard) -> Vec<SecurityRequirement> {
    let scheme = |name: &str| SecurityRequirement::new(name, Vec::<String>::new());
    match guard {
        // Any one of the three ways to present a tenant key.
        Guard::Tenant(_) => [TENANT_BEARER, TENANT_API_KEY, TENANT_RAPIDAPI_KEY]
            .into_iter()
            .map(scheme)
            .collect(),
        Guard::Stream(_) => [
            TENANT_BEARER,
            TENANT_API_KEY,
            TENANT_RAPIDAPI_KEY,
            TENANT_QUERY_KEY,
        ]
        .into_iter()
        .map(scheme)
        .collect(),
        Guard::Admin => vec![scheme(ADMIN_JWT)],
        // Open unless the operator set a token: either requirement satisfies it.
        Guard::MetricsToken => vec![SecurityRequirement::default(), scheme(METRICS_TOKEN)],
        Guard::AdminLogin | Guard::Open | Guard::Ingress => Vec::new(),
    }
}

/// Whether a route so guarded answers 401 to missing or bad credentials.
pub fn answers_unauthorized(guard: Guard) -> bool {
    matches!(guard, Guard::Tenant(_) | Guard::Stream(_) | Guard::Admin)
}

pub fn add_schemes(components: &mut Components) {
    let bearer = |format: Option<&str>, description: &str| {
        let mut http = HttpBuilder::new().scheme(HttpAuthScheme::Bearer);
        if let Some(format) = format {
            http = http.bearer_format(format);
        }
        SecurityScheme::Http(http.description(Some(description)).build())
    };
    let header = |name: &str, description: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            name,
            description,
        )))
    };
    components.add_security_scheme(
        TENANT_BEARER,
        bearer(
            Some("wagw_<key id>_<secret>"),
            "Tenant key as `Authorization: Bearer <key>`",
        ),
    );
    components.add_security_scheme(
        TENANT_API_KEY,
        header("X-Api-Key", "Tenant key in the `X-Api-Key` header"),
    );
    components.add_security_scheme(
        TENANT_RAPIDAPI_KEY,
        header(
            "x-rapidapi-key",
            "Tenant key in the hosted API's own header, so existing clients only change the key",
        ),
    );
    components.add_security_scheme(
        TENANT_QUERY_KEY,
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            crate::http::extract::QUERY_KEY,
            "Tenant key in the `x-api-key` query parameter, for a browser's EventSource or \
             WebSocket, which cannot send headers: taken on /v1/events/stream and /v1/ws only",
        ))),
    );
    components.add_security_scheme(
        ADMIN_JWT,
        bearer(Some("JWT"), "Admin token from `POST /admin/v1/login`"),
    );
    components.add_security_scheme(
        METRICS_TOKEN,
        bearer(
            None,
            "`WAGW_METRICS_TOKEN` as `Authorization: Bearer <token>`, when the operator set one",
        ),
    );
}
