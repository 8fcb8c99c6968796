//! Renaming sessions between the tenant's names and the upstream's, in both directions.

use serde_json::Value;

/// Renames the session where an answer or event names it, and nowhere else (an adopted
/// session may be called `default`, and a message whose text is "default" must stay so):
/// `name`, `session`, `payload.session` and `me.pushName`, on the value and on each item of
/// a list.
pub fn rename_session_fields(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rename_session_fields(v, from, to)),
        Value::Object(map) => {
            for field in ["name", "session"] {
                if let Some(v) = map.get_mut(field) {
                    if v == from {
                        *v = Value::String(to.to_owned());
                    }
                }
            }
            // `payload.session` in events; `me.pushName` defaults to the session's name.
            for (outer, inner) in [("payload", "session"), ("me", "pushName")] {
                if let Some(v) = map.get_mut(outer).and_then(|o| o.get_mut(inner)) {
                    if v == from {
                        *v = Value::String(to.to_owned());
                    }
                }
            }
        }
        _ => {}
    }
}

/// Replaces `from` with `to` inside free text (an upstream error message such as
/// `Session "gw_x" does not exist`), only where it stands as a whole name: not inside a longer
/// run of session-name characters, so an adopted session called `default` does not rewrite
/// "defaults".
pub fn rename_in_text(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_owned();
    }
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find(from) {
        let head = &rest[..at];
        let tail = &rest[at + from.len()..];
        let prev = head.chars().next_back().or(before);
        let bounded =
            !prev.is_some_and(is_name_char) && !tail.chars().next().is_some_and(is_name_char);
        out.push_str(head);
        out.push_str(if bounded { to } else { from });
        before = from.chars().next_back();
        rest = tail;
    }
    out.push_str(rest);
    out
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
    fn renames_only_the_session_fields() {
        let mut v = json!([{"name": "default", "me": {"pushName": "default"}, "body": "default",
                            "payload": {"session": "default", "text": "default"}}]);
        rename_session_fields(&mut v, "default", "sales");
        assert_eq!(
            v,
            json!([{"name": "sales", "me": {"pushName": "sales"}, "body": "default",
                    "payload": {"session": "sales", "text": "default"}}])
        );
    }

    #[test]
    fn renames_whole_names_inside_text_only() {
        assert_eq!(
            rename_in_text(r#"Session "gw_x1" does not exist"#, "gw_x1", "default"),
            r#"Session "default" does not exist"#
        );
        assert_eq!(
            rename_in_text("default, defaults; default", "default", "bot"),
            "bot, defaults; bot"
        );
        assert_eq!(rename_in_text("gw_x1gw_x1", "gw_x1", "a"), "gw_x1gw_x1");
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
