-- Rate limits counted in the store: one row per limited thing (a person, the SMS gateway) with the
-- window it counts and the sends counted in it.
CREATE TABLE send_windows (
    key    TEXT    PRIMARY KEY NOT NULL,
    start  INTEGER NOT NULL,
    count  INTEGER NOT NULL CHECK (count >= 0)
) STRICT;

-- The purge of old notifications looks them up by time.
CREATE INDEX notifications_by_time ON notifications (at);
