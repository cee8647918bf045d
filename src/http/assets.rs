//! The web UI, compiled into the binary from `web/`.

use http::{HeaderValue, StatusCode, header};
use rust_embed::RustEmbed;
use warp::Reply;
use warp::reply::Response;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Web;

/// The page served for `/` and, before first run, `/setup`.
const INDEX: &str = "index.html";

/// Serves an embedded file. Only plain relative names are looked up, so `..`, encoded
/// separators and the like can never reach outside the embedded set.
pub fn serve(path: &str, if_none_match: Option<&str>) -> Option<Response> {
    let name = if path.is_empty() { INDEX } else { path };
    let plain = name
        .split('/')
        .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains(['%', '\\']));
    match Web::get(name).filter(|_| plain) {
        Some(file) => {
            let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
            if if_none_match.is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag)) {
                return Some(with_cache_headers(
                    StatusCode::NOT_MODIFIED.into_response(),
                    &etag,
                ));
            }
            let mut response = Response::new(file.data.into_owned().into());
            if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
                response.headers_mut().insert(header::CONTENT_TYPE, mime);
            }
            Some(with_cache_headers(response, &etag))
        }
        None => None,
    }
}

/// The index page, or a short page saying setup is done.
pub fn setup_page(needs_setup: bool) -> Response {
    if let Some(index) = serve(INDEX, None).filter(|_| needs_setup) {
        return index;
    }
    let body = "<!doctype html><meta charset=utf-8><title>confab</title>\
        <p>confab is already set up. <a href=\"/\">Sign in</a>.</p>";
    let mut response =
        warp::reply::with_status(warp::reply::html(body), StatusCode::CONFLICT).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Browsers revalidate every time (cheap with the ETag), so a new build is seen at once.
fn with_cache_headers(mut response: Response, etag: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
