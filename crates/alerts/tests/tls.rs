//! The senders over HTTPS: a stand-in gateway and a stand-in Expo with a self-signed certificate,
//! trusted through the extra CA setting, that record the exact requests; the same receiver refused
//! by a client that does not trust it; a receiver that never answers; CA files that cannot be used.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    routing::any,
};
use pumppilot_alerts::{BodyFormat, ExpoPush, HttpClient, SendError, SmsGateway};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::ring,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
    server::TlsStream,
};

/// One recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: Method,
    path: String,
    content_type: Option<String>,
    accept: Option<String>,
    authorization: Option<String>,
    body: String,
}

/// A TLS listener for `axum::serve` that notes every handshake that failed and goes on.
struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
    failed: Arc<Mutex<Vec<String>>>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else { continue };
            match self.tls.accept(tcp).await {
                Ok(stream) => return (stream, address),
                Err(e) => self.failed.lock().unwrap().push(e.to_string()),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A stand-in HTTPS receiver with a fresh self-signed certificate for `127.0.0.1` and
/// `localhost`; answers every request with `answer`.
#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    failed: Arc<Mutex<Vec<String>>>,
    answer: (StatusCode, String),
    /// The certificate, PEM: what a client must trust.
    pem: String,
    port: u16,
}

impl Receiver {
    async fn start(status: StatusCode, answer: &str) -> Receiver {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let chain = vec![CertificateDer::from(certified.cert.der().to_vec())];
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a server config");
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            seen: Arc::default(),
            failed: Arc::default(),
            answer: (status, answer.to_owned()),
            pem: certified.cert.pem(),
            port: tcp.local_addr().unwrap().port(),
        };
        async fn record(
            State(r): State<Receiver>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> (StatusCode, String) {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            r.seen.lock().unwrap().push(Seen {
                method,
                path: uri.path().to_owned(),
                content_type: header("content-type"),
                accept: header("accept"),
                authorization: header("authorization"),
                body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
            });
            r.answer.clone()
        }
        let app = Router::new().route("/{*path}", any(record)).with_state(receiver.clone());
        let listener =
            TlsListener { tcp, tls: TlsAcceptor::from(Arc::new(config)), failed: Arc::clone(&receiver.failed) };
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn gateway(url: String) -> SmsGateway {
    SmsGateway {
        url,
        template: r#"{"to":"{to}","text":"{text}","ref":"{id}","coding":"{encoding}"}"#.to_owned(),
        format: BodyFormat::Json,
        authorization: Some("Basic dXNlcjpwYXNz".to_owned()),
        from: "PumpPilot".to_owned(),
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn an_sms_goes_over_https_to_a_gateway_whose_certificate_is_trusted() {
    let receiver = Receiver::start(StatusCode::OK, r#"{"status":"queued"}"#).await;
    let http = HttpClient::with_ca_pem(receiver.pem.as_bytes()).unwrap();
    let sms = gateway(receiver.url("127.0.0.1", "/v1/messages"));

    sms.send(&http, "+8801711000001", "আপনার পালা এসেছে", "n-1").await.unwrap();

    assert_eq!(
        receiver.seen(),
        vec![Seen {
            method: Method::POST,
            path: "/v1/messages".to_owned(),
            content_type: Some("application/json".to_owned()),
            accept: None,
            authorization: Some("Basic dXNlcjpwYXNz".to_owned()),
            body: r#"{"to":"+8801711000001","text":"আপনার পালা এসেছে","ref":"n-1","coding":"ucs2"}"#.to_owned(),
        }]
    );
    assert!(receiver.failed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_push_goes_over_https_by_host_name_to_expo_whose_certificate_is_trusted_from_a_ca_file() {
    let receiver = Receiver::start(StatusCode::OK, r#"{"data":[{"status":"ok","id":"ticket-1"}]}"#).await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &receiver.pem).unwrap();
    let http = HttpClient::with_ca_file(file.path()).unwrap();
    let push = ExpoPush::new(
        receiver.url("localhost", "/--/api/v2/push/send"),
        Some("expo-secret".to_owned()),
        Duration::from_secs(10),
    );
    let tokens = vec!["ExponentPushToken[karim]".to_owned()];

    push.send(&http, &tokens, "Your turn", "The pump is yours: 30 min.", json!({"kind": "RUN_STARTED"}))
        .await
        .result
        .unwrap();

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].path, "/--/api/v2/push/send");
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[0].accept.as_deref(), Some("application/json"));
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer expo-secret"));
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body,
        json!([{
            "to": "ExponentPushToken[karim]",
            "title": "Your turn",
            "body": "The pump is yours: 30 min.",
            "sound": "default",
            "data": {"kind": "RUN_STARTED"},
        }])
    );
}

#[tokio::test]
async fn a_gateway_whose_certificate_is_not_trusted_is_refused_before_anything_is_sent_and_tried_again_later() {
    let receiver = Receiver::start(StatusCode::OK, "{}").await;
    // Trusts the Mozilla roots only.
    let http = HttpClient::new();
    let sms = gateway(receiver.url("127.0.0.1", "/send"));

    let error = sms.send(&http, "+8801711000001", "Your turn came.", "n-2").await.unwrap_err();

    let SendError::Temporary(message) = &error else { panic!("not retried: {error}") };
    assert!(message.contains(&receiver.url("127.0.0.1", "/send")), "{message}");
    assert!(message.contains("invalid peer certificate") && message.contains("UnknownIssuer"), "{message}");
    assert!(receiver.seen().is_empty());
    // Another receiver's certificate does not help either.
    let other = Receiver::start(StatusCode::OK, "{}").await;
    let wrong = HttpClient::with_ca_pem(other.pem.as_bytes()).unwrap();
    let error = sms.send(&wrong, "+8801711000001", "Your turn came.", "n-2").await.unwrap_err();
    assert!(matches!(&error, SendError::Temporary(m) if m.contains("invalid peer certificate")), "{error}");
    assert!(receiver.seen().is_empty());
}

#[tokio::test]
async fn a_gateway_that_refuses_over_https_is_not_retried_and_one_in_trouble_is() {
    let refusing = Receiver::start(StatusCode::BAD_REQUEST, "bad number").await;
    let http = HttpClient::with_ca_pem(refusing.pem.as_bytes()).unwrap();
    let error = gateway(refusing.url("127.0.0.1", "/send")).send(&http, "+1", "x", "n-3").await.unwrap_err();
    assert_eq!(error, SendError::Refused("400 Bad Request: bad number".to_owned()));

    let failing = Receiver::start(StatusCode::SERVICE_UNAVAILABLE, "busy").await;
    let http = HttpClient::with_ca_pem(failing.pem.as_bytes()).unwrap();
    let error = gateway(failing.url("127.0.0.1", "/send")).send(&http, "+1", "x", "n-3").await.unwrap_err();
    assert_eq!(error, SendError::Temporary("503 Service Unavailable: busy".to_owned()));
}

#[tokio::test]
async fn a_gateway_that_never_answers_is_given_up_at_the_timeout_and_tried_again_later() {
    // Connections are taken by the kernel's backlog but never accepted: the handshake never ends.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut sms = gateway(format!("https://127.0.0.1:{}/send", silent.local_addr().unwrap().port()));
    sms.timeout = Duration::from_millis(300);

    let error = sms.send(&HttpClient::new(), "+1", "x", "n-4").await.unwrap_err();

    assert!(matches!(&error, SendError::Temporary(m) if m.contains("no answer within 300ms")), "{error}");
}

#[test]
fn a_ca_file_that_cannot_be_used_is_a_clear_error() {
    let missing = std::path::Path::new("/nonexistent/gateway-ca.pem");
    let error = HttpClient::with_ca_file(missing).unwrap_err().to_string();
    assert!(error.starts_with("cannot read /nonexistent/gateway-ca.pem"), "{error}");

    let error = HttpClient::with_ca_pem(b"not a certificate\n").unwrap_err().to_string();
    assert!(error.contains("no PEM certificate"), "{error}");

    let error = HttpClient::with_ca_pem(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a PEM certificate file"), "{error}");
}
