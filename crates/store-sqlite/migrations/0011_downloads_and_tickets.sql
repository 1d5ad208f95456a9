-- How far each device has downloaded a firmware image (pumppilot_store::Store::record_firmware_download):
-- one row per device, for the last version it asked for, so the owner sees the progress whichever
-- server answers and after a restart. Rows last written long ago are purged.
CREATE TABLE firmware_downloads (
    device_id TEXT PRIMARY KEY,
    admin_id TEXT NOT NULL,
    version TEXT NOT NULL,
    received INTEGER NOT NULL CHECK (received >= 0),
    size INTEGER NOT NULL CHECK (size >= 0),
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX firmware_downloads_admin ON firmware_downloads (admin_id);
CREATE INDEX firmware_downloads_at ON firmware_downloads (at);

-- Pushes Expo accepted whose receipts are still to be read (pumppilot_store::Store::add_push_tickets):
-- kept until their receipt is read or they expire (Expo keeps receipts about a day).
CREATE TABLE push_tickets (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    token TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    ask_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX push_tickets_ask ON push_tickets (ask_at);
CREATE INDEX push_tickets_expires ON push_tickets (expires_at);
