//! Devices over MQTT 3.1.1 (`PUMPPILOT_MQTT_BIND`), next to the HTTP poll: the listener, the
//! CONNECT budget per client address, and one task per connection (`session.rs`).
//!
//! PumpPilot is the broker for its devices' own topics only, with its own session handling over
//! rumqttc's packet codec (`rumqttc::mqttbytes::v4`): a device connects with its id and key,
//! subscribes to `pumppilot/{id}/command` and publishes its reports to `pumppilot/{id}/report`;
//! each report goes through the same function as the HTTP poll (`routes::device::report`), and
//! the command is pushed at once on SUBSCRIBE, on every change of its `seq` (the runtime's
//! change stamps, which follow the store's change feed, so every server of a fleet pushes what
//! any of them changed), and in answer to a report unless it would only repeat an OFF the device
//! has (`PollAnswer::repeats`). The contract is in `docs/DEVICE.md`, "MQTT".
//!
//! A device's key is checked at CONNECT and again for every report and command: when the key
//! changes or the device is retired, here or at another server of the fleet
//! (`App::set_device_key`), its session ends at once ([`Connected::key_changed`]).
//!
//! With an external broker instead (`PUMPPILOT_MQTT_BROKER`, `broker.rs`), PumpPilot is one of its
//! clients and the broker keeps the devices' connections.
//!
//! A connection costs one task (about 0.9 KB: what runs rarely, the CONNECT, a packet's handling,
//! is boxed for the moment it runs), its socket, and a read buffer that exists only while bytes
//! of a packet wait or are handled (none while idle).

mod broker;
mod budget;
mod session;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

pub use broker::{Bridge, BrokerSettings};
pub use budget::ConnectBudget;
use pumppilot_engine::DeviceId;
use pumppilot_protocol::link::{self, LinkKey, MqttKind};
use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
};

use crate::app::AppState;

/// `json` signed as an MQTT message of `kind` on `topic`: `<counter> <mac-hex>\n` before it (a
/// command or refusal to a device that signs; `pumppilot_protocol::link`).
fn signed(secret: &LinkKey, kind: MqttKind, topic: &str, counter: u64, json: &[u8]) -> Vec<u8> {
    let tag = secret.mqtt_tag(kind, topic, counter, json);
    let mut prefix = [0u8; link::MAX_MQTT_PREFIX_BYTES];
    let at = link::write_prefix(counter, &tag, &mut prefix);
    [&prefix[..at], json].concat()
}

/// Largest packet accepted (its remaining length); a longer one closes the connection.
pub const MAX_PACKET: usize = 4 * 1024;

/// The MQTT listener of a running server.
pub struct Listener {
    /// The address it listens on (port 0 in the settings picks a free one).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    connected: Arc<Connected>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Accepts devices on `listener` (bound to `PUMPPILOT_MQTT_BIND`) until [`Listener::shutdown`].
    pub fn on(app: &AppState, listener: TcpListener) -> anyhow::Result<Listener> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let connected = Arc::clone(&app.mqtt_connected);
        let task = tokio::spawn(accept(AppState::clone(app), listener, Arc::clone(&connected), stopped));
        Ok(Listener { addr, stop, connected, task })
    }

    /// Stops accepting, closes every device's connection, and returns once all have ended.
    pub async fn shutdown(self) {
        // Connections still at their CONNECT see `stop`; sessions are told through their takeover
        // signal (one wait less in each idle session's task).
        let _ = self.stop.send(true);
        self.connected.stop_all();
        let _ = self.task.await;
        // Every connection's task holds a receiver of `stop`: all are gone once it is closed.
        self.stop.closed().await;
    }
}

/// The device of each open session: a device that connects again takes over (MQTT's rule for a
/// client id), so a half-open connection left by a dropped link ends at once. The same signal
/// ends every session when the server stops, and tells a session to check its key again when the
/// device's key changed ([`Connected::key_changed`]).
#[derive(Default)]
pub struct Connected(Mutex<Sessions>);

#[derive(Default)]
struct Sessions {
    by_device: HashMap<DeviceId, Arc<Notify>>,
    /// The server stops: a session that enters now ends at once.
    stopping: bool,
}

impl Connected {
    /// Registers a session of `device`, ending the one before it; the session ends when the
    /// returned signal is notified (taken over, or the server stops: [`Connected::stopping`]).
    fn enter(&self, device: DeviceId) -> Arc<Notify> {
        let mine = Arc::new(Notify::new());
        let mut sessions = self.0.lock().expect("sessions lock");
        if sessions.stopping {
            mine.notify_one();
        }
        if let Some(before) = sessions.by_device.insert(device, Arc::clone(&mine)) {
            before.notify_one();
        }
        mine
    }

    /// True while `mine` is the device's session (no other connection of it took over).
    fn holds(&self, device: DeviceId, mine: &Arc<Notify>) -> bool {
        let sessions = self.0.lock().expect("sessions lock");
        sessions.by_device.get(&device).is_some_and(|current| Arc::ptr_eq(current, mine))
    }

    /// Tells the device's session here, if it has one, that the device's key changed: the session
    /// checks its key again and ends unless it connected with the device's key now. Called once
    /// the key cache holds the change, so a session that connects meanwhile finds it there.
    pub fn key_changed(&self, device: DeviceId) {
        if let Some(session) = self.0.lock().expect("sessions lock").by_device.get(&device) {
            session.notify_one();
        }
    }

    /// Forgets the session, unless another one of the device took its place.
    fn leave(&self, device: DeviceId, mine: &Arc<Notify>) {
        let mut sessions = self.0.lock().expect("sessions lock");
        if sessions.by_device.get(&device).is_some_and(|current| Arc::ptr_eq(current, mine)) {
            sessions.by_device.remove(&device);
        }
    }

    /// Ends every session, and every one that enters from now on.
    fn stop_all(&self) {
        let mut sessions = self.0.lock().expect("sessions lock");
        sessions.stopping = true;
        for session in sessions.by_device.values() {
            session.notify_one();
        }
    }

    /// True once the server stops.
    fn stopping(&self) -> bool {
        self.0.lock().expect("sessions lock").stopping
    }
}

async fn accept(app: AppState, listener: TcpListener, connected: Arc<Connected>, mut stop: watch::Receiver<bool>) {
    let mut told_full = false;
    loop {
        // A connection slot first, shared with HTTP (`PUMPPILOT_MAX_CONNECTIONS`): connections
        // past it wait to be accepted, and devices cannot take the files the dashboard needs.
        let slot = tokio::select! {
            slot = app.connection_slots.next(&mut told_full, "MQTT") => slot,
            _ = stop.changed() => return,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let connected = Arc::clone(&connected);
                    // The session's future is the task itself (the slot let go when it ends), not
                    // awaited inside another, which would hold its size twice for as long as the
                    // device stays.
                    let session = session::run(AppState::clone(&app), connected, stream, peer, stop.clone());
                    tokio::spawn(futures_util::FutureExt::map(session, move |()| drop(slot)));
                }
                Err(err) => {
                    // Out of file descriptors, most likely: wait a moment (real time: this is
                    // the machine's limit, not the pump's clock) instead of spinning.
                    tracing::warn!(%err, "MQTT: could not accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}
