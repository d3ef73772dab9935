-- Online payments (Postgres): the payment service's operational records, and the projection of
-- payment events into the resident view.
--
-- Keys are tenant-first, as in 0001. Money is BIGINT grosze. The payment service's statements
-- are shared verbatim with the SQLite backend, so the columns have the same names there (see
-- the SQLite migration for its types).

-- ---- operational (written by the payment service through PaymentStore) --------------------

-- A resident's request to pay, split into one order per gateway merchant account. The unique
-- idempotency key makes a double submit (two requests racing) store one basket.
CREATE TABLE payment_baskets (
    tenant           TEXT         NOT NULL,
    basket_id        TEXT         NOT NULL,
    client           TEXT         NOT NULL,
    idempotency_key  TEXT         NOT NULL,
    request_hash     TEXT         NOT NULL,
    resident_ref     TEXT         NOT NULL,
    created_at       TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, basket_id),
    CONSTRAINT payment_baskets_idempotency_key UNIQUE (tenant, client, idempotency_key)
);

CREATE TABLE payment_orders (
    tenant          TEXT         NOT NULL,
    session_id      TEXT         NOT NULL,
    basket_id       TEXT         NOT NULL,
    -- Position within the basket: orders are listed in the order they were created.
    seq             INTEGER      NOT NULL,
    merchant        TEXT         NOT NULL,
    gateway         TEXT         NOT NULL,
    amount_grosze   BIGINT       NOT NULL CHECK (amount_grosze >= 0),
    description     TEXT         NOT NULL,
    items           JSONB        NOT NULL,
    status          TEXT         NOT NULL
                    CHECK (status IN ('created', 'registered', 'paid', 'canceled', 'disputed')),
    gateway_ref     TEXT,
    redirect_url    TEXT,
    status_detail   TEXT,
    created_at      TIMESTAMPTZ  NOT NULL,
    updated_at      TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, session_id)
);
CREATE INDEX payment_orders_basket_idx ON payment_orders (tenant, basket_id, seq);

-- Append-only audit of every gateway notification, good or bad. The body itself is not kept,
-- only its SHA-256.
CREATE TABLE gateway_notifications (
    id            BIGSERIAL    PRIMARY KEY,
    tenant        TEXT         NOT NULL,
    gateway       TEXT         NOT NULL,
    merchant      TEXT         NOT NULL,
    received_at   TIMESTAMPTZ  NOT NULL,
    session_id    TEXT,
    outcome       TEXT         NOT NULL,
    reason        TEXT         NOT NULL,
    body_sha256   TEXT         NOT NULL,
    remote_addr   TEXT
);
CREATE INDEX gateway_notifications_recent_idx ON gateway_notifications (tenant, received_at DESC);

-- One row per settled payment id, ever: claiming the id is what makes settling idempotent.
CREATE TABLE settlements (
    tenant       TEXT         NOT NULL,
    payment_id   TEXT         NOT NULL,
    session_id   TEXT,
    settled_at   TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (tenant, payment_id)
);

-- Transactional outbox: messages written with the change that caused them, published by a
-- relay in `seq` order. `body` is the CloudEvent JSON (structured mode) as `Event::to_json`
-- wrote it.
CREATE TABLE outbox (
    seq           BIGSERIAL    PRIMARY KEY,
    tenant        TEXT         NOT NULL,
    event_id      TEXT         NOT NULL,
    body          TEXT         NOT NULL,
    created_at    TIMESTAMPTZ  NOT NULL,
    published_at  TIMESTAMPTZ
);
CREATE INDEX outbox_pending_idx ON outbox (seq) WHERE published_at IS NULL;

-- A bank statement line names the virtual account it was paid to.
CREATE INDEX accounts_virtual_account_idx ON accounts (tenant, virtual_account);

-- ---- projection (written by Store::apply; insert-if-absent, the first event wins) ----------

CREATE TABLE payments (
    tenant         TEXT     NOT NULL,
    payment_id     TEXT     NOT NULL,
    channel        TEXT     NOT NULL,
    amount_grosze  BIGINT   NOT NULL CHECK (amount_grosze >= 0),
    paid_on        DATE     NOT NULL,
    received_on    DATE     NOT NULL,
    payload        JSONB    NOT NULL,
    PRIMARY KEY (tenant, payment_id)
);

-- Derived from payments.payload.items: which accounts a payment went to.
CREATE TABLE payment_items (
    tenant           TEXT     NOT NULL,
    payment_id       TEXT     NOT NULL,
    item_no          INTEGER  NOT NULL,
    account_id       TEXT     NOT NULL,
    liability_id     TEXT,
    installment_seq  INTEGER,
    amount_grosze    BIGINT   NOT NULL CHECK (amount_grosze >= 0),
    PRIMARY KEY (tenant, payment_id, item_no)
);
CREATE INDEX payment_items_account_idx ON payment_items (tenant, account_id);

CREATE TABLE payment_bookings (
    tenant         TEXT     NOT NULL,
    payment_id     TEXT     NOT NULL,
    posting_id     TEXT     NOT NULL,
    account_id     TEXT     NOT NULL,
    amount_grosze  BIGINT   NOT NULL CHECK (amount_grosze >= 0),
    booked_on      DATE     NOT NULL,
    payload        JSONB    NOT NULL,
    PRIMARY KEY (tenant, payment_id, posting_id)
);

-- Payments kept for an admin. `payload` may hold personal data (the raw statement entry).
CREATE TABLE unmatched_payments (
    tenant        TEXT         NOT NULL,
    payment_id    TEXT         NOT NULL,
    reason        TEXT         NOT NULL,
    received_at   TIMESTAMPTZ  NOT NULL,
    payload       JSONB        NOT NULL,
    PRIMARY KEY (tenant, payment_id)
);
CREATE INDEX unmatched_payments_recent_idx ON unmatched_payments (tenant, received_at DESC);
