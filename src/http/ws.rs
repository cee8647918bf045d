//! `GET /ws`: checks the session and the Origin, completes the WebSocket handshake, and hands
//! the socket to the hub.
//!
//! The handshake is done here rather than with warp's `ws()` filter because warp cannot set
//! the socket's read buffer, and its default (128 KiB per socket) would make an office of idle
//! tabs cost hundreds of megabytes.

use std::sync::{Arc, Mutex};

use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::ApiError;
use super::filters::{Credential, RequestOrigin, credential, request_origin, with_app};
use crate::app::App;
use crate::auth::{AuthError, Authenticated};
use crate::config::limits;

/// hyper's upgrade handle for a request that asks for a WebSocket, put on the request by the
/// server loop (warp only hands filters clonable extensions).
#[derive(Clone)]
pub struct PendingUpgrade(Arc<Mutex<Option<OnUpgrade>>>);

impl PendingUpgrade {
    pub fn attach<B>(request: &mut http::Request<B>) {
        if wants_websocket(request.headers()) {
            let upgrade = hyper::upgrade::on(&mut *request);
            request
                .extensions_mut()
                .insert(PendingUpgrade(Arc::new(Mutex::new(Some(upgrade)))));
        }
    }

    fn take(&self) -> Option<OnUpgrade> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

fn wants_websocket(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

/// Small buffers: an idle socket should cost kilobytes. The read buffer starts at 512 bytes (a
/// client's frames are a few hundred bytes; it grows for a longer one, and 4 KiB cost 3.5 KiB
/// more per socket with no throughput to show for it); the write buffer grows only while a
/// burst of frames is being written together. Messages are capped at 64 KiB (a
/// larger frame closes the socket with 1009); a peer that stops reading fills the write
/// buffer limit and is dropped.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(limits::SOCKET_WRITE_BUFFER)
        .max_write_buffer_size(4 * limits::MAX_FRAME_BYTES)
        .max_message_size(Some(limits::MAX_FRAME_BYTES))
        .max_frame_size(Some(limits::MAX_FRAME_BYTES))
}

pub fn upgrade(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_app(app))
        .and(credential())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(request_origin())
        .and_then(authorize)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PendingUpgrade>())
        .map(
            |(app, who): (Arc<App>, Authenticated),
             headers: HeaderMap,
             pending: Option<PendingUpgrade>| { accept(app, who, &headers, pending) },
        )
        .boxed()
}

/// Answers 101 and serves the socket once hyper hands it over.
fn accept(
    app: Arc<App>,
    who: Authenticated,
    headers: &HeaderMap,
    pending: Option<PendingUpgrade>,
) -> Response {
    let key = headers.get("sec-websocket-key").map(|k| k.as_bytes());
    let version_13 = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v.as_bytes() == b"13");
    let (Some(key), true, Some(upgrade)) = (key, version_13, pending.and_then(|p| p.take())) else {
        return ApiError::InvalidBody(
            "this is a WebSocket endpoint: connect with a WebSocket".into(),
        )
        .into_response();
    };
    let accept_key = derive_accept_key(key);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let raw = TokioIo::new(upgraded);
                crate::hub::serve(app.hub.clone(), raw, socket_config(), who).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept_key) {
        headers.insert("sec-websocket-accept", value);
    }
    response
}

/// Browsers always send `Origin` on WebSocket upgrades, and a cookie rides along whatever the
/// page: so with the cookie the Origin must be ours; with a token it must be ours if present.
async fn authorize(
    app: Arc<App>,
    credential: Credential,
    query: String,
    origin: RequestOrigin,
) -> Result<(Arc<App>, Authenticated), warp::Rejection> {
    let reject = |e: ApiError| warp::reject::custom(e);
    // `?token=` stands in for the header, which browsers cannot set on a WebSocket.
    let (bearer, cookie) = match credential {
        Credential::Bearer(token) => (Some(token), None),
        Credential::Cookie(token) => (query_token(&query), Some(token)),
        Credential::None => (query_token(&query), None),
    };
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
