//! The pages for joining over the LAN: "trust this server" with the local CA's certificate,
//! the admin's join link and QR code, and the plain-HTTP redirect to HTTPS.

use std::sync::Arc;

use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::path::FullPath;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::Admin;
use crate::app::App;
use crate::tls::CaCertificate;

/// Read-only pages from the server, not the web app (no script, styles from `/style.css`).
const TRUST_PAGE: &str = include_str!("trust.html");
/// What the download is saved as: `.crt` is what Windows, Android and iOS open as a
/// certificate.
const CA_DOWNLOAD_NAME: &str = "confab-ca.crt";

/// `GET /trust`: how to install the local CA on each kind of device.
pub fn trust_page(ca: &CaCertificate) -> Response {
    let page = TRUST_PAGE
        .replace("{{FINGERPRINT}}", &ca.fingerprint)
        .replace("{{CA_NAME}}", &html_escape(&ca.name))
        .replace("{{FILE_NAME}}", CA_DOWNLOAD_NAME);
    let mut response = warp::reply::html(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /trust/ca.pem`: the CA certificate, typed so phones offer to install it.
pub fn ca_file(ca: &CaCertificate) -> Response {
    let mut response = Response::new(ca.pem.clone().into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-x509-ca-cert"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"confab-ca.crt\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /api/admin/join`: the address to give colleagues, and its QR code as an SVG.
pub async fn join(app: Arc<App>, _admin: Admin) -> Result<Response, ApiError> {
    let url = app.addresses.join_url();
    let svg = crate::lan::join::qr_svg(&url)
        .ok_or_else(|| ApiError::Internal(format!("cannot draw a QR code for {url}")))?;
    Ok(warp::reply::json(&json!({"url": url, "qr_svg": svg})).into_response())
}

/// Plain HTTP on a TLS port: the same address over HTTPS. 308 keeps the method and body;
/// `no-store` keeps browsers from remembering it, so turning TLS off later just works.
pub fn redirect_to_https(host: Option<String>, path: FullPath, query: String) -> Response {
    let Some(authority) = host.and_then(|h| h.parse::<http::uri::Authority>().ok()) else {
        return ApiError::Invalid("bad_host", "the request needs a valid Host header")
            .into_response();
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let location = format!("https://{authority}{}{query}", path.as_str());
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Everything that is served over plain HTTP when TLS is on.
pub fn plain_routes(trust: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    use warp::Filter;
    let redirect = warp::header::optional::<String>("host")
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(redirect_to_https);
    trust.or(redirect).unify().boxed()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
