-- Letters and decisions in the resident view (Postgres).
--
-- A letter is shown to the resident who signed it (the PESEL the signature names, whatever the
-- verification said: the letter's signature status is shown with it). A decision is shown to
-- its recipient, and marks the letter it answers as answered. Both are facts: the first event
-- of a key stays (insert-if-absent).

CREATE TABLE letters (
    tenant            TEXT         NOT NULL,
    letter_id         TEXT         NOT NULL,
    signer_pesel      TEXT,
    received_at       TIMESTAMPTZ  NOT NULL,
    signature_status  TEXT         NOT NULL,
    -- Something is wrong with the letter or its signature (for an admin's list).
    flagged           BOOLEAN      NOT NULL,
    payload           JSONB        NOT NULL,
    PRIMARY KEY (tenant, letter_id)
);
CREATE INDEX letters_signer_idx ON letters (tenant, signer_pesel, received_at DESC);
CREATE INDEX letters_recent_idx ON letters (tenant, received_at DESC);

CREATE TABLE decision_deliveries (
    tenant           TEXT         NOT NULL,
    decision_id      TEXT         NOT NULL,
    recipient_pesel  TEXT,
    in_reply_to      TEXT,
    outcome          TEXT         NOT NULL,
    at               TIMESTAMPTZ  NOT NULL,
    payload          JSONB        NOT NULL,
    PRIMARY KEY (tenant, decision_id)
);
CREATE INDEX decision_deliveries_recipient_idx ON decision_deliveries (tenant, recipient_pesel);
CREATE INDEX decision_deliveries_reply_idx ON decision_deliveries (tenant, in_reply_to);
