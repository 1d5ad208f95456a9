-- Firmware images for updates over the air, and which devices each is meant for.
CREATE TABLE firmware (
    version TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    sha256 BLOB NOT NULL CHECK (length(sha256) = 32),
    signature BLOB NOT NULL CHECK (length(signature) = 64),
    published_at INTEGER NOT NULL,
    -- The share of all devices (0 to 100), unless one tenant goes first.
    rollout_percent INTEGER NOT NULL DEFAULT 0 CHECK (rollout_percent BETWEEN 0 AND 100),
    rollout_tenant TEXT,
    bytes BLOB NOT NULL CHECK (length(bytes) = size)
) STRICT;
