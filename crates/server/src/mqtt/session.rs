//! One device's MQTT connection: a proxy's PROXY protocol header when it comes through one, the
//! CONNECT (id, key, budget), then its session until it ends.
//!
//! What ends a session, each closing this connection only: the socket closing (a will, the
//! device gone), silence beyond one and a half keep-alives on the server's clock, a new connection
//! of the same device, the device's key changed or the device retired (here or at another server
//! of the fleet: told at once, and checked again before every report and command), a DISCONNECT,
//! an `offline` status, a malformed packet or one over [`MAX_PACKET`], an unreadable report, an
//! unsigned report of a device that signs or one whose MAC does not check, a publish or subscription outside the device's own topics, the server shutting down. None does
//! anything else: the device is silent from its last report on, and the engine holds its run at
//! the lease's end as for a device that stops polling.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use crate::link::CounterCheck;
use bytes::{Buf, BytesMut};
use pumppilot_engine::Timestamp;
use pumppilot_protocol::{
    PollAnswer, PollReport, json,
    link::{self, Framed, LinkKey, MqttKind},
};
use rumqttc::mqttbytes::{
    Error as CodecError, QoS,
    v4::{ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode, UnsubAck},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{Notify, watch},
};

use super::{Connected, MAX_PACKET, signed};
use crate::{
    app::AppState,
    routes::device::{self, DeviceCaller, Reply, Reported},
    start_path::{self, Step},
};

/// A connection that has not sent its CONNECT (and its PROXY protocol header, through a proxy)
/// within this time is closed.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// The keep-alive used for a device that asks for none (0) or for more than this, in seconds:
/// a connection that says nothing is never kept for ever.
const MAX_KEEP_ALIVE_S: u16 = 300;
/// Longest a write to a device may take (a device that does not read is dropped).
const WRITE_WITHIN: Duration = Duration::from_secs(10);
/// How long a packet found waiting unread when its time was up may take to be read (the runtime
/// only has to turn; real time).
const LATE_WITHIN: Duration = Duration::from_secs(1);
/// Bytes read at a time: a report fits; a longer packet grows the buffer up to [`MAX_PACKET`].
const READ_CHUNK: usize = 512;

/// Why a connection ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The socket closed or failed: the device is gone (what a will message says).
    Gone,
    /// A write to the device did not finish within [`WRITE_WITHIN`]: it does not read.
    Stuck,
    /// Not a packet the contract allows, or not one at all.
    Malformed(&'static str),
    /// The device asked to end (DISCONNECT, or `offline` on its status topic).
    Asked,
    /// Outside its own topics.
    Trespass,
    /// Silent beyond one and a half keep-alives.
    Silent,
    /// The report could not be applied (the tenant is gone, the store refused).
    Refused,
    /// An unsigned report of a device that signs, or one whose MAC does not check.
    Unsigned,
    /// The device connected again.
    TakenOver,
    /// The key it connected with is no longer the device's: rotated, or the device retired.
    KeyChanged,
    /// The server stops.
    Shutdown,
}

impl End {
    /// The reason in a few words, for the log.
    fn why(self) -> &'static str {
        match self {
            End::Gone => "the connection closed",
            End::Stuck => "a write to it did not finish in time",
            End::Malformed(what) => what,
            End::Asked => "the device disconnected",
            End::Trespass => "outside its own topics",
            End::Silent => "silent beyond its keep-alive",
            End::Refused => "its report could not be applied",
            End::Unsigned => "a report without a valid signature",
            End::TakenOver => "the device connected again",
            End::KeyChanged => "its key was rotated or the device retired",
            End::Shutdown => "the server stops",
        }
    }

    /// The word `pumppilot_mqtt_sessions_ended_total` counts it under.
    fn label(self) -> &'static str {
        match self {
            End::Gone => "gone",
            End::Stuck => "stuck",
            End::Malformed(_) => "malformed",
            End::Asked => "asked",
            End::Trespass => "trespass",
            End::Silent => "silent",
            End::Refused => "refused",
            End::Unsigned => "unsigned",
            End::TakenOver => "taken_over",
            End::KeyChanged => "key_changed",
            End::Shutdown => "shutdown",
        }
    }
}

/// A session ended because the server could not do its part (the store refused or failed): said
/// in the log, as a device cut off for it connects again and starts over.
fn refused(device: pumppilot_engine::DeviceId, what: &str, err: &crate::error::ApiError) -> End {
    tracing::warn!(%device, code = err.code, reason = ?err.message, "MQTT: {what}; disconnected");
    End::Refused
}

/// The socket and the bytes of a packet not yet complete.
struct Wire {
    app: AppState,
    stream: TcpStream,
    /// Empty (no allocation) between packets; holds at most one unfinished packet's bytes.
    buf: BytesMut,
}

impl Wire {
    /// The next packet. Cancel-safe: bytes read stay in `buf`, and a packet is returned as soon
    /// as it is cut from it. A plain poll, not an `async fn`: waiting on the socket's own waker
    /// slot (`poll_read_ready`) instead of `readable()`'s waiter keeps some 150 bytes out of
    /// every idle session's task.
    fn next(&mut self) -> impl Future<Output = Result<Packet, End>> + '_ {
        std::future::poll_fn(|cx| self.poll_next(cx))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Packet, End>> {
        loop {
            if !self.buf.is_empty() {
                match Packet::read(&mut self.buf, MAX_PACKET) {
                    Ok(packet) => return Poll::Ready(Ok(packet)),
                    Err(CodecError::InsufficientBytes(_)) => {}
                    Err(CodecError::PayloadSizeLimitExceeded(_)) => {
                        return Poll::Ready(Err(End::Malformed("packet too long")));
                    }
                    Err(_) => return Poll::Ready(Err(End::Malformed("not an MQTT 3.1.1 packet"))),
                }
            } else if self.buf.capacity() > 0 {
                // Idle connections hold no buffer.
                self.buf = BytesMut::new();
            }
            if ready!(self.stream.poll_read_ready(cx)).is_err() {
                return Poll::Ready(Err(End::Gone));
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.try_read_buf(&mut self.buf) {
                Ok(0) => return Poll::Ready(Err(End::Gone)),
                Ok(_) => {}
                // Readiness was cleared: the next round registers this task's waker again.
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(Err(End::Gone)),
            }
        }
    }

    /// The client's address from the PROXY protocol header (version 1 or 2) that a proxy in
    /// `PUMPPILOT_MQTT_PROXIES` sends before anything else; `None` when the header names none
    /// (version 2's LOCAL, version 1's UNKNOWN: the proxy's own health check). The bytes after
    /// the header stay in `buf` for the CONNECT. Anything else first is malformed: the proxy was
    /// not set to send the header, or the connection is not the proxy's.
    async fn proxied(&mut self) -> Result<Option<IpAddr>, End> {
        use ppp::{HeaderResult, PartialResult, v1, v2};
        loop {
            if !self.buf.is_empty() {
                let parsed = HeaderResult::parse(&self.buf);
                if !parsed.is_incomplete() {
                    let (len, client) = match parsed {
                        HeaderResult::V1(Ok(header)) => (
                            header.header.len(),
                            match header.addresses {
                                v1::Addresses::Tcp4(ip) => Some(IpAddr::from(ip.source_address)),
                                v1::Addresses::Tcp6(ip) => Some(IpAddr::from(ip.source_address)),
                                v1::Addresses::Unknown => None,
                            },
                        ),
                        HeaderResult::V2(Ok(header)) => (
                            header.len(),
                            match (header.command, header.addresses) {
                                (v2::Command::Proxy, v2::Addresses::IPv4(ip)) => Some(IpAddr::from(ip.source_address)),
                                (v2::Command::Proxy, v2::Addresses::IPv6(ip)) => Some(IpAddr::from(ip.source_address)),
                                _ => None,
                            },
                        ),
                        HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => {
                            return Err(End::Malformed("not a PROXY protocol header"));
                        }
                    };
                    self.buf.advance(len);
                    return Ok(client);
                }
            }
            if self.buf.len() >= MAX_PACKET {
                return Err(End::Malformed("a PROXY protocol header over 4 KiB"));
            }
            self.buf.reserve(READ_CHUNK);
            if let Ok(0) | Err(_) = self.stream.read_buf(&mut self.buf).await {
                return Err(End::Gone);
            }
        }
    }

    /// Whether bytes of the device wait unread in the socket now its time is up, as the system
    /// says (a peek that does not wait); counted. The runtime knows a socket has become readable
    /// only once its driver has turned, and a busy server's driver takes the readiness of a
    /// bounded number of sockets a turn while every timer due fires: a device's time may be up
    /// before the runtime knows its packet is there. Then the server, not the device, is behind.
    fn heard_late(&self) -> bool {
        let mut byte = [std::mem::MaybeUninit::uninit()];
        let unread = matches!(socket2::SockRef::from(&self.stream).peek(&mut byte), Ok(1..));
        if unread {
            self.app.metrics.mqtt_heard_late();
        }
        unread
    }

    /// The packet whose bytes were waiting unread when its time was up ([`Wire::heard_late`]),
    /// read within [`LATE_WITHIN`]; [`End::Silent`] when none was waiting.
    async fn late(&mut self) -> Result<Packet, End> {
        if !self.heard_late() {
            return Err(End::Silent);
        }
        tokio::time::timeout(LATE_WITHIN, self.next()).await.unwrap_or(Err(End::Silent))
    }

    /// Answers a CONNECT with a refusal and closes, reading what the client still sends until it
    /// closes too (at most a second), so the CONNACK is not lost to a reset.
    async fn refuse(&mut self, code: ConnectReturnCode) {
        if self.send(connack(code)).await.is_err() {
            return;
        }
        let _ = self.stream.shutdown().await;
        let mut sink = [0u8; 256];
        let drain = async { while let Ok(1..) = self.stream.read(&mut sink).await {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }

    async fn send(&mut self, packet: Packet) -> Result<(), End> {
        let mut out = BytesMut::new();
        packet.write(&mut out, usize::MAX).map_err(|_| End::Malformed("cannot encode"))?;
        match tokio::time::timeout(WRITE_WITHIN, self.stream.write_all(&out)).await {
            Ok(Ok(())) => {
                self.app.metrics.mqtt_message_out();
                Ok(())
            }
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Stuck),
        }
    }
}

/// Serves one connection from `peer` until it ends.
pub(super) async fn run(
    app: AppState,
    connected: Arc<Connected>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let _open = app.metrics.mqtt_opened();
    let mut wire = Wire { app: AppState::clone(&app), stream, buf: BytesMut::new() };
    // Boxed: the CONNECT (its packet, a refusal's drain) is over before the session starts;
    // inline, every session's task would keep room for it as long as the device stays.
    let Some(mut session) = Box::pin(connect(&app, &mut wire, peer, &mut stop)).await else { return };
    let taken = connected.enter(session.caller.device);
    // The key checked at CONNECT may have changed before the session was entered (and so before
    // it could be told): checked again now that a change will be told.
    let end = match session.key_current(&app) {
        true => session.serve(&app, &mut wire, &connected, &taken).await,
        false => End::KeyChanged,
    };
    connected.leave(session.caller.device, &taken);
    if let End::KeyChanged = end {
        // A report of this connection may have been applied just after the device was retired
        // (on its way when the key went): it must not leave the retired device the controller.
        // Boxed: rare, and the runtime's future is large.
        Box::pin(app.release_retired(session.caller.admin, session.caller.device)).await;
    }
    app.metrics.mqtt_session_ended(end.label());
    tracing::debug!(
        device = %session.caller.device,
        why = end.why(),
        subscribed = session.subscribed,
        reported = session.reference.is_some(),
        heard_ms_ago = app.now() - session.heard,
        "MQTT session ended"
    );
}

/// Takes the connection's CONNECT: the device's session once it is accepted (CONNACK sent), or
/// `None` when the connection ends there (refused, silent, malformed, gone).
async fn connect(
    app: &AppState,
    wire: &mut Wire,
    peer: SocketAddr,
    stop: &mut watch::Receiver<bool>,
) -> Option<Session> {
    // One deadline for the PROXY protocol header (if any) and the CONNECT together.
    let deadline = app.now() + i64::try_from(CONNECT_WITHIN.as_millis()).unwrap_or(i64::MAX);
    let since = tokio::time::Instant::now();
    let address = if app.settings.mqtt_proxies.iter().any(|proxy| proxy.contains(&peer.ip())) {
        let header = tokio::select! {
            header = wire.proxied() => header,
            () = app.settings.clock.sleep_until(deadline) => Err(End::Silent),
            _ = stop.changed() => Err(End::Shutdown),
            () = app.connection_slots.idle_shed(since) => return None,
        };
        match header {
            Ok(client) => {
                let client = client.unwrap_or(peer.ip());
                tracing::debug!(%peer, %client, "MQTT: a connection through a proxy");
                client
            }
            // Closed before a header (a proxy's bare health check), or the server stops.
            Err(End::Gone | End::Shutdown) => return None,
            Err(end) => {
                tracing::warn!(%peer, why = end.why(), "MQTT: a connection from a proxy in PUMPPILOT_MQTT_PROXIES without a PROXY protocol header; closed");
                return None;
            }
        }
    } else {
        peer.ip()
    };
    // Counted as waiting for its CONNECT until this function returns; one address cannot take
    // every connection slot with silent connections.
    let Some(_waiting) = app.mqtt_budget.knock(address) else {
        tracing::debug!(%peer, %address, "MQTT: too many connections from one address waiting for their CONNECT; closed");
        return None;
    };
    let first = tokio::select! {
        packet = wire.next() => packet,
        () = app.settings.clock.sleep_until(deadline) => wire.late().await,
        _ = stop.changed() => Err(End::Shutdown),
        // Every connection slot taken, and this one silent past its grace: closed to make room.
        () = app.connection_slots.idle_shed(since) => return None,
    };
    let connect = match first {
        Ok(Packet::Connect(connect)) => connect,
        // Anything else first, garbage, or nothing in time: a failed CONNECT for the budget.
        Ok(_) | Err(End::Malformed(_) | End::Silent) => {
            // At debug: anyone may knock on an open port. A proxy that sends a PROXY protocol
            // header to a server not told of it (`PUMPPILOT_MQTT_PROXIES`) shows here too.
            tracing::debug!(%peer, "MQTT: a connection without a CONNECT first; closed");
            app.mqtt_budget.failed(address, false);
            return None;
        }
        Err(_) => return None,
    };
    app.metrics.mqtt_connect();
    if !app.mqtt_budget.admit(address) {
        wire.refuse(ConnectReturnCode::ServiceUnavailable).await;
        return None;
    }
    if connect.protocol != rumqttc::mqttbytes::Protocol::V4 {
        wire.refuse(ConnectReturnCode::RefusedProtocolVersion).await;
        return None;
    }
    let caller = connect.login.as_ref().and_then(|login| {
        let hash = app.keyring.hash(login.password.trim());
        let (device, admin) = app.device_keys.read().expect("device keys lock").get(&hash).copied()?;
        let id = device.to_string();
        (login.username == id && connect.client_id == id).then_some((DeviceCaller { device, admin }, hash))
    });
    let Some((caller, key_hash)) = caller else {
        app.mqtt_budget.failed(address, true);
        wire.refuse(ConnectReturnCode::BadUserNamePassword).await;
        return None;
    };
    wire.send(connack(ConnectReturnCode::Success)).await.ok()?;
    let keep_alive = match connect.keep_alive {
        0 => MAX_KEEP_ALIVE_S,
        asked => asked.min(MAX_KEEP_ALIVE_S),
    };
    Some(Session {
        command_topic: format!("pumppilot/{}/command", caller.device),
        caller,
        key_hash,
        counter: 0,
        subscribed: false,
        reference: None,
        published: None,
        update: None,
        silent_after: i64::from(keep_alive) * 1500,
        heard: app.now(),
    })
}

fn connack(code: ConnectReturnCode) -> Packet {
    Packet::ConnAck(ConnAck { session_present: false, code })
}

/// What the server keeps of one connected device.
struct Session {
    caller: DeviceCaller,
    /// The hash of the key the device connected with: the session lasts while it is the device's,
    /// and a device that signs has its reports checked and its commands signed with the link
    /// secret of this key (`Session::link_key`).
    key_hash: [u8; 32],
    /// The counter of the latest signed report accepted on this connection (0 before any): the
    /// commands carry it.
    counter: u64,
    /// `pumppilot/{id}/command`, where every command and refusal goes (made once, not per send);
    /// its `pumppilot/{id}/` is the device's own topics' prefix.
    command_topic: String,
    /// It subscribed to its command topic.
    subscribed: bool,
    /// The `ref` of the latest report received on this connection.
    reference: Option<u32>,
    /// The last command published on this connection.
    published: Option<Published>,
    /// The firmware meant for the device, as its last report's answer said.
    update: Option<String>,
    /// Milliseconds of silence that end the session (1.5 keep-alives).
    silent_after: i64,
    /// When the device last sent a packet.
    heard: Timestamp,
}

/// A command as it was published to the device.
#[derive(Clone, Copy)]
struct Published {
    answer: PollAnswer,
    /// It named a report (`ref`), so the device took it as its command.
    named_a_report: bool,
}

impl Session {
    /// Serves the device until its session ends; `taken` is notified when another connection
    /// of the device takes over, the server stops, or the device's key changed.
    async fn serve(&mut self, app: &AppState, wire: &mut Wire, connected: &Connected, taken: &Arc<Notify>) -> End {
        let mut changes = app.runtime.subscribe(self.caller.admin);
        changes.borrow_and_update();
        let mut silence = app.settings.clock.sleep_until(self.heard + self.silent_after);
        loop {
            // In this order: a takeover ends the session whatever else is ready, and a packet
            // that came while the last one was handled (a report waiting on a busy store) is
            // read before the silence is looked at, so a device is never silent while it talks.
            tokio::select! {
                biased;
                () = taken.notified() => {
                    if connected.stopping() {
                        return End::Shutdown;
                    }
                    if !self.key_current(app) {
                        return End::KeyChanged;
                    }
                    if !connected.holds(self.caller.device, taken) {
                        return End::TakenOver;
                    }
                    // Told of a key this connection does not use (it connected with the new one).
                }
                packet = wire.next() => {
                    let packet = match packet {
                        Ok(packet) => packet,
                        Err(end) => return end,
                    };
                    self.heard = app.now();
                    app.metrics.mqtt_message_in();
                    // Boxed, as the push below: a packet's handling (a report through the engine
                    // and the store, a command read) takes kilobytes of future state for the
                    // moment it runs; inline, every idle connection's task would carry them.
                    if let Err(end) = Box::pin(self.take(app, wire, packet, &mut changes)).await {
                        return end;
                    }
                }
                changed = changes.changed(), if self.subscribed => {
                    if changed.is_err() {
                        return End::Shutdown;
                    }
                    let seq = changes.borrow_and_update().seq;
                    if self.published.map(|published| published.answer.seq) != Some(seq)
                        && let Err(end) = Box::pin(self.push(app, wire)).await
                    {
                        return end;
                    }
                }
                () = &mut silence => {
                    if app.now() >= self.heard + self.silent_after {
                        if !wire.heard_late() {
                            return End::Silent;
                        }
                        // It spoke; its packet is read once the runtime knows it is there.
                        self.heard = app.now();
                    }
                    silence = app.settings.clock.sleep_until(self.heard + self.silent_after);
                }
            }
        }
    }

    /// Handles one packet from the device.
    async fn take(
        &mut self,
        app: &AppState,
        wire: &mut Wire,
        packet: Packet,
        changes: &mut watch::Receiver<crate::runtime::Stamp>,
    ) -> Result<(), End> {
        match packet {
            Packet::Publish(publish) => self.published(app, wire, publish).await,
            Packet::Subscribe(subscribe) => {
                if subscribe.filters.is_empty() || !subscribe.filters.iter().all(|f| self.is_own(&f.path, "command")) {
                    return Err(End::Trespass);
                }
                let codes = subscribe.filters.iter().map(|_| SubscribeReasonCode::Success(QoS::AtMostOnce)).collect();
                wire.send(Packet::SubAck(SubAck { pkid: subscribe.pkid, return_codes: codes })).await?;
                self.subscribed = true;
                // Changes from now on are pushed by `serve`; this one is the current command.
                changes.borrow_and_update();
                self.push(app, wire).await
            }
            Packet::Unsubscribe(unsubscribe) => {
                if !unsubscribe.topics.iter().all(|topic| self.is_own(topic, "command")) {
                    return Err(End::Trespass);
                }
                self.subscribed = false;
                wire.send(Packet::UnsubAck(UnsubAck { pkid: unsubscribe.pkid })).await
            }
            Packet::PingReq => wire.send(Packet::PingResp).await,
            Packet::Disconnect => Err(End::Asked),
            // Commands go out at QoS 0, so nothing is owed; an acknowledgement is harmless.
            Packet::PubAck(_) => Ok(()),
            _ => Err(End::Malformed("a packet a device does not send here")),
        }
    }

    async fn published(&mut self, app: &AppState, wire: &mut Wire, publish: Publish) -> Result<(), End> {
        if publish.qos == QoS::ExactlyOnce {
            return Err(End::Malformed("QoS 2 is not offered"));
        }
        if self.is_own(&publish.topic, "status") {
            if publish.qos == QoS::AtLeastOnce {
                wire.send(Packet::PubAck(PubAck { pkid: publish.pkid })).await?;
            }
            return if publish.payload.as_ref() == b"offline" { Err(End::Asked) } else { Ok(()) };
        }
        if !self.is_own(&publish.topic, "report") {
            return Err(End::Trespass);
        }
        let device = self.caller.device;
        // A report is applied only with the device's key (the session is ending if it changed).
        if !self.key_current(app) {
            return Err(End::KeyChanged);
        }
        let (payload, counter) = match link::unframe(publish.payload.as_ref()) {
            Framed::Plain(payload) if !self.signs(app) => (payload, None),
            Framed::Plain(_) => {
                tracing::warn!(%device, "MQTT: an unsigned report of a device that signs; disconnected");
                return Err(End::Unsigned);
            }
            Framed::Signed { counter, tag, body } => {
                if counter == 0 || !self.link_key(app).check_mqtt(MqttKind::Report, &publish.topic, counter, body, &tag)
                {
                    tracing::warn!(%device, "MQTT: a report whose MAC does not check; disconnected");
                    return Err(End::Unsigned);
                }
                (body, Some(counter))
            }
            Framed::Malformed => return Err(End::Malformed("not a signature line")),
        };
        let report: PollReport<'_> = serde_json::from_slice(payload).map_err(|_| End::Malformed("not a report"))?;
        let reference = json::decode_ref(payload, MAX_PACKET).map_err(|_| End::Malformed("ref: a u32"))?;
        if publish.qos == QoS::AtLeastOnce {
            wire.send(Packet::PubAck(PubAck { pkid: publish.pkid })).await?;
        }
        if let Some(counter) = counter {
            match crate::link::accept_counter(app, self.caller.admin, device, counter).await {
                Ok(CounterCheck::Accepted) => {}
                Ok(CounterCheck::Refused { highest }) => {
                    // A replay, or a device that rebooted: nothing changes; the device learns
                    // where to continue (signed, so nobody else can move its counter).
                    tracing::debug!(%device, counter, highest, "MQTT: a report's counter refused");
                    // The device counts the refusal as a failed report: the next one is answered.
                    self.published = None;
                    if !self.subscribed {
                        return Ok(());
                    }
                    let refusal = serde_json::json!({"error": {
                        "code": "STALE_COUNTER",
                        "message": format!("counter {counter} was used already or is too old; continue above {highest}"),
                    }});
                    let body = serde_json::to_vec(&refusal).map_err(|_| End::Malformed("cannot encode"))?;
                    let topic = self.command_topic.clone();
                    let payload = signed(&self.link_key(app), MqttKind::Stale, &topic, highest, &body);
                    return wire.send(Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload))).await;
                }
                Err(err) => return Err(refused(device, "its report's counter could not be checked", &err)),
            }
        }
        let relay = report.relay;
        let Reported { reply, applied } = device::report(app, &self.caller, counter, report)
            .await
            .map_err(|err| refused(device, "its report could not be applied", &err))?;
        // A report older than one applied (held back and delivered late) changed nothing: the
        // command published now names the newest report, as a push would.
        if applied {
            self.reference = reference;
            self.counter = counter.unwrap_or(self.counter);
        }
        let repeats = self.repeats(&reply, relay);
        self.update.clone_from(&reply.update);
        if self.subscribed && !repeats {
            self.send(app, wire, Reply { reference: self.reference, ..reply }).await?;
        }
        Ok(())
    }

    /// True when `reply`, the answer to a report that said the relay is `relay`, need not be
    /// published: it repeats the last command published on this connection, one that named a
    /// report (so the device took it), by [`PollAnswer::repeats`]. Always published while a
    /// firmware update is offered: the device retries a failed download from the offer.
    fn repeats(&self, reply: &Reply, relay: bool) -> bool {
        self.published.is_some_and(|published| {
            published.named_a_report
                && reply.answer.repeats(&published.answer, relay)
                && reply.update.is_none()
                && self.update.is_none()
        })
    }

    /// Publishes the current command.
    async fn push(&mut self, app: &AppState, wire: &mut Wire) -> Result<(), End> {
        let (admin, device) = (self.caller.admin, self.caller.device);
        let answer = match app.runtime.outage_answer(admin, app.now()).await {
            Some(off) => off,
            // Boxed: reading the command may bring the tenant up to date through the store (kilobytes
            // of future state), and a report's handling would otherwise keep room for it.
            None => Box::pin(app.runtime.command(admin, device))
                .await
                .map_err(|err| refused(device, "its command could not be read", &err.into()))?,
        };
        let reply = Reply { answer, update: self.update.clone(), reference: self.reference };
        self.send(app, wire, reply).await?;
        start_path::note(Step::Sent, admin);
        Ok(())
    }

    /// Publishes a command; to a device that signs, signed with the counter of the report it
    /// answers (0 before any on this connection). Never with a key that is no longer the
    /// device's: one that went while a report was applied or a change pushed ends the session
    /// instead (whose end undoes what that report may have made of a retired device).
    async fn send(&mut self, app: &AppState, wire: &mut Wire, reply: Reply) -> Result<(), End> {
        if !self.key_current(app) {
            return Err(End::KeyChanged);
        }
        let mut payload = reply.to_json().map_err(|_| End::Malformed("cannot encode"))?;
        self.published = Some(Published { answer: reply.answer, named_a_report: reply.reference.is_some() });
        let topic = self.command_topic.clone();
        if self.signs(app) {
            payload = signed(&self.link_key(app), MqttKind::Command, &topic, self.counter, &payload);
        }
        wire.send(Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload))).await
    }

    /// True while the key the device connected with is still its key (one lookup in the key cache,
    /// which a rotation or retirement, here or at another server, changes first).
    fn key_current(&self, app: &AppState) -> bool {
        let keys = app.device_keys.read().expect("device keys lock");
        keys.get(&self.key_hash) == Some(&(self.caller.device, self.caller.admin))
    }

    /// The link secret of the key the device connected with, keyed (derived once, then kept with
    /// the device's counter window: `CounterWindows::secret`).
    fn link_key(&self, app: &AppState) -> LinkKey {
        app.counters.secret(&app.keyring, self.caller.device, &self.key_hash)
    }

    /// True once the device has signed a message (over HTTP or MQTT, on any server of the
    /// store): from then on it sends and takes signed messages only.
    fn signs(&self, app: &AppState) -> bool {
        app.signed_devices.read().expect("signed devices lock").contains(&self.caller.device)
    }

    /// True for `pumppilot/{own id}/{leaf}`.
    fn is_own(&self, topic: &str, leaf: &str) -> bool {
        let prefix = &self.command_topic[..self.command_topic.len() - "command".len()];
        topic.strip_prefix(prefix) == Some(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size5<A, B, C, D, E, F: std::future::Future>(_: impl FnOnce(A, B, C, D, E) -> F) -> usize {
        size_of::<F>()
    }

    /// What a connected device costs this server in its own task: the connection's future (its
    /// socket, its session, the waits of `serve`) stays small while the device is idle; the
    /// CONNECT and each packet's handling are boxed for the moment they run, the socket is
    /// waited on through its own waker slot, and the server's stop comes through the takeover
    /// signal. 928 bytes here (1,232 before those two), 1,407 B a task under heaptrack before.
    /// The session keeps the last command it published whole (40 bytes, 16 when it kept only its
    /// `seq`), so that an unchanged OFF is told once: 24 bytes a device to spare a packet every
    /// report. It keeps the hash of the key it connected with (32 bytes), checked before every
    /// report and command, in place of the link secret (which the counter windows keep keyed for
    /// a device that signs): 192 bytes, and 936 for the future (`serve` also asks the registry
    /// whether a signal was a takeover).
    #[test]
    fn a_connected_device_keeps_a_small_task() {
        let task = size5(run);
        assert!(task <= 960, "the session's future: {task} bytes");
        assert!(size_of::<Session>() <= 224, "the session: {} bytes", size_of::<Session>());
    }
}
