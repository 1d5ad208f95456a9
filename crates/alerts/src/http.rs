//! The small HTTP client the senders post through: HTTP/1.1 over plain TCP (`http://`) or TLS
//! (`https://`, rustls on the ring provider), trusting the Mozilla roots (`webpki-roots`) and,
//! for a private gateway, the certificates of an extra PEM file.
//!
//! Every request has a deadline covering connecting, the TLS handshake, sending and reading the
//! answer. Redirects are not followed and no proxy is used.

use std::{path::Path, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode, header::HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};

use crate::sms::SendError;

/// The most of an answer that is read (gateways answer with a few hundred bytes).
const ANSWER_LIMIT: usize = 64 * 1024;

/// An HTTP(S) client for the alert senders. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// An extra trusted CA file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CaError(String);

/// One request to post.
#[derive(Debug, Clone)]
pub struct Post<'a> {
    pub url: &'a str,
    pub content_type: &'a str,
    /// The `Authorization` header, when there is one.
    pub authorization: Option<&'a str>,
    /// Also send `Accept: application/json`.
    pub accept_json: bool,
    pub body: String,
    pub timeout: Duration,
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    /// The body as text (lossy UTF-8, at most 64 KiB read).
    pub text: String,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl HttpClient {
    /// A client trusting the Mozilla roots.
    pub fn new() -> Self {
        HttpClient::with_roots(&[])
    }

    /// A client trusting the Mozilla roots and the certificates in the PEM file at `path`
    /// (`PUMPPILOT_ALERTS_CA_FILE`, for a gateway with a private CA or a self-signed certificate).
    pub fn with_ca_file(path: &Path) -> Result<Self, CaError> {
        let pem = std::fs::read(path).map_err(|e| CaError(format!("cannot read {}: {e}", path.display())))?;
        HttpClient::with_ca_pem(&pem).map_err(|CaError(e)| CaError(format!("{}: {e}", path.display())))
    }

    /// A client trusting the Mozilla roots and the certificates in `pem`.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self, CaError> {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CaError(format!("not a PEM certificate file: {e}")))?;
        if certificates.is_empty() {
            return Err(CaError("holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into()));
        }
        let mut roots = RootCertStore::empty();
        for certificate in certificates {
            roots.add(certificate).map_err(|e| CaError(format!("a certificate cannot be trusted: {e}")))?;
        }
        Ok(HttpClient::with_roots(&roots.roots))
    }

    fn with_roots(extra: &[rustls::pki_types::TrustAnchor<'static>]) -> Self {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        roots.roots.extend_from_slice(extra);
        let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_or_http().enable_http1().build();
        HttpClient { client: Client::builder(TokioExecutor::new()).build(connector) }
    }

    /// Posts one request and reads the answer, all within its timeout. Any failure to get an
    /// answer (a bad URL, no connection, an untrusted certificate, the deadline) is
    /// [`SendError::Temporary`]: the outbox tries again later.
    pub async fn post(&self, post: Post<'_>) -> Result<Answer, SendError> {
        let Post { url, content_type, authorization, accept_json, body, timeout } = post;
        let uri: hyper::Uri = url.parse().map_err(|e| SendError::Temporary(format!("bad URL {url}: {e}")))?;
        let header = |value: &str| {
            HeaderValue::from_str(value)
                .map_err(|_| SendError::Temporary("a header holds a forbidden character".into()))
        };
        let mut request =
            Request::builder().method(Method::POST).uri(uri).header(hyper::header::CONTENT_TYPE, header(content_type)?);
        if accept_json {
            request = request.header(hyper::header::ACCEPT, HeaderValue::from_static("application/json"));
        }
        if let Some(authorization) = authorization {
            let mut value = header(authorization)?;
            value.set_sensitive(true);
            request = request.header(hyper::header::AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Temporary(format!("cannot post to {url}: {e}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| SendError::Temporary(format!("{url}: {}", chain(&e))))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok(Answer { status, text: String::from_utf8_lossy(&bytes).into_owned() })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| SendError::Temporary(format!("{url}: no answer within {timeout:?}")))?
    }
}

/// An error with its causes (`client error (Connect): invalid peer certificate: UnknownIssuer`).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
