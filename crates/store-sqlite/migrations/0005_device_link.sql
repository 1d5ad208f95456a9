-- The authenticated device link: the request counters the server accepted (see
-- pumppilot_store::LinkCounters). 0: the device has never signed a request.
ALTER TABLE devices ADD COLUMN link_highest INTEGER NOT NULL DEFAULT 0 CHECK (link_highest >= 0);
-- Bit i: counter link_highest - 1 - i was accepted too (a 64-bit mask, stored as a signed integer).
ALTER TABLE devices ADD COLUMN link_below INTEGER NOT NULL DEFAULT 0;
