//! WiFi station with reconnect, DHCP, and the poll: POST the controller's report, hand the answer
//! back to it. Errors are only counted here; the controller decides what they mean.

use core::{
    fmt::Write as _,
    sync::atomic::{AtomicI32, AtomicU8, Ordering},
};

use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_net::{
    Runner, Stack, StackResources,
    dns::DnsSocket,
    tcp::client::{TcpClient, TcpClientState},
};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use esp_hal::{peripherals::WIFI, rng::Rng};
use esp_println::println;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config as WifiConfig, Interface, Password, Ssid, WifiController, sta::StationConfig,
};
use pumppilot_controller::protocol::{POLL_PATH, json};
use reqwless::{
    client::HttpClient,
    headers::ContentType,
    request::{Method, RequestBuilder},
};
use static_cell::StaticCell;

use crate::{
    REPORT_NOW,
    config::{self, Server},
    now, with_controller,
};

/// The server, parsed once at boot.
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

    fn set(self) {
        NET_STATE.store(self as u8, Ordering::Relaxed);
    }
}

/// Wait before trying to join the network again.
const RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Starts WiFi and the network stack; returns the stack for the HTTP tasks.
pub fn start(spawner: &Spawner, wifi: WIFI<'static>) -> Stack<'static> {
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
    spawner.spawn(wifi_task(controller).expect("wifi task"));
    stack
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}

/// Joins the network and rejoins it whenever the link drops.
#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>) {
    let Some(station) = station_config() else {
        println!("PUMPPILOT_WIFI_SSID/PASSWORD not set or too long: no network; motor stays OFF");
        return;
    };
    if let Err(err) = controller.set_config(&WifiConfig::Station(station)) {
        println!("WiFi configuration refused: {err:?}; motor stays OFF");
        return;
    }
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                println!("WiFi connected to {}", config::WIFI_SSID);
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

fn station_config() -> Option<StationConfig> {
    if config::WIFI_SSID.is_empty() {
        return None;
    }
    let ssid = Ssid::try_from(config::WIFI_SSID).ok()?;
    let authentication = if config::WIFI_PASSWORD.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::WpaWpa2Personal(Password::try_from(config::WIFI_PASSWORD).ok()?)
    };
    Some(StationConfig::default().with_ssid(ssid).with_authentication(authentication))
}

/// One HTTP client: its own socket, so a long-poll never delays a card tap.
pub struct Http {
    tcp: TcpClient<'static, 1, 1024, 1024>,
    dns: DnsSocket<'static>,
    authorization: heapless::String<160>,
}

/// What came back from one POST.
pub enum Posted<'b> {
    /// An HTTP answer: its status and body.
    Answer(u16, &'b [u8]),
    /// No answer: connection, timeout, or a body that did not fit.
    Failed,
}

impl Http {
    pub fn new(stack: Stack<'static>, state: &'static TcpClientState<1, 1024, 1024>) -> Http {
        let mut authorization = heapless::String::new();
        if write!(authorization, "Bearer {}", config::DEVICE_KEY).is_err() {
            println!("PUMPPILOT_DEVICE_KEY is too long; polls will be refused");
        }
        Http { tcp: TcpClient::new(stack, state), dns: DnsSocket::new(stack), authorization }
    }

    /// POSTs `body` as JSON to `url` with the device key; the answer's body lands in `rx`.
    pub async fn post<'b>(&mut self, url: &str, body: &[u8], rx: &'b mut [u8], timeout: Duration) -> Posted<'b> {
        let headers = [("Authorization", self.authorization.as_str())];
        let mut client = HttpClient::new(&self.tcp, &self.dns);
        match with_timeout(timeout, exchange(&mut client, url, &headers, body, rx)).await {
            Ok(Ok((status, body))) => Posted::Answer(status, body),
            Ok(Err(err)) => {
                println!("POST {url}: {err:?}");
                Posted::Failed
            }
            Err(_) => {
                println!("POST {url}: no answer within {} ms", timeout.as_millis());
                Posted::Failed
            }
        }
    }
}

type Client<'a> = HttpClient<'a, TcpClient<'static, 1, 1024, 1024>, DnsSocket<'static>>;

async fn exchange<'b>(
    client: &mut Client<'_>,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    rx: &'b mut [u8],
) -> Result<(u16, &'b [u8]), reqwless::Error> {
    let request = client.request(Method::POST, url).await?;
    let mut request = request.content_type(ContentType::ApplicationJson).headers(headers).body(body);
    let response = request.send(rx).await?;
    let status = response.status.0;
    let body = response.body().read_to_end().await?;
    Ok((status, body))
}

/// Polls the server for as long as the device runs: at the controller's interval, at once when
/// the controller has a local change to report, as a long-poll when the controller asks for one
/// (cut short by a local change).
#[embassy_executor::task]
pub async fn poll_task(stack: Stack<'static>, server: &'static Server) {
    static STATE: StaticCell<TcpClientState<1, 1024, 1024>> = StaticCell::new();
    let mut http = Http::new(stack, STATE.init(TcpClientState::new()));
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
        let (mut report, long_poll, sent) = (poll.report, poll.long_poll, poll.sent);
        let rssi = RSSI.load(Ordering::Relaxed);
        report.rssi = (rssi != 0).then(|| i16::try_from(rssi).unwrap_or(i16::MIN));
        let mut body = [0u8; json::MAX_REPORT_BYTES];
        let Ok(len) = json::encode_report(&report, &mut body) else {
            // Cannot happen with this firmware's report; never send a partial one.
            with_controller(|controller| controller.poll_failed(now()));
            continue;
        };
        url.clear();
        let _ = write!(url, "{}{}", server.base, POLL_PATH);
        if let Some(long_poll) = long_poll {
            let _ = write!(url, "?wait={}&seq={}", long_poll.wait_ms, long_poll.seq);
        }
        // The controller sizes it: never more than half of what is left of the lease.
        let timeout = Duration::from_millis(u64::from(poll.timeout_ms));

        let request = http.post(&url, &body[..len], &mut rx, timeout);
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
            Posted::Answer(200, answer) => match with_controller(|controller| controller.answer(sent, now(), answer)) {
                Ok(_) => NetState::Online.set(),
                Err(err) => {
                    println!("unusable answer ({err:?}): motor OFF until a good one");
                    NetState::NoServer.set();
                }
            },
            Posted::Answer(status, _) => {
                println!("poll refused: HTTP {status}");
                with_controller(|controller| controller.poll_failed(now()));
                NetState::NoServer.set();
            }
            Posted::Failed => {
                with_controller(|controller| controller.poll_failed(now()));
                NetState::NoServer.set();
            }
        }
        next_in = Duration::from_millis(u64::from(with_controller(|controller| controller.next_poll_in(rng.random()))));
        last_start = started;
    }
}
