//! The audit log: names instead of ids, details in the reader's language, and filters by kind,
//! by farmer and by day.

use super::*;
use crate::web::i18n::{Lang, Text, number};

/// Lines on one page of the log.
const PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub struct LogFilter {
    /// An action (`recharge`, `user.suspend`, …); all when empty.
    kind: Option<String>,
    /// A farmer's id: lines about them.
    farmer: Option<String>,
    /// Local days, inclusive.
    from: Option<String>,
    to: Option<String>,
    /// The page, 0 = the newest lines.
    page: Option<usize>,
}

/// `GET /admin/log?kind=&farmer=&from=&to=&page=`: the audit log filtered over the whole log by
/// the API (`/api/admin/audit`), a page at a time, names instead of ids where the tenant knows
/// them, details in the page's language.
pub async fn log(
    State(web): State<WebState>,
    PageQuery(filter): PageQuery<LogFilter>,
    OwnerPage(page): OwnerPage,
) -> Result<Response, Response> {
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let o = t.owner;
    let (from, to) = (super::usage::day(filter.from.as_deref()), super::usage::day(filter.to.as_deref()));
    let kind = filter.kind.as_deref().filter(|k| !k.is_empty());
    let farmer = filter.farmer.as_deref().filter(|f| !f.is_empty());
    let number_of_page = filter.page.unwrap_or(0).min(10_000);
    // One more line than a page tells whether there is an older page.
    let audit_path = {
        // (The serializer is not Send: it lives only in this block.)
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &(PAGE + 1).to_string()).append_pair("offset", &(number_of_page * PAGE).to_string());
        if let Some(kind) = kind {
            query.append_pair("action", kind);
        }
        if let Some(farmer) = farmer {
            query.append_pair("about", farmer);
        }
        if let Some(from) = from {
            query.append_pair("from", &super::usage::midnight_utc(from, zone));
        }
        if let Some(to) = to {
            query.append_pair("to", &super::usage::midnight_utc(to + time::Duration::days(1), zone));
        }
        format!("/api/admin/audit?{}", query.finish())
    };
    let (audit, users, devices) = tokio::join!(
        page.get::<Vec<Audit>>(&web, &audit_path),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<Device>>(&web, "/api/admin/devices"),
    );
    let (mut shown, users, devices) = (audit?, users?, devices?);
    let older = shown.len() > PAGE;
    shown.truncate(PAGE);
    let mut names: HashMap<&str, &str> = users.iter().map(|u| (u.user.id.as_str(), u.user.name.as_str())).collect();
    names.extend(devices.iter().map(|d| (d.id.as_str(), d.name.as_str())));
    names.insert(page.me.id.as_str(), page.me.name.as_str());
    // A name the tenant knows, else `unknown`'s words for the id.
    let named = |id: &Option<String>, unknown: &dyn Fn(&str) -> String| match id.as_deref() {
        Some(id) => names.get(id).map_or_else(|| unknown(id), |n| (*n).to_string()),
        None => "—".to_string(),
    };
    let name = |id: &Option<String>| named(id, &short_id);
    // Who acts on a tenant is its owner, a farmer of it, or the master (an owner added, a
    // suspension, a recharge made for the owner): one not of the tenant is the master.
    let who = |id: &Option<String>| named(id, &|_| t.role_master.to_string());
    // Every action the log may hold, and any other on this page.
    let mut kinds: Vec<&str> = t.audit_actions.iter().map(|(code, _)| *code).collect();
    kinds.extend(shown.iter().map(|a| a.action.as_str()));
    kinds.extend(kind);
    kinds.sort_unstable();
    kinds.dedup();
    let ymd = |d: Option<time::Date>| {
        d.and_then(|d| d.format(time::macros::format_description!("[year]-[month]-[day]")).ok()).unwrap_or_default()
    };
    let link_to = |to_page: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [("kind", kind), ("farmer", farmer)] {
            if let Some(value) = value {
                q.append_pair(key, value);
            }
        }
        for (key, value) in [("from", from), ("to", to)] {
            if value.is_some() {
                q.append_pair(key, &ymd(value));
            }
        }
        q.append_pair("page", &to_page.to_string());
        format!("/admin/log?{}", q.finish())
    };
    let first_line = number_of_page * PAGE + 1;
    let content = html! {
        section.card {
            h2 { (t.audit_title) }
            form.period #log-filter method="get" action="/admin/log" {
                label { (o.filter_kind) " "
                    select name="kind" {
                        option value="" { (o.filter_all) }
                        @for k in &kinds { option value=(k) selected[kind == Some(*k)] { (words(t.audit_actions, k)) } }
                    }
                }
                label { (o.filter_farmer) " "
                    select name="farmer" {
                        option value="" { (o.filter_all) }
                        @for u in &users { option value=(u.user.id) selected[farmer == Some(u.user.id.as_str())] { (u.user.name) } }
                    }
                }
                label { (t.from) " " input type="date" name="from" value=(ymd(from)); }
                label { (t.to) " " input type="date" name="to" value=(ymd(to)); }
                button.secondary type="submit" { (o.filter_show) }
            }
            @if shown.is_empty() { p.muted #log-count { (t.no_audit) } }
            @else {
                p.muted #log-count { (fill(o.filter_count, &[&number(first_line as i64, lang), &number((first_line + shown.len() - 1) as i64, lang)])) }
                table.table #audit {
                    thead { tr { th { (t.col_when) } th { (t.col_who) } th { (t.col_action) } th { (t.col_detail) } } }
                    tbody {
                        @for a in &shown {
                            tr data-action=(a.action) {
                                td data-label=(t.col_when) { (date_time(&a.at, zone, lang)) }
                                td data-label=(t.col_who) { (who(&a.actor_id)) }
                                td data-label=(t.col_action) { strong { (words(t.audit_actions, &a.action)) } br; small.muted { (name(&a.target_id)) } }
                                td data-label=(t.col_detail) { (detail(t, lang, &a.action, &a.detail)) }
                            }
                        }
                    }
                }
            }
            @if number_of_page > 0 || older {
                nav.pager #log-pages {
                    @if number_of_page > 0 { a.button.secondary rel="prev" href=(link_to(number_of_page - 1)) { (o.page_newer) } }
                    @if older { a.button.secondary rel="next" href=(link_to(number_of_page + 1)) { (o.page_older) } }
                }
            }
        }
    };
    Ok(page.render(Tab::AdminLog, Live::Off, t.nav_audit, content))
}

/// An audit line's detail in the reader's language: the server writes the numbers of a recharge,
/// a correction, a request and the terms in a fixed form (`+30 min (60 taka) note`,
/// `15 min: NOT_PAID`, `max 120 min, 150 taka/h`); those are put in words, what a person typed
/// stays as typed.
pub fn detail(t: &Text, lang: Lang, action: &str, text: &str) -> String {
    let o = t.owner;
    match action {
        "recharge" | "correction" | "request.approve" | "request.reject" | "receipt.void" => {
            let Some((amount, rest)) = text.split_once(" min") else { return text.to_string() };
            let Ok(minutes) = amount.parse::<i64>() else { return text.to_string() };
            let sign = if amount.starts_with('+') {
                "+"
            } else if minutes < 0 {
                "−"
            } else {
                ""
            };
            let mut out = format!("{sign}{}", fmt_minutes(minutes.abs(), lang));
            // A rejection's reason by its code (`15 min: NOT_PAID`), in words; a line written
            // before reasons were logged has none and reads as before.
            if action == "request.reject"
                && let Some(code) = rest.strip_prefix(": ")
                && let Some(reason) = t.reject_reason_words(code)
            {
                return fill(o.detail_rejected, &[&out, &reason]);
            }
            let mut rest = rest;
            if let Some(paid) = rest.strip_prefix(" (")
                && let Some((taka, after)) = paid.split_once(" taka)")
                && let Ok(taka) = taka.parse::<i64>()
            {
                out.push_str(&format!(" ({})", fill(o.taka, &[&number(taka, lang)])));
                rest = after;
            }
            out.push_str(rest);
            out
        }
        "terms.set" => {
            let parse = || {
                let rest = text.strip_prefix("max ")?;
                let (minutes, price) = rest.split_once(" min, ")?;
                let minutes = fmt_minutes(minutes.parse().ok()?, lang);
                let price = match price.strip_suffix(" taka/h") {
                    Some(taka) => fill(o.taka_per_hour, &[&number(taka.parse().ok()?, lang)]),
                    None if price == "no price" => o.no_price.to_string(),
                    None => return None,
                };
                Some(fill(o.detail_terms, &[&minutes, &price]))
            };
            parse().unwrap_or_else(|| text.to_string())
        }
        "queue.move" => {
            // `#3 → #1 reason`: the places in the reader's digits.
            let place = |part: &str| part.strip_prefix('#').and_then(|n| n.parse::<i64>().ok());
            let mut words = text.splitn(4, ' ');
            match (words.next().and_then(place), words.next(), words.next().and_then(place)) {
                (Some(from), Some("→"), Some(to)) => {
                    let rest = words.next().map(|r| format!(" {r}")).unwrap_or_default();
                    format!("#{} → #{}{rest}", number(from, lang), number(to, lang))
                }
                _ => text.to_string(),
            }
        }
        _ => text.to_string(),
    }
}

/// The first characters of an id nobody here has a name for (the master, another tenant's).
fn short_id(id: &str) -> String {
    format!("{}…", id.chars().take(8).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::{BN, EN};

    #[test]
    fn details_are_put_in_words_and_typed_notes_stay() {
        assert_eq!(detail(&BN, Lang::Bn, "recharge", "+60 min (100 taka) paid 2"), "+৬০ মিনিট (১০০ টাকা) paid 2");
        assert_eq!(detail(&EN, Lang::En, "correction", "-5 min typo"), "−5 min typo");
        assert_eq!(detail(&BN, Lang::Bn, "request.reject", "15 min"), "১৫ মিনিট");
        assert_eq!(detail(&EN, Lang::En, "request.reject", "15 min: NOT_PAID"), "15 min — Payment not received");
        assert_eq!(detail(&BN, Lang::Bn, "request.reject", "15 min: PUMP_CLOSED"), "১৫ মিনিট — পাম্প আপাতত বন্ধ");
        // A code this server does not know stays as written.
        assert_eq!(detail(&EN, Lang::En, "request.reject", "15 min: LATER"), "15 min: LATER");
        assert_eq!(
            detail(&BN, Lang::Bn, "terms.set", "max 120 min, 150 taka/h"),
            "এক অনুরোধে সর্বোচ্চ ১২০ মিনিট; ঘণ্টায় ১৫০ টাকা"
        );
        assert_eq!(
            detail(&EN, Lang::En, "terms.set", "max 600 min, no price"),
            "at most 600 min a request; no price set"
        );
        assert_eq!(detail(&BN, Lang::Bn, "queue.remove", "left the field 3"), "left the field 3");
        assert_eq!(detail(&EN, Lang::En, "recharge", "odd"), "odd");
        assert_eq!(detail(&BN, Lang::Bn, "queue.move", "#3 → #1 sick child"), "#৩ → #১ sick child");
        assert_eq!(
            detail(&BN, Lang::Bn, "receipt.void", "-300 min (600 taka) 019A-1B2C-3D4E"),
            "−৩০০ মিনিট (৬০০ টাকা) 019A-1B2C-3D4E"
        );
    }
}
