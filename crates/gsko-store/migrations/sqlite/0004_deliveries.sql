-- The delivery service's records (SQLite, embedded mode). Same table, keys and meaning as the
-- Postgres migration (see there); JSON is TEXT, instants are INTEGER microseconds since the
-- Unix epoch.
CREATE TABLE deliveries (
    tenant        TEXT     NOT NULL,
    decision_id   TEXT     NOT NULL,
    command       TEXT     NOT NULL,
    channel       TEXT     NOT NULL,
    state         TEXT     NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'uncertain',
                                                     'delivered', 'deemed_delivered', 'failed')),
    shipment_id   TEXT,
    attempts      INTEGER  NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    INTEGER  NOT NULL,
    updated_at    INTEGER  NOT NULL,
    finished_at   INTEGER,
    PRIMARY KEY (tenant, decision_id)
) STRICT;
CREATE INDEX deliveries_in_flight_idx ON deliveries (channel, updated_at) WHERE state = 'sent';
CREATE INDEX deliveries_state_idx ON deliveries (tenant, state);
