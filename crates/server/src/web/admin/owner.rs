//! The owner's day on the web: the pump's price and limits, receipts of cash recharges, a
//! farmer's name and a new password shown once.

use super::*;
use crate::web::{
    api::{NewPassword, Receipt, Terms},
    i18n::{Lang, OwnerText, number},
};
// (`Receipt` is the API's `ReceiptView`: `cash_counted` is what a sum of cash takes of it.)

/// The price of an hour in words, or "no price set".
pub fn price_words(o: &OwnerText, terms: &Terms, lang: Lang) -> String {
    terms.price_per_hour_taka.map_or_else(|| o.no_price.to_string(), |taka| fill(o.price_text, &[&number(taka, lang)]))
}

/// An amount of taka in words.
pub fn taka(o: &OwnerText, amount: i64, lang: Lang) -> String {
    fill(o.taka, &[&number(amount, lang)])
}

/// The pump page's card: the most minutes per request and the price of an hour.
pub fn terms_card(page: &crate::web::Page, terms: &Terms) -> maud::Markup {
    let (t, lang) = (page.t(), page.lang());
    let o = t.owner;
    let kept = |field: &str, value: String| {
        let typed = page.visit.kept(field);
        if typed.is_empty() { value } else { typed.to_string() }
    };
    html! {
        section.card #terms {
            h2 { (o.terms_title) }
            p.hint { (o.terms_help) }
            p #terms-now {
                (fill(t.request_limits, &[&fmt_minutes(terms.max_request_minutes, lang)])) " · " (price_words(o, terms, lang))
            }
            form method="post" action="/admin/terms" {
                (page.csrf_field())
                label for="t-max" { (o.max_request) }
                input #t-max type="text" name="maxRequestMinutes" inputmode="numeric" required maxlength="6" autocomplete="off"
                    value=(kept("maxRequestMinutes", terms.max_request_minutes.to_string()));
                label for="t-price" { (o.price_per_hour) }
                input #t-price type="text" name="pricePerHourTaka" inputmode="numeric" maxlength="7" autocomplete="off"
                    value=(kept("pricePerHourTaka", terms.price_per_hour_taka.map(|p| p.to_string()).unwrap_or_default()));
                button.secondary type="submit" { (o.save_terms) }
            }
        }
    }
}

/// A typed whole number for the API (either script's digits); anything else goes as typed, so
/// the API's VALIDATION names the field.
fn whole_or_text(typed: &str) -> serde_json::Value {
    parse_whole(typed).map_or(json!(typed), |n| json!(n))
}

/// `POST /admin/terms` (`maxRequestMinutes`, `pricePerHourTaka`; empty price: none).
pub async fn set_terms(State(web): State<WebState>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    let price = posted.field("pricePerHourTaka").trim();
    let body = json!({
        "maxRequestMinutes": whole_or_text(posted.field("maxRequestMinutes")),
        "pricePerHourTaka": if price.is_empty() { serde_json::Value::Null } else { whole_or_text(price) },
    });
    let answer = web.api.put("/api/admin/terms", &token, body).await;
    let lang = posted.visit.lang;
    let o = posted.visit.t().owner;
    finish(&posted, answer, "/admin#terms", |terms| {
        let terms: Terms = serde_json::from_value(terms.clone()).ok()?;
        Some(Flash::ok("terms_saved", &[&fmt_minutes(terms.max_request_minutes, lang), &price_words(o, &terms, lang)]))
    })
}

/// `?lang=`: a receipt shown in the language asked for (the farmer's), not the page's.
#[derive(Deserialize, Default)]
pub struct ReceiptLang {
    lang: Option<String>,
}

impl ReceiptLang {
    /// The language asked for, if it is one of the page's.
    pub fn asked(&self) -> Option<Lang> {
        self.lang.as_deref().and_then(Lang::parse)
    }
}

/// `GET /admin/receipts/{id}?lang=`: one receipt, to print or photograph, in the language asked
/// for (the farmer's), else the viewer's; a void one marked so. Below it, not printed, the form
/// that voids it (asked twice), and after a void refused because the farmer used the minutes,
/// how many are left.
pub async fn receipt(
    State(web): State<WebState>,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<ReceiptLang>,
    OwnerPage(mut page): OwnerPage,
) -> Result<Response, Response> {
    if !valid_id(&id) {
        return Err(not_found(&page.visit));
    }
    let receipt = page.get::<Receipt>(&web, &format!("/api/admin/receipts/{id}")).await?;
    let asked = query.asked();
    if let Some(lang) = asked {
        page.visit.lang = lang;
    }
    // A void refused because the farmer has used the minutes: what they have left.
    let left = match page.visit.refused_with("BELOW_ZERO") && receipt.void.is_none() {
        true => page
            .get::<crate::web::api::Wallet>(&web, &format!("/api/admin/users/{}/wallet", receipt.user_id))
            .await
            .ok()
            .map(|wallet| wallet.available_seconds),
        false => None,
    };
    let (t, lang) = (page.t(), page.lang());
    let o = t.owner;
    let minutes = fmt_minutes(receipt.minutes, lang);
    let content = html! {
        p.no-print { a href={"/admin/farmers/" (receipt.user_id)} { "← " (o.back_to_farmer) } }
        (receipt_paper(&page, &receipt, &page.me.name, "/admin/receipts/"))
        @if receipt.void.is_none() {
            section.card.no-print #void-receipt {
                h2 { (o.void_title) }
                p.hint { (fill(o.void_help, &[&minutes, &receipt.user_name, &taka(o, receipt.cash_taka, lang)])) }
                @if let Some(left) = left {
                    p.warn #void-short { (fill(o.void_short, &[&receipt.user_name, &duration(left.max(0), lang), &minutes])) }
                    p { a.button.secondary href={"/admin/farmers/" (receipt.user_id) "#correction"} { (o.correct_by_hand) } }
                }
                form method="post" action={"/admin/receipts/" (receipt.id) "/void" (lang_query(asked))}
                    data-confirm=(fill(o.confirm_void, &[&receipt.number, &minutes, &receipt.user_name])) {
                    (page.csrf_field())
                    button.danger #void-receipt-button type="submit" { (o.void_button) }
                }
            }
        }
    };
    Ok(page.render(Tab::AdminFarmers, Live::Off, o.receipt_title, content))
}

/// A receipt as it is printed or photographed (its pump's owner named under the heading; a void
/// one marked so), then, not printed, the buttons that print it, share it as a picture and show it
/// in the other language (`path` is the page's own, before the receipt's id). The owner's page
/// and the farmer's copy both show it.
pub fn receipt_paper(page: &crate::web::Page, receipt: &Receipt, owner: &str, path: &str) -> maud::Markup {
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let o = t.owner;
    html! {
        section.card.receipt #receipt {
            h1 { (o.receipt_title) @if receipt.void.is_some() { " " span.tag.bad #void-mark { (o.void_mark) } } }
            p.muted { (t.app_name) " · " (owner) }
            @if let Some(void) = &receipt.void {
                p.warn #receipt-void { (fill(o.receipt_voided, &[&date_time(&void.at, zone, lang), &void.by_name])) }
            }
            dl.facts {
                dt { (o.receipt_no) } dd { code { (receipt.number) } }
                dt { (o.receipt_date) } dd { (date_time(&receipt.at, zone, lang)) }
                dt { (o.receipt_farmer) } dd { strong { (receipt.user_name) } }
                dt { (o.receipt_minutes) } dd.num { (fmt_minutes(receipt.minutes, lang)) }
                dt { (o.receipt_cash) } dd.num { strong { (taka(o, receipt.cash_taka, lang)) } }
                dt { (o.receipt_by) } dd { (receipt.recorded_by_name) }
            }
            p { (o.receipt_thanks) }
        }
        p.no-print.actions {
            button.big.go #print-receipt type="button" data-print="yes" { (o.print) }
            " "
            // Drawn onto a canvas by the page script: shared as a PNG where the browser can
            // (the Web Share API), downloaded otherwise. Hidden until the script shows it.
            button.big.secondary #share-receipt type="button" hidden
                data-receipt-image={"receipt-" (receipt.id.get(..8).unwrap_or(&receipt.id)) ".png"}
                data-shared=(o.receipt_image_shared) data-saved=(o.receipt_image_saved)
                { (o.receipt_image) }
            " "
            a.button.secondary href={(path) (receipt.id) "?lang=" (lang.other().code())} { (o.receipt_other_lang) }
        }
        p.no-print.muted #receipt-image-status role="status" {}
    }
}

/// `?lang=` for a receipt shown in a language asked for, so that its void answers in it too.
fn lang_query(asked: Option<Lang>) -> String {
    asked.map_or_else(String::new, |lang| format!("?lang={}", lang.code()))
}

/// `POST /admin/receipts/{id}/void?lang=`: the receipt is taken back, its minutes and its cash;
/// back on its page, in the language it was shown in, marked void (or with why not).
pub async fn void_receipt(
    State(web): State<WebState>,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<ReceiptLang>,
    mut posted: Posted,
) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let asked = query.asked();
    if let Some(lang) = asked {
        posted.visit.lang = lang;
    }
    let answer = web.api.post(&format!("/api/admin/receipts/{id}/void"), &token, json!({})).await;
    let lang = posted.visit.lang;
    finish(&posted, answer, &format!("/admin/receipts/{id}{}", lang_query(asked)), |receipt| {
        let receipt: Receipt = serde_json::from_value(receipt.clone()).ok()?;
        Some(Flash::ok("receipt_voided", &[&receipt.number, &fmt_minutes(receipt.minutes, lang), &receipt.user_name]))
    })
}

/// The receipts of a period, newest first, each a link to its page.
pub fn receipts_table(page: &crate::web::Page, receipts: &[Receipt]) -> maud::Markup {
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let o = t.owner;
    html! {
        @if receipts.is_empty() { p.muted { (o.no_receipts) } }
        @else {
            table.table.receipts {
                thead { tr { th { (o.receipt_date) } th { (o.receipt_farmer) } th { (o.receipt_minutes) } th { (o.receipt_cash) } th {} } }
                tbody {
                    @for r in receipts {
                        tr.void[r.void.is_some()] {
                            td data-label=(o.receipt_date) {
                                (date_time(&r.at, zone, lang))
                                @if r.void.is_some() { " " span.tag.bad { (o.void_mark) } }
                            }
                            td data-label=(o.receipt_farmer) { (r.user_name) }
                            td data-label=(o.receipt_minutes) .num { (fmt_minutes(r.minutes, lang)) }
                            td data-label=(o.receipt_cash) .num {
                                @if r.void.is_some() { s { (taka(o, r.cash_taka, lang)) } } @else { (taka(o, r.cash_taka, lang)) }
                            }
                            td { a.button.small href={"/admin/receipts/" (r.id)} { (o.open_receipt) } }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /admin/farmers/{id}/name` (`name`).
pub async fn rename(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let answer = web.api.patch(&format!("/api/admin/users/{id}"), &token, json!({"name": posted.field("name")})).await;
    finish(&posted, answer, &format!("/admin/farmers/{id}"), |user| {
        Some(Flash::ok("renamed", &[user["name"].as_str().unwrap_or_default()]))
    })
}

/// `POST /admin/farmers/{id}/password`: a new password, shown this once (never cached, never in
/// a cookie or a URL); the farmer is signed out everywhere.
pub async fn reset_password(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    let answer = web.api.post(&format!("/api/admin/users/{id}/password"), &token, json!({})).await;
    if posted.json || !answer.status.is_success() {
        return finish(&posted, answer, &format!("/admin/farmers/{id}"), |_| None);
    }
    let created: NewPassword = match answer.into() {
        Ok(created) => created,
        Err(failure) => return crate::web::failure_page(&posted.visit, None, &failure),
    };
    let mut page = page_or_return!(web, posted.visit);
    page.visit.path = format!("/admin/farmers/{id}");
    let content = new_password_card(&page, &created, page.t().owner.new_password_help, &page.visit.path);
    page.render(Tab::AdminFarmers, Live::Off, page.t().owner.password_title, content)
}

/// A new password made for `created` (a farmer, or for the master a pump owner), shown this once
/// with `help`, and the way `back`.
pub fn new_password_card(page: &crate::web::Page, created: &NewPassword, help: &str, back: &str) -> maud::Markup {
    let t = page.t();
    let o = t.owner;
    html! {
        section.card.key #new-password {
            h1 { (fill(o.new_password_title, &[&created.name])) }
            dl.facts {
                dt { (o.username) } dd { code { (created.username) } }
            }
            div.key-row {
                textarea #password-value .key-value readonly rows="1" spellcheck="false" aria-label=(o.password_title) { (created.password) }
                button #copy-password .secondary type="button" data-copy="password-value" data-done=(t.copied) { (t.copy) }
            }
            p.warn { (help) }
            p { a.button href=(back) { (t.done) } }
        }
    }
}

/// The link the app opens to sign in to this server: `pumppilot://sign-in?server=…&username=…`
/// (the app's scheme, `app.json`).
pub fn app_link(server: &str, username: &str) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!("pumppilot://sign-in?server={}&username={}", encode(server), encode(username))
}

/// The address this page was reached at (`https` behind a proxy that says so), for the app.
pub fn server_url(headers: &axum::http::HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let host = header("x-forwarded-host").or_else(|| header("host")).unwrap_or("localhost");
    let scheme = if header("x-forwarded-proto") == Some("https") { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// A QR code of `text` as inline SVG (drawn here: nothing is fetched from anywhere).
pub fn qr_svg(text: &str) -> Option<maud::PreEscaped<String>> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // The XML declaration belongs to a file, not to an element inside a page.
    let start = svg.find("<svg")?;
    Some(maud::PreEscaped(svg[start..].to_string()))
}

/// The farmer page's card: a QR code (and the link) that opens the app on this server.
pub fn app_card(page: &crate::web::Page, server: &str, username: &str) -> maud::Markup {
    let o = page.t().owner;
    let link = app_link(server, username);
    html! {
        section.card #app-sign-in {
            h2 { (o.app_title) }
            p.hint { (o.app_help) }
            @if let Some(svg) = qr_svg(&link) { div.qr role="img" aria-label=(o.app_title) { (svg) } }
            p { a.button.secondary #app-link href=(link) { (o.app_link) } }
            p.muted { (fill(o.app_server, &[server])) " · " (username) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_link_carries_the_server_and_username_encoded() {
        assert_eq!(
            app_link("http://192.168.0.10:8080", "01711 000"),
            "pumppilot://sign-in?server=http%3A%2F%2F192.168.0.10%3A8080&username=01711%20000"
        );
        let svg = qr_svg(&app_link("https://pump.example", "karim")).unwrap().0;
        assert!(svg.starts_with("<svg") && svg.contains("<path"), "{}", &svg[..80]);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("host", "10.0.0.2:8080".parse().unwrap());
        assert_eq!(server_url(&headers), "http://10.0.0.2:8080");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        headers.insert("x-forwarded-host", "pump.example".parse().unwrap());
        assert_eq!(server_url(&headers), "https://pump.example");
    }
}
