-- Field safety: one controller per pump, restart protection, and what devices report of themselves.

-- The device that drives the tenant's motor (NULL: the next device to poll becomes it).
ALTER TABLE tenants ADD COLUMN controller_id TEXT;
-- The owner's restart protection for this motor; NULL takes the server's default.
ALTER TABLE tenants ADD COLUMN min_off_ms INTEGER CHECK (min_off_ms >= 0);
ALTER TABLE tenants ADD COLUMN grid_settle_ms INTEGER CHECK (grid_settle_ms >= 0);
ALTER TABLE tenants ADD COLUMN max_starts_per_hour INTEGER CHECK (max_starts_per_hour >= 0);
-- Restart protection's memory: the command is ON; when it last went OFF; when the grid last came
-- back; the starts of the last hour (milliseconds, comma-separated, oldest first).
ALTER TABLE tenants ADD COLUMN motor_on INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN motor_off_since INTEGER;
ALTER TABLE tenants ADD COLUMN grid_up_since INTEGER;
ALTER TABLE tenants ADD COLUMN motor_starts TEXT NOT NULL DEFAULT '';

-- What a device reports of itself: why it last started and when, its RFID reader, its feedback input.
ALTER TABLE devices ADD COLUMN last_reset TEXT;
ALTER TABLE devices ADD COLUMN last_reset_at INTEGER;
ALTER TABLE devices ADD COLUMN reader TEXT;
ALTER TABLE devices ADD COLUMN feedback INTEGER;

-- A one-row table the readiness probe writes to: it proves the store can commit, not only read.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
) STRICT;
