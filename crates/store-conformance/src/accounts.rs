//! Accounts: unique usernames, round trips, listing by role and tenant.

use pumppilot_engine::{AdminId, UserId};
use pumppilot_store::{OwnerQuery, Role, Store, StoreError};

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

/// The master's list of pump owners comes a page at a time in username (byte) order: every owner
/// exactly once, suspended ones too, never the master or a farmer, each with their farmer count;
/// `more` says whether a page follows, `total` counts every owner the prefix matches.
pub async fn owners_come_a_page_at_a_time_with_their_farmer_counts(store: &dyn Store) {
    store.create_account(&master_account("master", at(0))).await.unwrap();
    // Created out of username order; `b` < `babul` < `babul.k` < `babul2` in byte order.
    let names = ["rahim", "babul2", "amina", "babul.k", "zaman", "b", "babul"];
    let mut owners = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut owner = admin_account(name, at(1 + i as i64));
        owner.suspended = *name == "zaman";
        store.create_account(&owner).await.unwrap();
        owners.push(owner);
    }
    let id = |name: &str| AdminId(owners.iter().find(|o| o.username == name).unwrap().id);
    // Farmers sort before and between the owners; none is an owner.
    let farmers = [("rahim", "aaa"), ("rahim", "rahim-1"), ("rahim", "rahim-2"), ("babul", "babul-1")];
    for (i, (owner, name)) in farmers.iter().enumerate() {
        store.create_account(&user_account(id(owner), name, at(20 + i as i64))).await.unwrap();
    }
    let farmers_of = |name: &str| match name {
        "rahim" => 3,
        "babul" => 1,
        _ => 0,
    };
    let mut sorted: Vec<&str> = names.to_vec();
    sorted.sort_unstable();

    // Two at a time, each page after the last username of the one before.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.owner_page(&OwnerQuery { after: after.clone(), prefix: None, limit: 2 }).await.unwrap();
        assert_eq!(page.total, 7, "every owner, whatever the page");
        assert!(page.owners.len() <= 2);
        for row in &page.owners {
            assert_eq!(row.account.role, Role::Admin);
            assert_eq!(Some(&row.account), owners.iter().find(|o| o.id == row.account.id), "as stored");
            assert_eq!(row.farmers, farmers_of(&row.account.username), "{}", row.account.username);
            seen.push(row.account.username.clone());
        }
        assert_eq!(page.more, seen.len() < 7, "more after {seen:?}");
        if !page.more {
            break;
        }
        after = page.owners.last().map(|row| row.account.username.clone());
    }
    assert_eq!(seen, sorted, "every owner once, in username order");

    let all = store.owner_page(&OwnerQuery { after: None, prefix: None, limit: 100 }).await.unwrap();
    assert_eq!(all.owners.len(), 7);
    assert!(!all.more);
    assert!(all.owners.iter().find(|row| row.account.username == "zaman").unwrap().account.suspended);
    let exact = store.owner_page(&OwnerQuery { after: None, prefix: None, limit: 7 }).await.unwrap();
    assert_eq!((exact.owners.len(), exact.more), (7, false), "a page that ends with the last owner says no more");

    // After any name, owner or not.
    let page = |after: Option<&str>, prefix: Option<&str>, limit: usize| {
        let query = OwnerQuery { after: after.map(str::to_owned), prefix: prefix.map(str::to_owned), limit };
        async move {
            let page = store.owner_page(&query).await.unwrap();
            let names: Vec<String> = page.owners.iter().map(|row| row.account.username.clone()).collect();
            (names, page.more, page.total)
        }
    };
    assert_eq!(page(Some("c"), None, 10).await, (vec!["rahim".into(), "zaman".into()], false, 7));
    assert_eq!(page(Some("zaman"), None, 10).await, (vec![], false, 7));
    assert_eq!(page(Some("zz"), None, 10).await, (vec![], false, 7));

    // A prefix narrows the pages and the total.
    assert_eq!(
        page(None, Some("babul"), 10).await,
        (vec!["babul".into(), "babul.k".into(), "babul2".into()], false, 3)
    );
    assert_eq!(page(None, Some("b"), 2).await, (vec!["b".into(), "babul".into()], true, 4));
    assert_eq!(page(Some("babul"), Some("b"), 2).await, (vec!["babul.k".into(), "babul2".into()], false, 4));
    assert_eq!(page(None, Some("rahim"), 10).await, (vec!["rahim".into()], false, 1), "not its farmers");
    assert_eq!(page(None, Some("master"), 10).await, (vec![], false, 0), "not the master");
    assert_eq!(page(None, Some("x"), 10).await, (vec![], false, 0));

    // Counts alone, in the order asked, over more tenants than one query names.
    assert_eq!(store.farmer_counts(&[]).await.unwrap(), Vec::<u64>::new());
    let mut asked: Vec<AdminId> = (0..40).map(|_| AdminId(UserId::new())).collect();
    asked[3] = id("babul");
    asked[35] = id("rahim");
    asked[36] = id("amina");
    let counts = store.farmer_counts(&asked).await.unwrap();
    let mut expected = vec![0; 40];
    expected[3] = 1;
    expected[35] = 3;
    assert_eq!(counts, expected);
}
