//! `pumppilot bench`: the device poll path under load, against a trivial handler in the same run.
//! (`--relay` measures start → relay ON instead; see `relay.rs`.)
//!
//! Starts the real server in-process on a fresh SQLite file with `tenants × devices` registered
//! devices (half the tenants with a run in progress), drives `GET /api/esp32/poll` from
//! `connections` keep-alive connections, each request signed as the firmware signs it (counter
//! and MAC, every device once before the timing so its counter window is reserved), and sends
//! the very same requests to a trivial axum handler, served twice: by the server's own serving
//! path (`pumppilot_server::serve`, where the poll is read and written by `serve/poll.rs`) and by
//! bare `axum::serve` (hyper). The targets take turns, a second each for `seconds` each; it prints
//! requests/s, p50/p99 latency and the ratio poll/trivial against each, the lower one first.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, body::Bytes};
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressStyle};
use pumppilot_engine::{AdminId, Credit, DeviceId, EntryId, Event, LedgerKind, Timestamp, UserId};
use pumppilot_protocol::link::{self, LinkKey, LinkSecret};
use pumppilot_server::{
    Settings, app, config::Secret, keys::Keyring, link::secret_for as link_secret_for, runtime::Extras,
};
use pumppilot_store::{Account, Device, Role, Store};
use tokio::net::TcpStream;

mod fleet;
pub mod load;
mod mqtt_load;
mod relay;
mod start_steps;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Tenants (admins) to create.
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// Devices per tenant.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of load per target.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Measure start → relay ON with simulated devices (plain polling and long-poll) instead.
    #[arg(long)]
    relay: bool,
    /// Runs per mode for `--relay`.
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Pumps run in parallel for `--relay`.
    #[arg(long, default_value_t = 40)]
    pumps: usize,
    /// The store to measure on, empty (a MongoDB URL, say); default: a fresh SQLite file (with
    /// `--fleet`: SecantusDB, started here).
    #[arg(long)]
    store: Option<String>,
    /// Which SecantusDB `--fleet` starts when there is no `--store`: `rust` (its Rust server,
    /// built and installed under `target/secantusdb/` on first use: the fast one) or `python` (the
    /// one the tests run on).
    #[arg(long, value_enum, default_value = "rust")]
    secantusdb: fleet::StandIn,
    /// The fleet bench instead: this many devices, long-polling (or over MQTT: `--transport`) from
    /// load generator processes, on `--servers` server processes of this binary on one store
    /// (`fleet.rs`); `--seconds` is its steady window.
    #[arg(long)]
    fleet: Option<usize>,
    /// Server processes for `--fleet`.
    #[arg(long, default_value_t = 1)]
    servers: usize,
    /// How the fleet's devices talk to the servers.
    #[arg(long, value_enum, default_value = "http")]
    transport: fleet::Transport,
    /// Farmers who press Start during the fleet's steady window (Start → relay ON is timed).
    #[arg(long, default_value_t = 100)]
    starts: usize,
    /// Password sign-ins (Argon2id) before the fleet's steady window.
    #[arg(long, default_value_t = 0)]
    sign_ins: usize,
    /// Devices the fleet connects per second, all load generators together (each device coming
    /// online is one commit: a store that takes few transactions at once needs a gentle ramp).
    #[arg(long, default_value_t = 200)]
    ramp: u32,
    /// How the fleet arrives: `new` (never seen, or last seen a day ago: each device's first
    /// report brings it online, a commit) or `returning` (online before the servers started, as
    /// after a rolling restart: each device last seen just before it reconnects).
    #[arg(long, value_enum, default_value = "new")]
    arrival: fleet::Arrival,
    /// The longest the fleet bench waits for its devices to answer, and then to be present at
    /// their servers, in seconds (default: 20 minutes, or 25 ms a device if longer); it then
    /// measures the steady window with the devices it has.
    #[arg(long)]
    patience: Option<u64>,
    /// With `--fleet`: the store, the servers and the load generators at one priority. By
    /// default the load generators run at a lower one and the SecantusDB started here at a higher
    /// one (when this user may raise it): on a site the devices are in the field and the store on
    /// its own machine, not on the servers' cores.
    #[arg(long)]
    equal_priority: bool,
    /// The polls unsigned (the device key alone: boards from before the signed link), to see
    /// what signing costs; the trivial handlers get the same unsigned requests.
    #[arg(long)]
    unsigned: bool,
    /// Load one target alone (for a profiler such as `valgrind --tool=callgrind`); no ratio.
    #[arg(long, value_enum)]
    only: Option<Target>,
}

/// What the poll bench loads.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The device poll, on the real server.
    Poll,
    /// The trivial handler on the server's own serving path.
    Trivial,
    /// The trivial handler on bare `axum::serve`.
    Axum,
}

/// What one load run measured.
#[derive(Default)]
struct Measured {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Measured {
    fn add(&mut self, other: Measured) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dir = folder();
    std::fs::create_dir_all(&dir)?;
    if let Some(devices) = args.fleet {
        let fleet = fleet::Fleet {
            devices,
            servers: args.servers,
            transport: args.transport,
            starts: args.starts,
            sign_ins: args.sign_ins,
            seconds: args.seconds,
            ramp: args.ramp,
            arrival: args.arrival,
            patience: args.patience,
            store: args.store.clone(),
            stand_in: args.secantusdb,
            equal_priority: args.equal_priority,
        };
        return fleet::run(fleet, &dir).await;
    }
    match args.relay {
        true => relay::run(args.runs, args.pumps.max(1), &dir).await,
        false => run_in(&args, &dir).await,
    }
}

/// The bench's own folder (its SQLite store), per process.
fn folder() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pumppilot-bench-{}", std::process::id()))
}

/// Deletes the bench's folder, once the tokio runtime (and with it the server's background tasks
/// over the store in it) is gone: deleted under them, the store would rightly report its files lost.
pub fn remove_folder() {
    let _ = std::fs::remove_dir_all(folder());
}

async fn run_in(args: &BenchArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    let secret = Secret(Keyring::new_token(""));
    let settings = Settings {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: args.store.clone().unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display())),
        ..Settings::default()
    };
    let store: Arc<dyn Store> = pumppilot::store::open_url(&settings.database_url, "--store").await?;
    anyhow::ensure!(
        store.tenant_ids().await?.is_empty(),
        "--store: the bench seeds its own pumps and needs an empty database (a new database name in the URL)"
    );
    println!("store: {}", crate::redact(&settings.database_url));
    let devices = seed(store.as_ref(), &Keyring::new(secret.0.as_bytes()), args).await?;
    let server = app::spawn(settings, store, secret).await?;
    start_runs(&server.app, args.tenants).await?;

    let devices: Arc<Vec<BenchDevice>> = Arc::new(devices);
    let counters: Arc<Vec<AtomicU64>> = Arc::new(devices.iter().map(|_| AtomicU64::new(0)).collect());
    let connections = args.connections.clamp(1, devices.len().max(1));
    // Every device polls once, signed, before the timing: its first signed request reserves its
    // counter window in the store (a device does that once per `CounterWindows::BLOCK` requests).
    let sign = !args.unsigned;
    let warmed = drive(server.addr, &devices, &counters, connections, Drive::Once, sign).await?;
    anyhow::ensure!(warmed.errors == 0, "{} of the devices' first signed polls failed", warmed.errors);

    // The trivial handler answers the very same requests (its route is the poll's path, the
    // signature goes unread), once on the serving path the poll takes and once on bare axum.
    let trivial_router = axum::Router::new().route(
        pumppilot_server::serve::poll::POLL,
        axum::routing::get(|| async { axum::Json(serde_json::json!({"motor": "OFF"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let trivial_addr = listener.local_addr()?;
    // Slots of its own, as many as the server's.
    let limits = pumppilot_server::serve::Limits {
        slots: pumppilot_server::serve::Slots::new(server.app.settings.max_connections as usize),
        header_timeout: server.app.settings.header_timeout,
        proxies: Vec::new(),
    };
    let (stop_trivial, trivial_stopped) = tokio::sync::oneshot::channel::<()>();
    let trivial_task = tokio::spawn(pumppilot_server::serve::serve(listener, trivial_router.clone(), limits, async {
        let _ = trivial_stopped.await;
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let axum_addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, trivial_router).await });

    // The targets take turns, a second each, so the machine's neighbours weigh on all alike.
    let targets = [(Target::Poll, server.addr), (Target::Trivial, trivial_addr), (Target::Axum, axum_addr)];
    let targets: Vec<_> =
        targets.into_iter().filter(|(target, _)| args.only.is_none_or(|only| only == *target)).collect();
    let loads_before = server.app.runtime.loads();
    let bar = progress(args.seconds * targets.len() as u64, "poll / trivial");
    let mut measured: Vec<Measured> = targets.iter().map(|_| Measured::default()).collect();
    for _ in 0..args.seconds {
        for ((_, addr), measured) in targets.iter().zip(&mut measured) {
            measured
                .add(drive(*addr, &devices, &counters, connections, Drive::For(Duration::from_secs(1)), sign).await?);
            bar.inc(1);
        }
    }
    bar.finish();
    let loads = server.app.runtime.loads() - loads_before;

    println!();
    println!(
        "{:<26} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "target", "requests", "requests/s", "p50 ms", "p99 ms", "errors"
    );
    for ((target, _), m) in targets.iter().zip(&mut measured) {
        m.latencies_us.sort_unstable();
        let name = match target {
            Target::Poll => "device poll",
            Target::Trivial => "trivial, own serving path",
            Target::Axum => "trivial, axum::serve",
        };
        println!(
            "{:<26} {:>12} {:>10.0} {:>10.3} {:>10.3} {:>8}",
            name,
            m.requests,
            m.per_second(),
            m.percentile(0.5),
            m.percentile(0.99),
            m.errors
        );
    }
    if let [poll, trivial, axum] = &measured[..] {
        let (own, bare) = (poll.per_second() / trivial.per_second(), poll.per_second() / axum.per_second());
        println!(
            "ratio poll/trivial: {:.2} (the lower of: {own:.2} against the trivial handler on the server's own serving \
             path, {bare:.2} on axum::serve; polls {}; {} tenants x {} devices, {} connections, {} s each, one run)",
            own.min(bare),
            if sign { "signed" } else { "unsigned" },
            args.tenants,
            args.devices,
            connections,
            args.seconds
        );
    }
    println!(
        "tenant states read from the store while polling: {loads} ({}; a quiet poll is answered from memory)",
        if server.app.runtime.is_shared() {
            "a shared store: memory kept true by its change feed"
        } else {
            "a store of one server"
        }
    );
    let _ = stop_trivial.send(());
    trivial_task.await??;
    let poll_errors =
        targets.iter().zip(&measured).filter(|((t, _), _)| *t == Target::Poll).map(|(_, m)| m.errors).sum::<usize>();
    server.shutdown().await?;
    anyhow::ensure!(poll_errors == 0, "{poll_errors} poll requests failed");
    Ok(())
}

/// One device as the load generator drives it: its poll's path, its key and its link secret
/// (keyed once: the generator's own work a request is as small as it can be, alike for all).
struct BenchDevice {
    path: String,
    authorization: String,
    secret: LinkKey,
}

/// Creates the tenants, one user each with minutes, and the devices.
async fn seed(store: &dyn Store, keyring: &Keyring, args: &BenchArgs) -> anyhow::Result<Vec<BenchDevice>> {
    let bar = progress(args.tenants as u64, "seeding tenants");
    let password_hash =
        pumppilot_server::keys::hash_password("bench-password".into()).await.map_err(|e| anyhow::anyhow!(e.message))?;
    let now = Timestamp(0);
    let mut keys = Vec::with_capacity(args.tenants * args.devices);
    for t in 0..args.tenants {
        let admin_id = UserId::new();
        let admin = AdminId(admin_id);
        let account = |id, username: String, role, name: &str| Account {
            id,
            username,
            name: name.into(),
            role,
            admin_id: Some(admin),
            password_hash: password_hash.clone(),
            suspended: false,
            created_at: now,
        };
        store.create_account(&account(admin_id, format!("bench-admin-{t}"), Role::Admin, "Bench admin")).await?;
        store.create_account(&account(UserId::new(), format!("bench-user-{t}"), Role::User, "Bench farmer")).await?;
        for d in 0..args.devices {
            let key = Keyring::new_token("pp_dev_");
            let device = Device {
                id: DeviceId::new(),
                admin_id: admin,
                name: format!("pump {t}-{d}"),
                key_hash: keyring.hash(&key).to_vec(),
                created_at: now,
                telemetry: None,
            };
            let hash: [u8; 32] = keyring.hash(&key);
            let secret =
                LinkSecret::parse(&link_secret_for(keyring, device.id, &hash)).context("a link secret")?.keyed();
            store.create_device(&device).await?;
            keys.push(BenchDevice {
                path: format!("/api/esp32/poll?adminId={admin}&loadShedding=0&ready=1&relay=1&fw=bench"),
                authorization: format!("Bearer {key}"),
                secret,
            });
        }
        bar.inc(1);
    }
    bar.finish();
    Ok(keys)
}

/// Gives every tenant's user minutes and starts a run in half of the tenants.
async fn start_runs(app: &pumppilot_server::AppState, tenants: usize) -> anyhow::Result<()> {
    for (i, admin) in app.store.tenant_ids().await?.into_iter().enumerate().take(tenants) {
        let user = app.store.accounts(Role::User, Some(admin)).await?.first().map(|u| u.id).context("bench user")?;
        let credit = Credit { note: "bench".into(), ..Credit::new(user, 600 * 60, LedgerKind::Recharge, admin.0) };
        apply(app, admin, Event::Credit(credit)).await?;
        if i % 2 == 0 {
            let start = Event::Start { user, requested_minutes: None, entry_id: EntryId::new() };
            apply(app, admin, start).await?;
        }
    }
    Ok(())
}

async fn apply(app: &pumppilot_server::AppState, admin: AdminId, event: Event) -> anyhow::Result<()> {
    let (reply, ()) = app.runtime.apply(admin, event, Extras::default(), |_, _| ()).await?;
    reply.map(drop).map_err(|refusal| anyhow::anyhow!("refused: {refusal:?}"))
}

fn progress(len: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_message(message);
    bar.set_style(
        ProgressStyle::with_template("{msg:>16} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar
}

/// How long a load lasts: one request per device, or a time.
#[derive(Clone, Copy)]
enum Drive {
    Once,
    For(Duration),
}

/// Drives `addr` from `connections` keep-alive connections, each with its own share of the
/// devices (so a device's counters go up on one connection), round-robin, each request signed as
/// the device signs it.
async fn drive(
    addr: SocketAddr,
    devices: &Arc<Vec<BenchDevice>>,
    counters: &Arc<Vec<AtomicU64>>,
    connections: usize,
    how: Drive,
    sign: bool,
) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (devices, counters) = (Arc::clone(devices), Arc::clone(counters));
        let own: Vec<usize> = (worker..devices.len()).step_by(connections).collect();
        workers.push(tokio::spawn(async move { connection(addr, &devices, &counters, own, how, started, sign).await }));
    }
    let mut measured = Measured::default();
    for worker in workers {
        let (requests, errors, latencies) = worker.await??;
        measured.requests += requests;
        measured.errors += errors;
        measured.latencies_us.extend(latencies);
    }
    measured.elapsed = started.elapsed();
    Ok(measured)
}

async fn connection(
    addr: SocketAddr,
    devices: &[BenchDevice],
    counters: &[AtomicU64],
    own: Vec<usize>,
    how: Drive,
    started: Instant,
    sign: bool,
) -> anyhow::Result<(usize, usize, Vec<u32>)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let (mut requests, mut errors, mut latencies) = (0, 0, Vec::with_capacity(20_000));
    let mut next = own.iter().cycle();
    loop {
        match how {
            Drive::Once if requests == own.len() => break,
            Drive::For(duration) if started.elapsed() >= duration => break,
            _ => {}
        }
        let Some(&d) = next.next() else { break };
        let device = &devices[d];
        let mut request = Request::get(device.path.as_str())
            .header("host", "bench")
            .header("authorization", device.authorization.as_str());
        if sign {
            let counter = counters[d].fetch_add(1, Ordering::Relaxed) + 1;
            let tag = device.secret.request_tag("GET", &device.path, counter, b"");
            request = request.header(link::COUNTER_HEADER, counter).header(link::MAC_HEADER, &link::to_hex(&tag)[..]);
        }
        let request = request.body(Empty::<Bytes>::new())?;
        let sent = Instant::now();
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        requests += 1;
        if !ok {
            errors += 1;
        }
    }
    Ok((requests, errors, latencies))
}
