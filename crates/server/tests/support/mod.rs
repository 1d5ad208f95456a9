//! What the runtime's tests share.

use pumppilot_engine::{AdminId, DeviceId, Timestamp, UserId};
use pumppilot_store::{Account, Device, Role, Store, Telemetry};

/// An account of `admin`'s tenant (or the admin's own), made at `now`, that never signs in.
pub fn account(id: UserId, admin: AdminId, role: Role, now: Timestamp) -> Account {
    Account {
        id,
        username: id.to_string(),
        name: "someone".into(),
        role,
        admin_id: Some(admin),
        password_hash: String::new(),
        suspended: false,
        created_at: now,
    }
}

/// Waits, on real time, until `done` holds (at most 20 s).
#[allow(dead_code)] // not every test binary waits on real time
pub async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let started = std::time::Instant::now();
    while !done().await {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{what}: not within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A pump on `store`, made at `now`: its owner, one farmer, and its device (its key's hash all
/// `key` bytes).
#[allow(dead_code)] // not every test binary needs a pump of its own
pub async fn pump(store: &dyn Store, now: Timestamp, key: u8) -> (AdminId, UserId, DeviceId) {
    let (admin, farmer, device) = (AdminId(UserId::new()), UserId::new(), DeviceId::new());
    store.create_account(&account(admin.0, admin, Role::Admin, now)).await.unwrap();
    store.create_account(&account(farmer, admin, Role::User, now)).await.unwrap();
    let pump = Device {
        id: device,
        admin_id: admin,
        name: "pump".into(),
        key_hash: vec![key; 32],
        created_at: now,
        telemetry: None,
    };
    store.create_device(&pump).await.unwrap();
    (admin, farmer, device)
}

/// What a ready device on the grid says at `now`, its relay as it says.
#[allow(dead_code)] // as `pump`
pub fn telemetry(admin: AdminId, device: DeviceId, now: Timestamp, relay: bool) -> Telemetry {
    Telemetry { relay, ..Telemetry::ready(admin, device, now) }
}
