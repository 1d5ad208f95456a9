//! `pumppilot bench --fleet N --servers K`: N devices on K server processes of this binary, all on
//! one MongoDB-wire store, driven by load generator processes (`pumppilot bench-devices`,
//! `load.rs`), each device a long-poll reporting every 5 s from its own loopback source address,
//! or with `--transport mqtt` an MQTT connection (`mqtt_load.rs`) publishing a signed report every
//! 5 s to the server's MQTT listener (127.0.n.k:1883).
//!
//! 1. The store: `--store URL`, or SecantusDB started here with a session cap for many servers'
//!    connections: its Rust server (`secantusd-rs`, built on first use), or with `--secantusdb
//!    python` the Python server the tests run on.
//! 2. Provisioning straight into the store (`Store::import`, in chunks; no sign-in per device):
//!    one pump owner per device (every device drives a pump, never seen or last seen a day ago,
//!    so each device's first report brings it online), and for `--starts` of them a farmer with
//!    minutes and a session token.
//! 3. K `pumppilot serve` on 127.0.n.1…K:8080 (the first n whose ports are free), then load
//!    generators of at most 16,000 devices each (a process may hold 20,000 open files here), device
//!    i on server i mod K; the devices the farmers Start in a generator of their own
//!    (`Generators`).
//! 4. Once every device had its first answer: `--sign-ins` password sign-ins (Argon2id), then
//!    `--starts` farmers open the app (their pump's state) and press Start over HTTP, spread over
//!    `--seconds`, each on a server other than its device's when there are several; the time from
//!    sending the Start to the device receiving ON is the command latency.
//! 5. It prints the servers' resident memory (together and per device), CPU, the polls, errors,
//!    and the latencies; from the servers' `GET /metrics`, why they ended MQTT sessions and how
//!    many devices joined them and were let go; last, from the store's oplog, the documents
//!    written per device coming online and per second of the window.

use std::{
    collections::HashMap,
    io::Write as _,
    net::SocketAddr,
    path::Path,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use pumppilot_engine::{
    AdminId, Credit, DeviceId, DeviceLink, Event, LedgerKind, MotorHistory, Tenant, Timestamp, UserId,
};
use pumppilot_server::{keys::Keyring, link, runtime::Runtime};
use pumppilot_store::{Account, Device, Role, Session, Snapshot, Store, Telemetry};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use super::{progress, start_steps};

/// How many connections each server started here serves at once: `PUMPPILOT_MAX_CONNECTIONS` as
/// the servers read it from the environment they inherit (with the same open-file limit).
fn servers_connections() -> anyhow::Result<usize> {
    let variable = "PUMPPILOT_MAX_CONNECTIONS";
    let settings = pumppilot_server::config::Settings::from_lookup(|name| {
        (name == variable).then(|| std::env::var(name).ok().filter(|v| !v.is_empty())).flatten()
    })
    .map_err(|e| anyhow::anyhow!("{}: {}", e.variable, e.problem))?;
    Ok(settings.max_connections as usize)
}

/// How the devices talk to the servers.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Long-poll `GET /api/esp32/poll`, signed.
    Http,
    /// MQTT (the device contract of `docs/DEVICE.md`).
    Mqtt,
}

/// How the fleet arrives at the servers.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arrival {
    /// As an owner has them before the fleet first connects: never seen (even devices) or last
    /// seen a day ago (odd ones). Each device's first report brings it online: a commit.
    New,
    /// Online before the servers (re)started, as in a rolling restart: each device was last seen
    /// just before it reconnects (the bench writes its last poll, as the server it left did,
    /// `Store::record_last_polls`, a second or so before the device's turn in the ramp), so its
    /// lease is alive when it comes and its first report changes nothing in its tenant.
    Returning,
}

/// Which SecantusDB the fleet bench starts when it is given no `--store`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StandIn {
    /// Its Rust server (`secantusd-rs`, crates.io `secantus-mdb`), built and installed on first
    /// use: the fast one, nearer a real MongoDB.
    Rust,
    /// Its Python server, the one the tests run on: one process holding Python's lock, which
    /// answered about 130 arriving devices a second here.
    Python,
}

impl StandIn {
    /// The time set aside, before a returning fleet's first device connects, for writing each
    /// device's last poll on this store (the Python server here, on a quiet store: 1.4 ms a device
    /// at 10,000 and 2.0 ms at 20,000; the Rust one 0.25 ms at 100,000 on a busy machine).
    const fn stamp_ms_a_device(self) -> f64 {
        match self {
            StandIn::Rust => 0.5,
            StandIn::Python => 2.0,
        }
    }
}

/// The most devices one load generator process drives.
const PER_GENERATOR: usize = 16_000;
/// Tenants per provisioning chunk.
const CHUNK: usize = 2_000;
const PASSWORD: &str = "fleet-password";
/// SecantusDB's session cap (`--session-max`; its default, 1,000, stopped a fleet at 2,000 devices).
const SESSION_MAX: u32 = 20_000;

pub struct Fleet {
    pub devices: usize,
    pub servers: usize,
    pub transport: Transport,
    pub starts: usize,
    pub sign_ins: usize,
    pub seconds: u64,
    pub ramp: u32,
    pub arrival: Arrival,
    pub patience: Option<u64>,
    pub store: Option<String>,
    /// The SecantusDB started when there is no `store`.
    pub stand_in: StandIn,
    /// The store, the servers and the load generators at one priority; else the generators run
    /// at a lower one and the store started here at a higher one ([`GENERATORS_NICE`],
    /// [`STORE_NICE`]).
    pub equal_priority: bool,
}

/// The load generators' niceness: on a site the devices are in the field, not on the servers'
/// cores, so the bench gives them what the servers leave.
const GENERATORS_NICE: i32 = 10;
/// The niceness of the SecantusDB the bench starts, when this user may raise it (root): on a site
/// the store has its own machine, so the servers' load does not queue its answers.
const STORE_NICE: i32 = -10;

/// Which devices each load generator drives. The pumps the farmers Start (the first `--starts`
/// devices) have a generator of their own at the servers' priority: a device in the field has its
/// own CPU, so the time it takes to see its command must not be the time a generator at a lower
/// priority waits for a core behind 100,000 other devices' reports (up to 80 ms of a Start's 116
/// at 100,000 devices, `docs/MEASUREMENTS.md`). The rest are split evenly, at most
/// [`PER_GENERATOR`] a generator.
struct Generators {
    ranges: Vec<std::ops::Range<usize>>,
    /// 1 when `ranges[0]` holds the watched devices, else 0.
    watched: usize,
}

impl Generators {
    fn split(devices: usize, starts: usize) -> Self {
        let watched = starts.min(devices);
        let rest = devices - watched;
        let parts = rest.div_ceil(PER_GENERATOR);
        let per = rest.div_ceil(parts.max(1));
        let mut ranges: Vec<_> = (watched > 0).then_some(0..watched).into_iter().collect();
        ranges.extend((0..parts).map(|p| watched + p * per..(watched + (p + 1) * per).min(devices)));
        Self { watched: usize::from(watched > 0), ranges }
    }

    /// Device `i`'s place in its generator's ramp.
    fn place(&self, i: usize) -> usize {
        self.ranges.iter().find(|r| r.contains(&i)).map_or(0, |r| i - r.start)
    }
}

/// What one load generator said last.
#[derive(Default, Clone, Copy)]
struct GeneratorStat {
    polls: u64,
    errors: u64,
    answered: u64,
    /// The most a report of the last second was sent after its time (MQTT), in ms.
    late_ms: u64,
}

/// How late the load generators sent their devices' reports over a part of the bench: a device
/// whose report is some 40 s late is silent to its server (1.5 keep-alives since the one before),
/// which ends its session, and it connects again.
#[derive(Default)]
struct Lateness {
    worst_ms: u64,
    /// Seconds of one generator with a report over 10 s late.
    seconds_over_10s: u64,
}

impl Lateness {
    fn hear(&mut self, stat: &GeneratorStat) {
        self.worst_ms = self.worst_ms.max(stat.late_ms);
        self.seconds_over_10s += u64::from(stat.late_ms > 10_000);
    }
}

impl std::fmt::Display for Lateness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reports sent up to {:.1} s after their time; {} generator-seconds with one over 10 s late",
            self.worst_ms as f64 / 1000.0,
            self.seconds_over_10s
        )
    }
}

enum Said {
    Ready,
    On { device: usize, micros: u128 },
    Stat { generator: usize, stat: GeneratorStat },
}

pub async fn run(fleet: Fleet, dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(fleet.servers >= 1 && fleet.devices >= 1, "--fleet and --servers: at least 1");
    let each = fleet.devices.div_ceil(fleet.servers);
    let serves = servers_connections()?;
    anyhow::ensure!(
        each <= serves,
        "--fleet {} on --servers {} is {each} devices a server, more than a server here serves at once ({serves}: \
         PUMPPILOT_MAX_CONNECTIONS, by default three quarters of the {} open files a process may hold); run at least \
         {} servers",
        fleet.devices,
        fleet.servers,
        pumppilot_server::config::open_file_limit(),
        fleet.devices.div_ceil(serves),
    );
    // SecantusDB started here, kept (and stopped) with this function.
    let mut secantusdb: Option<pumppilot_store_mongodb::testing::TestServer> = None;
    let url = match &fleet.store {
        Some(url) => url.clone(),
        None => {
            if std::env::var_os("PUMPPILOT_TEST_SECANTUSDB_HOME").is_none() {
                // target/release/pumppilot → target/secantusdb, where the tests install it.
                let exe = std::env::current_exe()?;
                let target = exe.ancestors().nth(2).context("the binary is not in target/")?;
                // SAFETY: set before any other thread of this process reads the environment.
                unsafe { std::env::set_var("PUMPPILOT_TEST_SECANTUSDB_HOME", target.join("secantusdb")) };
            }
            // Every client connection and change-stream tailer takes one of its sessions: room for
            // the servers' connection pools however many there are.
            let stand_in = fleet.stand_in;
            let server = tokio::task::spawn_blocking(move || match stand_in {
                StandIn::Rust => pumppilot_store_mongodb::testing::start_rust(SESSION_MAX).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot start SecantusDB's Rust server: {e}\n(`--secantusdb python` runs the fleet on the \
                         Python server the tests use; `--store URL` on a MongoDB of your own)"
                    )
                }),
                StandIn::Python => Ok(pumppilot_store_mongodb::testing::start_with_session_max(SESSION_MAX)),
            })
            .await??;
            match stand_in {
                StandIn::Rust => println!(
                    "store: SecantusDB's Rust server {} (secantusd-rs)",
                    pumppilot_store_mongodb::testing::SECANTUSD_RS_VERSION
                ),
                StandIn::Python => println!(
                    "store: SecantusDB's Python server {}",
                    pumppilot_store_mongodb::testing::SECANTUSDB_VERSION
                ),
            }
            if !fleet.equal_priority {
                match server.pid().map(|pid| renice(pid, STORE_NICE)) {
                    Some(Ok(())) => println!(
                        "priorities: the store at niceness {STORE_NICE}, the load generators at {GENERATORS_NICE} \
                         (--equal-priority: all at one)"
                    ),
                    _ => println!(
                        "priorities: the load generators at niceness {GENERATORS_NICE}; the store as the servers \
                         (this user may not raise a priority)"
                    ),
                }
            }
            let url = server.url(&format!("fleet{}", std::process::id()));
            secantusdb = Some(server);
            url
        }
    };
    let store: Arc<dyn Store> = pumppilot::store::open_url(&url, "--store").await?;
    anyhow::ensure!(store.tenant_ids().await?.is_empty(), "--store: the fleet bench needs an empty database");
    anyhow::ensure!(
        store.changes().is_some(),
        "--store: the fleet bench needs a store several servers share (MongoDB)"
    );
    println!("store: {}", crate::redact(&url));

    let secret = Keyring::new_token("");
    let keyring = Keyring::new(secret.as_bytes());
    let started = Instant::now();
    let (pumps, chunks) = provision(&store, &keyring, &fleet).await?;
    let chunk_secs = |c: Option<&Duration>| c.map_or(0.0, Duration::as_secs_f64);
    println!(
        "provisioned {} devices in {:.1} s ({} chunks of {CHUNK}: the first {:.1} s, the last {:.1} s)",
        fleet.devices,
        started.elapsed().as_secs_f64(),
        chunks.len(),
        chunk_secs(chunks.first()),
        chunk_secs(chunks.last())
    );

    // 127.0.n.1…K with the first n whose ports are all free (another bench may run on this machine).
    let net = (1..=250u8)
        .find(|&n| {
            (0..fleet.servers).all(|k| {
                [8080, 1883].iter().all(|&port| {
                    std::net::TcpListener::bind(SocketAddr::from(([127, 0, n, (k + 1) as u8], port))).is_ok()
                })
            })
        })
        .context("no free 127.0.n.x block for the servers")?;
    let addrs: Vec<SocketAddr> =
        (0..fleet.servers).map(|k| SocketAddr::from(([127, 0, net, (k + 1) as u8], 8080))).collect();
    let mqtt = fleet.transport == Transport::Mqtt;
    let mqtt_addrs: Vec<SocketAddr> = addrs.iter().map(|a| SocketAddr::new(a.ip(), 1883)).collect();
    let file = dir.join("devices.txt");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    for (i, pump) in pumps.iter().enumerate() {
        write!(out, "{} {} {}", addrs[i % addrs.len()], pump.key, pump.secret)?;
        if mqtt {
            write!(out, " {} {}", mqtt_addrs[i % addrs.len()], pump.device_id)?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    drop(out);

    let mut server_groups = Vec::new();
    let mut servers = Vec::new();
    let started = Instant::now();
    // The bench reads the servers' figures at the end (`GET /metrics`) with a token of its own.
    let scrape = Keyring::new_token("");
    for (k, addr) in addrs.iter().enumerate() {
        let mqtt_bind = mqtt.then_some(mqtt_addrs[k]);
        let log = dir.join(format!("server-{k}.log"));
        let server = start_server(*addr, mqtt_bind, &url, &secret, &scrape, &log)?;
        server_groups.extend(server.id().map(ProcessGroup));
        servers.push(server);
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    for addr in &addrs {
        wait_healthy(&http, *addr).await?;
    }
    println!("{} servers up in {:.1} s", fleet.servers, started.elapsed().as_secs_f64());
    let idle = resident(&servers);
    let idle_pss = proportional(&servers);
    let idle_each = resident_each(&servers);
    let store_rss_idle = rss_kib(secantusdb.as_ref().and_then(|s| s.pid()));
    println!(
        "  resident: servers {:.1} MB together ({}), SecantusDB {:.1} MB",
        idle as f64 / 1024.0,
        idle_each.iter().map(|kib| format!("{:.1}", *kib as f64 / 1024.0)).collect::<Vec<_>>().join(" + "),
        store_rss_idle as f64 / 1024.0
    );

    let parts = Generators::split(fleet.devices, fleet.starts);
    let groups = parts.ranges.len();
    let per = parts.ranges.iter().skip(parts.watched).map(ExactSizeIterator::len).max().unwrap_or(0);
    let ramp = (fleet.ramp / u32::try_from(groups - parts.watched).unwrap_or(1).max(1)).max(1);
    // Every generator begins at `at`, its device j at `at + j / ramp` (a schedule that does not
    // drift). A returning fleet's last polls are written first, each for its device's turn, with
    // `stamp_ms` each set aside before the first turn; when they take longer, the whole
    // fleet connects that much later than they say.
    // A store of `--store` is given the Python server's time: nothing is known of it.
    let stamp_ms = if fleet.store.is_some() { StandIn::Python } else { fleet.stand_in }.stamp_ms_a_device();
    let stamping = match fleet.arrival {
        Arrival::Returning => (fleet.devices as f64 * stamp_ms) as u64,
        Arrival::New => 0,
    };
    let planned = super::load::unix_millis() + 3_000 + stamping;
    let turn = |i: usize| planned + parts.place(i) as u64 * 1000 / u64::from(ramp);
    if fleet.arrival == Arrival::Returning {
        let started = Instant::now();
        let turns = pumps.iter().enumerate().map(|(i, p)| (turn(i), p.admin, p.device));
        play_departed_servers(&store, turns.collect()).await?;
        println!(
            "the returning devices' last polls (the departed servers' part) written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let at = planned.max(super::load::unix_millis() + 3_000);
    if at > planned {
        println!(
            "  longer than the {stamp_ms} ms a device set aside: every device connects {:.1} s later than its last \
             poll says (1.5 s)",
            (at - planned) as f64 / 1000.0 + 1.5
        );
    }

    // What coming online asks of the store: its operations from the first connect until every
    // device is present at its server.
    let watcher = pumppilot::store::open_mongodb(&url, "--store").await?;
    let collector = || secantusdb.as_ref().and_then(pumppilot_store_mongodb::testing::TestServer::collector);
    if let Some(server) = secantusdb.as_ref().filter(|_| fleet.stand_in == StandIn::Python) {
        // `PUMPPILOT_SECANTUSDB_GC` (crates/store-mongodb/src/secantusd.py): the stand-in store's
        // deployment, not PumpPilot's.
        match server.collector_tuning() {
            Some(tuning) => println!("SecantusDB's garbage collector tuned by the launcher: {tuning}"),
            None => println!("SecantusDB's garbage collector as Python has it (PUMPPILOT_SECANTUSDB_GC=default)"),
        }
    }
    // Followed from before the first device connects until all are present.
    let presence = Presence::follow(&store)?;
    let store_pid = secantusdb.as_ref().and_then(|s| s.pid());
    let (said, mut hear) = mpsc::unbounded_channel();
    let mut generators = Vec::new();
    for (g, range) in parts.ranges.iter().enumerate() {
        let lower = !fleet.equal_priority && g >= parts.watched;
        generators.push(start_generator(g, range.start, range.end, ramp, at, mqtt, lower, &file, said.clone())?);
    }
    drop(said);
    let arrival = match fleet.arrival {
        Arrival::New => "new: never seen, or seen a day ago",
        Arrival::Returning => "returning: each last seen a second or so before it reconnects",
    };
    println!(
        "{} load generators of up to {per} devices, {} connects/s together ({arrival})",
        groups - parts.watched,
        u64::from(ramp) * (groups - parts.watched) as u64
    );
    if parts.watched > 0 {
        println!(
            "  and the {} devices the farmers Start in a generator of their own, at the servers' priority",
            parts.ranges[0].len()
        );
    }
    // Every time below is counted from the first device's turn: the time set aside for the last
    // polls may not all be needed.
    let wait = Duration::from_millis(at.saturating_sub(super::load::unix_millis()));
    if wait > Duration::from_secs(1) {
        println!("  the first device's turn in {:.0} s", wait.as_secs_f64());
    }
    tokio::time::sleep(wait).await;
    let ops_offline = operations(&watcher).await;
    let gc_offline = collector();
    let store_cpu_offline = store_pid.map_or(0, process_ticks);
    let started = Instant::now();
    let bar = progress(fleet.devices as u64, "devices answered");
    let (mut ready, mut stats) = (0, vec![GeneratorStat::default(); groups]);
    let mut late = Lateness::default();
    let mut told = Instant::now();
    // How long each wait below may take (`--patience`; by default long enough for SecantusDB to
    // bring a new fleet online at about 45 devices a second).
    let patience = fleet
        .patience
        .map_or(Duration::from_secs(1200).max(Duration::from_millis(25 * fleet.devices as u64)), Duration::from_secs);
    let mut answered = 0;
    while ready < groups {
        if started.elapsed() > patience {
            println!(
                "  only {answered} of {} devices answered after {:.0} s; going on without the others",
                fleet.devices,
                patience.as_secs_f64()
            );
            break;
        }
        let next = tokio::time::timeout(Duration::from_secs(600), hear.recv()).await;
        match next.context("the load generators fell silent for 10 minutes")? {
            Some(Said::Ready) => ready += 1,
            Some(Said::Stat { generator, stat }) => {
                late.hear(&stat);
                stats[generator] = stat;
                answered = stats.iter().map(|s| s.answered).sum();
                bar.set_position(answered);
                if !bar.is_hidden() || told.elapsed() < Duration::from_secs(10) {
                    continue;
                }
                told = Instant::now();
                let errors: u64 = stats.iter().map(|s| s.errors).sum();
                println!(
                    "  {answered} devices answered after {:.0} s ({errors} errors; {:.0} MB resident in the servers)",
                    started.elapsed().as_secs_f64(),
                    resident(&servers) as f64 / 1024.0
                );
            }
            Some(Said::On { .. }) => {}
            None => anyhow::bail!("a load generator ended"),
        }
    }
    bar.finish();
    if ready == groups {
        answered = fleet.devices as u64;
    }
    println!("{answered} devices connected and answered in {:.1} s", started.elapsed().as_secs_f64());
    // Online for every server: each device's coming online committed, its telemetry written and
    // its presence joined at its server (whose heartbeats then stand for its polls).
    let bar = progress(fleet.devices as u64, "devices present at their server");
    let mut told = Instant::now();
    let online = loop {
        let present = presence.count();
        bar.set_position(present);
        if present >= fleet.devices as u64 {
            break Some(started.elapsed());
        }
        if started.elapsed() > patience {
            println!(
                "  only {present} of {} devices present at their server after {:.0} minutes",
                fleet.devices,
                patience.as_secs_f64() / 60.0
            );
            break None;
        }
        if bar.is_hidden() && told.elapsed() >= Duration::from_secs(10) {
            told = Instant::now();
            println!(
                "  {present} devices present at their server after {:.0} s ({:.0} MB resident in the servers)",
                started.elapsed().as_secs_f64(),
                resident(&servers) as f64 / 1024.0
            );
        }
        take_stats(&mut hear, &mut stats, &mut late);
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    bar.finish();
    // The window's store figures are the servers' alone.
    drop(presence);
    let online_at = super::load::unix_millis();
    let ops_online = operations(&watcher).await;
    let gc_online = collector();
    let online_secs = online.unwrap_or(started.elapsed()).as_secs_f64();
    let store_cpu_online = store_pid
        .map(|pid| process_ticks(pid).saturating_sub(store_cpu_offline) as f64 / ticks_per_second() / online_secs);
    if let Some(online) = online {
        println!(
            "{} devices online for every server in {:.1} s after the first connected",
            fleet.devices,
            online.as_secs_f64()
        );
    }
    println!("coming online, what the store was asked (from the first connect until all were present):");
    print_store_load(&ops_offline, &ops_online, online_secs, fleet.devices as f64, store_cpu_online);
    print_collector(gc_offline, gc_online);
    let online_ops: u64 = count_ops(&ops_offline, &ops_online);
    println!("  {:.1} of those commands a device to come online", online_ops as f64 / fleet.devices as f64);
    let connected = resident(&servers);
    let connected_pss = proportional(&servers);
    let connected_each = resident_each(&servers);

    // Sign-ins: Argon2id's memory must go back to the system afterwards.
    let started = Instant::now();
    for i in 0..fleet.sign_ins {
        let farmer = &pumps[i % fleet.starts.max(1)];
        let answer = http
            .post(format!("http://{}/api/auth/login", addrs[i % addrs.len()]))
            .json(&serde_json::json!({"username": farmer.farmer_name, "password": PASSWORD}))
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "sign-in {i}: {}", answer.status());
    }
    let signed_in = resident(&servers);
    let signed_in_pss = proportional(&servers);
    if fleet.sign_ins > 0 {
        println!("{} sign-ins in {:.1} s", fleet.sign_ins, started.elapsed().as_secs_f64());
    }

    // The farmers have the app open: each asks for its pump's state (`GET /api/motor/status`) on
    // the server its Start goes to, as the app does before it shows the Start button, so a Start
    // is not its session's first request there (that one reads the session from the store).
    // A page that does not open (a store too busy) leaves that Start cold; the run goes on. The
    // farmers open their pages at once, as they would: one after another, behind a store still
    // busy with an arriving fleet, 100 pages took about 8 minutes at 100,000.
    let pages = pumps.iter().take(fleet.starts).enumerate().map(|(j, farmer)| {
        let server = addrs[(j + 1) % addrs.len()];
        let token = farmer.token.clone().unwrap_or_default();
        let page = http.get(format!("http://{server}/api/motor/status")).bearer_auth(token).send();
        async move {
            let asked = Instant::now();
            let opened = page.await.is_ok_and(|answer| answer.status().is_success());
            opened.then(|| asked.elapsed().as_micros() as u64)
        }
    });
    let mut opened: Vec<u64> = futures::future::join_all(pages).await.into_iter().flatten().collect();
    opened.sort_unstable();
    if !opened.is_empty() {
        println!(
            "  farmers' pump pages opened (all asked at once): {} of {}; p50 {:.1} ms, p99 {:.1} ms",
            opened.len(),
            fleet.starts,
            pct(&opened, 0.5),
            pct(&opened, 0.99)
        );
    }
    let unopened = fleet.starts.min(pumps.len()) - opened.len();
    if unopened > 0 {
        println!("  {unopened} of {} farmers' pump pages did not open before their Start", fleet.starts);
    }

    // The steady window: Starts spread over it, polls and CPU counted across it, and what the
    // servers asked of the store (its operations per collection, and SecantusDB's own CPU).
    let ops_before = operations(&watcher).await;
    let gc_before = collector();
    let store_cpu_before = store_pid.map_or(0, process_ticks);
    let cpu_before = cpu_ticks(&servers);
    let generators_cpu_before = cpu_ticks(&generators);
    let cpu_before_each: Vec<u64> = servers.iter().filter_map(Child::id).map(process_ticks).collect();
    // The generators' latest counts: what they said while the pages opened (seconds on a busy
    // store) is read now, else the window would count those reports and errors as its own.
    take_stats(&mut hear, &mut stats, &mut late);
    let before: Vec<GeneratorStat> = stats.clone();
    let arrival_late = std::mem::take(&mut late);
    let window = Duration::from_secs(fleet.seconds);
    let window_from = super::load::unix_millis();
    let started = Instant::now();
    let spacing = window / u32::try_from(fleet.starts.max(1)).unwrap_or(1);
    let mut sent: HashMap<usize, u128> = HashMap::new();
    let mut timed = Vec::new();
    let (mut latencies, mut start_rtt, mut start_errors) = (Vec::new(), Vec::new(), 0usize);
    let mut next_start = 0;
    let bar = progress(fleet.seconds, "steady");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let starts = fleet.starts.min(pumps.len());
    let (answered, mut starts_done) = mpsc::unbounded_channel::<(bool, u64)>();
    loop {
        let due = started + spacing * u32::try_from(next_start).unwrap_or(u32::MAX);
        tokio::select! {
            () = tokio::time::sleep_until(due.into()), if next_start < starts => {
                let j = next_start;
                next_start += 1;
                // On another server than the device's: the command crosses the change feed.
                let server = addrs[(j + 1) % addrs.len()];
                sent.insert(j, now_micros());
                let (http, token, done) = (http.clone(), pumps[j].token.clone().unwrap_or_default(), answered.clone());
                tokio::spawn(async move {
                    let t = Instant::now();
                    let answer = http.post(format!("http://{server}/api/motor/start")).bearer_auth(token).send().await;
                    let ok = answer.is_ok_and(|a| a.status().is_success());
                    let _ = done.send((ok, t.elapsed().as_micros() as u64));
                });
            }
            Some((ok, micros)) = starts_done.recv() => match ok {
                true => start_rtt.push(micros),
                false => start_errors += 1,
            },
            said = hear.recv() => match said {
                Some(Said::On { device, micros }) => {
                    if let Some(at) = sent.remove(&device) {
                        latencies.push(micros.saturating_sub(at) as u64);
                        timed.push(start_steps::Timed {
                            tenant: pumps[device].admin.to_string(),
                            farmers_server: (device + 1) % addrs.len(),
                            devices_server: device % fleet.servers,
                            sent_us: at,
                            on_us: micros,
                        });
                    }
                }
                Some(Said::Stat { generator, stat }) => {
                    late.hear(&stat);
                    stats[generator] = stat;
                }
                Some(Said::Ready) => {}
                None => anyhow::bail!("a load generator ended"),
            },
            _ = tick.tick() => {
                bar.set_position(started.elapsed().as_secs().min(fleet.seconds));
                if started.elapsed() >= window + Duration::from_secs(5) {
                    break;
                }
            }
        }
    }
    bar.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let window_to = super::load::unix_millis();
    let cpu = cpu_ticks(&servers).saturating_sub(cpu_before) as f64 / ticks_per_second() / elapsed;
    let generators_cpu =
        cpu_ticks(&generators).saturating_sub(generators_cpu_before) as f64 / ticks_per_second() / elapsed;
    let store_cpu =
        store_pid.map(|pid| process_ticks(pid).saturating_sub(store_cpu_before) as f64 / ticks_per_second() / elapsed);
    let ops_after = operations(&watcher).await;
    let gc_after = collector();
    let steady = resident(&servers);
    let steady_pss = proportional(&servers);
    let steady_each = resident_each(&servers);
    let cpu_each: Vec<f64> = servers
        .iter()
        .filter_map(Child::id)
        .map(process_ticks)
        .zip(&cpu_before_each)
        .map(|(after, before)| after.saturating_sub(*before) as f64 / ticks_per_second() / elapsed)
        .collect();
    let store_rss = rss_kib(store_pid);
    let polls: u64 = stats.iter().zip(&before).map(|(a, b)| a.polls - b.polls).sum();
    let errors: u64 = stats.iter().zip(&before).map(|(a, b)| a.errors - b.errors).sum();
    let generator_rss: u64 = generators.iter().map(|g| rss_kib(g.id())).sum();

    let n = fleet.devices as f64;
    println!();
    let how = if mqtt { "MQTT, signed reports every 5 s" } else { "long-poll HTTP, signed, reporting every 5 s" };
    println!("fleet: {} devices ({how}) on {} servers, one store", fleet.devices, fleet.servers);
    for (name, kib, pss) in [("servers started", idle, idle_pss), ("devices connected", connected, connected_pss)]
        .into_iter()
        .chain((fleet.sign_ins > 0).then_some(("after sign-ins", signed_in, signed_in_pss)))
        .chain([("end of the steady window", steady, steady_pss)])
    {
        let grown = kib.saturating_sub(idle) as f64 * 1024.0 / n;
        println!(
            "  resident, all servers, {name:<24} {:>8.1} MB   ({:.0} bytes a device over the idle servers); \
             {:.1} MB proportional",
            kib as f64 / 1024.0,
            grown,
            pss as f64 / 1024.0
        );
    }
    println!(
        "  resident per device, all in:                    {:>8.0} bytes ({:.0} proportional)",
        steady as f64 * 1024.0 / n,
        steady_pss as f64 * 1024.0 / n
    );
    println!(
        "  (resident: VmRSS summed, so the binary's code, shared by the servers, counts once a server; \
         proportional: Pss summed, shared pages split between the processes that map them)"
    );
    println!("  server CPU, all servers:                        {:>8.0} % of one core", cpu * 100.0);
    // A device reports every 5 s (± 10%): fewer a second means the load generators could not keep
    // up (their CPU below says how busy they were), not that the servers refused anything.
    println!(
        "  {}: {polls} in {elapsed:.0} s ({:.0}/s, {:.0}% of every device's 5 s interval); errors: {errors}; \
         load generators {:.0} MB resident, {:.0}% of a core",
        if mqtt { "reports published" } else { "polls answered" },
        polls as f64 / elapsed,
        polls as f64 / elapsed / (n / 5.0) * 100.0,
        generator_rss as f64 / 1024.0,
        generators_cpu * 100.0
    );
    if mqtt {
        println!("  load generators coming online: {arrival_late}");
        println!("  load generators in the window: {late}");
    }
    latencies.sort_unstable();
    start_rtt.sort_unstable();
    println!(
        "  Start → relay ON: {} of {} starts; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} without ON, {} Starts refused",
        latencies.len(),
        starts,
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        pct(&latencies, 1.0),
        sent.len(),
        start_errors
    );
    println!("  Start request: p50 {:.1} ms, p99 {:.1} ms", pct(&start_rtt, 0.5), pct(&start_rtt, 0.99));
    print_store_load(&ops_before, &ops_after, elapsed, n, store_cpu);
    print_collector(gc_before, gc_after);
    if store_pid.is_some() {
        println!(
            "  SecantusDB resident: {:.1} MB at the end ({:.1} MB with the servers idle)",
            store_rss as f64 / 1024.0,
            store_rss_idle as f64 / 1024.0
        );
    }
    println!("  per server (devices; resident MB idle → connected → end; CPU over the window):");
    for (k, addr) in addrs.iter().enumerate() {
        let mb = |each: &[u64]| each.get(k).map_or(0.0, |kib| *kib as f64 / 1024.0);
        let devices = (k..fleet.devices).step_by(fleet.servers).count();
        println!(
            "    server {k} ({addr}): {devices} devices; {:.1} → {:.1} → {:.1} MB; {:.0}% of a core",
            mb(&idle_each),
            mb(&connected_each),
            mb(&steady_each),
            cpu_each.get(k).copied().unwrap_or(0.0) * 100.0
        );
    }

    print_server_counts(&http, &addrs, &scrape).await;
    // Read last: the oplog's scan is work for the store that nothing measured should see.
    print_writes(&watcher, (at, online_at), (window_from, window_to), fleet.devices).await;

    for mut child in generators.into_iter().chain(servers) {
        let _ = child.kill().await;
    }
    drop(server_groups);
    // What the servers logged (their folder goes with the bench): where the Starts' time went,
    // how many errors, and the first.
    let logs: Vec<String> = (0..fleet.servers)
        .map(|k| std::fs::read_to_string(dir.join(format!("server-{k}.log"))).unwrap_or_default())
        .collect();
    start_steps::print(&timed, &logs);
    for (k, log) in logs.iter().enumerate() {
        let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
        if let Some(first) = errors.first() {
            let first: String = first.chars().take(400).collect();
            println!("  server {k}: {} errors logged; the first: {first}", errors.len());
        }
    }
    if let Some(server) = secantusdb {
        tokio::task::spawn_blocking(|| server.stop()).await?;
    }
    Ok(())
}

/// One pump as provisioned: its device's key and link secret, and for the first `--starts`, its
/// farmer's session token.
struct Pump {
    admin: AdminId,
    device: DeviceId,
    device_id: String,
    key: String,
    secret: String,
    farmer_name: String,
    token: Option<String>,
}

/// Provisions the fleet; also how long each chunk took (a store that slows as it fills shows it).
async fn provision(
    store: &Arc<dyn Store>,
    keyring: &Keyring,
    fleet: &Fleet,
) -> anyhow::Result<(Vec<Pump>, Vec<Duration>)> {
    let password_hash =
        pumppilot_server::keys::hash_password(PASSWORD.into()).await.map_err(|e| anyhow::anyhow!(e.message))?;
    let now = Timestamp(now_micros() as i64 / 1000);
    let account = |id: UserId, username: String, role, admin_id| Account {
        id,
        username,
        name: "Fleet".into(),
        role,
        admin_id,
        password_hash: password_hash.clone(),
        suspended: false,
        created_at: now,
    };
    let master = account(UserId::new(), "fleet-master".into(), Role::Master, None);
    store.import(&Snapshot { accounts: vec![master], ..Snapshot::default() }).await?;
    let bar = progress(fleet.devices as u64, "provisioning");
    let mut pumps = Vec::with_capacity(fleet.devices);
    let mut farmers = Vec::new();
    // A new fleet is provisioned as its owner has it before it comes online: every pump driven by
    // its device, which was never seen (even ones) or was last seen a day ago (odd ones); each
    // device's first report brings it online, a commit of its tenant, so the figures include the
    // fleet coming online. A returning fleet was seen just now (and is seen again just before
    // each device reconnects: `play_departed_servers`).
    let long_ago = Timestamp(now.0 - 24 * 3_600_000);
    let mut chunks = Vec::new();
    for chunk in (0..fleet.devices).collect::<Vec<_>>().chunks(CHUNK) {
        let chunk_started = Instant::now();
        let (mut admins, mut users, mut devices, mut sessions) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut tenants = Vec::new();
        for &i in chunk {
            let admin = AdminId(UserId::new());
            admins.push(account(admin.0, format!("fleet-owner-{i}"), Role::Admin, None));
            let key = Keyring::new_token("pp_dev_");
            let hash = keyring.hash(&key);
            let id = DeviceId::new();
            tenants.push(Tenant {
                controller: Some(id),
                device: DeviceLink {
                    last_poll_at: match fleet.arrival {
                        Arrival::New => (i % 2 == 1).then_some(long_ago),
                        Arrival::Returning => Some(now),
                    },
                    load_shedding: false,
                    ready: true,
                    relay: false,
                    lease_ms: 0,
                    without_command_since: None,
                },
                motor: MotorHistory { grid_up_since: Some(Timestamp(now.0 - 3_600_000)), ..MotorHistory::default() },
                ..Tenant::new(admin, 0)
            });
            devices.push(Device {
                id,
                admin_id: admin,
                name: format!("pump {i}"),
                key_hash: hash.to_vec(),
                created_at: now,
                // A returning device was online, so its telemetry is stored as it last reported.
                telemetry: (fleet.arrival == Arrival::Returning).then(|| Telemetry::ready(admin, id, now)),
            });
            let mut pump = Pump {
                admin,
                device: id,
                device_id: id.to_string(),
                key,
                secret: link::secret_for(keyring, id, &hash),
                farmer_name: format!("fleet-farmer-{i}"),
                token: None,
            };
            if i < fleet.starts {
                let farmer = UserId::new();
                users.push(account(farmer, pump.farmer_name.clone(), Role::User, Some(admin)));
                let token = Keyring::new_token("w_");
                sessions.push(Session::web(
                    farmer,
                    keyring.hash(&token).to_vec(),
                    now,
                    Timestamp(now.0 + 30 * 24 * 3_600_000),
                ));
                pump.token = Some(token);
                farmers.push((admin, farmer));
            }
            pumps.push(pump);
        }
        admins.extend(users);
        store.import(&Snapshot { accounts: admins, tenants, ..Snapshot::default() }).await?;
        store.import(&Snapshot { devices, sessions, ..Snapshot::default() }).await?;
        bar.inc(chunk.len() as u64);
        chunks.push(chunk_started.elapsed());
        if bar.is_hidden() && chunks.len() % 5 == 0 {
            println!(
                "  {} provisioned ({:.1} s for the last {CHUNK})",
                bar.position(),
                chunk_started.elapsed().as_secs_f64()
            );
        }
    }
    bar.finish();
    // Minutes for the farmers, through the engine (the ledger and the balance agree).
    let runtime = Runtime::new(Arc::clone(store), pumppilot_server::clock::system(), 15_000, 5_000);
    for (admin, user) in farmers {
        let credit = Credit { note: "fleet".into(), ..Credit::new(user, 600 * 60, LedgerKind::Recharge, admin.0) };
        let (reply, ()) = runtime
            .apply(admin, Event::Credit(credit), pumppilot_server::runtime::Extras::default(), |_, _| ())
            .await?;
        reply.map_err(|refusal| anyhow::anyhow!("credit refused: {refusal:?}"))?;
    }
    Ok((pumps, chunks))
}

/// How many tenants have a device present at a server, followed on the store's change feed as
/// the servers follow it. Counting them in the store is a scan of every tenant (SecantusDB: 1.8 s
/// of its CPU at 100,000; counted every 3 s while 10,000 came online, an eleventh of its time):
/// the bench would slow the joins it waits for. The feed's cost is one more stream's, and they
/// are read from the store (`Store::presences`, as a server reads them) only at the feed's start
/// and after any gap in it (a reset). Stops when dropped.
struct Presence {
    count: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Presence {
    fn follow(store: &Arc<dyn Store>) -> anyhow::Result<Presence> {
        let mut feed = store.changes().context("the store has no change feed")?;
        let store = Arc::clone(store);
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&count);
        let task = tokio::spawn(async move {
            let mut present = std::collections::HashSet::new();
            while let Some(change) = feed.recv().await {
                match change {
                    pumppilot_store::Change::Reset => match store.presences().await {
                        Ok(read) => present = read.into_iter().map(|p| p.admin).collect(),
                        Err(err) => println!("  the present tenants could not be read: {err}"),
                    },
                    pumppilot_store::Change::Tenant { admin, presence, .. } => match presence {
                        pumppilot_store::PresenceNews::Present { .. } => {
                            present.insert(admin);
                        }
                        pumppilot_store::PresenceNews::Gone => {
                            present.remove(&admin);
                        }
                        pumppilot_store::PresenceNews::Unchanged => {}
                    },
                    _ => {}
                }
                counted.store(present.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        });
        Ok(Presence { count, task })
    }

    fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The store's operations so far (`testing::operations`); none, said, when they cannot be read.
async fn operations(
    watcher: &pumppilot_store_mongodb::MongoStore,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, (u64, u64)>> {
    // The watcher's connection idles through the whole arrival (ten minutes at 100,000), and the
    // store may close it meanwhile: its first use is then a broken pipe, and a second try opens
    // another.
    let mut failed = String::new();
    for _ in 0..2 {
        match pumppilot_store_mongodb::testing::operations(watcher).await {
            Ok(operations) => return operations,
            Err(err) => failed = err,
        }
    }
    println!("  the store's operations could not be read: {failed}");
    Default::default()
}

/// Last polls written at a time.
const STAMPS_AT_ONCE: usize = 2_000;

/// For a returning fleet, what the servers the devices left did before they went: each device's
/// last poll (`Store::record_last_polls`, as their flushes write it) 1.5 s before its turn to
/// reconnect (`turns`: when, and whose), so every device reconnects well within its lease. All
/// are written before the first device connects: the store then shows last polls still to come
/// for a while (no device of the fleet has a run, so nothing acts on them). Written just before
/// each turn instead, as they were, the writes waited behind the arriving fleet: at 10,000
/// devices, 8,370 landed after their device was back. The other servers hear of them on the
/// change feed, as they would.
async fn play_departed_servers(store: &Arc<dyn Store>, turns: Vec<(u64, AdminId, DeviceId)>) -> anyhow::Result<()> {
    let bar = progress(turns.len() as u64, "returning devices' last polls written");
    for chunk in turns.chunks(STAMPS_AT_ONCE) {
        let polls: Vec<_> = chunk
            .iter()
            .map(|&(turn, admin, device)| (admin, device, Timestamp(i64::try_from(turn).unwrap_or(i64::MAX) - 1_500)))
            .collect();
        store.record_last_polls(&polls).await.context("writing the returning devices' last polls")?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(())
}

fn start_server(
    addr: SocketAddr,
    mqtt: Option<SocketAddr>,
    url: &str,
    secret: &str,
    metrics_token: &str,
    log: &Path,
) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log)?;
    // `PUMPPILOT_BENCH_SERVER_WRAP`, e.g. `heaptrack -o /tmp/server`: a command the server runs
    // under (split at spaces), to profile a connected server. The bench then watches (and stops)
    // the wrapper, not the server: its memory figures are the wrapper's.
    let wrap = std::env::var("PUMPPILOT_BENCH_SERVER_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut command = match wrap.next() {
        Some(wrapper) => {
            let mut command = Command::new(wrapper);
            command.args(wrap).arg(std::env::current_exe()?);
            command
        }
        None => Command::new(std::env::current_exe()?),
    };
    if let Some(mqtt) = mqtt {
        // A thousand devices share a source address and connect within a second.
        command.env("PUMPPILOT_MQTT_BIND", mqtt.to_string()).env("PUMPPILOT_MQTT_CONNECTS_PER_SECOND", "100000");
    }
    die_with_parent(&mut command)
        // A group of its own, which `ProcessGroup` ends: a wrapper's child (the server) with it.
        .process_group(0)
        .arg("serve")
        .env("PUMPPILOT_BIND", addr.to_string())
        .env("PUMPPILOT_DATABASE_URL", url)
        .env("PUMPPILOT_SECRET", secret)
        .env("PUMPPILOT_METRICS_TOKEN", metrics_token)
        .env("PUMPPILOT_LOG", start_steps::SERVER_LOG)
        .env_remove("PUMPPILOT_MASTER_USERNAME")
        .env_remove("PUMPPILOT_MASTER_PASSWORD")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting a server")
}

async fn wait_healthy(http: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(answer) = http.get(format!("http://{addr}/readyz")).send().await
            && answer.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "server {addr} not ready within 10 minutes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn start_generator(
    group: usize,
    from: usize,
    to: usize,
    ramp: u32,
    at: u64,
    mqtt: bool,
    lower: bool,
    file: &Path,
    said: mpsc::UnboundedSender<Said>,
) -> anyhow::Result<Child> {
    let mut command = Command::new(std::env::current_exe()?);
    if lower {
        // SAFETY: between fork and exec only async-signal-safe calls are allowed; POSIX does not
        // list `nice`, but glibc's is a plain `getpriority`/`setpriority` system call pair, which
        // touches no lock or allocation.
        unsafe {
            command.pre_exec(|| {
                // A failure leaves the priority as it was, which the bench's figures then show.
                let _ = libc::nice(GENERATORS_NICE);
                Ok(())
            });
        }
    }
    let mut child = die_with_parent(&mut command)
        .arg("bench-devices")
        .arg("--file")
        .arg(file)
        .args(["--from", &from.to_string(), "--to", &to.to_string(), "--group", &group.to_string()])
        .args(["--ramp", &ramp.to_string(), "--at", &at.to_string()])
        .args(mqtt.then_some("--mqtt"))
        .env("PUMPPILOT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting a load generator")?;
    let stdout = child.stdout.take().context("its output")?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut words = line.split(' ');
            let said_now = match (words.next(), words.next(), words.next()) {
                (Some("ready"), Some(_), _) => Said::Ready,
                (Some("on"), Some(device), Some(micros)) => {
                    Said::On { device: device.parse().unwrap_or(usize::MAX), micros: micros.parse().unwrap_or(0) }
                }
                (Some("stat"), Some(polls), Some(errors)) => Said::Stat {
                    generator: group,
                    stat: GeneratorStat {
                        polls: polls.parse().unwrap_or(0),
                        errors: errors.parse().unwrap_or(0),
                        answered: words.next().and_then(|a| a.parse().ok()).unwrap_or(0),
                        late_ms: words.next().and_then(|a| a.parse().ok()).unwrap_or(0),
                    },
                },
                _ => continue,
            };
            if said.send(said_now).is_err() {
                return;
            }
        }
    });
    Ok(child)
}

/// A server's process group, killed whole when the bench lets go of it (at its end, or on an
/// error). Under `PUMPPILOT_BENCH_SERVER_WRAP` the bench's child is the wrapper (perf, heaptrack),
/// and killing the wrapper alone left the server under it running after the bench. (A bench
/// itself killed still leaves a wrapped server: only its direct children die with it.)
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Ok(group) = libc::pid_t::try_from(self.0) {
            // SAFETY: a plain system call on a process group the bench made; it touches no memory.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    }
}

/// Ends a child with the bench: the kernel kills it when the bench's process dies, however it ends.
fn die_with_parent(command: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe, as code between fork and exec must be.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// Sets the niceness of every thread of process `pid` (the threads it starts later take their
/// starter's).
fn renice(pid: u32, nice: i32) -> std::io::Result<()> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Some(tid) = task?.file_name().to_str().and_then(|tid| tid.parse::<libc::id_t>().ok()) else { continue };
        // SAFETY: a plain system call on a thread id; it reads and writes no memory of ours.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
            let error = std::io::Error::last_os_error();
            // A thread that ended since the folder was listed is no failure.
            if error.raw_os_error() != Some(libc::ESRCH) {
                return Err(error);
            }
        }
    }
    Ok(())
}

fn now_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros()
}

fn pct(sorted_micros: &[u64], p: f64) -> f64 {
    if sorted_micros.is_empty() {
        return 0.0;
    }
    let index = ((sorted_micros.len() - 1) as f64 * p).round() as usize;
    sorted_micros[index] as f64 / 1000.0
}

/// VmRSS of a process, in KiB (0 when it is gone).
fn rss_kib(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn resident(servers: &[Child]) -> u64 {
    resident_each(servers).iter().sum()
}

/// The servers' proportional set size together (Pss: a page shared by n processes counts 1/n in
/// each, so the binary's code, mapped by every server, counts once), in KiB.
fn proportional(servers: &[Child]) -> u64 {
    servers
        .iter()
        .filter_map(Child::id)
        .map(|pid| {
            let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
            rollup
                .lines()
                .find_map(|line| line.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// VmRSS of each server, in KiB.
fn resident_each(servers: &[Child]) -> Vec<u64> {
    servers.iter().map(|s| rss_kib(s.id())).collect()
}

/// User and system CPU time of the servers, in clock ticks.
fn cpu_ticks(servers: &[Child]) -> u64 {
    servers.iter().filter_map(|s| s.id()).map(process_ticks).sum()
}

/// User and system CPU time of one process, in clock ticks (0 when it is gone).
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: state is the 3rd field, utime the 14th.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// Takes what the load generators said meanwhile: their latest counts (nothing else they say
/// matters outside the steady window).
fn take_stats(hear: &mut mpsc::UnboundedReceiver<Said>, stats: &mut [GeneratorStat], late: &mut Lateness) {
    while let Ok(said) = hear.try_recv() {
        if let Said::Stat { generator, stat } = said {
            late.hear(&stat);
            stats[generator] = stat;
        }
    }
}

/// What the servers counted over the whole bench (their `GET /metrics`, summed): why they ended
/// MQTT sessions (a load generator sees only that its connection closed), and how many devices
/// joined them and were let go as silent (a device that leaves and joins again costs the store
/// two writes each time), the MQTT messages they took and sent (an idle pump's device is told
/// an unchanged OFF once, not after every report), and the packets they found waiting unread
/// when a device's time was up (a server behind its sockets).
async fn print_server_counts(http: &reqwest::Client, addrs: &[SocketAddr], token: &str) {
    let mut ended: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let (mut joins, mut leaves, mut unread) = (0u64, 0u64, 0);
    let (mut received, mut sent, mut late) = (0u64, 0u64, 0u64);
    let mut behind: Vec<f64> = Vec::new();
    for addr in addrs {
        let answer = http.get(format!("http://{addr}/metrics")).bearer_auth(token).send().await;
        let Ok(text) = async { answer?.error_for_status()?.text().await }.await else {
            unread += 1;
            continue;
        };
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            if series == "pumppilot_feed_behind_seconds" {
                behind.extend(value.parse::<f64>().ok());
                continue;
            }
            let value: u64 = value.parse().unwrap_or(0);
            match series {
                "pumppilot_presence_joins_total" => joins += value,
                "pumppilot_presence_leaves_total" => leaves += value,
                "pumppilot_mqtt_messages_received_total" => received += value,
                "pumppilot_mqtt_messages_sent_total" => sent += value,
                "pumppilot_mqtt_heard_late_total" => late += value,
                _ => {
                    if let Some(why) = series
                        .strip_prefix("pumppilot_mqtt_sessions_ended_total{why=\"")
                        .and_then(|rest| rest.strip_suffix("\"}"))
                    {
                        *ended.entry(why.to_owned()).or_default() += value;
                    }
                }
            }
        }
    }
    let said = if ended.is_empty() {
        "none".to_owned()
    } else {
        ended.iter().map(|(why, n)| format!("{why} {n}")).collect::<Vec<_>>().join(", ")
    };
    let unread = if unread > 0 { format!(" ({unread} servers' figures unread)") } else { String::new() };
    println!("  MQTT sessions the servers ended, by why: {said}{unread}");
    println!("  MQTT packets found waiting unread as their time was up (the server behind): {late}");
    println!("  devices joined to a server: {joins}; let go as silent: {leaves}");
    println!("  MQTT messages over the whole bench: {received} taken by the servers, {sent} sent by them");
    if !behind.is_empty() {
        let each = behind.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", ");
        println!("  the change feed behind at the end (each server's own heartbeat back late), s: {each}");
    }
}

/// The documents the store wrote (`testing::writes_between`, from its oplog), per collection: a
/// device coming online (from the first connect until all were present, or the patience ran out)
/// and the steady window, each write one change event for every server. When the oplog no longer
/// holds the start of the arrival (SecantusDB keeps its last 100,000 entries), its writes a
/// second over the part it holds instead.
async fn print_writes(
    store: &pumppilot_store_mongodb::MongoStore,
    online: (u64, u64),
    window: (u64, u64),
    devices: usize,
) {
    use pumppilot_store_mongodb::testing::{Writes, writes_between};
    let millis = |at: u64| i64::try_from(at).unwrap_or(i64::MAX);
    let describe = |writes: &Writes, per: f64, unit: &str| {
        let total: u64 = writes.collections.values().map(|(plain, txn)| plain + txn).sum();
        let each = writes
            .collections
            .iter()
            .map(|(collection, (plain, txn))| match txn {
                0 => format!("{collection} {:.2}", *plain as f64 / per),
                _ => {
                    format!("{collection} {:.2} ({:.2} in transactions)", (plain + txn) as f64 / per, *txn as f64 / per)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!("{:.2} {unit}: {each}", total as f64 / per)
    };
    let seconds = |from: i64, to: u64| (millis(to).saturating_sub(from) as f64 / 1000.0).max(0.001);
    println!("store writes from its oplog (one a document written, one change event for every server):");
    match writes_between(store, millis(online.0), millis(online.1)).await {
        Ok(writes) if writes.from_ms <= millis(online.0) => {
            println!("  coming online: {}", describe(&writes, devices as f64, "a device"));
        }
        Ok(writes) => {
            let held = seconds(writes.from_ms, online.1);
            println!(
                "  coming online, the last {held:.0} s (the oplog no longer holds the rest): {}",
                describe(&writes, held, "a second")
            );
        }
        Err(err) => println!("  coming online: the oplog could not be read ({err})"),
    }
    match writes_between(store, millis(window.0), millis(window.1)).await {
        Ok(writes) => {
            let held = seconds(writes.from_ms, window.1);
            println!("  steady window: {}", describe(&writes, held, "a second"));
        }
        Err(err) => println!("  steady window: the oplog could not be read ({err})"),
    }
}

/// What SecantusDB's garbage collector did between two readings (`testing::TestServer::collector`),
/// and how the launcher tuned it.
fn print_collector(
    before: Option<pumppilot_store_mongodb::testing::Collector>,
    after: Option<pumppilot_store_mongodb::testing::Collector>,
) {
    let (Some(before), Some(after)) = (before, after) else { return };
    let d = after.since(&before);
    let over = pumppilot_store_mongodb::testing::Collector::BOUNDS_MS
        .iter()
        .zip(d.pauses_over)
        .map(|(bound, n)| format!("{n} ≥ {bound} ms"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "  SecantusDB's garbage collector: {}/{}/{} collections (generation 0/1/2), {:.0}/{:.0}/{:.0} ms stopped; \
         pauses: {over}; longest since its start {:.0} ms",
        d.collections[0], d.collections[1], d.collections[2], d.millis[0], d.millis[1], d.millis[2], d.longest_ms
    );
}

/// Operations per collection and kind (count, microseconds), as `testing::operations` gives them.
type Operations = std::collections::BTreeMap<String, std::collections::BTreeMap<String, (u64, u64)>>;

/// What the servers asked of the store over a phase, as SecantusDB's `top` counts it: commands
/// that name one collection, a second, per device a second, per collection, and how many were in
/// flight on average (their summed durations over the phase). The oplog's writes
/// (`print_writes`) count what the grouped writes did too.
fn print_store_load(before: &Operations, after: &Operations, elapsed: f64, devices: f64, cpu: Option<f64>) {
    let (mut total, mut writes, mut busy) = (0u64, 0u64, 0u64);
    let mut lines = Vec::new();
    for (collection, kinds) in after {
        let mut parts = Vec::new();
        for (kind, (count, micros)) in kinds {
            let (was, was_micros) = before.get(collection).and_then(|k| k.get(kind)).copied().unwrap_or((0, 0));
            let count = count.saturating_sub(was);
            if count == 0 {
                continue;
            }
            total += count;
            busy += micros.saturating_sub(was_micros);
            if matches!(kind.as_str(), "insert" | "update" | "remove") {
                writes += count;
            }
            parts.push(format!("{kind} {:.1}/s", count as f64 / elapsed));
        }
        if !parts.is_empty() {
            lines.push(format!("    {collection}: {}", parts.join(", ")));
        }
    }
    let per_second = total as f64 / elapsed;
    // SecantusDB's `top` counts a command once, and only one that names a collection: a bulkWrite
    // (the grouped commits and reservations) names none, and an update of many statements counts
    // once. The oplog's count of writes (printed after the run) is the one to trust.
    println!(
        "  store commands naming one collection (SecantusDB's top; a bulkWrite names none, so the grouped writes \
         are not here): {per_second:.0}/s ({:.4} a device a second), {:.0}/s of them writes; {:.1} in flight on \
         average{}",
        per_second / devices,
        writes as f64 / elapsed,
        busy as f64 / 1e6 / elapsed,
        cpu.map_or(String::new(), |c| format!(", SecantusDB's process {:.0}% of a core", c * 100.0))
    );
    for line in lines {
        println!("{line}");
    }
}

/// How many operations the store ran between two counts.
fn count_ops(before: &Operations, after: &Operations) -> u64 {
    after
        .iter()
        .flat_map(|(collection, kinds)| {
            kinds.iter().map(move |(kind, (count, _))| {
                let was = before.get(collection).and_then(|k| k.get(kind)).map_or(0, |(c, _)| *c);
                count.saturating_sub(was)
            })
        })
        .sum()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::{Generators, PER_GENERATOR};

    #[test]
    fn the_started_pumps_have_a_generator_of_their_own_and_the_rest_are_split_evenly() {
        let parts = Generators::split(100_000, 100);
        assert_eq!(parts.watched, 1);
        assert_eq!(parts.ranges[0], 0..100);
        let load = &parts.ranges[1..];
        assert_eq!(load.len(), 7);
        let sizes: Vec<usize> = load.iter().map(ExactSizeIterator::len).collect();
        let (least, most) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(*most <= PER_GENERATOR && most - least < load.len(), "{sizes:?}");
        // Every device once, in order.
        assert!(parts.ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(parts.ranges.last().map(|r| r.end), Some(100_000));
        assert_eq!(
            (parts.place(0), parts.place(99), parts.place(100), parts.place(100 + load[0].len())),
            (0, 99, 0, 0)
        );

        let unwatched = Generators::split(10, 0);
        assert_eq!((unwatched.watched, unwatched.ranges.len(), unwatched.ranges.first()), (0, 1, Some(&(0..10))));
        let all_watched = Generators::split(5, 10);
        assert_eq!((all_watched.watched, all_watched.ranges.len(), all_watched.ranges.first()), (1, 1, Some(&(0..5))));
    }
}
