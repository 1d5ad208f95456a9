//! The pump: the motor, the device status, the queue, device keys, and taking someone out of line.

use super::*;

/// `GET /admin`: the motor, the device, the queue.
pub async fn pump(State(web): State<WebState>, OwnerPage(page): OwnerPage) -> Result<Response, Response> {
    let (status, queue, devices, users, terms) = tokio::join!(
        page.get::<Status>(&web, "/api/motor/status"),
        page.get::<Queue>(&web, "/api/queue"),
        page.get::<Vec<Device>>(&web, "/api/admin/devices"),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<crate::web::api::Terms>(&web, "/api/admin/terms"),
    );
    let (status, queue, devices, users, terms) = (status?, queue?, devices?, users?, terms?);
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let panel = parts::owner_panel(t, lang, &status.motor, &queue);
    // A new pump's first screen: what is left to set up. It goes away once a device is registered,
    // a farmer added and either a farmer holds minutes or the device has reported.
    let steps = [
        (!devices.is_empty(), t.setup_device, "#device-name"),
        (!users.is_empty(), t.setup_farmer, "/admin/farmers"),
        (users.iter().any(|u| u.available_seconds > 0), t.setup_recharge, "/admin/farmers"),
    ];
    let setting_up = !steps[0].0 || !steps[1].0 || (!steps[2].0 && status.device.status == "NO_DEVICE");
    let content = html! {
        @if setting_up {
            section.card.setup #setup {
                h2 { (t.setup_title) }
                ol.steps {
                    @for (done, words, href) in steps {
                        li.(if done { "done" } else { "todo" }) {
                            @if done { span.tick aria-hidden="true" { "✓ " } (words) " " span.muted { "(" (t.setup_done) ")" } }
                            @else { a href=(href) { (words) } }
                        }
                    }
                }
            }
        }
        div.cols { div.col {
        (parts::panel(&panel))
        form #admin-stop-form method="post" action="/admin/stop" data-confirm=(t.confirm_stop_run)
            hidden[queue.active.is_none()] {
            (page.csrf_field())
            // The run shown (kept up to date by the page's script): the form sent twice finds it
            // ended and stops nothing, not the run of the next in line.
            input #admin-stop-entry type="hidden" name="entry" value=(queue.active.as_ref().map_or("", |e| e.id.as_str()));
            button.big.stop type="submit" { (t.stop_run) }
        }
        (parts::device_status(t, &status.device))
        section.card #queue {
            h2 { (t.queue_title) }
            (parts::queue(t, lang, &queue, &page.me.id))
        }
        @if !queue.waiting.is_empty() {
            section.card #remove-waiting {
                h2 { (t.remove_waiting_title) }
                p.hint { (t.remove_waiting_help) }
                form method="post" action="/admin/queue/remove" data-confirm=(t.confirm_remove_waiting) {
                    (page.csrf_field())
                    label for="rw-user" { (t.remove_waiting_who) }
                    select #rw-user name="user" required {
                        @for e in &queue.waiting {
                            option value=(e.user_id) { "#" (crate::web::i18n::number(e.position.unwrap_or(0) as i64, lang)) " " (e.user_name) }
                        }
                    }
                    label for="rw-reason" { (t.remove_waiting_reason) }
                    input #rw-reason type="text" name="reason" required maxlength="500" value=(page.visit.kept("reason"));
                    button.danger type="submit" { (t.remove_waiting) }
                }
            }
            @if queue.waiting.len() > 1 {
                section.card #move-waiting {
                    h2 { (t.owner.move_title) }
                    p.hint { (t.owner.move_help) }
                    form method="post" action="/admin/queue/move" {
                        (page.csrf_field())
                        label for="mv-user" { (t.remove_waiting_who) }
                        select #mv-user name="user" required {
                            @for e in &queue.waiting {
                                option value=(e.user_id) { "#" (crate::web::i18n::number(e.position.unwrap_or(0) as i64, lang)) " " (e.user_name) }
                            }
                        }
                        label for="mv-position" { (t.owner.move_to) }
                        input #mv-position type="text" name="position" inputmode="numeric" required maxlength="4" autocomplete="off" value=(page.visit.kept("position"));
                        label for="mv-reason" { (t.remove_waiting_reason) }
                        input #mv-reason type="text" name="reason" required maxlength="500" value=(page.visit.kept("reason"));
                        button.secondary type="submit" { (t.owner.move_button) }
                    }
                }
            }
        }
        }
        div.col {
        section.card {
            h2 { (t.devices_title) }
            @if devices.is_empty() { p.muted { (t.no_device) } }
            @for d in &devices {
                // `data-device`: the page script redraws its connection, firmware, update and
                // last-seen time every few seconds (an update's download moves while the owner
                // watches), the time in the zone the page was written in (`data-zone`).
                div.device data-device=(d.id) {
                    h3 { (d.name) }
                    // The grid, readiness and relay are the live lights above; these are the device's own facts.
                    dl.facts {
                        dt { (t.device_title) } dd.d-online { span.chip.(if d.online { "good" } else { "bad" }) { (if d.online { t.pump_connected } else { t.pump_not_connected }) } }
                        dt { (t.firmware) } dd.d-firmware {
                            span.d-version { (d.firmware.as_deref().unwrap_or("—")) }
                            (parts::update_state(t, lang, d))
                        }
                        dt { (t.link) } dd { (if d.signed_link { t.link_signed } else { t.link_key_only }) }
                        dt { (t.last_seen) } dd.d-seen data-zone=(zone.0) { (d.last_seen_at.as_deref().map_or_else(|| t.never_seen.to_string(), |at| date_time(at, zone, lang))) }
                    }
                    form.rotate method="post" action={"/admin/devices/" (d.id) "/rotate-key"} {
                        (page.csrf_field())
                        label.check { input type="checkbox" name="confirm" value="yes" required; " " (t.rotate_confirm) }
                        button.secondary type="submit" { (t.rotate_key) }
                    }
                }
            }
            h3 { (t.register_device) }
            form method="post" action="/admin/devices" {
                (page.csrf_field())
                (super::farmers::once_key_field(&page, REGISTER_KEY))
                label for="device-name" { (t.device_name) }
                input #device-name type="text" name="name" required maxlength="80" value=(page.visit.kept("name"));
                button.secondary type="submit" { (t.register) }
            }
        }
        (super::owner::terms_card(&page, &terms))
        } }
    };
    Ok(page.render(Tab::AdminPump, Live::Owner, t.nav_pump, content))
}

/// `POST /admin/stop` (`entry`): ends the run the page showed (a form without `entry`, from a page
/// older than the field, ends the active run).
pub async fn stop(State(web): State<WebState>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    let body = match posted.field("entry") {
        "" => json!({}),
        entry if valid_id(entry) => json!({"entryId": entry}),
        _ => return not_found(&posted.visit),
    };
    let answer = web.api.post("/api/admin/motor/stop", &token, body).await;
    finish(&posted, answer, "/admin", |ended| {
        Some(Flash::ok("run_stopped", &[ended["userName"].as_str().unwrap_or_default()]))
    })
}

/// The field of the register form's key ([`super::farmers::once_key_field`]): the form sent
/// twice registers one device.
const REGISTER_KEY: &str = "registerKey";

/// `POST /admin/devices` (`name`, `registerKey`): registers a device and shows its key this once;
/// the form sent again says the device was registered already, without its key.
pub async fn register_device(State(web): State<WebState>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    let body = json!({"name": posted.field("name")});
    let answer = web.api.post_once("/api/admin/devices", &token, body, posted.field(REGISTER_KEY)).await;
    if answer.status.is_success() && answer.body["repeated"] == true {
        return finish(&posted, answer, "/admin", |device| {
            Some(Flash::ok("device_made_already", &[device["name"].as_str().unwrap_or_default()]))
        });
    }
    show_key(web, posted, answer).await
}

/// `POST /admin/devices/{id}/rotate-key`: a new key, shown this once; the old one stops working.
pub async fn rotate_key(State(web): State<WebState>, Path(id): Path<String>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    if !valid_id(&id) {
        return not_found(&posted.visit);
    }
    if posted.field("confirm") != "yes" {
        let failure = crate::web::api::Failure {
            status: StatusCode::BAD_REQUEST,
            code: "VALIDATION".into(),
            message: "confirm: tick the box to replace the key".into(),
        };
        return redirect("/admin", &[Flash::error(&failure).cookie()]);
    }
    let answer = web.api.post(&format!("/api/admin/devices/{id}/rotate-key"), &token, json!({})).await;
    show_key(web, posted, answer).await
}

/// The page that shows a device key once (never cached, never in a cookie or a URL).
async fn show_key(web: WebState, posted: Posted, answer: crate::web::api::Answer) -> Response {
    if posted.json || !answer.status.is_success() {
        return finish(&posted, answer, "/admin", |_| None);
    }
    let created: DeviceCreated = match answer.into() {
        Ok(created) => created,
        Err(failure) => return crate::web::failure_page(&posted.visit, None, &failure),
    };
    // A new key's answer carries it (only a registration sent again comes without one).
    let (Some(device_key), Some(link_secret)) = (created.device_key.as_deref(), created.link_secret.as_deref()) else {
        return redirect("/admin", &[]);
    };
    let mut page = page_or_return!(web, posted.visit);
    page.visit.path = "/admin".into();
    let t = page.t();
    let content = html! {
        section.card.key {
            h1 { (t.key_title) }
            p { strong { (created.name) } }
            div.key-row {
                textarea #device-key .key-value readonly rows="2" spellcheck="false" aria-label=(t.key_title) { (device_key) }
                button #copy-key .secondary type="button" data-copy="device-key" data-done=(t.copied) { (t.copy) }
            }
            h2 { (t.link_secret_title) }
            div.key-row {
                textarea #link-secret .key-value readonly rows="2" spellcheck="false" aria-label=(t.link_secret_title) { (link_secret) }
                button #copy-secret .secondary type="button" data-copy="link-secret" data-done=(t.copied) { (t.copy) }
            }
            p.warn { (t.key_help) }
            @let server = page.visit.host.clone().unwrap_or_default();
            h2 { (t.setup_values) }
            dl.facts {
                dt { (t.setup_server) } dd { code { (server) } }
                dt { (t.setup_id) } dd { code { (created.id) } }
                dt { (t.setup_key) } dd { code { (device_key) } }
                dt { (t.setup_secret) } dd { code { (link_secret) } }
            }
            @if let Some(svg) = setup_qr(&server, &created.id, device_key, link_secret) {
                figure.qr { (maud::PreEscaped(svg)) figcaption.muted { (t.setup_qr) } }
            }
            p.muted { "POST /api/esp32/poll · Authorization: Bearer … · x-pumppilot-counter · x-pumppilot-mac" }
            p { a.button href="/admin" { (t.done) } }
        }
    };
    page.render(Tab::AdminPump, Live::Off, t.key_title, content)
}

/// `POST /admin/queue/remove`: takes a waiting farmer (`user`) out of the line, with a `reason`.
pub async fn remove_waiting(State(web): State<WebState>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    let user = posted.field("user");
    if !valid_id(user) {
        return not_found(&posted.visit);
    }
    let body = json!({"reason": posted.field("reason")});
    let answer = web.api.post(&format!("/api/admin/queue/{user}/remove"), &token, body).await;
    finish(&posted, answer, "/admin", |ended| {
        Some(Flash::ok("removed_from_queue", &[ended["userName"].as_str().unwrap_or_default()]))
    })
}

/// `POST /admin/queue/move`: moves a waiting farmer (`user`) to place `position`, with a `reason`.
pub async fn move_waiting(State(web): State<WebState>, posted: Posted) -> Response {
    let token = token_or_login!(posted);
    let user = posted.field("user");
    if !valid_id(user) {
        return not_found(&posted.visit);
    }
    let typed = posted.field("position");
    let position = parse_whole(typed).map_or(json!(typed), |p| json!(p));
    let body = json!({"position": position, "reason": posted.field("reason")});
    let answer = web.api.post(&format!("/api/admin/queue/{user}/move"), &token, body).await;
    let (user, lang) = (user.to_string(), posted.visit.lang);
    finish(&posted, answer, "/admin#queue", |queue| {
        let moved = queue["waiting"].as_array()?.iter().find(|e| e["userId"] == user.as_str())?;
        let place = crate::web::i18n::number(moved["position"].as_i64()?, lang);
        Some(Flash::ok("moved", &[moved["userName"].as_str()?, &place]))
    })
}

/// The QR code (SVG) of a new device's setup values, as the device's setup form takes them
/// (`server=…&id=…&key=…&secret=…`: the id is what MQTT signs in with; the technician adds the
/// WiFi network on site).
pub fn setup_qr(server: &str, id: &str, key: &str, secret: &str) -> Option<String> {
    let encode = |value: &str| -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let text = format!("server={}&id={}&key={}&secret={}", encode(server), encode(id), encode(key), encode(secret));
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
}

#[cfg(test)]
mod tests {
    use super::setup_qr;

    #[test]
    fn the_setup_values_make_a_qr_code() {
        let svg = setup_qr("192.168.1.10:8080", "0123abcd", "pp_dev_abc", "pp_link_def").expect("a QR code");
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"), "{svg}");
        let other = setup_qr("192.168.1.10:8080", "0123abcd", "pp_dev_abd", "pp_link_def").unwrap();
        assert_ne!(svg, other, "the code carries the values");
    }
}
