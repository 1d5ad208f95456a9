//! Reads answered as "unchanged": an API answer the caller already holds comes back as
//! `304 Not Modified`, headers only.
//!
//! The app reads its screens again with every status it receives (every few seconds while it is
//! in front: the motor's status, the line, the devices, two weeks of usage and receipts), on phones
//! that pay for every byte, and most of those reads find nothing changed. So every `GET` under
//! `/api/` that answers 200 with its body whole in memory carries an `ETag`, a hash of that body;
//! a caller that sends it back in `If-None-Match` gets 304 without the body when the body would be
//! the same. The answer is still made in full (the same reads, the same scope and session
//! checks): only the bytes on the wire are saved. The tag is the body's own hash, so every server
//! of a fleet gives the same tag for the same answer, and no version is kept anywhere.
//!
//! `Cache-Control: private, no-cache` lets a browser keep the answer and ask again every time
//! (the dashboard's script then gets a 304 as its cached 200); no shared cache keeps it. The
//! devices' routes (their own serving path, signed answers) and the live event stream (no whole
//! body) have no tag.

use axum::{
    body::{Body, HttpBody as _},
    http::{HeaderValue, Method, Request, Response, StatusCode, header},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use headers::{ETag, HeaderMapExt as _, IfNoneMatch};
use sha2::{Digest as _, Sha256};

/// The largest body tagged. The app's reads are a few kilobytes; a larger answer (a long
/// export) is sent as it is.
const MOST: u64 = 1 << 20;

/// A read that may be answered 304: a `GET` under `/api/`, with what the caller holds, if
/// anything. `None` for any other request, which passes untouched.
pub struct Read(Option<IfNoneMatch>);

impl Read {
    pub fn of(request: &Request<Body>) -> Option<Read> {
        (request.method() == Method::GET && request.uri().path().starts_with("/api/"))
            .then(|| Read(request.headers().typed_get::<IfNoneMatch>()))
    }

    /// The answer tagged, or 304 when the caller holds it already. Anything but a 200 with a
    /// whole body of at most [`MOST`] bytes passes untouched.
    pub async fn answer(self, response: Response<Body>) -> Response<Body> {
        let whole = response.body().size_hint().exact().is_some_and(|n| n <= MOST);
        if response.status() != StatusCode::OK || !whole || response.headers().contains_key(header::ETAG) {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MOST as usize).await else {
            // A body whose size is known and in memory cannot fail; were it to, say so.
            return axum::response::IntoResponse::into_response(crate::error::ApiError::internal());
        };
        let tag = tag_of(&bytes);
        parts.headers.typed_insert(tag.clone());
        parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
        if self.0.is_some_and(|held| !held.precondition_passes(&tag)) {
            parts.status = StatusCode::NOT_MODIFIED;
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::CONTENT_TYPE);
            return Response::from_parts(parts, Body::empty());
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// A strong tag: the first 128 bits of the body's SHA-256, in URL-safe base64.
fn tag_of(body: &[u8]) -> ETag {
    let digest = Sha256::digest(body);
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16])).parse().expect("base64url in quotes is an entity tag")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(if_none_match: Option<&str>, status: StatusCode, body: &'static str) -> Response<Body> {
        let mut request = Request::get("/api/queue");
        if let Some(held) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, held);
        }
        let read = Read::of(&request.body(Body::empty()).unwrap()).expect("a GET under /api/ is a read");
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        read.answer(response).await
    }

    fn etag(response: &Response<Body>) -> Option<String> {
        response.headers().get(header::ETAG).map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn the_same_body_is_answered_304_and_another_body_in_full() {
        let first = read(None, StatusCode::OK, r#"{"waiting":[]}"#).await;
        let tag = etag(&first).expect("a 200 is tagged");
        assert_eq!(tag.len(), 24, "22 characters of base64 in quotes: {tag}");
        assert_eq!(first.headers()[header::CACHE_CONTROL], "private, no-cache");

        let again = read(Some(&tag), StatusCode::OK, r#"{"waiting":[]}"#).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(etag(&again).as_deref(), Some(tag.as_str()));
        assert!(again.headers().get(header::CONTENT_TYPE).is_none());
        assert!(axum::body::to_bytes(again.into_body(), 1).await.unwrap().is_empty());

        // A weak form of the tag, or the tag among others, is the same tag to If-None-Match.
        for held in [format!("W/{tag}"), format!("\"other\", {tag}"), "*".to_owned()] {
            assert_eq!(
                read(Some(&held), StatusCode::OK, r#"{"waiting":[]}"#).await.status(),
                StatusCode::NOT_MODIFIED,
                "{held}"
            );
        }

        let changed = read(Some(&tag), StatusCode::OK, r#"{"waiting":[1]}"#).await;
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(etag(&changed), Some(tag));
        assert_eq!(axum::body::to_bytes(changed.into_body(), 100).await.unwrap(), r#"{"waiting":[1]}"#);

        // A tag that is not one (no quotes) holds nothing.
        assert_eq!(read(Some("garbage"), StatusCode::OK, "{}").await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn errors_and_other_requests_pass_untouched() {
        let refused = read(Some("*"), StatusCode::NOT_FOUND, r#"{"code":"NOT_FOUND"}"#).await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        assert!(etag(&refused).is_none());

        for request in [
            Request::post("/api/queue").body(Body::empty()).unwrap(),
            Request::get("/admin/pump").body(Body::empty()).unwrap(),
            Request::head("/api/queue").body(Body::empty()).unwrap(),
        ] {
            assert!(Read::of(&request).is_none(), "{} {}", request.method(), request.uri());
        }
    }
}
