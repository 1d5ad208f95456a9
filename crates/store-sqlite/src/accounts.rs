//! Accounts: the master, admins (each with its tenant row) and users.

use pumppilot_engine::{AdminId, UserId};
use pumppilot_store::{Account, OwnerPage, OwnerQuery, OwnerRow, Role, StoreError};
use rusqlite::{Connection, TransactionBehavior, named_params};

use crate::{
    error::{Failure, constraint_message, invariant},
    rows::{self, account_columns, query_all, query_opt},
};

/// Creates an account; an admin gets its tenant (version 0) in the same transaction.
pub(crate) fn create(conn: &mut Connection, account: &Account) -> Result<(), Failure> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    create_in(&tx, account)?;
    // A user's admin_id is checked here (a deferred reference to `tenants`).
    tx.commit()?;
    Ok(())
}

/// [`create`] inside the caller's transaction.
pub(crate) fn create_in(tx: &Connection, account: &Account) -> Result<(), Failure> {
    let tenant_ok = match account.role {
        Role::Master => account.admin_id.is_none(),
        Role::Admin => account.admin_id == Some(AdminId(account.id)),
        Role::User => account.admin_id.is_some(),
    };
    if !tenant_ok {
        return Err(invariant(format!(
            "a {} account cannot have admin_id {:?}",
            account.role.as_str(),
            account.admin_id.map(|admin| admin.to_string())
        )));
    }
    insert(tx, account)
}

/// Writes an account, and an admin's tenant row (version 0), inside the caller's transaction.
pub(crate) fn insert(tx: &Connection, account: &Account) -> Result<(), Failure> {
    tx.prepare_cached(
        "INSERT INTO accounts (id, username, name, role, admin_id, password_hash, suspended, created_at) \
         VALUES (:id, :username, :name, :role, :admin_id, :password_hash, :suspended, :created_at)",
    )?
    .execute(named_params! {
        ":id": account.id.to_string(),
        ":username": account.username,
        ":name": account.name,
        ":role": account.role.as_str(),
        ":admin_id": account.admin_id.map(|admin| admin.to_string()),
        ":password_hash": account.password_hash,
        ":suspended": account.suspended,
        ":created_at": account.created_at.millis(),
    })
    .map_err(|error| match constraint_message(&error) {
        Some(message) if message.contains("accounts.username") => Failure::Store(StoreError::UsernameTaken),
        _ => Failure::Sql(error),
    })?;
    if account.role == Role::Admin {
        tx.prepare_cached("INSERT INTO tenants (admin_id) VALUES (?1)")?.execute([account.id.to_string()])?;
    }
    Ok(())
}

/// One account by id.
pub(crate) fn by_id(conn: &Connection, id: UserId) -> Result<Option<Account>, Failure> {
    let sql = concat!("SELECT ", account_columns!(), " FROM accounts WHERE id = ?1");
    query_opt(conn, sql, [id.to_string()], rows::account)
}

/// One account by its (exact) username.
pub(crate) fn by_username(conn: &Connection, username: &str) -> Result<Option<Account>, Failure> {
    let sql = concat!("SELECT ", account_columns!(), " FROM accounts WHERE username = ?1");
    query_opt(conn, sql, [username], rows::account)
}

/// Accounts of one role, of one tenant or of all, oldest first.
pub(crate) fn list(conn: &Connection, role: Role, admin: Option<AdminId>) -> Result<Vec<Account>, Failure> {
    match admin {
        Some(admin) => {
            let sql = concat!(
                "SELECT ",
                account_columns!(),
                " FROM accounts WHERE role = ?1 AND admin_id = ?2 ORDER BY created_at, id"
            );
            query_all(conn, sql, (role.as_str(), admin.to_string()), rows::account)
        }
        None => {
            let sql = concat!("SELECT ", account_columns!(), " FROM accounts WHERE role = ?1 ORDER BY created_at, id");
            query_all(conn, sql, [role.as_str()], rows::account)
        }
    }
}

/// One page of pump owners in username order with their farmer counts, and how many owners the
/// prefix matches, in one read transaction (owners through `accounts_role_username`, farmers
/// counted through `accounts_admin_role`).
pub(crate) fn owner_page(conn: &mut Connection, query: &OwnerQuery) -> Result<OwnerPage, Failure> {
    let tx = conn.transaction()?;
    let mut filter = String::from("role = 'admin'");
    if query.prefix.is_some() {
        filter.push_str(" AND username >= :low AND username < :high");
    }
    let mut page_filter = filter.clone();
    if query.after.is_some() {
        page_filter.push_str(" AND username > :after");
    }
    let sql = format!(
        "SELECT {}, (SELECT COUNT(*) FROM accounts AS farmer WHERE farmer.admin_id = owner.id AND farmer.role = 'user') \
         AS farmers FROM accounts AS owner WHERE {page_filter} ORDER BY username LIMIT :limit",
        account_columns!()
    );
    let range = query.prefix_range();
    let limit = i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":limit", &limit)];
    if let Some((low, high)) = &range {
        params.push((":low", low));
        params.push((":high", high));
    }
    if let Some(after) = &query.after {
        params.push((":after", after));
    }
    let mut owners = {
        let mut statement = tx.prepare_cached(&sql)?;
        let rows = statement.query_map(params.as_slice(), |row| {
            let farmers: i64 = row.get("farmers")?;
            Ok(OwnerRow { account: rows::account(row)?, farmers: u64::try_from(farmers).unwrap_or(0) })
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let more = owners.len() > query.limit;
    owners.truncate(query.limit);
    let count_params: Vec<(&str, &dyn rusqlite::ToSql)> =
        params.into_iter().filter(|(name, _)| matches!(*name, ":low" | ":high")).collect();
    let total: i64 = tx
        .prepare_cached(&format!("SELECT COUNT(*) FROM accounts WHERE {filter}"))?
        .query_row(count_params.as_slice(), |row| row.get(0))?;
    drop(tx);
    Ok(OwnerPage { owners, more, total: u64::try_from(total).unwrap_or(0) })
}

/// How many farmers each tenant has, in the order asked.
pub(crate) fn farmer_counts(conn: &Connection, admins: &[AdminId]) -> Result<Vec<u64>, Failure> {
    let mut statement = conn.prepare_cached("SELECT COUNT(*) FROM accounts WHERE admin_id = ?1 AND role = 'user'")?;
    admins
        .iter()
        .map(|admin| {
            let count: i64 = statement.query_row([admin.to_string()], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .collect()
}

/// Sets an account's suspended flag.
pub(crate) fn set_suspended(conn: &Connection, id: UserId, suspended: bool) -> Result<(), Failure> {
    let changed = conn
        .prepare_cached("UPDATE accounts SET suspended = ?2 WHERE id = ?1")?
        .execute((id.to_string(), suspended))?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

/// Sets the suspended flag of an account of one tenant, inside a commit.
pub(crate) fn set_suspended_in_tenant(
    conn: &Connection,
    admin: AdminId,
    id: UserId,
    suspended: bool,
) -> Result<(), Failure> {
    let changed = conn
        .prepare_cached("UPDATE accounts SET suspended = ?3 WHERE id = ?1 AND admin_id = ?2")?
        .execute((id.to_string(), admin.to_string(), suspended))?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}
