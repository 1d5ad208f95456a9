//! The API's errors: a status, a stable code and a message for people. Causes go to the log,
//! never to the client.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use pumppilot_engine::Refusal;
use pumppilot_store::StoreError;
use serde::{Serialize, de::DeserializeOwned};
use utoipa::ToSchema;

use crate::{log_throttle::LogThrottle, runtime::RuntimeError};

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to send in `Retry-After` (a busy or rate-limited answer).
    pub retry_after: Option<u64>,
}

/// The JSON body of every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// A stable code, such as `VALIDATION` or `INSUFFICIENT_BALANCE`.
    code: String,
    /// A sentence for people.
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION", message)
    }
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "sign in first")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }
    pub fn suspended() -> Self {
        Self::new(StatusCode::FORBIDDEN, "ACCOUNT_SUSPENDED", "this account is suspended")
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("no such {what}"))
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "the store cannot be reached; nothing was changed")
    }
    /// Too many sign-in attempts; the client may try again after `retry_after` seconds.
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message).retry_after(retry_after)
    }
    /// Every password check slot is taken; the client may try again after `retry_after` seconds.
    pub fn busy(retry_after: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "BUSY", "the server is checking many passwords; try again soon")
            .retry_after(retry_after)
    }
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "something went wrong; nothing was changed")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.into(), message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::UsernameTaken => ApiError::conflict("USERNAME_TAKEN", "that username is taken"),
            StoreError::AlreadyDecided => ApiError::conflict("ALREADY_DECIDED", "this request was already decided"),
            // A change sent again is answered by its route (`routes::admin`); only a store's
            // refusal elsewhere reaches here.
            StoreError::AlreadyMade => ApiError::conflict("CONFLICT", "this change was already made"),
            StoreError::RequestPending => {
                ApiError::conflict("REQUEST_PENDING", "a request is already waiting for the owner")
            }
            StoreError::NotFound => ApiError::not_found("object"),
            StoreError::PhoneTaken => ApiError::conflict("PHONE_TAKEN", "that phone number belongs to another account"),
            StoreError::ClaimLost => ApiError::conflict("CONFLICT", "changed by someone else; try again"),
            StoreError::VersionConflict => ApiError::conflict("CONFLICT", "changed by someone else; try again"),
            StoreError::Invariant(cause) => {
                tracing::error!(%cause, "store refused a change");
                ApiError::conflict("CONFLICT", "the change was refused; try again")
            }
            StoreError::Unavailable(cause) => {
                log_unavailable(&cause);
                ApiError::unavailable()
            }
        }
    }
}

/// An outage fails every request at once: its cause is logged at most once every ten seconds, with
/// how many requests it failed meanwhile, so that a full disk is not filled further by its own log.
fn log_unavailable(cause: &str) {
    static OUTAGE_LOG: LogThrottle = LogThrottle::every(std::time::Duration::from_secs(10));
    if let Some(unlogged) = OUTAGE_LOG.admit(std::time::Instant::now()) {
        tracing::error!(%cause, more_failed_since_last_line = unlogged, "store unavailable");
    }
}

/// The one place where the runtime's errors become HTTP answers.
impl From<RuntimeError> for ApiError {
    fn from(err: RuntimeError) -> Self {
        match err {
            RuntimeError::NotFound => ApiError::not_found("admin"),
            RuntimeError::Busy => ApiError::conflict("CONFLICT", "the pump is busy; try again"),
            RuntimeError::Store(err) => err.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::InsufficientBalance => {
                ApiError::conflict("INSUFFICIENT_BALANCE", "no minutes left; ask your pump owner for a recharge")
            }
            Refusal::NothingToStop => ApiError::not_found("active run"),
            Refusal::Suspended => ApiError::suspended(),
            Refusal::InvalidAmount => {
                ApiError::conflict("BELOW_ZERO", "that amount is not allowed: a balance cannot go below zero")
            }
            Refusal::AlreadyEnded => {
                ApiError::conflict("ALREADY_ENDED", "this run has ended already; nothing was stopped")
            }
        }
    }
}

/// A request body, read within the size limit; a body over it is a JSON 413.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "the body is over 64 KiB")
            }
            _ => ApiError::validation("the body could not be read"),
        })
    }
}

/// A JSON body (sent with `Content-Type: application/json`); every rejection is this API's JSON
/// error: 400 naming the field at fault, or 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_body(json, &bytes).map(ApiJson)
    }
}

/// The body is declared JSON (`application/json` or `…+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || mime.ends_with("+json")
}

/// The one policy for every JSON request body ([`ApiJson`], [`OptionalJson`]): declared JSON, a
/// JSON object (never an array, which serde would otherwise read into a struct field by field),
/// then parsed with the field at fault named.
fn parse_body<T: DeserializeOwned>(declared_json: bool, bytes: &[u8]) -> Result<T, ApiError> {
    if !declared_json {
        return Err(ApiError::validation("send JSON with Content-Type: application/json"));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::validation("the body must be a JSON object"));
    }
    parse_json(bytes)
}

/// A path parameter. One that cannot be read (percent-encoded bytes that are not UTF-8) names no
/// object: 404, as a malformed id does.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) =
            Path::<T>::from_request_parts(parts, state).await.map_err(|_| ApiError::not_found("object"))?;
        Ok(ApiPath(value))
    }
}

/// Query parameters; one that cannot be read (given twice, say) is a 400 `VALIDATION` naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) =
            Query::<T>::from_request_parts(parts, state).await.map_err(|e| ApiError::validation(e.body_text()))?;
        Ok(ApiQuery(value))
    }
}

/// The `Idempotency-Key` a change was sent with, if any: a change sent again with the same key
/// (a retry after an answer lost on a bad network, a form sent twice) is made once and answered
/// as the first was. 1 to 100 visible ASCII characters (a UUID, say); anything else is a 400
/// `VALIDATION` naming the header.
pub struct OnceKey(pub Option<String>);

/// The header [`OnceKey`] reads.
pub const ONCE_KEY_HEADER: &str = "idempotency-key";

impl<S: Send + Sync> FromRequestParts<S> for OnceKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut given = parts.headers.get_all(ONCE_KEY_HEADER).iter();
        match (given.next().map(|value| value.to_str()), given.next()) {
            (None, _) => Ok(OnceKey(None)),
            (Some(Ok(key)), None) if (1..=100).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(OnceKey(Some(key.to_owned())))
            }
            _ => Err(ApiError::validation("Idempotency-Key: one key of 1 to 100 letters, digits or marks, no spaces")),
        }
    }
}

/// Longest request target (path and query) answered; a longer one is a JSON 414.
pub const MAX_URI: usize = 8 * 1024;
/// Most bytes of request headers answered; more is a JSON 431.
pub const MAX_HEADERS: usize = 32 * 1024;

/// The refusal of an oversized request target (414 `URI_TOO_LONG`) or oversized headers (431
/// `HEADERS_TOO_LARGE`), with this API's JSON error, well below hyper's own limits (a 64 KiB
/// target, a 400 KiB head, 100 headers), where hyper refuses before any handler runs and
/// `serve::JsonRefusals` gives its answer the same JSON body; `None`
/// for a request within them. Checked for every request by `metrics::Edge`.
pub fn head_refusal(request: &Request) -> Option<Response> {
    let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI {
        tracing::info!(bytes = target, "refused a request target over the limit");
        return Some(
            ApiError::new(StatusCode::URI_TOO_LONG, "URI_TOO_LONG", "the path and query are over 8 KiB")
                .into_response(),
        );
    }
    let headers: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers > MAX_HEADERS {
        tracing::info!(bytes = headers, "refused request headers over the limit");
        return Some(
            ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "HEADERS_TOO_LARGE",
                "the request headers are over 32 KiB",
            )
            .into_response(),
        );
    }
    None
}

/// The answer when the path exists but not for this method.
pub async fn wrong_method() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "this path does not take that method")
}

/// A JSON body that may also be absent (an empty body reads as `T::default()`).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_body(json, &bytes).map(OptionalJson)
    }
}

/// Parses JSON bytes; a wrong or missing value is named by its path (`minutes: invalid value…`).
pub fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        match e.inner().classify() {
            serde_json::error::Category::Data if path != "." => ApiError::validation(format!("{path}: {}", e.inner())),
            serde_json::error::Category::Data => ApiError::validation(e.inner().to_string()),
            _ => ApiError::validation("the body is not valid JSON"),
        }
    })?;
    deserializer.end().map_err(|_| ApiError::validation("the body is not valid JSON"))?;
    Ok(value)
}
