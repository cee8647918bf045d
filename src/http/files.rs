//! Files and pictures in conversations, and profile pictures: uploads streamed to the blob
//! store, and downloads served so that no uploaded file can ever run in confab's origin.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use warp::Reply;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::QueryParams;
use crate::app::App;
use crate::auth::Authenticated;
use crate::blobs::{BlobError, BlobId};
use crate::config::limits;
use crate::media::{self, MediaError};
use crate::store::{self, ChatRejection, ConversationId, FetchableFile, NewUpload};
use crate::text;

/// Served files may be displayed, never run: no script, no plugins, no same-origin access.
const FILE_CSP: &str = "sandbox; default-src 'none'";
/// A file id and a blob never change content, so caches may keep them for good.
const IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// Bytes read from disk per chunk of a download.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
}

impl QueryParams for UploadQuery {
    /// A name that is not text is a bad file name, like any other.
    fn not_text(field: &str) -> ApiError {
        match field {
            "name" => invalid_file_name(),
            _ => super::filters::not_text(field),
        }
    }
}

/// `POST /api/conversations/{id}/uploads?name=…`: the raw bytes, streamed to disk.
pub async fn upload(
    app: Arc<App>,
    id: String,
    who: Authenticated,
    query: UploadQuery,
    length: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Result<Response, ApiError> {
    let conversation = writable_conversation(&app, &id, &who).await?;
    let name = valid_file_name(query.name)?;
    let length = length.ok_or(ApiError::LengthRequired)?;
    let max = app.config.max_file_size;
    if length > max {
        return Err(ApiError::FileTooLarge(max));
    }
    ensure_space(&app, length)?;

    // From here until the database names the blob, the sweep must not run.
    let _pause = app.blobs.pause_sweep().await;
    let mut writer = app.blobs.writer().await?;
    futures_util::pin_mut!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| ApiError::InvalidBody("the upload broke off".into()))?;
        if writer.size() + chunk.remaining() as u64 > length.min(max) {
            return Err(ApiError::FileTooLarge(max));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            writer.write(part).await?;
            let taken = part.len();
            chunk.advance(taken);
        }
    }
    if writer.size() != length {
        return Err(ApiError::InvalidBody(
            "the upload is shorter than its Content-Length".into(),
        ));
    }
    let temp = writer.sync().await?.to_owned();
    ensure_space(&app, 0)?;
    // A picture too large to decode safely is refused, and the dropped writer keeps nothing.
    let picture = app.media.inspect(temp).await?;

    let blobs = app.blobs.clone();
    let thumbnail = picture.as_ref().map(|p| p.thumbnail.bytes.clone());
    let (blob, thumb) = tokio::task::spawn_blocking(move || {
        let blob = writer.publish()?;
        let thumb = thumbnail.map(|bytes| blobs.put(&bytes)).transpose()?;
        Ok::<_, BlobError>((blob, thumb))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;

    let upload = NewUpload {
        id: new_file_id(),
        uploader: who.user.id,
        conversation,
        blob: blob.into_string(),
        thumb: thumb.map(BlobId::into_string),
        mime: match &picture {
            Some(picture) => picture.mime.to_owned(),
            None => media::guess_type(&name).to_owned(),
        },
        name,
        size: length,
        width: picture.as_ref().map(|p| p.width),
        height: picture.as_ref().map(|p| p.height),
        created: store::now_millis(),
    };
    let store = app.store.clone();
    let file = store::blocking(move || store.record_upload(&upload)).await?;
    let reply = warp::reply::json(&serde_json::json!({ "file": file }));
    Ok(warp::reply::with_status(reply, StatusCode::CREATED).into_response())
}

/// `GET /api/conversations/{id}/files/{file_id}`: the original bytes.
pub async fn download(
    app: Arc<App>,
    id: String,
    file_id: String,
    who: Authenticated,
    if_none_match: Option<String>,
) -> Result<Response, ApiError> {
    let file = fetchable(&app, &id, file_id, &who).await?;
    let blob = BlobId::parse(&file.blob).ok_or(ApiError::NotFound)?;
    let (content_type, disposition) = if file.is_picture() {
        (file.info.mime.clone(), "inline")
    } else {
        ("application/octet-stream".to_owned(), "attachment")
    };
    let headers = FileHeaders {
        content_type,
        disposition: Some(format!(
            "{disposition}; filename*=UTF-8''{}",
            percent_encode(&file.info.name)
        )),
        etag: format!("\"{}\"", blob.as_str()),
    };
    serve_blob(&app, &blob, headers, if_none_match.as_deref()).await
}

/// `GET /api/conversations/{id}/files/{file_id}/thumb`: a picture's thumbnail.
pub async fn thumbnail(
    app: Arc<App>,
    id: String,
    file_id: String,
    who: Authenticated,
    if_none_match: Option<String>,
) -> Result<Response, ApiError> {
    let file = fetchable(&app, &id, file_id, &who).await?;
    let blob = file
        .thumb
        .as_deref()
        .and_then(BlobId::parse)
        .ok_or(ApiError::NotFound)?;
    let headers = FileHeaders {
        content_type: image_type_of(&app, &blob).await.to_owned(),
        disposition: None,
        etag: format!("\"{}\"", blob.as_str()),
    };
    serve_blob(&app, &blob, headers, if_none_match.as_deref()).await
}

/// `PUT /api/me/avatar`: a picture, cropped square and re-encoded small; the original is not
/// kept.
pub async fn set_avatar(
    app: Arc<App>,
    who: Authenticated,
    length: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Result<Response, ApiError> {
    if length.is_some_and(|n| n > limits::MAX_AVATAR_BYTES) {
        return Err(ApiError::FileTooLarge(limits::MAX_AVATAR_BYTES));
    }
    let bytes = super::filters::read_capped(body, limits::MAX_AVATAR_BYTES, || {
        ApiError::FileTooLarge(limits::MAX_AVATAR_BYTES)
    })
    .await?;
    let picture = app.media.avatar(bytes).await?;
    let _pause = app.blobs.pause_sweep().await;
    let blobs = app.blobs.clone();
    let blob = tokio::task::spawn_blocking(move || blobs.put(&picture.bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    change_avatar(&app, &who, Some(blob.into_string())).await
}

/// `DELETE /api/me/avatar`: back to initials.
pub async fn clear_avatar(app: Arc<App>, who: Authenticated) -> Result<Response, ApiError> {
    change_avatar(&app, &who, None).await
}

/// `GET /api/users/{id}/avatar?v=…`: any signed-in user may see anyone's picture.
pub async fn avatar(
    app: Arc<App>,
    user: u64,
    _who: Authenticated,
    if_none_match: Option<String>,
) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let blob = store::blocking(move || store.avatar_blob(user))
        .await?
        .as_deref()
        .and_then(BlobId::parse)
        .ok_or(ApiError::NotFound)?;
    let headers = FileHeaders {
        content_type: "image/png".to_owned(),
        disposition: None,
        etag: format!("\"{}\"", blob.as_str()),
    };
    serve_blob(&app, &blob, headers, if_none_match.as_deref()).await
}

/// Saves the change and tells everyone, so every open tab shows the new picture.
async fn change_avatar(
    app: &App,
    who: &Authenticated,
    blob: Option<String>,
) -> Result<Response, ApiError> {
    let store = app.store.clone();
    let id = who.user.id;
    let user = store::blocking(move || store.set_avatar(id, blob)).await?;
    app.hub.announce_user(&user);
    Ok(warp::reply::json(&serde_json::json!({ "user": user })).into_response())
}

/// The conversation, if the caller is in it (anything else is simply not found) and may write
/// in it: an archived room is refused before the body is read, as a send there would be, since
/// a file uploaded to it could never be sent and would only take disk until swept.
async fn writable_conversation(
    app: &App,
    id: &str,
    who: &Authenticated,
) -> Result<ConversationId, ApiError> {
    let conversation = super::chat::conversation_in_path(id)?;
    let store = app.store.clone();
    let (user, lookup) = (who.user.id, conversation.clone());
    let archived = store::blocking(move || match store.members(user, &lookup)? {
        Some(_) => store.is_archived(&lookup).map(Some),
        None => Ok(None),
    })
    .await?;
    match archived {
        Some(false) => Ok(conversation),
        Some(true) => Err(ChatRejection::RoomArchived.into()),
        None => Err(ApiError::NotFound),
    }
}

/// The file if the caller may fetch it; the same 404 whether it exists or not.
async fn fetchable(
    app: &App,
    id: &str,
    file_id: String,
    who: &Authenticated,
) -> Result<FetchableFile, ApiError> {
    let conversation = super::chat::conversation_in_path(id)?;
    let store = app.store.clone();
    let user = who.user.id;
    store::blocking(move || store.fetchable_file(user, &conversation, &file_id))
        .await?
        .ok_or(ApiError::NotFound)
}

struct FileHeaders {
    content_type: String,
    disposition: Option<String>,
    etag: String,
}

/// Streams a blob from disk with headers that keep it inert.
async fn serve_blob(
    app: &App,
    blob: &BlobId,
    headers: FileHeaders,
    if_none_match: Option<&str>,
) -> Result<Response, ApiError> {
    let not_modified = if_none_match.is_some_and(|tags| {
        tags.split(',')
            .any(|t| t.trim() == headers.etag || t.trim() == "*")
    });
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let path = app.blobs.path(blob);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "a stored file is missing; run `confab check`");
                return Err(ApiError::NotFound);
            }
        };
        let size = file
            .metadata()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .len();
        let mut response = warp::reply::stream(chunks(file)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        response
    };
    let map = response.headers_mut();
    let content_type = HeaderValue::from_str(&headers.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    map.insert(header::CONTENT_TYPE, content_type);
    map.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FILE_CSP),
    );
    map.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    map.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    if let Ok(etag) = HeaderValue::from_str(&headers.etag) {
        map.insert(header::ETAG, etag);
    }
    if let Some(disposition) = headers
        .disposition
        .and_then(|d| HeaderValue::from_str(&d).ok())
    {
        map.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// A file as a stream of chunks, so a download holds one chunk in memory at a time.
fn chunks(file: tokio::fs::File) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0; READ_CHUNK];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), Some(file)))
            }
            // After an error the stream ends.
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Thumbnails are JPEG, or PNG for pictures with transparency: the first bytes tell.
async fn image_type_of(app: &App, blob: &BlobId) -> &'static str {
    let mut magic = [0u8; 4];
    let read = match tokio::fs::File::open(app.blobs.path(blob)).await {
        Ok(mut file) => file.read_exact(&mut magic).await.is_ok(),
        Err(_) => false,
    };
    if read && magic == [0x89, b'P', b'N', b'G'] {
        "image/png"
    } else {
        "image/jpeg"
    }
}

/// Refused (507) when the disk would be left with less than `--upload-min-free`.
fn ensure_space(app: &App, incoming: u64) -> Result<(), ApiError> {
    let free = store::free_bytes(app.blobs.root()).unwrap_or(u64::MAX);
    if free.saturating_sub(incoming) < app.config.upload_min_free {
        return Err(ApiError::UploadStorageFull);
    }
    Ok(())
}

/// 1–255 characters, no control characters, no path separators; and, as for display names,
/// not only invisible characters and no bidi controls, which could make "invoice\u{202E}fdp.exe"
/// show as "invoiceexe.pdf".
fn valid_file_name(name: Option<String>) -> Result<String, ApiError> {
    let name = name.ok_or_else(invalid_file_name)?;
    let count = name.chars().count();
    let valid = (1..=limits::MAX_FILE_NAME_CHARS).contains(&count)
        && text::is_one_line(&name)
        && !name.chars().any(|c| c == '/' || c == '\\')
        && !text::is_blank(&name)
        && !text::has_bidi_controls(&name);
    if valid {
        Ok(name)
    } else {
        Err(invalid_file_name())
    }
}

fn invalid_file_name() -> ApiError {
    ApiError::Invalid(
        "invalid_file_name",
        "a file name is 1 to 255 characters of text, not all invisible, without control characters, text-direction controls, / or \\",
    )
}

/// `f_` and 22 random URL-safe characters (132 bits).
fn new_file_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("f_{encoded}")
}

/// RFC 5987 encoding for `filename*=UTF-8''…`.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::StorageFull => ApiError::UploadStorageFull,
            BlobError::Io(e) => ApiError::Internal(format!("blob store: {e}")),
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(error: MediaError) -> Self {
        ApiError::Media(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_checked_and_encoded() {
        assert!(valid_file_name(Some("Invoice März.pdf".into())).is_ok());
        assert!(valid_file_name(Some("👩\u{200D}💻 notes.txt".into())).is_ok());
        for bad in [
            "",
            "a/b",
            "a\\b",
            "a\nb",
            "a\u{2029}b.txt",
            "   ",
            "\u{200B}",
            "\u{2060}\u{FEFF} ",
            "invoice\u{202E}fdp.exe",
            "a\u{2066}b.txt",
        ] {
            assert!(valid_file_name(Some(bad.into())).is_err(), "{bad:?}");
        }
        assert!(valid_file_name(Some("x".repeat(256))).is_err());
        assert_eq!(percent_encode("März 1.pdf"), "M%C3%A4rz%201.pdf");
        let id = new_file_id();
        assert_eq!(id.len(), 24);
        assert!(id.starts_with("f_"));
    }
}
