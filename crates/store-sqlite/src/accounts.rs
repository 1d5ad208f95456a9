//! Accounts: the master, admins (each with its tenant row) and users.

use pumppilot_engine::{AdminId, UserId};
use pumppilot_store::{Account, Role, StoreError};
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
