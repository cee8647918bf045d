//! The WebSocket frames, as documented in docs/PROTOCOL.md.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::json;

use crate::store::{
    ChatRejection, ConversationId, ConversationSummary, DirectoryEntry, Message, MessageChange,
    Notify, RoomView, User,
};

/// A frame as sent to clients, serialized once; clones share the bytes, so fan-out to many
/// connections copies nothing.
pub type Frame = tokio_tungstenite::tungstenite::Utf8Bytes;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Hello {
        user: &'a User,
        online: &'a [u64],
        conversations: &'a [ConversationSummary],
    },
    Ack {
        client_id: &'a str,
        message: &'a Message,
    },
    Message {
        message: &'a Message,
    },
    /// A message was edited, deleted or reacted to.
    Update {
        message: &'a Message,
        change_seq: u64,
    },
    Read {
        conversation: &'a ConversationId,
        user: u64,
        seq: u64,
    },
    Unread {
        conversation: &'a ConversationId,
        unread: u64,
        read_seq: u64,
        /// Rooms only.
        #[serde(skip_serializing_if = "Option::is_none")]
        mentions: Option<u64>,
    },
    Typing {
        conversation: &'a ConversationId,
        user: u64,
    },
    Presence {
        user: u64,
        online: bool,
        last_seen: u64,
    },
    /// An account was created or changed by an administrator.
    User {
        user: DirectoryEntry<'a>,
    },
    /// Someone joined, left, was added to or removed from a room.
    Member {
        conversation: &'a ConversationId,
        action: &'static str,
        user: DirectoryEntry<'a>,
        by: u64,
    },
    /// A conversation appeared, changed or went away for this user.
    Conversation {
        action: &'static str,
        conversation: ConversationPayload<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<u64>,
    },
    /// A chat request was sent, received, accepted or declined.
    Request(RequestFrame<'a>),
    Error {
        code: &'static str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
    },
}

/// A `request` frame; which fields it carries depends on `action` (docs/PROTOCOL.md).
#[derive(Serialize, Default)]
pub struct RequestFrame<'a> {
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
}

/// What a `conversation` frame carries, by action (docs/PROTOCOL.md).
#[derive(Serialize)]
#[serde(untagged)]
pub enum ConversationPayload<'a> {
    /// `created`: the recipient's own summary.
    Summary(&'a ConversationSummary),
    /// `renamed`, `topic`, `visibility`, `archived`: what every member sees alike.
    Room {
        id: &'a ConversationId,
        #[serde(flatten)]
        room: &'a RoomView,
    },
    /// `removed`.
    Id { id: &'a ConversationId },
    /// `notify`.
    Notify {
        id: &'a ConversationId,
        notify: Notify,
    },
}

impl ServerFrame<'_> {
    pub fn encode(&self) -> Frame {
        // Serializing these plain structs to a string cannot fail.
        Frame::from(serde_json::to_string(self).unwrap_or_default())
    }
}

/// What a client may send.
#[derive(Debug)]
pub enum ClientFrame {
    Send {
        to: Option<u64>,
        conversation: Option<String>,
        body: String,
        client_id: String,
        reply_to: Option<u64>,
        /// Ids of the sender's pending uploads.
        files: Vec<String>,
    },
    /// `edit`, `delete` or `react`.
    Change {
        conversation: String,
        seq: u64,
        change: MessageChange,
        client_id: String,
    },
    Read {
        conversation: String,
        seq: u64,
    },
    Typing {
        conversation: String,
    },
}

// The fields of each frame type, as HTTP bodies have them: a field the type does not have is
// refused rather than ignored (`{"type":"delete",…,"body":"x"}` must not look as if "x" did
// something), and an optional field is left out, never `null` (`crate::json::present`).
// `type` has been read already; `_kind` only lets it through.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFields {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    #[serde(default, deserialize_with = "json::present")]
    to: Option<u64>,
    #[serde(default, deserialize_with = "json::present")]
    conversation: Option<String>,
    body: String,
    client_id: String,
    #[serde(default, deserialize_with = "json::present")]
    reply_to: Option<u64>,
    #[serde(default)]
    files: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditFields {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    conversation: String,
    seq: u64,
    body: String,
    client_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteFields {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    conversation: String,
    seq: u64,
    client_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactFields {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    conversation: String,
    seq: u64,
    emoji: String,
    client_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadFields {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    conversation: String,
    /// Signed and wide, so a negative or too large seq is reported as `invalid_seq` rather
    /// than a type error.
    seq: i128,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingFields {
    #[serde(rename = "type")]
    _kind: IgnoredAny,
    conversation: String,
}

/// Why a client frame was refused; becomes an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    pub client_id: Option<String>,
}

impl FrameError {
    pub fn new(code: &'static str, message: impl Into<String>) -> FrameError {
        FrameError {
            code,
            message: message.into(),
            client_id: None,
        }
    }

    pub fn with_client_id(mut self, client_id: Option<String>) -> FrameError {
        self.client_id = client_id;
        self
    }

    pub fn encode(&self) -> Frame {
        ServerFrame::Error {
            code: self.code,
            message: &self.message,
            client_id: self.client_id.as_deref(),
        }
        .encode()
    }
}

impl From<ChatRejection> for FrameError {
    fn from(rejection: ChatRejection) -> FrameError {
        match rejection {
            // On the socket a room you may not see is any conversation you are not in.
            ChatRejection::NotFound => ChatRejection::NotAMember.into(),
            rejection => FrameError::new(rejection.code(), rejection.to_string()),
        }
    }
}

impl ClientFrame {
    /// Parses a text frame, telling apart bad JSON (duplicate keys and wrong types, `null`
    /// included), unknown types, and missing or unknown fields. The text is walked a few times
    /// but never built into a tree or copied; only the fields a frame keeps are allocated.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        if let Err(e) = json::check_unique_keys(text.as_bytes()) {
            return Err(
                FrameError::new("invalid_json", format!("not valid JSON: {e}"))
                    .with_client_id(client_id_of(text)),
            );
        }
        // Valid JSON that is not an object has no type.
        let head = Head::scan(text).unwrap_or_default();
        let client_id = head.client_id.map(Cow::into_owned);
        let kind = head.kind.unwrap_or_default();
        let invalid = |e: serde_json::Error| {
            // A missing or unknown field is a malformed frame (the message names the field);
            // a field of the wrong type is bad JSON.
            let reason = e.to_string();
            let code = if reason.starts_with("missing field") || reason.starts_with("unknown field")
            {
                "invalid_frame"
            } else {
                "invalid_json"
            };
            FrameError::new(code, format!("invalid {kind} frame: {e}"))
                .with_client_id(client_id.clone())
        };
        match kind.as_ref() {
            "send" => {
                let f: SendFields = serde_json::from_str(text).map_err(invalid)?;
                Ok(ClientFrame::Send {
                    to: f.to,
                    conversation: f.conversation,
                    body: f.body,
                    client_id: f.client_id,
                    reply_to: f.reply_to,
                    files: f.files,
                })
            }
            "edit" => {
                let f: EditFields = serde_json::from_str(text).map_err(invalid)?;
                Ok(ClientFrame::Change {
                    conversation: f.conversation,
                    seq: f.seq,
                    change: MessageChange::Edit { body: f.body },
                    client_id: f.client_id,
                })
            }
            "delete" => {
                let f: DeleteFields = serde_json::from_str(text).map_err(invalid)?;
                Ok(ClientFrame::Change {
                    conversation: f.conversation,
                    seq: f.seq,
                    change: MessageChange::Delete,
                    client_id: f.client_id,
                })
            }
            "react" => {
                let f: ReactFields = serde_json::from_str(text).map_err(invalid)?;
                Ok(ClientFrame::Change {
                    conversation: f.conversation,
                    seq: f.seq,
                    change: MessageChange::React { emoji: f.emoji },
                    client_id: f.client_id,
                })
            }
            "read" => {
                let f: ReadFields = serde_json::from_str(text).map_err(invalid)?;
                let seq = u64::try_from(f.seq)
                    .map_err(|_| FrameError::from(ChatRejection::InvalidSeq))?;
                Ok(ClientFrame::Read {
                    conversation: f.conversation,
                    seq,
                })
            }
            "typing" => {
                let f: TypingFields = serde_json::from_str(text).map_err(invalid)?;
                Ok(ClientFrame::Typing {
                    conversation: f.conversation,
                })
            }
            _ => Err(FrameError::new(
                "unknown_type",
                "type must be one of send, edit, delete, react, read, typing",
            )
            .with_client_id(client_id)),
        }
    }
}

/// The frame's `client_id`, if it is a JSON object with a string one: for naming the frame in
/// an error (a rate-limited send, a frame with a key given twice) without parsing the rest.
pub fn client_id_of(text: &str) -> Option<String> {
    Head::scan(text)?.client_id.map(Cow::into_owned)
}

/// The fields that say what a frame is and how to name it, read in one pass that skips every
/// other value without copying it. Fields of another type than a string count as absent.
#[derive(Default)]
struct Head<'a> {
    kind: Option<Cow<'a, str>>,
    client_id: Option<Cow<'a, str>>,
}

impl<'a> Head<'a> {
    /// `None` unless `text` is a JSON object.
    fn scan(text: &'a str) -> Option<Head<'a>> {
        let mut de = serde_json::Deserializer::from_str(text);
        let head = de.deserialize_map(HeadVisitor).ok()?;
        de.end().ok()?;
        Some(head)
    }
}

struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head<'de>, A::Error> {
        let mut head = Head::default();
        while let Some(json::Str(key)) = map.next_key()? {
            match key.as_ref() {
                "type" => head.kind = map.next_value::<StrOrOther>()?.0,
                "client_id" => head.client_id = map.next_value::<StrOrOther>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(head)
    }
}

/// Any JSON value; keeps it only if it is a string.
struct StrOrOther<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for StrOrOther<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrOrOtherVisitor)
    }
}

struct StrOrOtherVisitor;

impl<'de> Visitor<'de> for StrOrOtherVisitor {
    type Value = StrOrOther<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(StrOrOther(Some(Cow::Borrowed(s))))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(StrOrOther(Some(Cow::Owned(s.to_owned()))))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(StrOrOther(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(StrOrOther(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(StrOrOther(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(StrOrOther(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(StrOrOther(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(StrOrOther(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(StrOrOther(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_are_told_apart() {
        assert_eq!(
            ClientFrame::parse("{").err().map(|e| e.code),
            Some("invalid_json")
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"dance"}"#)
                .err()
                .map(|e| e.code),
            Some("unknown_type")
        );
        let missing = ClientFrame::parse(r#"{"type":"send","to":3,"client_id":"c1"}"#);
        let missing = missing.err();
        assert_eq!(missing.as_ref().map(|e| e.code), Some("invalid_frame"));
        assert_eq!(missing.and_then(|e| e.client_id).as_deref(), Some("c1"));
        assert!(ClientFrame::parse(r#"{"type":"read","conversation":"dm:1:2","seq":3}"#).is_ok());
        for seq in ["-1", "18446744073709551616"] {
            let read = format!(r#"{{"type":"read","conversation":"dm:1:2","seq":{seq}}}"#);
            assert_eq!(
                ClientFrame::parse(&read).err().map(|e| e.code),
                Some("invalid_seq"),
                "{seq}"
            );
        }
    }

    #[test]
    fn null_is_a_wrong_type_and_unknown_fields_are_malformed() {
        let code = |frame: &str| ClientFrame::parse(frame).err().map(|e| e.code);
        for null in [
            r#"{"type":"send","to":null,"conversation":"dm:1:2","body":"x","client_id":"c"}"#,
            r#"{"type":"send","to":2,"conversation":null,"body":"x","client_id":"c"}"#,
            r#"{"type":"send","to":2,"body":"x","reply_to":null,"client_id":"c"}"#,
            r#"{"type":"send","to":2,"body":"x","files":null,"client_id":"c"}"#,
        ] {
            assert_eq!(code(null), Some("invalid_json"), "{null}");
        }
        let unknown = ClientFrame::parse(
            r#"{"type":"delete","conversation":"dm:1:2","seq":1,"client_id":"c","body":"x"}"#,
        )
        .err();
        assert_eq!(unknown.as_ref().map(|e| e.code), Some("invalid_frame"));
        assert!(
            unknown
                .as_ref()
                .is_some_and(|e| e.message.contains("`body`"))
        );
        assert_eq!(unknown.and_then(|e| e.client_id).as_deref(), Some("c"));
        assert_eq!(
            code(r#"{"type":"typing","conversation":"dm:1:2","user":1}"#),
            Some("invalid_frame")
        );
        assert!(
            ClientFrame::parse(
                r#"{"type":"send","conversation":"dm:1:2","body":"x","client_id":"c","reply_to":1,"files":[]}"#
            )
            .is_ok()
        );
    }

    #[test]
    fn only_objects_have_a_type() {
        for not_an_object in [r#""send""#, r#"["send",3,null,"hi","c1"]"#, "42", "null"] {
            assert_eq!(
                ClientFrame::parse(not_an_object).err().map(|e| e.code),
                Some("unknown_type"),
                "{not_an_object}"
            );
        }
        let wrong_type = ClientFrame::parse(r#"{"type":7,"client_id":"c1"}"#).err();
        assert_eq!(wrong_type.as_ref().map(|e| e.code), Some("unknown_type"));
        assert_eq!(wrong_type.and_then(|e| e.client_id).as_deref(), Some("c1"));
    }

    #[test]
    fn a_key_given_twice_is_invalid_json_naming_the_client_id() {
        let twice = ClientFrame::parse(
            r#"{"type":"send","to":3,"to":4,"body":"hi","client_id":"c\u0031"}"#,
        )
        .err();
        assert_eq!(twice.as_ref().map(|e| e.code), Some("invalid_json"));
        assert_eq!(twice.and_then(|e| e.client_id).as_deref(), Some("c1"));
        let nested =
            ClientFrame::parse(r#"{"type":"typing","conversation":"dm:1:2","x":{"a":1,"a":1}}"#);
        assert_eq!(nested.err().map(|e| e.code), Some("invalid_json"));
    }

    #[test]
    fn client_id_of_reads_only_a_string_client_id() {
        assert_eq!(
            client_id_of(r#"{"body":{"client_id":"inner"},"client_id":"c1"}"#).as_deref(),
            Some("c1")
        );
        assert_eq!(client_id_of(r#"{"client_id":5}"#), None);
        assert_eq!(client_id_of(r#"{"client_id":"c1""#), None);
        assert_eq!(client_id_of("[]"), None);
    }
}
