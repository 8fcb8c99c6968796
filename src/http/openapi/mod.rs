//! The OpenAPI 3.0 document and Swagger UI.
//!
//! The document is built from the two route tables: the forwarded rows
//! (`crate::http::routes::endpoints`, one operation each, see `upstream_paths`) and the local
//! routes (`crate::http::routes::local`, each documented by its handler's `#[utoipa::path]`).
//! Security and the answers every guarded route can give follow each route's `Guard`; a
//! route added to a table is documented like the rest, with nothing else to list.
//!
//! It is served at `GET /openapi.json`, printed by `wa-gateway openapi`, and checked in as
//! `openapi/wa-gateway.json` (regenerate: `cargo run -- openapi > openapi/wa-gateway.json`, or
//! `UPDATE_OPENAPI=1 cargo test --test api openapi`).

mod fields;
mod responses;
pub mod security;
mod upstream_paths;

pub use responses::ErrorStatus;

use crate::http::routes::endpoints::Tag;
use crate::http::routes::local::{self, Guard, Route};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use std::sync::{Arc, LazyLock};
use utoipa::openapi::path::Operation;
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{InfoBuilder, LicenseBuilder, OpenApi, Ref};
use utoipa::OpenApi as _;

/// Where the document is served, and where Swagger UI lives.
pub const DOCUMENT_PATH: &str = "/openapi.json";
pub const DOCS_PATH: &str = "/docs";

/// The schemas the handlers' annotations name that no other list declares.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(crate::http::error::ErrorBody, crate::http::ops::Status)))]
struct HandlerSchemas;

/// The tags of the local routes; the forwarded table's are its [`Tag`]s.
const LOCAL_TAGS: &[(&str, &str)] = &[
    ("Usage", "The tenant's own quota and usage."),
    (
        "Events",
        "The tenant's event log: every event of its sessions, kept for a week, read by cursor, \
         streamed as Server-Sent Events or over a WebSocket; a reader that reconnects with its \
         last cursor gets exactly what it missed.",
    ),
    (
        "Admin",
        "Tenants, keys, quotas, usage and admins (admin JWT from `POST /admin/v1/login`).",
    ),
    (
        "Operations",
        "Liveness, readiness, metrics and this document. No credentials.",
    ),
];

fn tag_description(tag: Tag) -> &'static str {
    match tag {
        Tag::Sessions => "WhatsApp sessions (one per account): create, start, authenticate by QR or pairing code, stop, delete. A tenant sees and uses only its own.",
        Tag::Messages => "Send messages of every kind, mark them read, show typing. Sends honour `Idempotency-Key`.",
        Tag::Groups => "Create and manage WhatsApp groups.",
        Tag::Channels => "WhatsApp Channels (broadcast only).",
        Tag::Contacts => "Whether a phone number is on WhatsApp.",
        Tag::Presence => "Online, offline, typing and recording status.",
        Tag::Webhooks => "Event subscriptions, relayed by the gateway: signed with your hmacKey, retried by your policy, kept across restarts.",
    }
}

/// Every tag of the document, in its order: the forwarded table's, then the local routes'.
fn tags() -> impl Iterator<Item = (&'static str, &'static str)> {
    Tag::ALL
        .iter()
        .map(|t| (t.as_str(), tag_description(*t)))
        .chain(LOCAL_TAGS.iter().copied())
}

const DESCRIPTION: &str = "\
A multi-tenant gateway in front of the hosted WhatsApp Messaging REST API. `/v1` is the hosted \
API's surface, unchanged: same paths, bodies and errors, with a tenant key instead of the \
upstream key, in any one of `Authorization: Bearer <key>`, `X-Api-Key` or `x-rapidapi-key`.\n\n\
Every error answers `{\"statusCode\", \"error\", \"message\"}`. A method a path does not declare \
answers 405 in that shape. Every `/v1` answer carries the tenant's quota headers; a 429 carries \
`Retry-After`.\n\n\
`/admin/v1` takes an admin JWT from `POST /admin/v1/login`.";

/// The document, built once, as JSON: what is served, printed and checked in.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: LazyLock<serde_json::Value> =
        LazyLock::new(|| serde_json::to_value(build()).expect("the document serializes"));
    &DOCUMENT
}

/// The document as served and checked in: pretty JSON with a final newline.
pub fn document_json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let mut json = serde_json::to_string_pretty(document()).expect("the document serializes");
        json.push('\n');
        json
    });
    &JSON
}

fn build() -> OpenApi {
    let mut doc = upstream_paths::document();
    doc.merge(HandlerSchemas::openapi());
    doc.merge(crate::http::admin::TenancyApi::openapi());
    doc.merge(crate::http::admin::sessions::SessionsAdminApi::openapi());
    doc.merge(crate::http::tenant::webhooks::WebhooksApi::openapi());
    doc.merge(crate::http::tenant::webhook_endpoints::WebhookEndpointsApi::openapi());
    doc.merge(crate::http::tenant::events::EventsApi::openapi());
    doc.info = InfoBuilder::new()
        .title("wa-gateway")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(DESCRIPTION))
        .license(Some(LicenseBuilder::new().name("MIT").build()))
        .build();
    doc.tags = Some(
        tags()
            .map(|(name, description)| {
                TagBuilder::new()
                    .name(name)
                    .description(Some(description))
                    .build()
            })
            .collect(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    security::add_schemes(components);
    for status in ErrorStatus::ALL {
        components
            .responses
            .insert(status.name().to_owned(), status.response().into());
    }
    let document_route = document_route();
    for route in local::all().iter().chain([&document_route]) {
        let Some((kind, operation)) = &route.operation else {
            continue;
        };
        let mut operation = operation.clone();
        operation.security = Some(security::requirements(route.guard));
        complete_handler_errors(&mut operation, route.guard, route.path.contains('{'));
        doc.paths
            .paths
            .entry(route.path.clone())
            .or_default()
            .operations
            .insert(kind.clone(), operation);
    }
    doc
}

/// A handler's annotation lists the answers particular to it; those every handler behind the
/// guard can give are added here (as references to the shared error responses) unless it
/// declares them. The probes answer only what they declare.
fn complete_handler_errors(operation: &mut Operation, guard: Guard, has_params: bool) {
    if matches!(guard, Guard::Open | Guard::MetricsToken | Guard::Ingress) {
        return;
    }
    let mut wanted = Vec::new();
    if operation.request_body.is_some() {
        wanted.extend([
            ErrorStatus::BadRequest,
            ErrorStatus::PayloadTooLarge,
            ErrorStatus::UnsupportedMediaType,
        ]);
    }
    if security::answers_unauthorized(guard) {
        wanted.push(ErrorStatus::Unauthorized);
    }
    if has_params {
        wanted.push(ErrorStatus::NotFound);
    }
    // Every handler behind a guard reads the database, and answers 503 when it is unavailable.
    wanted.push(ErrorStatus::ServiceUnavailable);
    for status in wanted {
        operation
            .responses
            .responses
            .entry(status.code())
            .or_insert_with(|| Ref::from_response_name(status.name()).into());
    }
}

/// The document (this one).
#[utoipa::path(get, path = "/openapi.json", tag = "Operations", operation_id = "openapiDocument",
    responses((status = 200, description = "The OpenAPI 3.0 document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(mime::APPLICATION_JSON)
        .body(document_json())
}

/// The document's own route: a row like the others, kept here because the document lists it
/// (the route table cannot name this module without a circle).
fn document_route() -> Route {
    Route::documented::<__path_openapi_json>(Guard::Open, || web::route().to(openapi_json))
}

/// `GET /openapi.json` and Swagger UI at `/docs/`. Registered as resources with one GET route
/// each (not `SwaggerUi`'s guarded resources), so another method answers 405, not 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let config = Arc::new(
        utoipa_swagger_ui::Config::new([DOCUMENT_PATH])
            .try_it_out_enabled(false)
            .display_request_duration(true)
            .filter(true)
            .persist_authorization(false),
    );
    let document = document_route();
    cfg.service(web::resource(document.path).route((document.handler)().method(document.method)))
        .service(web::resource(DOCS_PATH).route(web::get().to(docs_redirect)))
        .service(
            web::resource(format!("{DOCS_PATH}/{{file:.*}}"))
                .app_data(web::Data::from(config))
                .route(web::get().to(swagger_file)),
        );
}

/// `/docs` without the slash: Swagger UI loads its assets relative to the page.
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, format!("{DOCS_PATH}/")))
        .finish()
}

async fn swagger_file(
    file: web::Path<String>,
    config: web::Data<utoipa_swagger_ui::Config<'static>>,
) -> Result<HttpResponse, crate::http::error::ApiError> {
    let file = file.into_inner();
    match utoipa_swagger_ui::serve(&file, config.into_inner()) {
        Ok(Some(found)) => Ok(HttpResponse::Ok()
            .content_type(found.content_type)
            .body(found.bytes.into_owned())),
        Ok(None) => Err(crate::http::error::ApiError::not_found(format!(
            "no such file: {DOCS_PATH}/{file}"
        ))),
        Err(e) => Err(crate::http::error::ApiError::internal(anyhow::anyhow!(
            "rendering Swagger UI: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::endpoints;
    use serde_json::{json, Value};

    fn operations() -> impl Iterator<Item = (&'static String, &'static Value)> {
        document()["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().values().map(move |op| (path, op)))
    }

    fn codes(op: &Value) -> Vec<&str> {
        op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn declares_openapi_3_0() {
        assert_eq!(document()["openapi"], "3.0.3");
    }

    #[test]
    fn every_row_of_the_table_is_an_operation() {
        for endpoint in endpoints::all() {
            let method = endpoint.method.as_str().to_lowercase();
            let op = &document()["paths"][endpoint.path][&method];
            assert_eq!(
                op["operationId"], endpoint.operation_id,
                "{method} {}",
                endpoint.path
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(value: &Value, root: &Value) {
            match value {
                Value::Object(map) => {
                    if let Some(r) = map.get("$ref").and_then(|r| r.as_str()) {
                        let pointer = r.strip_prefix('#').unwrap();
                        assert!(root.pointer(pointer).is_some(), "{r} does not resolve");
                    }
                    map.values().for_each(|v| walk(v, root));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, root)),
                _ => {}
            }
        }
        walk(document(), document());
    }

    #[test]
    fn every_operation_has_an_id_a_known_tag_and_a_summary() {
        let tags: Vec<&str> = tags().map(|(t, _)| t).collect();
        let mut ids = std::collections::HashSet::new();
        for (path, op) in operations() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "an operation on {path} has no operationId");
            assert!(ids.insert(id), "operationId {id} is used twice");
            let op_tags = op["tags"].as_array().unwrap();
            assert_eq!(op_tags.len(), 1, "{id} must have exactly one tag");
            assert!(
                tags.contains(&op_tags[0].as_str().unwrap()),
                "{id}: unknown tag"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{id} has no summary"
            );
        }
    }

    #[test]
    fn security_follows_the_guard() {
        let paths = &document()["paths"];
        let tenant = json!([{"tenantBearer": []}, {"tenantApiKey": []}, {"rapidApiKey": []}]);
        for endpoint in endpoints::all() {
            let method = endpoint.method.as_str().to_lowercase();
            assert_eq!(
                paths[endpoint.path][&method]["security"], tenant,
                "{}",
                endpoint.path
            );
        }
        for route in local::all() {
            let Some(_) = route.operation else { continue };
            let method = route.method.as_str().to_lowercase();
            let security = &paths[&route.path][&method]["security"];
            let expected = match route.guard {
                Guard::Tenant(_) => tenant.clone(),
                Guard::Stream(_) => json!([{"tenantBearer": []}, {"tenantApiKey": []},
                                           {"rapidApiKey": []}, {"tenantQueryKey": []}]),
                Guard::Admin => json!([{"adminJwt": []}]),
                Guard::MetricsToken => json!([{}, {"metricsToken": []}]),
                Guard::AdminLogin | Guard::Open | Guard::Ingress => json!([]),
            };
            assert_eq!(*security, expected, "{}", route.path);
        }
        assert_eq!(paths["/admin/v1/login"]["post"]["security"], json!([]));
        assert_eq!(paths["/openapi.json"]["get"]["security"], json!([]));
        // Every documented path is a row of one of the tables.
        let documented = operations().count();
        let rows = endpoints::all().len()
            + local::all()
                .iter()
                .filter(|r| r.operation.is_some())
                .count()
            + 1;
        assert_eq!(documented, rows);
    }

    #[test]
    fn operations_declare_the_errors_they_can_answer() {
        let paths = &document()["paths"];
        assert_eq!(
            codes(&paths["/v1/sendText"]["post"]),
            [
                "201", "400", "401", "403", "404", "409", "413", "415", "422", "429", "502", "503",
                "504"
            ]
        );
        assert_eq!(
            codes(&paths["/v1/sessions"]["post"]),
            ["201", "400", "401", "403", "409", "413", "415", "429", "502", "503", "504"]
        );
        // 400: a bad `all` query value.
        assert_eq!(
            codes(&paths["/v1/sessions"]["get"]),
            ["200", "400", "401", "403", "429", "502", "503", "504"]
        );
        assert_eq!(
            codes(&paths["/v1/sessions/{session}/groups/{groupId}"]["get"]),
            ["200", "400", "401", "403", "404", "422", "429", "502", "503", "504"]
        );
        assert!(codes(&paths["/v1/{session}/auth/qr"]["get"]).contains(&"422"));
        assert!(!codes(&paths["/v1/sessions/{session}"]["get"]).contains(&"422"));
        assert_eq!(
            paths["/v1/sendText"]["post"]["responses"]["422"]["$ref"],
            "#/components/responses/UnprocessableEntity"
        );
        let error = &document()["components"]["responses"]["UnprocessableEntity"]["content"]
            ["application/json"]["schema"]["$ref"];
        assert_eq!(error, "#/components/schemas/ErrorBody");
    }

    #[test]
    fn the_qr_code_is_a_png_or_json() {
        let ok =
            &document()["paths"]["/v1/{session}/auth/qr"]["get"]["responses"]["200"]["content"];
        assert_eq!(ok["image/png"]["schema"]["format"], "binary");
        assert!(ok["application/json"]["schema"]["oneOf"].is_array());
    }

    #[test]
    fn every_body_field_has_an_example() {
        fn walk(name: &str, schema: &Value) {
            if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                for (field, prop) in props {
                    // `data` is a base64 file: no example is better than a fake one.
                    let documented = prop.get("example").is_some() || field == "data";
                    assert!(documented, "{name}.{field} has no example");
                    assert!(
                        prop.get("description").is_some(),
                        "{name}.{field} has no description"
                    );
                    walk(&format!("{name}.{field}"), prop);
                }
            }
            for key in ["items", "allOf"] {
                match schema.get(key) {
                    Some(Value::Array(items)) => items.iter().for_each(|s| walk(name, s)),
                    Some(item) => walk(name, item),
                    None => {}
                }
            }
        }
        // The seed's bodies: the rows of the route table (handlers document their own).
        let mut bodies = 0;
        for endpoint in endpoints::all() {
            let method = endpoint.method.as_str().to_lowercase();
            let op = &document()["paths"][endpoint.path][&method];
            if let Some(r) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                let name = r.rsplit('/').next().unwrap();
                walk(name, &document()["components"]["schemas"][name]);
                bodies += 1;
            }
        }
        let with_body = endpoints::all().iter().filter(|e| e.body.is_some()).count();
        assert_eq!(bodies, with_body);
    }

    #[test]
    fn handler_references_are_resolved_to_components() {
        let readyz = &document()["paths"]["/readyz"]["get"]["responses"]["503"];
        assert_eq!(
            readyz["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
    }
}
