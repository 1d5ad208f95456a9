//! Usage: charts per day and per farmer, the runs, and the spreadsheet.

use super::*;

#[derive(Deserialize, Default)]
pub struct Period {
    from: Option<String>,
    to: Option<String>,
}

/// The longest period the usage page draws (days).
const MAX_DAYS: i64 = 92;

/// The days asked for, in the viewer's zone: `from` and `to` inclusive; the last 14 days by
/// default.
fn period(query: &Period, zone: Zone, now: pumppilot_engine::Timestamp) -> (time::Date, time::Date) {
    let today = zone.at(now.millis()).map_or(time::OffsetDateTime::UNIX_EPOCH.date(), |t| t.date());
    let to = day(query.to.as_deref()).unwrap_or(today);
    let from = day(query.from.as_deref()).unwrap_or(to - time::Duration::days(13));
    let from = from.min(to).max(to - time::Duration::days(MAX_DAYS - 1));
    (from, to)
}

/// A day a page's query names (`2026-11-27`), brought within the years 2000 to 9998: a period
/// counts days either side of it and the API takes four-digit years, so a hand-typed year
/// 999999 must neither overflow (a panic) nor drop the filter (every line).
pub(super) fn day(text: Option<&str>) -> Option<time::Date> {
    let day = time::Date::parse(text?, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    let (first, last) = (time::macros::date!(2000 - 01 - 01), time::macros::date!(9998 - 12 - 31));
    Some(day.clamp(first, last))
}

/// Local midnight of `day` as RFC 3339 UTC (no `+` to escape in a URL).
pub(super) fn midnight_utc(day: time::Date, zone: Zone) -> String {
    let offset = time::UtcOffset::from_whole_seconds(zone.0 * 60).unwrap_or(time::UtcOffset::UTC);
    let at = day.midnight().assume_offset(offset).to_offset(time::UtcOffset::UTC);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The day a run counts on, in the viewer's zone: the day it ended, as a period's runs are chosen
/// (by their end). A night's run that began before a period is in it, in its day's bar and on its
/// day in the spreadsheet.
fn day_of(run: &Usage, zone: Zone) -> Option<time::Date> {
    zone.local(&run.ended_at).map(|at| at.date())
}

fn ymd(day: time::Date) -> String {
    day.format(time::macros::format_description!("[year]-[month]-[day]")).unwrap_or_default()
}

/// `GET /admin/usage?from=&to=`: minutes per day and per farmer, the runs, and the CSV.
pub async fn usage(
    State(web): State<WebState>,
    PageQuery(query): PageQuery<Period>,
    OwnerPage(page): OwnerPage,
) -> Result<Response, Response> {
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let (from, to) = period(&query, zone, web.app.now());
    let range = format!("from={}&to={}", midnight_utc(from, zone), midnight_utc(to + time::Duration::days(1), zone));
    let usage_path = format!("/api/admin/usage?{range}");
    let receipts_path = format!("/api/admin/receipts?{range}");
    let (usage, users, receipts) = tokio::join!(
        page.get::<Vec<Usage>>(&web, &usage_path),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<crate::web::api::Receipt>>(&web, &receipts_path),
    );
    let (usage, users, receipts) = (usage?, users?, receipts?);
    let o = t.owner;
    let names: HashMap<String, String> = users.iter().map(|u| (u.user.id.clone(), u.user.name.clone())).collect();
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| t.unknown_user.to_string());

    let mut per_day: Vec<(time::Date, i64)> = Vec::new();
    let mut day = from;
    while day <= to {
        per_day.push((day, 0));
        day = day.next_day().unwrap_or(day);
        if per_day.len() as i64 >= MAX_DAYS {
            break;
        }
    }
    let mut per_user: HashMap<String, i64> = HashMap::new();
    for u in &usage {
        if let Some(day) = day_of(u, zone)
            && let Some(slot) = per_day.iter_mut().find(|(d, _)| *d == day)
        {
            slot.1 += u.charged_seconds;
        }
        *per_user.entry(u.user_id.clone()).or_default() += u.charged_seconds;
    }
    let day_bars: Vec<Bar> = per_day.iter().map(|(d, s)| Bar { label: day_month(*d, lang), value: *s }).collect();
    // Cash taken: the receipts of the same days, per day and per farmer; a void receipt counts
    // for none (it is listed below, marked).
    let counted: Vec<&crate::web::api::Receipt> = receipts.iter().filter(|r| r.void.is_none()).collect();
    let mut cash_per_day: Vec<(time::Date, i64)> = per_day.iter().map(|(d, _)| (*d, 0)).collect();
    let mut cash_per_user: HashMap<String, i64> = HashMap::new();
    for r in &counted {
        if let Some(local) = zone.local(&r.at)
            && let Some(slot) = cash_per_day.iter_mut().find(|(d, _)| *d == local.date())
        {
            slot.1 += r.cash_counted();
        }
        *cash_per_user.entry(r.user_id.clone()).or_default() += r.cash_counted();
    }
    let cash_day_bars: Vec<Bar> =
        cash_per_day.iter().map(|(d, taka)| Bar { label: day_month(*d, lang), value: *taka }).collect();
    let mut cash_user_bars: Vec<Bar> =
        cash_per_user.iter().map(|(id, taka)| Bar { label: name_of(id), value: *taka }).collect();
    cash_user_bars.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.label.cmp(&b.label)));
    let cash_total: i64 = receipts.iter().map(|r| r.cash_counted()).sum();
    let mut user_bars: Vec<Bar> = per_user.iter().map(|(id, s)| Bar { label: name_of(id), value: *s }).collect();
    user_bars.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.label.cmp(&b.label)));
    let total: i64 = usage.iter().map(|u| u.charged_seconds).sum();
    let csv = format!("/admin/usage.csv?from={}&to={}", ymd(from), ymd(to));
    let content = html! {
        section.card {
            h2 { (t.usage_title) }
            form.period method="get" action="/admin/usage" {
                label { (t.from) " " input type="date" name="from" value=(ymd(from)); }
                label { (t.to) " " input type="date" name="to" value=(ymd(to)); }
                button.secondary type="submit" { (t.show) }
                a.button.secondary href=(csv) { (t.export_csv) }
            }
            p.total { (crate::web::i18n::fill(t.total_minutes, &[&duration(total, lang)])) }
        }
        section.card {
            h2 { (t.per_day) }
            // An empty period is said, not drawn (an axis from 0 to 0.0).
            @if usage.is_empty() { p.muted { (t.no_usage) } }
            @else { (chart::columns(&day_bars, t.chart_label_day, lang, &chart::Axes { unit: t.unit_min, across: t.axis_day })) }
        }
        section.card {
            h2 { (t.per_user) }
            @if user_bars.is_empty() { p.muted { (t.no_usage) } }
            @else { (chart::rows(&user_bars, t.chart_label_user, lang, t.unit_min)) }
        }
        section.card #revenue {
            h2 { (o.revenue_per_day) }
            p.total { (fill(o.total_revenue, &[&super::owner::taka(o, cash_total, lang)])) }
            @if counted.is_empty() { p.muted { (o.no_receipts) } }
            @else { (chart::columns_of(&cash_day_bars, o.chart_label_revenue, lang, &chart::Axes { unit: o.unit_taka, across: t.axis_day }, &chart::amount_text)) }
        }
        section.card {
            h2 { (o.revenue_per_user) }
            @if cash_user_bars.is_empty() { p.muted { (o.no_receipts) } }
            @else { (chart::rows_of(&cash_user_bars, o.revenue_per_user, lang, o.unit_taka, &chart::amount_text)) }
        }
        section.card #receipts {
            h2 { (o.receipts_title) }
            (super::owner::receipts_table(&page, &receipts))
        }
        section.card {
            h2 { (t.history_title) }
            (usage_table(&page, &usage, Some(&|id: &str| name_of(id))))
        }
    };
    Ok(page.render(Tab::AdminUsage, Live::Off, t.nav_usage, content))
}

/// `GET /admin/usage.csv`: the period's runs for a spreadsheet, in the viewer's language and time
/// zone: the day each counts on (as the chart's bars), its start and end with their dates, names,
/// minutes, the reason in words; named after the pump and the dates. Numbers stay in ASCII digits
/// so spreadsheets can add them up; a byte-order mark lets them read Bangla.
pub async fn usage_csv(
    State(web): State<WebState>,
    PageQuery(query): PageQuery<Period>,
    OwnerPage(page): OwnerPage,
) -> Result<Response, Response> {
    let (t, zone) = (page.t(), page.visit.zone);
    let (from, to) = period(&query, zone, web.app.now());
    let range = format!("from={}&to={}", midnight_utc(from, zone), midnight_utc(to + time::Duration::days(1), zone));
    let usage_path = format!("/api/admin/usage?{range}");
    let (usage, users, devices) = tokio::join!(
        page.get::<Vec<Usage>>(&web, &usage_path),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<Device>>(&web, "/api/admin/devices"),
    );
    let (usage, users, devices) = (usage?, users?, devices?);
    let names: HashMap<&str, &str> = users.iter().map(|u| (u.user.id.as_str(), u.user.name.as_str())).collect();
    let local = |at: &str| zone.local(at);
    let minutes = |seconds: i64| format!("{:.1}", seconds as f64 / 60.0);
    let mut csv = String::from("\u{feff}");
    csv.push_str(&t.csv_columns.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
    csv.push('\n');
    let stamp = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    for u in usage.iter().rev() {
        let (start, end) = (local(&u.started_at), local(&u.ended_at));
        let row = [
            day_of(u, zone).map(ymd).unwrap_or_default(),
            start.and_then(|s| s.format(&stamp).ok()).unwrap_or_default(),
            end.and_then(|e| e.format(&stamp).ok()).unwrap_or_default(),
            csv_field(names.get(u.user_id.as_str()).copied().unwrap_or(t.unknown_user)),
            minutes(u.running_seconds),
            minutes(u.held_seconds),
            minutes(u.charged_seconds),
            csv_field(&words(t.end_reasons, &u.end_reason)),
        ];
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    // The pump's name: its device's, else its owner's.
    let pump = devices.first().map_or(page.me.name.as_str(), |d| d.name.as_str());
    let name = format!("{pump} {} {}.csv", ymd(from), ymd(to));
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_to_two_weeks_and_are_capped() {
        let zone = Zone(360);
        let q = Period { from: Some("2026-01-01".into()), to: Some("2026-12-31".into()) };
        let (from, to) = period(&q, zone, pumppilot_engine::Timestamp(0));
        assert_eq!((to - from).whole_days(), MAX_DAYS - 1);
        let q = Period { from: None, to: Some("2026-11-27".into()) };
        assert_eq!(ymd(period(&q, zone, pumppilot_engine::Timestamp(0)).0), "2026-11-14");
        assert_eq!(midnight_utc(time::macros::date!(2026 - 11 - 27), zone), "2026-11-26T18:00:00Z");
    }

    #[test]
    fn ids_in_paths_are_plain() {
        assert!(valid_id("0191e5a4-7c1d-7f00-8000-000000000000"));
        assert!(!valid_id("../../master"));
        assert!(!valid_id("x?adminId=y"));
        assert!(!valid_id(""));
    }
}
