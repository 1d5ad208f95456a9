-- The authenticated device link reserves counters in windows (see
-- pumppilot_store::CounterWindow): link_highest is now the reserved floor, the last counter any
-- server was given; no counter at or below it is accepted again. Which counters inside a window
-- came in is the server's memory, so the mask of late counters goes.
ALTER TABLE devices DROP COLUMN link_below;
