-- Cases in the tenant's EZD (pl.gsko.case.status-changed.v1), keyed by EZD's own id of the case
-- (a znak sprawy can change when a case is re-registered; EZD's id does not).
--
-- `cases` holds each case's latest status: a row is replaced only by a higher `seq` (the
-- connector numbers a case's changes from 1; it is also the event's source version), so an
-- older change arriving late never overwrites a newer one. `case_timeline` keeps every change
-- once (a fact per seq): a change reported twice is one entry.
CREATE TABLE cases (
    tenant       TEXT         NOT NULL,
    ezd_case_id  TEXT         NOT NULL,
    case_ref     TEXT         NOT NULL,
    status       TEXT         NOT NULL,
    seq          BIGINT       NOT NULL,
    changed_at   TIMESTAMPTZ  NOT NULL,
    title        TEXT,
    due_on       DATE,
    payload      JSONB        NOT NULL,
    PRIMARY KEY (tenant, ezd_case_id)
);
CREATE INDEX cases_ref_idx ON cases (tenant, case_ref);

CREATE TABLE case_timeline (
    tenant       TEXT         NOT NULL,
    ezd_case_id  TEXT         NOT NULL,
    seq          BIGINT       NOT NULL,
    status       TEXT         NOT NULL,
    at           TIMESTAMPTZ  NOT NULL,
    payload      JSONB        NOT NULL,
    PRIMARY KEY (tenant, ezd_case_id, seq)
);

-- Letters link to their case by EZD's id when the registration named it (the znak may change
-- later), else by case_ref. Registrations stored before this column existed get it from their
-- payload.
ALTER TABLE letter_cases ADD COLUMN ezd_case_id TEXT;
UPDATE letter_cases SET ezd_case_id = payload->>'ezd_case_id' WHERE payload->>'ezd_case_id' IS NOT NULL;
CREATE INDEX letter_cases_ezd_idx ON letter_cases (tenant, ezd_case_id);
