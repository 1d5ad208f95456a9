//! SMS: how many parts a text takes, and the HTTP gateway that sends it.
//!
//! A text that fits the GSM 03.38 alphabet goes as GSM-7: 160 characters in one message, 153 per
//! part when split (the rest carries the joining header); the extension characters (`^{}\[~]|€`
//! and form feed) take two. Anything else — Bangla — goes as UCS-2 (Unicode): 70 UTF-16 units in
//! one message, 67 per part.

use std::time::Duration;

use hyper::StatusCode;

use crate::http::{HttpClient, Post};

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// The name the gateway template gets (`{encoding}`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
        }
    }
}

/// A text's size as an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    /// Messages the text is sent as.
    pub parts: usize,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// The septets a character takes in GSM-7, or `None` when it is not in the alphabet.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Counts the parts `text` takes.
pub fn parts(text: &str) -> Parts {
    let septets: Option<usize> = text.chars().map(gsm7_septets).sum();
    let (encoding, units, single, each) = match septets {
        Some(septets) => (Encoding::Gsm7, septets, 160, 153),
        None => (Encoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let parts = if units <= single { 1 } else { units.div_ceil(each) };
    Parts { encoding, units, parts }
}

/// How the gateway's request body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: values are escaped as JSON string contents (the template has the quotes).
    Json,
    /// `application/x-www-form-urlencoded`: values are percent-encoded (UTF-8).
    Form,
}

impl BodyFormat {
    pub const fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
        }
    }

    fn escape(self, value: &str) -> String {
        match self {
            BodyFormat::Json => {
                let quoted = serde_json::to_string(value).expect("a string serializes");
                quoted[1..quoted.len() - 1].to_owned()
            }
            BodyFormat::Form => value
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect(),
        }
    }
}

/// An HTTP SMS gateway: where to post, what to post, and how to sign in.
///
/// The template is the request body with placeholders: `{to}` (E.164), `{text}`, `{id}` (the
/// notification's id, for gateways that drop a repeated message id), `{from}` (the sender name),
/// `{encoding}` (`gsm7` or `ucs2`) and `{parts}`.
#[derive(Debug, Clone)]
pub struct SmsGateway {
    pub url: String,
    pub template: String,
    pub format: BodyFormat,
    /// The `Authorization` header, e.g. `Bearer …` or `Basic …`.
    pub authorization: Option<String>,
    pub from: String,
    pub timeout: Duration,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (network, timeout, an untrusted certificate, 429, 5xx).
    #[error("temporary: {0}")]
    Temporary(String),
    /// Trying again will not help (4xx: a bad number, bad credentials).
    #[error("refused: {0}")]
    Refused(String),
}

impl SendError {
    pub(crate) fn from_status(status: StatusCode, body: &str) -> SendError {
        let message = format!("{status}: {}", body.chars().take(200).collect::<String>());
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            SendError::Temporary(message)
        } else {
            SendError::Refused(message)
        }
    }
}

impl SmsGateway {
    /// The body posted for one message.
    pub fn body(&self, to: &str, text: &str, id: &str) -> String {
        let size = parts(text);
        let values = [
            ("{to}", to.to_owned()),
            ("{text}", text.to_owned()),
            ("{id}", id.to_owned()),
            ("{from}", self.from.clone()),
            ("{encoding}", size.encoding.as_str().to_owned()),
            ("{parts}", size.parts.to_string()),
        ];
        // One pass over the template, so a value that looks like a placeholder stays as it is.
        let mut body = String::new();
        let mut rest = self.template.as_str();
        'outer: while !rest.is_empty() {
            for (name, value) in &values {
                if let Some(after) = rest.strip_prefix(name) {
                    body.push_str(&self.format.escape(value));
                    rest = after;
                    continue 'outer;
                }
            }
            let c = rest.chars().next().expect("not empty");
            body.push(c);
            rest = &rest[c.len_utf8()..];
        }
        body
    }

    /// Sends one message.
    pub async fn send(&self, http: &HttpClient, to: &str, text: &str, id: &str) -> Result<(), SendError> {
        let answer = http
            .post(Post {
                url: &self.url,
                content_type: self.format.content_type(),
                authorization: self.authorization.as_deref(),
                accept_json: false,
                body: self.body(to, text, id),
                timeout: self.timeout,
            })
            .await?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(SendError::from_status(answer.status, &answer.text))
    }
}
