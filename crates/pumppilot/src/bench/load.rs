//! `pumppilot bench-devices`: one load generator process of the fleet bench (`fleet.rs` starts
//! several). Its devices long-poll the servers over HTTP, each on its own connection from its own
//! loopback source address, sign every request as a board does, and report at the interval the
//! server holds them for. It writes one line per event on standard output for the bench:
//! `ready N` once every device had its first answer, `on DEVICE MICROS` when a device is told ON
//! (Unix time in microseconds), and every second `stat POLLS ERRORS ANSWERED LATE`. With `--mqtt`
//! its devices speak MQTT instead (`mqtt_load.rs`; POLLS then counts the reports published, and
//! LATE is the most, in ms, that a report of the last second was sent after its time: a generator
//! short of CPU says so, rather than leave its devices' silence for the servers to explain).
//!
//! Kept light on purpose (it shares the machine with the servers it measures): no HTTP client
//! library, one small buffer per device, one task per device.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;

use super::mqtt_load::MqttSpec;
use pumppilot_protocol::link::{self, LinkSecret};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

#[derive(clap::Args)]
pub struct DevicesArgs {
    /// The devices file the bench wrote (one line per device: server address, key, link secret).
    #[arg(long)]
    file: std::path::PathBuf,
    /// The first device (line) of this process.
    #[arg(long)]
    from: usize,
    /// One past the last device of this process.
    #[arg(long)]
    to: usize,
    /// This process's number: its devices connect from 127.(GROUP+1).x.y.
    #[arg(long)]
    group: u8,
    /// The longest the server may hold a long-poll (ms): the report interval.
    #[arg(long, default_value_t = 5000)]
    wait_ms: u32,
    /// New connections per second while starting.
    #[arg(long, default_value_t = 2000)]
    ramp: u32,
    /// The devices speak MQTT (the devices file then names each device's MQTT address and id).
    #[arg(long)]
    mqtt: bool,
    /// When to begin (Unix time in ms; default: at once): the process's device j connects at
    /// AT + j / RAMP seconds, on a schedule that does not drift, so the bench knows when each
    /// device comes (`fleet.rs`, `--arrival returning`).
    #[arg(long)]
    at: Option<u64>,
}

/// One device as the bench made it.
struct Spec {
    server: SocketAddr,
    key: String,
    secret: LinkSecret,
}

/// What every device of the process counts.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) polls: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) answered: AtomicU64,
    /// The most a report was sent after its time since the last `stat` line, in ms.
    pub(super) late_ms: AtomicU64,
}

pub async fn run(args: DevicesArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let mut specs = Vec::new();
    for line in text.lines().skip(args.from).take(args.to - args.from) {
        let mut parts = line.split(' ');
        let (Some(server), Some(key), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("a malformed devices line: {line}");
        };
        let secret = LinkSecret::parse(secret).context("a link secret")?;
        let mqtt = match (args.mqtt, parts.next(), parts.next()) {
            (false, ..) => None,
            (true, Some(mqtt), Some(id)) => Some((mqtt.parse()?, id.to_owned())),
            (true, ..) => anyhow::bail!("a devices line without an MQTT address and device id: {line}"),
        };
        specs.push((Spec { server: server.parse()?, key: key.to_owned(), secret }, mqtt));
    }
    let total = specs.len() as u64;
    let counts = Arc::new(Counts::default());
    let begin =
        tokio::time::Instant::now() + Duration::from_millis(args.at.map_or(0, |at| at.saturating_sub(unix_millis())));
    let ramp = f64::from(args.ramp.max(1));
    // The ramp runs beside the stats below, so the bench hears of the devices as they come.
    let (group, from, wait_ms, ramping) = (args.group, args.from, args.wait_ms, Arc::clone(&counts));
    tokio::spawn(async move {
        for (i, (spec, mqtt)) in specs.into_iter().enumerate() {
            tokio::time::sleep_until(begin + Duration::from_secs_f64(i as f64 / ramp)).await;
            // 1,000 connections per source address: far from the ephemeral ports' limit.
            let n = u32::try_from(i / 1000).unwrap_or(0) + 1;
            let source = Ipv4Addr::new(127, group + 1, (n >> 8) as u8, n as u8);
            let device = u32::try_from(from + i).unwrap_or(u32::MAX);
            let counts = Arc::clone(&ramping);
            match mqtt {
                Some((server, device_id)) => {
                    let spec = MqttSpec { server, device_id, key: spec.key, secret: spec.secret };
                    tokio::spawn(super::mqtt_load::device_loop(device, spec, source, wait_ms, counts));
                }
                None => {
                    tokio::spawn(device_loop(device, spec, source, wait_ms, counts));
                }
            }
        }
    });
    let mut told_ready = false;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        if !told_ready && counts.answered.load(Ordering::Relaxed) >= total {
            println!("ready {total}");
            told_ready = true;
        }
        println!(
            "stat {} {} {} {}",
            counts.polls.load(Ordering::Relaxed),
            counts.errors.load(Ordering::Relaxed),
            counts.answered.load(Ordering::Relaxed),
            counts.late_ms.swap(0, Ordering::Relaxed)
        );
    }
}

/// Now, as Unix time in milliseconds.
pub(super) fn unix_millis() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// A device: connect, poll (signed) until the connection fails, then again after a second.
async fn device_loop(device: u32, spec: Spec, source: Ipv4Addr, wait_ms: u32, counts: Arc<Counts>) {
    let mut state = Board { counter: 0, seq: None, on: false, first: true };
    loop {
        match connect(source, spec.server).await {
            Ok(mut stream) => loop {
                match state.poll(&mut stream, &spec, wait_ms).await {
                    Ok(turned_on) => {
                        counts.polls.fetch_add(1, Ordering::Relaxed);
                        if std::mem::take(&mut state.first) {
                            counts.answered.fetch_add(1, Ordering::Relaxed);
                        }
                        if turned_on {
                            let micros =
                                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                            println!("on {device} {}", micros.as_micros());
                        }
                    }
                    Err(err) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(device, %err, "poll failed");
                        break;
                    }
                }
            },
            Err(err) => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(device, %err, "connect failed");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn connect(source: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What a board remembers between polls.
struct Board {
    counter: u64,
    seq: Option<u64>,
    on: bool,
    first: bool,
}

impl Board {
    /// One signed long-poll; true when it turned the relay ON.
    async fn poll(&mut self, stream: &mut TcpStream, spec: &Spec, wait_ms: u32) -> anyhow::Result<bool> {
        loop {
            self.counter += 1;
            let relay = u8::from(self.on);
            let path = match self.seq {
                Some(seq) => format!("/api/esp32/poll?loadShedding=0&ready=1&relay={relay}&wait={wait_ms}&seq={seq}"),
                None => format!("/api/esp32/poll?loadShedding=0&ready=1&relay={relay}"),
            };
            let tag = spec.secret.request_tag("GET", &path, self.counter, b"");
            let mac = link::to_hex(&tag);
            let request = format!(
                "GET {path} HTTP/1.1\r\nhost: pumppilot\r\nauthorization: Bearer {}\r\n{}: {}\r\n{}: {}\r\n\r\n",
                spec.key,
                link::COUNTER_HEADER,
                self.counter,
                link::MAC_HEADER,
                std::str::from_utf8(&mac).unwrap_or_default(),
            );
            stream.write_all(request.as_bytes()).await?;
            let (status, counter, body) = read_answer(stream).await?;
            match status {
                200 => {}
                // A signed refusal of the counter: continue above the one it names.
                409 => {
                    self.counter = counter.context("a 409 without a counter")?;
                    continue;
                }
                other => anyhow::bail!("status {other}: {}", String::from_utf8_lossy(&body)),
            }
            let answer: serde_json::Value = serde_json::from_slice(&body)?;
            self.seq = answer["seq"].as_u64();
            let on = answer["motor"] == "ON";
            let turned_on = on && !self.on;
            self.on = on;
            return Ok(turned_on);
        }
    }
}

/// Reads one HTTP/1.1 answer with a `content-length`: its status, its link counter header and its
/// body.
async fn read_answer(stream: &mut TcpStream) -> anyhow::Result<(u16, Option<u64>, Vec<u8>)> {
    // Waiting (a long-poll holds the answer for seconds) takes no buffer.
    stream.readable().await?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            let mut lines = head.split("\r\n");
            let status: u16 =
                lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).context("a status line")?;
            let (mut length, mut counter) = (None, None);
            for line in lines {
                let Some((name, value)) = line.split_once(':') else { continue };
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case(link::COUNTER_HEADER) {
                    counter = value.parse().ok();
                }
            }
            let length = length.context("an answer without content-length")?;
            let start = end + 4;
            while buf.len() < start + length {
                if stream.read_buf(&mut buf).await? == 0 {
                    anyhow::bail!("closed in the body");
                }
            }
            return Ok((status, counter, buf[start..start + length].to_vec()));
        }
        if buf.len() > 16 * 1024 {
            anyhow::bail!("an answer head over 16 KiB");
        }
        if stream.read_buf(&mut buf).await? == 0 {
            anyhow::bail!("the server closed the connection");
        }
    }
}
