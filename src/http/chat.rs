//! Conversation lists and message history. Live traffic is the hub's (`/ws`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::Reply;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::QueryParams;
use crate::app::App;
use crate::auth::Authenticated;
use crate::config::limits;
use crate::store::{self, ConversationId, HistoryQuery, Message};

#[derive(Deserialize)]
pub struct HistoryParams {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<u32>,
}

impl QueryParams for HistoryParams {}

impl HistoryParams {
    fn query(&self) -> Result<HistoryQuery, ApiError> {
        let limit = self.limit.unwrap_or(limits::HISTORY_PAGE);
        if !(1..=limits::HISTORY_PAGE_MAX).contains(&limit) {
            return Err(ApiError::InvalidQuery(format!(
                "limit must be 1 to {}",
                limits::HISTORY_PAGE_MAX
            )));
        }
        match (self.before, self.after) {
            (Some(_), Some(_)) => Err(ApiError::InvalidQuery(
                "use either before or after, not both".into(),
            )),
            (None, Some(after)) => Ok(HistoryQuery::After(after, limit)),
            (before, None) => Ok(HistoryQuery::Before(before, limit)),
        }
    }
}

pub async fn list(app: Arc<App>, who: Authenticated) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let user = who.user.id;
    let conversations = store::blocking(move || store.conversations(user)).await?;
    Ok(warp::reply::json(&conversations).into_response())
}

pub async fn history(
    app: Arc<App>,
    id: String,
    who: Authenticated,
    params: HistoryParams,
) -> Result<Response, ApiError> {
    let query = params.query()?;
    let conversation = conversation_in_path(&id)?;
    // At most a page of rows, from pages redb and the OS keep cached: answered right here,
    // without a round trip through the blocking pool that would cost more than the read.
    let page = app
        .store
        .history(who.user.id, &conversation, query)?
        .ok_or(ApiError::NotFound)?;
    json_page(&page, &page.messages)
}

/// A page of `messages` as JSON, written into a buffer already about its size: a page of 50
/// is ~10 KB, and a buffer grown from empty is copied about seven times on the way there.
fn json_page(page: &impl Serialize, messages: &[Message]) -> Result<Response, ApiError> {
    /// Each message's JSON beyond its body: keys, ids, times.
    const PER_MESSAGE: usize = 160;
    let size: usize = messages.iter().map(|m| m.body.len() + PER_MESSAGE).sum();
    let mut body = Vec::with_capacity(size + 32);
    serde_json::to_writer(&mut body, page).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = Response::new(body.into());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// The conversation a path segment names; anything else is not found. Path segments arrive
/// percent-encoded, so a conversation id may have its `:` encoded.
pub(super) fn conversation_in_path(segment: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(&segment.replace("%3A", ":").replace("%3a", ":"))
        .ok_or(ApiError::NotFound)
}

#[derive(Deserialize)]
pub struct ChangesParams {
    after: Option<u64>,
}

impl QueryParams for ChangesParams {}

/// Catch-up on edits, deletes and reactions: the current state of every message changed
/// after `?after=<change_seq>`.
pub async fn changes(
    app: Arc<App>,
    id: String,
    who: Authenticated,
    params: ChangesParams,
) -> Result<Response, ApiError> {
    let conversation = conversation_in_path(&id)?;
    let store = app.store.clone();
    let user = who.user.id;
    let after = params.after.unwrap_or(0);
    let page = store::blocking(move || store.changes(user, &conversation, after))
        .await?
        .ok_or(ApiError::NotFound)?;
    json_page(&page, &page.messages)
}
