//! The device path: HTTP/1.1 for the devices' polls, read and written here so that a waiting
//! long-poll holds no buffer.
//!
//! hyper keeps an 8 KiB read buffer and an 8 KiB write buffer for as long as a connection lives,
//! and while a request is answered it keeps reading into a second 8 KiB block (the first is still
//! referenced by the request's head) to see the peer close: about 25 KB a connection, most of a
//! long-polling device's cost. Here a connection holds what it is reading only until the request
//! is whole (`httparse` reads the head), the answer only while it is written, and while the
//! answer waits it watches the socket for the peer's close without a buffer (`peek`).
//!
//! What it takes: `GET` and `POST` of [`POLL`] in HTTP/1.1, a head of at most [`HEAD_MAX`] bytes
//! and [`FIELDS_MAX`] fields, a body of at most [`BODY_MAX`] bytes with a `Content-Length`, no
//! `Transfer-Encoding`, `Expect` or `Upgrade`, `Connection` only `keep-alive` or `close`. Every
//! other request, and the rest of its connection, goes to hyper with the bytes read
//! (`super::hyper_connection`): hyper's limits and answers stay the only ones for everything
//! else, and a caller learns nothing new here.
//!
//! The request goes through the same router (and so the same layers and handlers) as any other;
//! the answer is written as hyper writes it: the status line, the fields in order, `connection:
//! close` when the connection closes after it, the `content-length`, the `date`, the body.

use std::{net::SocketAddr, sync::Arc, time::SystemTime};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header, response::Parts},
    response::Response,
};
use bytes::{Buf, BytesMut};
use pumppilot_protocol::link;
use std::convert::Infallible;
use tokio::{io::AsyncWriteExt, net::TcpStream, sync::watch};

use super::{Senders, Sending, Shared};

/// The signed link's header names (`crate::link`).
const COUNTER: HeaderName = HeaderName::from_static(link::COUNTER_HEADER);
const MAC: HeaderName = HeaderName::from_static(link::MAC_HEADER);

/// The device poll's path (`routes::device`).
pub const POLL: &str = "/api/esp32/poll";
/// The longest head read here (a device's poll is about 300 bytes); a longer one goes to hyper.
pub const HEAD_MAX: usize = 8 * 1024;
/// The most header fields read here; more go to hyper.
pub const FIELDS_MAX: usize = 32;
/// The largest body read here (a poll's JSON report is about 200 bytes); a larger one goes to
/// hyper.
pub const BODY_MAX: usize = 4 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 1024;

/// Serves one connection from `peer` until it closes, answering device polls here and handing
/// anything else to hyper.
pub async fn connection<S>(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared<S>>, stop: watch::Receiver<bool>)
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    // Bytes read and not yet answered: empty (no allocation) while an answer waits.
    let mut read = BytesMut::new();
    // The connection's own handle on the router, cloned once rather than for every request (a
    // clone of the layered router counts references every connection shares).
    let mut router = shared.router.clone();
    // Among its address's senders while a request is on its way (`next_request`).
    let mut sending = None;
    // The stop and the head's deadline are armed once a connection and stay armed between
    // requests, so a request costs no timer and no waiter in the stop's list, which every
    // connection shares: the deadline moves later in place (tokio's timer moves a later deadline
    // without touching its wheel).
    let mut watching = stop.clone();
    let stopped = super::stopping(&mut watching);
    let head_due = tokio::time::sleep(shared.header_timeout);
    tokio::pin!(stopped, head_due);
    loop {
        // The head (and a poll's small body) must arrive within the timeout, counted from the
        // end of the last answer, so a connection left idle is closed as hyper closes its own
        // (on hyper's path `BodyWithin` times a body likewise; a device's body is a few hundred bytes).
        let since = tokio::time::Instant::now();
        head_due.as_mut().reset(since + shared.header_timeout);
        // A request already read is taken first (nothing else polled, no waiter registered for
        // room, nothing drawn at random), and one that came is served rather than closed for room
        // or the stop. The wait for room is made anew each time: a connection at work (a
        // long-poll) is not woken when room is wanted.
        let next = tokio::select! {
            biased;
            next = next_request(&mut stream, &mut read, peer, &mut sending, &shared.senders) => next,
            // No whole head in time: closed without an answer, as hyper does.
            () = &mut head_due => return,
            () = &mut stopped => return,
            // Every slot taken and this one idle past its grace: closed to make room.
            () = shared.slots.idle_shed(since) => return,
        };
        let (request, keep_alive) = match next {
            Ok(Next::Poll { request, keep_alive }) => (request, keep_alive),
            Ok(Next::Other) => {
                // Boxed: the device connections' tasks keep no room for hyper's connection.
                let read = std::mem::take(&mut read).freeze();
                return Box::pin(super::hyper_connection(stream, read, peer, &shared, stop, sending)).await;
            }
            // Closed, a socket error, or too many requests on their way from its address:
            // closed without an answer, as hyper does.
            Ok(Next::Closed) | Err(_) => return,
        };
        let answered = tokio::select! {
            biased;
            answered = tower::ServiceExt::oneshot(&mut router, request) => answered,
            // The device went away: its request is dropped (a long-poll stops waiting).
            () = gone(&stream) => return,
        };
        let response = match answered {
            Ok(response) => response,
            Err(never) => match never {},
        };
        // A server shutting down closes each connection after the answer in flight.
        let keep_alive = keep_alive && !*stop.borrow();
        let Ok(keep_alive) = send(&mut stream, response, keep_alive).await else { return };
        if !keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// What a connection sends next.
// Returned once a request and taken apart at once: boxing the request would cost an allocation a
// poll for nothing.
#[allow(clippy::large_enum_variant)]
enum Next {
    /// A device poll, whole; `keep_alive` is false when it asked to close after the answer.
    Poll { request: Request, keep_alive: bool },
    /// Anything else: hyper's.
    Other,
    /// The peer closed.
    Closed,
}

/// Reads until `read` holds a whole device poll (cut from it), or shows that the connection is
/// hyper's. A request not whole in the bytes read counts the connection among its address's
/// `senders` (`sending`) until it is in; past the address's bound, an error. A poll whole in what
/// was read (a board's poll, a few hundred bytes, comes in one read) was never on its way and is
/// not counted: the device path takes no lock for the bound. Cancel-safe: the bytes read stay in
/// `read`, the count in `sending`.
async fn next_request(
    stream: &mut TcpStream,
    read: &mut BytesMut,
    peer: SocketAddr,
    sending: &mut Option<Sending>,
    senders: &Arc<Senders>,
) -> std::io::Result<Next> {
    loop {
        if !read.is_empty() {
            let parsed = parse(read, peer);
            if sending.is_none() && !matches!(parsed, Parsed::Poll { .. }) {
                let begun = senders.begin(peer.ip());
                *sending = Some(begun.ok_or_else(|| std::io::Error::other("too many requests on their way"))?);
            }
            match parsed {
                Parsed::Partial => {}
                Parsed::Other => return Ok(Next::Other),
                Parsed::Poll { request, length, keep_alive } => {
                    *sending = None;
                    read.advance(length);
                    // The buffer goes; bytes of a request sent behind this one (pipelined) are
                    // kept in one of their own size.
                    *read = if read.is_empty() { BytesMut::new() } else { BytesMut::from(&read[..]) };
                    return Ok(Next::Poll { request, keep_alive });
                }
            }
        }
        // Waiting takes no buffer (and `poll_read_ready` no future of its own: `readable`'s
        // would be part of every device connection's task).
        std::future::poll_fn(|cx| stream.poll_read_ready(cx)).await?;
        match read_some(stream, read) {
            Ok(0) => return Ok(Next::Closed),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}

/// Appends what the socket holds (up to [`READ_CHUNK`] bytes) to `read`, through a buffer on the
/// stack: `read` grows by what came, and a read that finds nothing allocates nothing.
fn read_some(stream: &TcpStream, read: &mut BytesMut) -> std::io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let n = stream.try_read(&mut chunk)?;
    read.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Returns when the peer closes (or resets) the connection; never when it sends more (the next
/// request waits its turn in the socket).
async fn gone(stream: &TcpStream) {
    let mut byte = [0u8; 1];
    // `poll_peek`, not `peek`: this future is part of every device connection's task while an
    // answer is made (a long-poll's whole wait), and `peek`'s is ten times its size.
    let peeked = std::future::poll_fn(|cx| stream.poll_peek(cx, &mut tokio::io::ReadBuf::new(&mut byte))).await;
    match peeked {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// What the bytes read so far are.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // as `Next`
enum Parsed {
    /// The start of a device poll (or too little to tell).
    Partial,
    /// Another request, or one this path does not take whole.
    Other,
    /// A whole device poll of `length` bytes, head and body.
    Poll { request: Request, length: usize, keep_alive: bool },
}

/// False as soon as the first bytes are not the start of a poll's request line, so other
/// callers go to hyper with their first bytes.
fn may_be_poll(bytes: &[u8]) -> bool {
    ["GET ", "POST "].into_iter().any(|method| {
        let line = method.bytes().chain(POLL.bytes());
        let end = method.len() + POLL.len();
        bytes.iter().copied().zip(line).all(|(got, want)| got == want)
            && bytes.get(end).is_none_or(|next| matches!(next, b'?' | b' '))
    })
}

/// Reads a device poll from the start of `bytes`.
fn parse(bytes: &[u8], peer: SocketAddr) -> Parsed {
    if !may_be_poll(bytes) {
        return Parsed::Other;
    }
    let mut fields = [httparse::EMPTY_HEADER; FIELDS_MAX];
    let mut head = httparse::Request::new(&mut fields);
    let head_length = match head.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if bytes.len() < HEAD_MAX => return Parsed::Partial,
        // Too long, too many fields, or not HTTP: hyper reads it and answers as it does.
        _ => return Parsed::Other,
    };
    if head_length > HEAD_MAX || head.version != Some(1) {
        return Parsed::Other;
    }
    let method = match head.method {
        Some("GET") => Method::GET,
        Some("POST") => Method::POST,
        _ => return Parsed::Other,
    };
    let Some(target) = head.path else { return Parsed::Other };
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    let (mut body_length, mut keep_alive) = (None, true);
    for field in head.headers.iter() {
        // The link's own names, as constants: `HeaderName::from_bytes` copies a name it does not
        // know to the heap, twice a signed poll.
        let name = match field.name.as_bytes() {
            n if n.eq_ignore_ascii_case(link::COUNTER_HEADER.as_bytes()) => COUNTER,
            n if n.eq_ignore_ascii_case(link::MAC_HEADER.as_bytes()) => MAC,
            n => match HeaderName::from_bytes(n) {
                Ok(name) => name,
                Err(_) => return Parsed::Other,
            },
        };
        if name == header::CONTENT_LENGTH {
            // One length, in digits: anything else is hyper's to judge.
            let digits = field.value;
            let length = match std::str::from_utf8(digits).ok().filter(|d| d.bytes().all(|b| b.is_ascii_digit())) {
                Some(d) if body_length.is_none() => d.parse::<usize>().ok(),
                _ => None,
            };
            match length {
                Some(length) if length <= BODY_MAX => body_length = Some(length),
                _ => return Parsed::Other,
            }
        } else if name == header::CONNECTION {
            for option in field.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if option.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if !option.eq_ignore_ascii_case(b"keep-alive") {
                    return Parsed::Other;
                }
            }
        } else if name == header::TRANSFER_ENCODING || name == header::EXPECT || name == header::UPGRADE {
            return Parsed::Other;
        }
        let Ok(value) = HeaderValue::from_bytes(field.value) else { return Parsed::Other };
        headers.append(name, value);
    }
    let length = head_length + body_length.unwrap_or(0);
    if bytes.len() < length {
        return Parsed::Partial;
    }
    let Ok(uri) = Uri::from_maybe_shared(Bytes::copy_from_slice(target.as_bytes())) else { return Parsed::Other };
    let body = match body_length {
        Some(1..) => Body::from(Bytes::copy_from_slice(&bytes[head_length..length])),
        _ => Body::empty(),
    };
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    request.extensions_mut().insert(ConnectInfo(peer));
    Parsed::Poll { request, length, keep_alive }
}

/// Writes `response` whole; false when the connection closes after it (the request or the
/// answer said `Connection: close`).
async fn send(stream: &mut TcpStream, response: Response, keep_alive: bool) -> std::io::Result<bool> {
    let (head, body) = response.into_parts();
    let keep_alive = keep_alive && !head.headers.get_all(header::CONNECTION).iter().any(|v| has_option(v, "close"));
    // A device's answer is a few hundred bytes, whole already (`link::Signer` reads it to sign).
    let body = whole_body(body, usize::MAX).await.map_err(std::io::Error::other)?;
    stream.write_all(&encode(head, &body, keep_alive, SystemTime::now())).await?;
    Ok(keep_alive)
}

/// A body's bytes, at most `limit` of them (else an error). A body in one piece (every answer
/// of the device routes: JSON written whole) is handed over as it is; any other is collected, in
/// a future of its own: this one is part of every device connection's task, at its largest
/// state's size, for as long as the connection lives.
pub(crate) async fn whole_body(body: Body, limit: usize) -> Result<Bytes, axum::Error> {
    match body_now(body, limit) {
        BodyNow::Whole(bytes) => Ok(bytes),
        BodyNow::Failed(err) => Err(err),
        BodyNow::Partly { first, rest } => Box::pin(rest_of_body(first, rest, limit)).await,
    }
}

/// What a body holds without waiting ([`body_now`]).
pub(crate) enum BodyNow {
    /// All of it.
    Whole(Bytes),
    /// Its `first` bytes (maybe none), and the `rest` still to come.
    Partly { first: Bytes, rest: Body },
    /// It failed, or it is over the limit.
    Failed(axum::Error),
}

/// As much of a body as it holds now, at most `limit` bytes: the whole of a body in one piece
/// (every answer of the device routes), so the answer is sealed and written without a future of
/// its own; else its first bytes and the rest, for [`rest_of_body`].
pub(crate) fn body_now(mut body: Body, limit: usize) -> BodyNow {
    use axum::body::HttpBody as _;
    if body.is_end_stream() {
        return BodyNow::Whole(Bytes::new());
    }
    // Asked once without a task to wake: a body that is not ready is asked again, with one, by
    // `rest_of_body`.
    let mut nobody = std::task::Context::from_waker(std::task::Waker::noop());
    let frame = match std::pin::Pin::new(&mut body).poll_frame(&mut nobody) {
        std::task::Poll::Pending => return BodyNow::Partly { first: Bytes::new(), rest: body },
        std::task::Poll::Ready(None) => return BodyNow::Whole(Bytes::new()),
        std::task::Poll::Ready(Some(frame)) => frame,
    };
    let first = match frame {
        Ok(frame) => frame.into_data().unwrap_or_default(),
        Err(err) => return BodyNow::Failed(err),
    };
    if first.len() > limit {
        return BodyNow::Failed(axum::Error::new("length limit exceeded"));
    }
    match body.is_end_stream() {
        true => BodyNow::Whole(first),
        false => BodyNow::Partly { first, rest: body },
    }
}

/// The `first` bytes of a body and its `rest`, at most `limit` bytes in all (else an error).
pub(crate) async fn rest_of_body(first: Bytes, rest: Body, limit: usize) -> Result<Bytes, axum::Error> {
    let rest = axum::body::to_bytes(rest, limit - first.len()).await?;
    if first.is_empty() {
        return Ok(rest);
    }
    let mut all = BytesMut::with_capacity(first.len() + rest.len());
    all.extend_from_slice(&first);
    all.extend_from_slice(&rest);
    Ok(all.freeze())
}

/// The answer's bytes, as hyper 1 writes them for an HTTP/1.1 request: the status line (`200 OK`,
/// or the code and its canonical reason), the fields in order with the values of `connection`
/// on one line, `connection: close` when the connection closes after it, the body's
/// `content-length` (where the answer names one, else after the fields), the `date` unless the
/// answer has one, then the body. The body is whole, so it always goes with its length (no
/// `transfer-encoding`, no trailers).
fn encode(mut head: Parts, body: &[u8], keep_alive: bool, now: SystemTime) -> Vec<u8> {
    if !keep_alive {
        match head.headers.entry(header::CONNECTION) {
            header::Entry::Occupied(mut entry) => {
                if !entry.iter().any(|value| has_option(value, "close")) {
                    entry.append(HeaderValue::from_static("close"));
                }
            }
            header::Entry::Vacant(entry) => {
                entry.insert(HeaderValue::from_static("close"));
            }
        }
    }
    let mut out = Vec::with_capacity(256 + body.len());
    let status = head.status;
    if status == StatusCode::OK && head.extensions.get::<hyper::ext::ReasonPhrase>().is_none() {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        match head.extensions.get::<hyper::ext::ReasonPhrase>() {
            Some(reason) => out.extend_from_slice(reason.as_bytes()),
            None => out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    let bodyless = status.is_informational() || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    let length = |out: &mut Vec<u8>| {
        use std::io::Write as _;
        let _ = write!(out, "content-length: {}\r\n", body.len());
    };
    let (mut wrote_length, mut wrote_date) = (false, false);
    // The values of one name come one after the other; `connection`'s go on one line.
    let mut in_connection = false;
    for (name, value) in head.headers.iter() {
        let more_of_connection = std::mem::replace(&mut in_connection, *name == header::CONNECTION);
        match *name {
            header::CONTENT_LENGTH => {
                if !bodyless && !wrote_length {
                    length(&mut out);
                }
                wrote_length = true;
                continue;
            }
            header::TRANSFER_ENCODING | header::TRAILER => continue,
            header::CONNECTION if more_of_connection => {
                // Back over the line's end, and on with this value.
                out.truncate(out.len() - 2);
                out.extend_from_slice(b", ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
                continue;
            }
            header::DATE => wrote_date = true,
            _ => {}
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !wrote_length && !bodyless {
        length(&mut out);
    }
    if !wrote_date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(&date(now));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !bodyless {
        out.extend_from_slice(body);
    }
    out
}

/// `now` as an HTTP date, formatted once a second per thread (as hyper keeps its own).
fn date(now: SystemTime) -> [u8; 29] {
    thread_local! {
        static FORMATTED: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((u64::MAX, [0; 29])) };
    }
    let second = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    FORMATTED.with(|formatted| {
        let (at, text) = formatted.get();
        if at == second {
            return text;
        }
        let mut text = [b' '; 29];
        let fresh = httpdate::fmt_http_date(now);
        text[..fresh.len().min(29)].copy_from_slice(&fresh.as_bytes()[..fresh.len().min(29)]);
        formatted.set((second, text));
        text
    })
}

/// The comma-separated `value` names `option` (`Connection: keep-alive, close`).
fn has_option(value: &HeaderValue, option: &str) -> bool {
    value.as_bytes().split(|b| *b == b',').any(|o| o.trim_ascii().eq_ignore_ascii_case(option.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, time::SystemTime};

    use axum::{
        body::Body,
        http::{HeaderValue, StatusCode, header},
        response::Response,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{BODY_MAX, FIELDS_MAX, HEAD_MAX, Parsed, encode, parse};

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 4000))
    }

    fn poll_of(bytes: &[u8]) -> (axum::extract::Request, usize, bool) {
        match parse(bytes, peer()) {
            Parsed::Poll { request, length, keep_alive } => (request, length, keep_alive),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
        }
    }

    fn is_other(bytes: &[u8]) -> bool {
        matches!(parse(bytes, peer()), Parsed::Other)
    }

    fn is_partial(bytes: &[u8]) -> bool {
        matches!(parse(bytes, peer()), Parsed::Partial)
    }

    #[test]
    fn a_device_poll_is_read_here_whole() {
        let get = b"GET /api/esp32/poll?ready=1&wait=5000&seq=3 HTTP/1.1\r\nHost: pumppilot\r\nAuthorization: Bearer pp_dev_x\r\nX-Two: a\r\nx-two: b\r\n\r\n";
        let (request, length, keep_alive) = poll_of(get);
        assert_eq!((length, keep_alive), (get.len(), true));
        assert_eq!(request.method(), "GET");
        assert_eq!(request.uri().path(), "/api/esp32/poll");
        assert_eq!(request.uri().query(), Some("ready=1&wait=5000&seq=3"));
        assert_eq!(request.version(), axum::http::Version::HTTP_11);
        assert_eq!(request.headers()["authorization"], "Bearer pp_dev_x");
        let two: Vec<_> = request.headers().get_all("x-two").iter().collect();
        assert_eq!(two, ["a", "b"], "fields in order, names lowercased");
        assert_eq!(request.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().unwrap().0, peer());
        assert!(axum::body::HttpBody::is_end_stream(request.body()));

        // The link's headers, in any case, under their names.
        let signed = b"GET /api/esp32/poll HTTP/1.1\r\nX-PumpPilot-Counter: 7\r\nx-pumppilot-mac: ab\r\nX-PumpPilot-Macs: c\r\n\r\n";
        let (request, ..) = poll_of(signed);
        assert_eq!(request.headers()["x-pumppilot-counter"], "7");
        assert_eq!(request.headers()["x-pumppilot-mac"], "ab");
        assert_eq!(request.headers()["x-pumppilot-macs"], "c");
        assert_eq!(request.headers().len(), 3);

        // A JSON report, and the next request already behind it (pipelined).
        let post = b"POST /api/esp32/poll HTTP/1.1\r\ncontent-length: 14\r\nconnection: keep-alive, close\r\n\r\n{\"ready\":true}GET /api/esp32/poll HTTP/1.1\r\n";
        let (request, length, keep_alive) = poll_of(post);
        assert_eq!(&post[length..], b"GET /api/esp32/poll HTTP/1.1\r\n");
        assert!(!keep_alive, "asked to close");
        assert_eq!(request.method(), "POST");
        assert_eq!(axum::body::HttpBody::size_hint(request.body()).exact(), Some(14));
    }

    #[test]
    fn the_first_bytes_of_another_request_go_to_hyper_at_once() {
        for other in [
            &b"GET /healthz"[..],
            b"GET /api/esp32/rfid",
            b"GET /api/esp32/pollx",
            b"POST /api/auth",
            b"G /",
            b"OPTIONS /api/esp32/poll",
            b"HEAD /api/esp32/poll",
            b"\x16\x03\x01",
        ] {
            assert!(is_other(other), "{:?}", String::from_utf8_lossy(other));
        }
        for start in [
            &b"G"[..],
            b"GET /api/esp",
            b"POST /api/esp32/poll",
            b"GET /api/esp32/poll?",
            b"GET /api/esp32/poll HTTP/1.1\r\nhost: x\r\n",
        ] {
            assert!(is_partial(start), "{:?}", String::from_utf8_lossy(start));
        }
        let body_to_come = b"POST /api/esp32/poll HTTP/1.1\r\ncontent-length: 5\r\n\r\n{}";
        assert!(is_partial(body_to_come));
    }

    /// A device connection's task is its future, at its largest state's size, for as long as it
    /// lives (a long-poll's whole wait included): what waits for the socket is polled in place
    /// (`poll_read_ready`, `poll_peek`: the futures of `readable` and `peek` are 144 and 216 bytes
    /// more) and an answer's body that is not whole is collected in a future of its own (1,592
    /// bytes before, with axum's router; 1,920 a task with the server's).
    #[test]
    fn a_device_connection_keeps_a_small_future() {
        use std::sync::Arc;

        use tokio::{net::TcpStream, sync::watch};

        use super::super::Shared;
        fn size4<A, B, C, D, F: std::future::Future>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
            size_of::<F>()
        }
        let connection = size4(
            |stream: TcpStream, peer: SocketAddr, shared: Arc<Shared<axum::Router>>, stop: watch::Receiver<bool>| {
                super::connection(stream, peer, shared, stop)
            },
        );
        assert!(connection <= 1408, "a device connection's future: {connection} bytes");
    }

    #[test]
    fn a_poll_this_path_does_not_take_whole_is_hypers() {
        let with = |fields: &str| format!("GET /api/esp32/poll HTTP/1.1\r\nhost: x\r\n{fields}\r\n");
        for refused in [
            "GET /api/esp32/poll HTTP/1.0\r\n\r\n".to_string(),
            "GET http://x/api/esp32/poll HTTP/1.1\r\n\r\n".to_string(),
            "GET /api/esp32/poll HTTP/1.1\r\nbad field\r\n\r\n".to_string(),
            with("transfer-encoding: chunked\r\n"),
            with("expect: 100-continue\r\n"),
            with("upgrade: websocket\r\nconnection: upgrade\r\n"),
            with("connection: upgrade\r\n"),
            with("content-length: 1\r\ncontent-length: 1\r\n"),
            with("content-length: +1\r\n"),
            with(&format!("content-length: {}\r\n", BODY_MAX + 1)),
            with(&"x-f: 1\r\n".repeat(FIELDS_MAX)),
            with(&format!("x-big: {}\r\n", "b".repeat(HEAD_MAX))),
        ] {
            assert!(is_other(refused.as_bytes()), "{refused:?}");
        }
        // A head still coming past the limit is hyper's too.
        assert!(is_other(format!("GET /api/esp32/poll HTTP/1.1\r\nx-big: {}", "b".repeat(HEAD_MAX)).as_bytes()));
    }

    /// What hyper writes for `response` to a `GET` (its own connection, on an in-memory pipe).
    async fn hyper_writes(request: &'static [u8], response: fn() -> Response) -> Vec<u8> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let service =
            hyper::service::service_fn(move |_| std::future::ready(Ok::<_, std::convert::Infallible>(response())));
        let serving =
            hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(server), service);
        let serving = tokio::spawn(serving);
        let mut client = client;
        client.write_all(request).await.unwrap();
        // Read until the answer is whole: its head, then as many bytes as it says.
        let mut written = Vec::new();
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 16];
            let mut answer = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(head) = answer.parse(&written).unwrap() {
                let length = answer.headers.iter().find(|f| f.name == "content-length");
                let length: usize = length.map_or(0, |f| std::str::from_utf8(f.value).unwrap().parse().unwrap());
                if written.len() >= head + length {
                    break;
                }
            }
            assert!(client.read_buf(&mut written).await.unwrap() > 0, "hyper closed: {written:?}");
        }
        serving.abort();
        written
    }

    fn without_date(bytes: &[u8]) -> String {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let head: Vec<_> =
            head.split("\r\n").map(|line| if line.starts_with("date: ") { "date: (now)" } else { line }).collect();
        format!("{}\r\n\r\n{body}", head.join("\r\n"))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_one_piece_or_many() {
        use super::whole_body;
        let one = Body::from(r#"{"motor":"ON"}"#);
        assert_eq!(whole_body(one, 1024).await.unwrap(), r#"{"motor":"ON"}"#);
        assert_eq!(whole_body(Body::empty(), 0).await.unwrap(), "");
        assert!(whole_body(Body::from("12345"), 4).await.is_err(), "over the limit");
        let pieces = futures_util::stream::iter(["{\"a\"", ":", "1}"].map(Ok::<_, std::io::Error>));
        assert_eq!(whole_body(Body::from_stream(pieces), 1024).await.unwrap(), "{\"a\":1}");
        let pieces = futures_util::stream::iter(["12", "345"].map(Ok::<_, std::io::Error>));
        assert!(whole_body(Body::from_stream(pieces), 4).await.is_err(), "over the limit, in pieces");
    }

    #[tokio::test]
    async fn answers_are_written_as_hyper_writes_them() {
        fn json(status: StatusCode, body: &'static str) -> Response {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        type Answer = fn() -> Response;
        let answers: [(&str, Answer); 7] = [
            ("ok", || json(StatusCode::OK, r#"{"motor":"ON","seq":3}"#)),
            ("an error with retry-after", || {
                let mut response = json(StatusCode::SERVICE_UNAVAILABLE, r#"{"error":{"code":"BUSY"}}"#);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(5));
                response
            }),
            ("signed, fields repeated", || {
                let mut response = json(StatusCode::CONFLICT, r#"{"error":{}}"#);
                let headers = response.headers_mut();
                headers.insert("x-pumppilot-counter", HeaderValue::from(41));
                headers.append(header::VARY, HeaderValue::from_static("origin"));
                headers.append(header::VARY, HeaderValue::from_static("accept"));
                headers.insert("x-request-id", HeaderValue::from_static("abc"));
                response
            }),
            ("its own content-length first", || {
                let mut response = json(StatusCode::OK, "{}");
                response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(2));
                let value = response.headers_mut().remove(header::CONTENT_TYPE).unwrap();
                response.headers_mut().insert(header::CONTENT_TYPE, value);
                response
            }),
            ("empty", || Response::new(Body::empty())),
            ("no content", || json(StatusCode::NO_CONTENT, "")),
            ("connection options of its own", || {
                let mut response = json(StatusCode::UNAUTHORIZED, "{}");
                response.headers_mut().append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
                response.headers_mut().append(header::CONNECTION, HeaderValue::from_static("x-other"));
                response
            }),
        ];
        for (name, answer) in answers {
            for (request, keep_alive) in [
                (&b"GET /api/esp32/poll HTTP/1.1\r\n\r\n"[..], true),
                (&b"GET /api/esp32/poll HTTP/1.1\r\nconnection: close\r\n\r\n"[..], false),
            ] {
                let hyper = hyper_writes(request, answer).await;
                let (head, body) = answer().into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let ours = encode(head, &body, keep_alive, SystemTime::now());
                assert_eq!(without_date(&ours), without_date(&hyper), "{name}, keep-alive {keep_alive}");
            }
        }
        // The date is hyper's format (RFC 9110's IMF-fixdate).
        let ours = encode(Response::new(Body::empty()).into_parts().0, b"", true, SystemTime::UNIX_EPOCH);
        assert!(String::from_utf8(ours).unwrap().contains("\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n"));
    }
}
