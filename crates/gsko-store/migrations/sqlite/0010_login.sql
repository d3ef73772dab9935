-- Resident login and sessions (SQLite, embedded mode): same tables and meaning as the
-- Postgres migration; instants are INTEGER microseconds since the Unix epoch.
CREATE TABLE login_pending (
    relay_state  TEXT     PRIMARY KEY,
    request_id   TEXT     NOT NULL,
    return_to    TEXT     NOT NULL,
    created_at   INTEGER  NOT NULL,
    expires_at   INTEGER  NOT NULL
) STRICT;

CREATE TABLE login_used (
    key          TEXT     PRIMARY KEY,
    expires_at   INTEGER  NOT NULL
) STRICT;

CREATE TABLE sessions (
    sid            TEXT     PRIMARY KEY,
    pesel          TEXT     NOT NULL,
    given_name     TEXT     NOT NULL,
    family_name    TEXT     NOT NULL,
    loa            TEXT     NOT NULL,
    name_id        TEXT     NOT NULL,
    session_index  TEXT,
    created_at     INTEGER  NOT NULL,
    expires_at     INTEGER  NOT NULL,
    max_until      INTEGER  NOT NULL,
    revoked_at     INTEGER
) STRICT;
CREATE INDEX sessions_pesel_idx ON sessions (pesel);

CREATE TABLE login_codes (
    code_sha256  TEXT     PRIMARY KEY,
    sid          TEXT     NOT NULL,
    expires_at   INTEGER  NOT NULL
) STRICT;
