//! The hosted API's surface as one table. Each row is an endpoint: its method and path, the
//! scope a tenant key needs, where the session name travels, the body it is validated
//! against, and how it answers. Routing, scope and ownership checks, rewriting, validation
//! and the OpenAPI paths are all driven by this table: adding an endpoint is one row.

use crate::domain::webhook_signing::Scheme;
use crate::domain::webhooks as policy;
use crate::domain::Scope;
use crate::http::routes::schema::{self, Field, FieldType};
use actix_web::http::Method;

/// Where a request names its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionIn {
    /// The `{session}` path segment.
    Path,
    /// A JSON body field; absent means `"default"`, as on the hosted API.
    Body(&'static str),
    /// A query parameter; absent means `"default"`.
    Query(&'static str),
    /// The call names no session.
    Absent,
}

/// How the gateway serves the row beyond plain forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    Forward,
    /// Records the tenant's session (checking `max_sessions`) before forwarding.
    CreateSession,
    /// Forwards, then keeps only the tenant's own sessions.
    ListSessions,
    /// Forwards, then forgets the session (also the deprecated logout, which deletes it
    /// upstream: ENGINE.md §2 row 9).
    DeleteSession,
    /// Forwards; with `logout: true` in the body the upstream also deletes the session
    /// (ENGINE.md §2 row 6), so the gateway should forget it after a 2xx.
    StopSession,
    /// Forwards through a cache: the seed advises calling it before every send.
    CheckExists,
    /// Served by the webhook relay, never forwarded with a tenant's URL.
    WebhookRelay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Sessions,
    Messages,
    Groups,
    Channels,
    Contacts,
    Presence,
    Webhooks,
}

impl Tag {
    /// Every tag, in the order the document lists them.
    pub const ALL: [Tag; 7] = [
        Tag::Sessions,
        Tag::Messages,
        Tag::Groups,
        Tag::Channels,
        Tag::Contacts,
        Tag::Presence,
        Tag::Webhooks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Sessions => "Sessions",
            Tag::Messages => "Messages",
            Tag::Groups => "Groups",
            Tag::Channels => "Channels",
            Tag::Contacts => "Contacts",
            Tag::Presence => "Presence",
            Tag::Webhooks => "Webhooks",
        }
    }
}

/// What a successful call answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// A JSON object with these fields (more may come: unknown fields are passed through).
    Object(&'static schema::Body),
    /// A JSON array of such objects.
    List(&'static schema::Body),
    /// The QR code: a PNG, or JSON depending on `format` and `Accept`.
    QrCode,
    /// The engine's own JSON, whose shape differs between engines (described here): passed
    /// through untouched, documented without a schema so no client breaks on it.
    Native(&'static str),
    /// No meaningful body.
    Empty,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: Method,
    /// actix path pattern, identical to the hosted API's path.
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: Tag,
    pub scope: Scope,
    pub session: SessionIn,
    pub handling: Handling,
    pub body: Option<&'static schema::Body>,
    /// The query parameters, checked and documented as body fields are.
    pub query: &'static [Field],
    pub success: u16,
    pub answer: Answer,
    /// Sends honour `Idempotency-Key`: a retry with the same key returns the first answer.
    pub idempotent: bool,
    /// The call delivers a message to a chat, so a paced session's pacing applies to it.
    /// Read receipts and typing indicators do not: they deliver nothing, they are what a
    /// person's phone does while reading and writing (the engine's anti-ban advice is to send
    /// them), and holding them back would show a chat read or typed in long after it was.
    pub sends_message: bool,
    /// The session status the upstream requires for the call: it waits up to 5 s for it, then
    /// answers 422 (as WAHA does).
    pub requires_status: Option<SessionStatus>,
}

/// A session status a call can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Everything done through the account.
    Working,
    /// Authenticating: the QR or pairing code.
    ScanQrCode,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Working => "WORKING",
            SessionStatus::ScanQrCode => "SCAN_QR_CODE",
        }
    }
}

impl Endpoint {
    /// Whether a failed attempt may be retried blindly (it changes nothing upstream).
    pub fn retryable(&self) -> bool {
        self.method == Method::GET
    }
}

// ---- Field lists shared by several rows -----------------------------------------------------

const SESSION: Field = Field::optional(
    "session",
    FieldType::Session,
    "Session name (default `default`)",
    r#""default""#,
);
const CHAT_ID: Field = Field::required(
    "chatId",
    FieldType::ChatId,
    "Phone number with country code (the upstream appends `@c.us`), or a chat id: `@c.us`, `@g.us`, `@newsletter`, `@lid`, `@s.whatsapp.net`, `@broadcast`, or `status@broadcast`",
    r#""1234567890""#,
);
const REPLY_TO: Field = Field::optional(
    "reply_to",
    FieldType::String,
    "Id of the message to quote",
    r#""true_1234567890@c.us_3EB0C767D71D9B4E6B1A""#,
);
const FILE: Field = Field::required(
    "file",
    FieldType::File,
    "The media: `url` (http/https) or base64 `data`, with `mimetype` and an optional `filename`",
    r#"{"url": "https://example.com/photo.jpg", "mimetype": "image/jpeg", "filename": "photo.jpg"}"#,
);
const CAPTION: Field = Field::optional(
    "caption",
    FieldType::String,
    "Caption shown under the media",
    r#""Check this out!""#,
);

const SEND_TEXT: &schema::Body = &schema::Body::new(
    "SendTextRequest",
    &[
        CHAT_ID,
        Field::required(
            "text",
            FieldType::Text,
            "Message text",
            r#""Check this out: https://example.com""#,
        ),
        SESSION,
        REPLY_TO,
        Field::optional(
            "linkPreview",
            FieldType::Bool,
            "Generate a preview card for the first URL (the upstream's default: true)",
            "true",
        ),
        Field::optional(
            "linkPreviewHighQuality",
            FieldType::Bool,
            "High-quality preview (extra upload; default false)",
            "true",
        ),
        Field::optional(
            "mentions",
            FieldType::Mentions,
            "Chat ids mentioned in the text, or `[\"all\"]` to mention every group member",
            r#"["1234567890@c.us"]"#,
        ),
    ],
);
const SEND_MEDIA: &schema::Body = &schema::Body::new(
    "SendMediaRequest",
    &[CHAT_ID, FILE, CAPTION, SESSION, REPLY_TO],
);
const SEND_VIDEO: &schema::Body = &schema::Body::new(
    "SendVideoRequest",
    &[
        CHAT_ID,
        FILE,
        CAPTION,
        SESSION,
        REPLY_TO,
        Field::optional(
            "asNote",
            FieldType::Bool,
            "Send as a round video note",
            "false",
        ),
        Field::optional(
            "convert",
            FieldType::Bool,
            "Convert to a format WhatsApp plays",
            "false",
        ),
    ],
);
const SEND_VOICE: &schema::Body = &schema::Body::new(
    "SendVoiceRequest",
    &[
        CHAT_ID,
        FILE,
        SESSION,
        REPLY_TO,
        Field::optional(
            "convert",
            FieldType::Bool,
            "Convert to OGG/Opus first",
            "false",
        ),
    ],
);
const SEND_LOCATION: &schema::Body = &schema::Body::new(
    "SendLocationRequest",
    &[
        CHAT_ID,
        Field::required(
            "latitude",
            FieldType::Number {
                min: -90.0,
                max: 90.0,
            },
            "Latitude in degrees",
            "38.8937255",
        ),
        Field::required(
            "longitude",
            FieldType::Number {
                min: -180.0,
                max: 180.0,
            },
            "Longitude in degrees",
            "-77.0969763",
        ),
        Field::optional(
            "title",
            FieldType::String,
            "Name of the place",
            r#""Our office""#,
        ),
        SESSION,
        REPLY_TO,
    ],
);
const VCARD_CONTACT: &[Field] = &[
    Field::optional(
        "fullName",
        FieldType::String,
        "Contact's full name",
        r#""John Doe""#,
    ),
    Field::optional(
        "organization",
        FieldType::String,
        "Company",
        r#""Company Name""#,
    ),
    Field::optional(
        "phoneNumber",
        FieldType::String,
        "Phone number",
        r#""+91 11111 11111""#,
    ),
    Field::optional(
        "whatsappId",
        FieldType::String,
        "WhatsApp id (digits)",
        r#""911111111111""#,
    ),
    Field::optional(
        "vcard",
        FieldType::String,
        "A raw vCard, instead of the fields above",
        r#""BEGIN:VCARD\nVERSION:3.0\nFN:Jane Doe\nEND:VCARD""#,
    ),
];
const SEND_VCARD: &schema::Body = &schema::Body::new(
    "SendContactVcardRequest",
    &[
        CHAT_ID,
        Field::required(
            "contacts",
            FieldType::Objects {
                fields: VCARD_CONTACT,
                min: 1,
            },
            "The contact cards to share",
            r#"[{"fullName": "John Doe", "organization": "Company Name", "phoneNumber": "+91 11111 11111", "whatsappId": "911111111111"}]"#,
        ),
        SESSION,
        REPLY_TO,
    ],
);
const POLL: &[Field] = &[
    Field::required("name", FieldType::Text, "The question", r#""How are you?""#),
    Field::required(
        "options",
        FieldType::Strings { min: 1 },
        "The answers",
        r#"["Awesome!", "Good!", "Not bad!"]"#,
    ),
    Field::optional(
        "multipleAnswers",
        FieldType::Bool,
        "Allow several answers",
        "false",
    ),
];
const SEND_POLL: &schema::Body = &schema::Body::new(
    "SendPollRequest",
    &[
        CHAT_ID,
        Field::required(
            "poll",
            FieldType::Object(POLL),
            "The poll",
            r#"{"name": "How are you?", "options": ["Awesome!", "Good!", "Not bad!"], "multipleAnswers": false}"#,
        ),
        SESSION,
        REPLY_TO,
    ],
);
const SEND_SEEN: &schema::Body = &schema::Body::new(
    "SendSeenRequest",
    &[
        CHAT_ID,
        Field::optional(
            "messageIds",
            FieldType::Strings { min: 0 },
            "Messages to mark read (default: all in the chat)",
            r#"["false_1234567890@c.us_AAAAAAAAAAAAAAAAAAAA"]"#,
        ),
        Field::optional(
            "participant",
            FieldType::String,
            "In groups, the author of the messages",
            r#""1234567890@c.us""#,
        ),
        SESSION,
    ],
);
const CHAT_ONLY: &schema::Body = &schema::Body::new("ChatRequest", &[CHAT_ID, SESSION]);

const SESSION_CONFIG: &[Field] = &[
    Field::optional(
        "metadata",
        FieldType::Object(&[]),
        "Free-form string pairs echoed in webhook events",
        r#"{"user.id": "123"}"#,
    ),
    Field::optional(
        "webhooks",
        FieldType::Objects {
            fields: CONFIG_WEBHOOK,
            min: 0,
        },
        "The session's webhooks, relayed by the gateway exactly as those of \
         POST /v1/sessions/{session}/webhooks (at most 20); answers show them without their key",
        r#"[{"url": "https://your-server.com/webhook", "events": ["message"], "hmac": {"key": "my-secret-key"}}]"#,
    ),
];
/// The fields a webhook has in both of its shapes (`config.webhooks` and the webhook rows).
const WEBHOOK_EVENTS: Field = Field::optional(
    "events",
    FieldType::Events,
    "Events to receive (default [\"message\"])",
    r#"["message", "session.status"]"#,
);
const WEBHOOK_RETRIES: Field = Field::optional(
    "retries",
    FieldType::Object(RETRY_POLICY),
    "Retry policy",
    r#"{"policy": "exponential", "delaySeconds": 2, "attempts": 5}"#,
);
const HMAC: &[Field] = &[Field::optional(
    "key",
    FieldType::String,
    "Sign each delivery: X-Webhook-Hmac = HMAC-SHA512 hex of the body",
    r#""my-secret-key""#,
)];
/// An item of `config.webhooks`: the engine's shape (`url`, `hmac.key`), or the hosted API's
/// (`webhookUrl`, `hmacKey`) as `POST /v1/sessions/{session}/webhooks` takes it.
const CONFIG_WEBHOOK: &[Field] = &[
    Field::optional(
        "url",
        FieldType::Text,
        "The http(s) URL that receives one POST per event (or `webhookUrl`)",
        r#""https://your-server.com/webhook""#,
    ),
    Field::optional(
        "webhookUrl",
        FieldType::Text,
        "The hosted API's name for `url` (requests only)",
        r#""https://your-server.com/webhook""#,
    ),
    WEBHOOK_EVENTS,
    Field::optional(
        "hmac",
        FieldType::Object(HMAC),
        "Signing (requests only)",
        r#"{"key": "my-secret-key"}"#,
    ),
    Field::optional(
        "hmacKey",
        FieldType::String,
        "The hosted API's form of `hmac.key` (requests only)",
        r#""my-secret-key""#,
    ),
    WEBHOOK_SIGNING,
    Field::optional(
        "secret",
        FieldType::String,
        "With signing standard: the whsec_ secret, required here (requests only)",
        r#""whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw""#,
    ),
    Field::optional(
        "signed",
        FieldType::Bool,
        "Whether deliveries are signed (answers only; the key is never shown)",
        "true",
    ),
    WEBHOOK_RETRIES,
    Field::optional(
        "customHeaders",
        FieldType::Objects {
            fields: CUSTOM_HEADER,
            min: 0,
        },
        "Headers added to every delivery (answers show their names only)",
        r#"[{"name": "X-Token", "value": "abc"}]"#,
    ),
];
const CREATE_SESSION: &schema::Body = &schema::Body::new(
    "CreateSessionRequest",
    &[
        Field::optional(
            "name",
            FieldType::Session,
            "Session name, 1-64 of A-Za-z0-9_- (default `default`)",
            r#""default""#,
        ),
        Field::optional(
            "config",
            FieldType::Object(SESSION_CONFIG),
            "Session configuration",
            r#"{"metadata": {"user.id": "123"}}"#,
        ),
        Field::optional(
            "start",
            FieldType::Bool,
            "Start the session right away",
            "false",
        ),
    ],
);
const SESSION_NAME: Field =
    Field::required("name", FieldType::Session, "Session name", r#""default""#);
const NAMED_SESSION: &schema::Body = &schema::Body::new("SessionNameRequest", &[SESSION_NAME]);
/// The deprecated "upsert and start" (ENGINE.md §2 row 5): the config is optional.
const START_SESSION: &schema::Body = &schema::Body::new(
    "StartSessionRequest",
    &[
        SESSION_NAME,
        Field::optional(
            "config",
            FieldType::Object(SESSION_CONFIG),
            "Session configuration (replaces the stored one)",
            r#"{"metadata": {"user.id": "123"}}"#,
        ),
    ],
);
/// ENGINE.md §2 row 6: `logout: true` also logs out and deletes the session.
const STOP_SESSION: &schema::Body = &schema::Body::new(
    "StopSessionRequest",
    &[
        SESSION_NAME,
        Field::optional(
            "logout",
            FieldType::Bool,
            "Also log out and delete the session (default false)",
            "false",
        ),
    ],
);

const PARTICIPANT: &[Field] = &[Field::required(
    "id",
    FieldType::ChatId,
    "Participant chat id",
    r#""1234567890@c.us""#,
)];
const CREATE_GROUP: &schema::Body = &schema::Body::new(
    "CreateGroupRequest",
    &[
        Field::required("name", FieldType::Text, "Group subject", r#""My Team""#),
        Field::required(
            "participants",
            FieldType::Objects {
                fields: PARTICIPANT,
                min: 1,
            },
            "Initial members",
            r#"[{"id": "1234567890@c.us"}, {"id": "9876543210@c.us"}]"#,
        ),
    ],
);
const PARTICIPANTS: &schema::Body = &schema::Body::new(
    "ParticipantsRequest",
    &[Field::required(
        "participants",
        FieldType::Objects {
            fields: PARTICIPANT,
            min: 1,
        },
        "Members to act on",
        r#"[{"id": "1234567890@c.us"}]"#,
    )],
);
const SUBJECT: &schema::Body = &schema::Body::new(
    "SetGroupSubjectRequest",
    &[Field::required(
        "subject",
        FieldType::Text,
        "New group name",
        r#""Team (new)""#,
    )],
);
const DESCRIPTION: &schema::Body = &schema::Body::new(
    "SetGroupDescriptionRequest",
    &[Field::required(
        "description",
        FieldType::String,
        "New group description",
        r#""Weekly sync""#,
    )],
);
const CREATE_CHANNEL: &schema::Body = &schema::Body::new(
    "CreateChannelRequest",
    &[
        Field::required(
            "name",
            FieldType::Text,
            "Channel name",
            r#""Announcements""#,
        ),
        Field::optional(
            "description",
            FieldType::String,
            "Channel description",
            r#""News from us""#,
        ),
    ],
);
const SET_PRESENCE: &schema::Body = &schema::Body::new(
    "SetPresenceRequest",
    &[
        Field::required(
            "presence",
            FieldType::Enum(&["online", "offline", "typing", "recording", "paused"]),
            "The presence to show",
            r#""online""#,
        ),
        Field::optional(
            "chatId",
            FieldType::ChatId,
            "Chat to show it in (typing, recording, paused)",
            r#""1234567890@c.us""#,
        ),
    ],
);

pub const RETRY_POLICY: &[Field] = &[
    Field::optional(
        "policy",
        FieldType::Enum(&["constant", "linear", "exponential"]),
        "Spacing of retries",
        r#""exponential""#,
    ),
    Field::optional(
        "delaySeconds",
        FieldType::Integer {
            min: Some(0),
            max: Some(policy::MAX_DELAY_SECONDS),
        },
        "First delay",
        "2",
    ),
    Field::optional(
        "attempts",
        FieldType::Integer {
            min: Some(1),
            max: Some(policy::MAX_ATTEMPTS),
        },
        "Attempts in all",
        "5",
    ),
];
pub const CUSTOM_HEADER: &[Field] = &[
    Field::required("name", FieldType::Text, "Header name", r#""Authorization""#),
    Field::required(
        "value",
        FieldType::String,
        "Header value",
        r#""Bearer my-token""#,
    ),
];
const WEBHOOK_URL: Field = Field::required(
    "webhookUrl",
    FieldType::Text,
    "The http(s) URL that receives one POST per event",
    r#""https://your-server.com/webhook""#,
);
const WEBHOOK_HMAC_KEY: Field = Field::optional(
    "hmacKey",
    FieldType::String,
    "Sign each delivery: X-Webhook-Hmac = HMAC-SHA512 hex of the body (signing hmac-sha512)",
    r#""my-secret-key""#,
);
const WEBHOOK_SIGNING: Field = Field::optional(
    "signing",
    FieldType::Enum(Scheme::NAMES),
    "hmac-sha512 (default: the engine's X-Webhook-Hmac with hmacKey) or standard (Standard \
     Webhooks: webhook-id, webhook-timestamp, webhook-signature v1,<base64 HMAC-SHA256 of \
     id.timestamp.body> with secret) (gateway addition)",
    r#""standard""#,
);
const WEBHOOK_SECRET: Field = Field::optional(
    "secret",
    FieldType::String,
    "With signing standard: whsec_ and the base64 of 24 to 64 bytes; generated when absent \
     and then shown once, in the 201 (gateway addition)",
    r#""whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw""#,
);
const WEBHOOK_CUSTOM_HEADERS: Field = Field::optional(
    "customHeaders",
    FieldType::Objects {
        fields: CUSTOM_HEADER,
        min: 0,
    },
    "Headers added to every delivery",
    r#"[{"name": "X-Token", "value": "abc"}]"#,
);
pub const ADD_WEBHOOK: &schema::Body = &schema::Body::new(
    "AddWebhookRequest",
    &[
        WEBHOOK_URL,
        WEBHOOK_EVENTS,
        WEBHOOK_HMAC_KEY,
        WEBHOOK_SIGNING,
        WEBHOOK_SECRET,
        WEBHOOK_RETRIES,
        WEBHOOK_CUSTOM_HEADERS,
    ],
);

/// A webhook as answers show it: the fields it was added with (never its keys), and its
/// health.
const WEBHOOK: &schema::Body = &schema::Body::new(
    "Webhook",
    &[
        Field::required("id", FieldType::String, "The webhook's id", r#""0190f0c4-6f1e-7c4a-9d2b-3f4e5a6b7c8d""#),
        WEBHOOK_URL,
        WEBHOOK_EVENTS,
        WEBHOOK_SIGNING,
        Field::required("signed", FieldType::Bool, "Whether deliveries are signed (keys are never shown)", "true"),
        WEBHOOK_SECRET,
        WEBHOOK_RETRIES,
        WEBHOOK_CUSTOM_HEADERS,
        Field::required("enabled", FieldType::Bool, "False once the gateway disabled it (failing for WAGW_WEBHOOK_DISABLE_AFTER_SECS, or a 410); POST .../webhooks/{id}/enable", "true"),
        Field::optional("disabledAt", FieldType::String, "When it was disabled", "null"),
        Field::optional("disabledReason", FieldType::String, "Why it was disabled", "null"),
        Field::optional("failingSince", FieldType::String, "Failing without a success since then", "null"),
        Field::optional("previousSecretExpiresAt", FieldType::String, "After rotate-secret: until then the previous secret signs too", "null"),
        Field::required("createdAt", FieldType::String, "When it was added", r#""2026-01-31T12:00:00Z""#),
    ],
);

// ---- Answers ---------------------------------------------------------------------------------

/// The statuses the engine is known to answer (ENGINE.md §1, session status values; the
/// `PASSKEY_*` pair since OAS 2026). The set is open: documented, never enforced.
pub const SESSION_STATUSES: &[&str] = &[
    "STOPPED",
    "STARTING",
    "SCAN_QR_CODE",
    "WORKING",
    "FAILED",
    "PASSKEY_REQUIRED",
    "PASSKEY_CONFIRMATION_REQUIRED",
];

pub const SESSION_INFO: &schema::Body = &schema::Body::new("Session", &[
    Field::required("name", FieldType::String, "Session name", r#""default""#),
    Field::required(
        "status",
        FieldType::OpenEnum(SESSION_STATUSES),
        "Session status. Known values: `STOPPED`, `STARTING`, `SCAN_QR_CODE`, `WORKING`, `FAILED`, `PASSKEY_REQUIRED`, `PASSKEY_CONFIRMATION_REQUIRED`; newer upstream versions may add others, so treat an unknown value as not working",
        r#""WORKING""#,
    ),
    Field::optional(
        "config",
        FieldType::Object(SESSION_CONFIG),
        "Session configuration",
        r#"{"metadata": {}}"#,
    ),
    Field::optional(
        "me",
        FieldType::Object(ME),
        "The authenticated account, once WORKING",
        r#"{"id": "71111111111@c.us", "pushName": "~"}"#,
    ),
]);
const ME: &[Field] = &[
    Field::required(
        "id",
        FieldType::String,
        "Account chat id",
        r#""71111111111@c.us""#,
    ),
    Field::optional("pushName", FieldType::String, "Display name", r#""~""#),
];
const MESSAGE_FIELDS: &[Field] = &[
    Field::required(
        "id",
        FieldType::String,
        "Message id",
        r#""true_1234567890@c.us_3EB0C767D71D9B4E6B1A""#,
    ),
    Field::required(
        "timestamp",
        FieldType::INTEGER,
        "Unix time in seconds",
        "1741249702",
    ),
    Field::required("from", FieldType::String, "Sender", r#""71111111111@c.us""#),
    Field::required("fromMe", FieldType::Bool, "Sent by this session", "true"),
    Field::required(
        "to",
        FieldType::String,
        "Recipient chat",
        r#""1234567890@c.us""#,
    ),
    Field::optional(
        "body",
        FieldType::String,
        "Text or caption",
        r#""Hi there!""#,
    ),
    Field::optional("hasMedia", FieldType::Bool, "Carries media", "false"),
    Field::optional(
        "ack",
        FieldType::INTEGER,
        "-1 ERROR, 0 PENDING, 1 SERVER, 2 DEVICE, 3 READ, 4 PLAYED",
        "1",
    ),
];
pub const MESSAGE: &schema::Body = &schema::Body::new("Message", MESSAGE_FIELDS);
const PAIRING_CODE: &schema::Body = &schema::Body::new(
    "PairingCode",
    &[Field::required(
        "code",
        FieldType::String,
        "Code to enter on the phone",
        r#""ABCD-ABCD""#,
    )],
);
/// ENGINE.md §5 row 24 and conformance A6: the engine declares `type: object`; NOWEB answers
/// a map keyed by group id, WEBJS an array of groups whose `id` is an object.
const GROUP_LIST: &str = "The engine's own answer: an object keyed by group id (NOWEB: `{\"120363024802736123@g.us\": {id, subject, desc, participants, ...}}`) or an array of groups (WEBJS: `[{id: {server, user, _serialized}, name, ...}]`)";
/// ENGINE.md §5 rows 25-26: the engine's own group object (conformance B6).
const GROUP_NATIVE: &str = "The engine's own group object, e.g. `{id, subject, desc, owner, creation, participants: [{id, admin}]}` (NOWEB) or `{gid: {...}, title, participants}` (WEBJS)";
/// ENGINE.md §5 rows 28-34: the engine's own result of a group action.
const GROUP_ACTION: &str =
    "The engine's own result: `true`/`false`, an object or an array, depending on the engine";
/// ENGINE.md §6 `Channel`.
const CHANNEL: &schema::Body = &schema::Body::new("Channel", &[
    Field::required(
        "id",
        FieldType::String,
        "Channel id",
        r#""120363024802736123@newsletter""#,
    ),
    Field::optional("name", FieldType::String, "Channel name", r#""Announcements""#),
    Field::optional(
        "description",
        FieldType::String,
        "Channel description",
        r#""News from us""#,
    ),
    Field::optional(
        "invite",
        FieldType::String,
        "Invite link; its last segment is the invite code, which the channel calls accept as the id",
        r#""https://www.whatsapp.com/channel/0029Va4K0PZ5a245NkngBA2M""#,
    ),
    Field::optional(
        "role",
        FieldType::OpenEnum(&["OWNER", "ADMIN", "SUBSCRIBER", "GUEST"]),
        "Your role: `OWNER`, `ADMIN`, `SUBSCRIBER` or `GUEST`",
        r#""OWNER""#,
    ),
    Field::optional("verified", FieldType::Bool, "Verified by WhatsApp", "false"),
    Field::optional(
        "subscribersCount",
        FieldType::INTEGER,
        "Subscribers (newer upstream versions)",
        "42",
    ),
]);
/// ENGINE.md §6 row 39 and conformance A7: `ChannelMessage`.
const CHANNEL_MESSAGE: &schema::Body = &schema::Body::new(
    "ChannelMessage",
    &[
        Field::required(
            "message",
            FieldType::Object(MESSAGE_FIELDS),
            "The message",
            r#"{"id": "false_120363024802736123@newsletter_3EB0C767D71D9B4E6B1A", "timestamp": 1741249702, "from": "120363024802736123@newsletter", "fromMe": false, "to": "120363024802736123@newsletter", "body": "Hello"}"#,
        ),
        Field::optional(
            "reactions",
            FieldType::Object(&[]),
            "Reaction counts by emoji",
            r#"{"👍": 10}"#,
        ),
        Field::optional("viewCount", FieldType::INTEGER, "Views", "100"),
    ],
);
const CHECK_EXISTS: &schema::Body = &schema::Body::new(
    "CheckExistsResult",
    &[
        Field::required(
            "numberExists",
            FieldType::Bool,
            "Whether the number is on WhatsApp",
            "true",
        ),
        Field::optional(
            "chatId",
            FieldType::String,
            "Its chat id",
            r#""1234567890@c.us""#,
        ),
    ],
);
const PRESENCE: &schema::Body = &schema::Body::new(
    "ChatPresence",
    &[
        Field::required("id", FieldType::String, "Chat id", r#""1234567890@c.us""#),
        Field::optional(
            "presences",
            FieldType::Objects {
                fields: &[],
                min: 0,
            },
            "Last known presence per participant",
            r#"[{"participant": "1234567890@c.us", "lastKnownPresence": "online"}]"#,
        ),
    ],
);
const RESULT: &schema::Body = &schema::Body::new(
    "Result",
    &[Field::optional(
        "result",
        FieldType::Bool,
        "Whether it was done",
        "true",
    )],
);

// ---- Query parameters -------------------------------------------------------------------------

const QR_QUERY: &[Field] = &[Field {
    name: "format",
    required: false,
    // The engine gives the image for any value but `raw` (ENGINE.md §2 row 7), so nothing is
    // refused here: the seed's `binary` and the engine's `image` both work.
    ty: FieldType::String,
    description: "`raw`: the QR text; `image` (the default), the seed's `binary` or any other value: a PNG (or base64 JSON with exactly `Accept: application/json`)",
    example: r#""image""#,
}];
/// The seed names no parameter; the upstream's reading is `phoneNumber` (conformance A5), so
/// it is documented and forwarded but not required here: the upstream decides.
const PAIRING_QUERY: &[Field] = &[
    Field {
        name: "phoneNumber",
        required: false,
        ty: FieldType::Text,
        description: "The phone number to pair, in international format (digits)",
        example: r#""12132132130""#,
    },
    Field {
        name: "method",
        required: false,
        ty: FieldType::String,
        description: "`sms` or `voice` for a registration code; leave it out for web pairing",
        example: r#""""#,
    },
];
/// The engine's own pairing call (ENGINE.md §2 row 8): `POST /auth/request-code`.
const REQUEST_CODE: &schema::Body = &schema::Body::new(
    "RequestPairingCodeRequest",
    &[
        Field::required(
            "phoneNumber",
            FieldType::Text,
            "The phone number to pair, in international format (digits)",
            r#""12132132130""#,
        ),
        Field::optional(
            "method",
            FieldType::String,
            "`sms` or `voice` for a registration code; leave it out for web pairing",
            r#""""#,
        ),
    ],
);
/// ENGINE.md §2 row 1: `all` (the engine's `BooleanString`) includes STOPPED sessions.
const LIST_SESSIONS_QUERY: &[Field] = &[Field {
    name: "all",
    required: false,
    ty: FieldType::Enum(&["true", "false", "True", "False", "1", "0"]),
    description: "Also list STOPPED sessions (hidden otherwise)",
    example: r#""true""#,
}];
const CHECK_EXISTS_QUERY: &[Field] = &[
    Field {
        name: "phone",
        required: true,
        ty: FieldType::ChatId,
        description: "Phone number with country code",
        example: r#""1234567890""#,
    },
    Field {
        name: "session",
        required: false,
        ty: FieldType::Session,
        description: "Session name (default `default`)",
        example: r#""default""#,
    },
];
const WEBHOOK_DELETE_QUERY: &[Field] = &[Field {
    name: "webhookUrl",
    required: false,
    ty: FieldType::String,
    description: "Remove only this URL (it may also travel in the JSON body); without it, all of the session's",
    example: r#""https://your-server.com/webhook""#,
}];

// ---- The table ------------------------------------------------------------------------------

macro_rules! row {
    ($method:ident $path:literal, $op:literal, $summary:literal, $tag:ident, $scope:ident, $session:expr,
     $handling:ident, body: $body:expr, query: $query:expr, $success:literal, $answer:expr, idempotent: $idem:literal,
     sends: $sends:literal, requires: $status:expr) => {
        Endpoint {
            method: Method::$method,
            path: $path,
            operation_id: $op,
            summary: $summary,
            tag: Tag::$tag,
            scope: Scope::$scope,
            session: $session,
            handling: Handling::$handling,
            body: $body,
            query: $query,
            success: $success,
            answer: $answer,
            idempotent: $idem,
            sends_message: $sends,
            requires_status: $status,
        }
    };
}

use Answer::{Empty, List, Native, Object, QrCode};
use SessionIn::{Absent, Body, Path, Query};
use SessionStatus::{ScanQrCode, Working};

/// Every endpoint of the hosted API (the seed document), in the order actix must try them:
/// fixed paths before the patterns they would otherwise fall into.
pub fn all() -> &'static [Endpoint] {
    static TABLE: std::sync::LazyLock<Vec<Endpoint>> = std::sync::LazyLock::new(|| {
        vec![
            // Sessions
            row!(GET "/v1/sessions", "listSessions", "List your sessions", Sessions, SessionsRead, Absent, ListSessions, body: None, query: LIST_SESSIONS_QUERY, 200, List(SESSION_INFO), idempotent: false, sends: false, requires: None),
            row!(POST "/v1/sessions", "createSession", "Create a session", Sessions, SessionsWrite, Body("name"), CreateSession, body: Some(CREATE_SESSION), query: &[], 201, Object(SESSION_INFO), idempotent: false, sends: false, requires: None),
            row!(POST "/v1/sessions/start", "startSession", "Start a session", Sessions, SessionsWrite, Body("name"), Forward, body: Some(START_SESSION), query: &[], 201, Object(SESSION_INFO), idempotent: false, sends: false, requires: None),
            row!(POST "/v1/sessions/stop", "stopSession", "Stop a session (and log out and delete it with `logout: true`)", Sessions, SessionsWrite, Body("name"), StopSession, body: Some(STOP_SESSION), query: &[], 201, Empty, idempotent: false, sends: false, requires: None),
            row!(POST "/v1/sessions/logout", "logoutSession", "Log the session out of WhatsApp and delete it", Sessions, SessionsWrite, Body("name"), DeleteSession, body: Some(NAMED_SESSION), query: &[], 201, Empty, idempotent: false, sends: false, requires: None),
            row!(GET "/v1/sessions/{session}", "getSession", "Get a session", Sessions, SessionsRead, Path, Forward, body: None, query: &[], 200, Object(SESSION_INFO), idempotent: false, sends: false, requires: None),
            row!(DELETE "/v1/sessions/{session}", "deleteSession", "Delete a session", Sessions, SessionsWrite, Path, DeleteSession, body: None, query: &[], 200, Empty, idempotent: false, sends: false, requires: None),
            row!(GET "/v1/{session}/auth/qr", "getQrCode", "Get the QR code to scan", Sessions, SessionsRead, Path, Forward, body: None, query: QR_QUERY, 200, QrCode, idempotent: false, sends: false, requires: Some(ScanQrCode)),
            row!(GET "/v1/{session}/auth/pairing-code", "getPairingCode", "Request a pairing code (phone number authentication)", Sessions, SessionsWrite, Path, Forward, body: None, query: PAIRING_QUERY, 200, Object(PAIRING_CODE), idempotent: false, sends: false, requires: Some(ScanQrCode)),
            row!(POST "/v1/{session}/auth/request-code", "requestPairingCode", "Request a pairing code (the engine's own call)", Sessions, SessionsWrite, Path, Forward, body: Some(REQUEST_CODE), query: &[], 201, Object(PAIRING_CODE), idempotent: false, sends: false, requires: None),
            // Messages
            row!(POST "/v1/sendText", "sendText", "Send a text message", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_TEXT), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/sendImage", "sendImage", "Send an image with an optional caption", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_MEDIA), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/sendFile", "sendFile", "Send any file (PDF, DOCX, ...)", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_MEDIA), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/sendVideo", "sendVideo", "Send a video", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_VIDEO), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/sendVoice", "sendVoice", "Send a voice note", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_VOICE), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/sendLocation", "sendLocation", "Send a location pin", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_LOCATION), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/sendContactVcard", "sendContactVcard", "Share contact cards", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_VCARD), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/sendPoll", "sendPoll", "Send a poll", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_POLL), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/reply", "reply", "Reply to a message", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_TEXT), query: &[], 201, Object(MESSAGE), idempotent: true, sends: true, requires: Some(Working)),
            row!(POST "/v1/sendSeen", "sendSeen", "Mark messages as read", Messages, MessagesSend, Body("session"), Forward, body: Some(SEND_SEEN), query: &[], 201, Empty, idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/startTyping", "startTyping", "Start the typing indicator", Messages, MessagesSend, Body("session"), Forward, body: Some(CHAT_ONLY), query: &[], 201, Object(RESULT), idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/stopTyping", "stopTyping", "Stop the typing indicator", Messages, MessagesSend, Body("session"), Forward, body: Some(CHAT_ONLY), query: &[], 201, Object(RESULT), idempotent: false, sends: false, requires: Some(Working)),
            // Webhooks (relayed: the gateway's own subscriptions, see crate::services::webhooks)
            row!(GET "/v1/sessions/{session}/webhooks", "listWebhooks", "List the session's webhooks (gateway addition)", Webhooks, WebhooksRead, Path, WebhookRelay, body: None, query: &[], 200, List(WEBHOOK), idempotent: false, sends: false, requires: None),
            row!(POST "/v1/sessions/{session}/webhooks", "addWebhook", "Register a webhook URL for a session", Webhooks, WebhooksWrite, Path, WebhookRelay, body: Some(ADD_WEBHOOK), query: &[], 201, Object(WEBHOOK), idempotent: false, sends: false, requires: None),
            row!(DELETE "/v1/sessions/{session}/webhooks", "deleteWebhooks", "Remove a webhook URL (or all of the session's)", Webhooks, WebhooksWrite, Path, WebhookRelay, body: None, query: WEBHOOK_DELETE_QUERY, 200, Empty, idempotent: false, sends: false, requires: None),
            // Groups
            row!(GET "/v1/sessions/{session}/groups", "listGroups", "List all groups", Groups, GroupsRead, Path, Forward, body: None, query: &[], 200, Native(GROUP_LIST), idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/sessions/{session}/groups", "createGroup", "Create a group", Groups, GroupsWrite, Path, Forward, body: Some(CREATE_GROUP), query: &[], 201, Native(GROUP_NATIVE), idempotent: false, sends: false, requires: Some(Working)),
            row!(GET "/v1/sessions/{session}/groups/{groupId}", "getGroup", "Get a group", Groups, GroupsRead, Path, Forward, body: None, query: &[], 200, Native(GROUP_NATIVE), idempotent: false, sends: false, requires: Some(Working)),
            row!(DELETE "/v1/sessions/{session}/groups/{groupId}", "deleteGroup", "Delete a group", Groups, GroupsWrite, Path, Forward, body: None, query: &[], 200, Empty, idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/sessions/{session}/groups/{groupId}/leave", "leaveGroup", "Leave a group", Groups, GroupsWrite, Path, Forward, body: None, query: &[], 200, Native(GROUP_ACTION), idempotent: false, sends: false, requires: Some(Working)),
            row!(PUT "/v1/sessions/{session}/groups/{groupId}/subject", "setGroupSubject", "Update the group name", Groups, GroupsWrite, Path, Forward, body: Some(SUBJECT), query: &[], 200, Native(GROUP_ACTION), idempotent: false, sends: false, requires: Some(Working)),
            row!(PUT "/v1/sessions/{session}/groups/{groupId}/description", "setGroupDescription", "Update the group description", Groups, GroupsWrite, Path, Forward, body: Some(DESCRIPTION), query: &[], 200, Native(GROUP_ACTION), idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/sessions/{session}/groups/{groupId}/participants/add", "addParticipants", "Add participants", Groups, GroupsWrite, Path, Forward, body: Some(PARTICIPANTS), query: &[], 200, Native(GROUP_ACTION), idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/sessions/{session}/groups/{groupId}/participants/remove", "removeParticipants", "Remove participants", Groups, GroupsWrite, Path, Forward, body: Some(PARTICIPANTS), query: &[], 200, Native(GROUP_ACTION), idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/sessions/{session}/groups/{groupId}/admin/promote", "promoteParticipants", "Promote participants to admin", Groups, GroupsWrite, Path, Forward, body: Some(PARTICIPANTS), query: &[], 200, Native(GROUP_ACTION), idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/sessions/{session}/groups/{groupId}/admin/demote", "demoteParticipants", "Demote admins", Groups, GroupsWrite, Path, Forward, body: Some(PARTICIPANTS), query: &[], 200, Native(GROUP_ACTION), idempotent: false, sends: false, requires: Some(Working)),
            // Channels
            row!(GET "/v1/sessions/{session}/channels", "listChannels", "List subscribed channels", Channels, ChannelsRead, Path, Forward, body: None, query: &[], 200, List(CHANNEL), idempotent: false, sends: false, requires: Some(Working)),
            row!(POST "/v1/sessions/{session}/channels", "createChannel", "Create a channel", Channels, ChannelsWrite, Path, Forward, body: Some(CREATE_CHANNEL), query: &[], 201, Object(CHANNEL), idempotent: false, sends: false, requires: Some(Working)),
            row!(GET "/v1/sessions/{session}/channels/{channelId}", "getChannel", "Get a channel", Channels, ChannelsRead, Path, Forward, body: None, query: &[], 200, Object(CHANNEL), idempotent: false, sends: false, requires: Some(Working)),
            row!(DELETE "/v1/sessions/{session}/channels/{channelId}", "deleteChannel", "Delete a channel", Channels, ChannelsWrite, Path, Forward, body: None, query: &[], 200, Empty, idempotent: false, sends: false, requires: Some(Working)),
            row!(GET "/v1/sessions/{session}/channels/{channelId}/messages/preview", "previewChannelMessages", "Preview a channel's messages", Channels, ChannelsRead, Path, Forward, body: None, query: &[], 200, List(CHANNEL_MESSAGE), idempotent: false, sends: false, requires: Some(Working)),
            // Contacts
            row!(GET "/v1/contacts/check-exists", "checkExists", "Check whether a phone number is on WhatsApp", Contacts, ContactsRead, Query("session"), CheckExists, body: None, query: CHECK_EXISTS_QUERY, 200, Object(CHECK_EXISTS), idempotent: false, sends: false, requires: Some(Working)),
            // Presence
            row!(POST "/v1/sessions/{session}/presence", "setPresence", "Set the session's presence", Presence, PresenceWrite, Path, Forward, body: Some(SET_PRESENCE), query: &[], 201, Object(RESULT), idempotent: false, sends: false, requires: Some(Working)),
            row!(GET "/v1/sessions/{session}/presence", "listPresence", "Get all chats' presence", Presence, PresenceRead, Path, Forward, body: None, query: &[], 200, List(PRESENCE), idempotent: false, sends: false, requires: Some(Working)),
        ]
    });
    &TABLE
}
