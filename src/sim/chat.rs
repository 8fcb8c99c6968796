//! Chat and message ids as WhatsApp Web writes them, and the message shapes events carry.

use super::error::SimError;
use rand::Rng;
use serde_json::{json, Value};

/// The server after a chat id's `@`: it says what kind of chat the id names (ENGINE.md §1,
/// chatId formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatServer {
    /// A person, by phone number.
    Contact,
    Group,
    /// A channel (newsletter).
    Channel,
    /// A person as the multi-device protocol names them.
    Device,
    /// A person behind a hidden number.
    Lid,
    /// Status updates and broadcast lists (`status@broadcast`, A3).
    Broadcast,
}

impl ChatServer {
    const ALL: [ChatServer; 6] = [
        ChatServer::Contact,
        ChatServer::Group,
        ChatServer::Channel,
        ChatServer::Device,
        ChatServer::Lid,
        ChatServer::Broadcast,
    ];

    fn suffix(self) -> &'static str {
        match self {
            ChatServer::Contact => "c.us",
            ChatServer::Group => "g.us",
            ChatServer::Channel => "newsletter",
            ChatServer::Device => "s.whatsapp.net",
            ChatServer::Lid => "lid",
            ChatServer::Broadcast => "broadcast",
        }
    }

    /// `user@server`.
    pub fn id(self, user: &str) -> String {
        format!("{user}@{}", self.suffix())
    }

    /// A new id on this server, as WhatsApp makes them for groups and channels.
    pub fn new_id(self) -> String {
        self.id(&format!("120363{}", random_digits(12)))
    }

    /// The server a valid chat id names.
    pub fn of(chat: &str) -> Option<Self> {
        let (_, server) = chat.split_once('@')?;
        Self::ALL.into_iter().find(|s| s.suffix() == server)
    }
}

/// A phone number as the API takes it: 5 to 20 digits with the country code, no `+`.
pub fn is_phone_number(digits: &str) -> bool {
    (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A chat id as the upstream reads it: a bare phone number becomes `<digits>@c.us`, and every
/// form of ENGINE.md §1 (chatId formats) is taken as given.
pub fn chat_id(raw: &str) -> Result<String, SimError> {
    let raw = raw.trim();
    let invalid = || SimError::bad_request(format!("chatId \"{raw}\" is not a valid chat id"));
    match raw.split_once('@') {
        Some((user, _)) if !user.is_empty() && ChatServer::of(raw).is_some() => Ok(raw.into()),
        Some(_) => Err(invalid()),
        None => {
            let digits = raw.trim_start_matches('+');
            if is_phone_number(digits) {
                Ok(ChatServer::Contact.id(digits))
            } else {
                Err(invalid())
            }
        }
    }
}

/// `n` random decimal digits.
pub fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

/// WhatsApp Web's message id: `<fromMe>_<chat>_<3EB0 + 16 hex>`.
pub fn message_id(from_me: bool, chat: &str) -> String {
    let tail: u64 = rand::thread_rng().gen();
    format!("{from_me}_{chat}_3EB0{tail:016X}")
}

/// The fields every message event starts with. `chat` is the other party: the sender of a
/// received message, the recipient of a sent one.
pub fn message_head(id: &str, from_me: bool, me: &str, chat: &str) -> Value {
    let (from, to) = if from_me { (me, chat) } else { (chat, me) };
    json!({
        "id": id,
        "timestamp": chrono::Utc::now().timestamp(),
        "from": from,
        "fromMe": from_me,
        "to": to,
    })
}

/// A text or media message as `message` and `message.any` carry it.
pub fn message(id: &str, from_me: bool, me: &str, chat: &str, body: &str, media: bool) -> Value {
    let mut message = message_head(id, from_me, me, chat);
    message["body"] = json!(body);
    message["hasMedia"] = json!(media);
    // A message this account sends is PENDING until the server takes it; one it receives has
    // been through the server already.
    message["ack"] = json!(if from_me { ACK_PENDING } else { ACK_SERVER });
    message
}

/// The acknowledgement levels, -1 (ERROR) to 4 (PLAYED), and their names.
pub const ACK_LEVELS: std::ops::RangeInclusive<i64> = -1..=4;
const ACK_NAMES: [&str; 6] = ["ERROR", "PENDING", "SERVER", "DEVICE", "READ", "PLAYED"];
pub const ACK_PENDING: i64 = 0;
pub const ACK_SERVER: i64 = 1;

/// `message.ack` for message `id` this account sent to `to`; `ack` is one of `ACK_LEVELS`.
pub fn ack(id: &str, me: &str, to: &str, ack: i64) -> Value {
    let name = ACK_NAMES[(ack - ACK_LEVELS.start()) as usize];
    json!({
        "id": id, "from": me, "fromMe": true, "to": to,
        "participant": null, "ack": ack, "ackName": name,
    })
}
