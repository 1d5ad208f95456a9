//! Sessions: lookups by token hash, conditional rotation, revocation one by one and by scope.

use pumppilot_engine::{Timestamp, UserId};
use pumppilot_store::{RefreshMatch, Rotation, Session, SessionId, SessionKind, SessionScope, Store, StoreError};

use crate::support::{DAY, MINUTE, assert_err, at, tenancy};

fn web(user: UserId, access: &[u8], created_at: Timestamp) -> Session {
    Session {
        id: SessionId::new(),
        kind: SessionKind::Web,
        user_id: user,
        access_hash: access.to_vec(),
        access_expires_at: created_at + DAY,
        refresh_hash: None,
        previous_refresh_hash: None,
        refresh_expires_at: None,
        device_name: None,
        created_at,
        revoked_at: None,
    }
}

fn mobile(user: UserId, access: &[u8], refresh: &[u8], created_at: Timestamp) -> Session {
    Session {
        kind: SessionKind::Mobile,
        access_expires_at: created_at + 15 * MINUTE,
        refresh_hash: Some(refresh.to_vec()),
        refresh_expires_at: Some(created_at + 30 * DAY),
        device_name: Some("Pixel 7".to_owned()),
        ..web(user, access, created_at)
    }
}

/// Sessions are found by access hash in their kind's collection and by current or previous
/// refresh hash; rotation is conditional; revocation works one by one, per user and per tenant.
pub async fn sessions_lookup_rotation_and_revocation(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (u1, u2) = (rahim.users[0], rahim.users[1]);
    let admin_web = web(rahim.admin.0, b"admin-web", at(0));
    let u1_web = web(u1, b"u1-web", at(1));
    let u1_phone = mobile(u1, b"u1-access", b"u1-refresh", at(2));
    let u2_phone = mobile(u2, b"u2-access", b"u2-refresh", at(3));
    let q_phone = mobile(q.users[0], b"q-access", b"q-refresh", at(4));
    for session in [&admin_web, &u1_web, &u1_phone, &u2_phone, &q_phone] {
        store.create_session(session).await.expect("create session");
    }

    let by_access = |kind, hash: &'static [u8]| async move { store.session_by_access_hash(kind, hash).await.unwrap() };
    assert_eq!(by_access(SessionKind::Web, b"admin-web").await, Some(admin_web.clone()));
    assert_eq!(by_access(SessionKind::Mobile, b"u1-access").await, Some(u1_phone.clone()));
    assert_eq!(by_access(SessionKind::Web, b"u1-access").await, None, "the kind picks the collection");
    assert_eq!(by_access(SessionKind::Mobile, b"nothing").await, None);
    let by_refresh = |hash: &'static [u8]| async move { store.session_by_refresh_hash(hash).await.unwrap() };
    assert_eq!(by_refresh(b"u1-refresh").await, Some((u1_phone.clone(), RefreshMatch::Current)));
    assert_eq!(by_refresh(b"nothing").await, None);

    let rotation = Rotation {
        id: u1_phone.id,
        expected_refresh_hash: b"u1-refresh".to_vec(),
        access_hash: b"u1-access-2".to_vec(),
        access_expires_at: at(60) + 15 * MINUTE,
        refresh_hash: b"u1-refresh-2".to_vec(),
        refresh_expires_at: at(60) + 30 * DAY,
    };
    store.rotate_session(&rotation).await.expect("rotate");
    let rotated = Session {
        access_hash: rotation.access_hash.clone(),
        access_expires_at: rotation.access_expires_at,
        refresh_hash: Some(rotation.refresh_hash.clone()),
        previous_refresh_hash: Some(b"u1-refresh".to_vec()),
        refresh_expires_at: Some(rotation.refresh_expires_at),
        ..u1_phone.clone()
    };
    assert_eq!(by_refresh(b"u1-refresh-2").await, Some((rotated.clone(), RefreshMatch::Current)));
    assert_eq!(by_refresh(b"u1-refresh").await, Some((rotated.clone(), RefreshMatch::Previous)), "reuse is detectable");
    assert_eq!(by_access(SessionKind::Mobile, b"u1-access").await, None);
    assert_eq!(by_access(SessionKind::Mobile, b"u1-access-2").await, Some(rotated.clone()));

    // Rotating from the old refresh token again (a replay, or a lost race) is refused.
    let replay =
        Rotation { access_hash: b"u1-access-3".to_vec(), refresh_hash: b"u1-refresh-3".to_vec(), ..rotation.clone() };
    assert_err!(store.rotate_session(&replay).await, StoreError::VersionConflict);
    assert_eq!(by_access(SessionKind::Mobile, b"u1-access-2").await, Some(rotated.clone()));
    assert_err!(store.rotate_session(&Rotation { id: SessionId::new(), ..replay }).await, StoreError::NotFound);

    store.revoke_session(SessionKind::Mobile, u2_phone.id, at(100)).await.expect("revoke one");
    let revoked = by_access(SessionKind::Mobile, b"u2-access").await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at(100)));
    let after_revoke = Rotation {
        id: u2_phone.id,
        expected_refresh_hash: b"u2-refresh".to_vec(),
        access_hash: b"u2-access-2".to_vec(),
        access_expires_at: at(110),
        refresh_hash: b"u2-refresh-2".to_vec(),
        refresh_expires_at: at(110),
    };
    assert_err!(store.rotate_session(&after_revoke).await, _);
    assert_err!(store.revoke_session(SessionKind::Web, SessionId::new(), at(100)).await, StoreError::NotFound);

    // The tenant's live sessions, the admin's included, in both collections; not Q's.
    let mut ids = store.revoke_sessions(SessionScope::Tenant(rahim.admin), at(200)).await.expect("revoke tenant");
    ids.sort();
    let mut expected = vec![admin_web.id, u1_web.id, u1_phone.id];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(by_access(SessionKind::Web, b"admin-web").await.unwrap().revoked_at, Some(at(200)));
    assert_eq!(by_access(SessionKind::Web, b"u1-web").await.unwrap().revoked_at, Some(at(200)));
    assert_eq!(by_access(SessionKind::Mobile, b"u1-access-2").await.unwrap().revoked_at, Some(at(200)));
    assert_eq!(
        by_access(SessionKind::Mobile, b"u2-access").await.unwrap().revoked_at,
        Some(at(100)),
        "already revoked"
    );
    assert_eq!(by_access(SessionKind::Mobile, b"q-access").await, Some(q_phone.clone()));

    let ids = store.revoke_sessions(SessionScope::User(q.users[0]), at(300)).await.expect("revoke user");
    assert_eq!(ids, [q_phone.id]);
    assert_eq!(store.revoke_sessions(SessionScope::User(q.users[0]), at(301)).await.unwrap(), vec![]);
    assert_eq!(by_access(SessionKind::Mobile, b"q-access").await.unwrap().revoked_at, Some(at(300)));
}

/// Only sessions that can never be used again are purged: revoked ones, and those whose last
/// token (refresh for mobile, access for web) has expired.
pub async fn purging_removes_only_dead_sessions(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let user = rahim.users[0];
    let t0 = at(0);
    let live_web = web(user, b"live-web", t0);
    let expired_web = web(user, b"old-web", t0 - 2 * DAY);
    let revoked_web = Session { revoked_at: Some(t0 - MINUTE), ..web(user, b"revoked-web", t0) };
    // Its access token has expired, but its refresh token still works: it must stay.
    let refreshable = mobile(user, b"stale-access", b"fresh-refresh", t0 - DAY);
    let expired_mobile = mobile(user, b"old-access", b"old-refresh", t0 - 31 * DAY);
    for session in [&live_web, &expired_web, &revoked_web, &refreshable, &expired_mobile] {
        store.create_session(session).await.unwrap();
    }
    assert_eq!(store.purge_sessions(t0).await.unwrap(), 3);
    assert!(store.session_by_access_hash(SessionKind::Web, b"live-web").await.unwrap().is_some());
    assert!(store.session_by_refresh_hash(b"fresh-refresh").await.unwrap().is_some());
    for (kind, hash) in
        [(SessionKind::Web, &b"old-web"[..]), (SessionKind::Web, b"revoked-web"), (SessionKind::Mobile, b"old-access")]
    {
        assert!(store.session_by_access_hash(kind, hash).await.unwrap().is_none(), "{kind:?} {hash:?} purged");
    }
    assert_eq!(store.purge_sessions(t0).await.unwrap(), 0, "purging again finds nothing");
}

/// A session read with its accounts (`Store::signed_in`) is what the reads one by one give: the
/// session, its account, and for a farmer the pump owner's account (for an owner, none); a
/// revoked session is still found (the server tells a suspended account from a signed-out one);
/// an unknown hash or the other kind finds nothing.
pub async fn a_session_is_read_with_its_accounts(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let farmer = rahim.users[0];
    let by_farmer = mobile(farmer, b"farmer-access", b"farmer-refresh", at(0));
    let by_owner = web(rahim.admin.0, b"owner-access", at(0));
    for session in [&by_farmer, &by_owner] {
        store.create_session(session).await.unwrap();
    }
    let account = |id: UserId| async move { store.account(id).await.unwrap().expect("the account") };

    let read = store.signed_in(SessionKind::Mobile, b"farmer-access").await.unwrap().expect("the farmer's session");
    assert_eq!(read.session, by_farmer);
    assert_eq!(read.account, Some(account(farmer).await));
    assert_eq!(read.owner, Some(account(rahim.admin.0).await));

    let read = store.signed_in(SessionKind::Web, b"owner-access").await.unwrap().expect("the owner's session");
    assert_eq!(read.session, by_owner);
    assert_eq!(read.account, Some(account(rahim.admin.0).await));
    assert_eq!(read.owner, None, "an owner has no owner");

    store.revoke_session(SessionKind::Mobile, by_farmer.id, at(5)).await.unwrap();
    let read = store.signed_in(SessionKind::Mobile, b"farmer-access").await.unwrap().expect("a revoked session");
    assert_eq!(read.session.revoked_at, Some(at(5)));
    assert_eq!(read.account.map(|a| a.id), Some(farmer));

    assert_eq!(store.signed_in(SessionKind::Web, b"farmer-access").await.unwrap(), None, "another kind's");
    assert_eq!(store.signed_in(SessionKind::Web, b"unknown").await.unwrap(), None);
}
