//! `GET /ws`: checks the session and the Origin, then hands the socket to the hub.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::ws::Ws;
use warp::{Filter, Reply};

use super::error::ApiError;
use super::filters::{RequestOrigin, SESSION_COOKIE, request_origin, with_app};
use crate::app::App;
use crate::auth::{AuthError, Authenticated};
use crate::config::limits;

pub fn upgrade(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_app(app))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(request_origin())
        .and_then(authorize)
        .and(warp::ws())
        .map(|(app, who): (Arc<App>, Authenticated), ws: Ws| {
            ws.max_message_size(limits::MAX_FRAME_BYTES)
                .max_frame_size(limits::MAX_FRAME_BYTES)
                // A peer that stops reading fills this, and the pump's write fails.
                .max_write_buffer_size(4 * limits::MAX_FRAME_BYTES)
                .on_upgrade(move |socket| crate::hub::serve(app.hub.clone(), socket, who))
                .into_response()
        })
        .boxed()
}

/// Browsers always send `Origin` on WebSocket upgrades, and a cookie rides along whatever the
/// page: so with the cookie the Origin must be ours; with a token it must be ours if present.
async fn authorize(
    app: Arc<App>,
    authorization: Option<String>,
    cookie: Option<String>,
    query: String,
    origin: RequestOrigin,
) -> Result<(Arc<App>, Authenticated), warp::Rejection> {
    let reject = |e: ApiError| warp::reject::custom(e);
    let bearer = authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .or_else(|| query_token(&query));
    let own_origin = origin.is_own(&app.config.allowed_origins);
    let token = match (bearer, cookie) {
        (Some(token), _) if own_origin || !origin.is_present() => token,
        (None, Some(token)) if own_origin => token,
        (None, None) => return Err(reject(AuthError::Unauthorized.into())),
        _ => return Err(reject(ApiError::BadOrigin)),
    };
    let who = app
        .auth
        .authenticate(&token)
        .await
        .map_err(|e| reject(e.into()))?;
    if who.user.must_change_password {
        return Err(reject(AuthError::PasswordChangeRequired.into()));
    }
    Ok((app, who))
}

fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "token")
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}
