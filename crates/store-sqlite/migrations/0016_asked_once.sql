-- A request sent again with its key is compared with what it asked, never with what was derived
-- from it. A recharge that gave no cash took the pump's price of its minutes: its receipt says so
-- (`priced`), so the same recharge sent again after the owner changed the price is still the
-- same one. Receipts written before this say 0 (cash typed).
ALTER TABLE receipts ADD COLUMN priced INTEGER NOT NULL DEFAULT 0;
-- A device registered with a key (a form sent twice, an app's retry after an answer lost on a
-- poor link) is registered once: one device per key in a tenant.
ALTER TABLE devices ADD COLUMN once_key TEXT;
CREATE UNIQUE INDEX devices_once_key ON devices (admin_id, once_key) WHERE once_key IS NOT NULL;
