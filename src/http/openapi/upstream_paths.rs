//! The `/v1` paths of the document, generated from the route table: one operation per row,
//! with its body, query, success answer and every error status the gateway can answer for it.

use crate::http::openapi::fields;
use crate::http::openapi::responses::ErrorStatus;
use crate::http::openapi::security;
use crate::http::quota_headers as quota;
use crate::http::routes::endpoints::{self, Answer, Endpoint, Handling, SessionIn};
use crate::http::routes::local::Guard;
use crate::http::routes::schema::{Body, FieldType};
use crate::services::idempotency;
use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathItemType,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType};
use utoipa::openapi::{
    Components, ContentBuilder, OpenApi, PathsBuilder, Ref, Required, ResponseBuilder,
    ResponsesBuilder, Schema,
};

/// The `/v1` part of the document: paths, and the schemas they reference.
pub fn document() -> OpenApi {
    let mut schemas = SchemaNames::default();
    let mut paths = PathsBuilder::new();
    for endpoint in endpoints::all() {
        let operation = operation(endpoint, &mut schemas);
        paths = paths.path(
            endpoint.path,
            PathItem::new(item_type(&endpoint.method), operation),
        );
    }
    let mut components = Components::new();
    for (name, schema) in schemas.named {
        components.schemas.insert(name, schema.into());
    }
    components
        .schemas
        .insert("QrCodeImage".into(), qr_image().into());
    components
        .schemas
        .insert("QrCodeValue".into(), qr_value().into());
    let mut doc = OpenApi::new(utoipa::openapi::Info::new("", ""), paths.build());
    doc.components = Some(components);
    doc
}

fn item_type(method: &actix_web::http::Method) -> PathItemType {
    use actix_web::http::Method;
    match *method {
        Method::GET => PathItemType::Get,
        Method::POST => PathItemType::Post,
        Method::PUT => PathItemType::Put,
        Method::PATCH => PathItemType::Patch,
        Method::DELETE => PathItemType::Delete,
        ref other => panic!("the route table uses {other}, which the document cannot express"),
    }
}

fn operation(endpoint: &Endpoint, schemas: &mut SchemaNames) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .tag(endpoint.tag.as_str())
        .operation_id(Some(endpoint.operation_id))
        .summary(Some(endpoint.summary))
        .securities(Some(security::requirements(Guard::Tenant(Some(
            endpoint.scope,
        )))))
        .description(Some(description(endpoint)));
    for name in path_params(endpoint.path) {
        op = op.parameter(path_param(name));
    }
    for param in endpoint.query {
        let description = (!param.description.is_empty()).then_some(param.description);
        op = op.parameter(
            ParameterBuilder::new()
                .name(param.name)
                .parameter_in(ParameterIn::Query)
                .required(if param.required {
                    Required::True
                } else {
                    Required::False
                })
                .description(description)
                .schema(Some(fields::of_type(&param.ty)))
                .example(fields::example(param)),
        );
    }
    if endpoint.idempotent {
        op = op.parameter(
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(format!(
                    "Any 1 to {} printable ASCII characters. A retry with the same key and \
                         the same body within 24 hours answers the first answer again (with \
                         `Idempotent-Replayed: true`) without sending twice; the same key with \
                         a different body answers 422.",
                    idempotency::KEY_MAX_BYTES
                )))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::String)
                        .min_length(Some(1))
                        .max_length(Some(idempotency::KEY_MAX_BYTES))
                        .pattern(Some(idempotency::KEY_PATTERN)),
                )),
            // No example: Swagger UI would pre-fill it, and every "Try it out" would then
            // replay the first answer (or answer 422 for a new body).
        );
    }
    if let Some(body) = endpoint.body {
        let name = schemas.name(body, fields::object(body).into());
        let session_field = match endpoint.session {
            SessionIn::Body(field) => Some(field),
            _ => None,
        };
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(if body.iter().any(|f| f.required) {
                    Required::True
                } else {
                    Required::False
                }))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Ref::from_schema_name(name))
                        .example(Some(fields::minimal_example(body, session_field)))
                        .build(),
                )
                .build(),
        ));
    }
    let mut responses =
        ResponsesBuilder::new().response(endpoint.success.to_string(), success(endpoint, schemas));
    if also_201(endpoint) {
        responses = responses.response("201", success(endpoint, schemas));
    }
    for status in error_statuses(endpoint) {
        responses = responses.response(status.code(), Ref::from_response_name(status.name()));
    }
    op.responses(responses.build()).build()
}

fn description(endpoint: &Endpoint) -> String {
    let mut text = format!(
        "Requires the scope `{}` on the tenant key.",
        endpoint.scope.as_str()
    );
    match endpoint.session {
        SessionIn::Path => {
            text.push_str(" The session is named in the path; a session of another tenant answers 404, as a missing one does.")
        }
        SessionIn::Body(field) => text.push_str(&format!(
            " The session is named by the body's `{field}` (default `default`); a session of another tenant answers 404, as a missing one does."
        )),
        SessionIn::Query(param) => text.push_str(&format!(
            " The session is named by the query's `{param}` (default `default`); a session of another tenant answers 404, as a missing one does."
        )),
        SessionIn::Absent => {}
    }
    match endpoint.handling {
        Handling::CreateSession => text.push_str(
            " The session counts against the tenant's `max_sessions`; a name the tenant already uses answers 409.",
        ),
        Handling::ListSessions => text.push_str(" Only the tenant's own sessions are listed."),
        Handling::CheckExists => text.push_str(
            " Answers are cached per tenant and number for a while: call it before every send without spending quota each time.",
        ),
        Handling::WebhookRelay => text.push_str(
            " Subscriptions are kept by the gateway, which relays the upstream's events to them: signed with your `hmacKey`, retried by your policy, never lost in a restart.",
        ),
        Handling::StopSession => text.push_str(
            " With `logout: true` the upstream also logs the session out and deletes it.",
        ),
        Handling::DeleteSession if endpoint.method != actix_web::http::Method::DELETE => text
            .push_str(
                " The upstream stops the session, logs it out and deletes it (its deprecated logout call); the gateway forgets it too.",
            ),
        Handling::Forward | Handling::DeleteSession => {}
    }
    if endpoint.sends_message {
        text.push_str(" On a paced session (`PUT /v1/sessions/{session}/pacing`, or the tenant's default) the send waits its turn, in arrival order across every replica, and the answer's `X-Pacing-Wait-Ms` says how long it waited; a send that would wait longer than the gateway waits answers 429 at once with `Retry-After`, naming the policy, having sent nothing and spent no quota.");
    }
    if let Some(status) = endpoint.requires_status.map(|s| s.as_str()) {
        text.push_str(&format!(
            " The session must be `{status}`: the upstream waits up to 5 s for it, then answers 422 with the session, its status and the status expected."
        ));
    }
    text
}

/// ENGINE.md §1 success codes (conformance B8): the engine's OAS 2026 declares 200 for a few
/// POSTs (the group actions) that NestJS, and older versions, answer 201. Both are documented.
fn also_201(endpoint: &Endpoint) -> bool {
    endpoint.method == actix_web::http::Method::POST && endpoint.success == 200
}

/// The `{name}` segments of a path, in order.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn path_param(name: &str) -> ParameterBuilder {
    let (description, example, ty) = match name {
        "session" => ("Session name", "default", FieldType::Session),
        "groupId" => ("Group id", "120363024802736123@g.us", FieldType::String),
        "channelId" => (
            "Channel id",
            "120363024802736123@newsletter",
            FieldType::String,
        ),
        other => panic!("no description for path parameter `{other}`: add one here"),
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(fields::of_type(&ty)))
        .example(Some(Value::String(example.into())))
}

fn success(endpoint: &Endpoint, schemas: &mut SchemaNames) -> utoipa::openapi::Response {
    let description = match endpoint.success {
        201 => "Done",
        _ => "OK",
    };
    let mut response = ResponseBuilder::new().description(description);
    match endpoint.answer {
        Answer::Object(body) => {
            let name = schemas.name(body, fields::answer_object(body).into());
            response = response.content(
                "application/json",
                ContentBuilder::new()
                    .schema(Ref::from_schema_name(name))
                    .build(),
            );
        }
        Answer::List(body) => {
            let name = schemas.name(body, fields::answer_object(body).into());
            response = response.content(
                "application/json",
                ContentBuilder::new()
                    .schema(Ref::from_schema_name(name).to_array_builder())
                    .build(),
            );
        }
        Answer::QrCode => {
            response = response
                .description(
                    "The QR code: a PNG for `format=image` or `binary`, or JSON: \
                     `{mimetype, data}` with `Accept: application/json`, `{value}` for `format=raw`",
                )
                .content(
                    "image/png",
                    ContentBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(SchemaType::String)
                                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
                        )
                        .build(),
                )
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(
                            OneOfBuilder::new()
                                .item(Ref::from_schema_name("QrCodeImage"))
                                .item(Ref::from_schema_name("QrCodeValue")),
                        )
                        .build(),
                );
        }
        Answer::Native(about) => {
            // Any JSON: a schema would break generated clients on another engine's shape.
            response = response.description(about).content(
                "application/json",
                ContentBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(SchemaType::Value))
                    .build(),
            );
        }
        Answer::Empty => {}
    }
    for (name, (description, example)) in quota::HEADERS.iter().zip(QUOTA_HEADERS) {
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(SchemaType::String))
                .description(Some(format!("{description} (e.g. `{example}`)")))
                .build(),
        );
    }
    if endpoint.sends_message {
        response = response.header(
            quota::PACING_WAIT,
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(SchemaType::Integer))
                .description(Some(
                    "On a paced session's send: how long it waited for its turn, in milliseconds (e.g. `30412`)",
                ))
                .build(),
        );
    }
    response.build()
}

/// What each of `quota::HEADERS` says, with an example, in its order.
const QUOTA_HEADERS: [(&str, &str); 5] = [
    ("The tenant's monthly allowance", "1000"),
    ("Calls left this month", "958"),
    ("Seconds until the month resets (UTC)", "86400"),
    ("The per-second limit (IETF draft)", "10;w=1"),
    (
        "Standing in the current second (IETF draft)",
        "limit=10, remaining=9, reset=1",
    ),
];

/// Every error status the gateway can answer for this row, and why.
pub fn error_statuses(endpoint: &Endpoint) -> Vec<ErrorStatus> {
    use ErrorStatus::*;
    let names_resource = path_params(endpoint.path).any(|p| p != "session");
    let names_session = endpoint.session != SessionIn::Absent;
    let mut statuses = Vec::new();
    // Body and query validation, a malformed session name, a malformed Idempotency-Key, and
    // the upstream's own refusal of an id it cannot parse.
    if endpoint.body.is_some()
        || !endpoint.query.is_empty()
        || endpoint.idempotent
        || names_resource
    {
        statuses.push(BadRequest);
    }
    statuses.push(Unauthorized);
    // A missing scope, a suspended tenant, a key limited to other sessions.
    statuses.push(Forbidden);
    if (names_session && endpoint.handling != Handling::CreateSession) || names_resource {
        statuses.push(NotFound);
    }
    // The session name is taken; or an Idempotency-Key still in progress.
    if endpoint.handling == Handling::CreateSession || endpoint.idempotent {
        statuses.push(Conflict);
    }
    if endpoint.body.is_some() {
        statuses.push(PayloadTooLarge);
        statuses.push(UnsupportedMediaType);
    }
    // The session is not in the status the call needs; an Idempotency-Key reused with
    // another body.
    if endpoint.requires_status.is_some() || endpoint.idempotent {
        statuses.push(Unprocessable);
    }
    statuses.push(TooManyRequests);
    statuses.push(BadGateway);
    statuses.push(ServiceUnavailable);
    statuses.push(GatewayTimeout);
    statuses
}

/// `format=image|binary` with `Accept: application/json`.
fn qr_image() -> Schema {
    ObjectBuilder::new()
        .property(
            "mimetype",
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .example(Some("image/png".into())),
        )
        .required("mimetype")
        .property(
            "data",
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
                .description(Some("The PNG, base64-encoded")),
        )
        .required("data")
        .into()
}

/// `format=raw`.
fn qr_value() -> Schema {
    ObjectBuilder::new()
        .property(
            "value",
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .description(Some("The text encoded in the QR code"))
                .example(Some("2@abc...".into())),
        )
        .required("value")
        .into()
}

/// The schemas of the rows' bodies, by their `Body::schema_name`: one component per name, and
/// one name per schema, so generated clients share a type wherever the gateway does.
#[derive(Default)]
struct SchemaNames {
    named: Vec<(String, Schema)>,
}

impl SchemaNames {
    fn name(&mut self, body: &Body, schema: Schema) -> String {
        let json = serde_json::to_value(&schema).expect("schemas serialize");
        let same = |s: &Schema| serde_json::to_value(s).ok().as_ref() == Some(&json);
        if let Some((name, other)) = self.named.iter().find(|(n, _)| n == body.schema_name) {
            assert!(same(other), "two different schemas are both named {name}");
            return name.clone();
        }
        if let Some((name, _)) = self.named.iter().find(|(_, s)| same(s)) {
            panic!(
                "{} and {name} are the same schema: give them one Body",
                body.schema_name
            );
        }
        self.named.push((body.schema_name.to_owned(), schema));
        body.schema_name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn the_idempotency_key_pattern_agrees_with_parse_key() {
        let pattern = regex::Regex::new(idempotency::KEY_PATTERN).unwrap();
        let longest = "k".repeat(idempotency::KEY_MAX_BYTES);
        for key in ["abc-123", "!~", "a b", "tab\there", "", &longest] {
            let parsed = HeaderValue::from_str(key)
                .ok()
                .is_some_and(|v| idempotency::parse_key(&v).is_ok());
            let documented = pattern.is_match(key) && key.len() <= idempotency::KEY_MAX_BYTES;
            assert_eq!(parsed, documented, "{key:?}");
        }
    }
}
