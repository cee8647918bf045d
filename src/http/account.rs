//! First-run setup, login, logout, the caller's own account, and the user directory.

use std::net::SocketAddr;
use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use warp::Reply;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::{RequestOrigin, SESSION_COOKIE};
use crate::app::App;
use crate::auth::{Authenticated, Grant};
use crate::config::limits;
use crate::store::{self, DirectoryEntry, User};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupBody {
    token: String,
    username: String,
    display_name: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// Login and setup are not authenticated, but a page on another site must not drive them.
fn check_foreign_origin(app: &App, origin: &RequestOrigin) -> Result<(), ApiError> {
    if origin.is_present() && !origin.is_own(&app.config.allowed_origins) {
        return Err(ApiError::BadOrigin);
    }
    Ok(())
}

pub async fn setup(
    app: Arc<App>,
    origin: RequestOrigin,
    body: SetupBody,
) -> Result<Response, ApiError> {
    check_foreign_origin(&app, &origin)?;
    let grant = app
        .auth
        .setup(
            &body.token,
            &body.username,
            &body.display_name,
            body.password,
        )
        .await?;
    tracing::info!(username = %grant.user.username, "first administrator created");
    Ok(granted(&app, grant, StatusCode::CREATED))
}

pub async fn login(
    app: Arc<App>,
    origin: RequestOrigin,
    addr: Option<SocketAddr>,
    body: LoginBody,
) -> Result<Response, ApiError> {
    check_foreign_origin(&app, &origin)?;
    let grant = app
        .auth
        .login(&body.username, body.password, addr.map(|a| a.ip()))
        .await?;
    Ok(granted(&app, grant, StatusCode::OK))
}

fn granted(app: &App, grant: Grant, status: StatusCode) -> Response {
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        grant.token,
        limits::SESSION_TTL.as_secs(),
        secure(app)
    );
    let reply = warp::reply::with_status(warp::reply::json(&grant), status);
    warp::reply::with_header(reply, http::header::SET_COOKIE, cookie).into_response()
}

/// Over TLS the cookie is never sent in clear (the plain port only redirects).
fn secure(app: &App) -> &'static str {
    if app.config.is_tls() { "; Secure" } else { "" }
}

pub async fn logout(app: Arc<App>, who: Authenticated) -> Result<Response, ApiError> {
    app.end_session(&who).await?;
    let cookie = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure(&app)
    );
    let reply = warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT);
    Ok(warp::reply::with_header(reply, http::header::SET_COOKIE, cookie).into_response())
}

pub async fn me(who: Authenticated) -> Result<Response, ApiError> {
    Ok(warp::reply::json(&who.user).into_response())
}

pub async fn change_password(
    app: Arc<App>,
    who: Authenticated,
    addr: Option<SocketAddr>,
    body: PasswordBody,
) -> Result<Response, ApiError> {
    let addr = addr.map(|a| a.ip());
    app.change_password(&who, body.current_password, body.new_password, addr)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn directory(app: Arc<App>, _who: Authenticated) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let users: Vec<User> = store::blocking(move || store.list_users()).await?;
    let entries: Vec<DirectoryEntry> = users.iter().map(User::directory_entry).collect();
    Ok(warp::reply::json(&entries).into_response())
}
