-- A receipt the owner took back (a mistaken recharge): when, and by whom. Its minutes are taken
-- from the farmer by a correction in the same transaction, which sets these only while they are
-- null, so a receipt is voided once. A void receipt stays listed and counts for no cash.
ALTER TABLE receipts ADD COLUMN voided_at INTEGER;
ALTER TABLE receipts ADD COLUMN voided_by TEXT;
-- The master's totals sum the cash of the receipts that stand, from the index alone: it holds
-- only those, and names voided_at so that the query's test of it is answered there too.
DROP INDEX receipts_at;
CREATE INDEX receipts_at ON receipts (at, cash_taka, voided_at) WHERE voided_at IS NULL;
