-- Online payments (SQLite, embedded mode). Same tables, keys and meaning as the Postgres
-- migration (see there), with SQLite's types as in 0001: JSON is TEXT, dates are TEXT
-- 'YYYY-MM-DD', instants are INTEGER microseconds since the Unix epoch.
--
-- Unlike 0001, instant columns here carry no `_us` suffix: the payment service's statements
-- are shared verbatim between the two backends, so the column names must be the same.

CREATE TABLE payment_baskets (
    tenant           TEXT     NOT NULL,
    basket_id        TEXT     NOT NULL,
    client           TEXT     NOT NULL,
    idempotency_key  TEXT     NOT NULL,
    request_hash     TEXT     NOT NULL,
    resident_ref     TEXT     NOT NULL,
    created_at       INTEGER  NOT NULL,
    PRIMARY KEY (tenant, basket_id),
    CONSTRAINT payment_baskets_idempotency_key UNIQUE (tenant, client, idempotency_key)
) STRICT;

CREATE TABLE payment_orders (
    tenant          TEXT     NOT NULL,
    session_id      TEXT     NOT NULL,
    basket_id       TEXT     NOT NULL,
    seq             INTEGER  NOT NULL,
    merchant        TEXT     NOT NULL,
    gateway         TEXT     NOT NULL,
    amount_grosze   INTEGER  NOT NULL CHECK (amount_grosze >= 0),
    description     TEXT     NOT NULL,
    items           TEXT     NOT NULL,
    status          TEXT     NOT NULL
                    CHECK (status IN ('created', 'registered', 'paid', 'canceled', 'disputed')),
    gateway_ref     TEXT,
    redirect_url    TEXT,
    status_detail   TEXT,
    created_at      INTEGER  NOT NULL,
    updated_at      INTEGER  NOT NULL,
    PRIMARY KEY (tenant, session_id)
) STRICT;
CREATE INDEX payment_orders_basket_idx ON payment_orders (tenant, basket_id, seq);

CREATE TABLE gateway_notifications (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    tenant        TEXT     NOT NULL,
    gateway       TEXT     NOT NULL,
    merchant      TEXT     NOT NULL,
    received_at   INTEGER  NOT NULL,
    session_id    TEXT,
    outcome       TEXT     NOT NULL,
    reason        TEXT     NOT NULL,
    body_sha256   TEXT     NOT NULL,
    remote_addr   TEXT
) STRICT;
CREATE INDEX gateway_notifications_recent_idx ON gateway_notifications (tenant, received_at DESC);

CREATE TABLE settlements (
    tenant       TEXT     NOT NULL,
    payment_id   TEXT     NOT NULL,
    session_id   TEXT,
    settled_at   INTEGER  NOT NULL,
    PRIMARY KEY (tenant, payment_id)
) STRICT;

-- AUTOINCREMENT: a sequence number is never reused, even after the newest rows are deleted.
CREATE TABLE outbox (
    seq           INTEGER  PRIMARY KEY AUTOINCREMENT,
    tenant        TEXT     NOT NULL,
    event_id      TEXT     NOT NULL,
    body          TEXT     NOT NULL,
    created_at    INTEGER  NOT NULL,
    published_at  INTEGER
) STRICT;
CREATE INDEX outbox_pending_idx ON outbox (seq) WHERE published_at IS NULL;

CREATE INDEX accounts_virtual_account_idx ON accounts (tenant, virtual_account);

CREATE TABLE payments (
    tenant         TEXT     NOT NULL,
    payment_id     TEXT     NOT NULL,
    channel        TEXT     NOT NULL,
    amount_grosze  INTEGER  NOT NULL CHECK (amount_grosze >= 0),
    paid_on        TEXT     NOT NULL,
    received_on    TEXT     NOT NULL,
    payload        TEXT     NOT NULL,
    PRIMARY KEY (tenant, payment_id)
) STRICT;

CREATE TABLE payment_items (
    tenant           TEXT     NOT NULL,
    payment_id       TEXT     NOT NULL,
    item_no          INTEGER  NOT NULL,
    account_id       TEXT     NOT NULL,
    liability_id     TEXT,
    installment_seq  INTEGER,
    amount_grosze    INTEGER  NOT NULL CHECK (amount_grosze >= 0),
    PRIMARY KEY (tenant, payment_id, item_no)
) STRICT;
CREATE INDEX payment_items_account_idx ON payment_items (tenant, account_id);

CREATE TABLE payment_bookings (
    tenant         TEXT     NOT NULL,
    payment_id     TEXT     NOT NULL,
    posting_id     TEXT     NOT NULL,
    account_id     TEXT     NOT NULL,
    amount_grosze  INTEGER  NOT NULL CHECK (amount_grosze >= 0),
    booked_on      TEXT     NOT NULL,
    payload        TEXT     NOT NULL,
    PRIMARY KEY (tenant, payment_id, posting_id)
) STRICT;

CREATE TABLE unmatched_payments (
    tenant        TEXT     NOT NULL,
    payment_id    TEXT     NOT NULL,
    reason        TEXT     NOT NULL,
    received_at   INTEGER  NOT NULL,
    payload       TEXT     NOT NULL,
    PRIMARY KEY (tenant, payment_id)
) STRICT;
CREATE INDEX unmatched_payments_recent_idx ON unmatched_payments (tenant, received_at DESC);
