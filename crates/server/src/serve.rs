//! Serving connections: the devices' polls on this server's own small HTTP/1.1 path
//! ([`poll`]), everything else through hyper, with the limits a caller meets before any handler
//! runs (what `axum::serve` left open to anonymous callers).
//!
//! - Every connection starts on the device path, which reads the first request line: a device
//!   poll (`GET` or `POST /api/esp32/poll`) is answered there, through the same router as every
//!   other request; anything else, at any request of the connection, hands the connection with
//!   the bytes already read to hyper for the rest of its life (`hyper_connection`). A waiting
//!   long-poll then holds no read or write buffer (hyper keeps 8 KiB of each per connection).
//! - At most `PUMPPILOT_MAX_CONNECTIONS` connections at once: beyond, the server stops accepting
//!   until one closes (new ones wait in the kernel's backlog), so no caller makes it hold more
//!   files and buffers than that; while one waits, connections idle past [`IDLE_GRACE`] are
//!   closed to make room ([`Slots`]).
//! - A request's head must arrive within [`Settings::header_timeout`](crate::Settings), and a
//!   kept-alive connection idle that long is closed: a slow-loris client trickling its headers,
//!   or a crowd of idle ones, holds a connection no longer. A request's body must then keep
//!   coming: within the same time, plus a second a kilobyte (`BodyWithin`), or the route answers
//!   400. While a connection waits for a slot, a body over a second behind a kilobyte a second
//!   is closed to make room as an idle connection is (`Caller::behind`).
//! - One client address has at most [`SENDING_PER_ADDRESS`] connections sending a request (from
//!   its first byte until its head and body are in) at once; more are closed at their first
//!   byte, unanswered (`Senders`). A device poll whole in its first read was never on its way and
//!   is not counted.
//! - A head hyper refuses itself (over 100 headers, over its read buffer, a target over 64 KiB,
//!   bytes that are no HTTP) is answered with hyper's status and this API's JSON error instead of
//!   hyper's empty body ([`JsonRefusals`]); smaller excesses reach `error::head_refusal` (in `metrics::Edge`).
//!   The device path hands every head it does not take whole (over 8 KiB, over 32 fields, not
//!   HTTP/1.1, a body over 4 KiB or not of a known length, `Expect`, `Upgrade`) to hyper, so
//!   these limits and answers are hyper's and the API's alone.

pub mod poll;

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request},
    response::Response,
};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, OwnedSemaphorePermit, Semaphore, watch},
};

/// What one server allows each connection, and how many at once.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The connections served at once (`PUMPPILOT_MAX_CONNECTIONS`), shared with the server's
    /// MQTT listener: together they never hold more than these, so neither can take the
    /// process's last files from the other.
    pub slots: Arc<Slots>,
    pub header_timeout: Duration,
    /// Peers the per-address bound ([`SENDING_PER_ADDRESS`]) does not apply to: the trusted
    /// reverse proxies (`PUMPPILOT_TRUSTED_PROXIES`), through which every client comes from one
    /// address and which bound each client themselves.
    pub proxies: Vec<ipnet::IpNet>,
}

/// How long a connection may wait for its caller's next words (a request head, an MQTT CONNECT)
/// before it is closed to make room once every slot is taken ([`Slots::idle_shed`]).
pub const IDLE_GRACE: Duration = Duration::from_secs(1);
/// How often a listener waiting for a slot asks the idle connections to go again (one that was
/// within its grace at the last ask may be past it now).
const ASK_AGAIN: Duration = Duration::from_millis(250);

/// The server's connection slots, HTTP and MQTT together. While every one is taken and a new
/// connection waits, the connections that wait for their caller (a request head or an idle
/// keep-alive, an MQTT CONNECT) for longer than [`IDLE_GRACE`] are closed to make room: a crowd of
/// silent or slow connections, from one address or many, holds the server's slots for a second,
/// not for the whole header timeout; so does a request whose body has fallen a second behind a
/// kilobyte a second (`Caller::behind`). A connection at work (a request answered, a body
/// coming at least that fast, a long-poll, a live stream, an MQTT device) is never closed for
/// room.
#[derive(Debug)]
pub struct Slots {
    permits: Arc<Semaphore>,
    room_wanted: Notify,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots { permits: Arc::new(Semaphore::new(max)), room_wanted: Notify::new() })
    }

    /// A slot for the next connection a listener accepts: at once, or once a connection of either
    /// listener closes, asking the idle ones to go meanwhile. While none is free it says so once
    /// in the log (`told_full`, cleared when a slot is free at once again).
    pub(crate) async fn next(&self, told_full: &mut bool, listener: &'static str) -> OwnedSemaphorePermit {
        if let Ok(slot) = Arc::clone(&self.permits).try_acquire_owned() {
            *told_full = false;
            return slot;
        }
        if !std::mem::replace(told_full, true) {
            tracing::warn!(
                listener,
                "every connection slot is taken (PUMPPILOT_MAX_CONNECTIONS, HTTP and MQTT together); connections idle for over a second are closed to make room"
            );
        }
        let slot = Arc::clone(&self.permits).acquire_owned();
        tokio::pin!(slot);
        loop {
            self.room_wanted.notify_waiters();
            tokio::select! {
                slot = &mut slot => return slot.expect("the slots are never closed"),
                () = tokio::time::sleep(ASK_AGAIN) => {}
            }
        }
    }

    /// Returns once room is wanted (every slot taken, a connection waiting) while the caller has
    /// waited for its peer since `since` for longer than [`IDLE_GRACE`]: the connection then
    /// closes.
    pub async fn idle_shed(&self, since: tokio::time::Instant) {
        self.shed_when(|| since.elapsed() >= IDLE_GRACE).await;
    }

    /// Returns once room is wanted while `sheddable` holds (asked each time room is wanted).
    async fn shed_when(&self, sheddable: impl Fn() -> bool) {
        loop {
            self.room_wanted.notified().await;
            if sheddable() {
                return;
            }
        }
    }
}

/// The most connections one client address may have sending a request at once: from the
/// request's first byte until its head and body are in. A poll is a few hundred bytes, in within
/// a third of a second even over GPRS, so a thousand boards behind one carrier's NAT, each
/// polling every 5 s, have about 70 on their way at once (a waiting long-poll, a live stream, an
/// answer being written, a connection between requests or not yet sending are not counted); a
/// crowd from one address trickling its requests holds no more than this many of the server's
/// slots, and the shedding of bodies behind their pace does the rest once every slot is taken.
/// A connection that sends nothing is not counted: a burst of new ones whose requests are about
/// to come (boards reconnecting after a restart, all at once) is not refused meanwhile, and a
/// silent one holds a slot a second once they are scarce (`Slots::idle_shed`). The address is the
/// peer's: behind a reverse proxy every connection is the proxy's (`PUMPPILOT_TRUSTED_PROXIES`
/// names the client in a header, read only once a head is in), so the proxy must bound each
/// client itself, as `deploy/nginx.conf` does; nginx also reads a body whole before it passes the
/// request on, so its connections here are sending for an instant.
pub const SENDING_PER_ADDRESS: usize = 256;

/// The connections of each client address that are sending a request ([`SENDING_PER_ADDRESS`]).
#[derive(Default)]
struct Senders {
    addresses: Mutex<HashMap<IpAddr, usize>>,
    /// Not bounded: [`Limits::proxies`].
    proxies: Vec<ipnet::IpNet>,
}

impl Senders {
    /// Counts a connection from `address` as sending until the returned guard is dropped: `None`
    /// when the address has [`SENDING_PER_ADDRESS`] sending already, and the connection is to be
    /// closed at once, unanswered.
    fn begin(self: &Arc<Self>, address: IpAddr) -> Option<Sending> {
        let proxy = self.proxies.iter().any(|net| net.contains(&address.to_canonical()));
        let address = client_of(address);
        let mut addresses = self.addresses.lock().expect("senders lock");
        let sending = addresses.entry(address).or_default();
        if *sending >= SENDING_PER_ADDRESS && !proxy {
            drop(addresses);
            tracing::debug!(%address, "too many connections from one address sending a request; closed");
            return None;
        }
        *sending += 1;
        Some(Sending { senders: Arc::clone(self), address })
    }
}

/// The client `address` is, as the connections' limit and the sign-in limits count one: an IPv4
/// address itself (written as IPv6 too), an IPv6 address its /64, which one home or phone is
/// given whole and may take any address of.
pub fn client_of(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(ipnet::Ipv6Net::new_assert(v6, 64).network()),
        v4 => v4,
    }
}

/// A connection counted among its address's senders ([`Senders::begin`]) until this is dropped.
struct Sending {
    senders: Arc<Senders>,
    address: IpAddr,
}

impl Drop for Sending {
    fn drop(&mut self) {
        let mut addresses = self.senders.addresses.lock().expect("senders lock");
        if let Some(sending) = addresses.get_mut(&self.address) {
            *sending -= 1;
            if *sending == 0 {
                addresses.remove(&self.address);
            }
        }
    }
}

/// What every connection of one server shares.
pub struct Shared<S> {
    router: S,
    /// hyper's settings, for the connections handed to it.
    http1: hyper::server::conn::http1::Builder,
    header_timeout: Duration,
    /// The server's slots, for an idle connection to make room ([`Slots::idle_shed`]).
    slots: Arc<Slots>,
    /// The connections of each address sending a request.
    senders: Arc<Senders>,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish.
pub async fn serve<S>(
    listener: TcpListener,
    router: S,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let slots = limits.slots;
    // Every connection holds a receiver: at shutdown each finishes the request it serves and
    // closes (hyper's connections through their graceful shutdown), and the server waits until
    // every receiver is gone.
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut told_full = false;
    // One builder (and one timer) for every connection.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let shared = Arc::new(Shared {
        router,
        http1,
        header_timeout: limits.header_timeout,
        slots: Arc::clone(&slots),
        senders: Arc::new(Senders { proxies: limits.proxies, ..Senders::default() }),
    });
    loop {
        let slot = tokio::select! {
            slot = slots.next(&mut told_full, "HTTP") => slot,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of files or memory for a moment: try again shortly, never spin.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = poll::connection(stream, peer, Arc::clone(&shared), stopping.clone());
        // The connection's future is the task itself: awaited inside an `async move` block it
        // would take its size twice in the task (the value moved in, and the one awaited), for as
        // long as the connection lives.
        tokio::spawn(futures_util::FutureExt::map(connection, move |()| drop(slot)));
    }
    drop(listener);
    drop(stopping);
    stop.send_replace(true);
    stop.closed().await;
    Ok(())
}

/// A connection served by hyper from here on: `read` are the bytes the device path read from
/// it already (the start of a request it does not answer itself), `sending` its count among its
/// address's senders while that request comes in.
async fn hyper_connection<S>(
    stream: TcpStream,
    read: Bytes,
    peer: SocketAddr,
    shared: &Shared<S>,
    mut stop: watch::Receiver<bool>,
    sending: Option<Sending>,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let router = shared.router.clone();
    // Whether a request has come whole (its head read): hyper's graceful shutdown waits for the
    // first one, however slowly it trickles in.
    let asked = Arc::new(AtomicBool::new(false));
    let asked_here = Arc::clone(&asked);
    let caller = Arc::new(Caller {
        senders: Arc::clone(&shared.senders),
        address: peer.ip(),
        arrival: Mutex::new(Arrival { sending, due: None }),
    });
    let caller_here = Arc::clone(&caller);
    let within = shared.header_timeout;
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        asked_here.store(true, Ordering::Relaxed);
        if hyper::body::Body::is_end_stream(request.body()) {
            caller_here.request_in();
        }
        let caller = Arc::clone(&caller_here);
        let mut request = request.map(|body| Body::new(BodyWithin::new(body, within, caller)));
        request.extensions_mut().insert(ConnectInfo(peer));
        tower::ServiceExt::oneshot(router.clone(), request)
    });
    let io = TokioIo::new(JsonRefusals::new(Rewind { read, inner: stream, caller: Arc::clone(&caller) }));
    let mut connection = std::pin::pin!(shared.http1.serve_connection(io, service));
    // To make room, a connection still waiting for its first head is dropped; hyper's graceful
    // shutdown closes one idle between requests at once, and one at work after its answer (a
    // live stream goes on). One whose body has fallen behind is dropped, its request with it.
    let since = tokio::time::Instant::now();
    let mut closing = false;
    let ended = loop {
        tokio::select! {
            ended = connection.as_mut() => break ended,
            () = stopping(&mut stop), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = shared.slots.idle_shed(since), if !closing => {
                if !asked.load(Ordering::Relaxed) {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = shared.slots.shed_when(|| caller.behind()) => return,
        }
    };
    if let Err(err) = ended {
        tracing::debug!(%err, %peer, "connection ended with an error");
    }
}

/// A connection hyper serves, as its caller's requests come in: what its socket (a request's
/// first bytes), its requests' bodies (their pace) and its task (whether to close it for room)
/// share.
struct Caller {
    senders: Arc<Senders>,
    address: IpAddr,
    arrival: Mutex<Arrival>,
}

/// How the caller's request is coming in.
struct Arrival {
    /// Counted among its address's senders while a request's head or body is on its way.
    sending: Option<Sending>,
    /// While its body is awaited: when it falls over [`IDLE_GRACE`] behind
    /// [`BODY_BYTES_PER_SECOND`].
    due: Option<tokio::time::Instant>,
}

impl Caller {
    fn arrival(&self) -> std::sync::MutexGuard<'_, Arrival> {
        self.arrival.lock().expect("arrival lock")
    }

    /// Bytes came from the socket: a request is on its way, if none was. Past its address's
    /// bound the connection closes (an error for hyper).
    fn bytes_came(&self) -> io::Result<()> {
        let mut arrival = self.arrival();
        if arrival.sending.is_none() {
            let sending = self.senders.begin(self.address);
            arrival.sending = Some(sending.ok_or_else(|| io::Error::other("too many requests on their way"))?);
        }
        Ok(())
    }

    /// The request is in, head and body: the connection is at work, or idle once answered.
    fn request_in(&self) {
        let mut arrival = self.arrival();
        arrival.sending = None;
        arrival.due = None;
    }

    /// The route waits for the body: its pace counts from now, a second's grace first.
    fn body_awaited(&self) {
        self.arrival().due = Some(tokio::time::Instant::now() + IDLE_GRACE);
    }

    /// `bytes` of the body came: each buys its share of a second, but never past a second from
    /// now, so a body that comes in a burst and stops is behind a second after it stopped.
    fn body_came(&self, bytes: u64) {
        let mut arrival = self.arrival();
        if let Some(due) = arrival.due {
            arrival.due = Some((due + time_for(bytes)).min(tokio::time::Instant::now() + IDLE_GRACE));
        }
    }

    /// True while the body awaited is over a second behind a kilobyte a second: once every slot is
    /// taken, the connection is closed to make room, as an idle one is. A device on a slow link
    /// sends faster than that; a caller that sent most of a body and stalls does not.
    fn behind(&self) -> bool {
        self.arrival().due.is_some_and(|due| tokio::time::Instant::now() >= due)
    }
}

/// The slowest a request's body may come after its first [header timeout](crate::Settings)'s
/// worth of waiting: a kilobyte a second, far below a 2G link (a firmware image of 2 MB over GPRS
/// still arrives), far above a slow-loris trickle.
const BODY_BYTES_PER_SECOND: u64 = 1024;

pin_project_lite::pin_project! {
    /// A request's body that must keep coming: whole within the header timeout, counted from when
    /// the route first waits for it (at once, for the routes here), plus a second for every
    /// [`BODY_BYTES_PER_SECOND`] bytes that came. A caller that sends a head and trickles its body
    /// (or never sends it) holds its connection no longer than one trickling its head, and a
    /// request waiting for its body is not at work for ever. Past the deadline the body ends in
    /// an error, which the route answers as a bad request. Nothing is timed for a request whose
    /// body is already in. Its pace is told to its connection's [`Caller`] as it comes.
    struct BodyWithin {
        #[pin]
        body: hyper::body::Incoming,
        within: Duration,
        received: u64,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        caller: Arc<Caller>,
    }
}

/// The time `bytes` of a body buy ([`BODY_BYTES_PER_SECOND`]).
fn time_for(bytes: u64) -> Duration {
    Duration::from_millis(bytes.saturating_mul(1000) / BODY_BYTES_PER_SECOND)
}

impl BodyWithin {
    fn new(body: hyper::body::Incoming, within: Duration, caller: Arc<Caller>) -> Self {
        BodyWithin { body, within, received: 0, deadline: None, caller }
    }
}

impl hyper::body::Body for BodyWithin {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.body.as_mut().poll_frame(cx) {
            match &frame {
                Some(Ok(frame)) => {
                    // Each byte that came buys its share of a second.
                    let bytes = frame.data_ref().map_or(0, |data| data.len() as u64);
                    *this.received += bytes;
                    if let Some(deadline) = this.deadline.as_mut().as_pin_mut() {
                        let later = deadline.deadline() + time_for(bytes);
                        deadline.reset(later);
                    }
                    if this.body.is_end_stream() {
                        this.caller.request_in();
                    } else {
                        this.caller.body_came(bytes);
                    }
                }
                None => this.caller.request_in(),
                Some(Err(_)) => {}
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.deadline.is_none() {
            this.deadline.set(Some(tokio::time::sleep(*this.within + time_for(*this.received))));
            this.caller.body_awaited();
        }
        let deadline = this.deadline.as_pin_mut().expect("set above");
        ready!(deadline.poll(cx));
        Poll::Ready(Some(Err("the request's body did not arrive in time".into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Returns once the server shuts down.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A socket with the bytes already read from it put back in front, telling its [`Caller`] when
/// more come.
struct Rewind {
    read: Bytes,
    inner: TcpStream,
    caller: Arc<Caller>,
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.read.is_empty() {
            let before = buf.filled().len();
            ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
            if buf.filled().len() > before {
                self.caller.bytes_came()?;
            }
            return Poll::Ready(Ok(()));
        }
        let read = std::mem::take(&mut self.read);
        let n = read.len().min(buf.remaining());
        buf.put_slice(&read[..n]);
        if n < read.len() {
            self.read = read.slice(n..);
        }
        // Else the bytes' buffer is released: it is no longer referenced.
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection's socket, rewriting hyper's own refusals into this API's JSON error.
///
/// hyper answers a head it cannot take (400, 414, 431) itself, before any handler runs, with an
/// empty body. Every answer of the handlers with those statuses carries a JSON body, so a head
/// with one of them, no `content-type` and no body is hyper's: it goes out with the JSON error
/// instead (hyper closes the connection after it).
pub struct JsonRefusals<T> {
    inner: T,
    /// Bytes owed to the socket (a rewritten refusal) before anything else is written.
    pending: Vec<u8>,
    sent: usize,
}

impl<T> JsonRefusals<T> {
    pub fn new(inner: T) -> Self {
        JsonRefusals { inner, pending: Vec::new(), sent: 0 }
    }
}

impl<T: AsyncWrite + Unpin> JsonRefusals<T> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

/// hyper's own refusal, rewritten with a JSON body; `None` for anything else.
pub fn rewrite_refusal(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.1 ")?;
    let (code, status, message) = match rest.get(..4)? {
        "400 " => ("VALIDATION", "400 Bad Request", "the request is not HTTP/1.1 this server can read"),
        "414 " => ("URI_TOO_LONG", "414 URI Too Long", "the path and query are over 8 KiB"),
        "431 " => (
            "HEADERS_TOO_LARGE",
            "431 Request Header Fields Too Large",
            "the request headers are over 32 KiB or 100 fields",
        ),
        _ => return None,
    };
    let fields = text.strip_suffix("\r\n\r\n")?.split("\r\n").skip(1);
    let mut kept = Vec::new();
    for field in fields {
        let name = field.split(':').next()?.trim().to_ascii_lowercase();
        match name.as_str() {
            "content-length" if field.split(':').nth(1)?.trim() == "0" => {}
            "content-length" | "content-type" | "transfer-encoding" => return None, // a handler's answer
            _ => kept.push(field),
        }
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut answer = format!("HTTP/1.1 {status}\r\n");
    for field in kept {
        answer.push_str(field);
        answer.push_str("\r\n");
    }
    answer.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()));
    Some(answer.into_bytes())
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonRefusals<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if buf.starts_with(b"HTTP/1.1 4")
            && let Some(answer) = rewrite_refusal(buf)
        {
            self.pending = answer;
            // The rewritten answer is owed now; hyper's bytes count as written.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// One contiguous buffer per write, so a refusal's head arrives whole in one call.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{SENDING_PER_ADDRESS, Senders, client_of, rewrite_refusal};

    #[test]
    fn a_trusted_proxy_is_not_bounded_per_address_as_a_client_is() {
        let senders = Arc::new(Senders { proxies: vec!["10.0.0.1/32".parse().unwrap()], ..Senders::default() });
        let (client, proxy) = ("203.0.113.9".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let held: Vec<_> = (0..SENDING_PER_ADDRESS).map(|_| senders.begin(client).expect("within the bound")).collect();
        assert!(senders.begin(client).is_none(), "one more from the client is closed");
        let through: Vec<_> = (0..=SENDING_PER_ADDRESS).filter_map(|_| senders.begin(proxy)).collect();
        assert_eq!(through.len(), SENDING_PER_ADDRESS + 1, "every client behind the proxy comes from its address");
        drop(held);
        assert!(senders.begin(client).is_some(), "the client's bound is free again");
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_addresss_64() {
        let of = |address: &str| client_of(address.parse().unwrap()).to_string();
        assert_eq!(of("203.0.113.7"), "203.0.113.7");
        assert_eq!(of("::ffff:203.0.113.7"), "203.0.113.7", "an IPv4 address written as IPv6 is itself");
        assert_eq!(of("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(of("2001:db8:1:2::9"), of("2001:db8:1:2:ffff::1"), "one /64, one client");
    }

    #[test]
    fn hypers_own_refusals_get_the_json_error_and_handlers_answers_pass() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(rewrite_refusal(hyper).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("\r\ndate: Tue, 01 Dec 2026"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json"), "{head}");
        assert!(head.ends_with(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "HEADERS_TOO_LARGE");
        assert!(rewrite_refusal(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n").is_some());
        assert!(rewrite_refusal(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_some());
        // A handler's answers, and other statuses, go out as they are.
        let json = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n";
        assert_eq!(rewrite_refusal(json), None);
        assert_eq!(rewrite_refusal(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"), None);
        assert_eq!(
            rewrite_refusal(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n{}"),
            None
        );
    }
}
