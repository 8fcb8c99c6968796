//! Templated path segments other than `{session}` (group and channel ids), checked against the
//! forms the engine takes and re-encoded, so a segment can never become a separator or a dot
//! segment on the upstream or on any proxy in between (security review M3).

use crate::http::error::ApiError;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// Everything but unreserved characters and `@` is encoded in a forwarded segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'^')
    .add(b'[')
    .add(b']')
    .add(b';')
    .add(b':')
    .add(b'=')
    .add(b'&')
    .add(b'+')
    .add(b',');

/// Encoded forms that would become a separator, a dot or a NUL once decoded.
const FORBIDDEN_ENCODED: [&str; 4] = ["%2f", "%5c", "%2e", "%00"];

/// The path to call: `template` with `{session}` replaced by `session` and every other
/// parameter taken from `raw_path` (as received, still encoded), checked and re-encoded.
pub fn upstream_path(
    template: &str,
    raw_path: &str,
    session: Option<&str>,
) -> Result<String, ApiError> {
    let raw: Vec<&str> = raw_path.split('/').collect();
    let template: Vec<&str> = template.split('/').collect();
    if raw.len() != template.len() {
        return Err(ApiError::bad_request("the path does not match its route"));
    }
    let mut out = Vec::with_capacity(template.len());
    for (t, actual) in template.iter().zip(raw) {
        match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            None => out.push((*t).to_owned()),
            Some("session") => out.push(session.unwrap_or(actual).to_owned()),
            Some(param) => out.push(checked_segment(param, actual)?),
        }
    }
    Ok(out.join("/"))
}

fn checked_segment(param: &str, raw: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("{param} is not a valid {}", kind(param)));
    let lower = raw.to_ascii_lowercase();
    if FORBIDDEN_ENCODED.iter().any(|e| lower.contains(e)) || raw.contains('\\') {
        return Err(bad());
    }
    let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| bad())?;
    if decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0']) {
        return Err(bad());
    }
    let valid = match param {
        "groupId" => is_group_id(&decoded),
        "channelId" => is_channel_id(&decoded),
        // A parameter without a known form still may not carry anything but id characters.
        _ => decoded
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-+".contains(c)),
    };
    if !valid {
        return Err(bad());
    }
    Ok(utf8_percent_encode(&decoded, SEGMENT).to_string())
}

fn kind(param: &str) -> &'static str {
    match param {
        "groupId" => "group id (`<digits>@g.us` or `<digits>-<digits>@g.us`)",
        "channelId" => {
            "channel id (`<digits>@newsletter`, `<digits>@s.whatsapp.net` or an invite code)"
        }
        _ => "path parameter",
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `123@g.us` or the older `<creator>-<timestamp>@g.us` (ENGINE.md, chat id formats).
fn is_group_id(id: &str) -> bool {
    let Some(local) = id.strip_suffix("@g.us") else {
        return false;
    };
    match local.split_once('-') {
        Some((a, b)) => digits(a) && digits(b),
        None => digits(local),
    }
}

/// `…@newsletter` (the engine), `…@s.whatsapp.net` (the seed's table), or an invite code
/// (the engine takes the last segment of an invite link; a whole link cannot be one segment).
fn is_channel_id(id: &str) -> bool {
    if let Some(local) = id
        .strip_suffix("@newsletter")
        .or_else(|| id.strip_suffix("@s.whatsapp.net"))
    {
        return digits(local);
    }
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "/v1/sessions/{session}/groups/{groupId}";

    #[test]
    fn refuses_dots_and_encoded_separators() {
        for raw in [
            "..",
            ".",
            "..%2F..%2Fzz",
            "%2e%2e",
            "a%5Cb@g.us",
            "1%00@g.us",
            "%2E",
        ] {
            let path = format!("/v1/sessions/x/groups/{raw}");
            assert!(upstream_path(GROUP, &path, Some("gw_1")).is_err(), "{raw}");
        }
    }

    #[test]
    fn keeps_valid_ids_and_renames_the_session() {
        assert_eq!(
            upstream_path(GROUP, "/v1/sessions/x/groups/1-2%40g.us", Some("gw_1")).unwrap(),
            "/v1/sessions/gw_1/groups/1-2@g.us"
        );
        let channel = "/v1/sessions/{session}/channels/{channelId}";
        for id in ["1@newsletter", "1@s.whatsapp.net", "0029VaAbCdEf1234"] {
            let path = format!("/v1/sessions/x/channels/{id}");
            assert!(upstream_path(channel, &path, Some("g")).is_ok(), "{id}");
        }
        assert!(upstream_path(channel, "/v1/sessions/x/channels/a-b", Some("g")).is_err());
    }
}
