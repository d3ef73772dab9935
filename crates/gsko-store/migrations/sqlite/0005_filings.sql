-- Letters residents file through GSKO (SQLite, embedded mode). Same table, keys and meaning as
-- the Postgres migration (see there); instants are INTEGER microseconds since the Unix epoch.
CREATE TABLE filings (
    tenant             TEXT     NOT NULL,
    filing_id          TEXT     NOT NULL,
    client             TEXT     NOT NULL,
    idempotency_key    TEXT     NOT NULL,
    request_hash       TEXT     NOT NULL,
    resident_ref       TEXT     NOT NULL,
    mode               TEXT     NOT NULL CHECK (mode IN ('epuap', 'ezd')),
    title              TEXT     NOT NULL,
    return_url         TEXT     NOT NULL,
    status             TEXT     NOT NULL
                       CHECK (status IN ('created', 'awaiting_signature', 'signed', 'submitting',
                                         'submitted', 'cancelled', 'failed', 'uncertain')),
    unsigned_sha256    TEXT     NOT NULL,
    sign_url           TEXT,
    signed_sha256      TEXT,
    upp_sha256         TEXT,
    upp_id             TEXT,
    epuap_document_id  TEXT,
    letter_id          TEXT,
    status_detail      TEXT,
    created_at         INTEGER  NOT NULL,
    updated_at         INTEGER  NOT NULL,
    PRIMARY KEY (tenant, filing_id),
    CONSTRAINT filings_idempotency_key UNIQUE (tenant, client, idempotency_key)
) STRICT;
CREATE INDEX filings_status_idx ON filings (tenant, status, updated_at);
