-- The case service's own records (SQLite, embedded mode). Same tables, keys and meaning as the
-- Postgres migration (see there); JSON is TEXT, booleans are INTEGER 0/1, instants are INTEGER
-- microseconds since the Unix epoch.
CREATE TABLE ezd_registrations (
    tenant        TEXT     NOT NULL,
    letter_id     TEXT     NOT NULL,
    state         TEXT     NOT NULL CHECK (state IN ('registered', 'parked')),
    ezd_case_id   TEXT,
    case_ref      TEXT,
    rpw           TEXT,
    problem       TEXT,
    updated_at    INTEGER  NOT NULL,
    PRIMARY KEY (tenant, letter_id)
) STRICT;
CREATE INDEX ezd_registrations_state_idx ON ezd_registrations (tenant, state, updated_at);

CREATE TABLE ezd_cases (
    tenant             TEXT     NOT NULL,
    ezd_case_id        TEXT     NOT NULL,
    case_ref           TEXT     NOT NULL,
    letter_id          TEXT     NOT NULL,
    resident_pesel     TEXT,
    recipient          TEXT     NOT NULL,
    sender_contact_id  TEXT,
    jrwa_symbol        TEXT     NOT NULL,
    status             TEXT     NOT NULL
                       CHECK (status IN ('registered', 'assigned', 'in_progress', 'postponed',
                                         'suspended', 'resumed', 're_registered', 'closed',
                                         'archived')),
    seq                INTEGER  NOT NULL CHECK (seq >= 0),
    open               INTEGER  NOT NULL CHECK (open IN (0, 1)),
    registered_at      INTEGER  NOT NULL,
    last_polled_at     INTEGER,
    updated_at         INTEGER  NOT NULL,
    PRIMARY KEY (tenant, ezd_case_id)
) STRICT;
CREATE INDEX ezd_cases_resident_idx ON ezd_cases (tenant, resident_pesel, jrwa_symbol, open);
-- SQLite sorts NULL first in ascending order already.
CREATE INDEX ezd_cases_poll_idx ON ezd_cases (tenant, open, last_polled_at);

CREATE TABLE ezd_decisions (
    tenant        TEXT     NOT NULL,
    decision_id   TEXT     NOT NULL,
    ezd_case_id   TEXT     NOT NULL,
    sha256        TEXT     NOT NULL,
    recorded_at   INTEGER  NOT NULL,
    PRIMARY KEY (tenant, decision_id)
) STRICT;
