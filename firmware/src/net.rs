//! WiFi station with reconnect, DHCP, and the poll: POST the controller's report, hand the answer
//! back to it. Errors are only counted here; the controller decides what they mean.

use core::{
    fmt::Write as _,
    sync::atomic::{AtomicI32, AtomicU8, Ordering},
};

use core::net::{IpAddr, SocketAddr};
use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};

use embassy_net::{
    IpAddress, Runner, Stack, StackResources,
    dns::DnsQueryType,
    tcp::client::{TcpClient, TcpClientState, TcpConnection},
};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use embedded_io_async::Write as _;
use embedded_nal_async::TcpConnect as _;
use esp_hal::{peripherals::WIFI, rng::Rng};
use esp_println::println;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, Interface, Password, Ssid, WifiController, sta::StationConfig,
};
use pumppilot_controller::{
    AnswerError, Reply, Sent, Signature,
    protocol::{POLL_PATH, json, link},
    setup::DeviceSettings,
};
use reqwless::{
    client::HttpConnection,
    headers::ContentType,
    request::{Method, Request, RequestBuilder},
    response::Response,
};
use static_cell::StaticCell;

use crate::{REPORT_NOW, config::Server, now, with_controller};

/// The server, from the settings, once at boot.
pub static SERVER: StaticCell<Server> = StaticCell::new();

/// What the status LED shows about the network.
pub static NET_STATE: AtomicU8 = AtomicU8::new(NetState::Offline as u8);
/// The last WiFi signal strength in dBm (0 when unknown).
static RSSI: AtomicI32 = AtomicI32::new(0);

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NetState {
    /// No WiFi or no address.
    Offline = 0,
    /// On the network, but the last poll failed.
    NoServer = 1,
    /// The last poll was answered.
    Online = 2,
}

impl NetState {
    pub fn get() -> NetState {
        match NET_STATE.load(Ordering::Relaxed) {
            2 => NetState::Online,
            1 => NetState::NoServer,
            _ => NetState::Offline,
        }
    }

    pub fn set(self) {
        NET_STATE.store(self as u8, Ordering::Relaxed);
    }
}

/// The last WiFi signal strength in dBm, when known (for the report).
pub fn rssi() -> Option<i16> {
    let rssi = RSSI.load(Ordering::Relaxed);
    (rssi != 0).then(|| i16::try_from(rssi).unwrap_or(i16::MIN))
}

/// Wait before trying to join the network again.
const RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Starts WiFi (a station of the network `settings` name) and the network stack; returns the
/// stack for the HTTP tasks.
pub fn start(spawner: &Spawner, wifi: WIFI<'static>, settings: &'static DeviceSettings) -> Stack<'static> {
    static RESOURCES: StaticCell<StackResources<6>> = StaticCell::new();
    let controller = WifiController::new(wifi, Default::default()).expect("WiFi driver");
    let station = Interface::station();
    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    let (stack, runner) = embassy_net::new(
        station,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(net_task(runner).expect("net task"));
    spawner.spawn(wifi_task(controller, settings).expect("wifi task"));
    stack
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}

/// Joins the network and rejoins it whenever the link drops.
#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>, settings: &'static DeviceSettings) {
    let Some(station) = station_config(settings) else {
        println!("the WiFi name or password cannot be used: no network; motor stays OFF");
        return;
    };
    if let Err(err) = controller.set_config(&WifiConfig::Station(station)) {
        println!("WiFi configuration refused: {err:?}; motor stays OFF");
        return;
    }
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                println!("WiFi connected to {}", settings.wifi_ssid.as_str());
                loop {
                    match select(controller.wait_for_disconnect_async(), Timer::after(Duration::from_secs(10))).await {
                        Either::First(_) => break,
                        Either::Second(()) => {
                            if let Ok(rssi) = controller.rssi() {
                                RSSI.store(rssi, Ordering::Relaxed);
                            }
                        }
                    }
                }
                NetState::Offline.set();
                println!("WiFi disconnected; reconnecting");
            }
            Err(err) => {
                println!("WiFi connect failed: {err:?}");
                Timer::after(RECONNECT_DELAY).await;
            }
        }
    }
}

fn station_config(settings: &DeviceSettings) -> Option<StationConfig> {
    let ssid = Ssid::try_from(settings.wifi_ssid.as_str()).ok()?;
    let password = settings.wifi_password.as_str();
    let authentication = if password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::WpaWpa2Personal(Password::try_from(password).ok()?)
    };
    Some(StationConfig::default().with_ssid(ssid).with_authentication(authentication))
}

pub type Tcp = TcpClient<'static, 1, 1024, 1024>;
type Connection = TcpConnection<'static, 1, 1024, 1024>;

/// One HTTP client with its own socket (so a long-poll never delays a card tap), that keeps its
/// connection to the server open between requests and remembers the server's address: a poll
/// costs no TCP handshake and no DNS query unless the connection broke.
pub struct Http {
    stack: Stack<'static>,
    tcp: &'static Tcp,
    /// The server's host name (or address) and port, and the key, from the settings.
    host: &'static str,
    port: u16,
    authorization: &'static str,
    /// The resolved address, kept until a connection to it fails.
    address: Option<IpAddress>,
    connection: Option<Connection>,
}

/// How a request is signed. The controller signs each attempt just before it goes out, with a
/// counter of its own: the server accepts a counter once, and an attempt that failed on a kept
/// connection may have reached the server before the connection broke, so a retry carrying the
/// same counter would be refused as a replay (409), a failed poll for nothing. Signing stays here,
/// in one place, and the counters stay the controller's.
pub enum Signing<'s> {
    /// A poll, with its send time: each attempt's own time and signature go into it, so the
    /// controller takes only the answer to the attempt that got one, and counts its lease from
    /// when that attempt went out (see `Http::attempt`).
    Poll(&'s mut Sent),
    /// Any other request (a card tap, a firmware download): [`Answer::signature`] says how the
    /// attempt that got the answer was signed.
    Request,
}

/// The link's two answer headers, copied out before the body is read.
#[derive(Default)]
struct LinkHeaders {
    counter: heapless::Vec<u8, 20>,
    mac: heapless::Vec<u8, 64>,
}

/// An HTTP answer, with what the controller needs to check it.
pub struct Answer<'b> {
    pub status: u16,
    headers: LinkHeaders,
    pub body: &'b [u8],
    /// The signature of the request this answers (`None` without a link secret); for a poll it is
    /// in its [`Sent`] too.
    pub signature: Option<Signature>,
}

impl Answer<'_> {
    /// The answer as the controller takes it.
    pub fn reply(&self) -> Reply<'_> {
        fn present(value: &[u8]) -> Option<&[u8]> {
            (!value.is_empty()).then_some(value)
        }
        let (counter, mac) = (present(&self.headers.counter), present(&self.headers.mac));
        Reply { status: self.status, counter, mac, body: self.body }
    }
}

/// A signature as the two header values: the counter in decimal, the MAC in hex.
struct SignatureText {
    counter: heapless::String<20>,
    mac: [u8; 64],
}

impl SignatureText {
    fn new(signature: Signature) -> SignatureText {
        let mut counter = heapless::String::new();
        let _ = write!(counter, "{}", signature.counter());
        SignatureText { counter, mac: signature.mac_hex() }
    }

    fn headers(&self) -> (&str, &str) {
        (self.counter.as_str(), core::str::from_utf8(&self.mac).unwrap_or_default())
    }
}

/// What came back from one request.
pub enum Posted<'b> {
    /// An HTTP answer.
    Answer(Answer<'b>),
    /// No answer: connection, timeout.
    Failed,
    /// An answer too long for the receive buffer: it came, but cannot be read whole.
    TooLong,
}

/// Why one exchange failed.
#[derive(Debug)]
enum Failure {
    Dns,
    Connect,
    Http(#[allow(dead_code, reason = "printed with Debug")] reqwless::Error),
    Io,
}

impl Http {
    /// A client for `server`, on a TCP client of its own.
    pub fn new(stack: Stack<'static>, tcp: &'static Tcp, server: &'static Server) -> Http {
        Http {
            stack,
            tcp,
            host: &server.host,
            port: server.port,
            authorization: &server.authorization,
            address: None,
            connection: None,
        }
    }

    /// POSTs `body` as JSON to `path` (with its query) with the device key, signed as `signing`
    /// says (with a link secret); the answer's body lands in `rx`. A kept connection that turns
    /// out to be closed is replaced once, within the same `timeout`, and the request signed again;
    /// any failure drops the connection (and the address, when connecting failed).
    pub async fn post<'b>(
        &mut self,
        path: &str,
        body: &[u8],
        signing: Signing<'_>,
        rx: &'b mut [u8],
        timeout: Duration,
    ) -> Posted<'b> {
        self.request(Method::POST, path, body, signing, None, rx, timeout).await
    }

    /// GETs `path` (a firmware description, or the bytes `first..=last` of an image with
    /// `Range`), signed like any request but a poll; the answer's body lands in `rx`.
    pub async fn get<'b>(
        &mut self,
        path: &str,
        range: Option<(u32, u32)>,
        rx: &'b mut [u8],
        timeout: Duration,
    ) -> Posted<'b> {
        self.request(Method::GET, path, &[], Signing::Request, range, rx, timeout).await
    }

    #[allow(clippy::too_many_arguments, reason = "one request's parts, passed straight through")]
    async fn request<'b>(
        &mut self,
        method: Method,
        path: &str,
        body: &[u8],
        mut signing: Signing<'_>,
        range: Option<(u32, u32)>,
        rx: &'b mut [u8],
        timeout: Duration,
    ) -> Posted<'b> {
        let mut range_text: heapless::String<32> = heapless::String::new();
        if let Some((first, last)) = range {
            let _ = write!(range_text, "bytes={first}-{last}");
        }
        let range = range.map(|_| range_text.as_str());
        let outcome = with_timeout(timeout, async {
            let reused = self.connection.is_some();
            match self.attempt(method, path, body, &mut signing, range, rx).await {
                // Not an answer too long for the buffer: the same request would get it again.
                too_long @ Err(Failure::Http(reqwless::Error::BufferTooSmall)) => too_long,
                // The kept connection was closed under the request (the server's idle timeout, a
                // NAT): once more on a new one, signed afresh, since the first may have arrived.
                Err(Failure::Io | Failure::Http(_)) if reused => {
                    self.attempt(method, path, body, &mut signing, range, rx).await
                }
                other => other,
            }
        })
        .await;
        match outcome {
            Ok(Ok((Exchanged { status, headers, start, len }, signature))) => {
                Posted::Answer(Answer { status, headers, body: &rx[start..start + len], signature })
            }
            Ok(Err(Failure::Http(reqwless::Error::BufferTooSmall))) => {
                println!("POST {path}: an answer longer than {} bytes", rx.len());
                Posted::TooLong
            }
            Ok(Err(err)) => {
                println!("POST {path}: {err:?}");
                Posted::Failed
            }
            Err(_) => {
                println!("POST {path}: no answer within {} ms", timeout.as_millis());
                Posted::Failed
            }
        }
    }

    /// One attempt of a request: signed by the controller as it goes out (before even a DNS query
    /// or a connection), then exchanged. Returns the answer and the attempt's signature. A poll's
    /// send time, which its answer's lease counts from, is this moment: a retry's is its own, not
    /// the first attempt's (why that is right and safe: `Controller::sign_attempt`).
    #[allow(clippy::too_many_arguments, reason = "one request's parts, passed straight through")]
    async fn attempt(
        &mut self,
        method: Method,
        path: &str,
        body: &[u8],
        signing: &mut Signing<'_>,
        range: Option<&str>,
        rx: &mut [u8],
    ) -> Result<(Exchanged, Option<Signature>), Failure> {
        let signature = with_controller(|controller| match signing {
            Signing::Poll(sent) => controller.sign_attempt(sent, now(), method.as_str(), path, body),
            Signing::Request => controller.sign(method.as_str(), path, body),
        });
        let text = signature.map(SignatureText::new);
        let sign = text.as_ref().map(SignatureText::headers);
        let exchanged = self.exchange(method, path, body, sign, range, rx).await?;
        Ok((exchanged, signature))
    }

    /// One request on the kept connection (opened first when there is none). Returns the status
    /// and where the body is in `rx`. The connection is taken out while the request is under way
    /// and put back only after a whole answer: a request abandoned half way (a timeout, a
    /// long-poll cut short) closes it instead of leaving an answer unread on it.
    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        body: &[u8],
        sign: Option<(&str, &str)>,
        range: Option<&str>,
        rx: &mut [u8],
    ) -> Result<Exchanged, Failure> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => {
                let address = match self.address {
                    Some(address) => address,
                    None => {
                        let found = self.stack.dns_query(self.host, DnsQueryType::A).await.map_err(|_| Failure::Dns)?;
                        let address = *found.first().ok_or(Failure::Dns)?;
                        self.address = Some(address);
                        address
                    }
                };
                let IpAddress::Ipv4(v4) = address;
                match self.tcp.connect(SocketAddr::new(IpAddr::V4(v4), self.port)).await {
                    Ok(connection) => connection,
                    Err(_) => {
                        self.address = None;
                        return Err(Failure::Connect);
                    }
                }
            }
        };
        let parts = Parts { method, host: self.host, path, authorization: self.authorization, sign, range };
        let result = exchange(&mut connection, parts, body, rx).await;
        if result.is_ok() {
            self.connection = Some(connection);
        }
        result
    }
}

/// One exchange's answer: the status, the link's headers, and where the body is in the buffer.
struct Exchanged {
    status: u16,
    headers: LinkHeaders,
    start: usize,
    len: usize,
}

/// What goes into one request's header.
struct Parts<'a> {
    method: Method,
    host: &'a str,
    path: &'a str,
    authorization: &'a str,
    /// The link's counter and MAC.
    sign: Option<(&'a str, &'a str)>,
    /// `bytes=first-last`.
    range: Option<&'a str>,
}

async fn exchange(
    connection: &mut Connection,
    parts: Parts<'_>,
    body: &[u8],
    rx: &mut [u8],
) -> Result<Exchanged, Failure> {
    let mut list = [("Authorization", parts.authorization); 4];
    let mut count = 1;
    if let Some((counter, mac)) = parts.sign {
        list[1] = (link::COUNTER_HEADER, counter);
        list[2] = (link::MAC_HEADER, mac);
        count = 3;
    }
    if let Some(range) = parts.range {
        list[count] = ("Range", range);
        count += 1;
    }
    let headers = &list[..count];
    let method = parts.method;
    let builder = Request::new(method, parts.path).host(parts.host).headers(headers);
    let builder =
        if matches!(method, Method::POST) { builder.content_type(ContentType::ApplicationJson) } else { builder };
    let request = builder.body(body).build();
    request.write_header(connection).await.map_err(Failure::Http)?;
    connection.write_all(body).await.map_err(|_| Failure::Io)?;
    connection.flush().await.map_err(|_| Failure::Io)?;
    let start = rx.as_ptr() as usize;
    // reqwless reads bodies through its own connection type (a plain one: no TLS here).
    let mut connection = HttpConnection::Plain(connection);
    let response = Response::read(&mut connection, method, rx).await.map_err(Failure::Http)?;
    let status = response.status.0;
    let mut link_headers = LinkHeaders::default();
    for (name, value) in response.headers() {
        // A value too long for its buffer is left empty: the answer then does not check.
        if name.eq_ignore_ascii_case(link::COUNTER_HEADER) {
            link_headers.counter = heapless::Vec::from_slice(value).unwrap_or_default();
        } else if name.eq_ignore_ascii_case(link::MAC_HEADER) {
            link_headers.mac = heapless::Vec::from_slice(value).unwrap_or_default();
        }
    }
    let answer = response.body().read_to_end().await.map_err(Failure::Http)?;
    Ok(Exchanged { status, headers: link_headers, start: answer.as_ptr() as usize - start, len: answer.len() })
}

/// Polls the server for as long as the device runs: at the controller's interval, at once when
/// the controller has a local change to report, as a long-poll when the controller asks for one
/// (cut short by a local change).
#[embassy_executor::task]
pub async fn poll_task(stack: Stack<'static>, server: &'static Server) {
    static STATE: StaticCell<TcpClientState<1, 1024, 1024>> = StaticCell::new();
    static CLIENT: StaticCell<Tcp> = StaticCell::new();
    let mut http = Http::new(stack, CLIENT.init(TcpClient::new(stack, STATE.init(TcpClientState::new()))), server);
    let rng = Rng::new();
    let mut rx = [0u8; 1024];
    let mut url: heapless::String<160> = heapless::String::new();
    let mut last_start = Instant::now();
    let mut next_in = Duration::from_millis(0);
    loop {
        if !stack.is_config_up() {
            NetState::Offline.set();
            stack.wait_config_up().await;
            println!("network up: {:?}", stack.config_v4().map(|c| c.address));
            NetState::NoServer.set();
        }
        // Nothing is reported before the inputs have settled (a boot would say "grid down").
        while !with_controller(|controller| controller.settled(now())) {
            Timer::after(Duration::from_millis(u64::from(pumppilot_controller::timing::SETTLE_CHECK_MS))).await;
        }
        // Wait for the next poll, or for a local change that should be reported at once (not
        // while backing off after failures: the retry carries the change).
        let due = Timer::at(last_start + next_in);
        if with_controller(|controller| controller.failures()) > 0 {
            due.await;
            REPORT_NOW.reset();
        } else {
            select(due, REPORT_NOW.wait()).await;
        }

        let started = Instant::now();
        let at = now();
        let poll = with_controller(|controller| controller.poll(at));
        let (mut report, long_poll, mut sent) = (poll.report, poll.long_poll, poll.sent);
        report.rssi = rssi();
        let mut body = [0u8; json::MAX_REPORT_BYTES];
        let Ok(len) = json::encode_report(&report, &mut body) else {
            // Cannot happen with this firmware's report; never send a partial one.
            with_controller(|controller| controller.poll_failed(now()));
            continue;
        };
        url.clear();
        let _ = write!(url, "{POLL_PATH}");
        if let Some(long_poll) = long_poll {
            let _ = write!(url, "?wait={}&seq={}", long_poll.wait_ms, long_poll.seq);
        }
        // The controller sizes it: never more than half of what is left of the lease.
        let timeout = Duration::from_millis(u64::from(poll.timeout_ms));

        // Each attempt's send time and signature go into `sent` (`Http::attempt`).
        let request = http.post(&url, &body[..len], Signing::Poll(&mut sent), &mut rx, timeout);
        let posted = if long_poll.is_some() {
            // A held request is cut short by a local change: the next report carries it.
            REPORT_NOW.reset();
            match select(request, REPORT_NOW.wait()).await {
                Either::First(posted) => posted,
                Either::Second(()) => {
                    next_in = Duration::from_millis(0);
                    last_start = started;
                    continue;
                }
            }
        } else {
            request.await
        };
        match posted {
            // The controller checks the answer's MAC (with a link secret) and its status.
            Posted::Answer(answer) => {
                match with_controller(|controller| controller.reply(sent, now(), answer.reply())) {
                    Ok(_) => {
                        NetState::Online.set();
                        // Only from an answer the controller accepted (its MAC checked).
                        if let Some(version) = json::decode_update(answer.body) {
                            crate::ota::offer(version);
                        }
                    }
                    Err(AnswerError::Refused(status)) => {
                        println!("poll refused: HTTP {status}");
                        NetState::NoServer.set();
                    }
                    Err(err) => {
                        println!("unusable answer ({err:?}): motor OFF until a good one");
                        NetState::NoServer.set();
                    }
                }
            }
            Posted::Failed => {
                with_controller(|controller| controller.poll_failed(now()));
                NetState::NoServer.set();
            }
            Posted::TooLong => {
                with_controller(|controller| controller.too_long(now()));
                println!("unusable answer (too long): motor OFF until a good one");
                NetState::NoServer.set();
            }
        }
        next_in = Duration::from_millis(u64::from(with_controller(|controller| controller.next_poll_in(rng.random()))));
        last_start = started;
    }
}
