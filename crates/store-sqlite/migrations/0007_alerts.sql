-- Alerts: each person's notifications (the bell), the outbox their delivery is claimed from, and
-- each person's alert profile.

CREATE TABLE notifications (
    id        TEXT    PRIMARY KEY NOT NULL,
    user_id   TEXT    NOT NULL REFERENCES accounts (id),
    admin_id  TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    -- The facts its text is made from, as JSON.
    facts     TEXT    NOT NULL,
    read      INTEGER NOT NULL DEFAULT 0,
    -- Notices with one key are one notice (a condition that lasts is told once).
    key       TEXT    UNIQUE
) STRICT;
CREATE INDEX notifications_by_user ON notifications (user_id, at DESC, id DESC);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read = 0;

-- One row per notification until it is delivered or given up. A sender claims a row by setting
-- claimed_by and claimed_until in one UPDATE; another may take it only after claimed_until.
CREATE TABLE outbox (
    id            TEXT    PRIMARY KEY NOT NULL REFERENCES notifications (id),
    due_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Channels already delivered, comma-separated.
    delivered     TEXT    NOT NULL DEFAULT '',
    claimed_by    TEXT,
    claimed_until INTEGER,
    done_at       INTEGER,
    failed_at     INTEGER,
    last_error    TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox (due_at) WHERE done_at IS NULL AND failed_at IS NULL;

CREATE TABLE alert_profiles (
    user_id       TEXT    PRIMARY KEY NOT NULL REFERENCES accounts (id),
    phone         TEXT    UNIQUE,
    -- Expo push tokens, one per line.
    push_tokens   TEXT    NOT NULL DEFAULT '',
    language      TEXT    NOT NULL DEFAULT 'en',
    -- KIND:CHANNEL pairs the person does not want, comma-separated.
    muted         TEXT    NOT NULL DEFAULT '',
    quiet_from    INTEGER CHECK (quiet_from BETWEEN 0 AND 1439),
    quiet_to      INTEGER CHECK (quiet_to BETWEEN 0 AND 1439),
    quiet_offset  INTEGER
) STRICT;
