-- Wrong codes texted from a number waiting to be confirmed, counted with it: the fifth drops it
-- (the person sets it again for a new code). A number set again starts at 0.
ALTER TABLE alert_profiles ADD COLUMN pending_wrong_codes INTEGER NOT NULL DEFAULT 0;

-- A phone's Expo push token belongs to one account at a time: registered by another account, it
-- moves there (the primary key), so a phone passed on stops getting the first farmer's alerts.
-- `position` keeps the order the person's profile lists them in.
CREATE TABLE push_tokens (
    token     TEXT    PRIMARY KEY NOT NULL,
    user_id   TEXT    NOT NULL REFERENCES alert_profiles (user_id),
    position  INTEGER NOT NULL
) STRICT;
CREATE INDEX push_tokens_user ON push_tokens (user_id, position);
-- The tokens kept one per line until now move here. A token two accounts had cannot say whose
-- phone it is now: neither keeps it (that phone's holder turns notifications on again).
WITH RECURSIVE split (user_id, token, rest, position) AS (
    SELECT user_id, '', push_tokens || char(10), -1 FROM alert_profiles
    UNION ALL
    SELECT user_id, substr(rest, 1, instr(rest, char(10)) - 1), substr(rest, instr(rest, char(10)) + 1), position + 1
    FROM split WHERE rest <> ''
),
listed AS (SELECT user_id, token, min(position) AS position FROM split WHERE token <> '' GROUP BY user_id, token)
INSERT INTO push_tokens (token, user_id, position)
SELECT token, user_id, position FROM listed
WHERE token IN (SELECT token FROM listed GROUP BY token HAVING count(*) = 1);
ALTER TABLE alert_profiles DROP COLUMN push_tokens;

-- Texts the SMS webhook took, by key (the gateway's message id, the signature, or a phone's help
-- answer), until `until`: a text sent again is refused, after a restart too. Old ones are
-- deleted as new ones are taken.
CREATE TABLE taken_texts (
    key    TEXT    PRIMARY KEY NOT NULL,
    until  INTEGER NOT NULL
) STRICT;
CREATE INDEX taken_texts_until ON taken_texts (until);
