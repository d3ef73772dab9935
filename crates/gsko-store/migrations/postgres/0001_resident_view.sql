-- The consolidated resident view (Postgres).
--
-- Every table is keyed by the tenant (TERYT) first: one municipality's rows never share a key
-- with another's, and the tables can later be partitioned by tenant without changing a key.
-- Each projected record keeps the source's version: the projector's upserts replace a row only
-- with a strictly higher version (`WHERE excluded.source_version > t.source_version`), which
-- makes redelivery, replay and reordering harmless. Money is BIGINT grosze, never numeric/float.
-- `payload` is the whole normalized record; the other columns are what queries filter or sort
-- on, or what an operator needs to read with plain SQL.

CREATE TABLE taxpayers (
    tenant          TEXT    NOT NULL,
    taxpayer_id     TEXT    NOT NULL,
    source_version  BIGINT  NOT NULL,
    pesel           TEXT,
    nip             TEXT,
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    payload         JSONB   NOT NULL,
    PRIMARY KEY (tenant, taxpayer_id)
);
-- A resident logs in with their PESEL and may be known to several tenants.
CREATE INDEX taxpayers_pesel_idx ON taxpayers (pesel, tenant);

CREATE TABLE accounts (
    tenant           TEXT    NOT NULL,
    account_id       TEXT    NOT NULL,
    source_version   BIGINT  NOT NULL,
    levy             TEXT    NOT NULL,
    virtual_account  TEXT,
    payload          JSONB   NOT NULL,
    PRIMARY KEY (tenant, account_id)
);

-- Derived from accounts.payload.holders; replaced whenever the account row is replaced.
CREATE TABLE account_holders (
    tenant       TEXT  NOT NULL,
    account_id   TEXT  NOT NULL,
    taxpayer_id  TEXT  NOT NULL,
    role         TEXT  NOT NULL,
    PRIMARY KEY (tenant, account_id, taxpayer_id)
);
CREATE INDEX account_holders_taxpayer_idx ON account_holders (tenant, taxpayer_id);

CREATE TABLE liabilities (
    tenant          TEXT     NOT NULL,
    liability_id    TEXT     NOT NULL,
    account_id      TEXT     NOT NULL,
    source_version  BIGINT   NOT NULL,
    levy            TEXT     NOT NULL,
    year            INTEGER  NOT NULL,
    total_grosze    BIGINT   NOT NULL CHECK (total_grosze >= 0),
    payload         JSONB    NOT NULL,
    PRIMARY KEY (tenant, liability_id)
);
CREATE INDEX liabilities_account_idx ON liabilities (tenant, account_id);

CREATE TABLE postings (
    tenant          TEXT    NOT NULL,
    posting_id      TEXT    NOT NULL,
    account_id      TEXT    NOT NULL,
    source_version  BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    value_date      DATE    NOT NULL,
    amount_grosze   BIGINT  NOT NULL CHECK (amount_grosze >= 0),
    payload         JSONB   NOT NULL,
    PRIMARY KEY (tenant, posting_id)
);
CREATE INDEX postings_account_idx ON postings (tenant, account_id);

CREATE TABLE balances (
    tenant               TEXT    NOT NULL,
    account_id           TEXT    NOT NULL,
    source_version       BIGINT  NOT NULL,
    as_of                DATE    NOT NULL,
    principal_grosze     BIGINT  NOT NULL CHECK (principal_grosze >= 0),
    interest_grosze      BIGINT  NOT NULL CHECK (interest_grosze >= 0),
    costs_grosze         BIGINT  NOT NULL CHECK (costs_grosze >= 0),
    overpayment_grosze   BIGINT  NOT NULL CHECK (overpayment_grosze >= 0),
    payload              JSONB   NOT NULL,
    PRIMARY KEY (tenant, account_id)
);

-- Records an import could not accept, kept for an admin. Insert-if-absent: a re-run of the same
-- file (same SHA-256) does not duplicate them. `record` may hold personal data (the raw line).
CREATE TABLE rejected_records (
    tenant        TEXT         NOT NULL,
    file_sha256   TEXT         NOT NULL,
    line          BIGINT       NOT NULL,
    record        JSONB        NOT NULL,
    received_at   TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, file_sha256, line)
);
CREATE INDEX rejected_records_recent_idx ON rejected_records (tenant, received_at DESC);

CREATE TABLE imports (
    tenant        TEXT         NOT NULL,
    file_sha256   TEXT         NOT NULL,
    payload       JSONB        NOT NULL,
    completed_at  TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, file_sha256)
);
CREATE INDEX imports_recent_idx ON imports (tenant, completed_at DESC);
