//! Sessions: lookups by token hash, conditional rotation, revocation one by one and by scope, and
//! the push tokens that live as long as the session that registered them.

use futures_util::future::join_all;
use pumppilot_engine::{NoticeKind, Timestamp, UserId};
use pumppilot_store::{
    AccountChange, AlertProfile, AuditEntry, Channel, PendingPhone, QuietHours, RefreshMatch, Role, Rotation, Session,
    SessionId, SessionKind, SessionScope, Store, StoreError,
};

use crate::support::{DAY, MINUTE, assert_err, at, save_profile, tenancy};

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

/// A phone's app session of `user`'s, made at `created_at`: its refresh token lasts 30 days.
pub(crate) fn mobile(user: UserId, access: &[u8], refresh: &[u8], created_at: Timestamp) -> Session {
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

/// A profile of `user` listing `tokens`, each `(name, session that registered it)`.
fn with_tokens(user: UserId, tokens: &[(&str, Option<SessionId>)]) -> AlertProfile {
    let token = |name: &str| format!("ExponentPushToken[{name}]");
    AlertProfile {
        push_tokens: tokens.iter().map(|(name, _)| token(name)).collect(),
        push_sessions: tokens.iter().filter_map(|(name, session)| Some((token(name), (*session)?))).collect(),
        ..AlertProfile::empty(user)
    }
}

/// The names of a person's push tokens (`ExponentPushToken[name]`), in their order.
async fn token_names(store: &dyn Store, user: UserId) -> Vec<String> {
    let profile = store.alert_profile(user).await.unwrap().unwrap_or_else(|| AlertProfile::empty(user));
    profile
        .push_tokens
        .iter()
        .map(|t| t.trim_start_matches("ExponentPushToken[").trim_end_matches(']').to_owned())
        .collect()
}

/// A push token lives as long as the mobile session that registered it: revoking that session
/// (one by one, a user's or a tenant's all at once, or all but one with a new password) takes it
/// out of the profile in the same write, and the other sessions' tokens stay; a token with no
/// session (registered before tokens kept theirs) stays; a token passed to another account goes
/// with the session that registered it there; a profile written with a token of a session that
/// ended meanwhile does not keep it; an export brings each token's session along.
pub async fn a_push_token_lives_as_long_as_the_session_that_registered_it(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (karim, jamal) = (rahim.users[0], rahim.users[1]);
    let phone_one = mobile(karim, b"k1-access", b"k1-refresh", at(0));
    let phone_two = mobile(karim, b"k2-access", b"k2-refresh", at(0));
    let phone_three = mobile(karim, b"k3-access", b"k3-refresh", at(0));
    let browser = web(karim, b"k-web", at(0));
    let jamals_phone = mobile(jamal, b"j-access", b"j-refresh", at(0));
    for session in [&phone_one, &phone_two, &phone_three, &browser, &jamals_phone] {
        store.create_session(session).await.unwrap();
    }
    let profile = with_tokens(
        karim,
        &[("one", Some(phone_one.id)), ("old", None), ("two", Some(phone_two.id)), ("three", Some(phone_three.id))],
    );
    save_profile(store, &profile).await.unwrap();
    assert_eq!(store.alert_profile(karim).await.unwrap(), Some(profile.clone()), "each token with its session");

    // Phone one signs out (or its refresh token is reused): its token goes, the others stay.
    store.revoke_session(SessionKind::Mobile, phone_one.id, at(10)).await.unwrap();
    let left = with_tokens(karim, &[("old", None), ("two", Some(phone_two.id)), ("three", Some(phone_three.id))]);
    assert_eq!(store.alert_profile(karim).await.unwrap(), Some(left));
    // A browser's session registered no token: revoking it takes none.
    store.revoke_session(SessionKind::Web, browser.id, at(11)).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old", "two", "three"]);

    // Phone three passes to Jamal, who signs in on it: the token takes his session, and Karim's
    // session ending no longer takes it.
    save_profile(store, &with_tokens(jamal, &[("three", Some(jamals_phone.id))])).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old", "two"]);
    store.revoke_session(SessionKind::Mobile, phone_three.id, at(12)).await.unwrap();
    assert_eq!(token_names(store, jamal).await, ["three"]);

    // A profile read before phone one signed out, written back after: its token does not return.
    let stale = with_tokens(karim, &[("one", Some(phone_one.id)), ("old", None), ("two", Some(phone_two.id))]);
    save_profile(store, &stale).await.unwrap();
    assert_eq!(
        store.alert_profile(karim).await.unwrap(),
        Some(with_tokens(karim, &[("old", None), ("two", Some(phone_two.id))]))
    );
    let unknown = with_tokens(karim, &[("old", None), ("two", Some(phone_two.id)), ("nobody", Some(SessionId::new()))]);
    save_profile(store, &unknown).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old", "two"], "a session that never was is no session");

    // The same through an export: each token comes back with its session.
    let before = store.export().await.unwrap();
    crate::support::copy_back(store, &before).await;

    // A new password given by the owner ends all of Karim's sessions: his phones' tokens go.
    let four = mobile(karim, b"k4-access", b"k4-refresh", at(20));
    store.create_session(&four).await.unwrap();
    let mut profile = with_tokens(karim, &[("old", None), ("two", Some(phone_two.id)), ("four", Some(four.id))]);
    save_profile(store, &profile).await.unwrap();
    let new_password = |keep| AccountChange {
        id: karim,
        role: Role::User,
        admin_id: Some(rahim.admin),
        name: None,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$bmV3$aGFzaA".into()),
        keep_session: keep,
        at: at(30),
    };
    let line = AuditEntry {
        admin_id: Some(rahim.admin),
        at: at(30),
        actor_id: Some(karim),
        action: "account.password".into(),
        target_id: Some(karim.to_string()),
        detail: String::new(),
    };
    // His own change, from phone four: phone two's token goes, phone four's stays.
    store.change_account(&new_password(Some(four.id)), &line).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old", "four"]);
    store.change_account(&new_password(None), &line).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old"]);

    // A user's sessions revoked at once (a farmer suspended), and a tenant's (an owner suspended).
    let five = mobile(karim, b"k5-access", b"k5-refresh", at(40));
    let jamals_next = mobile(jamal, b"j2-access", b"j2-refresh", at(40));
    for session in [&five, &jamals_next] {
        store.create_session(session).await.unwrap();
    }
    profile = with_tokens(karim, &[("five", Some(five.id)), ("old", None)]);
    save_profile(store, &profile).await.unwrap();
    save_profile(store, &with_tokens(jamal, &[("three", Some(jamals_phone.id)), ("six", Some(jamals_next.id))]))
        .await
        .unwrap();
    store.revoke_sessions(SessionScope::User(karim), at(50)).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old"]);
    assert_eq!(token_names(store, jamal).await, ["three", "six"], "another farmer's stay");
    store.revoke_sessions(SessionScope::Tenant(rahim.admin), at(60)).await.unwrap();
    assert_eq!(token_names(store, jamal).await, Vec::<String>::new());
    assert_eq!(token_names(store, karim).await, ["old"], "a token with no session stays");
}

/// A session purged (its refresh token expired, or revoked long ago) takes the push tokens it
/// registered with it; a live session's tokens and a token with no session stay.
pub async fn purging_a_session_takes_its_push_tokens(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let karim = rahim.users[0];
    let t0 = at(0);
    let expired = mobile(karim, b"old-access", b"old-refresh", t0 - 31 * DAY);
    let live = mobile(karim, b"live-access", b"live-refresh", t0 - DAY);
    for session in [&expired, &live] {
        store.create_session(session).await.unwrap();
    }
    let profile = with_tokens(karim, &[("old-phone", Some(expired.id)), ("phone", Some(live.id)), ("none", None)]);
    save_profile(store, &profile).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old-phone", "phone", "none"], "expired, not yet purged");
    assert_eq!(store.purge_sessions(t0).await.unwrap(), 1);
    assert_eq!(
        store.alert_profile(karim).await.unwrap(),
        Some(with_tokens(karim, &[("phone", Some(live.id)), ("none", None)]))
    );
}

/// A phone registers its push token with its own session (`Store::register_push_token`), in a
/// write of push tokens alone: the person's phone, the number waiting with its wrong codes, their
/// language and the rest stay as stored, also when codes are counted at the same time. The token
/// joins last with the session, moving from another session of theirs (which no longer takes it
/// when it ends) and from another account (whose session no longer takes it either); the oldest
/// leave past the number kept. A session revoked, purged, expired (not purged yet), of another
/// person, of the web or unknown is refused and nothing is written; a person without a profile gets the empty one with the token.
pub async fn a_phone_registers_its_push_token_and_nothing_else(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let jamila = tenancy(store, "jamila", 1).await;
    let (karim, jamal, salma) = (rahim.users[0], rahim.users[1], jamila.users[0]);
    let phone_one = mobile(karim, b"k1-access", b"k1-refresh", at(0));
    let phone_two = mobile(karim, b"k2-access", b"k2-refresh", at(0));
    let jamals_phone = mobile(jamal, b"j-access", b"j-refresh", at(0));
    let salmas_phone = mobile(salma, b"s-access", b"s-refresh", at(0));
    let browser = web(karim, b"k-web", at(0));
    for session in [&phone_one, &phone_two, &jamals_phone, &salmas_phone, &browser] {
        store.create_session(session).await.unwrap();
    }
    let token = |name: &str| format!("ExponentPushToken[{name}]");
    let register = |user, name: &str, session| {
        let token = token(name);
        async move { store.register_push_token(user, &token, session, 10, at(0)).await }
    };

    // Karim's profile: a phone, a number waiting with a wrong code counted, his settings.
    let waiting = PendingPhone::new("+8801711000005".into(), "482106".into(), at(10));
    let set = AlertProfile {
        phone: Some("+8801711000001".into()),
        pending_phone: Some(waiting.clone()),
        language: "bn".into(),
        muted: [(NoticeKind::RunEnded, Channel::Sms)].into(),
        quiet_hours: Some(QuietHours { from_minute: 22 * 60, to_minute: 6 * 60, utc_offset_minutes: 360 }),
        ..with_tokens(karim, &[("old", None)])
    };
    save_profile(store, &set).await.unwrap();
    assert_eq!(store.count_wrong_code(karim, &waiting).await.unwrap(), 1);
    register(karim, "one", phone_one.id).await.unwrap();
    let counted = |n| Some(PendingPhone { wrong_codes: n, ..waiting.clone() });
    let expected = AlertProfile { pending_phone: counted(1), ..set.clone() };
    // `base` with these tokens, each registered by the session named (or none).
    let registered = |base: &AlertProfile, tokens: &[(&str, Option<SessionId>)]| {
        let listed = with_tokens(karim, tokens);
        AlertProfile { push_tokens: listed.push_tokens, push_sessions: listed.push_sessions, ..base.clone() }
    };
    assert_eq!(
        store.alert_profile(karim).await.unwrap(),
        Some(registered(&expected, &[("old", None), ("one", Some(phone_one.id))])),
        "the token joined last; the phone, the count and the settings stayed"
    );

    // Codes counted while phones register: every count stays, every token joins.
    let names = ["p", "q", "r", "s"];
    let (registrations, counts) = tokio::join!(
        join_all(names.iter().zip([phone_one.id, phone_two.id].repeat(2)).map(|(name, id)| register(karim, name, id))),
        join_all((0..4).map(|_| store.count_wrong_code(karim, &waiting))),
    );
    registrations.into_iter().for_each(|r| r.unwrap());
    let mut counts: Vec<u32> = counts.into_iter().map(Result::unwrap).collect();
    counts.sort_unstable();
    assert_eq!(counts, [2, 3, 4, 5]);
    let stored = store.alert_profile(karim).await.unwrap().unwrap();
    assert_eq!(stored.pending_phone, counted(5), "no count taken back");
    assert_eq!(stored.phone, set.phone);
    let mut listed = token_names(store, karim).await;
    listed.sort();
    assert_eq!(listed, ["old", "one", "p", "q", "r", "s"]);
    for name in ["p", "q", "r", "s"] {
        store.remove_push_token(karim, &token(name)).await.unwrap();
    }
    let expected = AlertProfile { pending_phone: counted(5), ..expected };

    // The phone signs in again (its old session lapsed): the token moves to the new session, last,
    // and the old session's end no longer takes it.
    register(karim, "two", phone_two.id).await.unwrap();
    register(karim, "one", phone_two.id).await.unwrap();
    assert_eq!(
        store.alert_profile(karim).await.unwrap(),
        Some(registered(&expected, &[("old", None), ("two", Some(phone_two.id)), ("one", Some(phone_two.id))]))
    );
    register(karim, "one", phone_two.id).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old", "two", "one"], "the same call again changes nothing");
    store.revoke_session(SessionKind::Mobile, phone_one.id, at(20)).await.unwrap();
    assert_eq!(token_names(store, karim).await, ["old", "two", "one"]);

    // The phone passes to Jamal: the token leaves Karim, the others staying in their order, and
    // Karim's session ending no longer takes it.
    register(jamal, "two", jamals_phone.id).await.unwrap();
    assert_eq!(
        store.alert_profile(karim).await.unwrap(),
        Some(registered(&expected, &[("old", None), ("one", Some(phone_two.id))]))
    );
    assert_eq!(
        store.alert_profile(jamal).await.unwrap(),
        Some(with_tokens(jamal, &[("two", Some(jamals_phone.id))])),
        "Jamal had no profile: the empty one with the token"
    );
    assert!(!store.remove_push_token(karim, &token("two")).await.unwrap(), "Jamal's now");

    // At most ten, the oldest leaving; one registered again moves last; one that left is free.
    let ten: Vec<String> = (0..12).map(|n| format!("t{n}")).collect();
    for name in &ten {
        register(karim, name, phone_two.id).await.unwrap();
    }
    assert_eq!(token_names(store, karim).await, ten[2..]);
    register(karim, "t5", phone_two.id).await.unwrap();
    let mut moved: Vec<String> = ten[2..].iter().filter(|n| *n != "t5").cloned().collect();
    moved.push("t5".into());
    assert_eq!(token_names(store, karim).await, moved);
    let stored = store.alert_profile(karim).await.unwrap().unwrap();
    assert_eq!(stored.push_sessions.len(), 10, "each listed token with its session, no other");
    assert_eq!((stored.phone, stored.pending_phone), (expected.phone.clone(), counted(5)));
    register(jamal, "one", jamals_phone.id).await.unwrap();
    assert_eq!(token_names(store, jamal).await, ["two", "one"]);
    assert_eq!(token_names(store, karim).await, moved, "a token gone past ten was no longer his");

    // A session that cannot register: nothing is written.
    let before = store.alert_profile(karim).await.unwrap();
    let lapsed = mobile(karim, b"k3-access", b"k3-refresh", at(0) - 40 * DAY);
    store.create_session(&lapsed).await.unwrap();
    store.purge_sessions(at(0)).await.unwrap();
    // Expired, but not purged yet: a day ago, and at this very moment.
    let expired = mobile(karim, b"k4-access", b"k4-refresh", at(0) - 31 * DAY);
    let expiring = mobile(karim, b"k5-access", b"k5-refresh", at(0) - 30 * DAY);
    for session in [&expired, &expiring] {
        store.create_session(session).await.unwrap();
        let stored = store.session_by_access_hash(SessionKind::Mobile, &session.access_hash).await.unwrap();
        assert_eq!(stored.map(|s| s.id), Some(session.id), "not purged");
    }
    for (session, why) in [
        (phone_one.id, "revoked"),
        (lapsed.id, "purged"),
        (expired.id, "expired a day ago"),
        (expiring.id, "expiring now"),
        (jamals_phone.id, "another person's"),
        (browser.id, "a browser's"),
        (SessionId::new(), "unknown"),
    ] {
        assert_err!(register(karim, "new", session).await, StoreError::NotFound);
        assert_eq!(store.alert_profile(karim).await.unwrap(), before, "{why}: nothing written");
    }
    assert_eq!(token_names(store, jamal).await, ["two", "one"]);
    store.revoke_session(SessionKind::Mobile, salmas_phone.id, at(30)).await.unwrap();
    assert_err!(register(salma, "new", salmas_phone.id).await, StoreError::NotFound);
    assert_eq!(store.alert_profile(salma).await.unwrap(), None, "no profile made for a revoked session");

    // Revoked, Karim's phone takes its ten tokens with it; Jamal's stay his.
    store.revoke_session(SessionKind::Mobile, phone_two.id, at(40)).await.unwrap();
    assert_eq!(token_names(store, karim).await, Vec::<String>::new());
    assert_eq!(token_names(store, jamal).await, ["two", "one"]);
}
