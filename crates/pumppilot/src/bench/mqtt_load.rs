//! The MQTT devices of `pumppilot bench-devices --mqtt` (`load.rs` runs them): each device a
//! controller (`pumppilot_controller::Controller`, as the firmware and the simulator use it) on
//! its own MQTT connection from its own loopback source address, following `docs/DEVICE.md`
//! "MQTT": CONNECT with its id and key, SUBSCRIBE to its command topic, a signed report
//! (`Controller::mqtt_payload`) every 5 s ± 10% and at once when the controller asks, every pushed
//! command handed to the controller. A device that takes an ON command says so (`on DEVICE MICROS`).
//!
//! Light on purpose: one task per device holding its controller, topics and socket; a read
//! buffer only while a packet is arriving, the report's buffer only while it is written.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    sync::{Arc, OnceLock, atomic::Ordering},
    time::{Duration, Instant},
};

use bytes::BytesMut;
use pumppilot_controller::{
    Controller, Millis, Settings,
    mqtt::{MAX_REPORT_PAYLOAD, Pushed, Topics},
};
use pumppilot_protocol::link::LinkSecret;
use pumppilot_sim::mqtt::{ConnectReturnCode, Packet, Publish, QoS, Subscribe, connect_packet, encode};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpSocket, TcpStream},
};

use super::load::Counts;

/// Largest packet a device takes (the server's limit too).
const MAX_PACKET: usize = 4 * 1024;
/// The contract's keep-alive; reports every 5 s keep the connection alive without PINGREQs.
const KEEP_ALIVE_S: u16 = pumppilot_controller::mqtt::KEEP_ALIVE_S;
/// How long CONNACK and SUBACK may take (a server busy with a ramp of CONNECTs).
const HANDSHAKE: Duration = Duration::from_secs(60);

/// One MQTT device as the bench made it.
pub struct MqttSpec {
    pub server: SocketAddr,
    pub device_id: String,
    pub key: String,
    pub secret: LinkSecret,
}

/// The controller's clock: milliseconds since the load generator started.
fn now() -> Millis {
    static START: OnceLock<Instant> = OnceLock::new();
    Millis(u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// A device: connect, subscribe, report and take commands until the connection fails, then again
/// after a second.
pub async fn device_loop(device: u32, spec: MqttSpec, source: Ipv4Addr, report_ms: u32, counts: Arc<Counts>) {
    let Some(topics) = Topics::new(&spec.device_id) else {
        counts.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut controller = Controller::new(Settings { debounce_ms: 0, ..Settings::DEFAULT });
    controller.set_link_secret(spec.secret);
    controller.set_first_ref(rand::random());
    controller.set_first_counter(rand::random());
    // Grid up, pump ready: settled at once (three samples, no debounce time).
    for _ in 0..pumppilot_controller::DEBOUNCE_SAMPLES {
        controller.sense(now(), false, true);
    }
    let mut first = true;
    loop {
        match session(device, &spec, &topics, &mut controller, source, report_ms, &counts, &mut first).await {
            Ok(()) => {}
            Err(err) => {
                counts.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(device, %err, "MQTT session ended");
            }
        }
        controller.poll_failed(now());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One connection: CONNECT, SUBSCRIBE, then reports and commands until it fails.
#[allow(clippy::too_many_arguments)]
async fn session(
    device: u32,
    spec: &MqttSpec,
    topics: &Topics,
    controller: &mut Controller,
    source: Ipv4Addr,
    report_ms: u32,
    counts: &Counts,
    first: &mut bool,
) -> anyhow::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
    let mut stream = socket.connect(spec.server).await?;
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::new();
    stream.write_all(&encode(&connect_packet(&spec.device_id, &spec.key, KEEP_ALIVE_S))?).await?;
    match tokio::time::timeout(HANDSHAKE, next(&mut stream, &mut buf)).await?? {
        Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => {}
        other => anyhow::bail!("CONNECT answered {other:?}"),
    }
    let subscribe = Subscribe { pkid: 1, ..Subscribe::new(topics.command.as_str(), QoS::AtMostOnce) };
    stream.write_all(&encode(&Packet::Subscribe(subscribe))?).await?;
    match tokio::time::timeout(HANDSHAKE, next(&mut stream, &mut buf)).await?? {
        Packet::SubAck(_) => {}
        other => anyhow::bail!("SUBSCRIBE answered {other:?}"),
    }
    // The first report at once; then every report interval (± 10%), or at once when asked.
    let mut next_report = tokio::time::Instant::now();
    // The last command taken said ON (the relay itself may still wait for the restart protection
    // after the device's boot: the bench times the command's arrival).
    let mut was_on = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_report) => {
                let late = tokio::time::Instant::now().saturating_duration_since(next_report);
                counts.late_ms.fetch_max(u64::try_from(late.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
                let at = now();
                controller.sense(at, false, true);
                let report = controller.mqtt_report(at);
                let mut payload = vec![0u8; MAX_REPORT_PAYLOAD];
                let len = controller
                    .mqtt_payload(&report, topics.report.as_str(), &mut payload)
                    .map_err(|e| anyhow::anyhow!("report: {e:?}"))?;
                let publish = Publish::new(topics.report.as_str(), QoS::AtMostOnce, &payload[..len]);
                drop(payload);
                stream.write_all(&encode(&Packet::Publish(publish))?).await?;
                counts.polls.fetch_add(1, Ordering::Relaxed);
                let jitter = rand::random::<u32>() % (report_ms / 5).max(1);
                next_report = tokio::time::Instant::now()
                    + Duration::from_millis(u64::from(report_ms - report_ms / 10 + jitter));
            }
            packet = next(&mut stream, &mut buf) => {
                let Packet::Publish(publish) = packet? else { continue };
                anyhow::ensure!(publish.topic == topics.command.as_str(), "a publish on {}", publish.topic);
                let at = now();
                match controller.command(at, topics.command.as_str(), &publish.payload) {
                    Ok(pushed) => {
                        if let Pushed::Taken(answer) | Pushed::TakenOff(answer) = pushed {
                            let on = answer.commands_on();
                            if on && !was_on {
                                let micros = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .unwrap_or_default();
                                println!("on {device} {}", micros.as_micros());
                            }
                            was_on = on;
                        }
                        if std::mem::take(first) {
                            counts.answered.fetch_add(1, Ordering::Relaxed);
                        }
                        if pushed.report_now() {
                            next_report = tokio::time::Instant::now();
                        }
                    }
                    Err(pumppilot_controller::AnswerError::Stale) => {}
                    // A refused counter: the controller moved it; report again.
                    Err(pumppilot_controller::AnswerError::Refused(_)) => next_report = tokio::time::Instant::now(),
                    Err(err) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(device, ?err, "unusable command");
                    }
                }
            }
        }
    }
}

/// The next packet from the server (an error once it closed the connection). Waiting takes no
/// buffer; cancel-safe (what was read stays in `buf`).
async fn next(stream: &mut TcpStream, buf: &mut BytesMut) -> anyhow::Result<Packet> {
    loop {
        if !buf.is_empty() {
            match Packet::read(buf, MAX_PACKET) {
                Ok(packet) => {
                    if buf.is_empty() {
                        *buf = BytesMut::new();
                    }
                    return Ok(packet);
                }
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(err) => anyhow::bail!("a malformed packet: {err}"),
            }
        }
        stream.readable().await?;
        buf.reserve(512);
        match stream.try_read_buf(buf) {
            Ok(0) => anyhow::bail!("the server closed the connection"),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err.into()),
        }
    }
}
