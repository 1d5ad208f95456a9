//! `/password`: anyone signed in changes their own password, through `POST /api/auth/password`
//! (the same check of the current password, the same sign-in limits). What was typed is never
//! sent back to the page.

use axum::{extract::State, http::Method, response::Response};
use maud::html;
use serde_json::json;

use super::{AnyPage, Flash, Live, Posted, Tab, WebState, finish, redirect};

/// `GET /password`: the form.
pub async fn page(AnyPage(page): AnyPage) -> Response {
    let p = page.t().passwords;
    let content = html! {
        section.card #change-password {
            h1 { (p.title) }
            p.muted { (p.intro) }
            form method="post" action="/password" {
                (page.csrf_field())
                label for="current-password" { (p.current) }
                input #current-password type="password" name="current_password" autocomplete="current-password"
                    required maxlength="256";
                label for="new-password" { (p.new) }
                input #new-password type="password" name="new_password" autocomplete="new-password"
                    required minlength="8" maxlength="256" aria-describedby="new-password-rule";
                small.muted #new-password-rule { (p.rule) }
                label for="new-password-again" { (p.again) }
                input #new-password-again type="password" name="new_password_again" autocomplete="new-password"
                    required minlength="8" maxlength="256";
                button.go type="submit" { (p.change) }
            }
        }
    };
    page.render(Tab::None, Live::Off, p.title, content)
}

/// `POST /password` (`current_password`, `new_password`, `new_password_again`): back to the form
/// with what happened in words; the session that asked stays signed in.
pub async fn change(State(web): State<WebState>, posted: Posted) -> Response {
    let Some(token) = posted.visit.session.clone() else { return redirect("/login", &[]) };
    let new = posted.field("new_password");
    if new != posted.field("new_password_again") {
        return redirect("/password", &[Flash::refused("password_mismatch", &[]).cookie()]);
    }
    let body = json!({"currentPassword": posted.field("current_password"), "newPassword": new});
    // The browser's address, so a wrong current password counts where a wrong sign-in would.
    let answer = web.api.call(Method::POST, "/api/auth/password", Some(&token), Some(body), posted.visit.client).await;
    finish(&posted, answer, "/password", |_| Some(Flash::ok("password_changed", &[])))
}
