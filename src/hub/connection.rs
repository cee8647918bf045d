//! One WebSocket: a reader loop (this task) that validates client frames, and a pump task
//! that writes queued frames and pings to the socket.

use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use super::protocol::{self, ClientFrame, Frame, FrameError, ServerFrame};
use super::writer::{Caller, Origin, WriterOp};
use super::{Connection, Control, Hub, close};
use crate::auth::Authenticated;
use crate::config::limits;
use crate::store::{self, ChatOp, ConversationId, MessageChange, SendTarget};
use crate::text;

/// An upgraded HTTP connection, before it is made a WebSocket.
pub type RawSocket = TokioIo<Upgraded>;

/// A server-side WebSocket over an upgraded HTTP connection.
pub type WebSocket = WebSocketStream<RawSocket>;

/// Serves one authenticated socket until it closes.
pub async fn serve(hub: Hub, raw: RawSocket, config: WebSocketConfig, who: Authenticated) {
    // A task's future is as large as its largest state, and an idle socket's task should hold
    // only what its read loop needs: so the account record is dropped here, and opening the
    // socket, like each frame's handling below, is a boxed future of its own.
    let (user, session_id) = (who.user.id, who.session_id);
    drop(who);
    let opened = Box::pin(open(&hub, raw, config, user, session_id)).await;
    let Some(Opened {
        sink,
        mut stream,
        control,
        registered,
    }) = opened
    else {
        return;
    };
    let id = registered.id;
    tracing::debug!(user, connection = id, "connected");

    let pump = tokio::spawn(pump(sink, control.clone()));
    let pump_abort = pump.abort_handle();
    let mut reader = Reader {
        hub: &hub,
        user,
        id,
        outbox: &control,
        budget: RateBudget::new(hub.inner.frame_rate),
    };
    loop {
        tokio::select! {
            next = tokio::time::timeout(limits::PEER_TIMEOUT, stream.next()) => match next {
                Ok(Some(Ok(message))) => {
                    if !Box::pin(reader.handle(message)).await {
                        break;
                    }
                }
                Ok(Some(Err(e))) => {
                    tracing::debug!(user, connection = id, error = %e, "socket error");
                    if let Some(code) = close_code_for(&e) {
                        control.close(code);
                    }
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::debug!(user, connection = id, "peer timed out");
                    break;
                }
            },
            () = control.closed() => break,
        }
    }
    count_if_cut_off(&hub, &control);
    // Tell the pump to say goodbye (a no-op if a close code is already set); a peer that
    // does not read gets a moment, then is cut off. Only then is the connection forgotten,
    // so shutdown can wait for every goodbye to be sent.
    control.close(close::NORMAL);
    if tokio::time::timeout(limits::SOCKET_GOODBYE, pump)
        .await
        .is_err()
    {
        pump_abort.abort();
    }
    drop(registered);
    tracing::debug!(user, connection = id, "disconnected");
}

/// A socket the hub knows, its `hello` written.
struct Opened {
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    control: Arc<Control>,
    registered: Registered,
}

/// Registers the socket with the hub, writes its `hello` and makes it a WebSocket. `None` if
/// the hub turned it away (the client is told why) or it closed meanwhile.
///
/// The hello is written to the raw connection before tungstenite wraps it: tungstenite's
/// write buffer keeps the largest capacity it ever needed for the socket's whole life, and
/// the hello (the roster, every conversation) is by far the largest frame most sockets get.
async fn open(
    hub: &Hub,
    mut raw: RawSocket,
    config: WebSocketConfig,
    user: u64,
    session_id: u128,
) -> Option<Opened> {
    let id = hub.next_connection_id();
    let control = Arc::new(Control::default());
    let connection = Connection {
        session_id,
        control: control.clone(),
    };

    let (reply, hello) = oneshot::channel();
    let connect = WriterOp::Connect {
        user,
        id,
        connection,
        reply,
    };
    let hello = match hub.submit(connect).await {
        Ok(()) => hello.await.unwrap_or(Err(close::TRY_AGAIN_LATER)),
        Err(()) => Err(close::GOING_AWAY),
    };
    let hello = match hello {
        Ok(hello) => hello,
        Err(code) => {
            let mut socket = WebSocket::from_raw_socket(raw, Role::Server, Some(config)).await;
            let _ = socket.send(close_frame(code)).await;
            return None;
        }
    };
    // From here on the hub knows this connection; the guard forgets it however we leave,
    // panics included.
    let registered = Registered {
        hub: hub.clone(),
        user,
        id,
    };
    // A client that reads nothing can leave this write pending forever (a hello with many
    // long last messages outgrows the socket's buffers): give up when the connection is
    // closed meanwhile (its queue overflowed, its session ended) or the peer stays silent.
    let written = tokio::select! {
        written = tokio::time::timeout(limits::PEER_TIMEOUT, write_text_frame(&mut raw, hello)) => {
            matches!(written, Ok(Ok(())))
        }
        () = control.closed() => false,
    };
    if !written {
        tracing::debug!(user, connection = id, "the hello could not be written");
        count_if_cut_off(hub, &control);
        return None;
    }
    let (sink, stream) = WebSocket::from_raw_socket(raw, Role::Server, Some(config))
        .await
        .split();
    Some(Opened {
        sink,
        stream,
        control,
        registered,
    })
}

/// A socket closed because it fell too far behind is counted in the metrics.
fn count_if_cut_off(hub: &Hub, control: &Control) {
    if control.code() == Some(close::POLICY) {
        hub.inner.metrics.slow_consumers.inc();
    }
}

struct Registered {
    hub: Hub,
    user: u64,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.hub.unregister(self.user, self.id);
    }
}

/// Writes queued frames and pings. Ends when the connection is closed or the socket fails.
///
/// Every frame waiting in the queue is written in one go and flushed once: a committed batch
/// fans out many frames to a busy member, and a system call per frame would cost more than
/// the rest of the delivery.
async fn pump(mut sink: SplitSink<WebSocket, Message>, control: Arc<Control>) {
    let mut ping = tokio::time::interval(limits::PING_INTERVAL);
    ping.tick().await;
    let closed = control.closed();
    tokio::pin!(closed);
    loop {
        let sent = tokio::select! {
            // A fresh `Vec` per wake-up, freed once written: an idle socket holds no batch
            // buffer (a malloc per wake-up is nothing next to the write it comes with).
            mut frames = control.next_frames(limits::PUMP_BATCH) => {
                write_all(&mut sink, &mut frames).await
            }
            _ = ping.tick() => sink.send(Message::Ping(Default::default())).await,
            // Closing: stop writing ordinary frames and say goodbye below.
            () = &mut closed => break,
        };
        if sent.is_err() {
            control.close(close::INTERNAL);
            return;
        }
    }
    let code = control.code().unwrap_or(close::NORMAL);
    let _ = sink.send(close_frame(code)).await;
    let _ = sink.close().await;
}

/// Feeds `frames` into the socket's write buffer (which writes out as it fills) and flushes
/// once.
async fn write_all(
    sink: &mut SplitSink<WebSocket, Message>,
    frames: &mut Vec<Frame>,
) -> Result<(), tungstenite::Error> {
    for frame in frames.drain(..) {
        sink.feed(Message::Text(frame)).await?;
    }
    sink.flush().await
}

/// One unfragmented text frame (a server's frames are not masked), framed by tungstenite.
async fn write_text_frame(raw: &mut RawSocket, text: Frame) -> std::io::Result<()> {
    let frame = tungstenite::protocol::frame::Frame::message(text, OpCode::Data(Data::Text), true);
    let mut bytes = Vec::with_capacity(frame.len());
    frame.format(&mut bytes).map_err(std::io::Error::other)?;
    raw.write_all(&bytes).await?;
    raw.flush().await
}

fn close_frame(code: u16) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason(code).into(),
    }))
}

fn reason(code: u16) -> &'static str {
    match code {
        close::GOING_AWAY => "server shutting down",
        close::POLICY => "too slow: reconnect and catch up",
        close::PROTOCOL_ERROR => "protocol violation",
        close::INVALID_PAYLOAD => "text frames must be valid UTF-8",
        close::MESSAGE_TOO_BIG => "frame too large",
        close::SESSION_ENDED => "session ended: sign in again",
        close::TRY_AGAIN_LATER => "try again later",
        _ => "",
    }
}

/// How to close after a read error: the peer broke the framing rules (unmasked frame, reserved
/// opcode or bits, oversized or fragmented control frame, bad close frame: 1002), sent text
/// that is not UTF-8 (1007) or a frame over the limit (1009). `None` when the socket is simply
/// gone. tungstenite reports these and leaves the socket writable, so the close frame the peer
/// gets is ours (it answers by itself only a close frame with a forbidden code, with 1002).
fn close_code_for(error: &tungstenite::Error) -> Option<u16> {
    use tungstenite::Error as E;
    match error {
        E::Capacity(_) => Some(close::MESSAGE_TOO_BIG),
        E::Utf8(_) => Some(close::INVALID_PAYLOAD),
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        E::Protocol(_) => Some(close::PROTOCOL_ERROR),
        _ => None,
    }
}

/// Handles one connection's incoming frames.
struct Reader<'a> {
    hub: &'a Hub,
    user: u64,
    id: u64,
    /// For replying to this connection only (errors).
    outbox: &'a Control,
    budget: RateBudget,
}

impl Reader<'_> {
    /// Returns false when the connection should close.
    async fn handle(&mut self, message: Message) -> bool {
        let text = match message {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
            Message::Close(_) => return false,
            // Pings are answered by the library; pongs only prove liveness.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return true,
        };
        // Every data frame spends budget before anything is parsed or copied, so a flood
        // costs a token-bucket update per frame. A dropped frame is only scanned for its
        // client_id (nothing built, nothing copied) so the answer can name the dropped send.
        if !self.budget.take() {
            self.hub.inner.metrics.frames_rate_limited.inc();
            let client_id = text.as_deref().and_then(protocol::client_id_of);
            let error = FrameError::new("rate_limited", "too many frames; slow down");
            self.reply_error(error.with_client_id(client_id));
            return true;
        }
        let Some(text) = text else {
            self.reply_error(FrameError::new(
                "binary_not_supported",
                "frames are JSON text; binary frames are not supported",
            ));
            return true;
        };
        let result = match ClientFrame::parse(&text) {
            Ok(frame) => self.apply(frame).await,
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            self.reply_error(error);
        }
        true
    }

    async fn apply(&mut self, frame: ClientFrame) -> Result<(), FrameError> {
        match frame {
            ClientFrame::Send {
                to,
                conversation,
                body,
                client_id,
                reply_to,
                files,
            } => {
                let with_id = |e: FrameError| e.with_client_id(Some(client_id.clone()));
                let target = send_target(to, conversation).map_err(with_id)?;
                check_files(&files).map_err(with_id)?;
                // With files, a caption is optional.
                let caption_only = !files.is_empty() && text::is_blank(&body);
                let checked_body = if caption_only { "-" } else { body.as_str() };
                check_send(checked_body, &client_id).map_err(with_id)?;
                let op = ChatOp::Send {
                    sender: self.user,
                    target,
                    body,
                    client_id: client_id.clone(),
                    sent_at: store::now_millis(),
                    reply_to,
                    files,
                };
                self.submit(op, Some(client_id)).await
            }
            ClientFrame::Change {
                conversation,
                seq,
                change,
                client_id,
            } => {
                let with_id = |e: FrameError| e.with_client_id(Some(client_id.clone()));
                let conversation = parse_conversation(&conversation).map_err(with_id)?;
                check_change(&change, &client_id).map_err(with_id)?;
                let op = ChatOp::Change {
                    user: self.user,
                    conversation,
                    seq,
                    change,
                    client_id: client_id.clone(),
                    at: store::now_millis(),
                };
                self.submit(op, Some(client_id)).await
            }
            ClientFrame::Read { conversation, seq } => {
                let conversation = parse_conversation(&conversation)?;
                let op = ChatOp::Read {
                    user: self.user,
                    conversation,
                    seq,
                };
                self.submit(op, None).await
            }
            ClientFrame::Typing { conversation } => {
                let conversation = parse_conversation(&conversation)?;
                self.typing(conversation).await
            }
        }
    }

    async fn submit(&self, op: ChatOp, client_id: Option<String>) -> Result<(), FrameError> {
        let origin = Origin {
            user: self.user,
            connection: self.id,
            client_id,
        };
        self.hub
            .submit(WriterOp::Chat {
                op,
                caller: Caller::Socket(origin),
            })
            .await
            .map_err(|()| FrameError::new("internal", "the server is shutting down"))
    }

    /// Typing is relayed, never stored. Membership comes from the store's cache, so a typing
    /// flood reads no membership table (and a member removed from a room stops being relayed
    /// at once). Typing announces a message, so where none may be written (an archived room)
    /// it is refused like a send, with `room_archived`; that costs one record read per frame
    /// in a room, as the checks below cost in a DM.
    async fn typing(&mut self, conversation: ConversationId) -> Result<(), FrameError> {
        let store = self.hub.inner.store.clone();
        let user = self.user;
        let members = match store.cached_members(&conversation) {
            Some(members) => Some(members),
            None => {
                let lookup = conversation.clone();
                store::blocking(move || store.members(user, &lookup))
                    .await
                    .map_err(|_| {
                        FrameError::new("internal", "could not look up the conversation")
                    })?
            }
        };
        let others: Vec<u64> = members
            .filter(|members| members.contains(&user))
            .ok_or_else(|| FrameError::from(crate::store::ChatRejection::NotAMember))?
            .iter()
            .copied()
            .filter(|&m| m != user)
            .collect();
        if conversation.is_room() {
            let store = self.hub.inner.store.clone();
            let room = conversation.clone();
            let archived = store::blocking(move || store.is_archived(&room))
                .await
                .map_err(|_| FrameError::new("internal", "could not look up the conversation"))?;
            if archived {
                return Err(crate::store::ChatRejection::RoomArchived.into());
            }
        }
        // In a DM the other person may not want to hear from this one at all.
        if let [other] = others[..]
            && !conversation.is_room()
        {
            let store = self.hub.inner.store.clone();
            let dm = conversation.clone();
            let reaches = store::blocking(move || store.dm_typing_reaches(user, other, &dm))
                .await
                .map_err(|_| FrameError::new("internal", "could not look up the conversation"))?;
            if !reaches {
                return Ok(());
            }
        }
        let frame = ServerFrame::Typing {
            conversation: &conversation,
            user,
        }
        .encode();
        self.hub.deliver_to(&others, &frame, None);
        Ok(())
    }

    fn reply_error(&self, error: FrameError) {
        if !self.outbox.offer(error.encode()) {
            tracing::debug!(user = self.user, "dropped an error frame for a full queue");
        }
    }
}

fn send_target(to: Option<u64>, conversation: Option<String>) -> Result<SendTarget, FrameError> {
    match (to, conversation) {
        (Some(to), None) => Ok(SendTarget::User(to)),
        (None, Some(conversation)) => {
            Ok(SendTarget::Conversation(parse_conversation(&conversation)?))
        }
        _ => Err(FrameError::new(
            "invalid_frame",
            "a send needs exactly one of to or conversation",
        )),
    }
}

/// An id that is not canonical cannot name a conversation the caller is in.
fn parse_conversation(raw: &str) -> Result<ConversationId, FrameError> {
    ConversationId::parse(raw)
        .ok_or_else(|| FrameError::from(crate::store::ChatRejection::NotAMember))
}

/// An edit's body follows the rules of a send's; a reaction is one emoji.
fn check_change(change: &MessageChange, client_id: &str) -> Result<(), FrameError> {
    match change {
        MessageChange::Edit { body } => check_send(body, client_id),
        MessageChange::Delete => check_send("-", client_id),
        MessageChange::React { emoji } => {
            check_send("-", client_id)?;
            if is_emoji(emoji) {
                Ok(())
            } else {
                Err(FrameError::new(
                    "invalid_emoji",
                    "a reaction is one emoji (at most 32 bytes)",
                ))
            }
        }
    }
}

/// One emoji as people type them: one pictograph, or several joined into one (👩‍💻), with
/// skin tones and variation selectors; a flag (two regional indicators); or a keycap (1️⃣).
/// Letters, text symbols, spaces, invisible and control characters alone or around it are not.
fn is_emoji(text: &str) -> bool {
    if !(1..=32).contains(&text.len()) {
        return false;
    }
    let mut chars = text.chars().peekable();
    let mut emoji = 0;
    let mut joining = false;
    while let Some(c) = chars.next() {
        match c {
            '\u{200D}' if emoji > 0 && !joining => joining = true,
            // Variation selectors, skin tones and tag sequences modify what came before.
            '\u{FE0E}' | '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}'
                if emoji > 0 && !joining => {}
            '0'..='9' | '#' | '*' if !joining => {
                chars.next_if_eq(&'\u{FE0F}');
                if chars.next_if_eq(&'\u{20E3}').is_none() {
                    return false;
                }
                emoji += 1;
            }
            '\u{1F1E6}'..='\u{1F1FF}' if !joining => {
                if chars
                    .next_if(|n| ('\u{1F1E6}'..='\u{1F1FF}').contains(n))
                    .is_none()
                {
                    return false;
                }
                emoji += 1;
            }
            c if is_pictograph(c) => {
                if !joining {
                    emoji += 1;
                }
                joining = false;
            }
            _ => return false,
        }
    }
    emoji == 1 && !joining
}

/// Characters that are emoji on their own (Unicode's Extended_Pictographic, near enough).
fn is_pictograph(c: char) -> bool {
    matches!(c,
        '\u{A9}' | '\u{AE}' | '\u{203C}' | '\u{2049}' | '\u{2122}' | '\u{2139}'
        | '\u{2194}'..='\u{2199}' | '\u{21A9}'..='\u{21AA}' | '\u{231A}'..='\u{23FF}'
        | '\u{24C2}' | '\u{25AA}'..='\u{25FE}' | '\u{2600}'..='\u{27BF}'
        | '\u{2934}'..='\u{2935}' | '\u{2B05}'..='\u{2B55}' | '\u{3030}' | '\u{303D}'
        | '\u{3297}' | '\u{3299}' | '\u{1F000}'..='\u{1FAFF}')
}

/// At most [`limits::MAX_FILES_PER_MESSAGE`] file ids; whether each is the sender's pending
/// upload is the writer's to check.
fn check_files(files: &[String]) -> Result<(), FrameError> {
    if files.len() > limits::MAX_FILES_PER_MESSAGE {
        return Err(FrameError::new(
            "too_many_files",
            format!(
                "a message carries at most {} files",
                limits::MAX_FILES_PER_MESSAGE
            ),
        ));
    }
    if files.iter().any(|id| id.len() > 64) {
        return Err(crate::store::ChatRejection::NoSuchFile.into());
    }
    Ok(())
}

fn check_send(body: &str, client_id: &str) -> Result<(), FrameError> {
    if client_id.is_empty() || client_id.chars().count() > limits::MAX_CLIENT_ID_CHARS {
        return Err(FrameError::new(
            "invalid_client_id",
            format!(
                "client_id must be 1 to {} characters",
                limits::MAX_CLIENT_ID_CHARS
            ),
        ));
    }
    if text::is_blank(body) {
        return Err(FrameError::new("empty_body", "the message is empty"));
    }
    if body.chars().count() > limits::MAX_MESSAGE_CHARS {
        return Err(FrameError::new(
            "body_too_long",
            format!(
                "messages are limited to {} characters",
                limits::MAX_MESSAGE_CHARS
            ),
        ));
    }
    Ok(())
}

/// A token bucket: `rate` frames per second sustained, `FRAME_BURST_SECONDS` × `rate` at once.
struct RateBudget {
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

impl RateBudget {
    fn new(rate: u32) -> RateBudget {
        let rate = f64::from(rate);
        RateBudget {
            rate,
            tokens: rate * limits::FRAME_BURST_SECONDS,
            refilled: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.rate * limits::FRAME_BURST_SECONDS);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_are_emoji() {
        for ok in [
            "👍",
            "🎉",
            "👩\u{200D}💻",
            "👍🏽",
            "❤\u{FE0F}",
            "1\u{FE0F}\u{20E3}",
            "#\u{20E3}",
            "©",
            "‼",
            "😂",
            "😮",
            "😢",
            "🙏",
            "✅",
            "🇫🇷",
            "👨\u{200D}👩\u{200D}👧",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
        ] {
            assert!(is_emoji(ok), "{ok:?}");
        }
        for bad in [
            "",
            "ok",
            "👍 ",
            "a👍",
            "\n",
            &"👍".repeat(9),
            "👍🎉",
            "нет…",
            "→→→",
            "中文",
            "\u{200B}",
            "\u{202E}",
            "\u{FE0F}",
            "👍\u{200D}",
            "\u{200D}👍",
            "1",
            "🇫",
            "🇫🇷🇩🇪",
        ] {
            assert!(!is_emoji(bad), "{bad:?}");
        }
    }

    #[test]
    fn read_errors_map_to_close_codes() {
        use tungstenite::Error as E;
        use tungstenite::error::CapacityError;
        let cases = [
            (
                E::Protocol(ProtocolError::UnmaskedFrameFromClient),
                Some(close::PROTOCOL_ERROR),
            ),
            (
                E::Protocol(ProtocolError::NonZeroReservedBits),
                Some(close::PROTOCOL_ERROR),
            ),
            (
                E::Protocol(ProtocolError::UnknownDataFrameType(3)),
                Some(close::PROTOCOL_ERROR),
            ),
            (
                E::Protocol(ProtocolError::ControlFrameTooBig),
                Some(close::PROTOCOL_ERROR),
            ),
            (
                E::Utf8("invalid utf-8".into()),
                Some(close::INVALID_PAYLOAD),
            ),
            (
                E::Capacity(CapacityError::MessageTooLong {
                    size: 2,
                    max_size: 1,
                }),
                Some(close::MESSAGE_TOO_BIG),
            ),
            (
                E::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                None,
            ),
            (E::ConnectionClosed, None),
        ];
        for (error, code) in cases {
            assert_eq!(close_code_for(&error), code, "{error}");
        }
    }
}
