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
