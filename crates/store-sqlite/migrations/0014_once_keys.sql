-- A recharge or correction sent again (an app's retry after an answer lost on a bad network, a
-- form sent twice) is made once: the key it was sent with is kept on its ledger entry, one entry
-- per key in a tenant. The receipt written with a recharge is kept beside it, so that the one
-- sent again is answered as the first was.
ALTER TABLE ledger ADD COLUMN once_key TEXT;
ALTER TABLE ledger ADD COLUMN receipt_id TEXT;
CREATE UNIQUE INDEX ledger_once_key ON ledger (admin_id, once_key) WHERE once_key IS NOT NULL;
