-- The audit log: every read of and every action on a resident's data (tajemnica skarbowa,
-- RODO), append-only and hash-chained. Each row's hash is the SHA-256 of its canonical form
-- (seq, at, actor, tenant, resident_pesel, action, outcome, remote, prev_hash), computed by the
-- daemon (gsko_store::audit_hash) so both backends chain identically. Personal data is here on
-- purpose: this table is the record of who read whose data.
--
-- Privileges (not granted here: the roles are the operator's): in production the daemon's role
-- should have only INSERT and SELECT on audit_log and SELECT, UPDATE on audit_chain, and only
-- the archiver's role DELETE on audit_log, e.g.
--   REVOKE ALL ON audit_log, audit_chain FROM gsko_daemon;
--   GRANT SELECT, INSERT ON audit_log TO gsko_daemon;
--   GRANT SELECT, UPDATE ON audit_chain TO gsko_daemon;
--   GRANT SELECT, DELETE ON audit_log TO gsko_archiver;
--   GRANT SELECT, UPDATE ON audit_chain TO gsko_archiver;
-- so that a compromised daemon cannot rewrite history, only add to it (which verify checks).
CREATE TABLE audit_log (
    -- Position in the chain: contiguous, assigned by the appender under an advisory lock.
    seq             BIGINT       PRIMARY KEY CHECK (seq > 0),
    -- Microsecond precision, as hashed.
    at              TIMESTAMPTZ  NOT NULL,
    actor           TEXT         NOT NULL,
    -- TERYT, when the access concerned a tenant.
    tenant          TEXT,
    resident_pesel  TEXT,
    action          TEXT         NOT NULL,
    outcome         TEXT         NOT NULL,
    remote          TEXT,
    prev_hash       TEXT         NOT NULL,
    hash            TEXT         NOT NULL
);
-- A resident's "who read my data", newest first.
CREATE INDEX audit_log_resident_idx ON audit_log (tenant, resident_pesel, seq);

-- The chain's bookends, one row. The anchor is the last pruned row (seq 0 and the genesis hash
-- before any pruning): the oldest stored row must follow it. The head is the last appended row,
-- moved in the same transaction as every append: rows missing after it show as a short tail.
CREATE TABLE audit_chain (
    id           SMALLINT  PRIMARY KEY CHECK (id = 1),
    anchor_seq   BIGINT    NOT NULL CHECK (anchor_seq >= 0),
    anchor_hash  TEXT      NOT NULL,
    head_seq     BIGINT    NOT NULL CHECK (head_seq >= anchor_seq),
    head_hash    TEXT      NOT NULL
);
INSERT INTO audit_chain (id, anchor_seq, anchor_hash, head_seq, head_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '0000000000000000000000000000000000000000000000000000000000000000');
