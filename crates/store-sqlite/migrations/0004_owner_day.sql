-- The owner's day: terms per pump, receipts of cash recharges.

-- What an owner sets for the farmers of their pump; a tenant without a row has the defaults.
CREATE TABLE terms (
    admin_id            TEXT    PRIMARY KEY NOT NULL REFERENCES tenants (admin_id),
    max_request_minutes INTEGER NOT NULL CHECK (max_request_minutes >= 1),
    price_per_hour_taka INTEGER CHECK (price_per_hour_taka >= 0)
) STRICT;

-- The receipt of each recharge paid in cash, written with the recharge's ledger entry.
CREATE TABLE receipts (
    id          TEXT    PRIMARY KEY NOT NULL,
    admin_id    TEXT    NOT NULL REFERENCES tenants (admin_id),
    user_id     TEXT    NOT NULL REFERENCES accounts (id),
    at          INTEGER NOT NULL,
    minutes     INTEGER NOT NULL CHECK (minutes > 0),
    cash_taka   INTEGER NOT NULL CHECK (cash_taka >= 0),
    recorded_by TEXT    NOT NULL
) STRICT;
CREATE INDEX receipts_admin_at ON receipts (admin_id, at);
