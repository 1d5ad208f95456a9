//! What the runtime's tests share.

use pumppilot_engine::{AdminId, Timestamp, UserId};
use pumppilot_store::{Account, Role};

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
