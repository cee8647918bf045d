//! Message search (`GET /api/search`): parses the query, runs it on the blocking pool.

use std::sync::Arc;

use serde::Deserialize;
use warp::Reply;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::QueryParams;
use crate::app::App;
use crate::auth::Authenticated;
use crate::search::{self, Sort};

/// Default and largest number of hits.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    limit: Option<usize>,
    sort: Option<String>,
}

impl QueryParams for SearchParams {}

pub async fn search(
    app: Arc<App>,
    who: Authenticated,
    params: SearchParams,
) -> Result<Response, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let sort = match params.sort.as_deref() {
        None | Some("newest") => Sort::Newest,
        Some("best") => Sort::Best,
        Some(_) => {
            return Err(ApiError::InvalidQuery("sort must be newest or best".into()));
        }
    };
    let query = search::query::parse(params.q.as_deref().unwrap_or_default())
        .map_err(|invalid| ApiError::InvalidQuery(invalid.0))?;
    let user = who.user.id;
    let found =
        tokio::task::spawn_blocking(move || app.search.find(&app.store, user, &query, limit, sort))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(warp::reply::json(&found).into_response())
}
