//! Push notifications through Expo's push API (`POST https://exp.host/--/api/v2/push/send`, a
//! JSON array of messages; the answer has one ticket per message).

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    http::{HttpClient, Post},
    sms::SendError,
};

/// Expo's push service.
#[derive(Debug, Clone)]
pub struct ExpoPush {
    pub url: String,
    /// An Expo access token, when the project requires one (`Authorization: Bearer …`).
    pub access_token: Option<String>,
    pub timeout: Duration,
}

/// Expo's own address.
pub const EXPO_PUSH_URL: &str = "https://exp.host/--/api/v2/push/send";

impl ExpoPush {
    /// The JSON posted: one message per token.
    pub fn body(&self, tokens: &[String], title: &str, body: &str, data: Value) -> Value {
        Value::Array(
            tokens
                .iter()
                .map(|to| json!({ "to": to, "title": title, "body": body, "sound": "default", "data": data }))
                .collect(),
        )
    }

    /// Sends to every token. Delivered when Expo accepted the request and at least one ticket is
    /// `ok` (a token Expo no longer knows, `DeviceNotRegistered`, is a phone that is gone).
    pub async fn send(
        &self,
        http: &HttpClient,
        tokens: &[String],
        title: &str,
        body: &str,
        data: Value,
    ) -> Result<(), SendError> {
        let answer = http
            .post(Post {
                url: &self.url,
                content_type: "application/json",
                authorization: self.access_token.as_ref().map(|token| format!("Bearer {token}")).as_deref(),
                accept_json: true,
                body: self.body(tokens, title, body, data).to_string(),
                timeout: self.timeout,
            })
            .await?;
        let (status, text) = (answer.status, answer.text);
        if !status.is_success() {
            return Err(SendError::from_status(status, &text));
        }
        let answer: Value = serde_json::from_str(&text)
            .map_err(|e| SendError::Temporary(format!("Expo answered something that is not JSON: {e}")))?;
        let tickets = answer.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        if tickets.iter().any(|t| t.get("status").and_then(Value::as_str) == Some("ok")) {
            return Ok(());
        }
        let errors: Vec<String> = tickets
            .iter()
            .map(|t| {
                t.pointer("/details/error")
                    .and_then(Value::as_str)
                    .or_else(|| t.get("message").and_then(Value::as_str))
                    .unwrap_or("unknown")
                    .to_owned()
            })
            .collect();
        if !errors.is_empty() && errors.iter().all(|e| e == "DeviceNotRegistered" || e == "InvalidCredentials") {
            Err(SendError::Refused(errors.join(", ")))
        } else {
            Err(SendError::Temporary(format!("Expo refused every message: {}", errors.join(", "))))
        }
    }
}
