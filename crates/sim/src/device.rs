//! One virtual device: the real [`Controller`] in a loop with a clock, two input "pins", a
//! network link to the server and a card reader, exactly as the firmware wires it.
//!
//! The loop ticks every [`TICK`]: it reads the inputs (from the script, or as set through the
//! [`Controls`]), asks the controller for the relay level, and polls when the controller's
//! schedule says so, or at once when a local change must be reported (cutting a long-poll short).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pumppilot_controller::{
    AnswerError, BootCheck, BootVerdict, CardFeedback, Controller, Decision, LinkSecret, LongPoll, Millis, OffReason,
    Reply, Sent, Settings, Signature, Stage, Update,
    protocol::{self, HoldReason, MotorState, PollAnswer, json, link},
    timing,
};
use tokio::sync::{mpsc, watch};

use crate::{
    mqtt::{Connection as MqttConnection, Packet as MqttPacket},
    script::{Inputs, Script},
};

/// How often the control loop of one device looks at its inputs and the relay: the firmware's
/// loop period, from the controller crate.
pub const TICK: Duration = Duration::from_millis(timing::TICK_MS as u64);
/// The loop period for large fleets (five firmware ticks), where a looser local reaction keeps the
/// simulator's own CPU use far below the server's. Inputs then settle later, never sooner.
pub const FLEET_TICK: Duration = Duration::from_millis(5 * timing::TICK_MS as u64);
/// How long a card tap's request may take before it counts as failed (the firmware's).
const CARD_REQUEST_TIMEOUT: Duration = Duration::from_millis(timing::CARD_REQUEST_TIMEOUT_MS as u64);

/// What a virtual device is.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub name: String,
    /// `http://host:port`, without a trailing slash.
    pub server: String,
    pub key: String,
    /// The device's link secret (`pp_link_…`): with one, every request is signed and only answers
    /// whose MAC checks are used, as on the firmware.
    pub link_secret: Option<String>,
    /// The firmware's public key: with one, the device takes the updates its poll answers offer
    /// (`update`), downloads and checks them as the firmware does, and "reboots" into them.
    pub firmware_key: Option<[u8; 32]>,
    /// Scripted inputs; without one, the [`Controls`] decide.
    pub script: Option<Script>,
    /// The firmware's settings; `settings.long_poll` asks for long-polls (`wait=`).
    pub settings: Settings,
    /// The control loop's period ([`TICK`], or [`FLEET_TICK`] for thousands of devices).
    pub tick: Duration,
    /// Receives every happening as it happens (for printing live), with the device's name.
    pub observer: Option<mpsc::UnboundedSender<(String, Duration, Happening)>>,
    /// Talk MQTT to this listener instead of polling `server` (card taps and updates still go
    /// over HTTP). With a link secret the reports are signed and only signed commands are taken.
    pub mqtt: Option<MqttSpec>,
    /// Where each boot counts its signed requests from (`Controller::set_first_counter`): `None`
    /// draws a random point, as the firmware does; a test names one (below the counters a boot
    /// used before, to meet the server's refusal after a reboot). Its card taps are numbered from
    /// a random point at each boot either way.
    pub first_counter: Option<u64>,
}

/// Where and as whom a device connects over MQTT.
#[derive(Debug, Clone)]
pub struct MqttSpec {
    /// `host:port` of the server's MQTT listener.
    pub addr: String,
    /// The device's id (its MQTT client id and username).
    pub device_id: String,
}

impl DeviceSpec {
    /// A device with the firmware's default settings, plain polling and no script.
    pub fn new(name: impl Into<String>, server: impl Into<String>, key: impl Into<String>) -> Self {
        DeviceSpec {
            name: name.into(),
            server: server.into().trim_end_matches('/').to_owned(),
            key: key.into(),
            link_secret: None,
            firmware_key: None,
            script: None,
            observer: None,
            mqtt: None,
            first_counter: None,
            tick: TICK,
            settings: Settings {
                firmware: Some(concat!("pumppilot-sim ", env!("CARGO_PKG_VERSION"))),
                ..Settings::DEFAULT
            },
        }
    }
}

impl DeviceSpec {
    /// A device from its credentials as the CLI takes them: `key`, or `key:link-secret` for a
    /// device that signs (neither a key nor a secret contains `:`).
    pub fn with_credentials(name: impl Into<String>, server: impl Into<String>, credentials: &str) -> Self {
        let (key, secret) = match credentials.split_once(':') {
            Some((key, secret)) => (key, Some(secret.to_owned())),
            None => (credentials, None),
        };
        DeviceSpec { link_secret: secret, ..DeviceSpec::new(name, server, key) }
    }
}

/// The device's inputs as a test or the demo sets them (ignored while a script runs).
#[derive(Debug)]
pub struct Controls {
    grid_up: AtomicBool,
    ready: AtomicBool,
    network: AtomicBool,
    cards: Mutex<Vec<Vec<u8>>>,
}

impl Controls {
    fn new() -> Self {
        Controls {
            grid_up: AtomicBool::new(true),
            ready: AtomicBool::new(true),
            network: AtomicBool::new(true),
            cards: Mutex::default(),
        }
    }

    fn inputs(&self) -> Inputs {
        Inputs {
            grid_up: self.grid_up.load(Ordering::Relaxed),
            ready: self.ready.load(Ordering::Relaxed),
            network: self.network.load(Ordering::Relaxed),
        }
    }
}

/// Something that happened at the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    /// The relay switched.
    Relay { on: bool, why: Option<OffReason> },
    /// The inputs changed (scripted or set).
    Inputs(Inputs),
    /// The server's command changed.
    Command { state: MotorState, hold: Option<HoldReason>, remaining_seconds: u32 },
    /// Polls started failing (`false`) or work again (`true`).
    Link { up: bool, error: Option<String> },
    /// A card tap and what the server made of it.
    Card { uid: String, feedback: CardFeedback },
    /// A firmware update moved on.
    Firmware { version: String, stage: UpdateStage },
}

/// How far a firmware update got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateStage {
    /// A poll answer offered it.
    Offered,
    /// Every byte arrived and every check passed.
    Verified,
    /// The device restarted into it (with the relay open).
    Rebooted,
    /// The first usable answer after the reboot: the image is marked valid.
    Confirmed,
    /// No usable answer in time after the reboot: back to the previous image.
    RolledBack,
    /// A check failed or the server refused; the running image stays.
    Failed(String),
}

/// Everything one device saw, in order, with counters.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub name: String,
    pub events: Vec<(Duration, Happening)>,
    pub polls: u64,
    /// Polls with no usable answer while the network was up (what a fleet run must keep at zero).
    pub errors: u64,
    /// Polls that failed because the network was cut on purpose.
    pub cut_polls: u64,
    /// Round trips of plain polls, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl Timeline {
    /// The relay switches, in order.
    pub fn relay_changes(&self) -> Vec<(Duration, bool)> {
        self.events
            .iter()
            .filter_map(|(at, what)| match what {
                Happening::Relay { on, .. } => Some((*at, *on)),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, what) in &self.events {
            writeln!(f, "{}", Line(&self.name, *at, what))?;
        }
        Ok(())
    }
}

/// One printed line of a timeline: `[name]   12.345s  relay ON`.
pub struct Line<'a>(pub &'a str, pub Duration, pub &'a Happening);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Line(name, at, what) = *self;
        write!(f, "[{name}] {:>8.3}s  ", at.as_secs_f64())?;
        match what {
            Happening::Relay { on: true, .. } => write!(f, "relay ON"),
            Happening::Relay { on: false, why } => write!(f, "relay OFF ({})", off_reason(*why)),
            Happening::Inputs(i) => write!(
                f,
                "inputs: grid {}, pump {}, network {}",
                if i.grid_up { "up" } else { "DOWN" },
                if i.ready { "ready" } else { "NOT READY" },
                if i.network { "up" } else { "CUT" }
            ),
            Happening::Command { state, hold, remaining_seconds } => {
                write!(f, "server says {}", state.as_str())?;
                if let Some(hold) = hold {
                    write!(f, " ({})", hold.as_str())?;
                }
                if *state != MotorState::Idle {
                    write!(f, ", {}:{:02} left", remaining_seconds / 60, remaining_seconds % 60)?;
                }
                Ok(())
            }
            Happening::Link { up: true, .. } => write!(f, "server reachable again"),
            Happening::Link { up: false, error } => {
                write!(f, "server unreachable: {}", error.as_deref().unwrap_or("no answer"))
            }
            Happening::Card { uid, feedback } => write!(f, "card {uid}: {feedback:?}"),
            Happening::Firmware { version, stage } => write!(f, "firmware {version}: {stage:?}"),
        }
    }
}

fn off_reason(why: Option<OffReason>) -> &'static str {
    match why {
        None => "stopped",
        Some(OffReason::NoCommand) => "no command from the server",
        Some(OffReason::CommandOff) => "the server says OFF",
        Some(OffReason::LeaseExpired) => "lease ran out",
        Some(OffReason::ClockWentBack) => "clock went back",
        Some(OffReason::LoadSheddingUnknown | OffReason::ReadyUnknown) => "inputs settling",
        Some(OffReason::LoadShedding) => "load shedding, switched off locally",
        Some(OffReason::NotReady) => "pump not ready, switched off locally",
        Some(OffReason::GridSettling) => "waiting for the grid to settle",
        Some(OffReason::NoFeedback) => "the motor did not confirm it runs",
        Some(OffReason::MinOffTime) => "restart protection: minimum OFF time",
        Some(OffReason::StartsPerHour) => "restart protection: starts per hour",
    }
}

/// A running virtual device.
pub struct VirtualDevice {
    pub controls: Arc<Controls>,
    relay: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Timeline>,
}

impl VirtualDevice {
    /// Boots a device (relay OFF) and runs it until [`VirtualDevice::stop`].
    pub fn spawn(spec: DeviceSpec, http: reqwest::Client) -> VirtualDevice {
        let controls = Arc::new(Controls::new());
        let (relay_tx, relay) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(spec, http, Arc::clone(&controls), relay_tx, stop_rx));
        VirtualDevice { controls, relay, stop, task }
    }

    /// The relay level, updated at every switch.
    pub fn relay(&self) -> watch::Receiver<bool> {
        self.relay.clone()
    }

    /// Waits until the relay is `on`, at most `limit`; true when it got there.
    pub async fn wait_for_relay(&self, on: bool, limit: Duration) -> bool {
        let mut relay = self.relay();
        matches!(tokio::time::timeout(limit, relay.wait_for(|level| *level == on)).await, Ok(Ok(_)))
    }

    pub fn set_grid_up(&self, up: bool) {
        self.controls.grid_up.store(up, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.controls.ready.store(ready, Ordering::Relaxed);
    }

    pub fn set_network(&self, up: bool) {
        self.controls.network.store(up, Ordering::Relaxed);
    }

    /// Holds a card to the reader.
    pub fn tap(&self, uid: &[u8]) {
        self.controls.cards.lock().expect("cards lock").push(uid.to_vec());
    }

    /// Stops the device (relay OFF) and returns what it saw.
    pub async fn stop(self) -> Timeline {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// An HTTP answer with the link's headers.
struct Answered {
    status: reqwest::StatusCode,
    counter: Option<Vec<u8>>,
    mac: Option<Vec<u8>>,
    body: Vec<u8>,
}

impl Answered {
    async fn read(answer: reqwest::Response) -> Result<Answered, reqwest::Error> {
        let status = answer.status();
        let header = |name: &str| answer.headers().get(name).map(|v| v.as_bytes().to_vec());
        let (counter, mac) = (header(link::COUNTER_HEADER), header(link::MAC_HEADER));
        let body = answer.bytes().await?.to_vec();
        Ok(Answered { status, counter, mac, body })
    }

    fn reply(&self) -> Reply<'_> {
        Reply {
            status: self.status.as_u16(),
            counter: self.counter.as_deref(),
            mac: self.mac.as_deref(),
            body: &self.body,
        }
    }
}

/// The outcome of one poll request.
enum Polled {
    Answer(Answered),
    Failed(String),
    Cut,
}

type InFlight = Pin<Box<dyn Future<Output = Polled> + Send>>;

struct Device {
    spec: DeviceSpec,
    http: reqwest::Client,
    controller: Controller,
    started: Instant,
    timeline: Timeline,
    relay: watch::Sender<bool>,
    inputs: Option<Inputs>,
    /// How long after the start the inputs were last read (cards held since then are tapped).
    sensed_until: Duration,
    last_command: Option<(MotorState, Option<HoldReason>)>,
    link_up: bool,
    /// The firmware update under way, if any.
    updating: Option<Updating>,
    /// A freshly booted image not confirmed yet.
    boot_check: Option<(String, Millis, BootCheck)>,
}

/// A firmware update under way: the version, and once its description checked, the download.
struct Updating {
    version: String,
    update: Option<Update>,
    /// No request before this moment of the device's clock: after a range that got no usable
    /// answer, the wait [`Update::range_failed`] returned (the firmware's `Timer::after`).
    not_before: Millis,
    /// The description got no usable answer: it is asked again when a poll answer offers the
    /// update again, as the firmware waits for the next offer.
    awaits_offer: bool,
}

impl Updating {
    fn new(version: &str) -> Self {
        Updating { version: version.to_owned(), update: None, not_before: Millis(0), awaits_offer: false }
    }
}

/// The range asked for per request.
const CHUNK_BYTES: u32 = 16 * 1024;

async fn run(
    spec: DeviceSpec,
    http: reqwest::Client,
    controls: Arc<Controls>,
    relay: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Timeline {
    let mut device = Device::new(spec, http, relay);
    if let Some(mqtt) = device.spec.mqtt.clone() {
        return run_mqtt(device, mqtt, controls, stop).await;
    }
    let (card_tx, mut card_rx) = mpsc::unbounded_channel::<TapAnswer>();
    let mut tick = device.ticker();
    let mut in_flight: Option<(InFlight, Sent, bool)> = None;
    let mut fetching: Option<(InFlight, Option<Signature>, Option<u32>)> = None;
    let mut next_poll = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (inputs, now) = device.tick(&controls, &card_tx);
                // Nothing is reported before both inputs have settled (a boot would otherwise
                // report load shedding for a moment). Then a local change is reported at once,
                // cutting a long-poll in flight short.
                let settled = device.controller.settled(now);
                let urgent = device.controller.report_now(now);
                let cut_short = matches!(&in_flight, Some((_, _, true))) && urgent;
                if cut_short || (settled && in_flight.is_none() && (urgent || Instant::now() >= next_poll)) {
                    in_flight = Some(device.poll(inputs.network));
                }
                // A firmware update moves on only while the relay is open (the controller says).
                if fetching.is_none() && inputs.network && device.controller.may_update(now) {
                    fetching = device.update_step(now);
                }
            }
            fetched = async { fetching.as_mut().expect("guarded").0.as_mut().await }, if fetching.is_some() => {
                let (_, signature, first) = fetching.take().expect("guarded");
                let now = device.now();
                device.fetched(fetched, signature, first, now);
            }
            polled = async { in_flight.as_mut().expect("guarded").0.as_mut().await }, if in_flight.is_some() => {
                let (_, sent, long) = in_flight.take().expect("guarded");
                // An answer that "arrives" after the network was cut never reached the device.
                let polled = if device.inputs.is_some_and(|i| !i.network) { Polled::Cut } else { polled };
                let usable = device.polled(polled, sent, long);
                let wait = if usable && device.spec.settings.long_poll { 0 } else { device.controller.next_poll_in(rand::random()) };
                next_poll = Instant::now() + Duration::from_millis(u64::from(wait));
                device.switch();
            }
            Some(tapped) = card_rx.recv() => device.card_answered(tapped),
            _ = stop.changed() => break,
        }
    }
    device.finish()
}

type Connecting = Pin<Box<dyn Future<Output = Result<MqttConnection, crate::mqtt::ConnectError>> + Send>>;

/// The device's loop over MQTT: connect (again, backing off, while the network is up), report
/// when the controller's schedule says so or at once on a change, and hand every pushed command
/// to the controller. A network cut drops the connection (the server sees the socket close).
async fn run_mqtt(
    mut device: Device,
    mqtt: MqttSpec,
    controls: Arc<Controls>,
    mut stop: watch::Receiver<bool>,
) -> Timeline {
    use pumppilot_controller::mqtt::{Pushed, Topics};
    let Some(topics) = Topics::new(&mqtt.device_id) else {
        device.record(Happening::Link { up: false, error: Some(format!("{:?} is no device id", mqtt.device_id)) });
        return device.finish();
    };
    let (card_tx, mut card_rx) = mpsc::unbounded_channel::<TapAnswer>();
    let mut tick = device.ticker();
    let mut connection: Option<MqttConnection> = None;
    let mut connecting: Option<Connecting> = None;
    let mut next_try = Instant::now();
    let mut next_report = Instant::now();
    let mut last_sent = Instant::now();
    let mut awaited = Awaited::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (inputs, now) = device.tick(&controls, &card_tx);
                if !inputs.network {
                    if connection.take().is_some() || connecting.take().is_some() {
                        device.controller.poll_failed(now);
                        device.timeline.cut_polls += 1;
                        device.link(false, Some("network cut".into()));
                    }
                    continue;
                }
                if connection.is_none() && connecting.is_none() && Instant::now() >= next_try {
                    let (addr, id, key) = (mqtt.addr.clone(), mqtt.device_id.clone(), device.spec.key.clone());
                    connecting = Some(Box::pin(async move { MqttConnection::device(&addr, &id, &key).await }));
                }
                let Some(open) = connection.as_mut() else { continue };
                let due = device.controller.report_now(now) || Instant::now() >= next_report;
                let sent = if device.controller.settled(now) && due {
                    let report = device.controller.mqtt_report(now);
                    let mut buf = [0u8; pumppilot_controller::mqtt::MAX_REPORT_PAYLOAD];
                    // Signed when the device has a link secret.
                    let len = device.controller.mqtt_payload(&report, topics.report.as_str(), &mut buf).unwrap_or(0);
                    awaited.reported(report.reference, report.report.relay, Instant::now());
                    device.timeline.polls += 1;
                    let wait = device.controller.next_poll_in(rand::random());
                    next_report = Instant::now() + Duration::from_millis(u64::from(wait));
                    Some(open.publish(topics.report.as_str(), &buf[..len]).await)
                } else if last_sent.elapsed() >= Duration::from_secs(u64::from(pumppilot_controller::mqtt::KEEP_ALIVE_S) / 2) {
                    Some(open.send(MqttPacket::PingReq).await)
                } else {
                    None
                };
                match sent {
                    Some(Ok(())) => last_sent = Instant::now(),
                    Some(Err(err)) => {
                        connection = None;
                        device.lost(&mut next_try, err.to_string());
                    }
                    None => {}
                }
            }
            made = async { connecting.as_mut().expect("guarded").as_mut().await }, if connecting.is_some() => {
                connecting = None;
                match made {
                    Ok(open) => {
                        connection = Some(open);
                        last_sent = Instant::now();
                        awaited.anew();
                    }
                    Err(err) => device.lost(&mut next_try, err.to_string()),
                }
            }
            packet = async { connection.as_mut().expect("guarded").next().await }, if connection.is_some() => {
                let now = device.now();
                match packet {
                    Ok(Some(MqttPacket::Publish(publish))) if publish.topic == topics.command.as_str() => {
                        match device.controller.command(now, topics.command.as_str(), &publish.payload) {
                            Ok(pushed) => {
                                if let Pushed::Taken(_) = pushed {
                                    let named = || {
                                        json::decode_ref(link::unframe(&publish.payload).body(), protocol::MAX_ANSWER_BYTES)
                                            .ok()
                                            .flatten()
                                    };
                                    if let Some(round_trip) = awaited.taken(Instant::now(), named) {
                                        device.timeline.latencies_us.push(u32::try_from(round_trip.as_micros()).unwrap_or(u32::MAX));
                                    }
                                }
                                device.offered(json::decode_update(link::unframe(&publish.payload).body()));
                                device.answered(pushed.answer());
                                device.link(true, None);
                            }
                            Err(AnswerError::Stale) => {}
                            Err(AnswerError::Refused(status)) => {
                                // The server refused the report's counter (the device counted
                                // from below): the controller moved it; report after the retry.
                                let wait = device.controller.next_poll_in(rand::random());
                                next_report = Instant::now() + Duration::from_millis(u64::from(wait));
                                awaited.anew();
                                device.link(false, Some(format!("report refused ({status})")));
                            }
                            Err(err) => {
                                device.timeline.errors += 1;
                                device.link(false, Some(format!("unusable command ({err:?})")));
                            }
                        }
                        device.switch();
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        connection = None;
                        device.lost(&mut next_try, "the server closed the connection".into());
                    }
                    Err(err) => {
                        connection = None;
                        device.lost(&mut next_try, err.to_string());
                    }
                }
            }
            Some(tapped) = card_rx.recv() => device.card_answered(tapped),
            _ = stop.changed() => break,
        }
    }
    if let Some(mut open) = connection {
        let _ = open.send(MqttPacket::Disconnect).await;
    }
    device.finish()
}

/// The report whose answer an MQTT device awaits, for the round trip the timeline records: only
/// a report the server must answer (`docs/DEVICE.md`, "MQTT": an unchanged OFF is told once), so
/// a push that later names a report the server rightly left unanswered is not taken for a slow
/// answer to it.
#[derive(Default)]
struct Awaited {
    /// The last report's ref and sending, while its answer is owed.
    report: Option<(u32, Instant)>,
    /// A command naming a report was taken since the connection opened or a report was refused:
    /// from then on an unchanged OFF goes unanswered.
    told: bool,
}

impl Awaited {
    /// A report was sent at `at`, saying the relay is closed (`relay`) or open.
    fn reported(&mut self, reference: u32, relay: bool, at: Instant) {
        self.report = (!self.told || relay).then_some((reference, at));
    }

    /// A command was taken at `at`: the round trip when it names (`named`, read only while an
    /// answer is owed) the report awaited.
    fn taken(&mut self, at: Instant, named: impl FnOnce() -> Option<u32>) -> Option<Duration> {
        self.told = true;
        let (reference, sent) = self.report?;
        (named() == Some(reference)).then(|| {
            self.report = None;
            at.duration_since(sent)
        })
    }

    /// A new connection, or a refused report: the server answers the next report whatever it says.
    fn anew(&mut self) {
        self.told = false;
    }
}

impl Device {
    /// A device as it powers on.
    fn new(spec: DeviceSpec, http: reqwest::Client, relay: watch::Sender<bool>) -> Self {
        Device {
            controller: {
                // A virtual board always starts from power-on; its first poll says so, as a real one.
                booted(&spec, protocol::ResetReason::PowerOn)
            },
            timeline: Timeline { name: spec.name.clone(), ..Timeline::default() },
            spec,
            http,
            started: Instant::now(),
            relay,
            inputs: None,
            sensed_until: Duration::ZERO,
            last_command: None,
            link_up: true,
            updating: None,
            boot_check: None,
        }
    }

    fn now(&self) -> Millis {
        Millis(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The link came up (`true`) or failed, recorded when that changes.
    fn link(&mut self, up: bool, error: Option<String>) {
        if self.link_up != up {
            self.link_up = up;
            self.record(Happening::Link { up, error });
        }
    }

    /// An MQTT connection failed or was lost while the network was up: a failed poll, and the
    /// next try after the controller's backoff.
    fn lost(&mut self, next_try: &mut Instant, error: String) {
        let now = self.now();
        self.controller.poll_failed(now);
        self.timeline.errors += 1;
        let wait = self.controller.next_poll_in(rand::random());
        *next_try = Instant::now() + Duration::from_millis(u64::from(wait));
        self.link(false, Some(error));
    }

    fn record(&mut self, what: Happening) {
        let at = self.started.elapsed();
        if let Some(observer) = &self.spec.observer {
            let _ = observer.send((self.spec.name.clone(), at, what.clone()));
        }
        self.timeline.events.push((at, what));
    }

    /// The device's clock: one tick every `spec.tick`, late ticks delayed rather than bunched.
    fn ticker(&self) -> tokio::time::Interval {
        let mut tick = tokio::time::interval(self.spec.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    }

    /// One tick: reads the inputs (and the cards held since the last tick) and drives the relay;
    /// returns the inputs read and the controller's time after.
    fn tick(&mut self, controls: &Controls, cards: &mpsc::UnboundedSender<TapAnswer>) -> (Inputs, Millis) {
        let elapsed = self.started.elapsed();
        let inputs = self.sense(controls, self.sensed_until, elapsed, cards);
        self.sensed_until = elapsed;
        self.switch();
        (inputs, self.now())
    }

    /// A card tap's answer (none when it failed), checked by the controller (and its MAC: it
    /// knows the link's secret), and the feedback recorded.
    fn card_answered(&mut self, (uid, signature, answered): TapAnswer) {
        let feedback = match &answered {
            Some(answered) => self.controller.card_reply(signature, answered.reply()),
            None => CardFeedback::Error,
        };
        self.record(Happening::Card { uid, feedback });
    }

    /// Reads the inputs into the controller, and sends the cards held since the last tick.
    fn sense(
        &mut self,
        controls: &Controls,
        before: Duration,
        elapsed: Duration,
        cards: &mpsc::UnboundedSender<TapAnswer>,
    ) -> Inputs {
        let mut held: Vec<Vec<u8>> = std::mem::take(&mut *controls.cards.lock().expect("cards lock"));
        let inputs = match &self.spec.script {
            Some(script) => {
                held.extend(script.cards(before, elapsed).map(<[u8]>::to_vec));
                script.inputs(elapsed)
            }
            None => controls.inputs(),
        };
        if self.inputs != Some(inputs) {
            self.inputs = Some(inputs);
            self.record(Happening::Inputs(inputs));
        }
        let s = self.spec.settings;
        let now = self.now();
        let load_shedding_level = pumppilot_controller::pin_level(!inputs.grid_up, s.load_shedding_active_high);
        let ready_level = pumppilot_controller::pin_level(inputs.ready, s.ready_active_high);
        self.controller.sense(now, load_shedding_level, ready_level);
        for uid in held {
            if let Some(card) = self.controller.card(now, &uid) {
                let uid = card.as_str().to_owned();
                let body = tap_body(&card);
                let signature = self.controller.sign("POST", protocol::CARD_PATH, &body);
                let request = self.request(protocol::CARD_PATH, body, signature, CARD_REQUEST_TIMEOUT);
                let network = inputs.network;
                let cards = cards.clone();
                tokio::spawn(async move {
                    let answered = match network {
                        true => match request.send().await {
                            Ok(answer) => Answered::read(answer).await.ok(),
                            Err(_) => None,
                        },
                        false => None,
                    };
                    let _ = cards.send((uid, signature, answered));
                });
            }
        }
        inputs
    }

    /// Drives the relay as the controller decides, recording every switch.
    fn switch(&mut self) {
        let decision = self.controller.drive(self.now());
        let on = decision.is_on();
        if *self.relay.borrow() == on {
            return;
        }
        let why = match decision {
            Decision::On => None,
            Decision::Off(reason) => Some(reason),
        };
        self.relay.send_replace(on);
        self.record(Happening::Relay { on, why });
    }

    fn request(
        &self,
        path: &str,
        body: Vec<u8>,
        signature: Option<Signature>,
        timeout: Duration,
    ) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(format!("{}{path}", self.spec.server))
            .bearer_auth(&self.spec.key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body);
        match signature {
            Some(signature) => request
                .header(link::COUNTER_HEADER, signature.counter())
                .header(link::MAC_HEADER, String::from_utf8_lossy(&signature.mac_hex()).into_owned()),
            None => request,
        }
    }

    /// Starts a poll with the controller's report (a long-poll when the controller asks for one).
    fn poll(&mut self, network: bool) -> (InFlight, Sent, bool) {
        let now = self.now();
        let poll = self.controller.poll(now);
        let mut buf = [0u8; json::MAX_REPORT_BYTES];
        let body = match json::encode_report(&poll.report, &mut buf) {
            Ok(len) => buf[..len].to_vec(),
            Err(_) => Vec::new(),
        };
        let long = poll.long_poll.is_some();
        let path = match poll.long_poll {
            Some(LongPoll { wait_ms, seq }) => format!("{}?wait={wait_ms}&seq={seq}", protocol::POLL_PATH),
            None => protocol::POLL_PATH.to_owned(),
        };
        // The controller sizes the timeout: never more than half of what is left of the lease.
        let timeout = Duration::from_millis(u64::from(poll.timeout_ms));
        let mut sent = poll.sent;
        let signature = self.controller.sign_poll(&mut sent, "POST", &path, &body);
        if !network {
            // Packets go nowhere: the request times out (sooner than a real one, to keep runs short).
            let future: InFlight = Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Polled::Cut
            });
            return (future, sent, false);
        }
        let request = self.request(&path, body, signature, timeout);
        let future: InFlight = Box::pin(async move {
            match request.send().await {
                Ok(answer) => match Answered::read(answer).await {
                    Ok(answered) => Polled::Answer(answered),
                    Err(err) => Polled::Failed(err.to_string()),
                },
                Err(err) => Polled::Failed(describe(&err)),
            }
        });
        (future, sent, long)
    }

    /// Takes a poll's outcome; true when the answer was usable.
    fn polled(&mut self, polled: Polled, sent: Sent, long: bool) -> bool {
        self.timeline.polls += 1;
        let now = self.now();
        let failure = match polled {
            Polled::Answer(answered) => match self.controller.reply(sent, now, answered.reply()) {
                Ok(answer) => {
                    self.offered(json::decode_update(&answered.body));
                    if !long {
                        let took = self.started.elapsed().saturating_sub(Duration::from_millis(sent.at().0));
                        self.timeline.latencies_us.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                    }
                    self.answered(&answer);
                    None
                }
                Err(AnswerError::Refused(_)) => {
                    let body = &answered.body;
                    Some(format!("HTTP {}: {}", answered.status, String::from_utf8_lossy(&body[..body.len().min(200)])))
                }
                Err(err) => Some(format!("unusable answer ({err:?})")),
            },
            Polled::Failed(error) => {
                self.controller.poll_failed(now);
                Some(error)
            }
            Polled::Cut => {
                self.controller.poll_failed(now);
                self.timeline.cut_polls += 1;
                if self.link_up {
                    self.link_up = false;
                    self.record(Happening::Link { up: false, error: Some("network cut".into()) });
                }
                return false;
            }
        };
        match failure {
            None if !self.link_up => {
                self.link_up = true;
                self.record(Happening::Link { up: true, error: None });
            }
            None => {}
            Some(error) => {
                self.timeline.errors += 1;
                if self.link_up {
                    self.link_up = false;
                    self.record(Happening::Link { up: false, error: Some(error) });
                }
            }
        }
        self.link_up
    }

    /// A usable poll answer: confirms a freshly booted image, and takes an update it offers.
    fn offered(&mut self, update: Option<&str>) {
        if let Some((version, booted, check)) = self.boot_check.take() {
            // The controller's clock counts from the "reboot": the time since it.
            let since_boot = Millis(self.now().0.saturating_sub(booted.0));
            match check.verdict(&self.controller, since_boot) {
                BootVerdict::Valid => self.record(Happening::Firmware { version, stage: UpdateStage::Confirmed }),
                BootVerdict::RollBack => self.record(Happening::Firmware { version, stage: UpdateStage::RolledBack }),
                BootVerdict::Wait => self.boot_check = Some((version, booted, check)),
            }
        }
        let (Some(version), Some(_)) = (update, self.spec.firmware_key) else { return };
        match &mut self.updating {
            None => {
                self.updating = Some(Updating::new(version));
                self.record(Happening::Firmware { version: version.to_owned(), stage: UpdateStage::Offered });
            }
            Some(updating) if updating.version == version => updating.awaits_offer = false,
            Some(_) => {}
        }
    }

    /// The next request of the update under way (its description, then range by range), or
    /// the reboot into a verified image, at `now` on the device's clock; `None` when there is
    /// nothing to do, or the download waits after a failed request.
    fn update_step(&mut self, now: Millis) -> Option<(InFlight, Option<Signature>, Option<u32>)> {
        let updating = self.updating.as_ref()?;
        if updating.awaits_offer || now < updating.not_before {
            return None;
        }
        let version = updating.version.clone();
        let (path, range) = match &updating.update {
            None => (format!("/api/esp32/firmware/{version}/release"), None),
            Some(update) => match update.next_range(CHUNK_BYTES) {
                Some(range) => (format!("/api/esp32/firmware/{version}"), Some(range)),
                None => {
                    self.reboot(version);
                    return None;
                }
            },
        };
        let signature = self.controller.sign("GET", &path, b"");
        let mut request = self.http.get(format!("{}{path}", self.spec.server)).bearer_auth(&self.spec.key);
        if let Some(signature) = signature {
            request = request
                .header(link::COUNTER_HEADER, signature.counter())
                .header(link::MAC_HEADER, String::from_utf8_lossy(&signature.mac_hex()).into_owned());
        }
        if let Some((first, last)) = range {
            request = request.header(reqwest::header::RANGE, format!("bytes={first}-{last}"));
        }
        let request = request.timeout(Duration::from_secs(10));
        let future: InFlight = Box::pin(async move {
            match request.send().await {
                Ok(answer) => match Answered::read(answer).await {
                    Ok(answered) => Polled::Answer(answered),
                    Err(err) => Polled::Failed(err.to_string()),
                },
                Err(err) => Polled::Failed(describe(&err)),
            }
        });
        Some((future, signature, range.map(|(first, _)| first)))
    }

    /// Takes the answer to an update request at `now` on the device's clock: the description
    /// (checked with the firmware's key) or a range (written where the controller says). A
    /// request with no usable answer (none at all, or one refused: a 401 after a key rotation, a
    /// 404) is asked again as the firmware does: the description at the next offer, a range after
    /// the wait [`Update::range_failed`] returns, and the update is given up when it returns
    /// `None`.
    fn fetched(&mut self, fetched: Polled, signature: Option<Signature>, first: Option<u32>, now: Millis) {
        let answered = match fetched {
            Polled::Answer(answered) if self.controller.accept(signature, &answered.reply()) => Some(answered),
            _ => None,
        };
        let Some(updating) = self.updating.as_mut() else { return };
        let version = updating.version.clone();
        let Some(answered) = answered else {
            match &mut updating.update {
                None => updating.awaits_offer = true,
                Some(update) => match update.range_failed() {
                    Some(wait_ms) => updating.not_before = Millis(now.0.saturating_add(u64::from(wait_ms))),
                    None => {
                        let why = match update.stage() {
                            Stage::Failed(err) => format!("{err:?}"),
                            stage => format!("{stage:?}"),
                        };
                        self.updating = None;
                        self.record(Happening::Firmware { version, stage: UpdateStage::Failed(why) });
                    }
                },
            }
            return;
        };
        let outcome = match (&mut updating.update, first) {
            (None, _) => begin(self.spec.firmware_key, &version, &answered.body).map(|update| {
                updating.update = Some(update);
                false
            }),
            (Some(update), Some(first)) => match update.received(first, &answered.body) {
                Ok(_) if update.next_range(CHUNK_BYTES).is_none() => {
                    update.finish().map(|()| true).map_err(|err| format!("{err:?}"))
                }
                Ok(_) => Ok(false),
                Err(err) => Err(format!("{err:?}")),
            },
            (Some(_), None) => Ok(false),
        };
        match outcome {
            Ok(true) => self.record(Happening::Firmware { version, stage: UpdateStage::Verified }),
            Ok(false) => {}
            Err(why) => {
                self.updating = None;
                self.record(Happening::Firmware { version, stage: UpdateStage::Failed(why) });
            }
        }
    }

    /// Restarts into a verified image (only ever with the relay open): a new controller, as after
    /// a real reboot, reporting the new version; it must then be confirmed by a usable answer.
    fn reboot(&mut self, version: String) {
        self.updating = None;
        let firmware: &'static str = Box::leak(format!("pumppilot-sim/{version}").into_boxed_str());
        self.spec.settings.firmware = Some(firmware);
        self.controller = booted(&self.spec, protocol::ResetReason::Software);
        self.boot_check = Some((version.clone(), self.now(), BootCheck::DEFAULT));
        self.record(Happening::Firmware { version, stage: UpdateStage::Rebooted });
    }

    fn answered(&mut self, answer: &PollAnswer) {
        let command = (answer.state, answer.hold_reason);
        if self.last_command != Some(command) {
            self.last_command = Some(command);
            self.record(Happening::Command {
                state: answer.state,
                hold: answer.hold_reason,
                remaining_seconds: answer.remaining_seconds,
            });
        }
    }

    fn finish(mut self) -> Timeline {
        if *self.relay.borrow() {
            self.relay.send_replace(false);
            self.record(Happening::Relay { on: false, why: None });
        }
        self.timeline
    }
}

/// An update from its signed description (`{version, size, sha256, signature}` in hex), checked
/// with the firmware's key before a byte is downloaded.
fn begin(key: Option<[u8; 32]>, version: &str, body: &[u8]) -> Result<Update, String> {
    let key = key.ok_or("no firmware key")?;
    let offer = json::decode_release(body).ok_or("not a firmware description")?;
    if offer.version != version {
        return Err(format!("the description is of {}", offer.version));
    }
    Update::begin(&key, protocol::firmware::OTA_SLOT_BYTES, &offer).map_err(|err| format!("{err:?}"))
}

/// The controller of a board just started for `reset`, as the firmware's shell sets it up: its
/// MQTT reports, its signed requests and its card taps each numbered from a random point drawn
/// at this boot. A test may name the first counter ([`DeviceSpec::first_counter`]); the taps are
/// numbered from a draw of their own even then, as the firmware's are at every boot: a tap after a
/// reboot is a new tap, not a copy of an earlier boot's tap the server answers again.
fn booted(spec: &DeviceSpec, reset: protocol::ResetReason) -> Controller {
    let mut controller = Controller::new(spec.settings);
    controller.set_reset_reason(reset);
    controller.set_first_ref(rand::random());
    controller.set_first_counter(spec.first_counter.unwrap_or_else(rand::random));
    controller.set_first_tap(rand::random());
    if let Some(secret) = spec.link_secret.as_deref().and_then(LinkSecret::parse) {
        controller.set_link_secret(secret);
    }
    controller
}

/// A card tap's UID, its signature, and the answer (`None`: no answer).
type TapAnswer = (String, Option<Signature>, Option<Answered>);

/// The body of a card tap (its id with it), made once for the tap.
fn tap_body(tap: &pumppilot_controller::Tap) -> Vec<u8> {
    let mut buf = [0u8; 64];
    match json::encode_card_tap(&tap.tap(), &mut buf) {
        Ok(len) => buf[..len].to_vec(),
        Err(_) => Vec::new(),
    }
}

/// A request error in a few words (reqwest's own text nests its causes).
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "connection refused".into()
    } else {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ed25519_dalek::{Signer as _, SigningKey};
    use pumppilot_controller::{MAX_RANGE_FAILURES, Millis, RANGE_RETRY_FIRST_MS, RANGE_RETRY_MAX_MS};
    use sha2::{Digest as _, Sha256};

    use super::{Answered, Awaited, CHUNK_BYTES, Device, DeviceSpec, Happening, Polled, UpdateStage, protocol};

    #[test]
    fn only_an_answer_the_server_owes_is_timed() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut awaited = Awaited::default();
        // A new connection's first report is answered, whatever it says.
        awaited.reported(1, false, at(0));
        assert_eq!(awaited.taken(at(5), || Some(1)), Some(Duration::from_millis(5)));
        // Then an unchanged OFF goes unanswered: a later push naming it (a Start) is no answer.
        awaited.reported(2, false, at(10));
        assert_eq!(awaited.taken(at(900), || Some(2)), None);
        // A closed relay's report is answered (each answer renews the lease); a command naming
        // another report is not its answer, and leaves it owed.
        awaited.reported(3, true, at(1000));
        assert_eq!(awaited.taken(at(1001), || Some(2)), None);
        assert_eq!(awaited.taken(at(1004), || None), None);
        assert_eq!(awaited.taken(at(1007), || Some(3)), Some(Duration::from_millis(7)));
        assert_eq!(awaited.taken(at(1009), || Some(3)), None, "timed once");
        // A refused report or a new connection: the next report is answered again.
        awaited.anew();
        awaited.reported(4, false, at(2000));
        assert_eq!(awaited.taken(at(2003), || Some(4)), Some(Duration::from_millis(3)));
        // While nothing is owed, the command's ref is not even read.
        awaited.reported(5, false, at(3000));
        assert_eq!(awaited.taken(at(3001), || unreachable!("nothing owed")), None);
    }

    /// A device that takes updates signed by `publisher`, offered version 2.0.0 of `image`, and
    /// the description the server serves for it.
    fn offered(publisher: &SigningKey, image: &[u8]) -> (Device, Vec<u8>) {
        let mut spec = DeviceSpec::new("well", "http://127.0.0.1:9", "pp_dev_test");
        spec.firmware_key = Some(publisher.verifying_key().to_bytes());
        let (relay, _) = tokio::sync::watch::channel(false);
        let mut device = Device::new(spec, reqwest::Client::new(), relay);
        device.offered(Some("2.0.0"));
        let sha256: [u8; 32] = Sha256::digest(image).into();
        let size = u32::try_from(image.len()).unwrap();
        let mut buf = [0u8; 128];
        let len = protocol::firmware::signed_message("2.0.0", size, &sha256, &mut buf);
        let signature = publisher.sign(&buf[..len]).to_bytes();
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let description = format!(
            r#"{{"version":"2.0.0","size":{size},"sha256":"{}","signature":"{}"}}"#,
            hex(&sha256),
            hex(&signature)
        );
        (device, description.into_bytes())
    }

    fn answer(status: u16, body: &[u8]) -> Polled {
        Polled::Answer(Answered {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            counter: None,
            mac: None,
            body: body.to_vec(),
        })
    }

    /// What the server answers a device whose key was rotated.
    const REFUSED: &[u8] = br#"{"error":{"code":"UNAUTHORIZED","message":"unknown device key"}}"#;

    /// The device asks for the next bytes of the update at `now`: which range, if any.
    fn asks(device: &mut Device, now: u64) -> Option<Option<u32>> {
        device.update_step(Millis(now)).map(|(_, _, first)| first)
    }

    fn firmware_stages(device: &Device) -> Vec<UpdateStage> {
        let stages = device.timeline.events.iter().filter_map(|(_, happening)| match happening {
            Happening::Firmware { stage, .. } => Some(stage.clone()),
            _ => None,
        });
        stages.collect()
    }

    #[test]
    fn a_refused_range_waits_longer_each_time_and_the_update_is_given_up_after_twenty() {
        let publisher = SigningKey::from_bytes(&[42u8; 32]);
        let image: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let (mut device, description) = offered(&publisher, &image);
        assert_eq!(asks(&mut device, 0), Some(None), "the description first");
        device.fetched(answer(200, &description), None, None, Millis(10));
        assert_eq!(asks(&mut device, 20), Some(Some(0)));
        let chunk = CHUNK_BYTES as usize;
        device.fetched(answer(206, &image[..chunk]), None, Some(0), Millis(30));
        // The device's key is rotated mid-download: every range is refused from now on (one
        // request gets no answer at all, which counts the same). Each waits longer than the last,
        // up to a minute, and no request goes out before its wait is over.
        let mut now = 40;
        let mut waits = Vec::new();
        for failure in 1..MAX_RANGE_FAILURES {
            assert_eq!(asks(&mut device, now), Some(Some(CHUNK_BYTES)), "failure {failure}: the same range again");
            let refused = if failure == 5 { Polled::Failed("connection reset".into()) } else { answer(401, REFUSED) };
            device.fetched(refused, None, Some(CHUNK_BYTES), Millis(now));
            let wait = (1..=RANGE_RETRY_MAX_MS / 1_000)
                .map(|s| u64::from(s) * 1_000)
                .find(|&wait| asks(&mut device, now + wait).is_some())
                .expect("asked again within a minute");
            assert!(
                asks(&mut device, now + wait - 1).is_none(),
                "failure {failure}: asked {wait} ms later, not sooner"
            );
            waits.push(wait);
            now += wait;
        }
        let first = u64::from(RANGE_RETRY_FIRST_MS);
        assert_eq!(waits[..6], [first, 2 * first, 4 * first, 8 * first, 16 * first, u64::from(RANGE_RETRY_MAX_MS)]);
        assert!(waits[6..].iter().all(|&wait| wait == u64::from(RANGE_RETRY_MAX_MS)), "{waits:?}");
        assert_eq!(firmware_stages(&device), [UpdateStage::Offered]);
        // The twentieth refusal gives the update up, recorded as the firmware logs it; nothing more
        // is asked until a poll answer offers it again, which starts it from the description.
        assert_eq!(asks(&mut device, now), Some(Some(CHUNK_BYTES)));
        device.fetched(answer(401, REFUSED), None, Some(CHUNK_BYTES), Millis(now));
        assert_eq!(firmware_stages(&device), [UpdateStage::Offered, UpdateStage::Failed("GaveUp".into())]);
        assert!(asks(&mut device, now + 3_600_000).is_none(), "given up");
        device.offered(Some("2.0.0"));
        assert_eq!(asks(&mut device, now + 3_600_000), Some(None), "the next offer starts it again");
    }

    #[test]
    fn a_refused_description_is_asked_again_at_the_next_offer() {
        let publisher = SigningKey::from_bytes(&[42u8; 32]);
        let (mut device, description) = offered(&publisher, &[7u8; 100]);
        assert_eq!(asks(&mut device, 0), Some(None));
        device.fetched(
            answer(404, br#"{"error":{"code":"NOT_FOUND","message":"no such release"}}"#),
            None,
            None,
            Millis(5),
        );
        assert!(asks(&mut device, 600_000).is_none(), "not at every step of the control loop");
        device.offered(Some("2.0.0"));
        assert_eq!(asks(&mut device, 600_000), Some(None), "asked again once offered again");
        device.fetched(answer(200, &description), None, None, Millis(600_010));
        assert_eq!(asks(&mut device, 600_020), Some(Some(0)));
        assert_eq!(firmware_stages(&device), [UpdateStage::Offered], "offered once, never failed");
    }
}
