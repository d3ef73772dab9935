-- Cases in the tenant's EZD (see the Postgres migration): the latest status per case, replaced
-- only by a higher seq, and one timeline entry per (case, seq). Instants are INTEGER
-- microseconds since the Unix epoch, dates TEXT (YYYY-MM-DD), JSON is TEXT.
CREATE TABLE cases (
    tenant       TEXT     NOT NULL,
    ezd_case_id  TEXT     NOT NULL,
    case_ref     TEXT     NOT NULL,
    status       TEXT     NOT NULL,
    seq          INTEGER  NOT NULL,
    changed_at   INTEGER  NOT NULL,
    title        TEXT,
    due_on       TEXT,
    payload      TEXT     NOT NULL,
    PRIMARY KEY (tenant, ezd_case_id)
) STRICT;
CREATE INDEX cases_ref_idx ON cases (tenant, case_ref);

CREATE TABLE case_timeline (
    tenant       TEXT     NOT NULL,
    ezd_case_id  TEXT     NOT NULL,
    seq          INTEGER  NOT NULL,
    status       TEXT     NOT NULL,
    at           INTEGER  NOT NULL,
    payload      TEXT     NOT NULL,
    PRIMARY KEY (tenant, ezd_case_id, seq)
) STRICT;

ALTER TABLE letter_cases ADD COLUMN ezd_case_id TEXT;
UPDATE letter_cases SET ezd_case_id = json_extract(payload, '$.ezd_case_id')
    WHERE json_extract(payload, '$.ezd_case_id') IS NOT NULL;
CREATE INDEX letter_cases_ezd_idx ON letter_cases (tenant, ezd_case_id);
