//! Accounts: unique usernames, round trips, listing by role and tenant.

use pumppilot_engine::{AdminId, UserId};
use pumppilot_store::{Role, Store, StoreError};

use crate::support::{admin_account, assert_err, at, master_account, user_account};

/// A username is taken system-wide, whatever the role or tenant.
pub async fn usernames_are_unique(store: &dyn Store) {
    let rahim = admin_account("rahim", at(0));
    store.create_account(&rahim).await.expect("create admin");
    let admin = AdminId(rahim.id);

    let same_name = user_account(admin, "rahim", at(1));
    assert_err!(store.create_account(&same_name).await, StoreError::UsernameTaken);
    let other_admin = admin_account("rahim", at(2));
    assert_err!(store.create_account(&other_admin).await, StoreError::UsernameTaken);

    assert_eq!(store.account_by_username("rahim").await.unwrap(), Some(rahim.clone()));
    assert_eq!(store.account(same_name.id).await.unwrap(), None, "the refused account was not stored");
    assert_eq!(store.accounts(Role::User, Some(admin)).await.unwrap(), vec![]);
    assert_eq!(store.tenant_ids().await.unwrap(), vec![admin], "the refused admin has no tenant");

    let karim = user_account(admin, "karim", at(3));
    store.create_account(&karim).await.expect("another name is free");
    assert_eq!(store.accounts(Role::User, Some(admin)).await.unwrap(), vec![karim]);
}

/// Accounts come back as stored, by id and by username, and list by role and tenant, oldest first.
pub async fn accounts_round_trip_and_filtering(store: &dyn Store) {
    let master = master_account("master", at(0));
    let rahim = admin_account("rahim", at(1));
    let q = admin_account("q", at(2));
    let (rahim_id, q_id) = (AdminId(rahim.id), AdminId(q.id));
    let mut a1 = user_account(rahim_id, "01711000001", at(3));
    a1.suspended = true;
    let b1 = user_account(q_id, "01711000002", at(4));
    let a2 = user_account(rahim_id, "01711000003", at(5));
    for account in [&master, &rahim, &q, &a1, &b1, &a2] {
        store.create_account(account).await.expect("create account");
    }

    for account in [&master, &rahim, &q, &a1, &b1, &a2] {
        assert_eq!(store.account(account.id).await.unwrap().as_ref(), Some(account));
        assert_eq!(store.account_by_username(&account.username).await.unwrap().as_ref(), Some(account));
    }
    assert_eq!(store.account(UserId::new()).await.unwrap(), None);
    assert_eq!(store.account_by_username("nobody").await.unwrap(), None);

    assert_eq!(store.accounts(Role::User, Some(rahim_id)).await.unwrap(), vec![a1.clone(), a2.clone()]);
    assert_eq!(store.accounts(Role::User, Some(q_id)).await.unwrap(), vec![b1.clone()]);
    assert_eq!(store.accounts(Role::User, None).await.unwrap(), vec![a1, b1, a2]);
    assert_eq!(store.accounts(Role::Admin, None).await.unwrap(), vec![rahim.clone(), q]);
    assert_eq!(store.accounts(Role::Admin, Some(rahim_id)).await.unwrap(), vec![rahim]);
    assert_eq!(store.accounts(Role::Master, None).await.unwrap(), vec![master]);
    assert_eq!(store.accounts(Role::User, Some(AdminId(UserId::new()))).await.unwrap(), vec![]);
}

/// The master's suspended flag is set directly; an unknown account is not found.
pub async fn suspending_the_master(store: &dyn Store) {
    let master = master_account("master", at(0));
    store.create_account(&master).await.unwrap();
    store.set_suspended(master.id, true).await.expect("suspend");
    assert!(store.account(master.id).await.unwrap().unwrap().suspended);
    store.set_suspended(master.id, false).await.expect("unsuspend");
    assert!(!store.account(master.id).await.unwrap().unwrap().suspended);
    assert_err!(store.set_suspended(UserId::new(), true).await, StoreError::NotFound);
}
