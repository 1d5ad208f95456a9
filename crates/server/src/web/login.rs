//! Signing in and out on the web. The form posts to `/login`, which signs in through
//! `POST /api/auth/login` (the same rate limit, the same session cookie) and goes to the
//! account's page.

use axum::{
    extract::State,
    http::{Method, StatusCode, header},
    response::Response,
};
use maud::html;
use serde_json::json;

use super::{Flash, Live, Posted, Tab, Visit, WebState, csrf, error_words, home_of, layout, page_response, redirect};
use crate::{auth::SESSION_COOKIE, keys::Keyring};

/// `GET /login`: the form, or the account's page when already signed in.
pub async fn page(State(web): State<WebState>, visit: Visit) -> Response {
    let Some(token) = visit.session.clone() else { return form(&web, visit, "", None, StatusCode::OK) };
    let answer = web.api.get("/api/auth/me", &token).await;
    if answer.status == StatusCode::OK {
        return redirect(home_of(answer.body["role"].as_str().unwrap_or("user")), &[]);
    }
    // A session that ended (or an account that was suspended): forget the cookie, say why.
    let failure = answer.failure();
    let error = (failure.status == StatusCode::FORBIDDEN)
        .then(|| error_words(visit.t(), &[&failure.code, failure.status.as_str(), &failure.message]));
    let mut response = form(&web, visit, "", error, StatusCode::OK);
    if let Ok(value) = clear_session().parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The sign-in form. Before sign-in the form's token is bound to a random cookie of its own.
fn form(
    web: &WebState,
    visit: Visit,
    username: &str,
    error: Option<(String, Option<String>)>,
    status: StatusCode,
) -> Response {
    let (pre, new_pre) = match visit.pre.clone() {
        Some(pre) => (pre, None),
        None => {
            let pre = Keyring::new_token("");
            (pre.clone(), Some(pre))
        }
    };
    let token = csrf::token(&web.app.keyring, csrf::Binding::Pre(&pre));
    let t = visit.t();
    let content = html! {
        section.card.login {
            h1 { (t.sign_in_title) }
            p.muted { (t.tagline) }
            @if let Some((words, detail)) = &error {
                div.flash.err role="alert" { (words) @if let Some(detail) = detail { br; small { (detail) } } }
            }
            form method="post" action="/login" {
                input type="hidden" name=(csrf::FIELD) value=(token);
                label for="username" { (t.username) }
                input #username type="text" name="username" value=(username) autocomplete="username"
                    autocapitalize="none" spellcheck="false" required maxlength="64";
                label for="password" { (t.password) }
                input #password type="password" name="password" autocomplete="current-password" required maxlength="256";
                button.big.go type="submit" { (t.sign_in) }
            }
        }
        p.muted.footnote { a href="/api/openapi.json" { (t.api_link) } }
    };
    let mut response = page_response(
        &visit,
        status,
        layout(&visit, None, Some(&token), Tab::None, Live::Off, t.sign_in_title, content),
    );
    if let Some(pre) = new_pre {
        let cookie = format!("{}={pre}; Path=/; HttpOnly; SameSite=Strict", csrf::PRE_COOKIE);
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /login`: signs in through the API; the API's session cookie is passed on.
pub async fn submit(State(web): State<WebState>, posted: Posted) -> Response {
    let username = posted.field("username").trim().to_string();
    let body = json!({"username": username, "password": posted.field("password")});
    let answer = web.api.call(Method::POST, "/api/auth/login", None, Some(body), posted.visit.client).await;
    if answer.status != StatusCode::OK {
        let failure = answer.failure();
        let words = error_words(posted.visit.t(), &[&failure.code, failure.status.as_str(), &failure.message]);
        return form(&web, posted.visit, &username, Some(words), failure.status);
    }
    let role = answer.body["user"]["role"].as_str().unwrap_or("user");
    let cookies: Vec<String> =
        answer.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
    redirect(home_of(role), &cookies)
}

/// `POST /logout`: ends the session on the server and clears the cookie.
pub async fn logout(State(web): State<WebState>, posted: Posted) -> Response {
    if let Some(token) = posted.visit.session.as_deref() {
        web.api.call(Method::POST, "/api/auth/logout", Some(token), None, None).await;
    }
    redirect("/login", &[clear_session(), Flash::ok("signed_out", &[]).cookie()])
}

fn clear_session() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}
