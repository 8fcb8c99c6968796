//! A session's `config` is the organisation's (security review M4, conformance A8): a tenant
//! may set only fields that change nothing outside its own session, and session answers never
//! show the gateway's own registrations on the upstream.

use crate::error::ApiError;
use serde_json::Value;

/// Fields of `config` a tenant may set: they shape its own session only (ENGINE.md
/// `SessionConfig`). `proxy` would route the organisation's traffic elsewhere, `webhooks`
/// would bypass the relay; engine tuning (`noweb`, `gows`, `webjs`, `client`) is the
/// organisation's to choose.
const TENANT_FIELDS: [&str; 3] = ["metadata", "debug", "ignore"];

/// Checks the tenant's `config` in a create or start body, before anything is forwarded:
/// any field that is not the tenant's answers 400 naming it. `config.webhooks` would register
/// a target on the upstream, past the relay and its SSRF guard: it is refused with a pointer
/// to the relay's own endpoint.
pub fn check_tenant_config(body: &Value) -> Result<(), ApiError> {
    let config = match body.get("config") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::bad_request("config must be an object")),
    };
    if config.contains_key("webhooks") {
        return Err(ApiError::bad_request(
            "config.webhooks may not be set by a tenant: register webhooks with \
             POST /v1/sessions/{session}/webhooks (they are relayed, signed and retried)",
        ));
    }
    if let Some(field) = config.keys().find(|k| !TENANT_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "config.{field} may not be set by a tenant (only {} are)",
            TENANT_FIELDS.join(", ")
        )));
    }
    Ok(())
}

/// Removes the upstream's webhook registrations (the gateway's ingress URL and HMAC key)
/// from a session answer or a list of them.
pub fn strip_registrations(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(strip_one),
        Value::Object(_) => strip_one(value),
        _ => {}
    }
}

fn strip_one(session: &mut Value) {
    if let Some(Value::Object(config)) = session.get_mut("config") {
        config.remove("webhooks");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_fields_that_are_not_the_tenants() {
        assert!(check_tenant_config(&json!({"config": {"metadata": {}, "debug": true}})).is_ok());
        for field in ["proxy", "webhooks", "noweb"] {
            let e = check_tenant_config(&json!({"config": {field: {}}})).unwrap_err();
            assert!(e.to_string().contains(&format!("config.{field}")), "{e}");
        }
    }

    #[test]
    fn strips_registrations_from_lists_and_objects() {
        let mut v = json!([{"name": "a", "config": {"webhooks": [1], "metadata": {}}}]);
        strip_registrations(&mut v);
        assert_eq!(v, json!([{"name": "a", "config": {"metadata": {}}}]));
    }
}
