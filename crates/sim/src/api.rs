//! The few API calls that set pumps up for simulated devices: sign in, and POST or PUT JSON with a
//! token.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A PumpPilot server's JSON API.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// `base` is `http://host:port`.
    pub fn new(http: reqwest::Client, base: &str) -> Api {
        Api { http, base: base.trim_end_matches('/').to_owned() }
    }

    /// POSTs `body` with a bearer token (empty for none); a status other than 2xx is an error
    /// carrying the server's message.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, token, path, body).await
    }

    /// PUTs `body`, as [`Api::post`] does.
    pub async fn put(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PUT, token, path, body).await
    }

    async fn send(&self, method: reqwest::Method, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let request = self.http.request(method, format!("{}{path}", self.base)).json(&body);
        let request = if token.is_empty() { request } else { request.bearer_auth(token) };
        let answer = request.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{path}: HTTP {status} {}", body["error"]["message"]);
        }
        Ok(body)
    }

    /// Signs in and returns the bearer token.
    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let body = self.post("", "/api/auth/login", json!({"username": username, "password": password})).await?;
        Ok(body["token"].as_str().context("the login answer has no token")?.to_owned())
    }
}
