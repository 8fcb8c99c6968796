//! Request body schemas of the hosted API, as data.
//!
//! One description serves two purposes: validating a body before it spends quota (a request
//! the upstream would reject is answered 400 here, naming the field) and generating the
//! OpenAPI schema of the same body, so the document cannot drift from what is enforced.
//! Unknown fields are allowed and forwarded untouched: the upstream may know more than we do.

use crate::domain::{events, SessionName};
use crate::http::error::ApiError;
use serde_json::Value;

/// The type of one field, with the rule the upstream applies to it.
#[derive(Debug, Clone, Copy)]
pub enum FieldType {
    String,
    /// A string with at least one non-blank character.
    Text,
    Bool,
    /// An integer within the bounds given (inclusive).
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A number within an inclusive range.
    Number {
        min: f64,
        max: f64,
    },
    /// A session name, by `SessionName`'s rule.
    Session,
    /// Webhook event names, at least one, each one of `domain::events::EVENT_NAMES`.
    Events,
    /// A WhatsApp chat id: `1234567890`, `...@c.us`, `...@g.us`, `...@newsletter`, ...
    ChatId,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// A string the upstream answers from a set that grows with its versions (the known
    /// values are listed in the field's description); any string is accepted.
    OpenEnum(&'static [&'static str]),
    /// A media file: `url` or base64 `data`, plus `mimetype`.
    File,
    Object(&'static [Field]),
    /// An array of strings; `min` items at least.
    Strings {
        min: usize,
    },
    /// An array of chat ids.
    ChatIds,
    /// `sendText`'s `mentions`: chat ids, or `["all"]` to mention every group member
    /// (ENGINE.md §4; the engine takes `"all"` since 2025.11.1).
    Mentions,
    /// An array of objects; `min` items at least.
    Objects {
        fields: &'static [Field],
        min: usize,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub required: bool,
    pub description: &'static str,
    /// A JSON literal shown as the example in the OpenAPI document.
    pub example: &'static str,
}

impl Field {
    pub const fn required(
        name: &'static str,
        ty: FieldType,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        Self {
            name,
            ty,
            required: true,
            description,
            example,
        }
    }

    pub const fn optional(
        name: &'static str,
        ty: FieldType,
        description: &'static str,
        example: &'static str,
    ) -> Self {
        let mut field = Self::required(name, ty, description, example);
        field.required = false;
        field
    }
}

/// A JSON body, request or answer: its fields, and the name of its schema in the document.
/// Rows that take or answer the same `Body` share the schema, so generated clients share a type.
#[derive(Debug)]
pub struct Body {
    pub schema_name: &'static str,
    pub fields: &'static [Field],
}

impl Body {
    pub const fn new(schema_name: &'static str, fields: &'static [Field]) -> Self {
        Self {
            schema_name,
            fields,
        }
    }
}

impl std::ops::Deref for Body {
    type Target = [Field];

    fn deref(&self) -> &[Field] {
        self.fields
    }
}

impl<'a> IntoIterator for &'a Body {
    type Item = &'a Field;
    type IntoIter = std::slice::Iter<'a, Field>;

    fn into_iter(self) -> Self::IntoIter {
        self.fields.iter()
    }
}

impl FieldType {
    /// Any integer.
    pub const INTEGER: FieldType = FieldType::Integer {
        min: None,
        max: None,
    };
}

/// The suffixes WhatsApp uses for the kinds of chat.
pub const CHAT_SUFFIXES: &[&str] = &[
    "c.us",
    "g.us",
    "newsletter",
    "s.whatsapp.net",
    "lid",
    "broadcast",
];

/// Why a body was refused: the message names the field (with its path) and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Checks `body` against `fields`. The body must be a JSON object.
pub fn validate(body: &Value, fields: &[Field]) -> Result<(), Invalid> {
    let Value::Object(map) = body else {
        return Err(Invalid("the request body must be a JSON object".into()));
    };
    validate_object(map, fields, "")
}

fn validate_object(
    map: &serde_json::Map<String, Value>,
    fields: &[Field],
    prefix: &str,
) -> Result<(), Invalid> {
    for field in fields {
        let path = format!("{prefix}{}", field.name);
        match map.get(field.name) {
            None | Some(Value::Null) if field.required => {
                return Err(Invalid(format!("{path} is required")))
            }
            None | Some(Value::Null) => {}
            Some(value) => check(value, &field.ty, &path)?,
        }
    }
    Ok(())
}

fn check(value: &Value, ty: &FieldType, path: &str) -> Result<(), Invalid> {
    let fail = |rule: &str| Err(Invalid(format!("{path} {rule}")));
    match ty {
        FieldType::String | FieldType::OpenEnum(_) => {
            if !value.is_string() {
                return fail("must be a string");
            }
        }
        FieldType::Text => match value.as_str() {
            Some(s) if !s.trim().is_empty() => {}
            Some(_) => return fail("must not be empty"),
            None => return fail("must be a string"),
        },
        FieldType::Session => match value.as_str() {
            Some(s) => SessionName::parse(s)
                .map(drop)
                .map_err(|e| Invalid(format!("{path}: {}", message_of(e))))?,
            None => return fail("must be a string"),
        },
        FieldType::Bool => {
            if !value.is_boolean() {
                return fail("must be true or false");
            }
        }
        FieldType::Integer { min, max } => check_integer(value, *min, *max, path)?,
        FieldType::Number { min, max } => match value.as_f64() {
            Some(n) if (*min..=*max).contains(&n) => {}
            Some(_) => return fail(&format!("must be between {min} and {max}")),
            None => return fail("must be a number"),
        },
        FieldType::ChatId => {
            match value.as_str() {
                Some(s) if is_chat_id(s) => {}
                Some(_) => return fail(
                    "must be a phone number with country code (1234567890) or a chat id such as \
                 1234567890@c.us, 120363024802736123@g.us or 120363024802736123@newsletter",
                ),
                None => return fail("must be a string"),
            }
        }
        FieldType::Enum(options) => match value.as_str() {
            Some(s) if options.contains(&s) => {}
            _ => return fail(&format!("must be one of: {}", options.join(", "))),
        },
        FieldType::File => check_file(value, path)?,
        FieldType::Object(fields) => match value {
            Value::Object(map) => validate_object(map, fields, &format!("{path}."))?,
            _ => return fail("must be an object"),
        },
        FieldType::Strings { min } => {
            for (item, at) in items(value, *min, "strings", path)? {
                check(item, &FieldType::Text, &at)?;
            }
        }
        FieldType::Events => {
            let names = items(value, 1, "strings", path)?
                .map(|(item, at)| match item.as_str() {
                    Some(s) if !s.trim().is_empty() => Ok(s.to_owned()),
                    _ => check(item, &FieldType::Text, &at).map(|()| String::new()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            // The relay's own check, so the message lists the valid events as it does.
            events::parse_events(Some(&names)).map_err(|e| Invalid(message_of(e)))?;
        }
        FieldType::ChatIds => {
            for (item, at) in items(value, 0, "chat ids", path)? {
                check(item, &FieldType::ChatId, &at)?;
            }
        }
        FieldType::Mentions => {
            let Some(items) = value.as_array() else {
                return fail("must be an array of chat ids, or [\"all\"]");
            };
            for (i, item) in items.iter().enumerate() {
                if item.as_str() != Some(MENTION_ALL) {
                    check(item, &FieldType::ChatId, &format!("{path}[{i}]"))?;
                }
            }
        }
        FieldType::Objects { fields, min } => {
            for (item, at) in items(value, *min, "objects", path)? {
                check(item, &FieldType::Object(fields), &at)?;
            }
        }
    }
    Ok(())
}

/// What a rule's owner says when it refuses a value, as it would say it to the caller.
fn message_of(refusal: impl Into<ApiError>) -> String {
    refusal.into().message().to_owned()
}

/// The items of an array of `what` with at least `min` of them, each with its path.
fn items<'v>(
    value: &'v Value,
    min: usize,
    what: &str,
    path: &str,
) -> Result<impl Iterator<Item = (&'v Value, String)> + use<'v>, Invalid> {
    let Some(items) = value.as_array() else {
        return Err(Invalid(format!("{path} must be an array of {what}")));
    };
    if items.len() < min {
        let plural = if min == 1 { "" } else { "s" };
        return Err(Invalid(format!(
            "{path} must have at least {min} item{plural}"
        )));
    }
    let path = path.to_owned();
    Ok(items
        .iter()
        .enumerate()
        .map(move |(i, item)| (item, format!("{path}[{i}]"))))
}

fn check_integer(
    value: &Value,
    min: Option<i64>,
    max: Option<i64>,
    path: &str,
) -> Result<(), Invalid> {
    if !(value.is_i64() || value.is_u64()) {
        return Err(Invalid(format!("{path} must be an integer")));
    }
    let n = value.as_i64();
    let below = min.is_some_and(|min| n.is_some_and(|n| n < min));
    let above = max.is_some_and(|max| n.is_none_or(|n| n > max));
    if below || above {
        let (min, max) = (min.unwrap_or(i64::MIN), max.unwrap_or(i64::MAX));
        return Err(Invalid(format!("{path} must be between {min} and {max}")));
    }
    Ok(())
}

fn check_file(value: &Value, path: &str) -> Result<(), Invalid> {
    let Value::Object(file) = value else {
        return Err(Invalid(format!(
            "{path} must be an object with url or data, and mimetype"
        )));
    };
    let url = file.get("url").filter(|v| !v.is_null());
    let data = file.get("data").filter(|v| !v.is_null());
    match (url, data) {
        (None, None) => return Err(Invalid(format!("{path}.url or {path}.data is required"))),
        (Some(_), Some(_)) => return Err(Invalid(format!("{path} takes url or data, not both"))),
        (Some(u), None) => check_url(u, &format!("{path}.url"))?,
        (None, Some(d)) => check_base64(d, &format!("{path}.data"))?,
    }
    validate_object(file, FILE_FIELDS, &format!("{path}."))
}

/// The parts of `file` other than its source.
pub const FILE_FIELDS: &[Field] = &[
    Field::required(
        "mimetype",
        FieldType::Text,
        "MIME type of the file",
        r#""image/jpeg""#,
    ),
    Field::optional(
        "filename",
        FieldType::String,
        "File name shown to the recipient",
        r#""photo.jpg""#,
    ),
];

/// The mention of every group member in `mentions`.
pub const MENTION_ALL: &str = "all";

/// The status feed's chat id, the one chat whose local part is not a number (ENGINE.md §1,
/// chatId formats: `status@broadcast`).
pub const STATUS_BROADCAST: &str = "status@broadcast";

/// Every chat id form the engine takes (ENGINE.md §1, chatId formats): a bare phone number
/// (the engine appends `@c.us`), `<digits>@c.us`, `@lid` and the seed's `@s.whatsapp.net`,
/// `<digits[-digits]>@g.us`, `<digits>@newsletter`, `<digits>@broadcast` and
/// `status@broadcast`.
pub fn is_chat_id(s: &str) -> bool {
    if s == STATUS_BROADCAST {
        return true;
    }
    let (local, suffix) = match s.split_once('@') {
        Some((local, suffix)) => (local, Some(suffix)),
        None => (s, None),
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
        && local.bytes().any(|b| b.is_ascii_digit());
    local_ok && suffix.is_none_or(|s| CHAT_SUFFIXES.contains(&s))
}

fn check_url(value: &Value, path: &str) -> Result<(), Invalid> {
    let ok = value
        .as_str()
        .and_then(|s| url::Url::parse(s).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!("{path} must be an http(s) URL")))
    }
}

/// Base64 as the engine decodes it (Node's `Buffer.from(data, 'base64')`): either alphabet,
/// padded or not, whitespace and line breaks ignored (conformance A2).
fn check_base64(value: &Value, path: &str) -> Result<(), Invalid> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine};
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
    let Some(s) = value.as_str() else {
        return Err(Invalid(format!("{path} must be a base64 string")));
    };
    // Some clients send a data URL; the upstream accepts the bare payload after the comma.
    let payload = s.split_once(";base64,").map_or(s, |(_, p)| p);
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let decodes = STANDARD.decode(&compact).is_ok() || URL_SAFE.decode(&compact).is_ok();
    if compact.is_empty() || !decodes {
        return Err(Invalid(format!("{path} must be valid base64")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLL: &[Field] = &[
        Field::required("chatId", FieldType::ChatId, "", ""),
        Field::required(
            "poll",
            FieldType::Object(&[
                Field::required("name", FieldType::Text, "", ""),
                Field::required("options", FieldType::Strings { min: 2 }, "", ""),
            ]),
            "",
            "",
        ),
        Field::optional(
            "latitude",
            FieldType::Number {
                min: -90.0,
                max: 90.0,
            },
            "",
            "",
        ),
        Field::optional("file", FieldType::File, "", ""),
    ];

    fn err(body: Value) -> String {
        validate(&body, POLL).unwrap_err().0
    }

    #[test]
    fn names_the_missing_or_mistyped_field() {
        assert_eq!(err(json!({})), "chatId is required");
        assert_eq!(err(json!({"chatId": 5})), "chatId must be a string");
        assert!(err(json!({"chatId": "abc"})).starts_with("chatId must be a phone number"));
        assert_eq!(
            err(json!({"chatId": "1", "poll": {"name": "q"}})),
            "poll.options is required"
        );
        assert_eq!(
            err(json!({"chatId": "1", "poll": {"name": "q", "options": []}})),
            "poll.options must have at least 2 items"
        );
        assert_eq!(
            err(json!({"chatId": "1", "poll": {"name": "q", "options": ["a", " "]}})),
            "poll.options[1] must not be empty"
        );
    }

    #[test]
    fn checks_ranges_and_files() {
        let ok = json!({"chatId": "1@c.us", "poll": {"name": "q", "options": ["a", "b"]}});
        assert!(validate(&ok, POLL).is_ok());
        let mut body = ok.clone();
        body["latitude"] = json!(91);
        assert_eq!(
            validate(&body, POLL).unwrap_err().0,
            "latitude must be between -90 and 90"
        );
        body["latitude"] = json!(45.5);
        body["file"] = json!({"mimetype": "image/png"});
        assert_eq!(
            validate(&body, POLL).unwrap_err().0,
            "file.url or file.data is required"
        );
        body["file"] = json!({"url": "https://x.test/a.png"});
        assert_eq!(
            validate(&body, POLL).unwrap_err().0,
            "file.mimetype is required"
        );
        body["file"] = json!({"data": "not base64!", "mimetype": "image/png"});
        assert_eq!(
            validate(&body, POLL).unwrap_err().0,
            "file.data must be valid base64"
        );
        body["file"] = json!({"data": "aGVsbG8=", "mimetype": "image/png"});
        assert!(validate(&body, POLL).is_ok());
        // Either alphabet, padded or not, wrapped or not (the engine's Buffer.from).
        for data in [
            "aGVsbG8",
            "aGVs\nbG8=\r\n",
            "+/+/",
            "-_-_",
            " aGVsbG8gd29ybGQ ",
        ] {
            body["file"] = json!({"data": data, "mimetype": "image/png"});
            assert!(validate(&body, POLL).is_ok(), "{data:?}");
        }
        for data in ["", " \n", "a", "aGVsbG8=x", "a+b_", "a==="] {
            body["file"] = json!({"data": data, "mimetype": "image/png"});
            assert_eq!(
                validate(&body, POLL).unwrap_err().0,
                "file.data must be valid base64",
                "{data:?}"
            );
        }
    }

    #[test]
    fn mentions_take_chat_ids_or_all() {
        let fields = &[Field::optional("mentions", FieldType::Mentions, "", "")];
        for ok in [json!(["all"]), json!(["1@c.us", "2@lid"]), json!([])] {
            assert!(validate(&json!({ "mentions": ok }), fields).is_ok(), "{ok}");
        }
        let err = |v: Value| validate(&json!({ "mentions": v }), fields).unwrap_err().0;
        assert!(err(json!(["all", "everyone"])).starts_with("mentions[1] must be"));
        assert!(err(json!("all")).starts_with("mentions must be an array"));
    }

    #[test]
    fn chat_ids() {
        for ok in [
            "1234567890",
            "1234567890@c.us",
            "120363024802736123@g.us",
            "1@newsletter",
            "1@lid",
            "1@s.whatsapp.net",
            "status@broadcast",
            "1234567890@broadcast",
            "1234567890-1111111111@g.us",
        ] {
            assert!(is_chat_id(ok), "{ok}");
        }
        for bad in [
            "",
            "@c.us",
            "abc",
            "123@example.com",
            "12 34",
            "status@c.us",
            "status",
            "all",
        ] {
            assert!(!is_chat_id(bad), "{bad}");
        }
    }
}
