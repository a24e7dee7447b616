-- Login rate limiting, counted before the password is checked: one row per key (a hashed e-mail
-- address or client address). An attempt takes a slot with one atomic upsert; the slot is given
-- back when the check ends, as a failure or not. `granted` tells the upsert's caller whether it
-- got a slot. The window starts at the first attempt and lasts the configured time.
DROP TABLE login_failures;
CREATE TABLE login_limits (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    in_flight    INTEGER NOT NULL,
    granted      INTEGER NOT NULL
);

-- Credentials are not business data: password hashes live here, outside records, the journal,
-- search text, history and restore. A password change is journaled on the user record as
-- `password_changed_at`, never with the hash.
CREATE TABLE credentials (
    user_id       TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    changed_at    INTEGER NOT NULL
);
