-- Login throttling per email and client. `login_attempts` counted failures per email alone, so
-- anyone could keep the Super Admin locked out with one wrong password every few minutes.
-- `client` is `device:<digest prefix>` for a browser that has signed in as this email before,
-- `ip:<address>` for any other, and `*` for the failures of all unknown clients of the email
-- together (a slower lock that known browsers pass).
DROP TABLE login_attempts;
CREATE TABLE login_throttle (
    email           TEXT NOT NULL,
    client          TEXT NOT NULL,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL,
    PRIMARY KEY (email, client)
);

-- Browsers that have signed in (SHA-256 of the `tandem_device` cookie; the cookie itself is never
-- stored). A known browser is throttled on its own, not with strangers guessing the same email.
CREATE TABLE known_devices (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL
);
CREATE INDEX known_devices_by_user ON known_devices (user_id);
