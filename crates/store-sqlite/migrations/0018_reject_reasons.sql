-- Why the owner rejected a minute request, when they said: the name of one of a fixed set of
-- reasons (NOT_PAID, WRONG_AMOUNT, TOO_MANY, PUMP_CLOSED), written with the decision. Null when
-- no reason was given, and on every request decided before reasons were kept.
ALTER TABLE minute_requests ADD COLUMN reject_reason TEXT;
