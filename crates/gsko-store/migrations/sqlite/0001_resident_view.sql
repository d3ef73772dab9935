-- The consolidated resident view (SQLite, embedded mode). Same tables, keys and meaning as the
-- Postgres migration (see there); the differences are SQLite's types: JSON is TEXT, dates are
-- TEXT 'YYYY-MM-DD', and instants are INTEGER microseconds since the Unix epoch (so that
-- "newest first" is a plain integer sort and the precision matches Postgres' timestamptz).
-- STRICT tables make SQLite refuse a value of the wrong type instead of storing it anyway.

CREATE TABLE taxpayers (
    tenant          TEXT     NOT NULL,
    taxpayer_id     TEXT     NOT NULL,
    source_version  INTEGER  NOT NULL,
    pesel           TEXT,
    nip             TEXT,
    name            TEXT     NOT NULL,
    kind            TEXT     NOT NULL,
    payload         TEXT     NOT NULL,
    PRIMARY KEY (tenant, taxpayer_id)
) STRICT;
CREATE INDEX taxpayers_pesel_idx ON taxpayers (pesel, tenant);

CREATE TABLE accounts (
    tenant           TEXT     NOT NULL,
    account_id       TEXT     NOT NULL,
    source_version   INTEGER  NOT NULL,
    levy             TEXT     NOT NULL,
    virtual_account  TEXT,
    payload          TEXT     NOT NULL,
    PRIMARY KEY (tenant, account_id)
) STRICT;

CREATE TABLE account_holders (
    tenant       TEXT  NOT NULL,
    account_id   TEXT  NOT NULL,
    taxpayer_id  TEXT  NOT NULL,
    role         TEXT  NOT NULL,
    PRIMARY KEY (tenant, account_id, taxpayer_id)
) STRICT;
CREATE INDEX account_holders_taxpayer_idx ON account_holders (tenant, taxpayer_id);

CREATE TABLE liabilities (
    tenant          TEXT     NOT NULL,
    liability_id    TEXT     NOT NULL,
    account_id      TEXT     NOT NULL,
    source_version  INTEGER  NOT NULL,
    levy            TEXT     NOT NULL,
    year            INTEGER  NOT NULL,
    total_grosze    INTEGER  NOT NULL CHECK (total_grosze >= 0),
    payload         TEXT     NOT NULL,
    PRIMARY KEY (tenant, liability_id)
) STRICT;
CREATE INDEX liabilities_account_idx ON liabilities (tenant, account_id);

CREATE TABLE postings (
    tenant          TEXT     NOT NULL,
    posting_id      TEXT     NOT NULL,
    account_id      TEXT     NOT NULL,
    source_version  INTEGER  NOT NULL,
    kind            TEXT     NOT NULL,
    value_date      TEXT     NOT NULL,
    amount_grosze   INTEGER  NOT NULL CHECK (amount_grosze >= 0),
    payload         TEXT     NOT NULL,
    PRIMARY KEY (tenant, posting_id)
) STRICT;
CREATE INDEX postings_account_idx ON postings (tenant, account_id);

CREATE TABLE balances (
    tenant               TEXT     NOT NULL,
    account_id           TEXT     NOT NULL,
    source_version       INTEGER  NOT NULL,
    as_of                TEXT     NOT NULL,
    principal_grosze     INTEGER  NOT NULL CHECK (principal_grosze >= 0),
    interest_grosze      INTEGER  NOT NULL CHECK (interest_grosze >= 0),
    costs_grosze         INTEGER  NOT NULL CHECK (costs_grosze >= 0),
    overpayment_grosze   INTEGER  NOT NULL CHECK (overpayment_grosze >= 0),
    payload              TEXT     NOT NULL,
    PRIMARY KEY (tenant, account_id)
) STRICT;

CREATE TABLE rejected_records (
    tenant            TEXT     NOT NULL,
    file_sha256       TEXT     NOT NULL,
    line              INTEGER  NOT NULL,
    record            TEXT     NOT NULL,
    received_at_us    INTEGER  NOT NULL,
    PRIMARY KEY (tenant, file_sha256, line)
) STRICT;
CREATE INDEX rejected_records_recent_idx ON rejected_records (tenant, received_at_us DESC);

CREATE TABLE imports (
    tenant            TEXT     NOT NULL,
    file_sha256       TEXT     NOT NULL,
    payload           TEXT     NOT NULL,
    completed_at_us   INTEGER  NOT NULL,
    PRIMARY KEY (tenant, file_sha256)
) STRICT;
CREATE INDEX imports_recent_idx ON imports (tenant, completed_at_us DESC);
