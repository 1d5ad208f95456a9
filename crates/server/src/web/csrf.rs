//! CSRF tokens for the dashboard's forms: an HMAC, with the server's keyring, of the session the
//! form belongs to. Signed in, that is the session token itself (a token from another session
//! never matches); before sign-in, a random value in its own cookie (`pp_pre`), so the sign-in
//! form cannot be posted from another site either. Every POST to a page route checks it.

use axum::http::{HeaderMap, header};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::keys::Keyring;

/// The cookie that binds a sign-in form to one browser.
pub const PRE_COOKIE: &str = "pp_pre";
/// The form field carrying the token.
pub const FIELD: &str = "_csrf";

/// What a form's token is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// The web session token (cookie `pp_session`).
    Session(&'a str),
    /// The pre-session cookie (`pp_pre`).
    Pre(&'a str),
}

/// The token for forms of this binding.
pub fn token(keyring: &Keyring, binding: Binding<'_>) -> String {
    let input = match binding {
        Binding::Session(session) => format!("csrf\0session\0{session}"),
        Binding::Pre(pre) => format!("csrf\0pre\0{pre}"),
    };
    URL_SAFE_NO_PAD.encode(keyring.hash(&input))
}

/// True when `given` is this binding's token (compared in constant time).
pub fn verify(keyring: &Keyring, binding: Binding<'_>, given: &str) -> bool {
    let expected = token(keyring, binding);
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A browser tells us when a request comes from another site; such a POST is refused whatever
/// its token (defence in depth: the token alone already stops it).
pub fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "cross-site" || site == "same-site";
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").is_none_or(|(_, rest)| rest != host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_one_session() {
        let keys = Keyring::new(b"secret secret secret secret secret");
        let a = token(&keys, Binding::Session("w_a"));
        assert!(verify(&keys, Binding::Session("w_a"), &a));
        assert!(!verify(&keys, Binding::Session("w_b"), &a));
        assert!(!verify(&keys, Binding::Pre("w_a"), &a), "a pre-session token is another kind");
        assert!(!verify(&keys, Binding::Session("w_a"), ""));
        assert!(!verify(&Keyring::new(b"another secret"), Binding::Session("w_a"), &a));
    }
}
