//! The admin page's backups: the list in `--backup-dir`, and the newest one to download.

use std::sync::Arc;

use serde_json::json;
use warp::Reply;
use warp::http::HeaderValue;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::Admin;
use crate::app::App;
use crate::backup::{self, BackupEntry};

async fn entries(app: &App) -> Result<Vec<BackupEntry>, ApiError> {
    let Some(dir) = app.config.backup_dir.clone() else {
        return Ok(Vec::new());
    };
    tokio::task::spawn_blocking(move || backup::list_backups(&dir))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("listing the backups: {e}")))
}

pub async fn list(app: Arc<App>, _admin: Admin) -> Result<Response, ApiError> {
    let backups = entries(&app).await?;
    Ok(warp::reply::json(&json!({
        "enabled": app.config.backup_dir.is_some(),
        "keep": app.config.backup_keep,
        "backups": backups,
    }))
    .into_response())
}

/// Streams the newest backup as a download; a backup is as big as the database, so it is
/// never read into memory.
pub async fn latest(app: Arc<App>, admin: Admin) -> Result<Response, ApiError> {
    let newest = entries(&app)
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound)?;
    let file = tokio::fs::File::open(&newest.path)
        .await
        .map_err(|e| ApiError::Internal(format!("opening {}: {e}", newest.path.display())))?;
    tracing::info!(by = %admin.0.user.username, backup = %newest.name, "backup downloaded");
    let mut response = warp::reply::stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("content-length", HeaderValue::from(newest.size));
    // Our own names: "confab-<UTC time>.backup", nothing to escape.
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", newest.name))
    {
        headers.insert("content-disposition", disposition);
    }
    Ok(response)
}
