//! The audit log.

use super::*;

/// `GET /admin/log`: the audit log, names instead of ids where the tenant knows them.
pub async fn log(State(web): State<WebState>, OwnerPage(page): OwnerPage) -> Result<Response, Response> {
    let (audit, users, devices) = tokio::join!(
        page.get::<Vec<Audit>>(&web, "/api/admin/audit"),
        page.get::<Vec<UserBalance>>(&web, "/api/admin/users"),
        page.get::<Vec<Device>>(&web, "/api/admin/devices"),
    );
    let (audit, users, devices) = (audit?, users?, devices?);
    let (t, lang, zone) = (page.t(), page.lang(), page.visit.zone);
    let mut names: HashMap<&str, &str> = users.iter().map(|u| (u.user.id.as_str(), u.user.name.as_str())).collect();
    names.extend(devices.iter().map(|d| (d.id.as_str(), d.name.as_str())));
    names.insert(page.me.id.as_str(), page.me.name.as_str());
    let name = |id: &Option<String>| match id.as_deref() {
        Some(id) => names.get(id).map_or_else(|| short_id(id), |n| (*n).to_string()),
        None => "—".to_string(),
    };
    let content = html! {
        section.card {
            h2 { (t.audit_title) }
            @if audit.is_empty() { p.muted { (t.no_audit) } }
            @else {
                table.table {
                    thead { tr { th { (t.col_when) } th { (t.col_who) } th { (t.col_action) } th { (t.col_detail) } } }
                    tbody {
                        @for a in &audit {
                            tr {
                                td data-label=(t.col_when) { (date_time(&a.at, zone, lang)) }
                                td data-label=(t.col_who) { (name(&a.actor_id)) }
                                td data-label=(t.col_action) { strong { (words(t.audit_actions, &a.action)) } br; small.muted { (name(&a.target_id)) } }
                                td data-label=(t.col_detail) { (a.detail) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page.render(Tab::AdminLog, Live::Off, t.nav_audit, content))
}

/// The first characters of an id nobody here has a name for (the master, another tenant's).
fn short_id(id: &str) -> String {
    format!("{}…", id.chars().take(8).collect::<String>())
}
