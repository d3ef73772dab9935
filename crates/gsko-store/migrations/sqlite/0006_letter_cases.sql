-- A letter registered in the tenant's EZD (see the Postgres migration). Instants are INTEGER
-- microseconds since the Unix epoch, JSON is TEXT.
CREATE TABLE letter_cases (
    tenant         TEXT     NOT NULL,
    letter_id      TEXT     NOT NULL,
    case_ref       TEXT     NOT NULL,
    registered_at  INTEGER  NOT NULL,
    payload        TEXT     NOT NULL,
    PRIMARY KEY (tenant, letter_id)
) STRICT;
CREATE INDEX letter_cases_case_idx ON letter_cases (tenant, case_ref);
