//! Request guards: who is calling (cookie or bearer), whether the Origin may act with the
//! cookie, bounded JSON bodies, and query strings that are text.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Buf;
use http::Method;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use super::error::ApiError;
use crate::app::App;
use crate::auth::{AuthError, Authenticated};
use crate::config::limits;

pub const SESSION_COOKIE: &str = "confab_session";

pub fn with_app(app: Arc<App>) -> impl Filter<Extract = (Arc<App>,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// The client's address, put on each request by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

pub fn client_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<ClientAddr>().map(|addr: Option<ClientAddr>| addr.map(|a| a.0))
}

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Bearer(String),
    Cookie(String),
    None,
}

pub fn credential() -> impl Filter<Extract = (Credential,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .map(|authorization: Option<String>, cookie: Option<String>| {
            match authorization
                .as_deref()
                .and_then(|h| h.strip_prefix("Bearer "))
            {
                Some(token) => Credential::Bearer(token.trim().to_owned()),
                None => cookie.map_or(Credential::None, Credential::Cookie),
            }
        })
}

/// The request's `Origin` and `Host`, to tell our own pages from other sites.
#[derive(Debug, Clone)]
pub struct RequestOrigin {
    origin: Option<String>,
    host: Option<String>,
}

impl RequestOrigin {
    /// True if there is an Origin and it is this server (as addressed) or an allowed one.
    pub fn is_own(&self, allowed: &[String]) -> bool {
        let (Some(origin), Some(host)) = (&self.origin, &self.host) else {
            return false;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        origin == format!("http://{host}")
            || origin == format!("https://{host}")
            || allowed.contains(&origin)
    }

    pub fn is_present(&self) -> bool {
        self.origin.is_some()
    }
}

pub fn request_origin() -> impl Filter<Extract = (RequestOrigin,), Error = Rejection> + Clone {
    warp::header::optional::<String>("origin")
        .and(warp::header::optional::<String>("host"))
        .map(|origin, host| RequestOrigin { origin, host })
}

/// A signed-in user; may still have to change a temporary password.
pub fn signed_in(
    app: Arc<App>,
) -> impl Filter<Extract = (Authenticated,), Error = Rejection> + Clone {
    with_app(app)
        .and(warp::method())
        .and(credential())
        .and(request_origin())
        .and_then(
            |app: Arc<App>, method: Method, credential: Credential, origin: RequestOrigin| async move {
                let token = match credential {
                    Credential::Bearer(token) => token,
                    Credential::Cookie(token) => {
                        let safe = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
                        if !safe && !origin.is_own(&app.config.allowed_origins) {
                            return Err(warp::reject::custom(ApiError::BadOrigin));
                        }
                        token
                    }
                    Credential::None => {
                        return Err(warp::reject::custom(ApiError::from(AuthError::Unauthorized)));
                    }
                };
                app.auth
                    .authenticate(&token)
                    .await
                    .map_err(|e| warp::reject::custom(ApiError::from(e)))
            },
        )
}

/// A signed-in user with a password of their own: what every ordinary route needs.
pub fn session(
    app: Arc<App>,
) -> impl Filter<Extract = (Authenticated,), Error = Rejection> + Clone {
    signed_in(app).and_then(|who: Authenticated| async move {
        if who.user.must_change_password {
            Err(warp::reject::custom(ApiError::from(
                AuthError::PasswordChangeRequired,
            )))
        } else {
            Ok(who)
        }
    })
}

/// Proof that the caller is an administrator; admin handlers can only be reached with one.
#[derive(Debug, Clone)]
pub struct Admin(pub Authenticated);

pub fn admin(app: Arc<App>) -> impl Filter<Extract = (Admin,), Error = Rejection> + Clone {
    session(app).and_then(|who: Authenticated| async move {
        if who.user.is_admin() {
            Ok(Admin(who))
        } else {
            Err(warp::reject::custom(ApiError::from(AuthError::Forbidden)))
        }
    })
}

/// A JSON body of at most 64 KiB, sent as `application/json`, with no key given twice in any
/// object. The cap holds for chunked bodies too: the body is read as a stream and refused as
/// soon as it passes the limit.
pub fn json_body<T: DeserializeOwned + Send>()
-> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .and_then(
            |length: Option<u64>, content_type: Option<String>, body| async move {
                if length.is_some_and(|n| n > limits::MAX_BODY_BYTES) {
                    return Err(warp::reject::custom(ApiError::PayloadTooLarge));
                }
                let is_json = content_type
                    .as_deref()
                    .and_then(|ct| ct.split(';').next())
                    .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
                if !is_json {
                    return Err(warp::reject::custom(ApiError::UnsupportedMediaType));
                }
                let bytes = read_capped(body, limits::MAX_BODY_BYTES, || ApiError::PayloadTooLarge)
                    .await
                    .map_err(warp::reject::custom)?;
                crate::json::from_slice(&bytes).map_err(|e| {
                    warp::reject::custom(ApiError::InvalidBody(format!(
                        "invalid request body: {e}"
                    )))
                })
            },
        )
}

/// Query-string parameters, for every route that reads any. Each key and value is
/// percent-decoded (`+` is a space) and must then be UTF-8: warp's own `query()` quietly puts
/// U+FFFD in place of what is not, which would keep a file name nobody typed and search for a
/// character nobody asked for. A value that is not text is refused with its field's own code
/// ([`QueryParams::not_text`]); anything else wrong with the string is `invalid_query`.
pub fn query<T: QueryParams + Send + 'static>()
-> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move { parse_query::<T>(&raw).map_err(warp::reject::custom) })
}

/// A route's query-string parameters.
pub trait QueryParams: DeserializeOwned {
    /// The refusal for parameter `field` when it is not UTF-8 text: `invalid_query`, unless
    /// the field has a code of its own.
    fn not_text(field: &str) -> ApiError {
        not_text(field)
    }
}

/// The usual refusal of a parameter that is not text: `invalid_query`, naming it.
pub fn not_text(field: &str) -> ApiError {
    ApiError::InvalidQuery(format!("{field} is not valid UTF-8 text"))
}

fn parse_query<T: QueryParams>(raw: &str) -> Result<T, ApiError> {
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decoded(key).ok_or_else(|| {
            ApiError::InvalidQuery("a parameter name is not valid UTF-8 text".into())
        })?;
        if decoded(value).is_none() {
            return Err(T::not_text(&key));
        }
    }
    // Every part decodes to text, so the decoding below has nothing left to replace.
    serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::InvalidQuery(format!("the query string is not valid: {e}")))
}

/// One key or value of a query string, decoded; `None` if it is not UTF-8.
fn decoded(part: &str) -> Option<String> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// A whole body of at most `max` bytes, refused with `too_large()` as soon as it passes that.
pub(super) async fn read_capped(
    body: impl futures_util::Stream<Item = Result<impl Buf, warp::Error>>,
    max: u64,
    too_large: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let mut bytes = Vec::new();
    futures_util::pin_mut!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|_| ApiError::InvalidBody("the request body broke off".into()))?;
        if (bytes.len() + chunk.remaining()) as u64 > max {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let taken = part.len();
            chunk.advance(taken);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Params {
        name: Option<String>,
        limit: Option<u32>,
    }

    impl QueryParams for Params {
        fn not_text(field: &str) -> ApiError {
            ApiError::Invalid(
                "invalid_name",
                if field == "name" { "name" } else { "other" },
            )
        }
    }

    fn refusal(raw: &str) -> String {
        match parse_query::<Params>(raw) {
            Ok(params) => panic!("{raw:?} was read as {params:?}"),
            Err(ApiError::Invalid(code, field)) => format!("{code} {field}"),
            Err(other) => format!("{other}"),
        }
    }

    #[test]
    fn query_strings_are_text_or_refused() {
        let read = |raw: &str| parse_query::<Params>(raw).expect(raw);
        let params = read("name=M%C3%A4rz+1.pdf&limit=5");
        assert_eq!(params.name.as_deref(), Some("März 1.pdf"));
        assert_eq!(params.limit, Some(5));
        assert_eq!(read("").name, None);
        assert_eq!(read("&&name=%zz").name.as_deref(), Some("%zz"));
        for bad in [
            "name=a%FFb",
            "name=%C0%AF",
            "name=%ED%A0%80",
            "limit=1&name=%80",
        ] {
            assert_eq!(refusal(bad), "invalid_name name", "{bad}");
        }
        assert_eq!(refusal("limit=%FF"), "invalid_name other");
        assert!(refusal("na%FFme=x").contains("parameter name"));
        assert!(refusal("limit=x").contains("the query string is not valid"));
    }
}
