//! The one mapping from every error the API can meet to `{"error":{"code","message"}}`.

use std::convert::Infallible;
use std::time::Duration;

use http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::auth::AuthError;
use crate::hub::WriteFailed;
use crate::media::MediaError;
use crate::search::SearchError;
use crate::store::{ChatRejection, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("this request must come from the confab page itself")]
    BadOrigin,
    #[error("send the metrics token as Authorization: Bearer TOKEN")]
    MetricsToken,
    #[error("not found")]
    NotFound,
    #[error("request bodies are limited to 64 KiB")]
    PayloadTooLarge,
    #[error("send the request body as application/json")]
    UnsupportedMediaType,
    #[error("the request body needs a Content-Length")]
    LengthRequired,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error(transparent)]
    Chat(#[from] ChatRejection),
    #[error("the change could not be saved")]
    Write(WriteFailed),
    /// A field that breaks its own rule: the code names the field.
    #[error("{1}")]
    Invalid(&'static str, &'static str),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("files are limited to {0} bytes")]
    FileTooLarge(u64),
    #[error("the server is low on disk space; uploads are paused")]
    UploadStorageFull,
    #[error(transparent)]
    Media(MediaError),
}

impl warp::reject::Reject for ApiError {}

impl From<WriteFailed> for ApiError {
    fn from(failed: WriteFailed) -> Self {
        ApiError::Write(failed)
    }
}

impl ApiError {
    /// Status, stable code and a message that is safe to show. Causes of server faults are
    /// logged here and never sent.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        use ApiError as E;
        use AuthError as A;
        let message = self.to_string();
        match self {
            E::Auth(auth) => match auth {
                A::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials", message),
                A::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", message),
                A::AccountDisabled => (StatusCode::FORBIDDEN, "account_disabled", message),
                A::PasswordChangeRequired => {
                    (StatusCode::FORBIDDEN, "password_change_required", message)
                }
                A::Forbidden => (StatusCode::FORBIDDEN, "forbidden", message),
                A::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", message),
                A::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy", message),
                A::InvalidUsername => (StatusCode::BAD_REQUEST, "invalid_username", message),
                A::InvalidDisplayName => (StatusCode::BAD_REQUEST, "invalid_display_name", message),
                A::InvalidPassword => (StatusCode::BAD_REQUEST, "invalid_password", message),
                A::PasswordUnchanged => (StatusCode::BAD_REQUEST, "password_unchanged", message),
                A::InvalidSetupToken => (StatusCode::FORBIDDEN, "invalid_setup_token", message),
                A::AlreadySetUp => (StatusCode::CONFLICT, "already_set_up", message),
                A::UsernameTaken => (StatusCode::CONFLICT, "username_taken", message),
                A::LastAdmin => (StatusCode::CONFLICT, "last_admin", message),
                A::NoSuchUser => (StatusCode::NOT_FOUND, "not_found", message),
                A::Store(cause) => store_error(cause),
                A::Internal(cause) => internal(cause),
            },
            E::Store(cause) => store_error(cause),
            E::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body", message),
            E::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query", message),
            E::BadOrigin => (StatusCode::FORBIDDEN, "bad_origin", message),
            E::MetricsToken => (StatusCode::UNAUTHORIZED, "unauthorized", message),
            E::NotFound => (StatusCode::NOT_FOUND, "not_found", message),
            E::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message),
            E::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            ),
            E::LengthRequired => (StatusCode::LENGTH_REQUIRED, "length_required", message),
            E::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                message,
            ),
            E::Chat(rejection) => (rejection_status(*rejection), http_code(*rejection), message),
            E::Write(WriteFailed::StorageFull) => store_error(&StoreError::StorageFull),
            E::Write(WriteFailed::Internal) => internal(&"a write through the hub failed"),
            E::Invalid(code, _) => (StatusCode::BAD_REQUEST, code, message),
            E::Internal(cause) => internal(cause),
            E::FileTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large", message),
            E::UploadStorageFull => (
                StatusCode::INSUFFICIENT_STORAGE,
                "upload_storage_full",
                message,
            ),
            E::Media(media) => match media {
                MediaError::TooLarge => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "image_too_large", message)
                }
                MediaError::NotAnImage => {
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_an_image", message)
                }
                MediaError::Internal(cause) => internal(cause),
            },
            E::Search(search) => match search {
                SearchError::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "search_unavailable",
                    message,
                ),
                SearchError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_query", message),
                SearchError::Store(cause) => store_error(cause),
                SearchError::Index(cause) => internal(cause),
            },
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Auth(AuthError::RateLimited { retry_after }) => Some(*retry_after),
            ApiError::Auth(AuthError::Busy) => Some(Duration::from_secs(1)),
            ApiError::Search(SearchError::Unavailable) => Some(Duration::from_secs(2)),
            _ => None,
        }
    }
}

/// Over HTTP, a conversation you are not in is simply not found.
fn http_code(rejection: ChatRejection) -> &'static str {
    match rejection {
        ChatRejection::NotAMember => "not_found",
        other => other.code(),
    }
}

fn rejection_status(rejection: ChatRejection) -> StatusCode {
    use ChatRejection as R;
    match rejection {
        R::NotAMember | R::NotFound => StatusCode::NOT_FOUND,
        R::NoSuchUser | R::CannotMessageSelf | R::InvalidSeq | R::CannotBlockSelf => {
            StatusCode::BAD_REQUEST
        }
        R::NoSuchMessage => StatusCode::NOT_FOUND,
        R::Forbidden
        | R::OpenRoomsAreJoined
        | R::MentionNotAllowed
        | R::NotYourMessage
        | R::EditWindowPassed => StatusCode::FORBIDDEN,
        R::MessageDeleted | R::TooManyReactions => StatusCode::CONFLICT,
        R::NoSuchFile | R::FilesInRequest => StatusCode::BAD_REQUEST,
        R::ClientIdReused
        | R::RoomArchived
        | R::AlreadyMember
        | R::CannotLeaveGeneral
        | R::GeneralIsFixed
        | R::RoomNameTaken
        | R::RequestPending
        | R::RequestDeclined => StatusCode::CONFLICT,
    }
}

fn store_error(cause: &StoreError) -> (StatusCode, &'static str, String) {
    match cause {
        StoreError::StorageFull => (
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the server's disk is full, so nothing can be saved; tell your administrator".into(),
        ),
        other => internal(other),
    }
}

fn internal(cause: &dyn std::fmt::Display) -> (StatusCode, &'static str, String) {
    tracing::error!(%cause, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "something went wrong on the server; the details are in its log".to_owned(),
    )
}

impl ApiError {
    /// A reference is enough: rejections hand errors out by reference.
    pub fn to_response(&self) -> Response {
        let (status, code, message) = self.parts();
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), status).into_response();
        if let Some(retry_after) = self.retry_after()
            && let Ok(value) = retry_after.as_secs().max(1).to_string().parse()
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value);
        }
        response
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

/// Turns a handler's result into a response.
pub fn respond<T: Reply>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}

/// Turns warp's own rejections (no route, wrong method, bad query…) into the same shape.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(api) = rejection.find::<ApiError>() {
        return Ok(api.to_response());
    }
    // Routes that matched the path but not the method also reject; only when nothing more
    // specific is found is the answer "method not allowed" or "not found".
    let error = if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::PayloadTooLarge
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::LengthRequired
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::InvalidQuery("the query string is not valid".into())
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::UnsupportedMediaType
    } else if let Some(header) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::InvalidBody(header.to_string())
    } else if let Some(header) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::InvalidBody(header.to_string())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if rejection.is_not_found() {
        ApiError::NotFound
    } else {
        tracing::debug!(?rejection, "unhandled rejection");
        ApiError::InvalidBody("the request is not valid".into())
    };
    Ok(error.into_response())
}
