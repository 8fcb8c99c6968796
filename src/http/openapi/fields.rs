//! The route table's field descriptions (`upstream::schema`) as OpenAPI schemas. The same
//! `Field` list that validates a body describes it here, so the two cannot disagree.

use crate::domain::events::EVENT_NAMES;
use crate::http::routes::schema::{
    Field, FieldType, CHAT_SUFFIXES, FILE_FIELDS, MENTION_ALL, STATUS_BROADCAST,
};
use serde_json::Value;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType,
};
use utoipa::openapi::RefOr;

/// `SessionName`'s rule as a pattern (checked against it in the tests below).
const SESSION_NAME: &str = "^[A-Za-z0-9_-]{1,64}$";

/// Matches what `FieldType::Text` accepts: a string with at least one non-blank character.
const NOT_BLANK: &str = r"\S";

/// An object schema with one property per field.
pub fn object(fields: &[Field]) -> ObjectBuilder {
    let mut object = ObjectBuilder::new().schema_type(SchemaType::Object);
    for field in fields {
        object = object.property(field.name, property(field));
        if field.required {
            object = object.required(field.name);
        }
    }
    object
}

/// An object the upstream answers with: as `object`, but an optional field may also be `null`
/// (WAHA answers `"me": null` until a session is WORKING).
pub fn answer_object(fields: &[Field]) -> ObjectBuilder {
    let mut object = ObjectBuilder::new().schema_type(SchemaType::Object);
    for field in fields {
        let mut schema = of_type(&field.ty);
        if field.required {
            object = object.required(field.name);
        } else {
            match &mut schema {
                Schema::Object(o) => o.nullable = true,
                Schema::Array(a) => a.nullable = true,
                _ => {}
            }
        }
        let description = (!field.description.is_empty()).then_some(field.description);
        object = object.property(field.name, with_doc(schema, description, example(field)));
    }
    object
}

/// The field's own example, parsed from its JSON literal.
pub fn example(field: &Field) -> Option<Value> {
    if field.example.is_empty() {
        return None;
    }
    Some(serde_json::from_str(field.example).unwrap_or_else(|e| {
        panic!(
            "the example of field `{}` is not JSON ({e}): {}",
            field.name, field.example
        )
    }))
}

/// A body made of every required field's example, plus the session it names: what Swagger UI
/// pre-fills for "Try it out", so the example works as it stands.
pub fn minimal_example(fields: &[Field], session_field: Option<&str>) -> Value {
    let mut body = serde_json::Map::new();
    for field in fields {
        if field.required || Some(field.name) == session_field {
            if let Some(value) = example(field) {
                body.insert(field.name.to_owned(), value);
            }
        }
    }
    Value::Object(body)
}

fn property(field: &Field) -> RefOr<Schema> {
    let description = (!field.description.is_empty()).then_some(field.description);
    with_doc(of_type(&field.ty), description, example(field))
}

/// The schema of one value of type `ty`, without description or example.
pub fn of_type(ty: &FieldType) -> Schema {
    match ty {
        FieldType::String => string().into(),
        FieldType::Text => string().pattern(Some(NOT_BLANK)).into(),
        FieldType::Bool => ObjectBuilder::new().schema_type(SchemaType::Boolean).into(),
        FieldType::Integer { min, max } => ObjectBuilder::new()
            .schema_type(SchemaType::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(min.map(|n| n as f64))
            .maximum(max.map(|n| n as f64))
            .into(),
        FieldType::Session => string().pattern(Some(SESSION_NAME)).into(),
        FieldType::Events => array(
            string()
                .enum_values(Some(EVENT_NAMES.iter().copied()))
                .into(),
            1,
        )
        .into(),
        FieldType::Number { min, max } => ObjectBuilder::new()
            .schema_type(SchemaType::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .minimum(Some(*min))
            .maximum(Some(*max))
            .into(),
        FieldType::ChatId => chat_id().into(),
        FieldType::Enum(options) => string().enum_values(Some(options.iter().copied())).into(),
        // No `enum`: a strict generated client must not fail on a value a newer engine adds.
        FieldType::OpenEnum(_) => string().into(),
        FieldType::File => file(),
        FieldType::Object(fields) => object(fields).into(),
        FieldType::Strings { min } => array(string().pattern(Some(NOT_BLANK)).into(), *min).into(),
        FieldType::ChatIds => array(chat_id().into(), 0).into(),
        FieldType::Mentions => array(
            string()
                .pattern(Some(format!(
                    "^({MENTION_ALL}|{})$",
                    chat_id_alternatives()
                )))
                .into(),
            0,
        )
        .into(),
        FieldType::Objects { fields, min } => array(object(fields).into(), *min).into(),
    }
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::String)
}

fn array(items: Schema, min: usize) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(items)
        .min_items((min > 0).then_some(min))
}

/// `schema::is_chat_id` as a pattern: `status@broadcast`, or digits (with `+`/`-`),
/// optionally `@` and a known kind.
fn chat_id_pattern() -> String {
    format!("^({})$", chat_id_alternatives())
}

fn chat_id_alternatives() -> String {
    let kinds: Vec<String> = CHAT_SUFFIXES
        .iter()
        .map(|s| s.replace('.', r"\."))
        .collect();
    format!(
        r"{}|[-+0-9]*[0-9][-+0-9]*(@({}))?",
        STATUS_BROADCAST.replace('.', r"\."),
        kinds.join("|")
    )
}

fn chat_id() -> ObjectBuilder {
    string().pattern(Some(chat_id_pattern())).max_length(Some(
        64 + 1 + CHAT_SUFFIXES.iter().map(|s| s.len()).max().unwrap_or(0),
    ))
}

/// `FieldType::File`: exactly one of `url` (http or https) and base64 `data`, plus the file fields.
fn file() -> Schema {
    let mut file = object(FILE_FIELDS)
        .property(
            "url",
            with_doc(
                string()
                    .format(Some(SchemaFormat::Custom("uri".into())))
                    .pattern(Some("^https?://"))
                    .into(),
                Some("Where the upstream downloads the file (http or https)"),
                Some(Value::String("https://example.com/photo.jpg".into())),
            ),
        )
        .property(
            "data",
            with_doc(
                string()
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
                    .into(),
                Some("The file itself, base64-encoded (instead of `url`)"),
                None,
            ),
        );
    file = file.description(Some("A media file: `url` or base64 `data`, not both"));
    // `oneOf` of two `required` lists says "exactly one of url and data", as validation does.
    let one_of = OneOfBuilder::new()
        .item(ObjectBuilder::new().required("url"))
        .item(ObjectBuilder::new().required("data"));
    AllOfBuilder::new().item(file).item(one_of).into()
}

/// Adds a description and an example to a schema; objects, arrays and compositions carry
/// them natively.
pub fn with_doc(
    schema: Schema,
    description: Option<&str>,
    example: Option<Value>,
) -> RefOr<Schema> {
    let described = match schema {
        Schema::Object(mut o) => {
            if description.is_some() {
                o.description = description.map(str::to_owned);
            }
            if example.is_some() {
                o.example = example;
            }
            Schema::Object(o)
        }
        Schema::Array(mut a) => {
            if description.is_some() {
                a.description = description.map(str::to_owned);
            }
            if example.is_some() {
                a.example = example;
            }
            Schema::Array(a)
        }
        Schema::AllOf(mut a) => {
            if description.is_some() {
                a.description = description.map(str::to_owned);
            }
            if example.is_some() {
                a.example = example;
            }
            Schema::AllOf(a)
        }
        other => other,
    };
    RefOr::T(described)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::schema::is_chat_id;

    #[test]
    fn the_session_name_pattern_agrees_with_session_name() {
        let pattern = regex::Regex::new(SESSION_NAME).unwrap();
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for name in [
            "default", "bot-1", "A_b-9", &long, &too_long, "", "a b", "a.b", "a/b", "é", "a\n",
        ] {
            assert_eq!(
                pattern.is_match(name),
                crate::domain::SessionName::parse(name).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn the_chat_id_pattern_agrees_with_validation() {
        let pattern = regex::Regex::new(&chat_id_pattern()).unwrap();
        for id in [
            "1234567890",
            "+1-234",
            "1234567890@c.us",
            "120363024802736123@g.us",
            "1@newsletter",
            "1@lid",
            "1@s.whatsapp.net",
            "1@broadcast",
            "status@broadcast",
            "status@c.us",
            "all",
            "",
            "@c.us",
            "abc",
            "+-",
            "123@example.com",
            "12 34",
            "1@c.usx",
            "1@c_us",
        ] {
            assert_eq!(pattern.is_match(id), is_chat_id(id), "{id:?}");
        }
    }
}
