//! Signing in and out: web sessions (cookie) and mobile sessions (access + refresh tokens).

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use pumppilot_engine::Timestamp;
use pumppilot_store::{Account, RefreshMatch, Role, Rotation, Session, SessionId, SessionKind, StoreError};
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
        .routes(routes!(change_password))
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
/// password waits for a hashing slot (503 `BUSY`); only failures count, against the sign-in
/// limits of the username and the client. The account when the password is its own.
async fn verify_password(
    app: &AppState,
    username: &str,
    password: &str,
    addr: &ClientAddr,
) -> Result<Option<Account>, ApiError> {
    let attempt = app.logins.begin(username, addr.0).await?;
    let account = app.store.account_by_username(&username.to_ascii_lowercase()).await?;
    let stored = match &account {
        Some(account) => account.password_hash.clone(),
        None => keys::decoy_hash().await.to_string(),
    };
    let valid = app.passwords.verify(password.to_string(), stored).await?;
    match account {
        Some(account) if valid => {
            drop(attempt);
            Ok(Some(account))
        }
        _ => {
            attempt.failed().await;
            app.metrics.failed_login();
            tracing::info!(username = ?username, addr = ?addr.0, "failed sign-in");
            Ok(None)
        }
    }
}

/// Signs in with a username and password ([`verify_password`]).
async fn authenticate(app: &AppState, body: &LoginBody, addr: ClientAddr) -> Result<Account, ApiError> {
    if body.username.is_empty() || body.username.len() > 64 || !keys::password_checkable(&body.password) {
        return Err(ApiError::validation("username: 1 to 64 characters; password: at most 256"));
    }
    match verify_password(app, &body.username, &body.password, &addr).await? {
        Some(account) => {
            auth::ensure_active(app, &account).await?;
            Ok(account)
        }
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "wrong username or password")),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordChangeBody {
    /// The password the account signs in with now.
    #[schema(max_length = 256)]
    current_password: String,
    /// The new one: 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    new_password: String,
}

/// Changes the caller's own password. The current one is checked as a sign-in checks it, and a
/// wrong one counts against the sign-in limits of the caller's username (403 `WRONG_PASSWORD`,
/// nothing changed). Every other session of the account ends in the same write; the one that
/// asked stays signed in.
#[utoipa::path(post, path = "/api/auth/password", tag = "accounts", request_body = PasswordChangeBody, security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 204, description = "Changed; every other session of the account is signed out"), SignIn, Body))]
async fn change_password(
    State(app): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    ApiJson(body): ApiJson<PasswordChangeBody>,
) -> Result<StatusCode, ApiError> {
    if !keys::password_checkable(&body.current_password) {
        return Err(ApiError::validation("currentPassword: at most 256 characters"));
    }
    super::check_password("newPassword", &body.new_password)?;
    let account = caller.account.as_ref();
    let checked = verify_password(&app, &account.username, &body.current_password, &addr).await?;
    if checked.is_none_or(|checked| checked.id != account.id) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "WRONG_PASSWORD", "the current password is wrong"));
    }
    let action = "account.password".to_owned();
    super::owner::set_password(&app, account.id, account, body.new_password, Some(caller.session), action).await?;
    if account.role == Role::Master {
        forget_first_password(&app, &body.current_password).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The master changed the made-up password a first start kept in a file
/// (`Settings::master_password_file`): the file no longer holds a live password, and is deleted.
/// A file holding another password (another master's) is left alone.
async fn forget_first_password(app: &AppState, old_password: &str) {
    let Some(file) = &app.settings.master_password_file else { return };
    let Ok(kept) = tokio::fs::read_to_string(file).await else { return };
    if kept.trim_end_matches(['\r', '\n']) != old_password {
        return;
    }
    match tokio::fs::remove_file(file).await {
        Ok(()) => tracing::info!(file = %file.display(), "the master changed the first password; its file is deleted"),
        Err(err) => tracing::warn!(%err, file = %file.display(), "could not delete the master's first password file"),
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
