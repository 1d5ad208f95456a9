//! RFID cards: bound within a tenant, unique by UID there, moved by rebinding.

use pumppilot_engine::UserId;
use pumppilot_store::{Card, Store, StoreError};

use crate::support::{assert_err, at, tenancy};

/// A card is bound to a user of its own tenant only; binding it again moves it; another tenant
/// may hold a card with the same UID; unbinding removes it once.
pub async fn cards_bind_move_and_stay_in_their_tenant(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (a, b) = (rahim.users[0], rahim.users[1]);
    let card = |admin, uid: &str, user, seconds| Card {
        admin_id: admin,
        uid: uid.to_owned(),
        user_id: user,
        bound_at: at(seconds),
    };

    store.bind_card(&card(rahim.admin, "04A1B2C3", a, 10)).await.expect("bind");
    assert_eq!(store.card(rahim.admin, "04A1B2C3").await.unwrap(), Some(card(rahim.admin, "04A1B2C3", a, 10)));
    assert_eq!(store.card(q.admin, "04A1B2C3").await.unwrap(), None, "cards are per tenant");

    // Binding to a user of another tenant, to the admin, or to nobody is refused and changes nothing.
    for stranger in [q.users[0], rahim.admin.0, UserId::new()] {
        assert_err!(store.bind_card(&card(rahim.admin, "04A1B2C3", stranger, 11)).await, StoreError::NotFound);
    }
    assert_eq!(store.card(rahim.admin, "04A1B2C3").await.unwrap().map(|c| c.user_id), Some(a));

    // The same UID in another tenant is that tenant's own card.
    store.bind_card(&card(q.admin, "04A1B2C3", q.users[0], 12)).await.expect("bind in q");
    store.bind_card(&card(rahim.admin, "DEADBEEF", a, 13)).await.expect("second card");
    // Rebinding moves the card.
    store.bind_card(&card(rahim.admin, "04A1B2C3", b, 14)).await.expect("move");
    assert_eq!(
        store.cards(rahim.admin).await.unwrap(),
        [card(rahim.admin, "DEADBEEF", a, 13), card(rahim.admin, "04A1B2C3", b, 14)]
    );
    assert_eq!(store.cards(q.admin).await.unwrap(), [card(q.admin, "04A1B2C3", q.users[0], 12)]);

    store.unbind_card(rahim.admin, "04A1B2C3").await.expect("unbind");
    assert_err!(store.unbind_card(rahim.admin, "04A1B2C3").await, StoreError::NotFound);
    assert_eq!(store.card(rahim.admin, "04A1B2C3").await.unwrap(), None);
    assert_eq!(store.card(q.admin, "04A1B2C3").await.unwrap().map(|c| c.user_id), Some(q.users[0]));
}
