//! The outbox worker against local stand-ins for Expo's push API and an SMS gateway that record
//! the exact requests, on a real SQLite store, with time given by hand.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use pumppilot_alerts::{BodyFormat, ExpoPush, Limits, Outbox, Round, SmsGateway, parts};
use pumppilot_engine::{AdminId, EndReason, EntryId, Facts, HoldReason, Notice, NoticeKind, Timestamp, UserId};
use pumppilot_store::{Account, AlertProfile, QuietHours, Role, Store};
use pumppilot_store_sqlite::SqliteStore;

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp(1_767_225_600_000);

fn at(seconds: i64) -> Timestamp {
    T0 + seconds * 1000
}

/// One recorded request: its Authorization and Content-Type headers and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// A stand-in HTTP receiver: records every request and answers from a script (then 200 + `ok`).
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<VecDeque<(StatusCode, String)>>>,
    ok: Arc<Mutex<String>>,
}

impl Receiver {
    async fn start(ok: &str) -> (Receiver, String) {
        let receiver = Receiver { ok: Arc::new(Mutex::new(ok.to_owned())), ..Receiver::default() };
        async fn record(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            r.seen.lock().unwrap().push(Seen {
                authorization: header("authorization"),
                content_type: header("content-type"),
                body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
            });
            let scripted = r.answers.lock().unwrap().pop_front();
            scripted.unwrap_or_else(|| (StatusCode::OK, r.ok.lock().unwrap().clone()))
        }
        let app = Router::new().route("/send", post(record)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/send", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn answer(&self, status: StatusCode, body: &str) {
        self.answers.lock().unwrap().push_back((status, body.to_owned()));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

const EXPO_OK: &str = r#"{"data":[{"status":"ok","id":"ticket-1"}]}"#;
const SMS_TEMPLATE: &str = r#"{"to":"{to}","from":"{from}","message":"{text}","ref":"{id}","coding":"{encoding}"}"#;

struct Pump {
    store: Arc<dyn Store>,
    admin: AdminId,
    karim: UserId,
    expo: Receiver,
    expo_url: String,
    receipts: Receiver,
    receipts_url: String,
    sms: Receiver,
    sms_url: String,
}

impl Pump {
    async fn new() -> Pump {
        Pump::on(Arc::new(SqliteStore::open("sqlite::memory:").unwrap())).await
    }

    async fn on(store: Arc<dyn Store>) -> Pump {
        let owner = account(UserId::new(), "rahim", Role::Admin, None);
        let admin = AdminId(owner.id);
        store.create_account(&Account { admin_id: Some(admin), ..owner }).await.unwrap();
        let karim = account(UserId::new(), "karim", Role::User, Some(admin));
        store.create_account(&karim).await.unwrap();
        let (expo, expo_url) = Receiver::start(EXPO_OK).await;
        let (receipts, receipts_url) = Receiver::start(r#"{"data":{}}"#).await;
        let (sms, sms_url) = Receiver::start(r#"{"status":"queued"}"#).await;
        Pump { store, admin, karim: karim.id, expo, expo_url, receipts, receipts_url, sms, sms_url }
    }

    fn worker(&self, name: &str, limits: Limits) -> Outbox {
        let sms = SmsGateway {
            url: self.sms_url.clone(),
            template: SMS_TEMPLATE.to_owned(),
            format: BodyFormat::Json,
            authorization: Some("Basic dXNlcjpwYXNz".to_owned()),
            from: "PumpPilot".to_owned(),
            timeout: Duration::from_secs(5),
        };
        Outbox::new(Arc::clone(&self.store), name, Some(sms), Some(self.worker_push()), limits)
    }

    /// Expo's push API and receipts, at the stand-ins.
    fn worker_push(&self) -> ExpoPush {
        ExpoPush {
            url: self.expo_url.clone(),
            receipts_url: self.receipts_url.clone(),
            access_token: Some("expo-secret".to_owned()),
            timeout: Duration::from_secs(5),
        }
    }

    async fn profile(&self, language: &str, quiet: Option<QuietHours>) {
        let profile = AlertProfile {
            phone: Some("+8801711000001".to_owned()),
            push_tokens: vec!["ExponentPushToken[karim]".to_owned()],
            language: language.to_owned(),
            quiet_hours: quiet,
            ..AlertProfile::empty(self.karim)
        };
        let read = self.store.alert_profile(self.karim).await.unwrap();
        self.store.set_alert_profile(&profile, read.as_ref()).await.unwrap();
    }

    async fn tell(&self, kind: NoticeKind, when: Timestamp, facts: Facts) -> String {
        let notice = Notice::new(self.karim, self.admin, kind, when, facts);
        let written = self.store.add_notices(&[notice]).await.unwrap();
        written[0].id.to_string()
    }
}

fn account(id: UserId, username: &str, role: Role, admin_id: Option<AdminId>) -> Account {
    Account {
        id,
        username: username.to_owned(),
        name: username.to_owned(),
        role,
        admin_id,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$x".to_owned(),
        suspended: false,
        created_at: T0,
    }
}

fn ended() -> Facts {
    Facts {
        end_reason: Some(EndReason::UserStop),
        seconds: Some(25 * 60),
        balance_seconds: Some(95 * 60),
        ..Facts::default()
    }
}

#[tokio::test]
async fn a_run_end_goes_to_expo_and_the_sms_gateway_exactly_once_with_bangla_as_unicode() {
    let pump = Pump::new().await;
    pump.profile("bn", None).await;
    let id = pump.tell(NoticeKind::RunEnded, at(0), ended()).await;
    let worker = pump.worker("server-1", Limits::default());

    let round = worker.run_once(at(1)).await.unwrap();
    assert_eq!(round, Round { claimed: 1, done: 1, ..Round::default() });

    let text = "আপনার সেচ শেষ (আপনি বন্ধ করেছেন): ২৫ মিনিট খরচ, ৯৫ মিনিট বাকি।";
    let push = pump.expo.seen();
    assert_eq!(push.len(), 1);
    assert_eq!(push[0].authorization.as_deref(), Some("Bearer expo-secret"));
    assert_eq!(push[0].content_type.as_deref(), Some("application/json"));
    let expected = serde_json::json!([{
        "to": "ExponentPushToken[karim]",
        "title": "সেচ শেষ",
        "body": text,
        "sound": "default",
        "data": { "id": id, "kind": "RUN_ENDED" },
    }]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&push[0].body).unwrap(), expected);

    let sms = pump.sms.seen();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].authorization.as_deref(), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(sms[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        sms[0].body,
        format!(r#"{{"to":"+8801711000001","from":"PumpPilot","message":"{text}","ref":"{id}","coding":"ucs2"}}"#),
        "the Bangla text goes as it is (UTF-8 JSON), marked Unicode"
    );
    let size = parts(text);
    assert_eq!((size.units, size.parts), (text.encode_utf16().count(), 1));

    // Delivered is delivered: neither this worker nor a new one over the same store sends it again.
    assert_eq!(worker.run_once(at(1000)).await.unwrap(), Round::default());
    assert_eq!(pump.worker("server-2", Limits::default()).run_once(at(100_000)).await.unwrap(), Round::default());
    assert_eq!((pump.expo.seen().len(), pump.sms.seen().len()), (1, 1));
}

#[tokio::test]
async fn a_gateway_that_fails_is_tried_again_after_a_backoff_and_only_the_channel_that_failed() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    pump.tell(NoticeKind::RunStarted, at(0), Facts::default()).await;
    pump.sms.answer(StatusCode::SERVICE_UNAVAILABLE, "busy");
    pump.sms.answer(StatusCode::TOO_MANY_REQUESTS, "slow down");
    let worker = pump.worker("server-1", Limits::default());

    assert_eq!(worker.run_once(at(0)).await.unwrap().retried, 1);
    assert_eq!((pump.expo.seen().len(), pump.sms.seen().len()), (1, 1));
    // The first retry waits 30 s, the second 60 s.
    assert_eq!(worker.run_once(at(29)).await.unwrap(), Round::default());
    assert_eq!(worker.run_once(at(30)).await.unwrap().retried, 1);
    assert_eq!(worker.run_once(at(89)).await.unwrap(), Round::default());
    assert_eq!(worker.run_once(at(90)).await.unwrap().done, 1);
    assert_eq!(pump.expo.seen().len(), 1, "push was delivered the first time and never sent again");
    let sms = pump.sms.seen();
    assert_eq!(sms.len(), 3);
    assert!(sms.iter().all(|s| s.body == sms[0].body), "the same message, with the same ref, each time");
    assert!(sms[0].body.contains(r#""message":"Your turn came: the pump is starting for you.""#));
    assert!(sms[0].body.contains(r#""coding":"gsm7""#));
}

#[tokio::test]
async fn a_sender_that_died_mid_send_leaves_its_items_to_the_next_after_its_claim_runs_out() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    pump.tell(NoticeKind::RunStarted, at(0), Facts::default()).await;
    pump.tell(NoticeKind::RunHeld, at(1), Facts::default()).await;
    // The first server claims both and is killed before it records anything.
    let claimed = pump.store.claim_outbox("killed", at(2), at(2) + 120_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);

    let restarted = pump.worker("restarted", Limits::default());
    assert_eq!(restarted.run_once(at(121)).await.unwrap(), Round::default(), "the dead claim still holds");
    assert_eq!(restarted.run_once(at(122)).await.unwrap(), Round { claimed: 2, done: 2, ..Round::default() });
    assert_eq!((pump.expo.seen().len(), pump.sms.seen().len()), (2, 2));
    // The killed server's late word changes nothing.
    let done = pumppilot_store::Delivery::Done { at: at(123) };
    let late = pump.store.finish_outbox(claimed[0].notification.id, "killed", &done).await;
    assert!(matches!(late, Err(pumppilot_store::StoreError::ClaimLost)));
    assert_eq!(restarted.run_once(at(10_000)).await.unwrap(), Round::default());
}

#[tokio::test]
async fn quiet_hours_hold_messages_until_they_end_but_not_the_bell() {
    let pump = Pump::new().await;
    // 22:00 to 06:00 in Dhaka (UTC+6); T0 is 06:00 in Dhaka, so 16 h after T0 is 22:00.
    let quiet = QuietHours { from_minute: 22 * 60, to_minute: 6 * 60, utc_offset_minutes: 360 };
    pump.profile("en", Some(quiet)).await;
    let night = at(17 * 3600);
    pump.tell(NoticeKind::RunEnded, night, ended()).await;
    let worker = pump.worker("server-1", Limits::default());
    assert_eq!(worker.run_once(night).await.unwrap().deferred, 1);
    assert_eq!(pump.store.unread_notifications(pump.karim).await.unwrap(), 1, "the bell has it at once");
    let morning = at(24 * 3600);
    assert_eq!(worker.run_once(morning - 1000).await.unwrap(), Round::default());
    assert_eq!(worker.run_once(morning).await.unwrap().done, 1);
    assert_eq!((pump.expo.seen().len(), pump.sms.seen().len()), (1, 1));
}

#[tokio::test]
async fn one_person_gets_at_most_so_many_messages_an_hour_and_the_gateway_so_many_a_minute() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    for n in 0..3 {
        pump.tell(NoticeKind::BalanceLow, at(n), Facts::default()).await;
    }
    let limits = Limits { per_person_per_hour: 2, ..Limits::default() };
    let worker = pump.worker("server-1", limits);
    let round = worker.run_once(at(10)).await.unwrap();
    assert_eq!((round.done, round.deferred), (2, 1));
    assert_eq!(worker.run_once(at(3599)).await.unwrap(), Round::default(), "the clock hour is full");
    assert_eq!(worker.run_once(at(3600)).await.unwrap().done, 1, "the next clock hour");
    assert_eq!(pump.sms.seen().len(), 3);

    // The gateway's own limit, across people.
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    for n in 0..3 {
        pump.tell(NoticeKind::BalanceLow, at(n), Facts::default()).await;
    }
    let worker = pump.worker("server-1", Limits { sms_per_minute: 1, ..Limits::default() });
    assert_eq!(worker.run_once(at(10)).await.unwrap().deferred, 2);
    assert_eq!(worker.run_once(at(70)).await.unwrap().done, 1);
    assert_eq!(pump.sms.seen().len(), 2);
}

#[tokio::test]
async fn two_servers_on_one_store_keep_one_limit_per_person_and_per_gateway() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    for n in 0..4 {
        pump.tell(NoticeKind::BalanceLow, at(n), Facts::default()).await;
    }
    let limits = Limits { per_person_per_hour: 2, batch: 2, ..Limits::default() };
    let (one, two) = (pump.worker("server-1", limits), pump.worker("server-2", limits));
    let (a, b) = tokio::join!(one.run_once(at(10)), two.run_once(at(10)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.claimed + b.claimed, a.done + b.done, a.deferred + b.deferred), (4, 2, 2));
    assert_eq!((pump.expo.seen().len(), pump.sms.seen().len()), (2, 2), "two servers, one person's limit of 2");
    assert_eq!(one.run_once(at(3599)).await.unwrap(), Round::default());
    assert_eq!(two.run_once(at(3600)).await.unwrap().done, 2);

    // The gateway's minute is one for both servers.
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    pump.tell(NoticeKind::BalanceLow, at(0), Facts::default()).await;
    pump.tell(NoticeKind::RequestDecided, at(1), Facts::default()).await;
    let limits = Limits { sms_per_minute: 1, batch: 1, ..Limits::default() };
    let (one, two) = (pump.worker("server-1", limits), pump.worker("server-2", limits));
    assert_eq!(one.run_once(at(10)).await.unwrap().done, 1);
    assert_eq!(two.run_once(at(11)).await.unwrap().deferred, 1, "server-2 sees server-1's send");
    assert_eq!(two.run_once(at(60)).await.unwrap().done, 1);
    assert_eq!(pump.sms.seen().len(), 2);
}

#[tokio::test]
async fn an_sms_answer_goes_by_sms_only_at_once_even_in_quiet_hours_and_past_the_hourly_limit() {
    let pump = Pump::new().await;
    // Quiet all day long, and SMS muted for answers: an answer still goes, by SMS only.
    let quiet = QuietHours { from_minute: 0, to_minute: 1439, utc_offset_minutes: 0 };
    pump.profile("en", Some(quiet)).await;
    let read = pump.store.alert_profile(pump.karim).await.unwrap();
    let mut profile = read.clone().unwrap();
    profile.muted.insert((NoticeKind::SmsReply, pumppilot_store::Channel::Sms));
    pump.store.set_alert_profile(&profile, read.as_ref()).await.unwrap();
    let facts = Facts { text: Some("Started. 30 min left.".to_owned()), ..Facts::default() };
    let first = pump.tell(NoticeKind::SmsReply, at(0), facts.clone()).await;
    pump.tell(NoticeKind::SmsReply, at(1), facts).await;
    let worker = pump.worker("server-1", Limits { per_person_per_hour: 1, ..Limits::default() });
    assert_eq!(worker.run_once(at(2)).await.unwrap(), Round { claimed: 2, done: 2, ..Round::default() });
    assert_eq!(pump.expo.seen(), [], "never pushed");
    let sms = pump.sms.seen();
    assert_eq!(sms.len(), 2);
    assert_eq!(
        sms[0].body,
        format!(
            r#"{{"to":"+8801711000001","from":"PumpPilot","message":"Started. 30 min left.","ref":"{first}","coding":"gsm7"}}"#
        )
    );
    assert_eq!(worker.run_once(at(1000)).await.unwrap(), Round::default(), "sent once");
}

#[tokio::test]
async fn a_phone_expo_says_is_gone_loses_its_token_from_the_ticket_or_from_the_receipt_read_later() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let read = pump.store.alert_profile(pump.karim).await.unwrap();
    let mut profile = read.clone().unwrap();
    profile.push_tokens = ["karim", "old-phone", "uninstalled"].map(|t| format!("ExponentPushToken[{t}]")).to_vec();
    pump.store.set_alert_profile(&profile, read.as_ref()).await.unwrap();
    // One ticket per message, in order: the third phone is already known to be gone.
    pump.expo.answer(
        StatusCode::OK,
        r#"{"data":[{"status":"ok","id":"ticket-karim"},{"status":"ok","id":"ticket-old"},
            {"status":"error","message":"not registered","details":{"error":"DeviceNotRegistered"}}]}"#,
    );
    pump.tell(NoticeKind::RunStarted, at(0), Facts::default()).await;
    let worker = pump.worker("server-1", Limits::default());
    let round = worker.run_once(at(1)).await.unwrap();
    assert_eq!((round.done, round.receipts), (1, 0));
    let tokens = || async { pump.store.alert_profile(pump.karim).await.unwrap().unwrap().push_tokens };
    assert_eq!(tokens().await, ["ExponentPushToken[karim]", "ExponentPushToken[old-phone]"], "gone at once");

    // Receipts are read 15 minutes later, with the tickets' ids.
    assert_eq!(worker.run_once(at(1 + 15 * 60) - 1).await.unwrap(), Round::default());
    assert_eq!(pump.receipts.seen(), []);
    pump.receipts.answer(
        StatusCode::OK,
        r#"{"data":{"ticket-karim":{"status":"ok"},
            "ticket-old":{"status":"error","message":"The device cannot receive push notifications anymore",
            "details":{"error":"DeviceNotRegistered"}}}}"#,
    );
    let round = worker.run_once(at(1 + 15 * 60)).await.unwrap();
    assert_eq!((round.receipts, round.tokens_removed), (2, 1));
    let seen = pump.receipts.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer expo-secret"));
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(seen[0].body, r#"{"ids":["ticket-karim","ticket-old"]}"#);
    assert_eq!(tokens().await, ["ExponentPushToken[karim]"]);
    // Read receipts are not asked for again.
    assert_eq!(worker.run_once(at(2 * 15 * 60)).await.unwrap(), Round::default());
    assert_eq!(pump.receipts.seen().len(), 1);
}

/// Expo's answer to a push to Karim's two phones: a ticket for each.
const TWO_TICKETS: &str = r#"{"data":[{"status":"ok","id":"ticket-karim"},{"status":"ok","id":"ticket-old"}]}"#;
/// The receipts of those tickets: the old phone is gone.
const OLD_PHONE_GONE: &str = r#"{"data":{"ticket-karim":{"status":"ok"},
    "ticket-old":{"status":"error","message":"The device cannot receive push notifications anymore",
    "details":{"error":"DeviceNotRegistered"}}}}"#;

impl Pump {
    /// Karim with two phones, and a run start told to him.
    async fn two_phones_told(&self) {
        self.profile("en", None).await;
        let read = self.store.alert_profile(self.karim).await.unwrap();
        let mut profile = read.clone().unwrap();
        profile.push_tokens = ["karim", "old-phone"].map(|t| format!("ExponentPushToken[{t}]")).to_vec();
        self.store.set_alert_profile(&profile, read.as_ref()).await.unwrap();
        self.expo.answer(StatusCode::OK, TWO_TICKETS);
        self.tell(NoticeKind::RunStarted, at(0), Facts::default()).await;
    }

    async fn tokens(&self) -> Vec<String> {
        self.store.alert_profile(self.karim).await.unwrap().unwrap().push_tokens
    }

    /// The one receipts request Expo got, exactly: the tickets' ids, with the access token.
    fn assert_one_receipts_request(&self) {
        let seen = self.receipts.seen();
        assert_eq!(seen.len(), 1, "the receipts are asked for once: {seen:?}");
        assert_eq!(seen[0].authorization.as_deref(), Some("Bearer expo-secret"));
        assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(seen[0].body, r#"{"ids":["ticket-karim","ticket-old"]}"#);
    }
}

/// Two servers on one MongoDB (SecantusDB; each its own connection and worker): server 1 pushes,
/// server 2 reads the receipts 15 minutes later and takes the gone phone's token out, and server
/// 1 does not ask for them again. Both looking at once ask Expo once (the tickets are claimed).
#[tokio::test]
async fn a_push_sent_by_one_server_has_its_receipts_read_by_another_that_drops_a_gone_phone() {
    let connect = |url: String| async move {
        Arc::new(pumppilot_store_mongodb::MongoStore::connect(&url).await.unwrap()) as Arc<dyn Store>
    };
    let url = pumppilot_store_mongodb::testing::server().fresh_url();
    let pump = Pump::on(connect(url.clone()).await).await;
    pump.two_phones_told().await;
    let one = pump.worker("server-1", Limits::default());
    assert_eq!(one.run_once(at(1)).await.unwrap().done, 1);
    assert_eq!(pump.receipts.seen(), [], "not read before 15 minutes");
    let two = Outbox::new(connect(url).await, "server-2", None, Some(pump.worker_push()), Limits::default());
    assert_eq!(two.run_once(at(1 + 15 * 60) - 1).await.unwrap(), Round::default());
    pump.receipts.answer(StatusCode::OK, OLD_PHONE_GONE);
    let (a, b) = tokio::join!(one.run_once(at(1 + 15 * 60)), two.run_once(at(1 + 15 * 60)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.receipts + b.receipts, a.tokens_removed + b.tokens_removed), (2, 1), "{a:?} {b:?}");
    pump.assert_one_receipts_request();
    assert_eq!(pump.tokens().await, ["ExponentPushToken[karim]"]);
    // Read receipts are asked for by no server again.
    for (worker, when) in [(&one, 2 * 15 * 60), (&two, 3 * 15 * 60), (&one, 4 * 3600)] {
        assert_eq!(worker.run_once(at(when)).await.unwrap(), Round::default());
    }
    pump.assert_one_receipts_request();

    // Server 2 alone, while server 1 has not come back: the receipts are read there.
    let url = pumppilot_store_mongodb::testing::server().fresh_url();
    let pump = Pump::on(connect(url.clone()).await).await;
    pump.two_phones_told().await;
    pump.worker("server-1", Limits::default()).run_once(at(1)).await.unwrap();
    pump.receipts.answer(StatusCode::OK, OLD_PHONE_GONE);
    let two = Outbox::new(connect(url).await, "server-2", None, Some(pump.worker_push()), Limits::default());
    let round = two.run_once(at(1 + 15 * 60)).await.unwrap();
    assert_eq!((round.receipts, round.tokens_removed), (2, 1));
    pump.assert_one_receipts_request();
    assert_eq!(pump.tokens().await, ["ExponentPushToken[karim]"]);
}

/// A server that restarts between a push and its receipts (a new process on the same SQLite
/// file) still reads them and drops the gone phone's token.
#[tokio::test]
async fn a_restarted_server_reads_the_receipts_of_pushes_sent_before_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pumppilot.db").display());
    let pump = Pump::on(Arc::new(SqliteStore::open(&url).unwrap())).await;
    pump.two_phones_told().await;
    assert_eq!(pump.worker("before", Limits::default()).run_once(at(1)).await.unwrap().done, 1);
    let push = pump.worker_push();
    let Pump { store, karim, expo, receipts, .. } = pump;
    drop(store);

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).unwrap());
    let after = Outbox::new(Arc::clone(&store), "after", None, Some(push), Limits::default());
    receipts.answer(StatusCode::OK, OLD_PHONE_GONE);
    let round = after.run_once(at(1 + 15 * 60)).await.unwrap();
    assert_eq!((round.receipts, round.tokens_removed), (2, 1));
    let seen = receipts.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer expo-secret"));
    assert_eq!(seen[0].body, r#"{"ids":["ticket-karim","ticket-old"]}"#);
    assert_eq!(store.alert_profile(karim).await.unwrap().unwrap().push_tokens, ["ExponentPushToken[karim]"]);
    assert_eq!(expo.seen().len(), 1, "pushed once, before the restart");
    assert_eq!(after.run_once(at(2 * 15 * 60)).await.unwrap(), Round::default(), "not read again");
}

#[tokio::test]
async fn a_receipt_not_ready_is_asked_for_again_and_given_up_after_a_day() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    pump.tell(NoticeKind::RunStarted, at(0), Facts::default()).await;
    let worker = pump.worker("server-1", Limits::default());
    worker.run_once(at(0)).await.unwrap();
    // Expo has no receipt yet (an empty answer): asked again 15 minutes later, not before.
    assert_eq!(worker.run_once(at(15 * 60)).await.unwrap().receipts, 0);
    assert_eq!(worker.run_once(at(16 * 60)).await.unwrap().receipts, 0);
    assert_eq!(pump.receipts.seen().len(), 1);
    // Its receipts service fails: asked again a minute later.
    pump.receipts.answer(StatusCode::BAD_GATEWAY, "down");
    worker.run_once(at(30 * 60)).await.unwrap();
    worker.run_once(at(31 * 60) - 1).await.unwrap();
    assert_eq!(pump.receipts.seen().len(), 2);
    worker.run_once(at(31 * 60)).await.unwrap();
    assert_eq!(pump.receipts.seen().len(), 3);
    assert!(pump.receipts.seen().iter().all(|s| s.body == r#"{"ids":["ticket-1"]}"#));
    // Still nothing a day after the push: given up.
    worker.run_once(at(24 * 3600)).await.unwrap();
    assert_eq!(pump.receipts.seen().len(), 3, "given up after a day");
}

#[tokio::test]
async fn two_servers_each_with_its_own_connection_to_one_mongodb_keep_one_limit() {
    // Two servers: two clients of one SecantusDB database, each with its own worker.
    let url = pumppilot_store_mongodb::testing::server().fresh_url();
    let connect =
        || async { Arc::new(pumppilot_store_mongodb::MongoStore::connect(&url).await.unwrap()) as Arc<dyn Store> };
    let pump = Pump::on(connect().await).await;
    pump.profile("en", None).await;
    for n in 0..6 {
        pump.tell(NoticeKind::BalanceLow, at(n), Facts::default()).await;
    }
    let limits = Limits { per_person_per_hour: 3, batch: 3, ..Limits::default() };
    let one = pump.worker("server-1", limits);
    // The second server sends SMS through the same stand-in gateway (push is not set up there).
    let sms = SmsGateway {
        url: pump.sms_url.clone(),
        template: SMS_TEMPLATE.to_owned(),
        format: BodyFormat::Json,
        authorization: Some("Basic dXNlcjpwYXNz".to_owned()),
        from: "PumpPilot".to_owned(),
        timeout: Duration::from_secs(5),
    };
    let two = Outbox::new(connect().await, "server-2", Some(sms), None, limits);
    let (a, b) = tokio::join!(one.run_once(at(10)), two.run_once(at(10)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.claimed + b.claimed, a.done + b.done, a.deferred + b.deferred), (6, 3, 3), "{a:?} {b:?}");
    assert_eq!(pump.sms.seen().len(), 3, "two servers, one person's limit of 3 an hour");
    assert_eq!(two.run_once(at(3600)).await.unwrap().done, 3, "the next hour");
    assert_eq!(pump.sms.seen().len(), 6);
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_endless_trouble_is_given_up() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    pump.tell(NoticeKind::RunStarted, at(0), Facts::default()).await;
    pump.sms.answer(StatusCode::BAD_REQUEST, "no such number");
    let worker = pump.worker("server-1", Limits { max_attempts: 2, ..Limits::default() });
    assert_eq!(worker.run_once(at(0)).await.unwrap().done, 1, "a bad number will not get better");
    assert_eq!(worker.run_once(at(10_000)).await.unwrap(), Round::default());

    pump.tell(NoticeKind::BalanceLow, at(20_000), Facts::default()).await;
    for _ in 0..2 {
        pump.sms.answer(StatusCode::BAD_GATEWAY, "down");
    }
    assert_eq!(worker.run_once(at(20_000)).await.unwrap().retried, 1);
    assert_eq!(worker.run_once(at(20_030)).await.unwrap().failed, 1);
    assert_eq!(worker.run_once(at(90_000)).await.unwrap(), Round::default());
}

#[test]
fn sms_parts_follow_gsm7_and_ucs2() {
    let p = |text: &str| {
        let parts = parts(text);
        (parts.encoding.as_str(), parts.units, parts.parts)
    };
    assert_eq!(p("Your turn came."), ("gsm7", 15, 1));
    assert_eq!(p(&"a".repeat(160)), ("gsm7", 160, 1));
    assert_eq!(p(&"a".repeat(161)), ("gsm7", 161, 2));
    assert_eq!(p(&"a".repeat(306)), ("gsm7", 306, 2));
    assert_eq!(p(&"a".repeat(307)), ("gsm7", 307, 3));
    assert_eq!(p("€[x]"), ("gsm7", 7, 1), "extension characters take two septets");
    assert_eq!(p(&"ক".repeat(70)), ("ucs2", 70, 1));
    assert_eq!(p(&"ক".repeat(71)), ("ucs2", 71, 2));
    assert_eq!(p(&"ক".repeat(134)), ("ucs2", 134, 2));
    assert_eq!(p(&"ক".repeat(135)), ("ucs2", 135, 3));
    assert_eq!(p("ok 🙂"), ("ucs2", 5, 1), "one character outside GSM-7 makes it all Unicode");
}

#[test]
fn form_templates_percent_encode_utf8_and_placeholders_in_values_stay_as_they_are() {
    let gateway = SmsGateway {
        url: String::new(),
        template: "to={to}&text={text}&type={encoding}&parts={parts}".to_owned(),
        format: BodyFormat::Form,
        authorization: None,
        from: String::new(),
        timeout: Duration::from_secs(1),
    };
    assert_eq!(
        gateway.body("+8801711000001", "পালা {to} & more", "x"),
        "to=%2B8801711000001&text=%E0%A6%AA%E0%A6%BE%E0%A6%B2%E0%A6%BE%20%7Bto%7D%20%26%20more&type=ucs2&parts=1"
    );
}

/// The texts the SMS gateway got, in order.
fn sms_texts(pump: &Pump) -> Vec<String> {
    let text =
        |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["message"].as_str().unwrap().to_owned();
    pump.sms.seen().iter().map(|seen| text(&seen.body)).collect()
}

/// The kinds of the pushes Expo got, in order.
fn pushed(pump: &Pump) -> Vec<String> {
    let kinds = |body: &str| -> Vec<String> {
        let messages: serde_json::Value = serde_json::from_str(body).unwrap();
        messages.as_array().unwrap().iter().map(|m| m["data"]["kind"].as_str().unwrap().to_owned()).collect()
    };
    pump.expo.seen().iter().flat_map(|seen| kinds(&seen.body)).collect()
}

/// Facts of one run's notice (its hold's reason, for a hold).
fn of_run(run: EntryId, hold_reason: Option<HoldReason>) -> Facts {
    Facts { entry_id: Some(run), hold_reason, ..Facts::default() }
}

/// The audit's day: a run held and resumed by load shedding (4 s cuts every 20 s) filled the
/// farmer's hour with "on hold" and "running again", and the news that their turn came (the pump
/// running on their minutes) and that their run ended waited for the next hour behind them.
#[tokio::test]
async fn a_turn_and_a_runs_end_go_past_a_full_hour_and_short_holds_are_never_sent() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let worker = pump.worker("server-1", Limits { per_person_per_hour: 2, ..Limits::default() });
    pump.tell(NoticeKind::BalanceLow, at(0), Facts::default()).await;
    pump.tell(NoticeKind::RequestDecided, at(0), Facts::default()).await;
    assert_eq!(worker.run_once(at(0)).await.unwrap().done, 2, "Karim's hour is full");

    let run = EntryId::new();
    pump.tell(NoticeKind::RunStarted, at(10), of_run(run, None)).await;
    assert_eq!(worker.run_once(at(10)).await.unwrap().done, 1, "their turn goes at once");
    let mut dropped = 0;
    for cut in 0..20 {
        let t = 20 + cut * 20;
        pump.tell(NoticeKind::RunHeld, at(t), of_run(run, Some(HoldReason::LoadShedding))).await;
        assert_eq!(worker.run_once(at(t)).await.unwrap().deferred, 1, "a hold of a moment is not news yet");
        pump.tell(NoticeKind::RunResumed, at(t + 4), of_run(run, None)).await;
        dropped += worker.run_once(at(t + 4)).await.unwrap().dropped;
    }
    assert_eq!(dropped, 40, "each hold dropped with its resume");
    pump.tell(NoticeKind::RunEnded, at(430), Facts { entry_id: Some(run), ..ended() }).await;
    assert_eq!(worker.run_once(at(430)).await.unwrap().done, 1, "the run's end goes at once");
    // The hour is still as full as the two first messages made it: nothing else went, or counted.
    pump.tell(NoticeKind::BalanceLow, at(431), Facts::default()).await;
    assert_eq!(worker.run_once(at(431)).await.unwrap().deferred, 1);
    assert_eq!(worker.run_once(at(3599)).await.unwrap(), Round::default(), "nothing left of the chatter");
    assert_eq!(
        sms_texts(&pump),
        [
            "Only 0 min left. Ask the owner for more.",
            "Your request for 0 min was rejected.",
            "Your turn came: the pump is starting for you.",
            "Your run ended (you stopped it): 25 min used, 95 min left.",
        ]
    );
    assert_eq!(pushed(&pump), ["BALANCE_LOW", "REQUEST_DECIDED", "RUN_STARTED", "RUN_ENDED"]);
    assert_eq!(worker.run_once(at(3600)).await.unwrap().done, 1, "the next hour");
}

/// A farmer who stops their run by SMS gets one SMS: the answer to their text says the run's end.
/// The run's end (and the low balance it leaves) the engine marked so goes by push and stays in
/// the bell, and still drops the run's hold waiting to be told; a run's end not answered so goes
/// by SMS as ever.
#[tokio::test]
async fn the_end_of_a_run_stopped_by_sms_goes_by_push_only_and_still_drops_its_waiting_hold() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let worker = pump.worker("server-1", Limits::default());
    let run = EntryId::new();
    pump.tell(NoticeKind::RunHeld, at(0), of_run(run, Some(HoldReason::LoadShedding))).await;
    assert_eq!(worker.run_once(at(0)).await.unwrap().deferred, 1, "a hold of a moment is not news yet");
    let answered = Facts { entry_id: Some(run), answered_by_sms: true, ..ended() };
    pump.tell(
        NoticeKind::SmsReply,
        at(30),
        Facts { text: Some("Stopped: 25 min used, 95 min left.".into()), ..Facts::default() },
    )
    .await;
    pump.tell(NoticeKind::RunEnded, at(30), answered.clone()).await;
    pump.tell(NoticeKind::BalanceLow, at(30), Facts { balance_seconds: Some(540), ..answered }).await;
    let round = worker.run_once(at(30)).await.unwrap();
    assert_eq!((round.done, round.dropped), (3, 1), "{round:?}");
    assert_eq!(sms_texts(&pump), ["Stopped: 25 min used, 95 min left."], "one SMS");
    assert_eq!(pushed(&pump), ["RUN_ENDED", "BALANCE_LOW"]);
    assert_eq!(pump.store.unread_notifications(pump.karim).await.unwrap(), 4, "the bell shows them all");
    assert_eq!(worker.run_once(at(600)).await.unwrap(), Round::default(), "the hold is never told");

    // Without push, it has nowhere to go but the bell.
    let read = pump.store.alert_profile(pump.karim).await.unwrap();
    let mut profile = read.clone().unwrap();
    profile.push_tokens.clear();
    pump.store.set_alert_profile(&profile, read.as_ref()).await.unwrap();
    let next = EntryId::new();
    pump.tell(NoticeKind::RunEnded, at(700), Facts { entry_id: Some(next), answered_by_sms: true, ..ended() }).await;
    pump.tell(NoticeKind::RunEnded, at(701), Facts { entry_id: Some(EntryId::new()), ..ended() }).await;
    assert_eq!(worker.run_once(at(701)).await.unwrap().done, 2);
    assert_eq!(
        sms_texts(&pump),
        ["Stopped: 25 min used, 95 min left.", "Your run ended (you stopped it): 25 min used, 95 min left."],
        "a run not stopped by SMS ends by SMS"
    );
    assert_eq!(pushed(&pump).len(), 2);
}

/// A hold the answer to the farmer's START by text said already (their run began on hold) was told:
/// its resume is news by SMS however soon it comes, whichever of the two the worker meets first,
/// while the hold itself is never sent again.
#[tokio::test]
async fn the_resume_of_a_hold_the_answer_to_a_text_said_is_sent_however_soon_it_comes() {
    let answered = |run| Facts { answered_by_sms: true, ..of_run(run, Some(HoldReason::LoadShedding)) };
    // The worker meets the resume first: the hold is not due yet.
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let worker = pump.worker("server-1", Limits::default());
    let run = EntryId::new();
    pump.tell(NoticeKind::RunHeld, at(0), answered(run)).await;
    assert_eq!(worker.run_once(at(0)).await.unwrap().deferred, 1, "a hold of a moment is not news yet");
    pump.tell(NoticeKind::RunResumed, at(20), of_run(run, None)).await;
    let round = worker.run_once(at(20)).await.unwrap();
    assert_eq!((round.done, round.dropped), (1, 1), "{round:?}");
    assert_eq!(sms_texts(&pump), ["Your run is running again."]);
    assert_eq!(worker.run_once(at(600)).await.unwrap(), Round::default(), "the hold is never sent");

    // The worker meets the hold first, its resume waiting behind a full hour: the resume stays.
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let worker = pump.worker("server-1", Limits { per_person_per_hour: 1, ..Limits::default() });
    pump.tell(NoticeKind::BalanceLow, at(0), Facts::default()).await;
    assert_eq!(worker.run_once(at(0)).await.unwrap().done, 1, "the hour is full");
    let run = EntryId::new();
    pump.tell(NoticeKind::RunHeld, at(10), answered(run)).await;
    pump.tell(NoticeKind::RunResumed, at(30), of_run(run, None)).await;
    let round = worker.run_once(at(30)).await.unwrap();
    assert_eq!((round.dropped, round.deferred), (1, 1), "the hold moot, its resume waiting for the hour: {round:?}");
    assert_eq!(worker.run_once(at(3600)).await.unwrap().done, 1, "the next hour, the resume");
    assert_eq!(sms_texts(&pump), ["Only 0 min left. Ask the owner for more.", "Your run is running again."]);
}

/// A hold that lasts is told a minute after it began and its resume when it comes; one over
/// before it went (its resume came during quiet hours, or its run ended) is dropped, never sent.
#[tokio::test]
async fn a_hold_is_told_once_it_has_lasted_a_minute_and_not_once_its_run_moved_on() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let worker = pump.worker("server-1", Limits::default());
    let run = EntryId::new();
    pump.tell(NoticeKind::RunHeld, at(0), of_run(run, Some(HoldReason::LoadShedding))).await;
    assert_eq!(worker.run_once(at(0)).await.unwrap().deferred, 1);
    assert_eq!(worker.run_once(at(59)).await.unwrap(), Round::default());
    assert_eq!(worker.run_once(at(60)).await.unwrap().done, 1, "it has lasted a minute");
    pump.tell(NoticeKind::RunResumed, at(300), of_run(run, None)).await;
    assert_eq!(worker.run_once(at(300)).await.unwrap().done, 1, "its hold was told: so is its end");
    // A run that ends in the minute its hold began: its end tells what became of it.
    let short = EntryId::new();
    pump.tell(NoticeKind::RunHeld, at(400), of_run(short, Some(HoldReason::DeviceNotReady))).await;
    assert_eq!(worker.run_once(at(400)).await.unwrap().deferred, 1);
    pump.tell(NoticeKind::RunEnded, at(430), Facts { entry_id: Some(short), ..ended() }).await;
    let round = worker.run_once(at(430)).await.unwrap();
    assert_eq!((round.done, round.dropped), (1, 1));
    assert_eq!(worker.run_once(at(1000)).await.unwrap(), Round::default());
    assert_eq!(
        sms_texts(&pump),
        [
            "Your run is on hold: load shedding. No minutes are used while it is on hold.",
            "Your run is running again.",
            "Your run ended (you stopped it): 25 min used, 95 min left.",
        ]
    );

    // A hold of two hours in the night, over before the morning: neither it nor its resume wakes
    // the farmer, nor greets them in the morning.
    let pump = Pump::new().await;
    let quiet = QuietHours { from_minute: 22 * 60, to_minute: 6 * 60, utc_offset_minutes: 360 };
    pump.profile("en", Some(quiet)).await;
    let worker = pump.worker("server-1", Limits::default());
    let night = at(17 * 3600);
    pump.tell(NoticeKind::RunHeld, night, of_run(run, Some(HoldReason::LoadShedding))).await;
    assert_eq!(worker.run_once(night).await.unwrap().deferred, 1);
    assert_eq!(worker.run_once(night + 60_000).await.unwrap().deferred, 1, "news, in quiet hours");
    pump.tell(NoticeKind::RunResumed, night + 7_200_000, of_run(run, None)).await;
    assert_eq!(worker.run_once(night + 7_200_000).await.unwrap().dropped, 2);
    assert_eq!(worker.run_once(at(24 * 3600)).await.unwrap(), Round::default());
    assert_eq!((pump.expo.seen().len(), pump.sms.seen().len()), (0, 0));
}

/// A farmer in line must hear that their turn came whatever their quiet hours; everything else
/// waits for the morning as before.
#[tokio::test]
async fn a_turn_that_comes_in_quiet_hours_is_told_at_once_and_the_rest_in_the_morning() {
    let pump = Pump::new().await;
    // 22:00 to 06:00 in Dhaka (UTC+6); T0 is 06:00 in Dhaka, so 17 h after T0 is 23:00.
    let quiet = QuietHours { from_minute: 22 * 60, to_minute: 6 * 60, utc_offset_minutes: 360 };
    pump.profile("en", Some(quiet)).await;
    let worker = pump.worker("server-1", Limits::default());
    let night = at(17 * 3600);
    pump.tell(NoticeKind::RunStarted, night, of_run(EntryId::new(), None)).await;
    pump.tell(NoticeKind::BalanceLow, night, Facts::default()).await;
    let round = worker.run_once(night).await.unwrap();
    assert_eq!((round.done, round.deferred), (1, 1));
    assert_eq!(sms_texts(&pump), ["Your turn came: the pump is starting for you."]);
    assert_eq!(pushed(&pump), ["RUN_STARTED"]);
    assert_eq!(worker.run_once(at(24 * 3600)).await.unwrap().done, 1, "06:00");
    assert_eq!(pushed(&pump), ["RUN_STARTED", "BALANCE_LOW"]);
}

/// Found by the audit: with the SMS gateway's minute full, an owner's "new request" waited two
/// minutes on push too. Each channel waits for its own limit, and a message counts once in its
/// person's hour however its channels go.
#[tokio::test]
async fn a_full_sms_minute_holds_the_sms_only_and_the_push_goes_at_once() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let worker = pump.worker("server-1", Limits { sms_per_minute: 1, per_person_per_hour: 2, ..Limits::default() });
    pump.tell(NoticeKind::BalanceLow, at(0), Facts::default()).await;
    pump.tell(
        NoticeKind::RequestDecided,
        at(1),
        Facts { approved: Some(true), seconds: Some(600), ..Facts::default() },
    )
    .await;
    let round = worker.run_once(at(2)).await.unwrap();
    assert_eq!((round.done, round.deferred), (1, 1));
    assert_eq!(pushed(&pump), ["BALANCE_LOW", "REQUEST_DECIDED"], "both pushes at once");
    assert_eq!(pump.sms.seen().len(), 1, "one SMS this minute");
    assert_eq!(worker.run_once(at(59)).await.unwrap(), Round::default());
    // Its SMS in the next minute: the hour of 2 has room, the message counted once already.
    assert_eq!(worker.run_once(at(60)).await.unwrap(), Round { claimed: 1, done: 1, ..Round::default() });
    assert_eq!(sms_texts(&pump)[1], "Your request for 10 min was approved.");
    assert_eq!(pushed(&pump).len(), 2, "the push is not sent again");
}

/// A hold told by push while its SMS waited for the gateway's minute was news: its resume is
/// told, and the hold's SMS, by then stale, is dropped.
#[tokio::test]
async fn a_hold_that_reached_the_phone_by_push_has_its_resume_told_and_its_late_sms_dropped() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let worker = pump.worker("server-1", Limits { sms_per_minute: 1, ..Limits::default() });
    let run = EntryId::new();
    pump.tell(NoticeKind::RunHeld, at(30), of_run(run, Some(HoldReason::LoadShedding))).await;
    assert_eq!(worker.run_once(at(30)).await.unwrap().deferred, 1);
    pump.tell(NoticeKind::BalanceLow, at(85), Facts::default()).await;
    assert_eq!(worker.run_once(at(85)).await.unwrap().done, 1, "the minute's SMS");
    assert_eq!(worker.run_once(at(90)).await.unwrap().deferred, 1, "pushed; its SMS waits");
    pump.tell(NoticeKind::RunResumed, at(100), of_run(run, None)).await;
    let round = worker.run_once(at(100)).await.unwrap();
    assert_eq!((round.deferred, round.dropped), (1, 1), "the resume pushed, the hold's SMS dropped");
    assert_eq!(worker.run_once(at(120)).await.unwrap().done, 1);
    assert_eq!(pushed(&pump), ["BALANCE_LOW", "RUN_HELD", "RUN_RESUMED"]);
    assert_eq!(sms_texts(&pump), ["Only 0 min left. Ask the owner for more.", "Your run is running again."]);

    // The same, the hold's SMS coming up first while another server holds the resume (and dies
    // with it): the hold's SMS is dropped alone, and the resume, free again, is told.
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let worker = pump.worker("server-1", Limits { sms_per_minute: 1, ..Limits::default() });
    pump.tell(NoticeKind::RunHeld, at(30), of_run(run, Some(HoldReason::LoadShedding))).await;
    worker.run_once(at(30)).await.unwrap();
    pump.tell(NoticeKind::BalanceLow, at(85), Facts::default()).await;
    worker.run_once(at(85)).await.unwrap();
    assert_eq!(worker.run_once(at(90)).await.unwrap().deferred, 1, "pushed; its SMS waits");
    pump.tell(NoticeKind::RunResumed, at(100), of_run(run, None)).await;
    assert_eq!(pump.store.claim_outbox("server-2", at(100), at(200), 10).await.unwrap().len(), 1);
    assert_eq!(worker.run_once(at(120)).await.unwrap(), Round { claimed: 1, dropped: 1, ..Round::default() });
    assert_eq!(worker.run_once(at(200)).await.unwrap().done, 1);
    assert_eq!(pushed(&pump), ["BALANCE_LOW", "RUN_HELD", "RUN_RESUMED"]);
    assert_eq!(sms_texts(&pump), ["Only 0 min left. Ask the owner for more.", "Your run is running again."]);
}

/// Two servers on one store: a resume whose hold another server holds right now waits and looks
/// again; once the hold is free, the server holding both drops them, and the other's late word
/// changes nothing.
#[tokio::test]
async fn a_resume_whose_hold_another_server_holds_looks_again_and_the_pair_is_dropped_once() {
    let pump = Pump::new().await;
    pump.profile("en", None).await;
    let run = EntryId::new();
    pump.tell(NoticeKind::RunHeld, at(0), of_run(run, Some(HoldReason::LoadShedding))).await;
    // Another server claims the hold and dies with it.
    let claimed = pump.store.claim_outbox("killed", at(0), at(120), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    pump.tell(NoticeKind::RunResumed, at(4), of_run(run, None)).await;
    let worker = pump.worker("server-1", Limits::default());
    assert_eq!(worker.run_once(at(4)).await.unwrap(), Round { claimed: 1, deferred: 1, ..Round::default() });
    assert_eq!(worker.run_once(at(13)).await.unwrap(), Round::default(), "it looks again 10 s later");
    assert_eq!(worker.run_once(at(14)).await.unwrap().deferred, 1);
    assert_eq!(worker.run_once(at(120)).await.unwrap(), Round { claimed: 2, dropped: 2, ..Round::default() });
    let done = pumppilot_store::Delivery::Done { at: at(121) };
    let late = pump.store.finish_outbox(claimed[0].notification.id, "killed", &done).await;
    assert!(matches!(late, Err(pumppilot_store::StoreError::ClaimLost)));
    assert_eq!((pump.expo.seen().len(), pump.sms.seen().len()), (0, 0));
}

/// A resume held back by the farmer's full hour is stale once their run has ended (its end goes
/// at once): it is dropped, whichever server comes to the end first.
#[tokio::test]
async fn a_resume_that_waited_for_the_hour_is_not_sent_after_its_run_ended() {
    for end_sent_elsewhere in [false, true] {
        let pump = Pump::new().await;
        pump.profile("en", None).await;
        let worker = pump.worker("server-1", Limits { per_person_per_hour: 1, ..Limits::default() });
        let run = EntryId::new();
        pump.tell(NoticeKind::RunHeld, at(0), of_run(run, Some(HoldReason::LoadShedding))).await;
        worker.run_once(at(0)).await.unwrap();
        assert_eq!(worker.run_once(at(60)).await.unwrap().done, 1, "the hold lasted: told, the hour full");
        pump.tell(NoticeKind::RunResumed, at(100), of_run(run, None)).await;
        assert_eq!(worker.run_once(at(100)).await.unwrap().deferred, 1, "the resume waits for the next hour");
        pump.tell(NoticeKind::RunEnded, at(200), Facts { entry_id: Some(run), ..ended() }).await;
        if end_sent_elsewhere {
            // Another server is sending the run's end (still at it when the next hour begins).
            assert_eq!(pump.store.claim_outbox("server-2", at(200), at(4000), 10).await.unwrap().len(), 1);
        } else {
            assert_eq!(
                worker.run_once(at(200)).await.unwrap(),
                Round { claimed: 1, done: 1, dropped: 1, ..Round::default() }
            );
        }
        assert_eq!(worker.run_once(at(3600)).await.unwrap().done, 0, "{end_sent_elsewhere}");
        assert!(!pushed(&pump).contains(&"RUN_RESUMED".to_owned()), "{end_sent_elsewhere}: {:?}", pushed(&pump));
    }
}
