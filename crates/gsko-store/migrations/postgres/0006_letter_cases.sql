-- A letter registered in the tenant's EZD (pl.gsko.case.registered.v1): the case it went to.
-- A fact: the first event of a letter stays.
CREATE TABLE letter_cases (
    tenant         TEXT         NOT NULL,
    letter_id      TEXT         NOT NULL,
    case_ref       TEXT         NOT NULL,
    registered_at  TIMESTAMPTZ  NOT NULL,
    payload        JSONB        NOT NULL,
    PRIMARY KEY (tenant, letter_id)
);
CREATE INDEX letter_cases_case_idx ON letter_cases (tenant, case_ref);
