-- The delivery service's own record of every decision.deliver command it took, keyed by
-- (tenant, decision_id): claimed before anything is sent, so a command seen twice (at-least-once
-- delivery) continues where the first copy stopped and a decision is never sent twice.
--
-- state: pending → sending → sent → delivered | deemed_delivered | failed, or uncertain (the
-- send may or may not have reached the channel: parked for an admin, never resent). The
-- decision.delivered event of a final state is written into `outbox` in the same transaction.
CREATE TABLE deliveries (
    tenant        TEXT         NOT NULL,
    decision_id   TEXT         NOT NULL,
    -- The decision.deliver command as received (it holds personal data: never logged).
    command       JSONB        NOT NULL,
    -- epuap | e_doreczenia
    channel       TEXT         NOT NULL,
    state         TEXT         NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'uncertain',
                                                         'delivered', 'deemed_delivered', 'failed')),
    -- ePUAP identyfikatorZlecenia or the e-Doręczenia messageId, once known.
    shipment_id   TEXT,
    -- How many times a send was started.
    attempts      INTEGER      NOT NULL DEFAULT 0,
    last_error    TEXT,
    created_at    TIMESTAMPTZ  NOT NULL,
    updated_at    TIMESTAMPTZ  NOT NULL,
    finished_at   TIMESTAMPTZ,
    PRIMARY KEY (tenant, decision_id)
);
-- Polling e-Doręczenia: sent and not final, per channel.
CREATE INDEX deliveries_in_flight_idx ON deliveries (channel, updated_at) WHERE state = 'sent';
-- Admins list the uncertain ones per tenant.
CREATE INDEX deliveries_state_idx ON deliveries (tenant, state);
