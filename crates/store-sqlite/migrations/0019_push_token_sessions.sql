-- The mobile session that registered each push token: when that session ends (revoked one by one
-- or all at once, or purged once expired), its tokens are deleted in the same transaction, so a
-- phone signed out by a new password or a suspension stops getting the account's pushes. Null
-- for every token registered before this column, and for one set from the web: those stay until
-- the phone signs out or Expo says it is gone.
ALTER TABLE push_tokens ADD COLUMN session_id TEXT;
CREATE INDEX push_tokens_session ON push_tokens (session_id) WHERE session_id IS NOT NULL;
