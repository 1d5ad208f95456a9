//! Push notifications through Expo's push API (`POST https://exp.host/--/api/v2/push/send`, a
//! JSON array of messages; the answer has one ticket per message, in order), and the receipts
//! read afterwards (`POST …/getReceipts` with the tickets' ids), which tell of a phone that is
//! gone (`DeviceNotRegistered`).

use std::{collections::HashMap, time::Duration};

use serde_json::{Value, json};

use crate::{
    http::{HttpClient, Post},
    sms::SendError,
};

/// Expo's push service.
#[derive(Debug, Clone)]
pub struct ExpoPush {
    pub url: String,
    /// Where receipts are read (`PUMPPILOT_EXPO_RECEIPTS_URL`; by default the push URL with its
    /// last part `send` replaced by `getReceipts`).
    pub receipts_url: String,
    /// An Expo access token, when the project requires one (`Authorization: Bearer …`).
    pub access_token: Option<String>,
    pub timeout: Duration,
}

/// Expo's own address.
pub const EXPO_PUSH_URL: &str = "https://exp.host/--/api/v2/push/send";
/// Expo's own address for receipts.
pub const EXPO_RECEIPTS_URL: &str = "https://exp.host/--/api/v2/push/getReceipts";

/// The error Expo gives for a token whose phone uninstalled the app or is gone.
pub const DEVICE_NOT_REGISTERED: &str = "DeviceNotRegistered";

/// The receipts URL that goes with a push URL: `…/send` → `…/getReceipts`.
pub fn receipts_url_for(push_url: &str) -> String {
    match push_url.strip_suffix("/send") {
        Some(base) => format!("{base}/getReceipts"),
        None => EXPO_RECEIPTS_URL.to_owned(),
    }
}

/// What Expo made of one push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Delivered (at least one ticket `ok`), or why not.
    pub result: Result<(), SendError>,
    /// `(token, ticket id)` of each message Expo accepted: its receipt is read later.
    pub tickets: Vec<(String, String)>,
    /// Tokens Expo no longer knows (`DeviceNotRegistered` in their ticket).
    pub gone: Vec<String>,
}

/// One receipt: delivered to the phone's push service, or an error code (`DeviceNotRegistered`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    Ok,
    Error(String),
}

fn error_code(item: &Value) -> String {
    item.pointer("/details/error")
        .and_then(Value::as_str)
        .or_else(|| item.get("message").and_then(Value::as_str))
        .unwrap_or("unknown")
        .to_owned()
}

impl ExpoPush {
    /// Expo's push service at `url`, its receipts next to it.
    pub fn new(url: impl Into<String>, access_token: Option<String>, timeout: Duration) -> Self {
        let url = url.into();
        ExpoPush { receipts_url: receipts_url_for(&url), url, access_token, timeout }
    }

    /// The JSON posted: one message per token.
    pub fn body(&self, tokens: &[String], title: &str, body: &str, data: Value) -> Value {
        Value::Array(
            tokens
                .iter()
                .map(|to| json!({ "to": to, "title": title, "body": body, "sound": "default", "data": data }))
                .collect(),
        )
    }

    fn authorization(&self) -> Option<String> {
        self.access_token.as_ref().map(|token| format!("Bearer {token}"))
    }

    /// Sends to every token. Delivered when Expo accepted the request and at least one ticket is
    /// `ok`; a request where every ticket says the phone is gone (or the credentials are bad) is
    /// refused, not retried.
    pub async fn send(&self, http: &HttpClient, tokens: &[String], title: &str, body: &str, data: Value) -> Pushed {
        let failed = |error| Pushed { result: Err(error), tickets: Vec::new(), gone: Vec::new() };
        let answer = http
            .post(Post {
                url: &self.url,
                content_type: "application/json",
                authorization: self.authorization().as_deref(),
                accept_json: true,
                body: self.body(tokens, title, body, data).to_string(),
                timeout: self.timeout,
            })
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => return failed(error),
        };
        if !answer.status.is_success() {
            return failed(SendError::from_status(answer.status, &answer.text));
        }
        let answer: Value = match serde_json::from_str(&answer.text) {
            Ok(answer) => answer,
            Err(e) => return failed(SendError::Temporary(format!("Expo answered something that is not JSON: {e}"))),
        };
        let mut pushed = Pushed { result: Ok(()), tickets: Vec::new(), gone: Vec::new() };
        let mut errors = Vec::new();
        let tickets = answer.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        for (token, ticket) in tokens.iter().zip(&tickets) {
            if ticket.get("status").and_then(Value::as_str) == Some("ok") {
                if let Some(id) = ticket.get("id").and_then(Value::as_str) {
                    pushed.tickets.push((token.clone(), id.to_owned()));
                }
                continue;
            }
            let code = error_code(ticket);
            if code == DEVICE_NOT_REGISTERED {
                pushed.gone.push(token.clone());
            }
            errors.push(code);
        }
        let accepted = tickets.iter().any(|t| t.get("status").and_then(Value::as_str) == Some("ok"));
        if !accepted {
            pushed.result = if !errors.is_empty()
                && errors.iter().all(|e| e == DEVICE_NOT_REGISTERED || e == "InvalidCredentials")
            {
                Err(SendError::Refused(errors.join(", ")))
            } else {
                Err(SendError::Temporary(format!("Expo refused every message: {}", errors.join(", "))))
            };
        }
        pushed
    }

    /// Reads the receipts of `ids` (at most 1000 per request, as Expo takes). A receipt Expo does
    /// not have yet is not in the answer.
    pub async fn receipts(&self, http: &HttpClient, ids: &[String]) -> Result<HashMap<String, Receipt>, SendError> {
        let answer = http
            .post(Post {
                url: &self.receipts_url,
                content_type: "application/json",
                authorization: self.authorization().as_deref(),
                accept_json: true,
                body: json!({ "ids": ids }).to_string(),
                timeout: self.timeout,
            })
            .await?;
        if !answer.status.is_success() {
            return Err(SendError::from_status(answer.status, &answer.text));
        }
        let answer: Value = serde_json::from_str(&answer.text)
            .map_err(|e| SendError::Temporary(format!("Expo answered something that is not JSON: {e}")))?;
        let Some(receipts) = answer.get("data").and_then(Value::as_object) else {
            return Err(SendError::Temporary(format!("Expo's receipts have no data: {answer}")));
        };
        Ok(receipts
            .iter()
            .map(|(id, receipt)| {
                let receipt = if receipt.get("status").and_then(Value::as_str) == Some("ok") {
                    Receipt::Ok
                } else {
                    Receipt::Error(error_code(receipt))
                };
                (id.clone(), receipt)
            })
            .collect())
    }
}
