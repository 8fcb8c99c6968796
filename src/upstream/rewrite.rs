//! Renaming sessions between the tenant's names and the upstream's, in both directions.

use serde_json::Value;

/// Replaces every string in `value` equal to `from` with `to`. Upstream session names are
/// random and long, so a string equal to one is that session wherever it appears.
pub fn rename_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| rename_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| rename_strings(v, from, to)),
        _ => {}
    }
}

/// Rewrites the `{session}` segment of `raw_path` (as received, still percent-encoded),
/// found at the same position as in `template`.
pub fn replace_path_segment(template: &str, raw_path: &str, param: &str, with: &str) -> String {
    let marker = format!("{{{param}}}");
    template
        .split('/')
        .zip(raw_path.split('/'))
        .map(|(t, actual)| if t == marker { with } else { actual })
        .collect::<Vec<_>>()
        .join("/")
}

/// Sets query parameter `name` to `value` (adding it when absent), keeping the others.
pub fn set_query_param(query: &str, name: &str, value: &str) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.push((name.to_owned(), value.to_owned()));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The value of query parameter `name`, if present.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renames_every_equal_string_and_nothing_else() {
        let mut v = json!({"name": "gw_x", "list": ["gw_x", "gw_xy"], "nested": {"session": "gw_x", "n": 1}});
        rename_strings(&mut v, "gw_x", "default");
        assert_eq!(
            v,
            json!({"name": "default", "list": ["default", "gw_xy"], "nested": {"session": "default", "n": 1}})
        );
    }

    #[test]
    fn replaces_the_session_segment_only() {
        assert_eq!(
            replace_path_segment(
                "/v1/sessions/{session}/groups/{groupId}",
                "/v1/sessions/default/groups/1%40g.us",
                "session",
                "gw_abc"
            ),
            "/v1/sessions/gw_abc/groups/1%40g.us"
        );
        assert_eq!(
            replace_path_segment(
                "/v1/{session}/auth/qr",
                "/v1/bot/auth/qr",
                "session",
                "gw_1"
            ),
            "/v1/gw_1/auth/qr"
        );
    }

    #[test]
    fn query_params() {
        assert_eq!(
            set_query_param("phone=123&session=bot", "session", "gw_1"),
            "phone=123&session=gw_1"
        );
        assert_eq!(
            set_query_param("phone=123", "session", "gw_1"),
            "phone=123&session=gw_1"
        );
        assert_eq!(
            query_param("a=1&session=x%20y", "session").as_deref(),
            Some("x y")
        );
    }
}
