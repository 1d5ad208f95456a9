//! The web dashboard over real HTTP: sign-in and out, each role's pages, the 403 and 404 pages,
//! CSRF tokens, the Content-Security-Policy, escaping, and Bangla.

mod common;

use common::{PASSWORD, Site, spawn_app};
use reqwest::{StatusCode, header};
use serde_json::json;

/// A browser without a script: a cookie jar, no automatic redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
}

/// One answer: status, headers and the body as text.
struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The CSRF token of the page's forms.
    fn token(&self) -> String {
        let start = self.body.find(r#"name="_csrf" value=""#).expect("a form with a token") + 20;
        self.body[start..].split('"').next().unwrap().to_string()
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Browser {
    fn new(site: &Site) -> Browser {
        let http =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, base: site.base.clone() }
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        Answer { status, headers, body: response.text().await.unwrap() }
    }

    async fn get(&self, path: &str) -> Answer {
        Self::answer(self.http.get(format!("{}{path}", self.base)).send().await.unwrap()).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }

    /// Posts a form of `page` (with its token) and follows the redirect.
    async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let token = self.get(page).await.token();
        let mut all = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        let answer = self.post(action, &all).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "POST {action}: {}", answer.body);
        self.get(answer.location()).await
    }

    /// Signs in through the form; returns where it went.
    async fn sign_in(&self, username: &str, password: &str) -> Answer {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let token = form.token();
        self.post("/login", &[("_csrf", &token), ("username", username), ("password", password)]).await
    }

    async fn signed_in(site: &Site, username: &str, password: &str) -> Browser {
        let browser = Browser::new(site);
        let answer = browser.sign_in(username, password).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "sign-in of {username}: {}", answer.body);
        browser
    }
}

#[tokio::test]
async fn behind_an_https_proxy_every_cookie_is_secure_and_on_plain_http_none_is() {
    let app = spawn_app().await;
    app.tenant("rahim", 1, 0).await;
    // No cookie store: one keeps a `Secure` cookie from an `http://` answer to itself.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for https in [true, false] {
        let with = |request: reqwest::RequestBuilder| match https {
            true => request.header("x-forwarded-proto", "https"),
            false => request,
        };
        let form = Browser::answer(with(http.get(format!("{}/login", app.base))).send().await.unwrap()).await;
        let pre = form.headers[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
        let body = format!("_csrf={}&username=rahim&password={}", encode(&form.token()), encode(PASSWORD));
        let signed = with(http.post(format!("{}/login", app.base)))
            .header(header::COOKIE, pre)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let signed = Browser::answer(signed).await;
        assert_eq!((signed.status, signed.location()), (StatusCode::SEE_OTHER, "/admin"), "{}", signed.body);
        let cookies: Vec<&str> = [&form, &signed]
            .iter()
            .flat_map(|answer| answer.headers.get_all(header::SET_COOKIE))
            .map(|value| value.to_str().unwrap())
            .collect();
        assert!(cookies.iter().any(|c| c.starts_with("pp_session=w_")), "{cookies:?}");
        for cookie in cookies {
            assert_eq!(cookie.ends_with("; Secure"), https, "https {https}: {cookie}");
        }
    }
}

#[tokio::test]
async fn each_role_signs_in_to_its_own_page_and_signing_out_ends_the_session() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;

    let anonymous = Browser::new(&app);
    let entry = anonymous.get("/").await;
    assert_eq!((entry.status, entry.location()), (StatusCode::SEE_OTHER, "/login"));
    assert_eq!(anonymous.get("/admin").await.location(), "/login", "pages need a session");

    let wrong = anonymous.sign_in("rahim", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong username or password."), "{}", wrong.body);

    for (username, home, words) in [
        (common::MASTER.0, "/master", "Add a pump owner"),
        ("rahim", "/admin", "Register a device"),
        ("rahim-farmer-0", "/user", "Your balance"),
    ] {
        let password = if username == common::MASTER.0 { common::MASTER.1 } else { PASSWORD };
        let browser = Browser::new(&app);
        let signed = browser.sign_in(username, password).await;
        assert_eq!((signed.status, signed.location()), (StatusCode::SEE_OTHER, home), "{username}");
        assert!(signed.headers[header::SET_COOKIE].to_str().unwrap().contains("HttpOnly"));
        assert_eq!(browser.get("/").await.location(), home);
        assert_eq!(browser.get("/login").await.location(), home, "signed in: the form is skipped");
        let page = browser.get(home).await;
        assert_eq!(page.status, StatusCode::OK, "{username}");
        assert!(page.body.contains(words), "{username}'s page: {}", page.body);

        let token = page.token();
        let out = browser.post("/logout", &[("_csrf", &token)]).await;
        assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/login"));
        assert_eq!(browser.get(home).await.location(), "/login", "{username} is signed out");
        assert!(browser.get("/login").await.body.contains("You are signed out."));
    }
    // Signing out revokes the session itself (the API refuses its token) and no other.
    let browser = Browser::new(&app);
    let signed = browser.sign_in("rahim-farmer-0", PASSWORD).await;
    let cookie = signed.headers[header::SET_COOKIE].to_str().unwrap();
    let session = cookie.strip_prefix("pp_session=").unwrap().split(';').next().unwrap().to_string();
    let as_bearer = common::Client { token: Some(session), ..app.anonymous() };
    assert_eq!(as_bearer.get("/api/auth/me").await.0, StatusCode::OK);
    let token = browser.get("/user").await.token();
    browser.post("/logout", &[("_csrf", &token)]).await;
    assert_eq!(as_bearer.get("/api/auth/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(t.users[0].get("/api/motor/status").await.0, StatusCode::OK, "the farmer's other session");
}

#[tokio::test]
async fn a_user_opening_admin_or_master_pages_gets_the_403_page_and_an_admin_gets_403_on_master_pages() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    for path in
        ["/admin", "/admin/farmers", "/admin/requests", "/admin/usage", "/admin/log", "/master", "/master/firmware"]
    {
        let page = farmer.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("Not for your account"), "{path}: {}", page.body);
        assert!(page.body.contains(r#"href="/user""#), "the way home");
    }
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    assert_eq!(admin.get("/master").await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.get("/master/firmware").await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.get("/user").await.status, StatusCode::FORBIDDEN);

    // A farmer's form posted to an admin action changes nothing: the API says 403.
    let token = farmer.get("/user").await.token();
    let answer = farmer
        .post("/admin/farmers", &[("_csrf", &token), ("name", "X"), ("username", "xxx"), ("password", "password1")])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let back = farmer.get(answer.location()).await;
    assert_eq!(back.status, StatusCode::FORBIDDEN);
    assert!(back.body.contains("Your account is not allowed to do this."), "{}", back.body);
    let (_, users) = t.admin.get("/api/admin/users").await;
    assert_eq!(users.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn another_tenants_farmer_is_a_404_page_and_cannot_be_changed() {
    let app = spawn_app().await;
    let rahim = app.tenant("rahim", 1, 10).await;
    let q = app.tenant("qadir", 1, 10).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let own = admin.get(&format!("/admin/farmers/{}", rahim.user_ids[0])).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("Farmer 0"));

    let theirs = admin.get(&format!("/admin/farmers/{}", q.user_ids[0])).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(theirs.body.contains("Not found"));
    assert_eq!(admin.get("/admin/farmers/not-an-id").await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.get("/admin/farmers/..%2F..%2Fmaster").await.status, StatusCode::NOT_FOUND);

    let token = own.token();
    let path = format!("/admin/farmers/{}/recharge", q.user_ids[0]);
    let answer = admin.post(&path, &[("_csrf", &token), ("minutes", "500")]).await;
    assert!(admin.get(answer.location()).await.status == StatusCode::NOT_FOUND);
    let (_, wallet) = q.users[0].get("/api/wallet").await;
    assert_eq!(wallet["availableSeconds"], 600, "Q's farmer keeps 10 minutes");
}

#[tokio::test]
async fn forms_without_a_token_or_with_another_sessions_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let other_admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let recharge = format!("/admin/farmers/{}/recharge", t.user_ids[0]);

    let none = admin.post(&recharge, &[("minutes", "30")]).await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    assert!(none.body.contains("The form had expired"), "{}", none.body);
    let wrong = admin.post(&recharge, &[("_csrf", "AAAA"), ("minutes", "30")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let theirs = other_admin.get("/admin").await.token();
    let stolen = admin.post(&recharge, &[("_csrf", &theirs), ("minutes", "30")]).await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN, "another session's token");
    let json = admin
        .http
        .post(format!("{}{recharge}", admin.base))
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("minutes=30")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::FORBIDDEN);

    // A cross-site post is refused even with the right token.
    let token = admin.get("/admin").await.token();
    let cross = admin
        .http
        .post(format!("{}{recharge}", admin.base))
        .header("sec-fetch-site", "cross-site")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("_csrf={token}&minutes=30"))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let (_, wallet) = t.admin.get(&format!("/api/admin/users/{}/wallet", t.user_ids[0])).await;
    assert_eq!(wallet["availableSeconds"], 0, "no refused form recharged anything");

    // The right token works.
    let page = admin.submit("/admin", &recharge, &[("minutes", "30"), ("name", "Farmer 0")]).await;
    assert!(page.body.contains("Farmer 0 now has 30 min."), "{}", page.body);
    let (_, wallet) = t.admin.get(&format!("/api/admin/users/{}/wallet", t.user_ids[0])).await;
    assert_eq!(wallet["availableSeconds"], 1800);

    // The sign-in form is bound to its own cookie: a post without it is refused.
    let stranger = Browser::new(&app);
    let forged = stranger.post("/login", &[("_csrf", &token), ("username", "rahim"), ("password", PASSWORD)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.headers.get(header::SET_COOKIE).is_none_or(|c| !c.to_str().unwrap().starts_with("pp_session=w_")));
}

#[tokio::test]
async fn every_page_has_a_strict_csp_and_no_inline_script_or_style_and_assets_are_cached() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let _polling = t.device.keep_polling();
    t.users[0].ok("/api/motor/start", json!({})).await;
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let master = Browser::signed_in(&app, common::MASTER.0, common::MASTER.1).await;
    let login = Browser::new(&app).get("/login").await;
    let mut pages = vec![login];
    for path in ["/user", "/user/minutes", "/user/history", "/admin"] {
        pages.push(if path.starts_with("/user") { farmer.get(path).await } else { admin.get(path).await });
    }
    for path in ["/admin/farmers", "/admin/requests", "/admin/usage", "/admin/log"] {
        pages.push(admin.get(path).await);
    }
    pages.push(admin.get(&format!("/admin/farmers/{}", t.user_ids[0])).await);
    pages.push(master.get("/master").await);
    pages.push(master.get("/master/firmware").await);
    pages.push(farmer.get("/admin").await);
    pages.push(farmer.get("/notifications").await);
    for page in &pages {
        let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{csp}");
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
        assert!(!page.body.contains("<style") && !page.body.contains(" style="), "no inline style");
        for script in page.body.split("<script").skip(1) {
            assert!(script.trim_start().starts_with("src=\"/static/"), "only our own script file: {script}");
        }
        for handler in [" onclick=", " onload=", " onsubmit=", " onerror=", "javascript:"] {
            assert!(!page.body.contains(handler), "no inline handlers: {handler}");
        }
    }
    // The assets: under a hashed name, cached for a year; a stale name does not exist.
    let page = &pages[1];
    let assets = [
        (r#"<link rel="stylesheet" href=""#, "text/css"),
        (r#"<script src=""#, "text/javascript"),
        (r#"<link rel="icon" type="image/svg+xml" href=""#, "image/svg+xml"),
    ];
    for (marker, kind) in assets {
        let start = page.body.find(marker).unwrap() + marker.len();
        let url = page.body[start..].split('"').next().unwrap();
        let asset = farmer.get(url).await;
        assert_eq!(asset.status, StatusCode::OK, "{url}");
        assert!(asset.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind));
        assert!(asset.headers[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
    }
    assert_eq!(farmer.get("/static/app-000000000000.js").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn user_text_such_as_a_script_tag_name_is_shown_escaped_everywhere() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 0, 0).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let evil = "<script>alert(1)</script>";
    let page = admin
        .submit(
            "/admin/farmers",
            "/admin/farmers",
            &[("name", evil), ("username", "01711000009"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", page.body);
    assert!(!page.body.contains(evil));
    let (_, users) = t.admin.get("/api/admin/users").await;
    let id = users[0]["id"].as_str().unwrap().to_string();
    t.admin
        .ok("/api/admin/recharge", json!({"userId": id, "minutes": 10, "note": "<img src=x onerror=alert(1)>"}))
        .await;
    let _polling = t.device.keep_polling();

    let farmer = Browser::signed_in(&app, "01711000009", PASSWORD).await;
    let token = farmer.get("/user").await.token();
    farmer.post("/user/start", &[("_csrf", &token)]).await;
    for (browser, path) in [
        (&farmer, "/user"),
        (&farmer, "/user/minutes"),
        (&admin, "/admin"),
        (&admin, &format!("/admin/farmers/{id}")),
        (&admin, "/admin/log"),
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains(evil) && !page.body.contains("<img"), "{path} shows raw user text: {}", page.body);
    }
    let minutes = farmer.get("/user/minutes").await;
    assert!(minutes.body.contains("&lt;img src=x onerror=alert(1)&gt;"), "{}", minutes.body);
}

#[tokio::test]
async fn bangla_is_chosen_remembered_and_written_with_bangla_digits() {
    let app = spawn_app().await;
    let _t = app.tenant("rahim", 1, 30).await;
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let english = farmer.get("/user").await;
    assert!(english.body.contains(r#"<html lang="en">"#) && english.body.contains("30 min"));

    let token = english.token();
    let switched = farmer.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", "/user")]).await;
    assert_eq!((switched.status, switched.location()), (StatusCode::SEE_OTHER, "/user"));
    assert!(switched.headers[header::SET_COOKIE].to_str().unwrap().starts_with("pp_lang=bn"));
    let bangla = farmer.get("/user").await;
    assert!(bangla.body.contains(r#"<html lang="bn">"#));
    assert!(bangla.body.contains("বন্ধ"), "the state in Bangla");
    assert!(bangla.body.contains("চালু করুন"), "the Start button in Bangla");
    assert!(bangla.body.contains("৩০ মিনিট"), "the balance in Bangla digits: {}", bangla.body);
    assert!(farmer.get("/user/history").await.body.contains("ব্যবহারের ইতিহাস"), "remembered on the next page");

    // A refused form speaks Bangla too: no English, no parser text, and the typed value stays.
    let bad = farmer.submit("/user/minutes", "/user/minutes", &[("minutes", "abc"), ("note", "নগদ দিয়েছি")]).await;
    assert!(bad.body.contains("যা লিখেছেন তা আবার দেখুন।"), "{}", bad.body);
    assert!(bad.body.contains("মিনিট: একটি পূর্ণ সংখ্যা লিখুন"), "{}", bad.body);
    assert!(!bad.body.contains("invalid type") && !bad.body.contains("minutes:"), "{}", bad.body);
    assert!(bad.body.contains(r#"value="abc""#) && bad.body.contains(r#"value="নগদ দিয়েছি""#), "{}", bad.body);

    // An open redirect is not possible through the language form.
    // (A browser drops a tab or a newline from a URL: `/\t/evil.example` is `//evil.example`.)
    for back in ["//evil.example/", "/\t/evil.example", "/\n/evil.example", "/\\evil.example"] {
        let away = farmer.post("/lang", &[("_csrf", &token), ("lang", "en"), ("back", back)]).await;
        assert_eq!(away.location(), "/", "{back:?}");
    }
    let kept = farmer.post("/lang", &[("_csrf", &token), ("lang", "en"), ("back", "/user/history?page=2")]).await;
    assert_eq!(kept.location(), "/user/history?page=2");

    // A browser that prefers Bangla gets it before choosing.
    let fresh = reqwest::Client::new()
        .get(format!("{}/login", app.base))
        .header(header::ACCEPT_LANGUAGE, "bn-BD,bn;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fresh.contains("সাইন ইন করুন"));
}

#[tokio::test]
async fn the_farmer_starts_waits_and_stops_with_forms_and_the_script_gets_the_apis_answer() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 30).await;
    let _polling = t.device.keep_polling();
    t.device.poll(false, true).await;
    let a = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let b = Browser::signed_in(&app, "rahim-farmer-1", PASSWORD).await;

    let page = a.submit("/user", "/user/start", &[("minutes", "15")]).await;
    assert!(page.body.contains("state-running") && page.body.contains("RUNNING"), "{}", page.body);
    assert!(page.body.contains("15 min left") || page.body.contains("14 min 5"), "{}", page.body);
    assert!(page.body.contains(">STOP<"));

    // The script posts the same form and gets the API's entry back.
    let token = b.get("/user").await.token();
    let answer = b
        .http
        .post(format!("{}/user/start", b.base))
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("_csrf={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let entry: serde_json::Value = answer.json().await.unwrap();
    assert_eq!((entry["status"].as_str(), entry["position"].as_i64()), (Some("WAITING"), Some(1)));
    let waiting = b.get("/user").await;
    assert!(waiting.body.contains("WAITING #1") && waiting.body.contains("You are next"), "{}", waiting.body);
    assert!(waiting.body.contains("Estimated wait: about 1"), "A asked for 15 minutes: {}", waiting.body);
    assert!(waiting.body.contains(">LEAVE THE QUEUE<"));
    // Leaving asks first, and then says so; B joins again for the rest of the story.
    assert!(
        waiting.body.contains(r#"data-confirm="Leave the queue? You lose your place in line.""#),
        "{}",
        waiting.body
    );
    let left = b.submit("/user", "/user/stop", &[]).await;
    assert!(left.body.contains("You left the queue."), "{}", left.body);
    assert!(!left.body.contains(r#"data-confirm="Leave"#), "nothing to confirm when not in line: {}", left.body);
    b.submit("/user", "/user/start", &[]).await;

    let stopped = a.submit("/user", "/user/stop", &[]).await;
    assert!(stopped.body.contains("Stopped. Used"), "{}", stopped.body);
    assert!(stopped.body.contains("Another farmer is pumping"), "B runs now: {}", stopped.body);
    // A's own state leads, in grey: A is not pumping, whatever the motor does.
    assert!(stopped.body.contains("state-idle") && !stopped.body.contains("state-running"), "{}", stopped.body);
    assert!(stopped.body.contains("You are not pumping and not in the queue"), "{}", stopped.body);
    let running = b.get("/user").await;
    assert!(running.body.contains("Your pump is running"));
    let history = a.get("/user/history").await;
    assert!(history.body.contains("Stopped by the farmer"), "{}", history.body);

    let bad = a.submit("/user/minutes", "/user/minutes", &[("minutes", "lots")]).await;
    assert!(bad.body.contains("Please check what you entered."), "{}", bad.body);
    assert!(bad.body.contains("Minutes: type a whole number, like 30."), "the field's rule in words: {}", bad.body);
    assert!(!bad.body.contains("invalid type") && !bad.body.contains("expected i64"), "no parser text: {}", bad.body);
    assert!(bad.body.contains(r#"value="lots""#), "what was typed is kept: {}", bad.body);
    // Shown once: the next visit has an empty form.
    assert!(!a.get("/user/minutes").await.body.contains(r#"value="lots""#));
    // A whole number over the pump's limit: the rule it broke, with the limit, not "a whole number".
    let over = a.submit("/user/minutes", "/user/minutes", &[("minutes", "99999")]).await;
    assert!(over.body.contains("Minutes: a whole number from 1 to 600."), "{}", over.body);
    // A note that would pose as other text says so, not that it is too long.
    let posing = a.submit("/user/minutes", "/user/minutes", &[("minutes", "5"), ("note", "\u{202E}paid")]).await;
    assert!(posing.body.contains("Note: letters, digits, spaces and punctuation only."), "{}", posing.body);
    // Asking for minutes, in Bangla digits.
    let asked = a.submit("/user/minutes", "/user/minutes", &[("minutes", "১৫"), ("note", "paid cash")]).await;
    assert!(asked.body.contains("Your request for 15 min was sent."), "{}", asked.body);
    let (_, requests) = t.admin.get("/api/admin/minute-requests?status=PENDING").await;
    assert_eq!(requests[0]["minutes"], 15);
    // One request waits at a time: the form gives way to a note, and the API says why.
    let minutes = a.get("/user/minutes").await;
    assert!(minutes.body.contains("request-waiting") && !minutes.body.contains("req-minutes"), "{}", minutes.body);
    let again = a.submit("/user/minutes", "/user/minutes", &[("minutes", "5")]).await;
    assert!(again.body.contains("You already have a request waiting."), "{}", again.body);
}

/// The value of the form field `name` on a page.
fn field_value(body: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = body.find(&marker).unwrap_or_else(|| panic!("a field {name}: {body}")) + marker.len();
    body[start..].split('"').next().unwrap().to_string()
}

/// The recharge form sent twice (a second tap on a slow network, a reload that sends it again)
/// recharges once; its message names the farmer as they are named now, not as the page had them;
/// each page has its own key, and a refused form keeps its key (the same change, fixed).
#[tokio::test]
async fn a_recharge_form_sent_twice_recharges_once() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let karim = &t.user_ids[0];
    let farmer_page = format!("/admin/farmers/{karim}");
    let page = admin.get(&farmer_page).await;
    let (token, key) = (page.token(), field_value(&page.body, "rechargeKey"));
    assert_ne!(key, field_value(&admin.get(&farmer_page).await.body, "rechargeKey"), "a key for each page");
    assert_ne!(key, field_value(&page.body, "correctionKey"), "a key for each form");
    // Renamed since the page was drawn.
    t.admin
        .request(reqwest::Method::PATCH, &format!("/api/admin/users/{karim}"), Some(json!({"name": "Karim Mia"})))
        .await;

    let form =
        [("_csrf", token.as_str()), ("rechargeKey", key.as_str()), ("minutes", "45"), ("cashTaka", "90"), ("note", "")];
    let first = admin.post(&format!("{farmer_page}/recharge"), &form).await;
    let second = admin.post(&format!("{farmer_page}/recharge"), &form).await;
    assert_eq!((first.status, second.status), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER), "{}", second.body);
    assert_eq!(first.location(), second.location(), "both go on to the one receipt");
    // The second is told apart: made already, nothing added now.
    let shown = admin.get(second.location()).await;
    assert!(
        shown
            .body
            .contains("This was made already (the form was sent twice): nothing was added now. Karim Mia has 45 min."),
        "{}",
        shown.body
    );
    let (_, wallet) = t.admin.get(&format!("/api/admin/users/{karim}/wallet")).await;
    assert_eq!((&wallet["availableSeconds"], wallet["ledger"].as_array().unwrap().len()), (&json!(2700), 1));
    // The ledger names the receipt: a link to the owner's page of it on the owner's ledger, to the
    // farmer's copy on the farmer's.
    let (receipt, number) =
        (wallet["ledger"][0]["receiptId"].as_str().unwrap(), wallet["ledger"][0]["receiptNumber"].as_str().unwrap());
    assert_eq!(first.location(), format!("/admin/receipts/{receipt}"));
    let owners = admin.get(&farmer_page).await.body;
    assert!(owners.contains(&format!(r#"<a href="/admin/receipts/{receipt}">{number}</a>"#)), "{owners}");
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let theirs = farmer.get("/user/minutes").await.body;
    let copy = format!(r#"Receipt no. <a href="/user/receipts/{receipt}">{number}</a>"#);
    assert!(theirs.contains(&copy) && !theirs.contains("/admin/receipts/"), "{theirs}");

    // Refused, the form comes back with its key; a correction is sent once too.
    let page = admin.get(&farmer_page).await;
    let (token, key) = (page.token(), field_value(&page.body, "correctionKey"));
    let refused = admin
        .post(&format!("{farmer_page}/correct"), &[("_csrf", &token), ("correctionKey", &key), ("minutes", "-5")])
        .await;
    let back = admin.get(refused.location()).await;
    assert!(back.body.contains("Please check what you entered."), "{}", back.body);
    assert_eq!(field_value(&back.body, "correctionKey"), key, "the refused form keeps its key");
    assert_ne!(field_value(&back.body, "rechargeKey"), key, "and the recharge beside it has its own");
    let fixed = [("_csrf", token.as_str()), ("correctionKey", key.as_str()), ("minutes", "-5"), ("note", "typo")];
    for _ in 0..2 {
        let done = admin.post(&format!("{farmer_page}/correct"), &fixed).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER);
    }
    assert_eq!(t.admin.get(&format!("/api/admin/users/{karim}/wallet")).await.1["availableSeconds"], 2400);
}

/// The recharge form left without cash takes the pump's price; sent again after the owner changed
/// the price (the first answer lost on a slow network), it is the same recharge: made once, and
/// the owner goes on to the first receipt, at the first price.
#[tokio::test]
async fn a_recharge_form_at_the_price_sent_again_after_the_price_changed_recharges_once() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let price = async |taka: i64| {
        let terms = json!({"maxRequestMinutes": 600, "pricePerHourTaka": taka});
        assert_eq!(t.admin.request(reqwest::Method::PUT, "/api/admin/terms", Some(terms)).await.0, StatusCode::OK);
    };
    let farmer_page = format!("/admin/farmers/{}", t.user_ids[0]);
    price(120).await;
    let page = admin.get(&farmer_page).await;
    let (token, key) = (page.token(), field_value(&page.body, "rechargeKey"));
    let form =
        [("_csrf", token.as_str()), ("rechargeKey", key.as_str()), ("minutes", "30"), ("cashTaka", ""), ("note", "")];
    let first = admin.post(&format!("{farmer_page}/recharge"), &form).await;
    price(150).await;
    let second = admin.post(&format!("{farmer_page}/recharge"), &form).await;
    assert_eq!((first.status, second.status), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER), "{}", second.body);
    assert!(first.location().starts_with("/admin/receipts/"), "{}", first.location());
    assert_eq!(first.location(), second.location(), "both go on to the one receipt");
    let shown = admin.get(second.location()).await;
    assert!(shown.body.contains("This was made already (the form was sent twice)"), "{}", shown.body);
    let (_, receipts) = t.admin.get("/api/admin/receipts").await;
    assert_eq!(receipts.as_array().unwrap().len(), 1, "{receipts}");
    assert_eq!(receipts[0]["cashTaka"], 60, "at the first price");
    assert_eq!(t.admin.get(&format!("/api/admin/users/{}/wallet", t.user_ids[0])).await.1["availableSeconds"], 1800);
}

/// The add-device form sent twice (a double tap, a reload of the page that showed the key)
/// registers one device: the first shows its key once; the second goes back to the pump page,
/// which says, in the reader's language, that the device was registered already and that its key
/// is not shown again (a new key is a tap away). Each page has its own key.
#[tokio::test]
async fn the_add_device_form_sent_twice_registers_one_device() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 0, 0).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let devices = t.admin.get("/api/admin/devices").await.1.as_array().unwrap().len();
    let page = admin.get("/admin").await;
    let (token, key) = (page.token(), field_value(&page.body, "registerKey"));
    assert_ne!(key, field_value(&admin.get("/admin").await.body, "registerKey"), "a key for each page");
    let form = [("_csrf", token.as_str()), ("registerKey", key.as_str()), ("name", "Field pump")];

    let first = admin.post("/admin/devices", &form).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(first.body.contains("pp_dev_") && first.body.contains("pp_link_"), "the key, once: {}", first.body);
    let second = admin.post("/admin/devices", &form).await;
    assert_eq!((second.status, second.location()), (StatusCode::SEE_OTHER, "/admin"), "{}", second.body);
    let shown = admin.get("/admin").await;
    assert!(
        shown.body.contains("Field pump was registered already (the form was sent twice): no second device was made."),
        "{}",
        shown.body
    );
    assert!(!shown.body.contains("pp_dev_"), "the key is not shown again");
    assert_eq!(t.admin.get("/api/admin/devices").await.1.as_array().unwrap().len(), devices + 1);

    // In Bangla too.
    admin.submit("/admin", "/lang", &[("lang", "bn"), ("back", "/admin")]).await;
    let token = admin.get("/admin").await.token();
    let again =
        admin.post("/admin/devices", &[("_csrf", token.as_str()), ("registerKey", &key), ("name", "Field pump")]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let shown = admin.get("/admin").await;
    assert!(shown.body.contains("আগেই নিবন্ধিত হয়েছে"), "{}", shown.body);
    assert_eq!(t.admin.get("/api/admin/devices").await.1.as_array().unwrap().len(), devices + 1);
}

/// The owner's Stop sent twice (a second tap on a slow network, a reload that sends it again)
/// names the run the page showed: the first ends it and the next in line starts; the second finds
/// it ended, says so in the reader's language, and the next farmer's run goes on.
#[tokio::test]
async fn the_stop_form_sent_twice_does_not_stop_the_next_farmers_run() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 30).await;
    t.device.poll(false, true).await;
    let karims = t.users[0].ok("/api/motor/start", json!({})).await;
    t.users[1].ok("/api/motor/start", json!({})).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let page = admin.get("/admin").await;
    let (token, entry) = (page.token(), field_value(&page.body, "entry"));
    assert_eq!(entry, karims["id"].as_str().unwrap(), "the form names the run shown");
    let form = [("_csrf", token.as_str()), ("entry", entry.as_str())];

    let first = admin.post("/admin/stop", &form).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert!(admin.get(first.location()).await.body.contains("The run of Farmer 0 was stopped."));
    let second = admin.post("/admin/stop", &form).await;
    assert_eq!(second.status, StatusCode::SEE_OTHER, "{}", second.body);
    let shown = admin.get(second.location()).await;
    assert!(shown.body.contains("That run had ended already: nothing was stopped."), "{}", shown.body);
    assert_eq!(t.users[1].status().await["me"]["state"], "RUNNING", "the next farmer's run goes on");
    assert_eq!(field_value(&shown.body, "entry"), t.users[1].status().await["me"]["entry"]["id"].as_str().unwrap());

    // In Bangla too.
    admin.submit("/admin", "/lang", &[("lang", "bn"), ("back", "/admin")]).await;
    let token = admin.get("/admin").await.token();
    let again = admin.post("/admin/stop", &[("_csrf", token.as_str()), ("entry", entry.as_str())]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let shown = admin.get(again.location()).await;
    assert!(shown.body.contains("আগেই শেষ হয়ে গেছে"), "{}", shown.body);
    assert_eq!(t.users[1].status().await["me"]["state"], "RUNNING");
}

/// An owner enrols a farmer's phone for SMS from the farmer's page: the page then says, in English
/// and Bangla, exactly what to send from the farmer's phone, and to which number.
#[tokio::test]
async fn the_owner_enrols_a_farmers_phone_from_the_farmers_page() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let farmer_page = format!("/admin/farmers/{}", t.user_ids[0]);
    let page = admin
        .submit(&farmer_page, &format!("{farmer_page}/phone"), &[("phone", "+8801711000031"), ("language", "bn")])
        .await;
    assert!(page.body.contains("Saved."), "{}", page.body);
    let (_, phone) = t.admin.get(&format!("/api/admin/users/{}/phone", t.user_ids[0])).await;
    assert_eq!((&phone["pendingPhone"], &phone["language"]), (&json!("+8801711000031"), &json!("bn")));
    let code = phone["phoneCode"].as_str().unwrap();
    let english = format!("From Farmer 0&#39;s phone, send {code} to the pump&#39;s SMS number.");
    let bangla = format!("Farmer 0-এর ফোন থেকে {code} লিখে পাম্পের এসএমএস নম্বরে পাঠান।");
    for sentence in [english, bangla] {
        assert!(
            page.body.contains(&sentence) || page.body.contains(&sentence.replace("&#39;", "'")),
            "{sentence}: {}",
            page.body
        );
    }
    let refused =
        admin.submit(&farmer_page, &format!("{farmer_page}/phone"), &[("phone", "01711"), ("language", "bn")]).await;
    assert!(!refused.body.contains("Saved."), "{}", refused.body);
    // Said with the rule, in the reader's words, and what was typed stays.
    assert!(refused.body.contains("Phone: with the country code, like +8801711000000."), "{}", refused.body);
    assert!(refused.body.contains(r#"value="01711""#), "{}", refused.body);
}

/// A number dropped after five wrong codes were texted from it: the farmer's alerts page and the
/// owner's page of the farmer say why it is gone, in English and Bangla, and show no code.
#[tokio::test]
async fn a_number_dropped_for_wrong_codes_is_said_so_where_its_code_was_shown() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let number = "+8801711000032";
    let profile = json!({"phone": number, "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
    let (_, asked) = t.users[0].request(reqwest::Method::PUT, "/api/alerts/profile", Some(profile)).await;
    let code = asked["phoneCode"].as_str().unwrap().to_owned();
    // Five wrong codes texted from it, as the SMS webhook counts them.
    let store = &app.running.app.store;
    let waiting = store.alert_profiles_pending_phone(number).await.unwrap().remove(0);
    for _ in 0..5 {
        store.count_wrong_code(waiting.user_id, waiting.pending_phone.as_ref().unwrap()).await.unwrap();
    }
    let english =
        "Too many wrong codes were texted from +8801711000032: it was dropped. Save the number again for a new code.";
    let bangla = "+8801711000032 থেকে অনেকবার ভুল কোড পাঠানো হয়েছে: নম্বরটি বাদ দেওয়া হয়েছে।";
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let farmer_page = format!("/admin/farmers/{}", t.user_ids[0]);
    for (browser, path) in [(&farmer, "/notifications"), (&admin, farmer_page.as_str())] {
        let page = browser.get(path).await;
        assert!(page.body.contains(english) && !page.body.contains(&code), "{path}: {}", page.body);
        let token = page.token();
        browser.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", path)]).await;
        let page = browser.get(path).await;
        assert!(page.body.contains(bangla), "{path}: {}", page.body);
    }
}

/// Once a farmer's number is confirmed, the farmer's alerts page and the owner's page of the
/// farmer say what it may text (the owner's in English and Bangla, to read out to the farmer);
/// an owner's own confirmed phone is told its own (STATUS), not a farmer's.
#[tokio::test]
async fn a_confirmed_phone_says_what_it_may_text() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let store = &app.running.app.store;
    for (client, number) in [(&t.users[0], "+8801711000033"), (&t.admin, "+8801711000034")] {
        let profile = json!({"phone": number, "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
        let (status, asked) = client.request(reqwest::Method::PUT, "/api/alerts/profile", Some(profile)).await;
        assert_eq!(status, StatusCode::OK, "{asked}");
        let waiting = store.alert_profiles_pending_phone(number).await.unwrap().remove(0);
        store.confirm_phone(waiting.user_id, waiting.pending_phone.as_ref().unwrap()).await.unwrap();
    }
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let own = farmer.get("/notifications").await.body;
    assert!(own.contains("Confirmed phone: +8801711000033."), "{own}");
    assert!(own.contains("From it, text the pump's SMS number:"), "{own}");
    for line in [
        "<li><strong>START</strong> — pump until you stop; START 30 for 30 min</li>",
        "<li><strong>STOP</strong> — stop, or leave the line</li>",
        "<li><strong>BAL</strong> — your balance and place in line</li>",
        "<li><strong>REQ 60</strong> — ask the owner for 60 min</li>",
    ] {
        assert!(own.contains(line), "{line}: {own}");
    }
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let owners_own = admin.get("/notifications").await.body;
    assert!(owners_own.contains("Confirmed phone: +8801711000034."), "{owners_own}");
    let status = "<li><strong>STATUS</strong> — the pump at a glance: who pumps, the line, requests, the device</li>";
    let stop = "<li><strong>STOP 4821</strong> — stop the run STATUS names by that number</li>";
    let decide =
        "<li><strong>OK 3817</strong> — approve the request STATUS names by that number; NO 3817 rejects it</li>";
    let why = "<li><strong>NO 3817 UNPAID</strong> — reject it and say why: UNPAID, AMOUNT (does not match), LESS \
               (ask for fewer) or CLOSED</li>";
    for line in [status, stop, decide, why] {
        assert!(owners_own.contains(line), "{line}: {owners_own}");
    }
    assert!(!owners_own.contains("<strong>START</strong>"), "{owners_own}");
    let farmers = admin.get(&format!("/admin/farmers/{}", t.user_ids[0])).await.body;
    for said in [
        "Farmer 0 can now text the pump's SMS number:",
        "<li><strong>REQ 60</strong> — ask the owner for 60 min</li>",
        "Farmer 0 এখন পাম্পের এসএমএস নম্বরে লিখতে পারেন:",
        "<li><strong>চাই ৬০</strong> — মালিকের কাছে ৬০ মিনিট চাওয়া</li>",
    ] {
        assert!(farmers.contains(said), "{said}: {farmers}");
    }
}

#[tokio::test]
async fn the_pump_owner_runs_the_tenant_from_the_pages() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let farmer_page = format!("/admin/farmers/{}", t.user_ids[0]);

    let page = admin
        .submit(&farmer_page, &format!("{farmer_page}/recharge"), &[("minutes", "45"), ("name", "Farmer 0")])
        .await;
    assert!(page.body.contains("Farmer 0 now has 45 min."), "{}", page.body);
    let page = admin
        .submit(&farmer_page, &format!("{farmer_page}/card"), &[("uid", "04:a1:b2:c3"), ("name", "Farmer 0")])
        .await;
    assert!(page.body.contains("Card 04A1B2C3 now belongs to Farmer 0."), "{}", page.body);
    assert!(admin.get("/admin/farmers").await.body.contains("04A1B2C3"));

    // Device registration shows the key once, and it works.
    let token = admin.get("/admin").await.token();
    let shown = admin.post("/admin/devices", &[("_csrf", &token), ("name", "Second pump")]).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.headers[header::CACHE_CONTROL], "no-store");
    let start = shown.body.find("pp_dev_").expect("the key is shown");
    let key = shown.body[start..].split(['"', '<']).next().unwrap().to_string();
    let device = common::Client { token: Some(key.clone()), ..app.anonymous() };
    assert_eq!(device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await.0, StatusCode::OK);
    // With the link secret, the values to enter on the device and their QR code.
    let secret_at = shown.body.find("pp_link_").expect("the link secret is shown");
    let secret = shown.body[secret_at..].split(['"', '<']).next().unwrap().to_string();
    assert!(shown.body.contains("<svg") && shown.body.contains("Values to enter"), "{}", shown.body);
    let server = app.base.trim_start_matches("http://");
    assert!(shown.body.contains(&format!("<code>{server}</code>")), "the server as the browser reached it");
    let home = admin.get("/admin").await.body;
    assert!(!home.contains(&key) && !home.contains(&secret), "never shown again");

    // Rotating needs the box ticked; then the old key stops working.
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    let id = devices.as_array().unwrap().iter().find(|d| d["name"] == "Second pump").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = admin.post(&format!("/admin/devices/{id}/rotate-key"), &[("_csrf", &token)]).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await.0, StatusCode::OK);
    let rotated =
        admin.post(&format!("/admin/devices/{id}/rotate-key"), &[("_csrf", &token), ("confirm", "yes")]).await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert!(rotated.body.contains("pp_dev_") && !rotated.body.contains(&key));
    assert_eq!(device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await.0, StatusCode::UNAUTHORIZED);

    // A request approved from the requests page.
    t.users[0].ok("/api/minute-requests", json!({"minutes": 20, "note": "paid 200 taka"})).await;
    let requests = admin.get("/admin/requests").await;
    assert!(requests.body.contains("paid 200 taka"));
    // The owner sees the farmer's balance now and after; a small request needs no second question.
    assert!(requests.body.contains("Balance 45 min now → 1 h 5 min after"), "{}", requests.body);
    assert!(!requests.body.contains("data-confirm=\"Give"), "{}", requests.body);
    let (_, pending) = t.admin.get("/api/admin/minute-requests?status=PENDING").await;
    let request = pending[0]["id"].as_str().unwrap().to_string();
    let page =
        admin.submit("/admin/requests", &format!("/admin/requests/{request}/approve"), &[("name", "Farmer 0")]).await;
    assert!(page.body.contains("Approved 20 min for Farmer 0."), "{}", page.body);
    assert!(page.body.contains("No requests are waiting."));

    // A run, stopped by the owner; then the usage chart and the log.
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    let pump = admin.get("/admin").await;
    assert!(pump.body.contains("Running for Farmer 0"), "{}", pump.body);
    let page = admin.submit("/admin", "/admin/stop", &[]).await;
    assert!(page.body.contains("The run of Farmer 0 was stopped."), "{}", page.body);
    let usage = admin.get("/admin/usage").await;
    assert!(usage.body.contains("<svg") && usage.body.contains("Stopped by the pump owner"), "{}", usage.body);
    assert!(usage.body.contains("/admin/usage.csv?from="), "{}", usage.body);
    assert!(
        usage.body.contains(">min<") && usage.body.contains(">Day<"),
        "the chart's axes carry units: {}",
        usage.body
    );
    // The spreadsheet: local times, names, minutes and words; named after the pump and the dates.
    let csv = admin.get("/admin/usage.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    let disposition = csv.headers[header::CONTENT_DISPOSITION].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment; filename=") && disposition.contains(".csv"), "{disposition}");
    assert!(!disposition.contains("usage.csv"), "named after the pump: {disposition}");
    let mut lines = csv.body.trim_start_matches('\u{feff}').lines();
    assert_eq!(lines.next().unwrap().split(',').next().unwrap(), "\"Day it ended\"");
    let row = lines.next().expect("the run is a row");
    assert!(row.contains("\"Farmer 0\"") && row.contains("\"Stopped by the pump owner\""), "{row}");
    assert!(!row.contains('T') || !row.contains('Z'), "no UTC timestamps: {row}");
    let log = admin.get("/admin/log").await;
    for action in [
        "Farmer added",
        "Recharge",
        "Card bound",
        "Device registered",
        "Device key replaced",
        "Request approved",
        "Run stopped",
    ] {
        assert!(log.body.contains(&format!("<strong>{action}</strong>")), "{action} in the log: {}", log.body);
    }

    // A correction: minus minutes with a reason, written in the ledger; without a reason, refused.
    let page = admin
        .submit(
            &farmer_page,
            &format!("{farmer_page}/correct"),
            &[("minutes", "−১০"), ("note", "typed 45, meant 35"), ("name", "Farmer 0")],
        )
        .await;
    assert!(page.body.contains("Corrected. Farmer 0 now has"), "{}", page.body);
    assert!(
        page.body.contains("typed 45, meant 35") && page.body.contains("Correction"),
        "in the ledger: {}",
        page.body
    );
    let refused =
        admin.submit(&farmer_page, &format!("{farmer_page}/correct"), &[("minutes", "5"), ("name", "Farmer 0")]).await;
    assert!(refused.body.contains("Please check what you entered."), "{}", refused.body);

    // A big request asks again before it is approved.
    t.users[0].ok("/api/minute-requests", json!({"minutes": 600})).await;
    let requests = admin.get("/admin/requests").await;
    assert!(requests.body.contains("data-confirm=\"Give 600 min to Farmer 0?"), "{}", requests.body);

    // Suspending from the page locks the farmer out.
    let page = admin.submit(&farmer_page, &format!("{farmer_page}/suspend"), &[]).await;
    assert!(page.body.contains("Farmer 0 is suspended."), "{}", page.body);
    let locked = Browser::new(&app).sign_in("rahim-farmer-0", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::FORBIDDEN);
    assert!(locked.body.contains("This account is suspended."));
}

/// A night's run, 23:50 to 00:20 in the viewer's zone (Bangladesh, the pages' zone until the
/// browser tells its own), is on the day it ended wherever a run has one day, and shows both days
/// wherever its start is shown: the period's runs are chosen by their end, so the bar of the day
/// it ended has its minutes (it was in the total and missing from the chart); the spreadsheet's
/// day is that day, its start and end each with its own date (the day was the start's); and the
/// tables of runs (the usage page, the farmer's page, the farmer's own history, in Bangla too)
/// say both dates (they said the start's alone). The API the app reads chooses it by its end too.
#[tokio::test]
async fn a_run_across_midnight_is_on_the_day_it_ended_everywhere() {
    let app = spawn_app().await;
    // To the next 23:50 in Bangladesh (tomorrow's, when it is later than that now), then a run of
    // 30 minutes. The clock moves first: the sessions below are signed in at 23:50, so a move of
    // up to a day cannot outlast them, whatever the hour the test runs at.
    const DAY_MS: i64 = 24 * 3_600_000;
    const ZONE_MS: i64 = 6 * 3_600_000;
    let local_now = app.running.app.now().millis() + ZONE_MS;
    let mut ten_to = (local_now.div_euclid(DAY_MS) + 1) * DAY_MS - 10 * 60_000;
    if ten_to <= local_now {
        ten_to += DAY_MS;
    }
    let next_midnight = ten_to + 10 * 60_000;
    app.clock.advance(std::time::Duration::from_millis(u64::try_from(ten_to - local_now).unwrap()));
    let t = app.tenant("rahim", 1, 120).await;
    let farmer_id = t.user_ids[0].clone();
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    app.pass_polling(std::time::Duration::from_secs(30 * 60), &t.device, false, true).await;
    t.users[0].ok("/api/motor/stop", json!({})).await;
    // The two days as the pages' queries and the spreadsheet write them, and as a table says them.
    let day = |local: i64| pumppilot_server::clock::rfc3339(pumppilot_engine::Timestamp(local))[..10].to_owned();
    let (before, ended) = (day(next_midnight - 1), day(next_midnight));
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let parts = |ymd: &str| -> (String, usize, String) {
        let month: usize = ymd[5..7].parse().unwrap();
        (ymd[8..10].trim_start_matches('0').to_string(), month, ymd[..4].to_string())
    };
    let words = |ymd: &str| {
        let (d, m, y) = parts(ymd);
        format!("{d} {} {y}", MONTHS[m - 1])
    };
    let both = format!("{}, 11:50 PM – {}, 12:20 AM", words(&before), words(&ended));

    // The last fortnight, the default: the bar of today, when the run ended, has its minutes.
    let usage = admin.get("/admin/usage").await;
    assert_eq!(usage.status, StatusCode::OK);
    let bars: Vec<&str> = usage.body.split("<title>").skip(1).filter_map(|t| t.split("</title>").next()).collect();
    let minutes = |bar: &str| bar.rsplit(": ").next().and_then(|m| m.parse::<f64>().ok());
    let days: Vec<Option<f64>> =
        bars.iter().skip_while(|t| !t.starts_with("Charged minutes per day")).skip(1).map(|b| minutes(b)).collect();
    let [.., day_before, day_it_ended] = days[..] else { panic!("{bars:?}") };
    assert_eq!((day_before, day_it_ended), (Some(0.0), Some(30.0)), "{bars:?}");
    // Its table says both days.
    assert!(usage.body.contains(&both), "{both} in {}", usage.body);
    // A period of the day before alone has no run; one of the day it ended has it.
    let only_before = admin.get(&format!("/admin/usage?from={before}&to={before}")).await.body;
    assert!(only_before.contains(">0 min in total<") && !only_before.contains(&both), "{only_before}");
    let only_ended = admin.get(&format!("/admin/usage?from={ended}&to={ended}")).await.body;
    assert!(!only_ended.contains(">0 min in total<") && only_ended.contains(&both), "{only_ended}");

    // The spreadsheet: the day it ended first, then its start and end with their dates.
    let csv = admin.get(&format!("/admin/usage.csv?from={ended}&to={ended}")).await;
    assert_eq!(csv.status, StatusCode::OK);
    let mut lines = csv.body.trim_start_matches('\u{feff}').lines();
    let columns = lines.next().unwrap();
    assert!(columns.starts_with(r#""Day it ended","Started","Ended","Farmer""#), "{columns}");
    let row = lines.next().expect("the run is a row");
    let expected = format!(r#"{ended},{before} 23:50,{ended} 00:20,"Farmer 0","#);
    assert!(row.starts_with(&expected), "{row}, not {expected}");
    assert_eq!(lines.next(), None, "{}", csv.body);
    let only_before = admin.get(&format!("/admin/usage.csv?from={before}&to={before}")).await;
    assert_eq!(only_before.body.trim_start_matches('\u{feff}').lines().count(), 1, "{}", only_before.body);

    // The farmer's page for the owner, and the farmer's own history, in English and in Bangla.
    let page = admin.get(&format!("/admin/farmers/{farmer_id}")).await.body;
    assert!(page.contains(&both), "{both} in {page}");
    let history = farmer.get("/user/history").await.body;
    assert!(history.contains(&both), "{both} in {history}");
    let token = farmer.get("/user/history").await.token();
    farmer.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", "/user/history")]).await;
    let bangla = farmer.get("/user/history").await.body;
    let bangla_day = |ymd: &str| {
        let (d, m, y) = parts(ymd);
        let months = pumppilot_server::web::i18n::BN.months;
        bangla_digits(&format!("{d} {} {y}", months[m - 1]))
    };
    let both_in_bangla = format!("{}, রাত ১১:৫০ – {}, রাত ১২:২০", bangla_day(&before), bangla_day(&ended));
    assert!(bangla.contains(&both_in_bangla), "{both_in_bangla} in {bangla}");

    // The API the app reads: the run's start and end as they were, chosen by its end.
    let (_, own) = t.users[0].get("/api/usage").await;
    let utc = |local: i64| pumppilot_server::clock::rfc3339(pumppilot_engine::Timestamp(local - ZONE_MS));
    assert_eq!(own[0]["startedAt"], utc(next_midnight - 10 * 60_000), "{own}");
    assert_eq!(own[0]["endedAt"], utc(next_midnight + 20 * 60_000), "{own}");
    let midnight = utc(next_midnight);
    let (_, from_midnight) = t.admin.get(&format!("/api/admin/usage?from={midnight}")).await;
    let (_, to_midnight) = t.admin.get(&format!("/api/admin/usage?to={midnight}")).await;
    let counts = (from_midnight.as_array().map(Vec::len), to_midnight.as_array().map(Vec::len));
    assert_eq!(counts, (Some(1), Some(0)), "from {midnight}: {from_midnight}; to it: {to_midnight}");
}

/// ASCII digits written as Bangla's.
fn bangla_digits(text: &str) -> String {
    text.chars().map(|c| c.to_digit(10).map_or(c, |d| char::from_u32(0x09E6 + d).unwrap())).collect()
}

/// The owner rejects a request with a reason chosen beside the Reject button ("No reason" first),
/// in English and Bangla; the owner's list and the farmer's own list say it in the reader's
/// language. A reason not on the list (a form made by hand) is refused with the rule in words, and
/// the request still waits.
#[tokio::test]
async fn an_owner_rejects_with_a_reason_chosen_on_the_page_and_the_farmer_reads_it() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let owner = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let asked = t.users[0].ok("/api/minute-requests", json!({"minutes": 90})).await;
    let action = format!("/admin/requests/{}/reject", asked["id"].as_str().unwrap());

    let page = owner.get("/admin/requests").await;
    let choice = concat!(
        r#"<select name="reason" aria-label="Why"><option value="">No reason</option>"#,
        r#"<option value="NOT_PAID">Payment not received</option>"#,
        r#"<option value="WRONG_AMOUNT">The payment does not match the minutes asked</option>"#,
        r#"<option value="TOO_MANY">Ask for fewer minutes</option>"#,
        r#"<option value="PUMP_CLOSED">The pump is closed for now</option></select>"#,
    );
    assert!(page.body.contains(choice), "{}", page.body);

    let refused = owner.submit("/admin/requests", &action, &[("reason", "FREE_MINUTES")]).await;
    assert!(refused.body.contains("Please check what you entered."), "{}", refused.body);
    assert!(refused.body.contains("Why: choose one from the list."), "the rule in words: {}", refused.body);
    let (_, pending) = t.admin.get("/api/admin/minute-requests?status=PENDING").await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "still waiting: {pending}");

    let rejected = owner.submit("/admin/requests", &action, &[("reason", "TOO_MANY")]).await;
    assert!(
        rejected.body.contains("Rejected the request of Farmer 0. Reason: Ask for fewer minutes."),
        "{}",
        rejected.body
    );
    assert!(rejected.body.contains(r#"<span class="reject-reason">Ask for fewer minutes</span>"#), "{}", rejected.body);
    let (_, decided) = t.admin.get("/api/admin/minute-requests?status=REJECTED").await;
    assert_eq!(decided[0]["rejectReason"], "TOO_MANY");
    let own = farmer.get("/user/minutes").await;
    assert!(own.body.contains(r#"<span class="reject-reason">Ask for fewer minutes</span>"#), "{}", own.body);

    // "No reason", in Bangla: the choice and the lists in Bangla, and a rejection without one.
    for browser in [&owner, &farmer] {
        let token = browser.get("/notifications").await.token();
        browser.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", "/")]).await;
    }
    let again = t.users[0].ok("/api/minute-requests", json!({"minutes": 30})).await;
    let page = owner.get("/admin/requests").await;
    assert!(page.body.contains(r#"aria-label="কারণ"><option value="">কারণ ছাড়া</option>"#), "{}", page.body);
    assert!(page.body.contains(r#"<option value="PUMP_CLOSED">পাম্প আপাতত বন্ধ</option>"#), "{}", page.body);
    let action = format!("/admin/requests/{}/reject", again["id"].as_str().unwrap());
    let rejected = owner.submit("/admin/requests", &action, &[("reason", "")]).await;
    assert!(rejected.body.contains("কম মিনিট চান"), "the first one's reason: {}", rejected.body);
    assert_eq!(rejected.body.matches(r#"class="reject-reason""#).count(), 1, "the second has none: {}", rejected.body);
    let (_, own) = t.users[0].get("/api/minute-requests").await;
    assert!(own[0].get("rejectReason").is_none() && own[0]["status"] == "REJECTED", "{own}");
    let own = farmer.get("/user/minutes").await;
    assert!(own.body.contains(r#"<span class="reject-reason">কম মিনিট চান</span>"#), "{}", own.body);
    assert_eq!(own.body.matches(r#"class="reject-reason""#).count(), 1, "{}", own.body);
}

/// Looking back at a rejection says why: the message after rejecting names the reason the server
/// kept, and the log's line says it in the reader's language (the API's line carries its code).
/// A rejection without a reason reads as every rejection did before reasons were logged.
#[tokio::test]
async fn the_message_after_rejecting_and_the_log_say_the_reason_in_the_readers_language() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let owner = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let reject = |request: &serde_json::Value| format!("/admin/requests/{}/reject", request["id"].as_str().unwrap());

    let first = t.users[0].ok("/api/minute-requests", json!({"minutes": 15})).await;
    let rejected = owner.submit("/admin/requests", &reject(&first), &[("reason", "NOT_PAID")]).await;
    assert!(
        rejected.body.contains("Rejected the request of Farmer 0. Reason: Payment not received."),
        "{}",
        rejected.body
    );
    let second = t.users[1].ok("/api/minute-requests", json!({"minutes": 30})).await;
    let rejected = owner.submit("/admin/requests", &reject(&second), &[("reason", "")]).await;
    assert!(rejected.body.contains("Rejected the request of Farmer 1."), "{}", rejected.body);
    assert!(!rejected.body.contains("Reason:"), "no reason given, none said: {}", rejected.body);

    let (_, audit) = t.admin.get("/api/admin/audit?action=request.reject").await;
    let details: Vec<&str> = audit.as_array().unwrap().iter().map(|a| a["detail"].as_str().unwrap()).collect();
    assert_eq!(details, ["30 min", "15 min: NOT_PAID"], "{audit}");
    let log = owner.get("/admin/log?kind=request.reject").await;
    assert!(log.body.contains(r#"data-label="Detail">15 min — Payment not received</td>"#), "{}", log.body);
    assert!(log.body.contains(r#"data-label="Detail">30 min</td>"#), "{}", log.body);

    // In Bangla: the message and the log's line.
    let token = owner.get("/notifications").await.token();
    owner.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", "/")]).await;
    let third = t.users[0].ok("/api/minute-requests", json!({"minutes": 45})).await;
    let rejected = owner.submit("/admin/requests", &reject(&third), &[("reason", "PUMP_CLOSED")]).await;
    assert!(rejected.body.contains("Farmer 0-এর অনুরোধ নামঞ্জুর হয়েছে। কারণ: পাম্প আপাতত বন্ধ।"), "{}", rejected.body);
    let log = owner.get("/admin/log?kind=request.reject").await;
    for line in ["৪৫ মিনিট — পাম্প আপাতত বন্ধ", "১৫ মিনিট — টাকা পাওয়া যায়নি", "৩০ মিনিট"]
    {
        assert!(log.body.contains(&format!(r#"data-label="বিস্তারিত">{line}</td>"#)), "{line}: {}", log.body);
    }
}

#[tokio::test]
async fn the_master_adds_suspends_and_lets_back_a_pump_owner() {
    let app = spawn_app().await;
    let master = Browser::signed_in(&app, common::MASTER.0, common::MASTER.1).await;
    let page = master
        .submit("/master", "/master", &[("name", "Rahim Uddin"), ("username", "rahim"), ("password", PASSWORD)])
        .await;
    assert!(page.body.contains("Rahim Uddin was added."), "{}", page.body);
    assert!(page.body.contains("IDLE") && page.body.contains("Offline"));
    let taken =
        master.submit("/master", "/master", &[("name", "Again"), ("username", "rahim"), ("password", PASSWORD)]).await;
    assert!(taken.body.contains("That username is taken."), "{}", taken.body);

    let owner = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let id = page.body.split("data-owner=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert!(
        page.body.contains("The owner AND ALL THEIR FARMERS are locked out"),
        "the question says it all: {}",
        page.body
    );
    let page = master.submit("/master", &format!("/master/owners/{id}/suspend"), &[]).await;
    assert!(page.body.contains("Rahim Uddin is suspended."), "{}", page.body);
    assert_eq!(owner.get("/admin").await.location(), "/login", "the owner's session ended");
    let page = master.submit("/master", &format!("/master/owners/{id}/unsuspend"), &[]).await;
    assert!(page.body.contains("Rahim Uddin can use the pump again."));
    assert_eq!(Browser::new(&app).sign_in("rahim", PASSWORD).await.location(), "/admin");
}

/// Many owners: `/master` shows a page of them with every pump's totals and a link to the next,
/// finds one by the start of their username, and the firmware page's list of owners is bounded.
#[tokio::test]
async fn the_master_sees_the_pump_owners_a_page_at_a_time() {
    let app = spawn_app().await;
    let api = app.master().await;
    for i in 0..22 {
        let name = format!("owner-{i:02}");
        api.ok("/api/master/admins", json!({"name": format!("Owner {i:02}"), "username": name, "password": PASSWORD}))
            .await;
    }
    let master = Browser::signed_in(&app, common::MASTER.0, common::MASTER.1).await;
    let rows = |body: &str| body.matches("data-owner=\"").count();

    let first = master.get("/master").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(rows(&first.body), 20, "{}", first.body);
    let totals =
        |body: &str| body.split("id=\"totals\"").nth(1).unwrap().split("</section>").next().unwrap().to_owned();
    // Every pump's totals, whatever the page: 22 owners, none with a farmer or a run.
    let all = "<h2>All pumps</h2><dl class=\"facts totals\"><dt>Pump owners</dt><dd class=\"num\"><strong>22</strong>";
    assert!(totals(&first.body).contains(all), "{}", first.body);
    assert!(first.body.contains("22 in all"), "{}", first.body);
    assert!(first.body.contains("Owner 00") && first.body.contains("Owner 19") && !first.body.contains("Owner 20"));
    assert!(first.body.contains("data-api=\"/api/master/admins?limit=20&amp;\""), "{}", first.body);
    let next =
        first.body.split("rel=\"next\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert_eq!(next, "/master?after=owner-19");

    let second = master.get(&next).await;
    assert_eq!(rows(&second.body), 2, "{}", second.body);
    assert!(second.body.contains("Owner 20") && second.body.contains("Owner 21"));
    assert!(second.body.contains("rel=\"first\" href=\"/master?\""));
    assert_eq!(totals(&second.body), totals(&first.body), "the same totals on every page");
    assert!(!second.body.contains("rel=\"next\""), "the last page");

    let found = master.get("/master?q=OWNER-1").await;
    assert_eq!(rows(&found.body), 10, "owner-10 to owner-19: {}", found.body);
    assert!(found.body.contains("10 in all"), "{}", found.body);
    assert_eq!(totals(&found.body), totals(&first.body), "and whatever the search");
    let none = master.get("/master?q=nobody").await;
    assert!(none.body.contains("No pump owner’s username begins with “nobody”."), "{}", none.body);
    assert_eq!(totals(&none.body), totals(&first.body), "even one that finds no one");
    let bad = master.get("/master?after=not%20a%20name").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // The rollout's list holds the first 50 by username, or those found.
    let firmware = master.get("/master/firmware").await;
    assert_eq!(firmware.status, StatusCode::OK);
    let found = master.get("/master/firmware?owner=owner-2").await;
    assert_eq!(found.status, StatusCode::OK);

    // One owner's pump, read by id alone.
    let id = first.body.split("data-owner=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let pump = master.get(&format!("/master/owners/{id}")).await;
    assert_eq!(pump.status, StatusCode::OK);
    assert!(pump.body.contains("Pump of Owner 00"), "{}", pump.body);
    assert_eq!(master.get("/master/owners/0123456789abcdef0123456789abcdef").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page_for_a_browser_and_json_for_the_api() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let get = |path: &str, accept: &str| http.get(format!("{}{path}", app.base)).header(header::ACCEPT, accept).send();
    let page = get("/admin/nope", "text/html,application/xhtml+xml,*/*;q=0.8").await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(page.text().await.unwrap().contains("<html"));

    for (path, accept) in [("/api/nope", "text/html"), ("/admin/nope", "application/json"), ("/nope", "*/*")] {
        let answer = get(path, accept).await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{path} with {accept}");
    }
}

#[tokio::test]
async fn the_owner_moves_a_card_only_when_asked_removes_cards_and_takes_a_farmer_out_of_the_queue() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 3, 30).await;
    let _polling = t.device.keep_polling();
    t.device.poll(false, true).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let (first, second) = (format!("/admin/farmers/{}", t.user_ids[0]), format!("/admin/farmers/{}", t.user_ids[1]));

    admin.submit(&first, &format!("{first}/card"), &[("uid", "04A1B2C3"), ("name", "Farmer 0")]).await;
    // The same card for another farmer: sent back with the question, nothing moved.
    let asked = admin.submit(&second, &format!("{second}/card"), &[("uid", "04:a1:b2:c3"), ("name", "Farmer 1")]).await;
    assert!(asked.body.contains("Card 04A1B2C3 belongs to Farmer 0. Tick the box"), "{}", asked.body);
    assert!(asked.body.contains(r#"name="move""#) && asked.body.contains(r#"value="04:a1:b2:c3""#), "{}", asked.body);
    let (_, cards) = t.admin.get("/api/admin/cards").await;
    assert_eq!(cards[0]["userId"], t.user_ids[0].as_str(), "not moved without the tick");
    let moved = admin
        .submit(&second, &format!("{second}/card"), &[("uid", "04A1B2C3"), ("name", "Farmer 1"), ("move", "yes")])
        .await;
    assert!(moved.body.contains("Card 04A1B2C3 now belongs to Farmer 1."), "{}", moved.body);

    // Removing the card: it no longer starts the pump.
    assert!(moved.body.contains("Remove card 04A1B2C3?"), "asks first: {}", moved.body);
    let removed = admin.submit(&second, &format!("{second}/cards/04A1B2C3/remove"), &[]).await;
    assert!(removed.body.contains("Card 04A1B2C3 was removed."), "{}", removed.body);
    let (_, cards) = t.admin.get("/api/admin/cards").await;
    assert_eq!(cards.as_array().unwrap().len(), 0);

    // Taking a waiting farmer out of the line needs a reason, and is in the log.
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.users[1].ok("/api/motor/start", json!({})).await;
    t.users[2].ok("/api/motor/start", json!({})).await;
    let pump = admin.get("/admin").await;
    assert!(pump.body.contains("Take someone out of the queue"), "{}", pump.body);
    let refused = admin.submit("/admin", "/admin/queue/remove", &[("user", &t.user_ids[1]), ("reason", " ")]).await;
    assert!(refused.body.contains("Say why, in a few words."), "{}", refused.body);
    let done = admin
        .submit("/admin", "/admin/queue/remove", &[("user", &t.user_ids[1]), ("reason", "not at the field")])
        .await;
    assert!(done.body.contains("Farmer 1 was taken out of the queue."), "{}", done.body);
    let (_, queue) = t.admin.get("/api/queue").await;
    assert_eq!(queue["waiting"].as_array().unwrap().len(), 1);
    assert_eq!(queue["waiting"][0]["userId"], t.user_ids[2].as_str());
    assert_eq!(queue["waiting"][0]["position"], 1);
    // The running farmer is not taken out this way.
    let running = admin.submit("/admin", "/admin/queue/remove", &[("user", &t.user_ids[0]), ("reason", "x")]).await;
    assert!(running.body.contains("Not found."), "{}", running.body);
    let log = admin.get("/admin/log").await;
    assert!(
        log.body.contains("<strong>Taken out of the queue</strong>") && log.body.contains("not at the field"),
        "{}",
        log.body
    );
}

#[tokio::test]
async fn the_bell_counts_unread_notifications_and_the_page_lists_marks_read_and_saves_how_to_hear() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 30).await;
    t.device.poll(false, true).await;
    // Farmer 0 waits behind farmer 1; their turn comes when farmer 1 stops.
    t.users[1].ok("/api/motor/start", json!({})).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.users[1].ok("/api/motor/stop", json!({})).await;
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let home = farmer.get("/user").await;
    assert!(home.body.contains(r#"<span class="bell-count" id="bell-count">1</span>"#), "{}", home.body);
    let page = farmer.get("/notifications").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your turn came: the pump is starting for you."));
    assert!(page.body.contains(r#"aria-current="page""#));

    let read = farmer.submit("/notifications", "/notifications/read", &[]).await;
    assert!(read.body.contains("All marked read."));
    assert!(!read.body.contains("bell-count"), "nothing unread, no count");

    let refused =
        farmer.submit("/notifications", "/notifications/profile", &[("phone", "01711"), ("language", "bn")]).await;
    assert!(!refused.body.contains("Saved."));
    assert_eq!(t.users[0].get("/api/alerts/profile").await.1["phone"], serde_json::Value::Null);
    let saved = farmer
        .submit(
            "/notifications",
            "/notifications/profile",
            &[("phone", "+8801711000001"), ("language", "bn"), ("quietFrom", "22:00"), ("quietTo", "06:00")],
        )
        .await;
    assert!(saved.body.contains("Saved."), "{}", saved.body);
    let profile = t.users[0].get("/api/alerts/profile").await.1;
    // The number waits to be confirmed from its phone; the page says what to send from it.
    assert_eq!((&profile["phone"], &profile["pendingPhone"]), (&serde_json::Value::Null, &json!("+8801711000001")));
    let code = profile["phoneCode"].as_str().unwrap();
    assert!(saved.body.contains("No phone confirmed yet"), "{}", saved.body);
    let send = format!("From the phone +8801711000001, send {code} to the pump&#39;s SMS number.");
    assert!(saved.body.contains(&send) || saved.body.contains(&send.replace("&#39;", "'")), "{}", saved.body);
    assert_eq!(profile["quietHours"], json!({"from": "22:00", "to": "06:00", "utcOffsetMinutes": 360}));
    // The messages (SMS, push) now come in Bangla; the page keeps writing in its own language.
    let (_, told) = t.users[0].get("/api/notifications").await;
    assert!(told["notifications"][0]["text"].as_str().unwrap().contains("আপনার পালা এসেছে"), "{told}");
    assert!(saved.body.contains("Your turn came") && !saved.body.contains("আপনার পালা এসেছে"), "{}", saved.body);
    let token = saved.token();
    farmer.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", "/notifications")]).await;
    let bangla = farmer.get("/notifications").await;
    assert!(bangla.body.contains("আপনার পালা এসেছে"), "a Bangla page, Bangla notifications: {}", bangla.body);
    // An English phone's screen asks for English, whatever the messages' language.
    let (_, english) = t.users[0].get("/api/notifications?language=en").await;
    assert!(english["notifications"][0]["text"].as_str().unwrap().contains("Your turn came"), "{english}");
    common::assert_error(
        &t.users[0].get("/api/notifications?language=fr").await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
}

/// A firmware signing key, and the signature `pumppilot firmware sign` makes with it.
fn firmware_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

fn sign_image(version: &str, image: &[u8]) -> String {
    use ed25519_dalek::Signer as _;
    use sha2::Digest as _;
    let sha256: [u8; 32] = sha2::Sha256::digest(image).into();
    let mut buf = [0u8; 128];
    let len = pumppilot_protocol::firmware::signed_message(version, image.len() as u32, &sha256, &mut buf);
    hex::encode(firmware_key().sign(&buf[..len]).to_bytes())
}

impl Browser {
    /// Posts the firmware upload form as a browser does (multipart, the files with their names).
    async fn upload(&self, token: &str, version: &str, image: &[u8], signature: &str) -> Answer {
        let boundary = "----pumppilot-test-boundary-7f3a";
        let mut body = Vec::new();
        let mut part = |name: &str, file: Option<&str>, bytes: &[u8]| {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
            );
            if let Some(file) = file {
                body.extend_from_slice(
                    format!("; filename=\"{file}\"\r\nContent-Type: application/octet-stream").as_bytes(),
                );
            }
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        };
        part("_csrf", None, token.as_bytes());
        part("image", Some("pump.bin"), image);
        // As `pumppilot firmware sign` writes it: the hex and a newline.
        part("signature", Some("pump.bin.sig"), format!("{signature}\n").as_bytes());
        part("version", None, version.as_bytes());
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let response = self
            .http
            .post(format!("{}/master/firmware", self.base))
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }
}

#[tokio::test]
async fn the_master_publishes_and_rolls_out_firmware_from_the_dashboard() {
    let public = firmware_key().verifying_key().to_bytes();
    let app = common::spawn_app_configured(|s| pumppilot_server::Settings { firmware_key: Some(public), ..s }).await;
    let t = app.tenant("rahim", 0, 0).await;
    let poll = |fw: &'static str| {
        let device = t.device.clone();
        async move {
            let (status, answer) =
                device.client.get(&format!("/api/esp32/poll?loadShedding=0&ready=1&relay=0&fw={fw}")).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            answer
        }
    };
    poll("pumppilot-fw/1.0.0").await;
    let api = app.master().await;
    let releases = || async { api.get("/api/master/firmware").await.1 };
    let master = Browser::signed_in(&app, common::MASTER.0, common::MASTER.1).await;

    let empty = master.get("/master/firmware").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No firmware published yet."), "{}", empty.body);
    assert!(empty.body.contains(r#"enctype="multipart/form-data""#));
    assert!(!empty.body.contains(r#"id="no-key""#), "the key is set");
    let token = empty.token();

    // A form without its token changes nothing.
    let image: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let forged = master.upload("not the token", "2.0.0", &image, &sign_image("2.0.0", &image)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Signed as another version: refused in words, the version typed kept, nothing published.
    let refused = master.upload(&token, "2.0.0", &image, &sign_image("2.0.1", &image)).await;
    assert_eq!((refused.status, refused.location()), (StatusCode::SEE_OTHER, "/master/firmware"));
    let page = master.get("/master/firmware").await;
    assert!(page.body.contains("The signature does not match this image, this version"), "{}", page.body);
    assert!(page.body.contains(r#"value="2.0.0""#), "the version typed is kept");
    assert_eq!(releases().await, json!([]));
    // In Bangla, the same sentence in Bangla.
    master.submit("/master/firmware", "/lang", &[("lang", "bn"), ("back", "/master/firmware")]).await;
    master.upload(&token, "2.0.0", &image, &sign_image("2.0.1", &image)).await;
    let page = master.get("/master/firmware").await;
    assert!(page.body.contains("সইটি এই ইমেজ, এই ভার্সন"), "{}", page.body);
    master.submit("/master/firmware", "/lang", &[("lang", "en"), ("back", "/master/firmware")]).await;

    // Signed right: published, meant for nobody yet.
    let published = master.upload(&token, "2.0.0", &image, &sign_image("2.0.0", &image)).await;
    assert_eq!(published.status, StatusCode::SEE_OTHER);
    let page = master.get("/master/firmware").await;
    assert!(page.body.contains("Firmware 2.0.0 is published (40,000 bytes)."), "{}", page.body);
    assert!(page.body.contains(r#"<tr data-version="2.0.0">"#));
    assert!(page.body.contains("Nobody yet"));
    assert!(page.body.contains("0 of 1 device runs it"), "{}", page.body);
    let listed = releases().await;
    assert_eq!((listed[0]["version"].as_str(), listed[0]["size"].as_u64()), (Some("2.0.0"), Some(40_000)));
    // The same version again: refused in words.
    master.upload(&token, "2.0.0", &image, &sign_image("2.0.0", &image)).await;
    assert!(master.get("/master/firmware").await.body.contains("That version is published already."));
    assert!(poll("pumppilot-fw/1.0.0").await.get("update").is_none(), "meant for nobody yet");

    // A rollout without the box ticked changes nothing.
    let unticked = master
        .submit(
            "/master/firmware",
            "/master/firmware/rollout",
            &[("version", "2.0.0"), ("to", "all"), ("percent", "100")],
        )
        .await;
    assert!(unticked.body.contains("Tick the box to confirm the rollout."), "{}", unticked.body);
    assert_eq!(releases().await[0]["rolloutPercent"], 0);
    // A share over 100 is refused, naming the rule.
    let over = master
        .submit(
            "/master/firmware",
            "/master/firmware/rollout",
            &[("version", "2.0.0"), ("to", "all"), ("percent", "150"), ("confirm", "yes")],
        )
        .await;
    assert!(over.body.contains("Share: a whole number from 0 to 100."), "{}", over.body);
    assert_eq!(releases().await[0]["rolloutPercent"], 0);

    // Rahim's pump first: his device is offered it, the page counts it.
    let first = master
        .submit(
            "/master/firmware",
            "/master/firmware/rollout",
            &[("version", "2.0.0"), ("to", &t.admin_id), ("percent", ""), ("confirm", "yes")],
        )
        .await;
    assert!(first.body.contains("Firmware 2.0.0 is now meant for: rahim first."), "{}", first.body);
    assert_eq!(releases().await[0]["rolloutTenant"], t.admin_id.as_str());
    assert_eq!(poll("pumppilot-fw/1.0.0").await["update"], "2.0.0");
    let page = master.get("/master/firmware").await;
    assert!(page.body.contains(r#"data-label="Offered">1</td>"#), "{}", page.body);

    // The owner sees where the device stands: offered, downloading, failed, up to date.
    let owner = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let chip = |state: &str, words: &str| format!(r#"data-update="{state}">{words}</span>"#);
    let page = owner.get("/admin").await;
    assert!(page.body.contains(&chip("OFFERED", "update 2.0.0 offered")), "{}", page.body);
    let download = |range: &'static str| {
        let key = t.device.client.token.clone().unwrap();
        let base = app.base.clone();
        async move {
            let answer = reqwest::Client::new()
                .get(format!("{base}/api/esp32/firmware/2.0.0"))
                .bearer_auth(key)
                .header(header::RANGE, range)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::PARTIAL_CONTENT);
        }
    };
    download("bytes=0-15999").await;
    assert!(owner.get("/admin").await.body.contains(&chip("DOWNLOADING", "downloading 2.0.0: 40%")));
    download("bytes=16000-31999").await;
    download("bytes=32000-39999").await;
    assert!(owner.get("/admin").await.body.contains(&chip("DOWNLOADING", "downloading 2.0.0: 100%")));
    // It started again a minute later, still on the old image: the new one failed.
    app.clock.advance(std::time::Duration::from_secs(60));
    let (status, _) = t
        .device
        .client
        .post(
            "/api/esp32/poll",
            json!({"loadShedding": false, "ready": true, "relay": false, "fw": "pumppilot-fw/1.0.0", "uptimeMs": 1000, "reset": "SOFTWARE"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = owner.get("/admin").await;
    assert!(page.body.contains(&chip("FAILED", "update 2.0.0 failed: it went back to the old one")), "{}", page.body);
    owner.submit("/admin", "/lang", &[("lang", "bn"), ("back", "/admin")]).await;
    assert!(owner.get("/admin").await.body.contains(&chip("FAILED", "আপডেট 2.0.0 ব্যর্থ: আগেরটিতে ফিরে গেছে")));
    // The device runs it now.
    assert!(poll("pumppilot-fw/2.0.0").await.get("update").is_none());
    assert!(owner.get("/admin").await.body.contains(&chip("UPDATED", "হালনাগাদ")));
    let page = master.get("/master/firmware").await;
    assert!(page.body.contains("1 of 1 device runs it"), "{}", page.body);
    assert!(page.body.contains(r#"data-label="Offered">0</td>"#));
    master.submit("/master/firmware", "/lang", &[("lang", "bn"), ("back", "/master/firmware")]).await;
    let page = master.get("/master/firmware").await;
    assert!(page.body.contains("১টি যন্ত্রের মধ্যে ১টিতে চলছে"), "{}", page.body);
    master.submit("/master/firmware", "/lang", &[("lang", "en"), ("back", "/master/firmware")]).await;

    // Then half of all devices.
    let half = master
        .submit(
            "/master/firmware",
            "/master/firmware/rollout",
            &[("version", "2.0.0"), ("to", "all"), ("percent", "50"), ("confirm", "yes")],
        )
        .await;
    assert!(half.body.contains("Firmware 2.0.0 is now meant for: 50% of all devices."), "{}", half.body);
    assert_eq!(
        (releases().await[0]["rolloutPercent"].as_u64(), releases().await[0]["rolloutTenant"].is_null()),
        (Some(50), true)
    );

    // An image as large as a device's OTA slot goes through the page; one byte more is refused in
    // words, by the API's limit or, far larger, by the page's own.
    let slot = pumppilot_protocol::firmware::OTA_SLOT_BYTES as usize;
    let full = vec![0x5a; slot];
    master.upload(&token, "2.1.0", &full, &sign_image("2.1.0", &full)).await;
    assert!(master.get("/master/firmware").await.body.contains("Firmware 2.1.0 is published (1,966,080 bytes)."));
    for size in [slot + 1, slot + 200 * 1024] {
        let over = vec![0x5a; size];
        let answer = master.upload(&token, "2.2.0", &over, &sign_image("2.2.0", &over)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{size}");
        let page = master.get("/master/firmware").await;
        assert!(page.body.contains("larger than a device's update slot"), "{size}: {}", page.body);
    }
    assert_eq!(releases().await.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn without_a_firmware_key_the_page_says_so_and_an_upload_is_refused_in_words() {
    let app = spawn_app().await;
    let master = Browser::signed_in(&app, common::MASTER.0, common::MASTER.1).await;
    let page = master.get("/master/firmware").await;
    assert!(page.body.contains(r#"id="no-key""#), "{}", page.body);
    let image = vec![1u8; 1000];
    let answer = master.upload(&page.token(), "2.0.0", &image, &sign_image("2.0.0", &image)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let page = master.get("/master/firmware").await;
    assert!(page.body.contains("This server has no firmware key: set PUMPPILOT_FIRMWARE_PUBLIC_KEY"), "{}", page.body);
    assert_eq!(app.master().await.get("/api/master/firmware").await.1, json!([]));
}

#[tokio::test]
async fn the_audit_log_page_filters_the_whole_log_and_pages_through_it() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let store = std::sync::Arc::clone(&app.running.app.store);
    let admin_id: pumppilot_engine::AdminId = t.admin_id.parse().unwrap();
    let now = app.running.app.now();
    // 560 lines newer than the farmer's recharge: more than the 500 the page once read.
    for n in 0..560 {
        let line = pumppilot_store::AuditEntry {
            admin_id: Some(admin_id),
            at: now + 1000 + n,
            actor_id: Some(admin_id.0),
            action: "device.rotate-key".into(),
            target_id: Some(format!("device-{n}")),
            detail: format!("line {n}"),
        };
        store.append_audit(&line).await.unwrap();
    }
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let rows = |body: &str| body.matches("<tr data-action=").count();

    let newest = admin.get("/admin/log").await;
    assert_eq!(rows(&newest.body), 50, "a page of 50");
    assert!(newest.body.contains("Lines 1 to 50, newest first."), "{}", newest.body);
    assert!(newest.body.contains("line 559") && !newest.body.contains("line 509<"), "{}", newest.body);
    assert!(newest.body.contains(r#"rel="next" href="/admin/log?page=1""#), "{}", newest.body);
    assert!(!newest.body.contains(r#"rel="prev""#));
    let second = admin.get("/admin/log?page=1").await;
    assert!(second.body.contains("Lines 51 to 100, newest first.") && second.body.contains("line 509"));
    assert!(second.body.contains(r#"rel="prev" href="/admin/log?page=0""#), "{}", second.body);

    // The farmer's recharge, 560 lines back, is found by the filter.
    let farmer = &t.user_ids[0];
    let recharges = admin.get("/admin/log?kind=recharge").await;
    assert_eq!(rows(&recharges.body), 1, "{}", recharges.body);
    assert!(recharges.body.contains("+30 min"), "{}", recharges.body);
    let about = admin.get(&format!("/admin/log?farmer={farmer}")).await;
    assert_eq!(rows(&about.body), 2, "added and recharged: {}", about.body);
    // The master, who added the pump owner, is named as such, not by a piece of an id.
    let added = admin.get("/admin/log?kind=admin.create").await;
    assert_eq!(rows(&added.body), 1, "{}", added.body);
    assert!(added.body.contains(r#"data-label="Who">Master admin<"#), "{}", added.body);
    assert!(!about.body.contains(r#"rel="next""#));
    // Days in the viewer's zone: tomorrow has nothing.
    let tomorrow = pumppilot_server::clock::rfc3339(now + 2 * 24 * 3_600_000)[..10].to_owned();
    let later = admin.get(&format!("/admin/log?from={tomorrow}")).await;
    assert_eq!(rows(&later.body), 0);
    assert!(later.body.contains("Nothing yet."));
}

#[tokio::test]
async fn far_off_dates_and_broken_queries_open_the_page_in_the_readers_language() {
    let app = spawn_app().await;
    let _t = app.tenant("rahim", 1, 30).await;
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let rows = |body: &str| body.matches("<tr data-action=").count();
    assert!(rows(&admin.get("/admin/log").await.body) >= 2, "the farmer added and recharged");

    // Years past 9998 and before 2000 are brought to the nearest: no overflow, and a filter kept.
    for path in [
        "/admin/usage?to=%2B999999-12-31",
        "/admin/usage?from=-999999-01-01&to=-999999-01-02",
        "/admin/usage.csv?to=%2B999999-12-31",
        "/admin/log?to=%2B999999-12-31",
        "/admin/log?from=-999999-01-01",
    ] {
        let answer = admin.get(path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    }
    let far = admin.get("/admin/log?from=%2B10000-01-01").await;
    assert_eq!(rows(&far.body), 0, "a day after every line: none, not all of them: {}", far.body);
    let far = admin.get("/admin/usage?from=%2B10000-01-01&to=%2B10000-01-05").await;
    assert!(far.body.contains("9998"), "the period drawn is the last one there can be");
    assert!(
        far.body.contains("No runs in this period.") && !far.body.contains(r#"<svg class="chart""#),
        "said, not drawn"
    );

    // A query that does not parse opens the page as without one, in the reader's language.
    let token = admin.get("/admin").await.token();
    admin.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", "/admin")]).await;
    for path in ["/admin/log?page=-1", "/admin/usage?from=a&from=b", "/admin/receipts/x?lang=en&lang=bn"] {
        let answer = admin.get(path).await;
        let html =
            answer.headers.get(header::CONTENT_TYPE).is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        assert!(html && answer.body.contains("lang=\"bn\""), "{path}: {} {}", answer.status, answer.body);
    }
}

#[tokio::test]
async fn a_run_held_for_the_motor_to_rest_says_why_and_when_it_starts_again() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let (status, _) = t
        .admin
        .request(
            reqwest::Method::PUT,
            "/api/admin/pump/motor",
            Some(json!({"minOffMs": 30_000, "gridSettleMs": null, "maxStartsPerHour": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/stop", json!({})).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(t.users[0].status().await["motor"]["holdReason"], "RESTART_WAIT");
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let page = farmer.get("/user").await;
    assert!(page.body.contains("The motor rests before it starts again · starts again in about"), "{}", page.body);
    let owner = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let token = owner.get("/admin").await.token();
    owner.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", "/admin")]).await;
    let pump = owner.get("/admin").await;
    assert!(pump.body.contains("মোটর আবার চালুর আগে বিশ্রাম নিচ্ছে · আনুমানিক"), "{}", pump.body);
    assert!(!pump.body.contains("RESTART_WAIT<"), "never the code: {}", pump.body);
}

#[tokio::test]
async fn everyone_changes_their_own_password_from_the_page_in_their_language() {
    let app = spawn_app().await;
    let _t = app.tenant("rahim", 1, 0).await;
    let farmer = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let elsewhere = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;
    let settings = farmer.get("/notifications").await;
    assert!(settings.body.contains(r#"href="/password""#), "linked from the settings: {}", settings.body);
    let form = farmer.get("/password").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"autocomplete="current-password""#) && form.body.contains(r#"minlength="8""#));

    // Refused in words, and what was typed is never sent back.
    let fields = |current: &'static str, new: &'static str, again: &'static str| {
        [("current_password", current), ("new_password", new), ("new_password_again", again)]
    };
    let wrong = farmer.submit("/password", "/password", &fields("wrong-guess-1", "fresh-pass-1", "fresh-pass-1")).await;
    assert!(wrong.body.contains("The current password is wrong."), "{}", wrong.body);
    let short = farmer.submit("/password", "/password", &fields(PASSWORD, "short-1", "short-1")).await;
    assert!(short.body.contains("New password: at least 8 characters."), "{}", short.body);
    let differ = farmer.submit("/password", "/password", &fields(PASSWORD, "fresh-pass-1", "fresh-pass-2")).await;
    assert!(differ.body.contains("The two new passwords are not the same."), "{}", differ.body);
    for page in [&wrong, &short, &differ] {
        for typed in ["wrong-guess-1", "short-1", "fresh-pass-1", "fresh-pass-2", PASSWORD] {
            assert!(!page.body.contains(typed), "{typed} echoed: {}", page.body);
        }
    }
    assert_eq!(elsewhere.get("/user").await.status, StatusCode::OK, "nothing changed");

    let done = farmer.submit("/password", "/password", &fields(PASSWORD, "fresh-pass-1", "fresh-pass-1")).await;
    assert!(done.body.contains("Your password is changed."), "{}", done.body);
    assert_eq!(farmer.get("/user").await.status, StatusCode::OK, "this browser stays signed in");
    assert_eq!(elsewhere.get("/user").await.location(), "/login", "the other is signed out");
    Browser::signed_in(&app, "rahim-farmer-0", "fresh-pass-1").await;

    // In Bangla.
    let owner = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let token = owner.get("/password").await.token();
    owner.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", "/password")]).await;
    let bangla = owner.get("/password").await;
    assert!(bangla.body.contains("আপনার পাসওয়ার্ড বদলান"), "{}", bangla.body);
    let wrong = owner.submit("/password", "/password", &fields("wrong-guess-1", "fresh-pass-1", "fresh-pass-1")).await;
    assert!(wrong.body.contains("বর্তমান পাসওয়ার্ড ভুল।"), "{}", wrong.body);
}

#[tokio::test]
async fn the_master_gives_a_pump_owner_a_new_password_from_the_owners_page() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 0, 0).await;
    let owner = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let master = Browser::signed_in(&app, common::MASTER.0, common::MASTER.1).await;
    let page = format!("/master/owners/{}", t.admin_id);
    let pump = master.get(&page).await;
    assert!(pump.body.contains(&format!(r#"action="/master/owners/{}/password""#, t.admin_id)), "{}", pump.body);

    let token = pump.token();
    let shown = master.post(&format!("{page}/password"), &[("_csrf", &token)]).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let password = field_text(&shown.body, "password-value");
    assert_eq!(password.len(), 10, "{}", shown.body);
    assert!(shown.body.contains("Give it to the pump owner now."));
    assert_eq!(owner.get("/admin").await.location(), "/login", "the owner is signed out");
    Browser::signed_in(&app, "rahim", &password).await;

    // An owner cannot.
    let own = Browser::signed_in(&app, "rahim", &password).await;
    let token = own.get("/admin").await.token();
    let refused = own.post(&format!("{page}/password"), &[("_csrf", &token)]).await;
    assert_eq!(refused.location(), page.as_str(), "back with the API's refusal");
    Browser::signed_in(&app, "rahim", &password).await;
}

/// The text of the textarea `id` (a password shown once).
fn field_text(body: &str, id: &str) -> String {
    let start = body.find(&format!(r#"id="{id}""#)).expect("the field");
    let after = &body[start..];
    let open = after.find('>').unwrap() + 1;
    after[open..].split('<').next().unwrap().to_string()
}

/// A receipt voided from its page: its form asks first (`data-confirm`), the page then marks it
/// VOID (in Bangla too) without the form, the usage page lists it marked and counts its cash
/// nowhere, nor does the master's page of the pump; the form sent again from the old page is told,
/// in words, that it was voided already; a receipt whose minutes the farmer used is not voided,
/// and the page says how many are left and where to correct by hand.
#[tokio::test]
async fn a_receipt_voided_from_its_page_is_marked_and_counts_for_no_cash() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let (karim, salma) = (&t.user_ids[0], &t.user_ids[1]);
    let terms = json!({"maxRequestMinutes": 600, "pricePerHourTaka": 120});
    t.admin.request(reqwest::Method::PUT, "/api/admin/terms", Some(terms)).await;
    let mistake = t.admin.ok("/api/admin/recharge", json!({"userId": karim, "minutes": 300})).await;
    let mistake = mistake["receiptId"].as_str().unwrap().to_string();
    let paid = t.admin.ok("/api/admin/recharge", json!({"userId": salma, "minutes": 60, "cashTaka": 100})).await;
    let paid = paid["receiptId"].as_str().unwrap().to_string();
    let number = t.admin.get(&format!("/api/admin/receipts/{mistake}")).await.1["number"].as_str().unwrap().to_string();
    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;

    let page_of = |id: &str| format!("/admin/receipts/{id}");
    let page = admin.get(&page_of(&mistake)).await;
    assert!(!page.body.contains("void-mark"), "{}", page.body);
    let form =
        format!(r#"<form method="post" action="/admin/receipts/{mistake}/void" data-confirm="Void receipt {number}? "#);
    assert!(page.body.contains(&form), "a form that asks first: {}", page.body);
    assert!(page.body.contains("600 taka no longer counts as cash taken"), "{}", page.body);
    let voided = admin.submit(&page_of(&mistake), &format!("/admin/receipts/{mistake}/void"), &[]).await;
    assert!(voided.body.contains(&format!("Receipt {number} is void:")), "{}", voided.body);
    assert!(voided.body.contains(r#"<span class="tag bad" id="void-mark">VOID</span>"#), "{}", voided.body);
    assert!(
        voided.body.contains("Voided ") && !voided.body.contains("/void\""),
        "no form on a void one: {}",
        voided.body
    );
    let bangla = admin.get(&format!("{}?lang=bn", page_of(&mistake))).await;
    assert!(bangla.body.contains(r#"id="void-mark">বাতিল</span>"#), "{}", bangla.body);
    assert_eq!(t.admin.get(&format!("/api/admin/users/{karim}/wallet")).await.1["availableSeconds"], 0);
    // The farmer's ledger names the receipt its minutes were taken back for.
    let ledger = admin.get(&format!("/admin/farmers/{karim}")).await.body;
    let named = format!(r#"Voided receipt no. <a href="/admin/receipts/{mistake}">{number}</a>"#);
    assert!(ledger.contains(&named), "{ledger}");

    // Listed, marked, and its cash counted nowhere.
    let usage = admin.get("/admin/usage").await.body;
    assert!(usage.contains("Cash taken in these days: 100 taka"), "{usage}");
    assert!(usage.contains(r#"<tr class="void">"#) && usage.contains("<s>600 taka</s>"), "{usage}");
    let master = Browser::signed_in(&app, "master", "master-password").await;
    let pump = master.get(&format!("/master/owners/{}", t.admin_id)).await.body;
    assert!(pump.contains("<strong>100 taka</strong>"), "{pump}");

    // The form of the old page sent again: said in words, nothing changed.
    let again = admin.post(&format!("/admin/receipts/{mistake}/void"), &[("_csrf", &page.token())]).await;
    let again = admin.get(again.location()).await;
    assert!(again.body.contains("This receipt was voided already. Nothing was changed."), "{}", again.body);

    // Salma pumped 50 of her 60 minutes: refused, with what is left and the way to correct.
    t.admin.ok("/api/admin/corrections", json!({"userId": salma, "minutes": -50, "note": "pumped"})).await;
    let short = admin.submit(&page_of(&paid), &format!("/admin/receipts/{paid}/void"), &[]).await;
    assert!(short.body.contains("A balance cannot go below zero"), "{}", short.body);
    assert!(
        short.body.contains("Farmer 1 has 10 min left of the 60 min this receipt added, so it cannot be voided."),
        "{}",
        short.body
    );
    assert!(short.body.contains(&format!(r#"href="/admin/farmers/{salma}#correction""#)), "{}", short.body);
    assert!(!short.body.contains("void-mark"), "{}", short.body);
}

/// A farmer opens their receipt from the ledger's line: the paper as the owner prints it (the cash
/// paid, the owner named), with print and the other language, and no form to void it; another
/// farmer's copy is a 404 page, and so is an id that cannot be one.
#[tokio::test]
async fn a_farmer_opens_their_receipt_from_the_ledger() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let paid =
        t.admin.ok("/api/admin/recharge", json!({"userId": t.user_ids[0], "minutes": 60, "cashTaka": 100})).await;
    let id = paid["receiptId"].as_str().unwrap().to_string();
    let number = t.admin.get(&format!("/api/admin/receipts/{id}")).await.1["number"].as_str().unwrap().to_string();
    let karim = Browser::signed_in(&app, "rahim-farmer-0", PASSWORD).await;

    let minutes = karim.get("/user/minutes").await.body;
    let link = format!(r#"Receipt no. <a href="/user/receipts/{id}">{number}</a>"#);
    assert!(minutes.contains(&link), "{minutes}");
    let page = karim.get(&format!("/user/receipts/{id}")).await;
    assert_eq!(page.status, reqwest::StatusCode::OK, "{}", page.body);
    for shown in [number.as_str(), "100 taka", "PumpPilot · rahim", r#"id="print-receipt""#, r#"href="/user/receipts/"#]
    {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(!page.body.contains("/void"), "no void for the farmer: {}", page.body);
    let bangla = karim.get(&format!("/user/receipts/{id}?lang=bn")).await.body;
    assert!(bangla.contains("১০০ টাকা"), "{bangla}");

    let salma = Browser::signed_in(&app, "rahim-farmer-1", PASSWORD).await;
    for path in [format!("/user/receipts/{id}"), "/user/receipts/..%2Fadmin%2Fusers".to_owned()] {
        let page = salma.get(&path).await;
        assert_eq!(page.status, reqwest::StatusCode::NOT_FOUND, "{path}: {}", page.body);
        assert!(!page.body.contains(&number), "{}", page.body);
    }
}

/// The values a page gives `attribute` (`data-confirm="…"`), as the page wrote them.
fn attribute_values<'a>(body: &'a str, attribute: &str) -> Vec<&'a str> {
    body.split(&format!(r#" {attribute}=""#)).skip(1).filter_map(|rest| rest.split('"').next()).collect()
}

/// The message of the last action at the top of a page, its tags taken out.
fn flash_words(body: &str) -> String {
    let start = body.find(r#"<div class="flash "#).unwrap_or_else(|| panic!("a message: {body}"));
    let div = &body[start..];
    let inner = &div[div.find('>').unwrap() + 1..div.find("</div>").unwrap()];
    let mut words = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => words.push(c),
            _ => {}
        }
    }
    words
}

/// A sentence wholly in Bangla: Bangla letters, and once the ids it may name are taken out (a
/// receipt's number, a card's), no ASCII letter or digit: no English word, unit or digit.
fn assert_bangla(sentence: &str, ids: &[&str]) {
    let rest = ids.iter().fold(sentence.to_string(), |rest, id| rest.replace(id, ""));
    assert!(rest.chars().any(|c| ('\u{0980}'..='\u{09FF}').contains(&c)), "not Bangla: {sentence}");
    assert!(!rest.chars().any(|c| c.is_ascii_alphanumeric()), "English in a Bangla sentence: {sentence}");
}

/// Chooses Bangla from `page`'s language switch; remembered for the next pages.
async fn choose_bangla(browser: &Browser, page: &str) {
    let token = browser.get(page).await.token();
    let chosen = browser.post("/lang", &[("_csrf", &token), ("lang", "bn"), ("back", page)]).await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER);
}

/// Every question a dashboard form asks before it is sent (`data-confirm`, and the farmer's
/// "leave the queue?" that the script puts there) is in the page's language: on Bangla pages,
/// Bangla throughout, numbers in Bangla digits, no English word or unit. The receipt shown in the
/// farmer's Bangla (`?lang=bn`) to an owner who reads English asks to void it in Bangla and
/// answers in Bangla (it went back to English): voided, voided already, and refused for minutes
/// used with how many are left. The messages after other forms on a Bangla page are Bangla too.
#[tokio::test]
async fn a_bangla_page_asks_and_answers_in_bangla() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let (karim, salma) = (t.user_ids[0].clone(), t.user_ids[1].clone());
    // Bangla names: an ASCII letter or digit left in a Bangla sentence is then English.
    for (id, name) in [(&karim, "করিম"), (&salma, "সালমা")] {
        let (status, body) = t
            .admin
            .request(reqwest::Method::PATCH, &format!("/api/admin/users/{id}"), Some(json!({"name": name})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let terms = json!({"maxRequestMinutes": 600, "pricePerHourTaka": 120});
    t.admin.request(reqwest::Method::PUT, "/api/admin/terms", Some(terms)).await;
    let mistake = t.admin.ok("/api/admin/recharge", json!({"userId": karim, "minutes": 60})).await;
    let mistake = mistake["receiptId"].as_str().unwrap().to_string();
    let paid = t.admin.ok("/api/admin/recharge", json!({"userId": salma, "minutes": 60, "cashTaka": 100})).await;
    let paid = paid["receiptId"].as_str().unwrap().to_string();
    let number_of = async |id: &str| {
        t.admin.get(&format!("/api/admin/receipts/{id}")).await.1["number"].as_str().unwrap().to_string()
    };
    let (number, paid_number) = (number_of(&mistake).await, number_of(&paid).await);
    const CARD: &str = "04A1B2C3";
    t.admin.ok(&format!("/api/admin/users/{karim}/rfid"), json!({"uid": CARD})).await;
    // Karim pumps, Salma waits and asks for 600 minutes (a request that asks twice).
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.users[1].ok("/api/motor/start", json!({})).await;
    t.users[1].ok("/api/minute-requests", json!({"minutes": 600})).await;

    let admin = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let farmer = Browser::signed_in(&app, "rahim-farmer-1", PASSWORD).await;
    let master = Browser::signed_in(&app, "master", "master-password").await;
    let receipt_bn = format!("/admin/receipts/{mistake}?lang=bn");

    // The receipt in the farmer's Bangla, to an owner who reads English: the question is Bangla,
    // and the form keeps the receipt's language.
    let page = admin.get(&receipt_bn).await;
    assert!(page.body.contains(r#"<html lang="bn">"#), "{}", page.body);
    let asks = format!(
        r#"<form method="post" action="/admin/receipts/{mistake}/void?lang=bn" data-confirm="রসিদ {number} বাতিল করবেন? করিম-এর কাছ থেকে ৬০ মিনিট ফেরত নেওয়া হবে।">"#
    );
    assert!(page.body.contains(&asks), "{asks} in {}", page.body);

    // Every question of every Bangla page, each role's.
    choose_bangla(&farmer, "/user").await;
    choose_bangla(&master, "/master").await;
    let owner_bn = Browser::signed_in(&app, "rahim", PASSWORD).await;
    choose_bangla(&owner_bn, "/admin").await;
    let pages: [(&Browser, String, usize); 8] = [
        (&owner_bn, "/admin".into(), 2),
        (&owner_bn, "/admin/requests".into(), 1),
        (&owner_bn, format!("/admin/farmers/{karim}"), 4),
        (&owner_bn, format!("/admin/receipts/{mistake}"), 1),
        (&farmer, "/user".into(), 2),
        (&master, "/master".into(), 1),
        (&master, format!("/master/owners/{}", t.admin_id), 1),
        (&admin, receipt_bn.clone(), 1),
    ];
    for (browser, path, at_least) in pages {
        let body = browser.get(&path).await.body;
        assert!(body.contains(r#"<html lang="bn">"#), "{path} in Bangla: {body}");
        let mut questions = attribute_values(&body, "data-confirm");
        questions.extend(attribute_values(&body, "data-leave"));
        assert!(questions.len() >= at_least, "{path} asks {at_least} questions: {questions:?}");
        for question in questions {
            assert_bangla(question, &[&number, CARD]);
        }
    }

    // Voided from the Bangla receipt: back on it in Bangla, with the message in Bangla.
    let voided = admin.post(&format!("/admin/receipts/{mistake}/void?lang=bn"), &[("_csrf", &page.token())]).await;
    assert_eq!(voided.location(), receipt_bn);
    let voided = admin.get(voided.location()).await.body;
    let said = flash_words(&voided);
    assert_eq!(said, format!("রসিদ {number} বাতিল হয়েছে: করিম-এর কাছ থেকে ৬০ মিনিট ফেরত নেওয়া হয়েছে।"));
    assert!(voided.contains(r#"id="void-mark">বাতিল</span>"#), "{voided}");
    // The old page's form sent again: voided already, said in Bangla.
    let again = admin.post(&format!("/admin/receipts/{mistake}/void?lang=bn"), &[("_csrf", &page.token())]).await;
    let again = admin.get(again.location()).await.body;
    assert_eq!(flash_words(&again), "এই রসিদ আগেই বাতিল হয়েছে। কিছু বদলানো হয়নি।");

    // Salma used 50 of her receipt's 60 minutes: refused, and what is left said, in Bangla.
    t.admin.ok("/api/admin/corrections", json!({"userId": salma, "minutes": -50, "note": "pumped"})).await;
    let paid_bn = format!("/admin/receipts/{paid}?lang=bn");
    let short = admin.submit(&paid_bn, &format!("/admin/receipts/{paid}/void?lang=bn"), &[]).await.body;
    assert_bangla(&flash_words(&short), &[]);
    let left = field_text(&short, "void-short");
    assert!(left.contains("সালমা") && left.contains("১০ মিনিট") && left.contains("৬০ মিনিট"), "{left}");
    assert_bangla(&left, &[&paid_number]);

    // The messages after other forms of a Bangla page.
    let requests = owner_bn.get("/admin/requests").await;
    let (_, pending) = t.admin.get("/api/admin/minute-requests?status=PENDING").await;
    let request = pending[0]["id"].as_str().unwrap().to_string();
    let approved = owner_bn
        .post(&format!("/admin/requests/{request}/approve"), &[("_csrf", &requests.token()), ("minutes", "600")])
        .await;
    let approved = owner_bn.get(approved.location()).await.body;
    assert_eq!(flash_words(&approved), "সালমা-কে ৬০০ মিনিট দেওয়া হয়েছে।");
    let corrected = owner_bn
        .submit(
            &format!("/admin/farmers/{salma}"),
            &format!("/admin/farmers/{salma}/correct"),
            &[("minutes", "-৫"), ("note", "ভুল")],
        )
        .await;
    assert_bangla(&flash_words(&corrected.body), &[]);
}

/// The owner's bell page says a board that gets no commands during a run plainly, as the other
/// alerts about a device: a title, when, and a sentence that names the device, how long, what it
/// means for the pump and what to look at; in Bangla with Bangla digits.
#[tokio::test]
async fn the_owners_bell_page_says_plainly_that_a_device_gets_no_commands() {
    use pumppilot_engine::{AdminId, Facts, Notice, NoticeKind};
    let app = spawn_app().await;
    let t = app.tenant("rahim", 0, 0).await;
    let admin: AdminId = t.admin_id.parse().unwrap();
    let since = app.running.app.now();
    let facts = Facts { since: Some(since), device: Some("rahim pump".to_owned()), ..Facts::default() };
    let notice = Notice::new(admin.0, admin, NoticeKind::NoCommandLong, since + 5 * 60_000, facts);
    app.running.app.store.add_notices(&[notice]).await.unwrap();

    let owner = Browser::signed_in(&app, "rahim", PASSWORD).await;
    let page = owner.get("/notifications").await;
    assert_eq!(page.status, StatusCode::OK);
    let item = |body: &str| {
        let start = body.find(r#"data-kind="NO_COMMAND_LONG""#).expect("listed, with its kind");
        body[start..body[start..].find("</li>").map_or(body.len(), |end| start + end)].to_owned()
    };
    let english = item(&page.body);
    assert!(english.contains("<strong>Device not getting commands</strong>"), "{english}");
    assert!(
        english.contains(
            "The device &quot;rahim pump&quot; has not received the server's commands for 5 min, so the motor is off \
             during a run. Check its network."
        ),
        "{english}"
    );

    owner.submit("/notifications", "/lang", &[("lang", "bn"), ("back", "/notifications")]).await;
    let bangla = item(&owner.get("/notifications").await.body);
    assert!(bangla.contains("<strong>ডিভাইস নির্দেশ পাচ্ছে না</strong>"), "{bangla}");
    assert!(bangla.contains("&quot;rahim pump&quot; ৫ মিনিট ধরে নির্দেশ পায়নি, মোটর বন্ধ।"), "{bangla}");
}
