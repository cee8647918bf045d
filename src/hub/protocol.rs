//! The WebSocket frames, as documented in docs/PROTOCOL.md.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::{
    ChatRejection, ConversationId, ConversationSummary, DirectoryEntry, Message, User,
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
    Read {
        conversation: &'a ConversationId,
        user: u64,
        seq: u64,
    },
    Unread {
        conversation: &'a ConversationId,
        unread: u64,
        read_seq: u64,
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
    Error {
        code: &'static str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
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
    },
    Read {
        conversation: String,
        seq: u64,
    },
    Typing {
        conversation: String,
    },
}

#[derive(Deserialize)]
struct SendFields {
    to: Option<u64>,
    conversation: Option<String>,
    body: String,
    client_id: String,
}

#[derive(Deserialize)]
struct ReadFields {
    conversation: String,
    /// Signed, so a negative seq is reported as `invalid_seq` rather than a type error.
    seq: i64,
}

#[derive(Deserialize)]
struct TypingFields {
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
        let code = match rejection {
            ChatRejection::NotAMember => "not_a_member",
            ChatRejection::NoSuchUser => "no_such_user",
            ChatRejection::CannotMessageSelf => "cannot_message_self",
            ChatRejection::ClientIdReused => "client_id_reused",
            ChatRejection::InvalidSeq => "invalid_seq",
        };
        FrameError::new(code, rejection.to_string())
    }
}

impl ClientFrame {
    /// Parses a text frame, telling apart bad JSON, unknown types and missing fields.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| FrameError::new("invalid_json", format!("not valid JSON: {e}")))?;
        let client_id = value
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let invalid = |e: serde_json::Error| {
            // A missing field is a malformed frame; a field of the wrong type is bad JSON.
            let code = if e.to_string().starts_with("missing field") {
                "invalid_frame"
            } else {
                "invalid_json"
            };
            FrameError::new(code, format!("invalid {kind} frame: {e}"))
                .with_client_id(client_id.clone())
        };
        match kind {
            "send" => {
                let f: SendFields = serde_json::from_value(value.clone()).map_err(invalid)?;
                Ok(ClientFrame::Send {
                    to: f.to,
                    conversation: f.conversation,
                    body: f.body,
                    client_id: f.client_id,
                })
            }
            "read" => {
                let f: ReadFields = serde_json::from_value(value.clone()).map_err(invalid)?;
                let seq = u64::try_from(f.seq)
                    .map_err(|_| FrameError::from(ChatRejection::InvalidSeq))?;
                Ok(ClientFrame::Read {
                    conversation: f.conversation,
                    seq,
                })
            }
            "typing" => {
                let f: TypingFields = serde_json::from_value(value.clone()).map_err(invalid)?;
                Ok(ClientFrame::Typing {
                    conversation: f.conversation,
                })
            }
            _ => Err(
                FrameError::new("unknown_type", "type must be one of send, read, typing")
                    .with_client_id(client_id),
            ),
        }
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
    }
}
