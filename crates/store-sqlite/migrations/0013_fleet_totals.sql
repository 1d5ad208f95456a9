-- The master's totals of every pump (pumppilot_store::Store::fleet_totals): the seconds charged
-- and the cash taken since a moment, over every tenant, summed from an index by time that holds
-- the figure, without reading a row of the tables (the indexes by tenant cannot answer a range of
-- time across tenants).
CREATE INDEX usage_history_ended ON usage_history (ended_at, charged_seconds);
CREATE INDEX receipts_at ON receipts (at, cash_taka);
