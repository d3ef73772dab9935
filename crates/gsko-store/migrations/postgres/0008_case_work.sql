-- The case service's own records (gsko-cases): which letters it registered in the tenant's EZD,
-- the cases it follows there, and the decisions it raised from outgoing EZD documents. Tenant
-- first in every key.

-- One row per letter the service was asked to register (letter.register), keyed by
-- (tenant, letter_id), so a command seen twice does not register the letter twice.
-- state: registered (done: ezd_case_id and case_ref are EZD's answer) or parked (left for an
-- admin with the reason in `problem`, and what EZD returned when it returned anything; case_ref
-- is then EZD's raw text and may be malformed). A registered row is never parked again.
CREATE TABLE ezd_registrations (
    tenant        TEXT         NOT NULL,
    letter_id     TEXT         NOT NULL,
    state         TEXT         NOT NULL CHECK (state IN ('registered', 'parked')),
    ezd_case_id   TEXT,
    case_ref      TEXT,
    -- The number of the incoming item in the register (RPW).
    rpw           TEXT,
    problem       TEXT,
    updated_at    TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, letter_id)
);
-- Admins list the parked ones per tenant, oldest first.
CREATE INDEX ezd_registrations_state_idx ON ezd_registrations (tenant, state, updated_at);

-- One row per EZD case the service follows (a case several letters joined is one row). `seq`
-- is the position of the last status change recorded (pl.gsko.case.status-changed.v1): a change
-- is recorded only as seq + 1, so replays and stale pollers change nothing.
CREATE TABLE ezd_cases (
    tenant             TEXT         NOT NULL,
    ezd_case_id        TEXT         NOT NULL,
    -- Znak sprawy as EZD writes it now (a re-registered case gets a new one).
    case_ref           TEXT         NOT NULL,
    -- The letter that opened the case.
    letter_id          TEXT         NOT NULL,
    -- The resident the case is about, when known (personal data: never logged).
    resident_pesel     TEXT,
    -- The model's DecisionRecipient as JSON: whom a decision of this case is delivered to.
    recipient          JSONB        NOT NULL,
    sender_contact_id  TEXT,
    -- The JRWA class the case was opened in (a later letter of the same resident and class
    -- joins the open case).
    jrwa_symbol        TEXT         NOT NULL,
    status             TEXT         NOT NULL
                       CHECK (status IN ('registered', 'assigned', 'in_progress', 'postponed',
                                         'suspended', 'resumed', 're_registered', 'closed',
                                         'archived')),
    seq                BIGINT       NOT NULL CHECK (seq >= 0),
    open               BOOLEAN      NOT NULL,
    registered_at      TIMESTAMPTZ  NOT NULL,
    last_polled_at     TIMESTAMPTZ,
    -- When the row last changed (watched or a status recorded), for an admin.
    updated_at         TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, ezd_case_id)
);
-- A new letter looks for the resident's open case in its JRWA class.
CREATE INDEX ezd_cases_resident_idx ON ezd_cases (tenant, resident_pesel, jrwa_symbol, open);
-- The poller takes open cases never polled first, then least recently polled.
CREATE INDEX ezd_cases_poll_idx ON ezd_cases (tenant, open, last_polled_at NULLS FIRST);

-- Decisions raised (decision.deliver) from outgoing EZD documents, with the SHA-256 of the
-- document, so a document seen again is not raised twice. The first row of a decision stays.
CREATE TABLE ezd_decisions (
    tenant        TEXT         NOT NULL,
    decision_id   TEXT         NOT NULL,
    ezd_case_id   TEXT         NOT NULL,
    sha256        TEXT         NOT NULL,
    recorded_at   TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, decision_id)
);
