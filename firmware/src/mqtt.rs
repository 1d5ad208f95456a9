//! The MQTT session (`transport = mqtt`; MQTT 3.1.1, the contract of docs/DEVICE.md): CONNECT with
//! the device id and key and the will, SUBSCRIBE to the device's command topic, PUBLISH each
//! report, hand each command to the controller. The packets are mqttrs's (a `no_std` codec); every
//! decision (when to report, what a command means, the lease counted from the report it names,
//! the backoff) is the controller's (`pumppilot_controller::mqtt`). Card taps and updates still go
//! over HTTP.
//!
//! With a link secret in the settings the controller signs every report (`<counter> <mac-hex>\n`
//! before the JSON) and takes only commands whose MAC checks; a signed refusal of a report's
//! counter (after a reboot) moves the counter, and the next report goes after the retry delay.

use embassy_futures::select::{Either3, select3};
use embassy_net::{IpAddress, Stack, dns::DnsQueryType, tcp::TcpSocket};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use embedded_io_async::Write as _;
use esp_hal::rng::Rng;
use esp_println::println;
use mqttrs::{
    Connect, ConnectReturnCode, LastWill, Packet, Pid, Protocol, Publish, QoS, QosPid, Subscribe, SubscribeTopic,
};
use pumppilot_controller::{
    AnswerError, Reply,
    mqtt::{KEEP_ALIVE_S, MAX_REPORT_PAYLOAD, Pushed, Topics, WILL_PAYLOAD},
    protocol::{json, link},
    setup::DeviceSettings,
};

use crate::{REPORT_NOW, net::NetState, now, with_controller};

/// The longest packet the device takes (a command is at most a few hundred bytes; the server
/// closes connections on packets over 4 KiB).
const PACKET_BYTES: usize = 1024;
/// How long the server may take to answer CONNECT and SUBSCRIBE.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Why a session ended.
#[derive(Debug)]
enum Ended {
    Dns,
    Connect,
    Refused(ConnectReturnCode),
    Handshake,
    Closed,
    Malformed,
    /// A packet longer than the buffer: an answer the device cannot read whole, which drops the
    /// command at once (as one over the answer's limit does), not at the lease's end.
    TooLong,
}

#[embassy_executor::task]
pub async fn mqtt_task(stack: Stack<'static>, settings: &'static DeviceSettings) {
    let Some(topics) = Topics::new(settings.device_id.as_str()) else {
        println!("MQTT: the device id cannot name a topic; motor stays OFF");
        return;
    };
    let (host, port) = settings.broker_address();
    let rng = Rng::new();
    let (mut socket_rx, mut socket_tx) = ([0u8; PACKET_BYTES], [0u8; PACKET_BYTES]);
    let mut buf = [0u8; PACKET_BYTES];
    loop {
        if !stack.is_config_up() {
            NetState::Offline.set();
            stack.wait_config_up().await;
            NetState::NoServer.set();
        }
        // Nothing is reported before the inputs have settled (a boot would say "grid down").
        while !with_controller(|controller| controller.settled(now())) {
            Timer::after(Duration::from_millis(u64::from(pumppilot_controller::timing::SETTLE_CHECK_MS))).await;
        }
        let mut socket = TcpSocket::new(stack, &mut socket_rx, &mut socket_tx);
        // The server closes a connection silent for 1.5 keep-alives; so does the device.
        socket.set_timeout(Some(Duration::from_secs(u64::from(KEEP_ALIVE_S) * 3 / 2)));
        let ended = session(stack, &mut socket, &topics, settings, host, port, &rng, &mut buf).await;
        socket.abort();
        let _ = socket.flush().await;
        println!("MQTT: session ended ({ended:?})");
        NetState::NoServer.set();
        // A failed or dropped session counts as a failed poll: the lease runs on, the controller
        // backs off. A CONNACK refusing the id and key is the HTTP 401/403 of MQTT: the LED then
        // says "key refused", not "unreachable".
        with_controller(|controller| match ended {
            Ended::Refused(code) => {
                let status = match code {
                    ConnectReturnCode::BadUsernamePassword => 401,
                    ConnectReturnCode::NotAuthorized => 403,
                    _ => 503,
                };
                let at = now();
                let sent = controller.sent(at);
                let _ = controller.reply(sent, at, Reply { status, counter: None, mac: None, body: &[] });
            }
            Ended::TooLong => {
                let _ = controller.too_long(now());
            }
            _ => controller.poll_failed(now()),
        });
        let wait = with_controller(|controller| controller.next_poll_in(rng.random()));
        Timer::after(Duration::from_millis(u64::from(wait))).await;
    }
}

#[allow(clippy::too_many_arguments, reason = "one session's parts, passed straight through")]
async fn session(
    stack: Stack<'static>,
    socket: &mut TcpSocket<'_>,
    topics: &Topics,
    settings: &DeviceSettings,
    host: &str,
    port: u16,
    rng: &Rng,
    buf: &mut [u8; PACKET_BYTES],
) -> Ended {
    let found = stack.dns_query(host, DnsQueryType::A).await;
    let Some(IpAddress::Ipv4(address)) = found.ok().and_then(|found| found.first().copied()) else {
        return Ended::Dns;
    };
    if socket.connect((address, port)).await.is_err() {
        return Ended::Connect;
    }
    // CONNECT: client id and user name = the device id, password = the device key, the will.
    let connect = Packet::Connect(Connect {
        protocol: Protocol::MQTT311,
        keep_alive: KEEP_ALIVE_S,
        client_id: settings.device_id.as_str(),
        clean_session: true,
        last_will: Some(LastWill {
            topic: topics.status.as_str(),
            message: WILL_PAYLOAD,
            qos: QoS::AtMostOnce,
            retain: false,
        }),
        username: Some(settings.device_id.as_str()),
        password: Some(settings.device_key.as_str().as_bytes()),
    });
    if send(socket, &connect).await.is_err() {
        return Ended::Closed;
    }
    let mut filled = 0;
    match with_timeout(HANDSHAKE, next_packet(socket, buf, &mut filled)).await {
        Ok(Ok(len)) => match mqttrs::decode_slice(&buf[..len]) {
            Ok(Some(Packet::Connack(connack))) if connack.code == ConnectReturnCode::Accepted => {
                consume(buf, &mut filled, len)
            }
            Ok(Some(Packet::Connack(connack))) => return Ended::Refused(connack.code),
            _ => return Ended::Malformed,
        },
        Ok(Err(ended)) => return ended,
        Err(_) => return Ended::Handshake,
    }
    let subscribe = Packet::Subscribe(Subscribe::new(
        Pid::new(),
        core::iter::once(SubscribeTopic { topic_path: topics.command.as_str().into(), qos: QoS::AtMostOnce }).collect(),
    ));
    if send(socket, &subscribe).await.is_err() {
        return Ended::Closed;
    }
    println!("MQTT: connected to {host}:{port} as {}", settings.device_id.as_str());
    // The server publishes the current command right after SUBACK, then on a change and in answer
    // to a report (an unchanged OFF only once): nothing here waits for an answer.
    let mut next_report = Instant::now();
    let mut last_sent = Instant::now();
    let keep_alive = Duration::from_secs(u64::from(KEEP_ALIVE_S) / 2);
    loop {
        let ping_at = last_sent + keep_alive;
        let event =
            select3(next_packet(socket, buf, &mut filled), Timer::at(next_report.min(ping_at)), REPORT_NOW.wait())
                .await;
        match event {
            Either3::First(Err(ended)) => return ended,
            Either3::First(Ok(len)) => {
                let mut report_in = None;
                match mqttrs::decode_slice(&buf[..len]) {
                    Ok(Some(Packet::Publish(publish))) if publish.topic_name == topics.command.as_str() => {
                        report_in = take_command(topics, publish.payload, rng);
                    }
                    Ok(Some(Packet::Suback(_) | Packet::Pingresp | Packet::Puback(_) | Packet::Publish(_))) => {}
                    _ => return Ended::Malformed,
                }
                consume(buf, &mut filled, len);
                if let Some(wait) = report_in {
                    next_report = Instant::now() + Duration::from_millis(u64::from(wait));
                }
            }
            Either3::Second(()) if Instant::now() < next_report => {
                if send(socket, &Packet::Pingreq).await.is_err() {
                    return Ended::Closed;
                }
                last_sent = Instant::now();
            }
            Either3::Second(()) | Either3::Third(()) => {
                if publish_report(socket, topics).await.is_err() {
                    return Ended::Closed;
                }
                // A change signalled before this report is in it (the control loop signals again
                // for anything newer).
                REPORT_NOW.reset();
                last_sent = Instant::now();
                let wait = with_controller(|controller| controller.next_poll_in(rng.random()));
                next_report = last_sent + Duration::from_millis(u64::from(wait));
            }
        }
    }
}

/// Hands a pushed command to the controller; returns when to report next (milliseconds from
/// now), or `None` to keep the schedule.
fn take_command(topics: &Topics, payload: &[u8], rng: &Rng) -> Option<u32> {
    match with_controller(|controller| controller.command(now(), topics.command.as_str(), payload)) {
        Ok(pushed) => {
            NetState::Online.set();
            if let Pushed::Taken(_) = pushed
                && let Some(version) = json::decode_update(link::unframe(payload).body())
            {
                // Only from a command the controller took (so its MAC checked, on a signing device).
                crate::ota::offer(version);
            }
            pushed.report_now().then_some(0)
        }
        Err(AnswerError::Stale) => None,
        Err(AnswerError::Refused(status)) => {
            // The server refused the report's counter: the controller moved it up; retry.
            println!("MQTT: report refused ({status}); counter moved, retrying");
            NetState::NoServer.set();
            Some(with_controller(|controller| controller.next_poll_in(rng.random())))
        }
        Err(err) => {
            println!("MQTT: unusable command ({err:?}): motor OFF until a good one");
            NetState::NoServer.set();
            Some(0)
        }
    }
}

/// Publishes the controller's report (with its `ref`; signed with a link secret) to the report
/// topic, QoS 0.
async fn publish_report(socket: &mut TcpSocket<'_>, topics: &Topics) -> Result<(), ()> {
    let mut payload = [0u8; MAX_REPORT_PAYLOAD];
    let len = with_controller(|controller| {
        let mut report = controller.mqtt_report(now());
        report.report.rssi = crate::net::rssi();
        controller.mqtt_payload(&report, topics.report.as_str(), &mut payload)
    })
    .map_err(|_| ())?;
    let publish = Packet::Publish(Publish {
        dup: false,
        qospid: QosPid::AtMostOnce,
        retain: false,
        topic_name: topics.report.as_str(),
        payload: &payload[..len],
    });
    send(socket, &publish).await
}

async fn send(socket: &mut TcpSocket<'_>, packet: &Packet<'_>) -> Result<(), ()> {
    let mut out = [0u8; PACKET_BYTES];
    let len = mqttrs::encode_slice(packet, &mut out).map_err(|_| ())?;
    socket.write_all(&out[..len]).await.map_err(|_| ())?;
    socket.flush().await.map_err(|_| ())
}

/// Reads until `buf[..filled]` starts with a whole packet; returns its length. A packet longer
/// than the buffer ([`Ended::TooLong`]), or a length that is not MQTT's, ends the session.
async fn next_packet(socket: &mut TcpSocket<'_>, buf: &mut [u8], filled: &mut usize) -> Result<usize, Ended> {
    loop {
        match frame_len(&buf[..*filled]) {
            Ok(Some(len)) if len <= buf.len() => {
                if *filled >= len {
                    return Ok(len);
                }
            }
            Ok(Some(_)) => return Err(Ended::TooLong),
            Err(()) => return Err(Ended::Malformed),
            Ok(None) => {}
        }
        match socket.read(&mut buf[*filled..]).await {
            Ok(0) | Err(_) => return Err(Ended::Closed),
            Ok(n) => *filled += n,
        }
    }
}

/// Drops the first `len` bytes (one packet) of `buf[..filled]`.
fn consume(buf: &mut [u8], filled: &mut usize, len: usize) {
    buf.copy_within(len..*filled, 0);
    *filled -= len;
}

/// The length of the packet at the start of `buf` (fixed header with its variable-length
/// "remaining length", then the rest), `None` while its header is incomplete.
fn frame_len(buf: &[u8]) -> Result<Option<usize>, ()> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else { return Ok(None) };
        remaining |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some(2 + i + remaining));
        }
    }
    Err(())
}
