//! The owner's day over real HTTP: the pump's terms (the most minutes per request, the price of
//! an hour), receipts of cash recharges, renaming a farmer and a new password shown once.

mod common;

use common::{PASSWORD, assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn the_owner_sets_the_most_minutes_per_request_and_the_price_per_tenant() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let other = app.tenant("qadir", 1, 0).await;
    let farmer = &t.users[0];
    let (status, terms) = farmer.get("/api/terms").await;
    assert_eq!((status, &terms), (StatusCode::OK, &json!({"maxRequestMinutes": 600, "pricePerHourTaka": null})));

    // Bad terms are refused with the field named, and change nothing.
    for bad in [
        json!({"maxRequestMinutes": 0}),
        json!({"maxRequestMinutes": 10_081}),
        json!({"maxRequestMinutes": "abc"}),
        json!({"maxRequestMinutes": 60, "pricePerHourTaka": -1}),
        json!({"maxRequestMinutes": 60, "pricePerHourTaka": 100_001}),
    ] {
        let answer = t.admin.request(Method::PUT, "/api/admin/terms", Some(bad.clone())).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    assert_eq!(t.admin.get("/api/admin/terms").await.1["maxRequestMinutes"], 600);
    let by_farmer = farmer.request(Method::PUT, "/api/admin/terms", Some(json!({"maxRequestMinutes": 9_000}))).await;
    assert_error(&by_farmer, StatusCode::FORBIDDEN, "FORBIDDEN");

    let (status, set) = t
        .admin
        .request(Method::PUT, "/api/admin/terms", Some(json!({"maxRequestMinutes": 120, "pricePerHourTaka": 150})))
        .await;
    assert_eq!((status, &set), (StatusCode::OK, &json!({"maxRequestMinutes": 120, "pricePerHourTaka": 150})));
    assert_eq!(farmer.get("/api/terms").await.1, set);
    let too_many = farmer.post("/api/minute-requests", json!({"minutes": 121})).await;
    assert_error(&too_many, StatusCode::BAD_REQUEST, "VALIDATION");
    assert!(too_many.1["error"]["message"].as_str().unwrap().contains("120"), "{}", too_many.1);
    farmer.ok("/api/minute-requests", json!({"minutes": 120})).await;

    // Another pump keeps the default.
    assert_eq!(other.users[0].get("/api/terms").await.1["maxRequestMinutes"], 600);
    other.users[0].ok("/api/minute-requests", json!({"minutes": 600})).await;

    let (_, audit) = t.admin.get("/api/admin/audit").await;
    let line = audit.as_array().unwrap().iter().find(|a| a["action"] == "terms.set").expect("audited");
    assert_eq!(line["detail"], "max 120 min, 150 taka/h");
}

#[tokio::test]
async fn a_recharge_records_the_cash_taken_with_a_receipt() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let other = app.tenant("qadir", 1, 0).await;
    let (karim, salma) = (&t.user_ids[0], &t.user_ids[1]);

    // No price: a recharge without cash has no receipt.
    let plain = t.admin.ok("/api/admin/recharge", json!({"userId": karim, "minutes": 10})).await;
    assert_eq!(plain["receiptId"], json!(null));

    t.admin
        .request(Method::PUT, "/api/admin/terms", Some(json!({"maxRequestMinutes": 600, "pricePerHourTaka": 120})))
        .await;
    // At the price: 30 minutes of 120 taka an hour are 60 taka.
    let priced = t.admin.ok("/api/admin/recharge", json!({"userId": karim, "minutes": 30})).await;
    let priced_id = priced["receiptId"].as_str().expect("a receipt").to_string();
    // The cash actually taken, when the owner says so.
    let paid = t.admin.ok("/api/admin/recharge", json!({"userId": salma, "minutes": 60, "cashTaka": 100})).await;
    assert_eq!(paid["availableSeconds"], 3600);
    let paid_id = paid["receiptId"].as_str().unwrap().to_string();

    let (status, receipt) = t.admin.get(&format!("/api/admin/receipts/{priced_id}")).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        (&receipt["userName"], &receipt["minutes"], &receipt["cashTaka"], &receipt["recordedByName"]),
        (&json!("Farmer 0"), &json!(30), &json!(60), &json!("rahim"))
    );
    let (_, listed) = t.admin.get("/api/admin/receipts").await;
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [paid_id.as_str(), priced_id.as_str()], "newest first");
    // Their numbers: the moment each was made, to the millisecond, so two made in the same minute
    // (here a few milliseconds apart) still differ.
    let numbers: Vec<&str> = listed.as_array().unwrap().iter().map(|r| r["number"].as_str().unwrap()).collect();
    assert_ne!(numbers[0], numbers[1]);
    let upper = priced_id.to_uppercase();
    assert_eq!(numbers[1], format!("{}-{}-{}", &upper[..4], &upper[4..8], &upper[8..12]));
    let (_, karims) = t.admin.get(&format!("/api/admin/receipts?userId={karim}")).await;
    assert_eq!(karims.as_array().unwrap().len(), 1);

    // Bad cash is refused and nothing is recharged, also at a price that would say too much; a
    // correction makes no receipt.
    let bad = t.admin.post("/api/admin/recharge", json!({"userId": karim, "minutes": 5, "cashTaka": -5})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION");
    let dear = json!({"maxRequestMinutes": 600, "pricePerHourTaka": 100000});
    t.admin.request(Method::PUT, "/api/admin/terms", Some(dear)).await;
    let bad = t.admin.post("/api/admin/recharge", json!({"userId": karim, "minutes": 100000})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION");
    let fixed = t.admin.ok("/api/admin/corrections", json!({"userId": karim, "minutes": -5, "note": "typo"})).await;
    assert_eq!(fixed["receiptId"], json!(null));
    assert_eq!(fixed["availableSeconds"], 35 * 60);
    assert_eq!(t.admin.get("/api/admin/receipts").await.1.as_array().unwrap().len(), 2);

    // Another pump's owner and a farmer cannot see it.
    assert_error(
        &other.admin.get(&format!("/api/admin/receipts/{priced_id}")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(&t.users[0].get("/api/admin/receipts").await, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (_, audit) = t.admin.get("/api/admin/audit").await;
    assert!(audit.as_array().unwrap().iter().any(|a| a["detail"] == "+60 min (100 taka)"), "{audit}");
}

/// A farmer opens their own receipt again (the paper lost, the cash to show): from the ledger's
/// line, by its id; never another farmer's, nor another pump's.
#[tokio::test]
async fn a_farmer_opens_their_own_receipt_and_no_one_elses() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let other = app.tenant("qadir", 1, 0).await;
    let (karim, salma) = (&t.users[0], &t.users[1]);
    let paid = json!({"userId": t.user_ids[0], "minutes": 60, "cashTaka": 100});
    let id = t.admin.ok("/api/admin/recharge", paid).await["receiptId"].as_str().unwrap().to_owned();
    let (_, wallet) = karim.get("/api/wallet").await;
    assert_eq!(wallet["ledger"][0]["receiptId"], json!(id), "the ledger's line names it: {wallet}");

    let (status, receipt) = karim.get(&format!("/api/receipts/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt, t.admin.get(&format!("/api/admin/receipts/{id}")).await.1, "the owner's very receipt");
    assert_eq!(
        (&receipt["cashTaka"], &receipt["minutes"], &receipt["recordedByName"]),
        (&json!(100), &json!(60), &json!("rahim"))
    );

    // Salma's, another pump's farmer's, a receipt that is not there, and an id that cannot be
    // one: not found. The owner's list stays the owner's.
    for (who, path) in [
        (salma, format!("/api/receipts/{id}")),
        (&other.users[0], format!("/api/receipts/{id}")),
        (karim, "/api/receipts/0190a0f0c3a07e4f9d2b7c8e1f0a1b2c".to_owned()),
        (karim, "/api/receipts/not-an-id".to_owned()),
    ] {
        assert_error(&who.get(&path).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_error(&karim.get(&format!("/api/admin/receipts/{id}")).await, StatusCode::FORBIDDEN, "FORBIDDEN");
}

/// A recharge or correction sent again with its `Idempotency-Key` (an app's retry after an answer
/// lost on a bad network, two taps at once) is made once and answered as the first was; the key
/// sent with another change is refused and changes nothing; a bad key is refused.
#[tokio::test]
async fn a_recharge_sent_again_with_its_key_is_made_once() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let other = app.tenant("qadir", 1, 0).await;
    let (karim, salma) = (&t.user_ids[0], &t.user_ids[1]);
    let send = |client: &'static str, path: &'static str, body: serde_json::Value, key: &'static str| {
        let who = if client == "rahim" { &t.admin } else { &other.admin };
        async move { who.request_with(Method::POST, path, Some(body), &[("Idempotency-Key", key)]).await }
    };
    let paid = json!({"userId": karim, "minutes": 60, "cashTaka": 100, "note": "cash at the pump"});

    let (status, first) = send("rahim", "/api/admin/recharge", paid.clone(), "3f1c-recharge-1").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // The same again, twice at once and once more later: the same receipt, the minutes once.
    let (a, b) = tokio::join!(
        send("rahim", "/api/admin/recharge", paid.clone(), "3f1c-recharge-1"),
        send("rahim", "/api/admin/recharge", paid.clone(), "3f1c-recharge-1"),
    );
    let (status, again) = send("rahim", "/api/admin/recharge", paid.clone(), "3f1c-recharge-1").await;
    assert_eq!(first["repeated"], false);
    for (status, mut answer) in [a, b, (status, again)] {
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["repeated"], true, "told apart from the first: nothing was changed now");
        answer["repeated"] = json!(false);
        assert_eq!(answer, first, "answered as the first was");
    }
    assert_eq!(first["availableSeconds"], 3600);
    assert_eq!(first["name"], "Farmer 0");
    let (_, wallet) = t.admin.get(&format!("/api/admin/users/{karim}/wallet")).await;
    assert_eq!(wallet["availableSeconds"], 3600, "{wallet}");
    assert_eq!(wallet["ledger"].as_array().unwrap().len(), 1, "{wallet}");
    // The ledger line names its receipt, and the number printed on it.
    let receipt = first["receiptId"].as_str().unwrap().to_uppercase();
    assert_eq!(wallet["ledger"][0]["receiptId"], first["receiptId"]);
    assert_eq!(
        wallet["ledger"][0]["receiptNumber"],
        format!("{}-{}-{}", &receipt[..4], &receipt[4..8], &receipt[8..12])
    );
    assert_eq!(t.admin.get("/api/admin/receipts").await.1.as_array().unwrap().len(), 1);
    let (_, audit) = t.admin.get("/api/admin/audit?action=recharge").await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");

    // The key with another change: refused, nothing changed, whatever differs.
    for changed in [
        json!({"userId": karim, "minutes": 61, "cashTaka": 100, "note": "cash at the pump"}),
        json!({"userId": karim, "minutes": 60, "cashTaka": 120, "note": "cash at the pump"}),
        json!({"userId": karim, "minutes": 60, "note": "cash at the pump"}),
        json!({"userId": salma, "minutes": 60, "cashTaka": 100, "note": "cash at the pump"}),
    ] {
        let refused = send("rahim", "/api/admin/recharge", changed, "3f1c-recharge-1").await;
        assert_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, "KEY_REUSED");
    }
    let correction = json!({"userId": karim, "minutes": 60, "note": "cash at the pump"});
    assert_error(
        &send("rahim", "/api/admin/corrections", correction, "3f1c-recharge-1").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "KEY_REUSED",
    );
    assert_eq!(t.admin.get(&format!("/api/admin/users/{salma}/wallet")).await.1["availableSeconds"], 0);
    assert_eq!(t.admin.get(&format!("/api/admin/users/{karim}/wallet")).await.1["availableSeconds"], 3600);

    // A correction sent again is made once too; a new key is a new change; another pump's key
    // is its own.
    let fix = json!({"userId": karim, "minutes": -10, "note": "counted twice"});
    for _ in 0..2 {
        let (status, fixed) = send("rahim", "/api/admin/corrections", fix.clone(), "3f1c-fix-1").await;
        assert_eq!((status, &fixed["availableSeconds"]), (StatusCode::OK, &json!(3000)), "{fixed}");
    }
    let (status, fixed) = send("rahim", "/api/admin/corrections", fix, "3f1c-fix-2").await;
    assert_eq!((status, &fixed["availableSeconds"]), (StatusCode::OK, &json!(2400)), "{fixed}");
    let theirs = json!({"userId": other.user_ids[0], "minutes": 5});
    assert_eq!(send("qadir", "/api/admin/recharge", theirs, "3f1c-recharge-1").await.0, StatusCode::OK);

    // A key that is not one: refused before anything is made.
    for bad in ["", "has space", &"k".repeat(101)] {
        let refused = t
            .admin
            .request_with(Method::POST, "/api/admin/recharge", Some(paid.clone()), &[("Idempotency-Key", bad)])
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "VALIDATION");
        assert!(refused.1["error"]["message"].as_str().unwrap().starts_with("Idempotency-Key:"), "{refused:?}");
    }
    let twice = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")];
    let refused = t.admin.request_with(Method::POST, "/api/admin/recharge", Some(paid.clone()), &twice).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_eq!(t.admin.get(&format!("/api/admin/users/{karim}/wallet")).await.1["availableSeconds"], 2400);
    // Without a key, each is its own (as before).
    t.admin.ok("/api/admin/recharge", json!({"userId": salma, "minutes": 1})).await;
    t.admin.ok("/api/admin/recharge", json!({"userId": salma, "minutes": 1})).await;
    assert_eq!(t.admin.get(&format!("/api/admin/users/{salma}/wallet")).await.1["availableSeconds"], 120);
}

#[tokio::test]
async fn the_owner_renames_a_farmer_and_gives_a_new_password_that_signs_them_out() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 5).await;
    let other = app.tenant("qadir", 1, 0).await;
    let karim = &t.user_ids[0];

    let blank = t.admin.request(Method::PATCH, &format!("/api/admin/users/{karim}"), Some(json!({"name": " "}))).await;
    assert_error(&blank, StatusCode::BAD_REQUEST, "VALIDATION");
    let (status, renamed) =
        t.admin.request(Method::PATCH, &format!("/api/admin/users/{karim}"), Some(json!({"name": "Karim Mia"}))).await;
    assert_eq!((status, &renamed["name"]), (StatusCode::OK, &json!("Karim Mia")));
    assert_eq!(t.users[0].get("/api/auth/me").await.1["name"], "Karim Mia", "a new name keeps the farmer signed in");

    let (status, reset) = t.admin.post(&format!("/api/admin/users/{karim}/password"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    let password = reset["password"].as_str().unwrap();
    assert_eq!(password.len(), 10);
    assert_eq!(reset["username"], "rahim-farmer-0");
    // The old sign-in and the old password stop at once; the new password works.
    assert_error(&t.users[0].get("/api/wallet").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let old =
        app.anonymous().post("/api/auth/login", json!({"username": "rahim-farmer-0", "password": PASSWORD})).await;
    assert_error(&old, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let again = app.login("rahim-farmer-0", password).await;
    assert_eq!(again.get("/api/wallet").await.1["availableSeconds"], 300);
    // Other farmers stay signed in.
    assert_eq!(t.users[1].get("/api/wallet").await.0, StatusCode::OK);

    // Another pump's farmer is not found here; a farmer may not do this.
    let theirs = &other.user_ids[0];
    assert_error(
        &t.admin.post(&format!("/api/admin/users/{theirs}/password"), json!({})).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    let rename_theirs =
        t.admin.request(Method::PATCH, &format!("/api/admin/users/{theirs}"), Some(json!({"name": "X"}))).await;
    assert_error(&rename_theirs, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_error(
        &t.users[1].post(&format!("/api/admin/users/{karim}/password"), json!({})).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    let (_, audit) = t.admin.get("/api/admin/audit").await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"user.edit") && actions.contains(&"user.password"), "{actions:?}");
    assert!(!audit.to_string().contains(password), "the password is never logged");
}

#[tokio::test]
async fn the_owner_moves_a_waiting_farmer_with_a_reason_and_the_others_keep_their_order() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 4, 30).await;
    let _polling = t.device.keep_polling();
    t.device.poll(false, true).await;
    for farmer in &t.users {
        farmer.ok("/api/motor/start", json!({})).await;
    }
    let order = |queue: &serde_json::Value| -> Vec<String> {
        queue["waiting"].as_array().unwrap().iter().map(|e| e["userName"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(order(&t.admin.get("/api/queue").await.1), ["Farmer 1", "Farmer 2", "Farmer 3"]);
    let last = &t.user_ids[3];

    let no_reason = t.admin.post(&format!("/api/admin/queue/{last}/move"), json!({"position": 1, "reason": " "})).await;
    assert_error(&no_reason, StatusCode::BAD_REQUEST, "VALIDATION");
    let zero = t.admin.post(&format!("/api/admin/queue/{last}/move"), json!({"position": 0, "reason": "x"})).await;
    assert_error(&zero, StatusCode::BAD_REQUEST, "VALIDATION");
    let running = &t.user_ids[0];
    let not_waiting =
        t.admin.post(&format!("/api/admin/queue/{running}/move"), json!({"position": 1, "reason": "x"})).await;
    assert_error(&not_waiting, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_error(
        &t.users[1].post(&format!("/api/admin/queue/{last}/move"), json!({"position": 1, "reason": "me first"})).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    assert_eq!(order(&t.admin.get("/api/queue").await.1), ["Farmer 1", "Farmer 2", "Farmer 3"], "nothing moved");

    let moved =
        t.admin.ok(&format!("/api/admin/queue/{last}/move"), json!({"position": 1, "reason": "sick child"})).await;
    assert_eq!(order(&moved), ["Farmer 3", "Farmer 1", "Farmer 2"]);
    assert_eq!(moved["waiting"][0]["position"], 1);
    // The farmer sees it too, and a place past the end is last.
    assert_eq!(order(&t.users[1].get("/api/queue").await.1), ["Farmer 3", "Farmer 1", "Farmer 2"]);
    let back =
        t.admin.ok(&format!("/api/admin/queue/{last}/move"), json!({"position": 99, "reason": "better now"})).await;
    assert_eq!(order(&back), ["Farmer 1", "Farmer 2", "Farmer 3"]);

    let (_, audit) = t.admin.get("/api/admin/audit").await;
    let moves: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "queue.move")
        .map(|a| a["detail"].as_str().unwrap())
        .collect();
    assert_eq!(moves, ["#1 → #3 better now", "#3 → #1 sick child"]);
}

#[tokio::test]
async fn the_audit_log_is_filtered_over_the_whole_log_a_page_at_a_time() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let (karim, jamal) = (&t.user_ids[0], &t.user_ids[1]);
    // The oldest line about Karim: a recharge; then 520 newer lines about devices.
    t.admin.ok("/api/admin/recharge", json!({"userId": karim, "minutes": 30})).await;
    let store = std::sync::Arc::clone(&app.running.app.store);
    let admin: pumppilot_engine::AdminId = t.admin_id.parse().unwrap();
    let now = app.running.app.now();
    for n in 0..520 {
        let line = pumppilot_store::AuditEntry {
            admin_id: Some(admin),
            at: now + 1000 + n,
            actor_id: Some(admin.0),
            action: "device.rotate-key".into(),
            target_id: Some(format!("device-{n}")),
            detail: format!("line {n}"),
        };
        store.append_audit(&line).await.unwrap();
    }
    let (status, everything) = t.admin.get("/api/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(everything.as_array().unwrap().len(), 500, "a page is 500 at most");

    // Karim's recharge is found behind the 520 newer lines, by action and by the farmer.
    let (_, recharges) = t.admin.get("/api/admin/audit?action=recharge").await;
    assert_eq!(recharges.as_array().unwrap().len(), 1, "{recharges}");
    assert_eq!(recharges[0]["targetId"], *karim);
    let (_, about) = t.admin.get(&format!("/api/admin/audit?about={karim}")).await;
    assert_eq!(
        about.as_array().unwrap().iter().map(|l| l["action"].as_str().unwrap()).collect::<Vec<_>>(),
        ["recharge", "user.create"]
    );
    let (_, none) = t.admin.get(&format!("/api/admin/audit?about={jamal}&action=recharge")).await;
    assert_eq!(none, json!([]));
    // Pages, and a time range.
    let (_, page) = t.admin.get("/api/admin/audit?action=device.rotate-key&offset=510&limit=20").await;
    let details: Vec<&str> = page.as_array().unwrap().iter().map(|l| l["detail"].as_str().unwrap()).collect();
    assert_eq!(details, (0..10).rev().map(|n| format!("line {n}")).collect::<Vec<_>>());
    let from = pumppilot_server::clock::rfc3339(now + 1000 + 100);
    let to = pumppilot_server::clock::rfc3339(now + 1000 + 103);
    let (_, range) = t.admin.get(&format!("/api/admin/audit?from={from}&to={to}")).await;
    let details: Vec<&str> = range.as_array().unwrap().iter().map(|l| l["detail"].as_str().unwrap()).collect();
    assert_eq!(details, ["line 102", "line 101", "line 100"]);
    // Bad parameters are refused.
    assert_error(&t.admin.get("/api/admin/audit?limit=0").await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(&t.admin.get("/api/admin/audit?limit=501").await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(&t.admin.get("/api/admin/audit?from=yesterday").await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(&t.admin.get("/api/admin/audit?offset=-1").await, StatusCode::BAD_REQUEST, "VALIDATION");
    // Another pump's lines never.
    let other = app.tenant("salam", 0, 0).await;
    assert_eq!(other.admin.get(&format!("/api/admin/audit?about={karim}")).await.1, json!([]));
}

/// A recharge that gave no cash takes the pump's price. Sent again with its key after the owner
/// changed the price, it is the very same request: answered with the first receipt (the first
/// price's cash) and made once. What was asked is compared, not what was derived: under that key
/// a recharge that gives cash (even the very taka the price made) is another change, and so is,
/// under a typed recharge's key, the same minutes at the price.
#[tokio::test]
async fn a_recharge_at_the_price_sent_again_after_the_price_changed_is_made_once() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let karim = &t.user_ids[0];
    let send = |body: serde_json::Value, key: &'static str| {
        let admin = &t.admin;
        async move { admin.request_with(Method::POST, "/api/admin/recharge", Some(body), &[("Idempotency-Key", key)]).await }
    };
    let price = |taka: Option<i64>| {
        let admin = &t.admin;
        async move {
            let terms = json!({"maxRequestMinutes": 600, "pricePerHourTaka": taka});
            assert_eq!(admin.request(Method::PUT, "/api/admin/terms", Some(terms)).await.0, StatusCode::OK);
        }
    };
    let cash_of = |answer: serde_json::Value| {
        let admin = &t.admin;
        async move {
            let id = answer["receiptId"].as_str().expect("a receipt");
            admin.get(&format!("/api/admin/receipts/{id}")).await.1["cashTaka"].clone()
        }
    };

    price(Some(120)).await;
    let at_the_price = json!({"userId": karim, "minutes": 30});
    let (status, first) = send(at_the_price.clone(), "price-1").await;
    assert_eq!((status, &first["repeated"]), (StatusCode::OK, &json!(false)), "{first}");
    assert_eq!(cash_of(first.clone()).await, 60);
    price(Some(150)).await;
    let (status, again) = send(at_the_price.clone(), "price-1").await;
    assert_eq!(status, StatusCode::OK, "the same request, whatever the price now: {again}");
    assert_eq!((&again["repeated"], &again["receiptId"]), (&json!(true), &first["receiptId"]), "{again}");
    assert_eq!(cash_of(again).await, 60, "the first receipt, at the first price");
    // Asked otherwise under the key: typed cash, even the taka the price made then.
    for typed in [60, 75] {
        let asked = json!({"userId": karim, "minutes": 30, "cashTaka": typed});
        assert_error(&send(asked, "price-1").await, StatusCode::UNPROCESSABLE_ENTITY, "KEY_REUSED");
    }

    // A recharge that typed its cash is not one at the price, whatever the price would say.
    let typed = json!({"userId": karim, "minutes": 30, "cashTaka": 75});
    assert_eq!(send(typed.clone(), "typed-1").await.0, StatusCode::OK);
    assert_eq!(send(typed, "typed-1").await.1["repeated"], true);
    assert_error(&send(at_the_price.clone(), "typed-1").await, StatusCode::UNPROCESSABLE_ENTITY, "KEY_REUSED");

    // No price at first (no receipt), a price since: the same recharge, still without a receipt.
    price(None).await;
    let (_, free) = send(at_the_price.clone(), "free-1").await;
    assert_eq!(free["receiptId"], serde_json::Value::Null, "{free}");
    price(Some(120)).await;
    let (status, again) = send(at_the_price, "free-1").await;
    assert_eq!(
        (status, &again["repeated"], &again["receiptId"]),
        (StatusCode::OK, &json!(true), &serde_json::Value::Null)
    );

    let (_, wallet) = t.admin.get(&format!("/api/admin/users/{karim}/wallet")).await;
    assert_eq!((&wallet["availableSeconds"], wallet["ledger"].as_array().unwrap().len()), (&json!(3 * 1800), 3));
    assert_eq!(t.admin.get("/api/admin/receipts").await.1.as_array().unwrap().len(), 2, "one receipt each");
}

/// A device registration sent again with its `Idempotency-Key` (a double-tapped form, a retry
/// after an answer lost on a poor link) registers one device: the repeat is answered 200 with the
/// first device, `repeated`, and without its key, which the first answer alone showed (the key that
/// answer gave works, and nothing else does); another device asked for under the key is
/// `KEY_REUSED`. Keys are each pump's own; without a key, each registration is its own device.
#[tokio::test]
async fn a_device_registered_again_with_its_key_is_registered_once() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 0, 0).await;
    let other = app.tenant("qadir", 0, 0).await;
    let register = |who: &'static str, name: &'static str, key: &'static str| {
        let admin = if who == "rahim" { &t.admin } else { &other.admin };
        let body = json!({"name": name});
        async move { admin.request_with(Method::POST, "/api/admin/devices", Some(body), &[("Idempotency-Key", key)]).await }
    };

    let count = async |what: &str| t.admin.get(what).await.1.as_array().unwrap().len();
    let (devices, registered) =
        (count("/api/admin/devices").await, count("/api/admin/audit?action=device.register").await);
    let (status, first) = register("rahim", "Field pump", "device-1").await;
    assert_eq!((status, &first["repeated"]), (StatusCode::CREATED, &json!(false)), "{first}");
    let key = first["deviceKey"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pp_dev_") && first["linkSecret"].as_str().unwrap().starts_with("pp_link_"));
    let (a, b) = tokio::join!(register("rahim", "Field pump", "device-1"), register("rahim", "Field pump", "device-1"));
    for (status, again) in [a, b, register("rahim", "Field pump", "device-1").await] {
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(
            again,
            json!({"id": first["id"], "name": "Field pump", "deviceKey": null, "linkSecret": null, "repeated": true}),
            "the first device, its key not shown again"
        );
    }
    for changed in ["Well 2", "field pump"] {
        let refused = register("rahim", changed, "device-1").await;
        assert_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, "KEY_REUSED");
        assert!(refused.1["error"]["message"].as_str().unwrap().contains("another device"), "{refused:?}");
    }
    assert_eq!(count("/api/admin/devices").await, devices + 1, "one device");
    assert_eq!(count("/api/admin/audit?action=device.register").await, registered + 1, "one audit line");
    // The first answer's key is the device's.
    let device = common::Client { token: Some(key), ..t.admin.clone() };
    assert_eq!(device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await.0, StatusCode::OK);

    // Another pump's key is its own; a new key is a new device; without a key, each is its own.
    assert_eq!(register("qadir", "Field pump", "device-1").await.0, StatusCode::CREATED);
    assert_eq!(register("rahim", "Field pump", "device-2").await.0, StatusCode::CREATED);
    for _ in 0..2 {
        assert_eq!(t.admin.post("/api/admin/devices", json!({"name": "Spare"})).await.0, StatusCode::CREATED);
    }
    assert_eq!(count("/api/admin/devices").await, devices + 4);
    let bad = t
        .admin
        .request_with(Method::POST, "/api/admin/devices", Some(json!({"name": "X"})), &[("Idempotency-Key", "a b")])
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION");
}

/// The cash a list of receipts counts: a void one counts for none.
fn cash_counted(receipts: &serde_json::Value) -> i64 {
    let receipts = receipts.as_array().expect("a list of receipts");
    receipts.iter().filter(|r| r["void"].is_null()).map(|r| r["cashTaka"].as_i64().unwrap()).sum()
}

/// The reviewer's mistake: 300 minutes typed for 30 at 120 taka an hour, a receipt of 600 taka.
/// Voided, the minutes and the cash go together: after the right recharge, the balance, the
/// receipts' cash, the ledger and the master's 30 days read as if the mistake never happened, and
/// the void receipt stays listed, marked. A void sent again (a retry after a timeout, or two at
/// once) takes nothing twice; another pump's receipt is not found; a farmer who used the minutes
/// keeps what is left, with a sentence saying how much.
#[tokio::test]
async fn a_mistaken_cash_recharge_is_voided_minutes_and_cash_together() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let other = app.tenant("qadir", 1, 0).await;
    let (karim, salma) = (&t.user_ids[0], &t.user_ids[1]);
    let master = app.master().await;
    t.admin
        .request(Method::PUT, "/api/admin/terms", Some(json!({"maxRequestMinutes": 600, "pricePerHourTaka": 120})))
        .await;
    let recharge = async |user: &str, minutes: i64, key: &str| {
        let body = json!({"userId": user, "minutes": minutes});
        let headers = [("Idempotency-Key", key)];
        let (status, balance) = t.admin.request_with(Method::POST, "/api/admin/recharge", Some(body), &headers).await;
        assert_eq!(status, StatusCode::OK, "{balance}");
        balance["receiptId"].as_str().expect("a receipt").to_string()
    };
    let void = async |receipt: &str| t.admin.post(&format!("/api/admin/receipts/{receipt}/void"), json!({})).await;
    let balance = async |user: &str| t.admin.get(&format!("/api/admin/users/{user}/wallet")).await.1;

    let mistake = recharge(karim, 300, "k1").await;
    let (_, receipt) = t.admin.get(&format!("/api/admin/receipts/{mistake}")).await;
    assert_eq!((&receipt["cashTaka"], &receipt["void"]), (&json!(600), &json!(null)), "{receipt}");
    let (status, voided) = void(&mistake).await;
    assert_eq!(status, StatusCode::OK, "{voided}");
    assert_eq!((&voided["id"], &voided["cashTaka"]), (&json!(mistake), &json!(600)), "it still says what it said");
    assert_eq!(voided["void"]["byName"], "rahim");
    assert_eq!(t.admin.get(&format!("/api/admin/receipts/{mistake}")).await.1, voided, "read back void");
    let right = recharge(karim, 30, "k2").await;

    // As if the mistake never happened: 30 min, 60 taka, wherever cash is counted.
    let wallet = balance(karim).await;
    assert_eq!(wallet["availableSeconds"], 1800, "{wallet}");
    let taken_back = &wallet["ledger"][1];
    assert_eq!(
        (&taken_back["kind"], &taken_back["deltaSeconds"], &taken_back["receiptId"]),
        (&json!("CORRECTION"), &json!(-18000), &json!(mistake)),
        "the ledger line that took the minutes back names the receipt: {wallet}"
    );
    let (_, receipts) = t.admin.get("/api/admin/receipts").await;
    let listed: Vec<&str> = receipts.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [right.as_str(), mistake.as_str()], "the void receipt stays listed");
    assert_eq!(cash_counted(&receipts), 60, "{receipts}");
    assert_eq!(cash_counted(&t.admin.get(&format!("/api/admin/receipts?userId={karim}")).await.1), 60);
    assert_eq!(master.get("/api/master/totals").await.1["cashTaka"], 60);
    let (_, audit) = t.admin.get("/api/admin/audit?action=receipt.void").await;
    let number = voided["number"].as_str().unwrap();
    assert_eq!(audit[0]["detail"], format!("-300 min (600 taka) {number}"), "{audit}");
    assert_eq!(audit[0]["targetId"], json!(karim));

    // Sent again: refused, nothing taken; another pump's owner finds no such receipt; a farmer
    // cannot void; an id that is not one is no receipt.
    let again = void(&mistake).await;
    assert_error(&again, StatusCode::CONFLICT, "ALREADY_VOID");
    assert_error(
        &other.admin.post(&format!("/api/admin/receipts/{right}/void"), json!({})).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &t.users[0].post(&format!("/api/admin/receipts/{right}/void"), json!({})).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    assert_error(&void("not-a-receipt").await, StatusCode::NOT_FOUND, "NOT_FOUND");
    let wallet = balance(karim).await;
    assert_eq!((&wallet["availableSeconds"], wallet["ledger"].as_array().unwrap().len()), (&json!(1800), 3));
    assert_eq!(t.admin.get("/api/admin/audit?action=receipt.void").await.1.as_array().unwrap().len(), 1);

    // Two at once (a retry while the first is under way), while Salma has the minutes twice over:
    // one voids, the other is told so, and the minutes are taken once.
    recharge(salma, 60, "k3").await;
    let twice = recharge(salma, 60, "k4").await;
    let (a, b) = tokio::join!(void(&twice), void(&twice));
    let (voided, refused) = if a.0 == StatusCode::OK { (a, b) } else { (b, a) };
    assert_eq!(voided.0, StatusCode::OK, "{voided:?}");
    assert_error(&refused, StatusCode::CONFLICT, "ALREADY_VOID");
    assert_eq!(balance(salma).await["availableSeconds"], 3600, "the minutes were taken once");
    assert_eq!(t.admin.get("/api/admin/audit?action=receipt.void").await.1.as_array().unwrap().len(), 2);

    // The farmer used some of the minutes: refused with what is left, nothing changed; a
    // correction by hand still takes those.
    let used = recharge(salma, 60, "k5").await;
    t.admin.ok("/api/admin/corrections", json!({"userId": salma, "minutes": -110, "note": "pumped by hand"})).await;
    let short = void(&used).await;
    assert_error(&short, StatusCode::CONFLICT, "BELOW_ZERO");
    let sentence = short.1["error"]["message"].as_str().unwrap();
    assert!(sentence.starts_with("Farmer 1 has 10 min left of the 60 min this receipt added"), "{sentence}");
    assert_eq!(t.admin.get(&format!("/api/admin/receipts/{used}")).await.1["void"], json!(null));
    assert_eq!(balance(salma).await["availableSeconds"], 600);
    assert_eq!(master.get("/api/master/totals").await.1["cashTaka"], 60 + 120 + 120);

    // The master acts for the owner, as with a recharge.
    let (status, by_master) =
        master.post(&format!("/api/admin/receipts/{right}/void?adminId={}", t.admin_id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{by_master}");
    assert_eq!(by_master["void"]["byName"], "Master admin");
    assert_eq!(master.get("/api/master/totals").await.1["cashTaka"], 120 + 120);
    assert_eq!(balance(karim).await["availableSeconds"], 0);
}
