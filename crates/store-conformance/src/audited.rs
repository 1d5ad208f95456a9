//! A write of an owner or the master and its audit entry: both or neither.

use pumppilot_engine::{AdminId, DeviceId, RequestId, UserId};
use pumppilot_store::{
    AlertProfile, AuditEntry, AuditedWrite, Card, Decision, Device, MinuteRequest, PendingPhone, RequestStatus, Role,
    Store, StoreError,
};

use crate::support::{assert_err, at, save_profile, tenancy, user_account};

fn entry(admin: AdminId, action: &str, target: String, seconds: i64) -> AuditEntry {
    AuditEntry {
        admin_id: Some(admin),
        at: at(seconds),
        actor_id: Some(admin.0),
        action: action.to_owned(),
        target_id: Some(target),
        detail: String::new(),
    }
}

async fn actions(store: &dyn Store, admin: AdminId) -> Vec<String> {
    store.audit(Some(admin), 100).await.unwrap().into_iter().rev().map(|e| e.action).collect()
}

/// An account, a device, a rejection, a key rotation, a card bound and unbound, a farmer's phone
/// enrolled each land with their audit entry in one write; a write the store refuses (a taken
/// username, a user of no tenant, a device id used twice, a request decided already, an unknown
/// device, a card for a stranger, a card not bound, a phone another account holds, an enrolment
/// made from a profile changed since it was read) leaves no audit entry behind.
pub async fn a_write_and_its_audit_entry_are_stored_together(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let admin = rahim.admin;

    let karim = user_account(admin, "karim", at(1));
    let create = AuditedWrite::CreateAccount(karim.clone());
    store.write_audited(&create, &entry(admin, "user.create", karim.id.to_string(), 1)).await.expect("create");
    assert_eq!(store.account(karim.id).await.unwrap(), Some(karim.clone()));
    let twin = user_account(admin, "karim", at(2));
    assert_err!(
        store
            .write_audited(
                &AuditedWrite::CreateAccount(twin.clone()),
                &entry(admin, "twin.create", twin.id.to_string(), 2)
            )
            .await,
        StoreError::UsernameTaken
    );
    let stray = user_account(AdminId(UserId::new()), "stray", at(2));
    assert!(
        store
            .write_audited(
                &AuditedWrite::CreateAccount(stray.clone()),
                &entry(admin, "stray.create", stray.id.to_string(), 2)
            )
            .await
            .is_err(),
        "a user of no tenant"
    );
    assert_eq!(store.account(stray.id).await.unwrap(), None);

    let pump = Device {
        id: DeviceId::new(),
        admin_id: admin,
        name: "pump".into(),
        key_hash: vec![7; 32],
        created_at: at(3),
        telemetry: None,
    };
    store
        .write_audited(
            &AuditedWrite::CreateDevice { device: pump.clone(), once_key: None },
            &entry(admin, "device.register", pump.id.to_string(), 3),
        )
        .await
        .expect("device");
    assert_eq!(store.devices(admin).await.unwrap().len(), 1);
    let again = AuditedWrite::CreateDevice { device: Device { key_hash: vec![8; 32], ..pump.clone() }, once_key: None };
    assert!(store.write_audited(&again, &entry(admin, "again.register", pump.id.to_string(), 4)).await.is_err());

    let asked = MinuteRequest {
        id: RequestId::new(),
        user_id: rahim.users[0],
        admin_id: admin,
        minutes: 10,
        note: String::new(),
        status: RequestStatus::Pending,
        created_at: at(5),
        decided_at: None,
        decided_by: None,
        reject_reason: None,
    };
    store.create_minute_request(&asked, &[]).await.unwrap();
    let reject = Decision {
        request_id: asked.id,
        admin_id: admin,
        status: RequestStatus::Rejected,
        decided_by: admin.0,
        at: at(6),
        reason: None,
    };
    store
        .write_audited(
            &AuditedWrite::Decide { decision: reject.clone(), notices: vec![] },
            &entry(admin, "request.reject", asked.id.to_string(), 6),
        )
        .await
        .expect("reject");
    assert_eq!(store.minute_request(asked.id).await.unwrap().map(|r| r.status), Some(RequestStatus::Rejected));
    assert_err!(
        store
            .write_audited(
                &AuditedWrite::Decide { decision: reject, notices: vec![] },
                &entry(admin, "again.reject", asked.id.to_string(), 7)
            )
            .await,
        StoreError::AlreadyDecided
    );

    let rotate = |device, key_hash: Vec<u8>| AuditedWrite::SetDeviceKey { admin, device, key_hash };
    store
        .write_audited(&rotate(pump.id, vec![9; 32]), &entry(admin, "device.rotate-key", pump.id.to_string(), 8))
        .await
        .expect("rotate");
    assert_eq!(store.devices(admin).await.unwrap()[0].key_hash, vec![9; 32]);
    assert_err!(
        store
            .write_audited(&rotate(DeviceId::new(), vec![1; 32]), &entry(admin, "nowhere.rotate-key", String::new(), 8))
            .await,
        StoreError::NotFound
    );

    let card = Card { admin_id: admin, uid: "04A1B2C3".into(), user_id: karim.id, bound_at: at(9) };
    store
        .write_audited(&AuditedWrite::BindCard(card.clone()), &entry(admin, "card.bind", karim.id.to_string(), 9))
        .await
        .expect("bind");
    assert_eq!(store.card(admin, "04A1B2C3").await.unwrap(), Some(card.clone()));
    let stranger = Card { user_id: UserId::new(), uid: "04FFFFFF".into(), ..card.clone() };
    assert_err!(
        store.write_audited(&AuditedWrite::BindCard(stranger), &entry(admin, "stranger.bind", String::new(), 9)).await,
        StoreError::NotFound
    );
    let unbind = AuditedWrite::UnbindCard { admin, uid: card.uid.clone() };
    store.write_audited(&unbind, &entry(admin, "card.unbind", card.uid.clone(), 10)).await.expect("unbind");
    assert_eq!(store.card(admin, "04A1B2C3").await.unwrap(), None);
    assert_err!(
        store.write_audited(&unbind, &entry(admin, "again.unbind", card.uid.clone(), 11)).await,
        StoreError::NotFound
    );

    // An owner enrols a farmer's phone: the profile with its number waiting, and the line. A
    // number another account holds confirmed is refused, with no line.
    let mut enrolled = AlertProfile::empty(karim.id);
    enrolled.language = "bn".into();
    let pending = PendingPhone::new("+8801711000001".into(), "482106".into(), at(12));
    enrolled.pending_phone = Some(pending.clone());
    let enrol = AuditedWrite::SetAlertProfile { profile: enrolled.clone(), read: None };
    store.write_audited(&enrol, &entry(admin, "farmer.phone", karim.id.to_string(), 12)).await.expect("enrol");
    assert_eq!(store.alert_profile(karim.id).await.unwrap(), Some(enrolled.clone()));
    let salma = user_account(admin, "salma", at(13));
    store.create_account(&salma).await.unwrap();
    let held = AlertProfile { phone: Some("+8801711000009".into()), ..AlertProfile::empty(salma.id) };
    save_profile(store, &held).await.unwrap();
    let taken = AlertProfile { phone: Some("+8801711000009".into()), ..AlertProfile::empty(karim.id) };
    let take = AuditedWrite::SetAlertProfile { profile: taken, read: Some(enrolled.clone()) };
    assert_err!(
        store.write_audited(&take, &entry(admin, "taken.phone", String::new(), 13)).await,
        StoreError::PhoneTaken
    );

    // An enrolment made from a profile changed since it was read (the farmer texted the code from
    // that phone meanwhile) is refused: neither the profile nor its line is written, and the
    // number confirmed stays. Made again from the profile as it is now, it lands with its line.
    store.confirm_phone(karim.id, &pending).await.unwrap();
    let confirmed = store.alert_profile(karim.id).await.unwrap();
    assert_eq!(confirmed.as_ref().and_then(|p| p.phone.as_deref()), Some("+8801711000001"));
    let again = |read: &AlertProfile| AlertProfile {
        language: "en".into(),
        pending_phone: Some(PendingPhone::new("+8801711000002".into(), "913370".into(), at(14))),
        ..read.clone()
    };
    let stale = AuditedWrite::SetAlertProfile { profile: again(&enrolled), read: Some(enrolled.clone()) };
    assert_err!(
        store.write_audited(&stale, &entry(admin, "stale.phone", karim.id.to_string(), 14)).await,
        StoreError::VersionConflict
    );
    assert_eq!(store.alert_profile(karim.id).await.unwrap(), confirmed, "nothing of the stale enrolment");
    let fresh = again(confirmed.as_ref().unwrap());
    let enrol_again = AuditedWrite::SetAlertProfile { profile: fresh.clone(), read: confirmed };
    store.write_audited(&enrol_again, &entry(admin, "farmer.phone", karim.id.to_string(), 15)).await.expect("fresh");
    assert_eq!(store.alert_profile(karim.id).await.unwrap(), Some(fresh));

    assert_eq!(
        actions(store, admin).await,
        [
            "user.create",
            "device.register",
            "request.reject",
            "device.rotate-key",
            "card.bind",
            "card.unbind",
            "farmer.phone",
            "farmer.phone"
        ]
    );
    assert_eq!(store.accounts(Role::User, Some(admin)).await.unwrap().len(), 3);
}

/// A device registered with a key (a form sent twice, an app's retry after an answer lost on a
/// poor link) is registered once: a second registration with the key in the tenant is refused
/// `AlreadyMade` with no device, key or audit line of its own, whatever it asks for (the server
/// tells a retry from another device); the first is found by its key until it is retired. Another
/// pump's key is its own, and devices registered without a key are never held to one.
pub async fn a_device_registered_again_with_its_key_is_made_once(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let q = tenancy(store, "q", 0).await;
    let admin = rahim.admin;
    let pump = |admin: AdminId, name: &str, n: u8| Device {
        id: DeviceId::new(),
        admin_id: admin,
        name: name.into(),
        key_hash: vec![n; 32],
        created_at: at(i64::from(n)),
        telemetry: None,
    };
    let register = |device: &Device, once_key: Option<&str>| AuditedWrite::CreateDevice {
        device: device.clone(),
        once_key: once_key.map(str::to_owned),
    };
    let line = |device: &Device| entry(device.admin_id, "device.register", device.id.to_string(), 1);

    let first = pump(admin, "field pump", 1);
    store.write_audited(&register(&first, Some("d-1")), &line(&first)).await.expect("the first");
    for again in [pump(admin, "field pump", 2), pump(admin, "well 2", 3)] {
        assert_err!(store.write_audited(&register(&again, Some("d-1")), &line(&again)).await, StoreError::AlreadyMade);
    }
    assert_eq!(store.devices(admin).await.unwrap(), std::slice::from_ref(&first), "no second device");
    assert_eq!(actions(store, admin).await, ["device.register"], "nor its audit line");
    let keys = store.device_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| k.device).collect::<Vec<_>>(), [first.id], "nor its key");

    assert_eq!(store.device_with_key(admin, "d-1").await.unwrap(), Some(first.clone()), "found by its key");
    assert_eq!(store.device_with_key(admin, "d-2").await.unwrap(), None);
    assert_eq!(store.device_with_key(q.admin, "d-1").await.unwrap(), None, "keys stay in their tenant");

    let theirs = pump(q.admin, "q's pump", 4);
    store.write_audited(&register(&theirs, Some("d-1")), &line(&theirs)).await.expect("another pump's own key");
    for unkeyed in [pump(admin, "well 3", 5), pump(admin, "well 3", 6)] {
        store.write_audited(&register(&unkeyed, None), &line(&unkeyed)).await.expect("no key");
    }
    let renewed = pump(admin, "field pump", 7);
    store.write_audited(&register(&renewed, Some("d-2")), &line(&renewed)).await.expect("a new key");
    assert_eq!(store.devices(admin).await.unwrap().len(), 4);
    assert_eq!(store.device_with_key(q.admin, "d-1").await.unwrap(), Some(theirs));

    // The key goes with its device.
    store.delete_device(admin, first.id).await.unwrap();
    assert_eq!(store.device_with_key(admin, "d-1").await.unwrap(), None);
}
