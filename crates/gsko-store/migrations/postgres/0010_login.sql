-- Resident login (login.gov.pl SAML) and sessions.
-- login_pending: an AuthnRequest sent and not yet answered, found again by its RelayState;
--   taken (deleted) by the answer, so an answer is accepted once.
-- login_used: artifacts and assertion ids already consumed (one-time use), until they expire.
-- sessions: a resident's signed session; the token names the row, the row says whether it is
--   still valid (revocation, expiry, the absolute limit renewals cannot pass).
-- login_codes: one-time codes a portal backend exchanges for a bearer session token.
CREATE TABLE login_pending (
    relay_state  TEXT         PRIMARY KEY,
    request_id   TEXT         NOT NULL,
    return_to    TEXT         NOT NULL,
    created_at   TIMESTAMPTZ  NOT NULL,
    expires_at   TIMESTAMPTZ  NOT NULL
);

CREATE TABLE login_used (
    key          TEXT         PRIMARY KEY,
    expires_at   TIMESTAMPTZ  NOT NULL
);

CREATE TABLE sessions (
    sid            TEXT         PRIMARY KEY,
    pesel          TEXT         NOT NULL,
    given_name     TEXT         NOT NULL,
    family_name    TEXT         NOT NULL,
    loa            TEXT         NOT NULL,
    name_id        TEXT         NOT NULL,
    session_index  TEXT,
    created_at     TIMESTAMPTZ  NOT NULL,
    expires_at     TIMESTAMPTZ  NOT NULL,
    max_until      TIMESTAMPTZ  NOT NULL,
    revoked_at     TIMESTAMPTZ
);
CREATE INDEX sessions_pesel_idx ON sessions (pesel);

CREATE TABLE login_codes (
    code_sha256  TEXT         PRIMARY KEY,
    sid          TEXT         NOT NULL,
    expires_at   TIMESTAMPTZ  NOT NULL
);
