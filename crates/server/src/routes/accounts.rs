//! Signing in and out: web sessions (cookie) and mobile sessions (access + refresh tokens).

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use pumppilot_engine::Timestamp;
use pumppilot_store::{Account, RefreshMatch, Rotation, Session, SessionId, SessionKind, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    auth::{self, ACCESS_TOKEN_MS, Caller, ClientAddr, REFRESH_TOKEN_MS, SESSION_COOKIE, WEB_SESSION_MS},
    error::{ApiError, ApiJson},
    keys::{self, Keyring},
    routes::openapi::{Body, SignIn, SignedIn, Store},
    views::UserView,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(mobile_login))
        .routes(routes!(mobile_refresh))
        .routes(routes!(mobile_logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginBody {
    #[schema(min_length = 1, max_length = 64)]
    username: String,
    #[schema(max_length = 256)]
    password: String,
    #[serde(default)]
    device_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginReply {
    /// Usable as a bearer token too.
    token: String,
    user: UserView,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    access_token: String,
    refresh_token: String,
    /// Seconds until the access token expires.
    expires_in: i64,
    user: UserView,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Checks a username and password: the attempt is admitted by the limiter (429) before its
/// password waits for a hashing slot (503 `BUSY`); only failures count.
async fn authenticate(app: &AppState, body: &LoginBody, addr: ClientAddr) -> Result<Account, ApiError> {
    if body.username.is_empty() || body.username.len() > 64 || body.password.len() > 256 {
        return Err(ApiError::validation("username: 1 to 64 characters; password: at most 256"));
    }
    let attempt = app.logins.begin(&body.username, addr.0).await?;
    let account = app.store.account_by_username(&body.username.to_ascii_lowercase()).await?;
    let stored = match &account {
        Some(account) => account.password_hash.clone(),
        None => keys::decoy_hash().await.to_string(),
    };
    let valid = app.passwords.verify(body.password.clone(), stored).await?;
    match account {
        Some(account) if valid => {
            drop(attempt);
            auth::ensure_active(app, &account).await?;
            Ok(account)
        }
        _ => {
            attempt.failed().await;
            app.metrics.failed_login();
            tracing::info!(username = ?body.username, addr = ?addr.0, "failed sign-in");
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "wrong username or password"))
        }
    }
}

/// Sign in on the web: sets the session cookie and returns the token.
#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = LoginBody, security(),
    responses((status = 200, description = "Signed in; the session cookie is set", body = LoginReply), SignIn))]
async fn login(
    State(app): State<AppState>,
    addr: ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let account = authenticate(&app, &body, addr).await?;
    let token = Keyring::new_token("w_");
    let now = app.now();
    let session = Session::web(account.id, app.keyring.hash(&token).to_vec(), now, now + WEB_SESSION_MS);
    app.store.create_session(&session).await?;
    app.sessions.remember(&session);
    let cookie =
        format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", WEB_SESSION_MS / 1000);
    let mut response = Json(LoginReply { token, user: UserView::from(&account) }).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|_| ApiError::internal())?);
    Ok(response)
}

/// Sign out: revokes this session and clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 204, description = "Signed out; the cookie is cleared"), SignedIn))]
async fn logout(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    app.store.revoke_session(caller.kind, caller.session, app.now()).await?;
    app.sessions.forget(&[caller.session]);
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, clear)], StatusCode::NO_CONTENT).into_response())
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/auth/me", tag = "accounts", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's account", body = UserView), SignedIn))]
async fn me(caller: Caller) -> Json<UserView> {
    Json(UserView::from(caller.account.as_ref()))
}

fn new_pair(app: &AppState) -> (String, String, [u8; 32], [u8; 32]) {
    let access = Keyring::new_token("m_");
    let refresh = Keyring::new_token("r_");
    let (access_hash, refresh_hash) = (app.keyring.hash(&access), app.keyring.hash(&refresh));
    (access, refresh, access_hash, refresh_hash)
}

/// Sign in from the mobile app: a short-lived access token and a refresh token.
#[utoipa::path(post, path = "/api/mobile/login", tag = "accounts", request_body = LoginBody, security(),
    responses((status = 200, description = "Signed in: an access and a refresh token", body = TokenPair), SignIn))]
async fn mobile_login(
    State(app): State<AppState>,
    addr: ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<TokenPair>, ApiError> {
    let account = authenticate(&app, &body, addr).await?;
    let (access, refresh, access_hash, refresh_hash) = new_pair(&app);
    let now = app.now();
    let session = Session {
        id: SessionId::new(),
        kind: SessionKind::Mobile,
        user_id: account.id,
        access_hash: access_hash.to_vec(),
        access_expires_at: now + ACCESS_TOKEN_MS,
        refresh_hash: Some(refresh_hash.to_vec()),
        previous_refresh_hash: None,
        refresh_expires_at: Some(now + REFRESH_TOKEN_MS),
        device_name: body.device_name.map(|n| n.chars().take(64).collect()),
        created_at: now,
        revoked_at: None,
    };
    app.store.create_session(&session).await?;
    app.sessions.remember(&session);
    Ok(Json(TokenPair {
        access_token: access,
        refresh_token: refresh,
        expires_in: ACCESS_TOKEN_MS / 1000,
        user: UserView::from(&account),
    }))
}

/// How long after a rotation the refresh token it replaced is still honoured, once: long enough for
/// an app on a village network to retry a refresh whose answer was lost, short enough that a
/// stolen token is caught when it is used later.
pub const REFRESH_RETRY_MS: i64 = 30_000;

/// True when a rotated refresh token comes back within [`REFRESH_RETRY_MS`] of its rotation (the
/// rotation set the access token's expiry, so it is `ACCESS_TOKEN_MS` before it).
fn reuse_is_a_retry(session: &Session, now: Timestamp) -> bool {
    let rotated_at = session.access_expires_at - ACCESS_TOKEN_MS;
    now - rotated_at <= REFRESH_RETRY_MS
}

/// A new token pair for a refresh token; the old refresh token stops working. Presenting an
/// already rotated refresh token again within [`REFRESH_RETRY_MS`] is a retry and gets a new pair;
/// later, it revokes the whole session (the token was probably stolen).
#[utoipa::path(post, path = "/api/mobile/refresh", tag = "accounts", request_body = RefreshBody, security(),
    responses((status = 200, description = "A new pair; the refresh token sent stops working", body = TokenPair),
        SignedIn, Body))]
async fn mobile_refresh(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    let hash = app.keyring.hash(&body.refresh_token);
    let now = app.now();
    let Some((session, matched)) = app.store.session_by_refresh_hash(&hash).await? else {
        return Err(ApiError::unauthenticated());
    };
    if session.revoked_at.is_some() {
        // Suspension revokes the sessions; the app is told why, not just signed out.
        if let Some(account) = app.sessions.account(&app, session.user_id).await? {
            auth::ensure_active(&app, &account).await?;
        }
        return Err(ApiError::unauthenticated());
    }
    let expected_refresh_hash = match matched {
        RefreshMatch::Current => hash.to_vec(),
        // The answer to the last refresh was lost (a bad network) and the app asks again: it
        // gets a new pair, rotated from the current token it never received.
        RefreshMatch::Previous if reuse_is_a_retry(&session, now) => {
            session.refresh_hash.clone().ok_or_else(ApiError::unauthenticated)?
        }
        RefreshMatch::Previous => {
            tracing::warn!(session = ?session.id, "a rotated refresh token was reused; revoking the session");
            app.store.revoke_session(SessionKind::Mobile, session.id, now).await?;
            app.sessions.forget(&[session.id]);
            return Err(ApiError::unauthenticated());
        }
    };
    if session.refresh_expires_at.is_none_or(|at| at <= now) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED", "sign in again"));
    }
    let account = app.sessions.account(&app, session.user_id).await?.ok_or_else(ApiError::unauthenticated)?;
    auth::ensure_active(&app, &account).await?;
    let (access, refresh, access_hash, refresh_hash) = new_pair(&app);
    let rotation = Rotation {
        id: session.id,
        expected_refresh_hash,
        access_hash: access_hash.to_vec(),
        access_expires_at: now + ACCESS_TOKEN_MS,
        refresh_hash: refresh_hash.to_vec(),
        refresh_expires_at: now + REFRESH_TOKEN_MS,
    };
    // Another refresh rotated it first: this token is spent. Any other store error is an
    // outage (503), which must not sign the app out.
    app.store.rotate_session(&rotation).await.map_err(|err| match err {
        StoreError::VersionConflict | StoreError::NotFound => ApiError::unauthenticated(),
        other => ApiError::from(other),
    })?;
    app.sessions.forget(&[session.id]);
    app.sessions.remember(&Session {
        access_hash: rotation.access_hash.clone(),
        access_expires_at: rotation.access_expires_at,
        ..session
    });
    Ok(Json(TokenPair {
        access_token: access,
        refresh_token: refresh,
        expires_in: ACCESS_TOKEN_MS / 1000,
        user: UserView::from(account.as_ref()),
    }))
}

/// Revokes the mobile session of a refresh token.
#[utoipa::path(post, path = "/api/mobile/logout", tag = "accounts", request_body = RefreshBody, security(),
    responses((status = 204, description = "The session of that refresh token is revoked (if there was one)"),
        Body, Store))]
async fn mobile_logout(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    let hash = app.keyring.hash(&body.refresh_token);
    if let Some((session, _)) = app.store.session_by_refresh_hash(&hash).await? {
        app.store.revoke_session(SessionKind::Mobile, session.id, app.now()).await?;
        app.sessions.forget(&[session.id]);
    }
    Ok(StatusCode::NO_CONTENT)
}
