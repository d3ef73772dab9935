-- The audit log (SQLite, embedded mode). Same tables, keys and meaning as the Postgres
-- migration (see there); instants are INTEGER microseconds since the Unix epoch. Appends are
-- serialized by BEGIN IMMEDIATE (SQLite's single writer).
CREATE TABLE audit_log (
    seq             INTEGER  PRIMARY KEY CHECK (seq > 0),
    at              INTEGER  NOT NULL,
    actor           TEXT     NOT NULL,
    tenant          TEXT,
    resident_pesel  TEXT,
    action          TEXT     NOT NULL,
    outcome         TEXT     NOT NULL,
    remote          TEXT,
    prev_hash       TEXT     NOT NULL,
    hash            TEXT     NOT NULL
) STRICT;
CREATE INDEX audit_log_resident_idx ON audit_log (tenant, resident_pesel, seq);

CREATE TABLE audit_chain (
    id           INTEGER  PRIMARY KEY CHECK (id = 1),
    anchor_seq   INTEGER  NOT NULL CHECK (anchor_seq >= 0),
    anchor_hash  TEXT     NOT NULL,
    head_seq     INTEGER  NOT NULL CHECK (head_seq >= anchor_seq),
    head_hash    TEXT     NOT NULL
) STRICT;
INSERT INTO audit_chain (id, anchor_seq, anchor_hash, head_seq, head_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '0000000000000000000000000000000000000000000000000000000000000000');
