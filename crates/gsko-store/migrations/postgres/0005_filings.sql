-- Letters residents file through GSKO (the query service): stored before the PZ signing
-- service is called, keyed by the portal's idempotency key, moved through their states by
-- compare-and-set updates. The documents themselves (unsigned, signed, the UPP) are files kept
-- by content hash; only their SHA-256 is here. No PESEL: `resident_ref` is a one-way hash of
-- the tenant and the resident's PESEL, enough to show a filing only to its resident and to
-- check who signed it.
CREATE TABLE filings (
    tenant             TEXT         NOT NULL,
    filing_id          TEXT         NOT NULL,
    client             TEXT         NOT NULL,
    idempotency_key    TEXT         NOT NULL,
    request_hash       TEXT         NOT NULL,
    resident_ref       TEXT         NOT NULL,
    mode               TEXT         NOT NULL CHECK (mode IN ('epuap', 'ezd')),
    title              TEXT         NOT NULL,
    return_url         TEXT         NOT NULL,
    status             TEXT         NOT NULL
                       CHECK (status IN ('created', 'awaiting_signature', 'signed', 'submitting',
                                         'submitted', 'cancelled', 'failed', 'uncertain')),
    unsigned_sha256    TEXT         NOT NULL,
    sign_url           TEXT,
    signed_sha256      TEXT,
    upp_sha256         TEXT,
    upp_id             TEXT,
    epuap_document_id  TEXT,
    letter_id          TEXT,
    status_detail      TEXT,
    created_at         TIMESTAMPTZ  NOT NULL,
    updated_at         TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, filing_id),
    CONSTRAINT filings_idempotency_key UNIQUE (tenant, client, idempotency_key)
);
CREATE INDEX filings_status_idx ON filings (tenant, status, updated_at);
