//! Account administration. Every handler takes an [`Admin`], which only the admin filter makes.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use warp::Reply;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::Admin;
use crate::app::App;
use crate::store::{self, Role, UserPatch};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    username: String,
    display_name: String,
    #[serde(default = "member")]
    role: Role,
}

fn member() -> Role {
    Role::Member
}

/// Absent fields stay as they are; `null` is refused like any other wrong type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[serde(default, deserialize_with = "crate::json::present")]
    username: Option<String>,
    #[serde(default, deserialize_with = "crate::json::present")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "crate::json::present")]
    role: Option<Role>,
    #[serde(default, deserialize_with = "crate::json::present")]
    disabled: Option<bool>,
}

pub async fn list(app: Arc<App>, _admin: Admin) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let users = store::blocking(move || store.list_users()).await?;
    Ok(warp::reply::json(&users).into_response())
}

pub async fn create(app: Arc<App>, admin: Admin, body: CreateBody) -> Result<Response, ApiError> {
    let (user, temporary_password) = app
        .create_user(&body.username, &body.display_name, body.role)
        .await?;
    tracing::info!(by = %admin.0.user.username, username = %user.username, "user created");
    let reply = warp::reply::json(&json!({"user": user, "temporary_password": temporary_password}));
    Ok(warp::reply::with_status(reply, StatusCode::CREATED).into_response())
}

pub async fn update(
    app: Arc<App>,
    id: u64,
    admin: Admin,
    body: PatchBody,
) -> Result<Response, ApiError> {
    let patch = UserPatch {
        username: body.username,
        display_name: body.display_name,
        role: body.role,
        disabled: body.disabled,
    };
    let user = app.update_user(id, patch).await?;
    tracing::info!(by = %admin.0.user.username, username = %user.username, "user updated");
    Ok(warp::reply::json(&user).into_response())
}

pub async fn reset_password(app: Arc<App>, id: u64, admin: Admin) -> Result<Response, ApiError> {
    let temporary_password = app.reset_password(id).await?;
    tracing::info!(by = %admin.0.user.username, user_id = id, "password reset");
    Ok(warp::reply::json(&json!({"temporary_password": temporary_password})).into_response())
}
