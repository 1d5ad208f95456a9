-- RFID cards at the pump: a card is bound to one user of a tenant, and its UID is unique within
-- that tenant (two tenants may each have a card with the same UID).
CREATE TABLE cards (
    admin_id TEXT    NOT NULL REFERENCES tenants (admin_id),
    uid      TEXT    NOT NULL,
    user_id  TEXT    NOT NULL REFERENCES accounts (id),
    bound_at INTEGER NOT NULL,
    PRIMARY KEY (admin_id, uid)
) STRICT;
CREATE INDEX cards_user ON cards (user_id);
