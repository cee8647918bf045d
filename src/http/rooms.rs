//! Rooms, notification levels, mentions, chat requests, blocks and the caller's settings.
//! Every change goes through the hub's writer, like a message, so it is committed before it
//! is answered and reaches every tab in commit order.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use warp::Reply;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::QueryParams;
use crate::app::App;
use crate::auth::Authenticated;
use crate::store::{
    self, ChatOp, ChatOutcome, ConversationId, DmPolicy, Notify, PeopleOp, RoomOp, RoomPatch,
    Visibility,
};

/// Longest room name and topic, in characters.
const MAX_ROOM_NAME_CHARS: usize = 64;
const MAX_TOPIC_CHARS: usize = 250;
/// Most mentions `GET /api/mentions` returns.
const MENTIONS_MAX: usize = 100;

/// Optional fields may be left out; `null` is refused like any other wrong type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[serde(default, deserialize_with = "crate::json::present")]
    topic: Option<String>,
    visibility: String,
    #[serde(default, deserialize_with = "crate::json::present")]
    members: Option<Vec<u64>>,
}

/// Absent fields stay as they are; `null` is refused like any other wrong type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[serde(default, deserialize_with = "crate::json::present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::json::present")]
    topic: Option<String>,
    #[serde(default, deserialize_with = "crate::json::present")]
    visibility: Option<String>,
    #[serde(default, deserialize_with = "crate::json::present")]
    archived: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    user: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyBody {
    level: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    dm_policy: DmPolicy,
}

#[derive(Deserialize)]
pub struct BrowseParams {
    q: Option<String>,
}

impl QueryParams for BrowseParams {}

#[derive(Deserialize)]
pub struct MentionsParams {
    limit: Option<usize>,
}

impl QueryParams for MentionsParams {}

pub async fn create(
    app: Arc<App>,
    who: Authenticated,
    body: CreateBody,
) -> Result<Response, ApiError> {
    let op = RoomOp::Create {
        creator: who.user.id,
        name: room_name(&body.name)?,
        topic: topic(body.topic.as_deref().unwrap_or(""))?,
        visibility: visibility(&body.visibility)?,
        members: body.members.unwrap_or_default(),
        at: store::now_secs(),
    };
    let room = match apply(&app, ChatOp::Room(op)).await? {
        ChatOutcome::Room(store::RoomEvent::Created { room, .. }) => room,
        _ => return Err(ApiError::Internal("the room was not created".into())),
    };
    let summary = summary_of(&app, who.user.id, room).await?;
    Ok(warp::reply::with_status(warp::reply::json(&summary), StatusCode::CREATED).into_response())
}

pub async fn browse(
    app: Arc<App>,
    who: Authenticated,
    params: BrowseParams,
) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let query = params.q.unwrap_or_default();
    let rooms = store::blocking(move || store.browse_rooms(who.user.id, &query)).await?;
    Ok(warp::reply::json(&serde_json::json!({ "rooms": rooms })).into_response())
}

pub async fn get(app: Arc<App>, id: String, who: Authenticated) -> Result<Response, ApiError> {
    let room = room_id(&id)?;
    let summary = summary_of(&app, who.user.id, room).await?;
    Ok(warp::reply::json(&summary).into_response())
}

pub async fn update(
    app: Arc<App>,
    id: String,
    who: Authenticated,
    body: PatchBody,
) -> Result<Response, ApiError> {
    let room = room_id(&id)?;
    let patch = RoomPatch {
        name: body.name.as_deref().map(room_name).transpose()?,
        topic: body.topic.as_deref().map(topic).transpose()?,
        visibility: body.visibility.as_deref().map(visibility).transpose()?,
        archived: body.archived,
    };
    let op = RoomOp::Update {
        by: who.user.id,
        room: room.clone(),
        patch,
    };
    apply(&app, ChatOp::Room(op)).await?;
    let summary = summary_of(&app, who.user.id, room).await?;
    Ok(warp::reply::json(&summary).into_response())
}

pub async fn join(app: Arc<App>, id: String, who: Authenticated) -> Result<Response, ApiError> {
    let room = room_id(&id)?;
    let op = RoomOp::Join {
        user: who.user.id,
        room: room.clone(),
        at: store::now_secs(),
    };
    apply(&app, ChatOp::Room(op)).await?;
    let summary = summary_of(&app, who.user.id, room).await?;
    Ok(warp::reply::json(&summary).into_response())
}

pub async fn leave(app: Arc<App>, id: String, who: Authenticated) -> Result<Response, ApiError> {
    let op = RoomOp::Leave {
        user: who.user.id,
        room: room_id(&id)?,
    };
    apply(&app, ChatOp::Room(op)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn members(app: Arc<App>, id: String, who: Authenticated) -> Result<Response, ApiError> {
    let room = room_id(&id)?;
    let store = app.store.clone();
    let members = store::blocking(move || store.room_members(who.user.id, &room))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(warp::reply::json(&serde_json::json!({ "members": members })).into_response())
}

pub async fn add_member(
    app: Arc<App>,
    id: String,
    who: Authenticated,
    body: AddBody,
) -> Result<Response, ApiError> {
    let room = room_id(&id)?;
    let op = RoomOp::Add {
        by: who.user.id,
        room: room.clone(),
        user: body.user,
        at: store::now_secs(),
    };
    apply(&app, ChatOp::Room(op)).await?;
    let store = app.store.clone();
    let members = store::blocking(move || store.room_members(who.user.id, &room)).await?;
    let entry = members
        .into_iter()
        .flatten()
        .find(|m| m.user == body.user)
        .ok_or(ApiError::NotFound)?;
    Ok(warp::reply::json(&entry).into_response())
}

pub async fn remove_member(
    app: Arc<App>,
    id: String,
    user: u64,
    who: Authenticated,
) -> Result<Response, ApiError> {
    let op = RoomOp::Remove {
        by: who.user.id,
        room: room_id(&id)?,
        user,
    };
    apply(&app, ChatOp::Room(op)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn set_notify(
    app: Arc<App>,
    id: String,
    who: Authenticated,
    body: NotifyBody,
) -> Result<Response, ApiError> {
    let conversation = super::chat::conversation_in_path(&id)?;
    let level = match body.level.as_str() {
        "all" => Notify::All,
        "mentions" => Notify::Mentions,
        "muted" => Notify::Muted,
        _ => {
            return Err(ApiError::Invalid(
                "invalid_level",
                "level is all, mentions or muted",
            ));
        }
    };
    let op = RoomOp::SetNotify {
        user: who.user.id,
        conversation,
        level,
    };
    apply(&app, ChatOp::Room(op)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn mentions(
    app: Arc<App>,
    who: Authenticated,
    params: MentionsParams,
) -> Result<Response, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=MENTIONS_MAX).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MENTIONS_MAX}"
        )));
    }
    let store = app.store.clone();
    let messages = store::blocking(move || store.mentions(who.user.id, limit)).await?;
    Ok(warp::reply::json(&serde_json::json!({ "messages": messages })).into_response())
}

pub async fn settings(app: Arc<App>, who: Authenticated) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let dm_policy = store::blocking(move || store.dm_policy(who.user.id)).await?;
    Ok(warp::reply::json(&serde_json::json!({ "dm_policy": dm_policy })).into_response())
}

pub async fn change_settings(
    app: Arc<App>,
    who: Authenticated,
    body: SettingsBody,
) -> Result<Response, ApiError> {
    let op = PeopleOp::SetDmPolicy {
        user: who.user.id,
        policy: body.dm_policy,
    };
    apply(&app, ChatOp::People(op)).await?;
    Ok(warp::reply::json(&serde_json::json!({ "dm_policy": body.dm_policy })).into_response())
}

pub async fn requests(app: Arc<App>, who: Authenticated) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let requests =
        store::blocking(move || store.requests(who.user.id, store::now_millis())).await?;
    Ok(warp::reply::json(&requests).into_response())
}

pub async fn accept(app: Arc<App>, from: u64, who: Authenticated) -> Result<Response, ApiError> {
    let op = PeopleOp::Accept {
        user: who.user.id,
        from,
    };
    apply(&app, ChatOp::People(op)).await?;
    let summary = summary_of(&app, who.user.id, ConversationId::dm(who.user.id, from)).await?;
    Ok(warp::reply::json(&summary).into_response())
}

pub async fn decline(app: Arc<App>, from: u64, who: Authenticated) -> Result<Response, ApiError> {
    let op = PeopleOp::Decline {
        user: who.user.id,
        from,
        at: store::now_millis(),
    };
    apply(&app, ChatOp::People(op)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn blocks(app: Arc<App>, who: Authenticated) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let blocked = store::blocking(move || store.blocks(who.user.id)).await?;
    Ok(warp::reply::json(&serde_json::json!({ "blocked": blocked })).into_response())
}

pub async fn block(app: Arc<App>, target: u64, who: Authenticated) -> Result<Response, ApiError> {
    let op = PeopleOp::Block {
        user: who.user.id,
        target,
    };
    apply(&app, ChatOp::People(op)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn unblock(app: Arc<App>, target: u64, who: Authenticated) -> Result<Response, ApiError> {
    let op = PeopleOp::Unblock {
        user: who.user.id,
        target,
    };
    apply(&app, ChatOp::People(op)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Commits through the writer; a refusal becomes its error.
async fn apply(app: &App, op: ChatOp) -> Result<ChatOutcome, ApiError> {
    match app.hub.apply(op).await? {
        ChatOutcome::Rejected(rejection) => Err(ApiError::Chat(rejection)),
        outcome => Ok(outcome),
    }
}

async fn summary_of(
    app: &App,
    user: u64,
    conversation: ConversationId,
) -> Result<store::ConversationSummary, ApiError> {
    let store = app.store.clone();
    store::blocking(move || store.conversation(user, &conversation))
        .await?
        .ok_or(ApiError::NotFound)
}

/// A room id from the path; anything else is not found.
fn room_id(raw: &str) -> Result<ConversationId, ApiError> {
    Some(super::chat::conversation_in_path(raw)?)
        .filter(ConversationId::is_room)
        .ok_or(ApiError::NotFound)
}

/// 1–64 characters that show something, on one line, with no bidi controls.
fn room_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let chars = name.chars().count();
    let valid = (1..=MAX_ROOM_NAME_CHARS).contains(&chars)
        && crate::text::is_one_line(name)
        && !crate::text::is_blank(name)
        && !crate::text::has_bidi_controls(name);
    if valid {
        Ok(name.to_owned())
    } else {
        Err(ApiError::Invalid(
            "invalid_room_name",
            "room names are 1 to 64 characters on one line",
        ))
    }
}

/// At most 250 characters on one line, no bidi controls; empty clears it.
fn topic(raw: &str) -> Result<String, ApiError> {
    let topic = raw.trim();
    let valid = topic.chars().count() <= MAX_TOPIC_CHARS
        && crate::text::is_one_line(topic)
        && !crate::text::has_bidi_controls(topic);
    if valid {
        Ok(topic.to_owned())
    } else {
        Err(ApiError::Invalid(
            "invalid_topic",
            "topics are at most 250 characters on one line",
        ))
    }
}

fn visibility(raw: &str) -> Result<Visibility, ApiError> {
    match raw {
        "open" => Ok(Visibility::Open),
        "private" => Ok(Visibility::Private),
        _ => Err(ApiError::Invalid(
            "invalid_visibility",
            "visibility is open or private",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_show_something_on_one_line() {
        assert_eq!(room_name("  Marketing ").ok().as_deref(), Some("Marketing"));
        assert!(room_name(&"é".repeat(64)).is_ok());
        for bad in [
            "",
            "   ",
            "\u{200B}",
            "a\nb",
            "a\u{2028}b",
            "a\u{2029}b",
            "Bob\u{202E}x",
            &"x".repeat(65),
        ] {
            assert!(room_name(bad).is_err(), "{bad:?}");
        }
        assert!(topic("").is_ok());
        assert!(topic(&"t".repeat(251)).is_err());
        for bad in ["a\nb", "a\u{2028}b", "a\u{2029}b", "x\u{2066}y"] {
            assert!(topic(bad).is_err(), "{bad:?}");
        }
        assert!(visibility("secret").is_err());
    }
}
