-- PumpPilot schema, version 1.
-- Timestamps are INTEGER milliseconds since the Unix epoch; ids are TEXT (32 hex digits); token and
-- key hashes are BLOBs; enums are their upper-case store names (roles lower-case).

-- Admins, users and the master in one table. A user's wallet is balance_seconds; an admin's
-- admin_id is its own id; the master has none.
CREATE TABLE accounts (
    id              TEXT    PRIMARY KEY NOT NULL,
    username        TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('master', 'admin', 'user')),
    admin_id        TEXT    REFERENCES tenants (admin_id) DEFERRABLE INITIALLY DEFERRED,
    password_hash   TEXT    NOT NULL,
    suspended       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    balance_seconds INTEGER NOT NULL DEFAULT 0 CHECK (balance_seconds >= 0),
    CHECK ((role = 'master') = (admin_id IS NULL))
) STRICT;
CREATE INDEX accounts_admin ON accounts (admin_id, created_at);
CREATE INDEX accounts_role ON accounts (role, created_at);

-- One row per admin: the engine state that is not a queue entry or a wallet.
CREATE TABLE tenants (
    admin_id      TEXT    PRIMARY KEY NOT NULL REFERENCES accounts (id),
    version       INTEGER NOT NULL DEFAULT 0,
    suspended     INTEGER NOT NULL DEFAULT 0,
    seq           INTEGER NOT NULL DEFAULT 0,
    last_poll_at  INTEGER,
    load_shedding INTEGER NOT NULL DEFAULT 0,
    ready         INTEGER NOT NULL DEFAULT 0,
    relay         INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Every queue entry, live (WAITING, RUNNING, HOLD) or ended (COMPLETED, CANCELLED).
CREATE TABLE queues (
    id                TEXT    PRIMARY KEY NOT NULL,
    admin_id          TEXT    NOT NULL REFERENCES tenants (admin_id),
    user_id           TEXT    NOT NULL REFERENCES accounts (id),
    status            TEXT    NOT NULL CHECK (status IN ('WAITING', 'RUNNING', 'HOLD', 'COMPLETED', 'CANCELLED')),
    -- 1 = next in line; set exactly while WAITING.
    position          INTEGER CHECK ((status = 'WAITING') = (position IS NOT NULL) AND position >= 1),
    hold_reason       TEXT,
    requested_seconds INTEGER,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    phase_since       INTEGER,
    running_ms        INTEGER NOT NULL,
    held_ms           INTEGER NOT NULL,
    ended_at          INTEGER,
    end_reason        TEXT,
    charged_seconds   INTEGER
) STRICT;
CREATE INDEX queues_admin_position ON queues (admin_id, position);
CREATE INDEX queues_user ON queues (user_id);
-- The interlock: never two active (RUNNING or HOLD) entries for one admin.
CREATE UNIQUE INDEX queues_one_active_per_admin ON queues (admin_id) WHERE status IN ('RUNNING', 'HOLD');
-- One WAITING entry per place in line.
CREATE UNIQUE INDEX queues_waiting_position ON queues (admin_id, position) WHERE status = 'WAITING';

-- One row per finished run.
CREATE TABLE usage_history (
    entry_id        TEXT    PRIMARY KEY NOT NULL,
    admin_id        TEXT    NOT NULL REFERENCES tenants (admin_id),
    user_id         TEXT    NOT NULL REFERENCES accounts (id),
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER NOT NULL,
    running_seconds INTEGER NOT NULL,
    held_seconds    INTEGER NOT NULL,
    charged_seconds INTEGER NOT NULL,
    end_reason      TEXT    NOT NULL
) STRICT;
CREATE INDEX usage_history_admin_ended ON usage_history (admin_id, ended_at);
CREATE INDEX usage_history_user_ended ON usage_history (user_id, ended_at);

-- Every change to a wallet; a wallet is always the sum of its user's entries.
CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES accounts (id),
    admin_id      TEXT    NOT NULL REFERENCES tenants (admin_id),
    at            INTEGER NOT NULL,
    delta_seconds INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    actor_id      TEXT,
    note          TEXT    NOT NULL,
    entry_id      TEXT,
    request_id    TEXT
) STRICT;
CREATE INDEX ledger_user_at ON ledger (user_id, at);

CREATE TABLE minute_requests (
    id         TEXT    PRIMARY KEY NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES accounts (id),
    admin_id   TEXT    NOT NULL REFERENCES tenants (admin_id),
    minutes    INTEGER NOT NULL,
    note       TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED')),
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT
) STRICT;
CREATE INDEX minute_requests_admin_status ON minute_requests (admin_id, status, created_at);
CREATE INDEX minute_requests_user ON minute_requests (user_id, created_at);

-- Cookie sessions of the dashboard.
CREATE TABLE web_sessions (
    id                    TEXT    PRIMARY KEY NOT NULL,
    user_id               TEXT    NOT NULL REFERENCES accounts (id),
    access_hash           BLOB    NOT NULL,
    access_expires_at     INTEGER NOT NULL,
    refresh_hash          BLOB,
    previous_refresh_hash BLOB,
    refresh_expires_at    INTEGER,
    device_name           TEXT,
    created_at            INTEGER NOT NULL,
    revoked_at            INTEGER
) STRICT;
CREATE UNIQUE INDEX web_sessions_access ON web_sessions (access_hash);
CREATE INDEX web_sessions_refresh ON web_sessions (refresh_hash);
CREATE INDEX web_sessions_previous_refresh ON web_sessions (previous_refresh_hash);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- Bearer and refresh tokens of the mobile app.
CREATE TABLE mobile_sessions (
    id                    TEXT    PRIMARY KEY NOT NULL,
    user_id               TEXT    NOT NULL REFERENCES accounts (id),
    access_hash           BLOB    NOT NULL,
    access_expires_at     INTEGER NOT NULL,
    refresh_hash          BLOB,
    previous_refresh_hash BLOB,
    refresh_expires_at    INTEGER,
    device_name           TEXT,
    created_at            INTEGER NOT NULL,
    revoked_at            INTEGER
) STRICT;
CREATE UNIQUE INDEX mobile_sessions_access ON mobile_sessions (access_hash);
CREATE INDEX mobile_sessions_refresh ON mobile_sessions (refresh_hash);
CREATE INDEX mobile_sessions_previous_refresh ON mobile_sessions (previous_refresh_hash);
CREATE INDEX mobile_sessions_user ON mobile_sessions (user_id);

-- Devices at the pumps, with what each last reported (last_seen_at is NULL until the first poll).
CREATE TABLE devices (
    id            TEXT    PRIMARY KEY NOT NULL,
    admin_id      TEXT    NOT NULL REFERENCES tenants (admin_id),
    name          TEXT    NOT NULL,
    key_hash      BLOB    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER,
    load_shedding INTEGER,
    ready         INTEGER,
    relay         INTEGER,
    firmware      TEXT,
    uptime_ms     INTEGER,
    rssi          INTEGER
) STRICT;
CREATE INDEX devices_admin ON devices (admin_id, created_at);

-- Who did what, and when. Not tied to other rows: a log line outlives what it mentions.
CREATE TABLE audit_logs (
    id        INTEGER PRIMARY KEY,
    admin_id  TEXT,
    at        INTEGER NOT NULL,
    actor_id  TEXT,
    action    TEXT    NOT NULL,
    target_id TEXT,
    detail    TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_logs_admin_at ON audit_logs (admin_id, at);
CREATE INDEX audit_logs_at ON audit_logs (at);
