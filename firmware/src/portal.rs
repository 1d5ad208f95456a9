//! Setup mode: the device's own WiFi access point (`PumpPilot-XXXX`, the last two bytes of its
//! MAC address), a DHCP server (edge-dhcp) that hands out addresses with the device as gateway and
//! name server, a name server (edge-captive) that answers every name with the device's address,
//! and a web server (picoserve) with one page: the setup form of
//! `pumppilot_controller::setup`. Any other address a phone asks for (its "is there internet?"
//! check) is sent to the page, so the phone opens it by itself.
//!
//! The page shows nothing of the settings stored but the relay's and the inputs' active levels,
//! and those only from a record saved on this board (`setup::page`): a board set up again keeps
//! its wiring unless the technician changes it, while a board without a record (or with values
//! only built into the image) shows each level unchosen, to be chosen as it is wired.
//!
//! Nothing here touches the motor outputs: no poll task runs in setup mode, so the controller
//! never gets a command and the control loop holds the relay OFF (`main`). A form the controller
//! refuses is answered with its JSON error (the page shows it, in English and Bangla) and nothing
//! is written. A good one is not written either: it waits for a press of the board's button
//! (`setup::PendingSave`, which decides; the control loop hands it the button's samples, the LED
//! blinks fast meanwhile), and the page says to press it and counts the time down. Pressed in
//! time, the settings are written to the `settings` partition, read back, and the device restarts
//! into normal mode; not pressed in time, they are discarded, and for `setup::QUIET_MS` after that
//! no form is taken. At zero the page asks `setup::PENDING_PATH` what became of them. The access
//! point is open: someone out of reach of the board can change nothing.

use core::{
    cell::RefCell,
    fmt::Write as _,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
};

use edge_nal::UdpBind as _;
use edge_nal_embassy::{Udp, UdpBuffers};
use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_net::{Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_sync::{
    blocking_mutex::{Mutex, raw::CriticalSectionRawMutex},
    signal::Signal,
};
use embassy_time::{Duration, Instant, Timer};
use esp_bootloader_esp_idf::partitions::FlashStorage;
use esp_hal::{peripherals::WIFI, rng::Rng};
use esp_println::println;
use esp_radio::wifi::{Config as WifiConfig, Interface, Ssid, WifiController, ap::AccessPointConfig};
use picoserve::{
    ResponseSent,
    io::{Read, Write},
    request::{Path, Request},
    response::{Content, IntoResponse, Redirect, Response, ResponseWriter, StatusCode},
    routing::{PathRouterService, get},
};
use pumppilot_controller::{
    Millis,
    setup::{self, Confirmed, DeviceSettings, Levels, PendingSave},
    status::Blink,
};
use static_cell::StaticCell;

use crate::settings;

/// The device's address on its own access point (also its gateway and name server).
const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 168, 4, 1);
/// Where every other address is sent.
const PAGE_URL: &str = "http://192.168.4.1/";
/// Web server tasks: a phone opens a few connections at once (its portal check, the page).
const WEB_TASKS: usize = 2;

/// The flash, for writing the settings (setup mode only: the update task does not run).
static FLASH: Mutex<CriticalSectionRawMutex, RefCell<Option<FlashStorage<'static>>>> = Mutex::new(RefCell::new(None));
/// Settings sent from the page, waiting for a press of the board's button.
static PENDING: Mutex<CriticalSectionRawMutex, RefCell<PendingSave>> = Mutex::new(RefCell::new(PendingSave::new()));
/// Raised by a press of the button in time, with the settings to write.
static PRESSED: Signal<CriticalSectionRawMutex, DeviceSettings> = Signal::new();

type Buffers = UdpBuffers<2, 640, 640, 2>;

/// A board that has settings (setup mode from the button) goes back to work after this long
/// without a save; a board without settings stays in setup mode.
const GIVE_UP: Duration = Duration::from_secs(15 * 60);

/// Starts the access point and the three servers. `has_settings`: the board can go back to work
/// if nobody saves (setup mode from the button). `stored`: the active levels of the record saved
/// on this board, chosen already on the page (`None`: each must be chosen).
pub fn start(
    spawner: &Spawner,
    wifi: WIFI<'static>,
    flash: FlashStorage<'static>,
    has_settings: bool,
    stored: Option<Levels>,
) {
    static RESOURCES: StaticCell<StackResources<6>> = StaticCell::new();
    static UDP: StaticCell<Buffers> = StaticCell::new();
    FLASH.lock(|cell| *cell.borrow_mut() = Some(flash));
    let controller = WifiController::new(wifi, Default::default()).expect("WiFi driver");
    let access_point = Interface::access_point();
    let mac = access_point.mac_address();
    let mut name: heapless::String<32> = heapless::String::new();
    let _ = write!(name, "PumpPilot-{:02X}{:02X}", mac[4], mac[5]);
    let rng = Rng::new();
    let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ADDRESS, 24),
        gateway: Some(ADDRESS),
        dns_servers: Default::default(),
    });
    let (stack, runner) = embassy_net::new(access_point, config, RESOURCES.init(StackResources::new()), seed);
    let udp = UDP.init(UdpBuffers::new());
    spawner.spawn(net_task(runner).expect("net task"));
    spawner.spawn(access_point_task(controller, name).expect("access point task"));
    spawner.spawn(dhcp_task(stack, udp).expect("DHCP task"));
    spawner.spawn(dns_task(stack, udp).expect("DNS task"));
    for id in 0..WEB_TASKS {
        spawner.spawn(web_task(id, stack, stored).expect("web task"));
    }
    spawner.spawn(save_task(has_settings).expect("save task"));
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) {
    runner.run().await
}

/// Opens the access point and keeps its controller (dropping it would stop WiFi).
#[embassy_executor::task]
async fn access_point_task(mut controller: WifiController<'static>, name: heapless::String<32>) {
    let started = Ssid::try_from(name.as_str()).map_err(|_| ()).and_then(|ssid| {
        controller
            .set_config(&WifiConfig::AccessPoint(AccessPointConfig::default().with_ssid(ssid)))
            .map_err(|err| println!("setup mode: the access point did not start: {err:?}"))
    });
    if started.is_ok() {
        println!("setup mode: join the WiFi {name} and open {PAGE_URL}");
    }
    core::future::pending::<()>().await
}

/// Hands out addresses from 192.168.4.50 on, the device as gateway and name server, and the page
/// as the captive portal's address (RFC 8910).
#[embassy_executor::task]
async fn dhcp_task(stack: Stack<'static>, buffers: &'static Buffers) {
    let udp = Udp::new(stack, buffers);
    let mut buf = [0u8; 640];
    let dns = [ADDRESS];
    loop {
        match udp.bind(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67))).await {
            Ok(mut socket) => {
                let mut gateway = [ADDRESS];
                let mut options = edge_dhcp::server::ServerOptions::new(ADDRESS, Some(&mut gateway));
                options.dns = &dns;
                options.captive_url = Some(PAGE_URL);
                let mut server = edge_dhcp::server::Server::<_, 8>::new(|| Instant::now().as_secs(), ADDRESS);
                if let Err(err) = edge_dhcp::io::server::run(&mut server, &options, &mut socket, &mut buf).await {
                    println!("setup mode: DHCP server: {err:?}");
                }
            }
            Err(err) => println!("setup mode: DHCP port: {err:?}"),
        }
        Timer::after(Duration::from_secs(1)).await;
    }
}

/// Answers every name with the device's own address.
#[embassy_executor::task]
async fn dns_task(stack: Stack<'static>, buffers: &'static Buffers) {
    let udp = Udp::new(stack, buffers);
    let (mut tx, mut rx) = ([0u8; 512], [0u8; 512]);
    loop {
        let local = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53));
        let ttl = core::time::Duration::from_secs(60);
        if let Err(err) = edge_captive::io::run(&udp, local, &mut tx, &mut rx, ADDRESS, ttl).await {
            println!("setup mode: name server: {err:?}");
        }
        Timer::after(Duration::from_secs(1)).await;
    }
}

/// Every address but the page's is sent to the page (a phone's portal check then opens it).
struct ToThePage;

impl PathRouterService<()> for ToThePage {
    async fn call_path_router_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _current_path_parameters: (),
        _path: Path<'_>,
        request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        Redirect::to(PAGE_URL).write_to(request.body_connection.finalize().await?, response_writer).await
    }
}

/// The setup page, written piece by piece straight to the connection (no buffer holds the
/// page; its length is known beforehand).
struct SetupPage(setup::Page);

impl Content for SetupPage {
    fn content_type(&self) -> &'static str {
        "text/html; charset=utf-8"
    }

    fn content_length(&self) -> usize {
        self.0.byte_len()
    }

    async fn write_content<W: Write>(self, mut writer: W) -> Result<(), W::Error> {
        for piece in self.0.pieces() {
            writer.write_all(piece.as_bytes()).await?;
        }
        Ok(())
    }
}

/// The page, with the stored levels chosen when there are some.
fn show_page(stored: Option<Levels>) -> impl IntoResponse {
    Response::ok(SetupPage(setup::page(stored)))
}

/// The form posted by the page: checked by the controller; when it passes, it waits for the
/// board's button (202, "press the button"), unless other settings wait already, settings were
/// just discarded or a press took settings (409). Nothing is saved here: only a press saves.
async fn send(form: heapless::Vec<u8, 1024>) -> impl IntoResponse {
    let mut answer: heapless::String<320> = heapless::String::new();
    let status = match DeviceSettings::from_form(&form) {
        Err(refused) => {
            println!("setup mode: not saved: {} {}", refused.field, refused.problem);
            let _ = refused.write_json(&mut answer);
            StatusCode::BAD_REQUEST
        }
        Ok(new) => match PENDING.lock(|pending| pending.borrow_mut().send(crate::now(), new)) {
            Ok(sent) => {
                println!("setup mode: settings sent; waiting for a press of the button ({} ms)", sent.press_within_ms);
                crate::led::redraw();
                let _ = sent.write_json(&mut answer);
                StatusCode::ACCEPTED
            }
            Err(refused) => {
                println!("setup mode: settings refused: {refused:?}");
                let _ = refused.write_json(&mut answer);
                StatusCode::CONFLICT
            }
        },
    };
    Response::new(status, answer).with_content_type("application/json")
}

/// What became of the settings sent (`setup::PendingSave::write_json`), for the page to ask when
/// its count reaches zero.
async fn pending() -> impl IntoResponse {
    let mut answer: heapless::String<32> = heapless::String::new();
    let _ = PENDING.lock(|pending| pending.borrow().write_json(crate::now(), &mut answer));
    Response::ok(answer).with_content_type("application/json")
}

/// One sample of the board's button (`pressed`: held down), from the control loop in setup mode:
/// a press in time hands the settings waiting to [`save_task`].
pub fn button(now: Millis, pressed: bool) {
    match PENDING.lock(|pending| pending.borrow_mut().sample(now, pressed)) {
        Some(Confirmed::Save(new)) => {
            println!("setup mode: the button was pressed; saving the settings");
            PRESSED.signal(new);
        }
        Some(Confirmed::Discarded) => {
            println!("setup mode: nobody pressed the button in time; settings discarded");
            crate::led::redraw();
        }
        None => {}
    }
}

/// The LED's pattern in setup mode: fast while settings wait for the button.
pub fn blink(now: Millis) -> Blink {
    PENDING.lock(|pending| pending.borrow().blink(now))
}

#[embassy_executor::task(pool_size = WEB_TASKS)]
async fn web_task(id: usize, stack: Stack<'static>, stored: Option<Levels>) {
    static CONFIG: picoserve::Config = picoserve::Config::const_default();
    let app = picoserve::Router::from_service(ToThePage)
        .route("/", get(async move || show_page(stored)).post(send))
        .route(setup::PENDING_PATH, get(pending));
    let (mut rx, mut tx, mut http) = ([0u8; 1024], [0u8; 1536], [0u8; 2048]);
    picoserve::Server::new(&app, &CONFIG, &mut http).listen_and_serve(id, stack, 80, &mut rx, &mut tx).await;
}

/// Writes the settings a press of the button took, reads them back, and restarts into them; or,
/// on a board that has settings, restarts after [`GIVE_UP`] without a press (a press of the
/// button by mistake does not keep the pump out of work), though never while settings wait for
/// the button or after a press took them (`PendingSave::give_up` decides; asked each second until
/// it may). Settings that do not read back as written restart the board into setup mode again,
/// to be sent again.
#[embassy_executor::task]
async fn save_task(has_settings: bool) {
    let give_up = async {
        if !has_settings {
            return core::future::pending().await;
        }
        Timer::after(GIVE_UP).await;
        while !PENDING.lock(|pending| pending.borrow_mut().give_up(crate::now())) {
            Timer::after(Duration::from_secs(1)).await;
        }
    };
    match select(give_up, PRESSED.wait()).await {
        Either::First(()) => println!("setup mode: nothing saved in 15 minutes; restarting with the settings it had"),
        Either::Second(new) => {
            let written =
                FLASH.lock(|cell| cell.borrow_mut().as_mut().is_some_and(|flash| settings::save(flash, &new)));
            if written {
                println!("setup mode: settings saved; restarting into normal mode");
            } else {
                println!("setup mode: the settings could not be written to flash; restarting into setup mode");
                settings::request_setup_mode();
            }
        }
    }
    // A moment for the console's last lines; the outputs OFF before the reset, as on every path.
    Timer::after(Duration::from_millis(500)).await;
    crate::board::outputs_off_raw();
    esp_hal::system::software_reset();
}
