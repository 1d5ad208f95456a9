-- A phone number counts only once its holder confirms it from that phone: a number set for an
-- account waits here, with the code to text from it and when it was set, until confirmed or
-- replaced (the code works for a day). Not unique: the holder's text says which account it joins.
ALTER TABLE alert_profiles ADD COLUMN pending_phone TEXT;
ALTER TABLE alert_profiles ADD COLUMN pending_code TEXT;
ALTER TABLE alert_profiles ADD COLUMN pending_since INTEGER;
-- The text from a number finds the accounts waiting for it.
CREATE INDEX alert_profiles_pending_phone ON alert_profiles (pending_phone) WHERE pending_phone IS NOT NULL;
