//! The dashboard is a client of the JSON API, in-process: every page reads and every form acts
//! through `/api`, with the caller's own session as a bearer token. So the dashboard keeps
//! exactly the API's roles, tenant scope (another tenant's object is a 404), validation and audit
//! log, and holds no rule of its own.

use std::net::SocketAddr;

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::ConnectInfo,
    http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header},
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;

/// The API router, called without a socket.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// What the API answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// An API error, as the dashboard shows it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl Answer {
    /// The body as `T` when the call succeeded, else the API's error.
    pub fn into<T: DeserializeOwned>(self) -> Result<T, Failure> {
        if !self.status.is_success() {
            return Err(self.failure());
        }
        serde_json::from_value(self.body).map_err(|err| {
            tracing::error!(%err, "the dashboard could not read an API answer");
            Failure { status: StatusCode::INTERNAL_SERVER_ERROR, code: "INTERNAL".into(), message: err.to_string() }
        })
    }

    pub fn failure(&self) -> Failure {
        let error = &self.body["error"];
        Failure {
            status: self.status,
            code: error["code"].as_str().unwrap_or("INTERNAL").to_string(),
            message: error["message"].as_str().unwrap_or_default().to_string(),
        }
    }
}

impl Api {
    pub fn new(router: Router) -> Api {
        Api { router }
    }

    /// One call. `token` is the caller's web session; `client` their address (for the login
    /// rate limit, which counts per address).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        client: Option<SocketAddr>,
    ) -> Answer {
        let body = body.map(|json| ("application/json", Body::from(json.to_string())));
        self.send(method, path, token, body, client, None).await
    }

    /// One call with a body of any type (`content_type`, the bytes).
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&'static str, Body)>,
        client: Option<SocketAddr>,
        once_key: Option<&str>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(key) = once_key {
            request = request.header(crate::error::ONCE_KEY_HEADER, key);
        }
        let body = match body {
            Some((content_type, body)) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                body
            }
            None => Body::empty(),
        };
        let mut request = match request.body(body) {
            Ok(request) => request,
            Err(_) => return internal(),
        };
        if let Some(addr) = client {
            request.extensions_mut().insert(ConnectInfo(addr));
        }
        let Ok(response) = self.router.clone().oneshot(request).await;
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 8 * 1024 * 1024).await.unwrap_or_default();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Answer { status: parts.status, headers: parts.headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body), None).await
    }

    /// A POST whose body is `bytes` as `application/octet-stream` (a firmware image).
    pub async fn post_bytes(&self, path: &str, token: &str, bytes: axum::body::Bytes) -> Answer {
        let body = Some(("application/octet-stream", Body::from(bytes)));
        self.send(Method::POST, path, Some(token), body, None, None).await
    }

    /// A POST of a change made once per `once_key` (the form's key; none when the form had none).
    pub async fn post_once(&self, path: &str, token: &str, body: Value, once_key: &str) -> Answer {
        let body = Some(("application/json", Body::from(body.to_string())));
        let key = Some(once_key).filter(|key| !key.is_empty());
        self.send(Method::POST, path, Some(token), body, None, key).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(token), Some(body), None).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(token), Some(body), None).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, Some(token), None, None).await
    }
}

fn internal() -> Answer {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers,
        body: serde_json::json!({"error": {"code": "INTERNAL", "message": "could not build the request"}}),
    }
}

// The pages read the API's answers with the API's own types (`views`), under the pages' names.
pub use crate::{
    routes::CardView as Card,
    views::{
        AdminPageView as AdminPage, AdminSummaryView as AdminSummary, AuditView as Audit,
        DeviceCreatedView as DeviceCreated, DeviceStateView as DeviceState, DeviceView as Device,
        FleetTotalsView as FleetTotals, LedgerView as Ledger, MinuteRequestView as MinuteRequest, MotorView as Motor,
        NewPasswordView as NewPassword, QueueView as Queue, ReceiptView as Receipt, StatusView as Status,
        TermsView as Terms, UsageView as Usage, UserBalanceView as UserBalance, UserView as User, WalletView as Wallet,
    },
};
