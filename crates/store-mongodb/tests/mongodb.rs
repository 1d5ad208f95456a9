//! What only the MongoDB backend has: connecting (bad URLs, standalone servers), indexes and the
//! schema version set up idempotently, the server's own unique indexes, unreadable documents.

use mongodb::bson::{Bson, Document, doc};
use pumppilot_engine::{AdminId, Credit, EntryId, Event, LedgerKind, Records, Tenant, Timestamp, UserId};
use pumppilot_store::{Account, Change, Commit, Role, Store, StoreError};
use pumppilot_store_mongodb::{MongoStore, SCHEMA_VERSION, testing};

const LEASE_MS: i64 = 60_000;
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn at(seconds: i64) -> Timestamp {
    T0 + seconds * 1_000
}

fn account(username: &str, role: Role, admin: Option<AdminId>) -> Account {
    let id = UserId::new();
    Account {
        id,
        username: username.to_owned(),
        name: username.to_owned(),
        role,
        admin_id: if role == Role::Admin { Some(AdminId(id)) } else { admin },
        password_hash: "$argon2id$test".to_owned(),
        suspended: false,
        created_at: T0,
    }
}

/// An admin with two users who hold 600 s each.
async fn tenant_with_users(store: &MongoStore) -> (Tenant, UserId, UserId) {
    let admin = account("rahim", Role::Admin, None);
    store.create_account(&admin).await.unwrap();
    let admin = AdminId(admin.id);
    let mut users = Vec::new();
    for name in ["karim", "salma"] {
        let user = account(name, Role::User, Some(admin));
        store.create_account(&user).await.unwrap();
        users.push(user.id);
    }
    let mut tenant = store.load_tenant(admin, LEASE_MS).await.unwrap().unwrap();
    for user in &users {
        let credit = Credit::new(*user, 600, LedgerKind::Recharge, admin.0);
        commit(store, &mut tenant, Event::Credit(credit), at(0)).await.unwrap();
    }
    (tenant, users[0], users[1])
}

async fn commit(store: &MongoStore, tenant: &mut Tenant, event: Event, now: Timestamp) -> Result<Records, StoreError> {
    let records = tenant.apply(event, now).records;
    store
        .commit(Commit { tenant, records: &records, audit: &[], decision: None, suspension: None, receipt: None })
        .await?;
    tenant.version += 1;
    Ok(records)
}

fn unavailable(result: Result<MongoStore, StoreError>) -> String {
    match result {
        Err(StoreError::Unavailable(message)) => message,
        other => panic!("expected the store to be unavailable, got {other:?}"),
    }
}

async fn index_names(store: &MongoStore, collection: &str) -> Vec<String> {
    let mut names = store.database().collection::<Document>(collection).list_index_names().await.unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn indexes_and_the_schema_version_are_set_up_once_and_again_harmlessly() {
    let url = testing::server().fresh_url();
    let store = MongoStore::connect(&url).await.unwrap();
    let (tenant, _, _) = tenant_with_users(&store).await;
    let queues = index_names(&store, "queues").await;
    for name in ["one_active_per_admin", "one_waiting_per_position", "admin_status", "user"] {
        assert!(queues.contains(&name.to_owned()), "queues lacks {name}: {queues:?}");
    }
    assert!(index_names(&store, "cards").await.contains(&"one_card_per_tenant".to_owned()));
    assert!(index_names(&store, "users").await.contains(&"username".to_owned()));

    // A second server starting on the same database changes nothing and sees everything.
    let again = MongoStore::connect(&url).await.unwrap();
    assert_eq!(index_names(&again, "queues").await, queues);
    assert_eq!(again.load_tenant(tenant.admin_id, LEASE_MS).await.unwrap(), Some(tenant));
    let meta = again.database().collection::<Document>("meta").find_one(doc! { "_id": "schema" }).await.unwrap();
    assert_eq!(meta.unwrap().get_i64("version").unwrap(), SCHEMA_VERSION);
}

/// Push tokens written before they were one person's (no guard documents) are adopted when a
/// server first makes the guards: each token listed once gets its guard, so a later write moves
/// it; a token two profiles list is kept by neither, as SQLite's migration 0017 does.
#[tokio::test]
async fn push_tokens_written_before_their_guards_are_adopted_once() {
    let url = testing::server().fresh_url();
    let store = MongoStore::connect(&url).await.unwrap();
    let (_, karim, salma) = tenant_with_users(&store).await;
    let db = store.database().clone();
    db.collection::<Document>("push_tokens").drop().await.unwrap();
    let token = |name: &str| format!("ExponentPushToken[{name}]");
    // Written as a server before this one wrote them: the tokens in the profiles alone.
    for (user, tokens) in [(karim, vec![token("b"), token("a"), token("both")]), (salma, vec![token("both")])] {
        store.set_alert_profile(&pumppilot_store::AlertProfile::empty(user), None).await.unwrap();
        let set = db
            .collection::<Document>("alert_profiles")
            .update_one(doc! { "_id": user.to_string() }, doc! { "$set": { "pushTokens": tokens } })
            .await
            .unwrap();
        assert_eq!(set.matched_count, 1);
    }
    drop(store);

    let store = MongoStore::connect(&url).await.unwrap();
    let tokens = |user| {
        let store = store.clone();
        async move { store.alert_profile(user).await.unwrap().unwrap().push_tokens }
    };
    assert_eq!(tokens(karim).await, [token("b"), token("a")]);
    assert_eq!(tokens(salma).await, Vec::<String>::new());
    let guards = db.collection::<Document>("push_tokens").count_documents(doc! {}).await.unwrap();
    assert_eq!(guards, 2);
    // Connecting again adopts nothing more (the guards are there).
    let again = MongoStore::connect(&url).await.unwrap();
    assert_eq!(again.database().collection::<Document>("push_tokens").count_documents(doc! {}).await.unwrap(), 2);
}

/// A profile and a token guard written before tokens kept the session that registered them (no
/// `pushSessions`, no `sessionId`) are read with no session: the account's sessions ending,
/// revoked or purged, leave the token.
#[tokio::test]
async fn a_push_token_from_before_sessions_were_kept_with_tokens_stays_when_sessions_end() {
    let store = MongoStore::connect(&testing::server().fresh_url()).await.unwrap();
    let (_, karim, _) = tenant_with_users(&store).await;
    let db = store.database().clone();
    let token = "ExponentPushToken[karim]";
    store.set_alert_profile(&pumppilot_store::AlertProfile::empty(karim), None).await.unwrap();
    let old = doc! { "$set": { "pushTokens": [token] }, "$unset": { "pushSessions": "" } };
    db.collection::<Document>("alert_profiles").update_one(doc! { "_id": karim.to_string() }, old).await.unwrap();
    db.collection::<Document>("push_tokens")
        .insert_one(doc! { "_id": token, "userId": karim.to_string() })
        .await
        .unwrap();
    let profile = store.alert_profile(karim).await.unwrap().unwrap();
    assert_eq!((profile.push_tokens, profile.push_sessions.len()), (vec![token.to_owned()], 0));
    let phone = pumppilot_store::Session {
        kind: pumppilot_store::SessionKind::Mobile,
        refresh_hash: Some(b"refresh".to_vec()),
        refresh_expires_at: Some(at(60)),
        ..pumppilot_store::Session::web(karim, b"access".to_vec(), at(0), at(60))
    };
    store.create_session(&phone).await.unwrap();
    store.revoke_sessions(pumppilot_store::SessionScope::User(karim), at(1)).await.unwrap();
    assert_eq!(store.purge_sessions(at(120)).await.unwrap(), 1);
    assert_eq!(store.alert_profile(karim).await.unwrap().unwrap().push_tokens, [token]);
}

#[tokio::test]
async fn a_database_from_a_newer_pumppilot_is_refused() {
    let url = testing::server().fresh_url();
    let store = MongoStore::connect(&url).await.unwrap();
    let meta = store.database().collection::<Document>("meta");
    meta.update_one(doc! { "_id": "schema" }, doc! { "$set": { "version": SCHEMA_VERSION + 1 } }).await.unwrap();
    let message = unavailable(MongoStore::connect(&url).await);
    assert!(message.contains("newer than the 1 this PumpPilot knows"), "{message}");
}

#[tokio::test]
async fn unreachable_and_malformed_urls_are_refused_with_a_sentence_naming_the_host() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("mongodb://127.0.0.1:{port}/pp?directConnection=true&serverSelectionTimeoutMS=300");
    let message = unavailable(MongoStore::connect(&url).await);
    assert!(message.contains(&format!("127.0.0.1:{port} cannot be reached")), "{message}");
    assert!(!message.contains("Topology"), "one sentence, not a topology dump: {message}");

    let message = unavailable(MongoStore::connect("mongodb://pump owner@:what").await);
    assert!(message.starts_with("the MongoDB URL cannot be read"), "{message}");
}

#[tokio::test]
async fn a_standalone_server_is_refused_with_how_to_make_a_replica_set() {
    let standalone = testing::start_standalone();
    let message = unavailable(MongoStore::connect(&standalone.url("pp")).await);
    assert!(message.contains("standalone"), "{message}");
    assert!(message.contains("mongod --replSet rs0") && message.contains("rs.initiate()"), "{message}");
}

#[tokio::test]
async fn the_server_itself_allows_one_active_entry_per_admin() {
    let store = testing::fresh_store().await;
    let (tenant, u1, u2) = tenant_with_users(&store).await;
    let queues = store.database().collection::<Document>("queues");
    let entry = |user: UserId, status: &str| {
        doc! { "_id": EntryId::new().to_string(), "adminId": tenant.admin_id.to_string(), "userId": user.to_string(),
        "status": status, "position": Bson::Null }
    };
    queues.insert_one(entry(u1, "RUNNING")).await.unwrap();
    let second = queues.insert_one(entry(u2, "HOLD")).await;
    assert!(second.is_err(), "a second active entry must be refused by the index");
    // Ended entries do not count.
    queues.insert_one(entry(u2, "COMPLETED")).await.unwrap();
    queues.insert_one(entry(u1, "CANCELLED")).await.unwrap();
}

#[tokio::test]
async fn unreadable_documents_are_reported_not_panicked_on() {
    let store = testing::fresh_store().await;
    let (mut tenant, u1, _) = tenant_with_users(&store).await;
    let started = Event::Start { user: u1, requested_minutes: None, entry_id: EntryId::new() };
    commit(&store, &mut tenant, started, at(2)).await.unwrap();

    let db = store.database();
    db.collection::<Document>("users")
        .update_one(doc! { "_id": u1.to_string() }, doc! { "$set": { "adminId": "not-an-id" } })
        .await
        .unwrap();
    match store.account(u1).await {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("users.adminId"), "{message}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    db.collection::<Document>("queues")
        .update_many(doc! {}, doc! { "$set": { "holdReason": "SOLAR_ECLIPSE" } })
        .await
        .unwrap();
    match store.load_tenant(tenant.admin_id, LEASE_MS).await {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("queues.holdReason"), "{message}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    // A device's stored report that cannot be read: the device list says so, but the device still
    // signs (its reservation reads no report, and its next report is written over it).
    let device = pumppilot_store::Device {
        id: pumppilot_engine::DeviceId::new(),
        admin_id: tenant.admin_id,
        name: "well".into(),
        key_hash: vec![1; 32],
        created_at: T0,
        telemetry: None,
    };
    store.create_device(&device).await.unwrap();
    store.record_telemetry(&[pumppilot_store::Telemetry::ready(device.admin_id, device.id, at(3))]).await.unwrap();
    db.collection::<Document>("devices")
        .update_one(doc! { "_id": device.id.to_string() }, doc! { "$set": { "reader": "HUMMING" } })
        .await
        .unwrap();
    match store.devices(device.admin_id).await {
        Err(StoreError::Unavailable(message)) => assert!(message.contains("devices.reader"), "{message}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    let reserved = store.reserve_device_counters(device.admin_id, device.id, 1, 10).await.unwrap();
    assert_eq!((reserved.window.after, reserved.stored), (0, None));
}

#[tokio::test]
async fn failed_sign_ins_are_counted_per_key_in_windows_that_start_again() {
    let store = testing::fresh_store().await;
    let window = 60_000;
    let keys = ["u:karim".to_owned(), "p:karim|10.0.0.1".to_owned()];
    for second in 0..3 {
        store.add_login_failure(&keys, at(second), window).await.unwrap();
    }
    store.add_login_failure(&keys[..1], at(10), window).await.unwrap();
    let mut counted = store.login_failures(&keys, at(20), window).await.unwrap();
    counted.sort();
    assert_eq!(counted, [("p:karim|10.0.0.1".to_owned(), at(0), 3), ("u:karim".to_owned(), at(0), 4)]);
    // The window is over: nothing counts, and the next failure starts a new one.
    assert!(store.login_failures(&keys, at(60), window).await.unwrap().is_empty());
    store.add_login_failure(&keys[..1], at(61), window).await.unwrap();
    assert_eq!(store.login_failures(&keys, at(62), window).await.unwrap(), [("u:karim".to_owned(), at(61), 1)]);
}

#[tokio::test]
async fn a_card_tap_is_claimed_once_per_window_and_its_answer_repeated() {
    use pumppilot_store::TapClaim;
    let store = testing::fresh_store().await;
    let admin = AdminId(UserId::new());
    let window = 2_000;
    assert_eq!(store.claim_tap(admin, "04A1B2C3", at(0), window).await.unwrap(), TapClaim::Act);
    assert_eq!(store.claim_tap(admin, "04A1B2C3", at(1), window).await.unwrap(), TapClaim::Repeat(None));
    store.answer_tap(admin, "04A1B2C3", r#"{"action":"STARTED"}"#).await.unwrap();
    let repeated = TapClaim::Repeat(Some(r#"{"action":"STARTED"}"#.to_owned()));
    assert_eq!(store.claim_tap(admin, "04A1B2C3", T0 + 1_999, window).await.unwrap(), repeated);
    // Another card, or another pump, is another tap.
    assert_eq!(store.claim_tap(admin, "04A1B2C4", at(1), window).await.unwrap(), TapClaim::Act);
    assert_eq!(store.claim_tap(AdminId(UserId::new()), "04A1B2C3", at(1), window).await.unwrap(), TapClaim::Act);
    // The window is over: a new tap; a released claim (a refused tap) is decided afresh at once.
    assert_eq!(store.claim_tap(admin, "04A1B2C3", at(2), window).await.unwrap(), TapClaim::Act);
    store.release_tap(admin, "04A1B2C3").await.unwrap();
    assert_eq!(store.claim_tap(admin, "04A1B2C3", at(2), window).await.unwrap(), TapClaim::Act);
}

#[tokio::test]
async fn servers_that_stop_beating_leave_the_fleet() {
    let store = testing::fresh_store().await;
    let ttl = 3_000;
    assert_eq!(store.heartbeat("a", at(0), ttl, at(0)).await.unwrap(), ["a"]);
    assert_eq!(store.heartbeat("b", at(1), ttl, at(1)).await.unwrap(), ["a", "b"]);
    assert_eq!(store.heartbeat("b", at(3), ttl, at(3)).await.unwrap(), ["b"], "a's last beat was 3 s ago");
}

/// How many times the store was asked to read one collection (queries, aggregates, counts and
/// cursor continuations) since it started.
async fn reads_of(store: &MongoStore, collection: &str) -> u64 {
    let ops = testing::operations(store).await.unwrap();
    let kinds = ops.get(collection).cloned().unwrap_or_default();
    ["queries", "getmore", "commands"].iter().filter_map(|kind| kinds.get(*kind)).map(|(count, _)| count).sum()
}

/// A Start's commit reads no line (its check of the stored line rides on its writes), and a
/// tenant read again (what another server does before its device hears of the Start) reads it
/// once: every round trip to the store inside them is on the way from the Start to the relay.
/// The entries read are the state's, in the line's order.
#[tokio::test]
async fn a_start_reads_no_line_and_a_tenant_read_again_reads_it_once() {
    let store = testing::fresh_store().await;
    let (mut tenant, karim, salma) = tenant_with_users(&store).await;
    let start = |user| Event::Start { user, requested_minutes: None, entry_id: EntryId::new() };
    let before = reads_of(&store, "queues").await;
    commit(&store, &mut tenant, start(karim), at(1)).await.unwrap();
    assert_eq!(reads_of(&store, "queues").await - before, 0, "a Start's commit");
    commit(&store, &mut tenant, start(salma), at(2)).await.unwrap();
    let before = reads_of(&store, "queues").await;
    let read = store.load_tenant(tenant.admin_id, LEASE_MS).await.unwrap().unwrap();
    assert_eq!(reads_of(&store, "queues").await - before, 1, "a tenant read again");
    assert_eq!(read.active.as_ref().map(|e| e.user_id), Some(karim));
    assert_eq!(read.waiting.iter().map(|e| e.user_id).collect::<Vec<_>>(), [salma]);
}

/// The most ids any command of `store`'s database named in one `$in` since its profiler was set to
/// record everything, and how many commands named more than one.
async fn largest_in(store: &MongoStore) -> (usize, usize) {
    fn walk(value: &Bson, largest: &mut usize) {
        match value {
            Bson::Document(doc) => {
                for (field, inner) in doc {
                    if let (true, Bson::Array(ids)) = (field == "$in", inner) {
                        *largest = (*largest).max(ids.len());
                    }
                    walk(inner, largest);
                }
            }
            Bson::Array(items) => items.iter().for_each(|item| walk(item, largest)),
            _ => {}
        }
    }
    let profile = store.database().collection::<Document>("system.profile");
    let mut cursor = profile.find(doc! {}).await.unwrap();
    let (mut largest, mut grouped) = (0, 0);
    while cursor.advance().await.unwrap() {
        let entry: Document = cursor.deserialize_current().unwrap();
        let mut this = 0;
        walk(&Bson::Document(entry.get_document("command").cloned().unwrap_or_default()), &mut this);
        largest = largest.max(this);
        grouped += usize::from(this > 1);
    }
    (largest, grouped)
}

/// A hundred pumps read, written and polled at once go to the store in queries of at most
/// `IDS_PER_QUERY` ids each, and together, not one by one: SecantusDB matches an `$in` by walking
/// its list for each document, so a query of 1,000 ids kept its one core busy for 1.4 s.
#[tokio::test]
async fn pumps_asked_about_together_are_asked_in_queries_of_a_few_ids() {
    use pumppilot_engine::{DeviceId, DevicePoll};
    use pumppilot_store::Device;
    const PUMPS: usize = 100;
    let store = testing::fresh_store().await;
    let mut devices = Vec::new();
    for n in 0..PUMPS {
        let owner = account(&format!("owner{n}"), Role::Admin, None);
        store.create_account(&owner).await.unwrap();
        let device = Device {
            id: DeviceId::new(),
            admin_id: AdminId(owner.id),
            name: format!("pump {n}"),
            key_hash: vec![u8::try_from(n).unwrap(); 32],
            created_at: T0,
            telemetry: None,
        };
        store.create_device(&device).await.unwrap();
        devices.push(device);
    }
    store.database().run_command(doc! { "profile": 2 }).await.unwrap();

    let polls: Vec<_> = devices.iter().map(|d| (d.admin_id, d.id, at(5))).collect();
    store.record_last_polls(&polls).await.unwrap();
    let wanted = devices.iter().map(|d| d.admin_id).collect();
    assert_eq!(store.load_tenants(LEASE_MS, Some(&wanted)).await.unwrap().len(), PUMPS);
    let reads = futures_util::future::join_all(devices.iter().map(|d| store.load_tenant(d.admin_id, LEASE_MS))).await;
    let mut states: Vec<Tenant> = reads.into_iter().map(|read| read.unwrap().unwrap()).collect();
    let records: Vec<Records> = states
        .iter_mut()
        .zip(&devices)
        .map(|(state, device)| {
            let mut records = state.apply(Event::Poll(DevicePoll::ready(device.id)), at(10)).records;
            records.changed = true;
            records
        })
        .collect();
    let commits = states.iter().zip(&records).map(|(tenant, records)| Commit {
        tenant,
        records,
        audit: &[],
        decision: None,
        suspension: None,
        receipt: None,
    });
    for answer in futures_util::future::join_all(commits.map(|commit| store.commit(commit))).await {
        answer.unwrap();
    }
    let windows = devices.iter().map(|d| store.reserve_device_counters(d.admin_id, d.id, 1, 1000));
    for window in futures_util::future::join_all(windows).await {
        window.unwrap();
    }
    store.database().run_command(doc! { "profile": 0 }).await.unwrap();

    let (largest, grouped) = largest_in(&store).await;
    assert!(largest <= pumppilot_store_mongodb::IDS_PER_QUERY, "a query named {largest} ids in one `$in`");
    assert!(grouped >= 4, "{grouped} commands named several ids: pumps asked about together are asked together");
}

/// What a farmer's Start asks of the store on its way from the request to the relay, counted by
/// a monitor of the driver's commands (each a round trip): the sign-in check (the session with
/// the farmer's account and the pump owner's, as `Sessions` in the server reads them on a
/// server that has not seen the session yet) in one aggregation, and the Start's commit (the
/// tenant, the entry, the check of the stored line, the RUN_HELD notice: no device is heard yet)
/// in one `bulkWrite` and the commit. Nine round trips before: three for the sign-in, six for the commit.
/// A server without `bulkWrite` is sent the writes one command each, and answers the same.
#[tokio::test]
async fn a_start_costs_one_round_trip_to_sign_in_and_two_to_commit() {
    use pumppilot_store::{Session, SessionKind};

    let (store, commands) = testing::fresh_store_counted().await;
    let (mut tenant, karim, _) = tenant_with_users(&store).await;
    let hash = vec![7_u8; 32];
    store.create_session(&Session::web(karim, hash.clone(), at(0), at(3600))).await.unwrap();
    commands.take();

    let signed_in = store.signed_in(SessionKind::Web, &hash).await.unwrap().expect("the session");
    assert_eq!(commands.take(), ["aggregate web_sessions"], "the sign-in check");
    assert_eq!(signed_in.session.user_id, karim);
    assert_eq!(signed_in.account.map(|a| a.id), Some(karim));
    assert_eq!(signed_in.owner.map(|a| a.id), Some(tenant.admin_id.0));

    let start = |user| Event::Start { user, requested_minutes: None, entry_id: EntryId::new() };
    let records = commit(&store, &mut tenant, start(karim), at(1)).await.unwrap();
    assert!(!records.notices.is_empty(), "a Start held for want of a device tells the farmer so");
    assert_eq!(commands.take(), ["bulkWrite", "commitTransaction"], "a Start's commit");
    let read = store.load_tenant(tenant.admin_id, LEASE_MS).await.unwrap().unwrap();
    assert_eq!(read.active.map(|e| e.user_id), Some(karim));
    assert_eq!(store.notifications(karim, 10).await.unwrap().len(), records.notices.len());

    // The same Start on a server without `bulkWrite`, and the same refusal of a stale state.
    let (store, commands) = testing::fresh_store_counted().await;
    let store = testing::without_bulk_write(store);
    let (mut tenant, karim, _) = tenant_with_users(&store).await;
    let stale = tenant.clone();
    commands.take();
    commit(&store, &mut tenant, start(karim), at(1)).await.unwrap();
    assert_eq!(
        commands.take(),
        [
            "update tenants",
            "update queues",
            "update queues",
            "insert notifications",
            "insert outbox",
            "commitTransaction"
        ],
        "tenant, entry, the line's check, the notice (RUN_HELD: the farmer pressed Start, the start is no news) \
         and its outbox item, the commit"
    );
    let mut stale = stale;
    assert!(matches!(commit(&store, &mut stale, start(karim), at(2)).await, Err(StoreError::VersionConflict)));
    assert_eq!(store.load_tenant(tenant.admin_id, LEASE_MS).await.unwrap().unwrap().version, tenant.version);
}

/// The store the tests start keeps its profiler settings in memory (`secantusd.py`,
/// `remember_profile_settings`): settings made later take effect at the very next command, on,
/// off and on again, as they do when SecantusDB reads them from its table after each command.
#[tokio::test]
async fn profiler_settings_take_effect_at_the_next_command() {
    let store = testing::fresh_store().await;
    let db = store.database();
    let profiled = |marker: &'static str| {
        let db = db.clone();
        async move {
            db.run_command(doc! { "find": "tenants", "filter": {}, "comment": marker }).await.unwrap();
            db.collection::<Document>("system.profile")
                .count_documents(doc! { "command.comment": marker })
                .await
                .unwrap()
        }
    };
    assert_eq!(profiled("before").await, 0, "the profiler is off at first");
    db.run_command(doc! { "profile": 2 }).await.unwrap();
    assert_eq!(profiled("on").await, 1, "on at once");
    db.run_command(doc! { "profile": 0 }).await.unwrap();
    assert_eq!(profiled("off").await, 0, "off at once");
    db.run_command(doc! { "profile": 2 }).await.unwrap();
    assert_eq!(profiled("on again").await, 1, "on again at once");
    let level = db.run_command(doc! { "profile": -1 }).await.unwrap();
    assert_eq!(level.get_i32("was").ok().map(i64::from).or(level.get_i64("was").ok()), Some(2));
}

/// A write a driver sends again (the same session and transaction number, after a lost reply) is
/// answered from the reply kept for it and not run twice, also with the store's sweep of kept
/// replies made cheap (`secantusd.py`, `sweep_cheaply`): an increment retried after other
/// sessions' writes counts once.
#[tokio::test]
async fn a_retried_write_is_answered_from_its_kept_reply_not_run_twice() {
    use mongodb::bson::{Binary, spec::BinarySubtype};
    let store = testing::fresh_store().await;
    let db = store.database();
    let session = |n: u8| doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![n; 16] } };
    db.run_command(doc! { "insert": "retried", "documents": [{ "_id": "pump", "starts": 0 }] }).await.unwrap();
    let start = doc! {
        "update": "retried",
        "updates": [{ "q": { "_id": "pump" }, "u": { "$inc": { "starts": 1 } } }],
        "lsid": session(1),
        "txnNumber": 7_i64,
    };
    let first = db.run_command(start.clone()).await.unwrap();
    for n in 2..40 {
        let other = doc! {
            "insert": "retried",
            "documents": [{ "_id": format!("other {n}") }],
            "lsid": session(n),
            "txnNumber": 1_i64,
        };
        db.run_command(other).await.unwrap();
    }
    let again = db.run_command(start).await.unwrap();
    assert_eq!(again.get_i32("n").unwrap(), first.get_i32("n").unwrap(), "the kept reply: {again}");
    let pump = db.collection::<Document>("retried").find_one(doc! { "_id": "pump" }).await.unwrap().unwrap();
    assert_eq!(pump.get_i32("starts").unwrap(), 1, "the retried increment ran once: {pump}");
}

/// The next change of `changes` that is not the feed's heartbeat, within a generous limit.
async fn next_news(changes: &mut tokio::sync::mpsc::Receiver<Change>) -> Change {
    loop {
        let change = tokio::time::timeout(std::time::Duration::from_secs(30), changes.recv())
            .await
            .expect("the feed said nothing for 30 s")
            .expect("the feed ended");
        if change != Change::Live {
            return change;
        }
    }
}

/// Each commit's event carries the state it committed, whole, and that is what a read of the
/// tenant finds right after: its farmers' wallets, its run and its line, its version. So a server
/// that keeps the tenant takes it from the feed, and a farmer's Start reaches the device's server
/// without a read there.
#[tokio::test]
async fn a_commit_carries_the_state_a_read_then_finds() {
    let store = testing::fresh_store().await;
    let (mut tenant, karim, salma) = tenant_with_users(&store).await;
    let mut changes = store.changes().expect("a MongoDB store has a feed");
    assert_eq!(next_news(&mut changes).await, Change::Reset, "the feed starts afresh");
    let start = |user| Event::Start { user, requested_minutes: None, entry_id: EntryId::new() };
    for (event, now) in [(start(karim), at(1)), (start(salma), at(2)), (Event::Stop { user: karim }, at(60))] {
        commit(&store, &mut tenant, event, now).await.unwrap();
        let read = store.load_tenant(tenant.admin_id, LEASE_MS).await.unwrap().unwrap();
        let carried = loop {
            match next_news(&mut changes).await {
                Change::Tenant { version: Some(version), state, .. } if version == read.version => break state,
                Change::Tenant { .. } | Change::Account { .. } | Change::Beat { .. } => {}
                other => panic!("a commit's change, not {other:?}"),
            }
        };
        assert_eq!(carried.as_deref(), Some(&read), "the state committed at {now:?} is the one read");
    }
    assert_eq!(tenant.active.as_ref().map(|e| e.user_id), Some(salma), "the line moved on");
}

/// The feed builds each change from its own event, never from a read of the document afterwards:
/// its stream is opened without `fullDocument: updateLookup`, which made the store read the
/// document again for every update event and for every server watching (7 servers, 7 reads for
/// each presence, last poll or telemetry written). Shown where such a read tells another story:
/// writes committed together in one transaction reach the stream after all of them, so a read for
/// the first finds the document as the last one left it (a device that joined and left again
/// showed as never present; a key rotated on a device retired after showed the key as gone).
/// Neither SecantusDB's profiler nor its `top` counts those reads (the stream reads its storage
/// directly): this is the store's own evidence that none is made.
#[tokio::test]
async fn each_change_is_what_its_own_write_did_not_what_a_read_finds_later() {
    use mongodb::bson::{Binary, DateTime, spec::BinarySubtype};
    use pumppilot_store::{KeyNews, PresenceNews};

    let store = testing::fresh_store().await;
    let device = owner_with_device(&store).await;
    let admin = device.admin_id;
    let mut changes = store.changes().expect("a MongoDB store has a feed");
    assert_eq!(next_news(&mut changes).await, Change::Reset, "the feed starts afresh");

    let db = store.database();
    let (tenants, devices) = (db.collection::<Document>("tenants"), db.collection::<Document>("devices"));
    let (tenant_id, device_id) = (doc! { "_id": admin.to_string() }, doc! { "_id": device.id.to_string() });
    let mut session = db.client().start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    // The device joins at server a (as `record_presence` writes it), then leaves again.
    let join = doc! {
        "$max": { "lastPollAt": DateTime::from_millis(at(5).0) },
        "$set": { "presence": { "server": "a", "device": device.id.to_string() } },
    };
    tenants.update_one(tenant_id.clone(), join).session(&mut session).await.unwrap();
    tenants.update_one(tenant_id, doc! { "$unset": { "presence": "" } }).session(&mut session).await.unwrap();
    // Its telemetry (no change), its key rotated (as `set_device_key` writes it), then it is retired.
    let telemetry = doc! { "$set": { "lastSeenAt": DateTime::from_millis(at(5).0), "relay": true } };
    devices.update_one(device_id.clone(), telemetry).session(&mut session).await.unwrap();
    let rotated = doc! { "$set": { "keyHash": Binary { subtype: BinarySubtype::Generic, bytes: vec![2; 32] } } };
    devices.update_one(device_id.clone(), rotated).session(&mut session).await.unwrap();
    devices.delete_one(device_id).session(&mut session).await.unwrap();
    session.commit_transaction().await.unwrap();

    let present = PresenceNews::Present { device: Some(device.id), server: Some("a".into()) };
    let joined = Change::Tenant {
        admin,
        version: None,
        last_poll_at: Some(at(5)),
        presence: present,
        has_run: None,
        state: None,
    };
    assert_eq!(next_news(&mut changes).await, joined, "the join, as it was written");
    let left = Change::Tenant {
        admin,
        version: None,
        last_poll_at: None,
        presence: PresenceNews::Gone,
        has_run: None,
        state: None,
    };
    assert_eq!(next_news(&mut changes).await, left);
    let rotated = Change::Device { id: device.id, key: KeyNews::Rotated { key_hash: vec![2; 32] }, signs: false };
    assert_eq!(next_news(&mut changes).await, rotated, "the telemetry is no change; the key, as it was set");
    let retired = Change::Device { id: device.id, key: KeyNews::Retired, signs: false };
    assert_eq!(next_news(&mut changes).await, retired);
}

/// The launcher paces SecantusDB's change streams (`secantusd.py`, `pace_feeds`): a stream that
/// has just delivered events reads the oplog again no sooner than the pause later, so a stream of
/// writes costs each watching server one read a pause instead of one a write; a stream that has
/// been quiet is read at once, so a lone change (a farmer's Start) is not held. Three servers'
/// feeds on one store, the pause one second: a lone write reaches all three without a paced read;
/// then a burst of writes reaches all three, every write of it, in paced reads, and no stream read
/// again sooner than the pause after delivering. (The counts are the launcher's own, not timings
/// of this test: a slow machine makes the gaps longer, never shorter.)
#[tokio::test]
async fn a_stream_that_just_delivered_waits_its_pause_and_a_quiet_one_is_read_at_once() {
    use mongodb::bson::DateTime;

    const PAUSE_MS: u32 = 1_000;
    let server = testing::start_with_feed_pause(PAUSE_MS);
    let url = server.fresh_url();
    let store = MongoStore::connect(&url).await.unwrap();
    let mut admins = Vec::new();
    for n in 0..21 {
        let admin = account(&format!("owner{n}"), Role::Admin, None);
        store.create_account(&admin).await.unwrap();
        admins.push(AdminId(admin.id));
    }
    let mut feeds = Vec::new();
    for _ in 0..3 {
        let server_store = MongoStore::connect(&url).await.unwrap();
        let mut changes = server_store.changes().expect("a MongoDB store has a feed");
        assert_eq!(next_news(&mut changes).await, Change::Reset, "the feed starts afresh");
        feeds.push((server_store, changes));
    }
    let tenants = store.database().collection::<Document>("tenants");
    let poll = |admin: AdminId, second: i64| {
        let tenants = tenants.clone();
        async move {
            let moved = doc! { "$set": { "lastPollAt": DateTime::from_millis(at(second).0) } };
            tenants.update_one(doc! { "_id": admin.to_string() }, moved).await.unwrap();
        }
    };
    poll(admins[0], 1).await;
    hear_all(&mut feeds, &admins[..1]).await;
    let lone = reads_showing(&server, |reads| reads.delivered >= 3).await;
    assert_eq!(lone.paced, 0, "a quiet stream is read at once: {lone:?}");

    for (n, admin) in admins[1..].iter().enumerate() {
        poll(*admin, 2 + n as i64).await;
    }
    hear_all(&mut feeds, &admins[1..]).await;
    let burst = reads_showing(&server, |reads| reads.paced >= 1).await;
    let shortest = burst.shortest_gap_ms.expect("a stream read again after delivering");
    assert!(shortest >= f64::from(PAUSE_MS) - 0.5, "a stream read {shortest} ms after delivering: {burst:?}");
    assert!(burst.delivered < 3 * 21, "the burst came in fewer reads than writes: {burst:?}");
}

/// Waits until every feed has told a last poll of each of `expected`.
async fn hear_all(feeds: &mut [(MongoStore, tokio::sync::mpsc::Receiver<Change>)], expected: &[AdminId]) {
    let waits = feeds.iter_mut().map(|(_, changes)| async move {
        let mut left: std::collections::HashSet<AdminId> = expected.iter().copied().collect();
        while !left.is_empty() {
            if let Change::Tenant { admin, last_poll_at: Some(_), .. } = next_news(changes).await {
                left.remove(&admin);
            }
        }
    });
    futures_util::future::join_all(waits).await;
}

/// The launcher's last report of its paced change streams once it shows `enough` (it reports once
/// a second). Waits without blocking the feeds' tasks, which run on the test's runtime.
async fn reads_showing(
    server: &testing::TestServer,
    enough: impl Fn(&testing::FeedReads) -> bool,
) -> testing::FeedReads {
    let started = std::time::Instant::now();
    loop {
        if let Some(reads) = server.feed_reads().filter(|reads| enough(reads)) {
            return reads;
        }
        assert!(started.elapsed().as_secs() < 30, "the launcher did not report: {:?}", server.feed_reads());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A pump owner with one device (no telemetry yet), as stored.
async fn owner_with_device(store: &MongoStore) -> pumppilot_store::Device {
    let admin = account("rahim", Role::Admin, None);
    store.create_account(&admin).await.unwrap();
    let device = pumppilot_store::Device {
        id: pumppilot_engine::DeviceId::new(),
        admin_id: AdminId(admin.id),
        name: "well".into(),
        key_hash: vec![1; 32],
        created_at: T0,
        telemetry: None,
    };
    store.create_device(&device).await.unwrap();
    device
}

/// What a device coming online at a server writes, counted in the store's oplog (as the fleet
/// bench counts it, `testing::writes_between`): its link counters' reservation (alone here; in a
/// transaction when grouped with others) and its telemetry on its device, and its join on its
/// tenant, one document write each. Each is a change event for every server, so a write more here
/// is a write more for every device of a fleet coming online (`docs/MEASUREMENTS.md`, "What a
/// device coming online writes").
#[tokio::test]
async fn a_device_coming_online_writes_its_device_twice_and_its_tenant_once() {
    let store = testing::fresh_store().await;
    let device = owner_with_device(&store).await;
    let (admin, device) = (device.admin_id, device.id);
    let unix_ms = || {
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
    };
    // The oplog's times are in milliseconds: the count begins at the next one, after the device's
    // creation.
    let from = unix_ms() + 1;
    while unix_ms() < from {
        std::hint::spin_loop();
    }

    store.reserve_device_counters(admin, device, 1, 1_000).await.unwrap();
    let arrived = pumppilot_store::Telemetry::ready(admin, device, at(1));
    store.record_arrivals("server-a", &[arrived], &[(admin, device, at(1))]).await.unwrap();

    let writes = testing::writes_between(&store, from, unix_ms() + 1).await.unwrap();
    assert_eq!(writes.from_ms, from, "the oplog holds the whole interval");
    let counted: Vec<(&str, u64)> =
        writes.collections.iter().map(|(collection, (plain, txn))| (collection.as_str(), plain + txn)).collect();
    assert_eq!(counted, [("devices", 2), ("tenants", 1)]);
    let present: Vec<_> = store.presences().await.unwrap().iter().map(|p| (p.admin, p.device)).collect();
    assert_eq!(present, [(admin, device)], "joined");
}
