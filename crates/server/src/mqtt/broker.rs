//! An external broker (`PUMPPILOT_MQTT_BROKER=mqtt://host:port`), for a site that already runs
//! one: PumpPilot connects to it as a client, subscribes to every device's `report` and `status`,
//! and publishes each device's commands, as its own listener would.
//!
//! The broker authenticates the devices and keeps each on its own topics (Mosquitto: a password
//! file with each device's id and key, and the ACL `pattern readwrite pumppilot/%u/#`; see
//! `docs/DEVICE.md`, "An external broker"). PumpPilot trusts the device id in a topic only for a
//! device it knows, and from a device that signs (over HTTP or MQTT) only a signed report whose
//! MAC checks and whose counter the link accepts (`crate::link::accept_counter`; a refused one
//! gets a signed refusal, a bad one is ignored and logged: the broker, not PumpPilot, holds the
//! connection). It applies each report through the same function as the HTTP poll, and signs every
//! command to a device that signs. Commands go out retained, so a device gets the current one from the
//! broker as it subscribes; then on every change of its `seq`, and once per report, with the
//! `ref` of the latest report this server handled. An `offline` status ends the device's
//! session here (no more pushes); its run holds at the lease's end as for any silent device. So
//! does a new key or the device's retirement: nothing more is pushed to it with the old key's
//! secret, and a report is taken only while its device has a key (the broker, which keeps the
//! connection, must be told of the new key or the retirement by the site).

use std::{
    collections::{HashMap, hash_map::Entry},
    time::Duration,
};

use crate::link::CounterCheck;
use pumppilot_engine::{AdminId, DeviceId};
use pumppilot_protocol::{
    PollReport, json,
    link::{self, Framed, LinkKey, LinkSecret, MqttKind},
};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

use super::{MAX_PACKET, signed};
use crate::{
    app::AppState,
    routes::device::{self, DeviceCaller, Reply, Reported},
};

/// Where and as whom PumpPilot connects to an external broker.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub host: String,
    pub port: u16,
    /// PumpPilot's own login at the broker, if it needs one.
    pub login: Option<(String, crate::config::Secret)>,
}

impl BrokerSettings {
    /// Reads `mqtt://host:port` (the port defaults to 1883).
    pub fn parse(url: &str) -> Option<BrokerSettings> {
        let rest = url.strip_prefix("mqtt://")?.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (rest, 1883),
        };
        (!host.is_empty() && !host.contains('/')).then(|| BrokerSettings { host: host.to_owned(), port, login: None })
    }
}

/// The connection to the broker of a running server.
pub struct Bridge {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Bridge {
    /// Connects (and keeps connecting) to the broker and serves its devices until
    /// [`Bridge::shutdown`].
    pub fn start(app: &AppState, settings: &BrokerSettings) -> Bridge {
        let id = format!("pumppilot-server-{}", uuid::Uuid::now_v7().simple());
        let mut options = MqttOptions::new(id, settings.host.clone(), settings.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        options.set_max_packet_size(MAX_PACKET + 256, MAX_PACKET + 256);
        if let Some((username, password)) = &settings.login {
            options.set_credentials(username.clone(), password.0.clone());
        }
        let (client, events) = AsyncClient::new(options, 64);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(AppState::clone(app), client, events, stopped));
        Bridge { stop, task }
    }

    /// Disconnects from the broker.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What PumpPilot keeps of a device it heard through the broker.
struct Heard {
    admin: AdminId,
    /// The hash of the device's key when it was last heard: pushes stop once it is no longer its
    /// key (rotated, or the device retired).
    key_hash: [u8; 32],
    /// The device's link secret (derived from its key), keyed.
    secret: LinkKey,
    /// The counter of the latest signed report accepted (0 before any): its commands carry it.
    counter: u64,
    reference: Option<u32>,
    sent_seq: Option<u64>,
    update: Option<String>,
}

async fn serve(app: AppState, client: AsyncClient, mut events: EventLoop, mut stop: watch::Receiver<bool>) {
    let mut devices: HashMap<DeviceId, Heard> = HashMap::new();
    // Tenants whose changes are watched, and the channel their watchers name them on.
    let mut watched: HashMap<AdminId, tokio::task::JoinHandle<()>> = HashMap::new();
    let (changed_tx, mut changed) = mpsc::unbounded_channel::<AdminId>();
    let mut up = false;
    loop {
        tokio::select! {
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    up = true;
                    tracing::info!("MQTT broker: connected");
                    let _ = client.try_subscribe("pumppilot/+/report", QoS::AtLeastOnce);
                    let _ = client.try_subscribe("pumppilot/+/status", QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    app.metrics.mqtt_message_in();
                    let (id, leaf) = match topic_parts(&publish.topic) {
                        Some(parts) => parts,
                        None => continue,
                    };
                    if leaf == "status" {
                        if publish.payload.as_ref() == b"offline" {
                            devices.remove(&id);
                        }
                        continue;
                    }
                    let Some((caller, key_hash, secret)) = known(&app, id, &devices) else {
                        tracing::debug!(device = %id, "MQTT broker: a report of no device that may use MQTT");
                        continue;
                    };
                    watched.entry(caller.admin).or_insert_with(|| {
                        tokio::spawn(watch_tenant(AppState::clone(&app), caller.admin, changed_tx.clone()))
                    });
                    let heard = match devices.entry(id) {
                        Entry::Occupied(heard) => {
                            let heard = heard.into_mut();
                            (heard.key_hash, heard.secret) = (key_hash, secret);
                            heard
                        }
                        Entry::Vacant(slot) => slot.insert(Heard { admin: caller.admin, key_hash, secret, counter: 0, reference: None, sent_seq: None, update: None }),
                    };
                    let Some((payload, counter)) = read_signed(&app, id, heard, &publish.topic, publish.payload.as_ref()) else {
                        continue;
                    };
                    if let Some(counter) = counter {
                        match crate::link::accept_counter(&app, caller.admin, id, counter).await {
                            Ok(CounterCheck::Accepted) => {}
                            Ok(CounterCheck::Refused { highest }) => {
                                tracing::debug!(device = %id, counter, highest, "MQTT broker: a report's counter refused");
                                publish_refusal(&app, &client, id, heard, counter, highest);
                                continue;
                            }
                            Err(err) => {
                                tracing::warn!(device = %id, error = ?err.message, "MQTT broker: a counter could not be checked");
                                continue;
                            }
                        }
                    }
                    let (Ok(report), Ok(reference)) =
                        (serde_json::from_slice::<PollReport<'_>>(payload), json::decode_ref(payload, MAX_PACKET))
                    else {
                        tracing::debug!(device = %id, "MQTT broker: not a report");
                        continue;
                    };
                    match device::report(&app, &caller, counter, report).await {
                        // The key went while the report was applied: nothing is told, and a
                        // retired device is let go of as the controller.
                        Ok(_) if !still_known(&app, id, heard) => {
                            devices.remove(&id);
                            Box::pin(app.release_retired(caller.admin, id)).await;
                        }
                        Ok(Reported { reply, applied }) => {
                            // A report older than one applied changed nothing: the command
                            // published names the newest report.
                            if applied {
                                heard.reference = reference;
                                heard.counter = counter.unwrap_or(heard.counter);
                            }
                            heard.update.clone_from(&reply.update);
                            publish_command(&app, &client, id, heard, reply);
                        }
                        Err(err) => tracing::warn!(device = %id, error = ?err.message, "MQTT broker: a report could not be applied"),
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    if up {
                        tracing::warn!(%err, "MQTT broker: connection lost; connecting again");
                        up = false;
                    }
                    // rumqttc connects again on the next poll; wait a moment (real time: the
                    // network's, not the pump's clock).
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => break,
                    }
                }
            },
            Some(admin) = changed.recv() => {
                let ids: Vec<DeviceId> = devices.iter().filter(|(_, h)| h.admin == admin).map(|(id, _)| *id).collect();
                for id in ids {
                    let Some(heard) = devices.get_mut(&id) else { continue };
                    if !still_known(&app, id, heard) {
                        devices.remove(&id);
                        continue;
                    }
                    let answer = match app.runtime.outage_answer(admin, app.now()).await {
                        Some(off) => off,
                        None => match app.runtime.command(admin, id).await {
                            Ok(answer) => answer,
                            Err(_) => continue,
                        },
                    };
                    if heard.sent_seq != Some(answer.seq) {
                        let reply = Reply { answer, update: heard.update.clone(), reference: None };
                        publish_command(&app, &client, id, heard, reply);
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
    for (_, watcher) in watched {
        watcher.abort();
    }
    let _ = client.try_disconnect();
    // Let the DISCONNECT go out.
    let _ = tokio::time::timeout(Duration::from_secs(1), events.poll()).await;
}

/// `pumppilot/{id}/{leaf}` with a device id.
fn topic_parts(topic: &str) -> Option<(DeviceId, &str)> {
    let mut parts = topic.split('/');
    let (Some("pumppilot"), Some(id), Some(leaf), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some((id.parse().ok()?, leaf))
}

/// The device, its tenant, its key's hash and its link secret, when PumpPilot knows it.
fn known(
    app: &AppState,
    id: DeviceId,
    devices: &HashMap<DeviceId, Heard>,
) -> Option<(DeviceCaller, [u8; 32], LinkKey)> {
    let keys = app.device_keys.read().expect("device keys lock");
    // A device heard before with its key still its own: that key and secret, found in one step (a
    // walk of every key for each report was the whole fleet's keys each time).
    if let Some(heard) = devices.get(&id)
        && keys.get(&heard.key_hash).is_some_and(|(device, _)| *device == id)
    {
        return Some((DeviceCaller { device: id, admin: heard.admin }, heard.key_hash, heard.secret.clone()));
    }
    // Its first report here, or its key changed since: its key is found by a walk.
    let (hash, (device, admin)) = keys.iter().find(|(_, (device, _))| *device == id)?;
    let secret = LinkSecret::parse(&crate::link::secret_for(&app.keyring, *device, hash))
        .expect("a derived secret parses")
        .keyed();
    let admin = devices.get(&id).map_or(*admin, |heard| heard.admin);
    Some((DeviceCaller { device: id, admin }, *hash, secret))
}

/// True while the key the device was last heard with is still its key.
fn still_known(app: &AppState, id: DeviceId, heard: &Heard) -> bool {
    app.device_keys.read().expect("device keys lock").get(&heard.key_hash).is_some_and(|(device, _)| *device == id)
}

/// The report JSON of a payload and its counter when signed; `None` (logged) for an unsigned
/// report of a device that signs, a MAC that does not check, or a broken prefix line.
fn read_signed<'a>(
    app: &AppState,
    id: DeviceId,
    heard: &Heard,
    topic: &str,
    payload: &'a [u8],
) -> Option<(&'a [u8], Option<u64>)> {
    match link::unframe(payload) {
        Framed::Plain(json) if !app.signed_devices.read().expect("signed devices lock").contains(&id) => {
            Some((json, None))
        }
        Framed::Plain(_) => {
            tracing::warn!(device = %id, "MQTT broker: an unsigned report of a device that signs; ignored");
            None
        }
        Framed::Signed { counter, tag, body }
            if counter > 0 && heard.secret.check_mqtt(MqttKind::Report, topic, counter, body, &tag) =>
        {
            Some((body, Some(counter)))
        }
        Framed::Signed { .. } | Framed::Malformed => {
            tracing::warn!(device = %id, "MQTT broker: a report whose signature does not check; ignored");
            None
        }
    }
}

/// Tells a device that signs that its report's counter was refused (not retained: it concerns
/// that report only).
fn publish_refusal(app: &AppState, client: &AsyncClient, id: DeviceId, heard: &Heard, counter: u64, highest: u64) {
    let refusal = serde_json::json!({"error": {
        "code": "STALE_COUNTER",
        "message": format!("counter {counter} was used already or is too old; continue above {highest}"),
    }});
    let Ok(body) = serde_json::to_vec(&refusal) else { return };
    let topic = format!("pumppilot/{id}/command");
    let payload = signed(&heard.secret, MqttKind::Stale, &topic, highest, &body);
    match client.try_publish(topic, QoS::AtMostOnce, false, payload) {
        Ok(()) => app.metrics.mqtt_message_out(),
        Err(err) => tracing::warn!(device = %id, %err, "MQTT broker: a refusal could not be queued"),
    }
}

fn publish_command(app: &AppState, client: &AsyncClient, id: DeviceId, heard: &mut Heard, reply: Reply) {
    let reply = Reply { reference: heard.reference, ..reply };
    let Ok(mut payload) = reply.to_json() else { return };
    heard.sent_seq = Some(reply.answer.seq);
    let topic = format!("pumppilot/{id}/command");
    if app.signed_devices.read().expect("signed devices lock").contains(&id) {
        payload = signed(&heard.secret, MqttKind::Command, &topic, heard.counter, &payload);
    }
    match client.try_publish(topic, QoS::AtMostOnce, true, payload) {
        Ok(()) => app.metrics.mqtt_message_out(),
        Err(err) => tracing::warn!(device = %id, %err, "MQTT broker: a command could not be queued"),
    }
}

/// Names `admin` on `changed` whenever its command's `seq` moves.
async fn watch_tenant(app: AppState, admin: AdminId, changed: mpsc::UnboundedSender<AdminId>) {
    let mut changes = app.runtime.subscribe(admin);
    let mut seq = changes.borrow_and_update().seq;
    drop(app);
    while changes.changed().await.is_ok() {
        let now = changes.borrow_and_update().seq;
        if now != seq {
            seq = now;
            if changed.send(admin).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_url_is_mqtt_host_and_port() {
        let s = BrokerSettings::parse("mqtt://broker.local:1884").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("broker.local", 1884));
        assert_eq!(BrokerSettings::parse("mqtt://10.0.0.2").unwrap().port, 1883);
        for bad in ["broker:1883", "mqtts://b:8883", "mqtt://", "mqtt://b:port", "mqtt://b/x:1"] {
            assert!(BrokerSettings::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_a_device_topic_names_a_device() {
        let id = DeviceId::new();
        assert_eq!(topic_parts(&format!("pumppilot/{id}/report")), Some((id, "report")));
        for bad in [format!("pumppilot/{id}/report/x"), "pumppilot/nobody/report".into(), format!("other/{id}/report")]
        {
            assert!(topic_parts(&bad).is_none(), "{bad}");
        }
    }
}
