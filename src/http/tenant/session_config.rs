//! A session's `config` is the organisation's (security review M4, conformance A8): a tenant
//! may set only fields that change nothing outside its own session, and session answers never
//! show the gateway's own registrations on the upstream.

use crate::domain::webhooks::NewSubscription as NewWebhook;
use crate::domain::webhooks::MAX_PER_SESSION;
use crate::http::error::ApiError;
use crate::http::tenant::webhooks::{self, WebhookView};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Fields of `config` a tenant may set: they shape its own session only (ENGINE.md
/// `SessionConfig`). `proxy` would route the organisation's traffic elsewhere; engine tuning
/// (`noweb`, `gows`, `webjs`, `client`) is the organisation's to choose. `webhooks` is the
/// tenant's too, but never reaches the upstream: see [`take_webhooks`].
const TENANT_FIELDS: [&str; 3] = ["metadata", "debug", "ignore"];
const WEBHOOKS: &str = "webhooks";

/// Checks the tenant's `config` in a create or start body, before anything is forwarded:
/// any field that is not the tenant's answers 400 naming it.
pub fn check_tenant_config(body: &Value) -> Result<(), ApiError> {
    let config = match body.get("config") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::bad_request("config must be an object")),
    };
    let not_the_tenants =
        |k: &&String| k.as_str() != WEBHOOKS && !TENANT_FIELDS.contains(&k.as_str());
    if let Some(field) = config.keys().find(not_the_tenants) {
        return Err(ApiError::bad_request(format!(
            "config.{field} may not be set by a tenant (only {} and webhooks are)",
            TENANT_FIELDS.join(", ")
        )));
    }
    Ok(())
}

/// Takes `config.webhooks` out of a create or start body (it never reaches the upstream: the
/// upstream only ever sends to the gateway) and checks every item as
/// `POST /v1/sessions/{session}/webhooks` would; the caller subscribes them once the upstream
/// has the session. Items come in the engine's shape (`url`, `events`, `hmac: {key}`,
/// `retries`, `customHeaders`) or the hosted API's (`webhookUrl`, `hmacKey`); a bad one
/// answers 400 naming `config.webhooks[i].<field>`.
pub async fn take_webhooks(
    body: &mut Value,
    allow_private: bool,
) -> Result<Vec<NewWebhook>, ApiError> {
    let Some(Value::Object(config)) = body.get_mut("config") else {
        return Ok(Vec::new());
    };
    let items = match config.remove(WEBHOOKS) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::bad_request("config.webhooks must be an array")),
    };
    if items.len() as i64 > MAX_PER_SESSION {
        return Err(ApiError::bad_request(format!(
            "config.webhooks: a session may have at most {MAX_PER_SESSION} webhooks"
        )));
    }
    let mut checked = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let named = |e: ApiError| naming_item(e, i, item);
        let hosted = hosted_form(item).map_err(named)?;
        let new = webhooks::parse_subscription(&hosted, allow_private)
            .await
            .map_err(named)?;
        // A session's answer has no place to show a generated secret once.
        if new.signing.generated_secret().is_some() {
            return Err(named(ApiError::bad_request(
                "secret is required with \"signing\": \"standard\" here \
                 (POST /v1/sessions/{session}/webhooks generates one)",
            )));
        }
        checked.push(new);
    }
    Ok(checked)
}

/// An engine-shaped item in the hosted API's shape; a hosted one as it is.
fn hosted_form(item: &Value) -> Result<Value, ApiError> {
    let Value::Object(fields) = item else {
        return Err(ApiError::bad_request("must be an object"));
    };
    let mut hosted = fields.clone();
    if let Some(url) = hosted.remove("url") {
        if hosted.contains_key("webhookUrl") {
            return Err(ApiError::bad_request(
                "url: give url or webhookUrl, not both",
            ));
        }
        hosted.insert("webhookUrl".into(), url);
    }
    match hosted.remove("hmac") {
        None | Some(Value::Null) => {}
        Some(_) if hosted.contains_key("hmacKey") => {
            return Err(ApiError::bad_request(
                "hmac: give hmac.key or hmacKey, not both",
            ))
        }
        Some(Value::Object(hmac)) => {
            if let Some(key) = hmac.get("key").filter(|k| !k.is_null()) {
                hosted.insert("hmacKey".into(), key.clone());
            }
        }
        Some(_) => return Err(ApiError::bad_request("hmac must be an object {key}")),
    }
    Ok(Value::Object(hosted))
}

/// A refusal of item `i`, its field named as the tenant wrote it.
fn naming_item(error: ApiError, i: usize, item: &Value) -> ApiError {
    if !error.status().is_client_error() {
        return error;
    }
    let mut message = error.message().to_owned();
    for (hosted, engine) in [("webhookUrl", "url"), ("hmacKey", "hmac.key")] {
        let engine_root = engine.split('.').next().unwrap_or(engine);
        if item.get(engine_root).is_some() {
            if let Some(rest) = message.strip_prefix(hosted) {
                message = format!("{engine}{rest}");
            }
        }
    }
    let separator = if message.starts_with("must ") {
        " "
    } else {
        "."
    };
    ApiError::new(
        error.status(),
        format!("config.webhooks[{i}]{separator}{message}"),
    )
}

/// Session answers (one or a list) as the tenant sees them: never the upstream's webhook
/// registrations (the gateway's ingress URL and HMAC key); instead the tenant's own relayed
/// subscriptions in the engine's item shape, without their key or header values.
pub fn show_subscriptions(value: &mut Value, by_session: &HashMap<String, Vec<WebhookView>>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|s| show_one(s, by_session)),
        Value::Object(_) => show_one(value, by_session),
        _ => {}
    }
}

fn show_one(session: &mut Value, by_session: &HashMap<String, Vec<WebhookView>>) {
    let Value::Object(fields) = session else {
        return;
    };
    let own = fields
        .get("name")
        .and_then(Value::as_str)
        .and_then(|name| by_session.get(name))
        .filter(|views| !views.is_empty());
    let config = fields.get_mut("config");
    match (config, own) {
        (Some(Value::Object(config)), own) => {
            config.remove(WEBHOOKS);
            if let Some(views) = own {
                config.insert(WEBHOOKS.into(), engine_items(views));
            }
        }
        (_, Some(views)) => {
            let mut config = Map::new();
            config.insert(WEBHOOKS.into(), engine_items(views));
            fields.insert("config".into(), Value::Object(config));
        }
        _ => {}
    }
}

fn engine_items(views: &[WebhookView]) -> Value {
    views
        .iter()
        .map(|v| {
            json!({
                "url": v.webhook_url,
                "events": v.events,
                "signed": v.signed,
                "retries": v.retries,
                "customHeaders": v.custom_headers,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_fields_that_are_not_the_tenants() {
        assert!(check_tenant_config(&json!({"config": {"metadata": {}, "debug": true}})).is_ok());
        assert!(check_tenant_config(&json!({"config": {"webhooks": []}})).is_ok());
        for field in ["proxy", "noweb"] {
            let e = check_tenant_config(&json!({"config": {field: {}}})).unwrap_err();
            assert!(e.to_string().contains(&format!("config.{field}")), "{e}");
        }
    }

    #[test]
    fn strips_registrations_from_lists_and_objects() {
        let mut v = json!([{"name": "a", "config": {"webhooks": [1], "metadata": {}}}]);
        show_subscriptions(&mut v, &HashMap::new());
        assert_eq!(v, json!([{"name": "a", "config": {"metadata": {}}}]));
    }

    #[test]
    fn maps_the_engines_item_shape_and_names_the_field_as_written() {
        let hosted =
            hosted_form(&json!({"url": "https://a.example/h", "hmac": {"key": "k"}})).unwrap();
        assert_eq!(
            hosted,
            json!({"webhookUrl": "https://a.example/h", "hmacKey": "k"})
        );
        let item = json!({"url": "x"});
        let e = naming_item(ApiError::bad_request("webhookUrl must be a URL"), 3, &item);
        assert_eq!(e.message(), "config.webhooks[3].url must be a URL");
        assert!(hosted_form(&json!({"url": "a", "webhookUrl": "b"})).is_err());
    }
}
