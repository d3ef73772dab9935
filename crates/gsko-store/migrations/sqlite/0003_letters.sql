-- Letters and decisions in the resident view (SQLite, embedded mode). Same tables, keys and
-- meaning as the Postgres migration (see there); JSON is TEXT, instants are INTEGER
-- microseconds since the Unix epoch, booleans INTEGER 0/1.

CREATE TABLE letters (
    tenant            TEXT     NOT NULL,
    letter_id         TEXT     NOT NULL,
    signer_pesel      TEXT,
    received_at       INTEGER  NOT NULL,
    signature_status  TEXT     NOT NULL,
    flagged           INTEGER  NOT NULL,
    payload           TEXT     NOT NULL,
    PRIMARY KEY (tenant, letter_id)
) STRICT;
CREATE INDEX letters_signer_idx ON letters (tenant, signer_pesel, received_at DESC);
CREATE INDEX letters_recent_idx ON letters (tenant, received_at DESC);

CREATE TABLE decision_deliveries (
    tenant           TEXT     NOT NULL,
    decision_id      TEXT     NOT NULL,
    recipient_pesel  TEXT,
    in_reply_to      TEXT,
    outcome          TEXT     NOT NULL,
    at               INTEGER  NOT NULL,
    payload          TEXT     NOT NULL,
    PRIMARY KEY (tenant, decision_id)
) STRICT;
CREATE INDEX decision_deliveries_recipient_idx ON decision_deliveries (tenant, recipient_pesel);
CREATE INDEX decision_deliveries_reply_idx ON decision_deliveries (tenant, in_reply_to);
