//! [`PaymentStore`](crate::PaymentStore) for both backends, written once.
//!
//! The statements are the same text on Postgres and SQLite: both read `$n` placeholders, both
//! have `ON CONFLICT … DO NOTHING`, JSON is written through `sqlx::types::Json` (jsonb on
//! Postgres, TEXT on SQLite) and read back with `CAST(… AS TEXT)`. What differs is how an
//! instant is stored (timestamptz against INTEGER microseconds) and how a write transaction
//! begins (SQLite takes the write lock up front with `BEGIN IMMEDIATE`). The [`payment_store`]
//! macro expands the one implementation for each backend with those two differences filled in;
//! the decoding of rows lives in plain functions below.

use crate::payments::{
    BasketRecord, NewBasket, NotificationAudit, NotificationOutcome, OrderRecord, OrderStatus,
};
use crate::StoreError;
use chrono::{DateTime, Utc};
use gsko_model::{Amount, Event, Teryt};

/// Now, cut to the microseconds both backends keep, so that a record returned right after it
/// was written equals the same record read later.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

pub(crate) const BASKET_INSERT: &str =
    "INSERT INTO payment_baskets (tenant, basket_id, client, idempotency_key, request_hash, resident_ref, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (tenant, client, idempotency_key) DO NOTHING";

pub(crate) const BASKET_BY_KEY: &str = "SELECT basket_id, request_hash FROM payment_baskets
     WHERE tenant = $1 AND client = $2 AND idempotency_key = $3";

pub(crate) const BASKET_SELECT: &str =
    "SELECT basket_id, client, idempotency_key, request_hash, resident_ref, created_at
     FROM payment_baskets WHERE tenant = $1 AND basket_id = $2";

pub(crate) const ORDER_INSERT: &str =
    "INSERT INTO payment_orders (tenant, session_id, basket_id, seq, merchant, gateway, amount_grosze,
                                 description, items, status, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)";

const ORDER_COLUMNS: &str = "session_id, basket_id, merchant, gateway, amount_grosze, description,
     CAST(items AS TEXT), status, gateway_ref, redirect_url, status_detail, created_at, updated_at";

/// The orders of a basket in the order they were created (`$1` tenant, `$2` basket id).
pub(crate) fn basket_orders_sql() -> String {
    format!(
        "SELECT {ORDER_COLUMNS} FROM payment_orders WHERE tenant = $1 AND basket_id = $2 ORDER BY seq"
    )
}

/// One order (`$1` tenant, `$2` session id).
pub(crate) fn order_sql() -> String {
    format!("SELECT {ORDER_COLUMNS} FROM payment_orders WHERE tenant = $1 AND session_id = $2")
}

/// The statuses an order may still leave, as the statements below spell them.
const OPEN_STATUSES: [OrderStatus; 2] = [OrderStatus::Created, OrderStatus::Registered];

pub(crate) const ORDER_UPDATE: &str = "UPDATE payment_orders
     SET status = $1, gateway_ref = $2, redirect_url = $3, status_detail = $4, updated_at = $5
     WHERE tenant = $6 AND session_id = $7 AND status IN ('created', 'registered')";

pub(crate) const ORDER_CLOSE: &str = "UPDATE payment_orders
     SET status = $1, status_detail = $2, updated_at = $3
     WHERE tenant = $4 AND session_id = $5 AND status IN ('created', 'registered')";

pub(crate) const ORDER_PAID: &str = "UPDATE payment_orders SET status = 'paid', updated_at = $1
     WHERE tenant = $2 AND session_id = $3 AND status IN ('created', 'registered')";

pub(crate) const SETTLEMENT_CLAIM: &str =
    "INSERT INTO settlements (tenant, payment_id, session_id, settled_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant, payment_id) DO NOTHING";

pub(crate) const OUTBOX_INSERT: &str =
    "INSERT INTO outbox (tenant, event_id, body, created_at) VALUES ($1, $2, $3, $4)";

pub(crate) const OUTBOX_PENDING: &str =
    "SELECT seq, body FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1";

/// Sequence numbers marked published per statement (well below either backend's limit of
/// bound parameters).
pub(crate) const PUBLISHED_CHUNK: usize = 500;

/// Marks `n` messages published: `$1` the instant, `$2…` their sequence numbers.
pub(crate) fn outbox_published_sql(n: usize) -> String {
    let seqs: Vec<String> = (0..n).map(|i| format!("${}", i + 2)).collect();
    format!(
        "UPDATE outbox SET published_at = $1 WHERE published_at IS NULL AND seq IN ({})",
        seqs.join(", ")
    )
}

pub(crate) const NOTIFICATION_INSERT: &str =
    "INSERT INTO gateway_notifications (tenant, gateway, merchant, received_at, session_id, outcome,
                                        reason, body_sha256, remote_addr)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

pub(crate) const NOTIFICATIONS_SELECT: &str =
    "SELECT id, gateway, merchant, received_at, session_id, outcome, reason, body_sha256, remote_addr
     FROM gateway_notifications WHERE tenant = $1 ORDER BY received_at DESC, id DESC LIMIT $2";

pub(crate) const ACCOUNT_BY_VIRTUAL_ACCOUNT: &str = "SELECT account_id FROM accounts
     WHERE tenant = $1 AND virtual_account = $2 ORDER BY account_id LIMIT 1";

/// (basket_id, client, idempotency_key, request_hash, resident_ref, created_at)
pub(crate) type BasketCols<I> = (String, String, String, String, String, I);

/// The columns of [`ORDER_COLUMNS`], in order.
pub(crate) type OrderCols<I> = (
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    I,
    I,
);

/// (id, gateway, merchant, received_at, session_id, outcome, reason, body_sha256, remote_addr)
pub(crate) type NotificationCols<I> = (
    i64,
    String,
    String,
    I,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
);

/// How a backend turns a stored instant back into one (or reports the row corrupt).
pub(crate) type FromInstant<I> = fn(&'static str, &str, I) -> Result<DateTime<Utc>, StoreError>;

/// Postgres keeps instants as `timestamptz`.
pub(crate) fn pg_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

pub(crate) fn pg_from_instant(
    _: &'static str,
    _: &str,
    t: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    Ok(t)
}

/// Microseconds since the epoch: SQLite stores instants as integers (see the migrations).
pub(crate) fn sqlite_instant(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn sqlite_from_instant(
    table: &'static str,
    key: &str,
    us: i64,
) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        reason: "timestamp out of range".to_owned(),
    })
}

fn amount(table: &'static str, key: &str, grosze: i64) -> Result<Amount, StoreError> {
    Amount::from_grosze(grosze).map_err(|_| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        reason: "amount out of range".to_owned(),
    })
}

pub(crate) fn order_record<I>(
    tenant: &Teryt,
    row: OrderCols<I>,
    from: FromInstant<I>,
) -> Result<OrderRecord, StoreError> {
    let (session_id, basket_id, merchant, gateway, grosze, description, items, status) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
    let t = "payment_orders";
    let status = OrderStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
        table: t,
        key: session_id.clone(),
        reason: "unknown order status".to_owned(),
    })?;
    Ok(OrderRecord {
        tenant: tenant.clone(),
        amount: amount(t, &session_id, grosze)?,
        items: crate::error::decode(t, &session_id, &items)?,
        status,
        gateway_ref: row.8,
        redirect_url: row.9,
        status_detail: row.10,
        created_at: from(t, &session_id, row.11)?,
        updated_at: from(t, &session_id, row.12)?,
        session_id,
        basket_id,
        merchant,
        gateway,
        description,
    })
}

pub(crate) fn basket_record<I>(
    tenant: &Teryt,
    row: BasketCols<I>,
    orders: Vec<OrderCols<I>>,
    from: FromInstant<I>,
) -> Result<BasketRecord, StoreError> {
    let (basket_id, client, idempotency_key, request_hash, resident_ref, created_at) = row;
    Ok(BasketRecord {
        tenant: tenant.clone(),
        created_at: from("payment_baskets", &basket_id, created_at)?,
        orders: orders
            .into_iter()
            .map(|o| order_record(tenant, o, from))
            .collect::<Result<_, _>>()?,
        basket_id,
        client,
        idempotency_key,
        request_hash,
        resident_ref,
    })
}

pub(crate) fn notification<I>(
    tenant: &Teryt,
    row: NotificationCols<I>,
    from: FromInstant<I>,
) -> Result<NotificationAudit, StoreError> {
    let (id, gateway, merchant, received_at, session_id, outcome, reason, body_sha256, addr) = row;
    let key = id.to_string();
    let t = "gateway_notifications";
    Ok(NotificationAudit {
        tenant: tenant.clone(),
        gateway,
        merchant,
        received_at: from(t, &key, received_at)?,
        session_id,
        outcome: NotificationOutcome::parse(&outcome).ok_or_else(|| StoreError::Corrupt {
            table: t,
            key: key.clone(),
            reason: "unknown notification outcome".to_owned(),
        })?,
        reason,
        body_sha256,
        remote_addr: addr,
    })
}

/// The outbox body: the CloudEvent JSON as it goes on the bus.
pub(crate) fn outbox_body(event: &Event) -> Result<String, StoreError> {
    String::from_utf8(event.to_json())
        .map_err(|_| StoreError::Database(format!("event {}: JSON is not UTF-8", event.id)))
}

pub(crate) fn outbox_event(seq: i64, body: &str) -> Result<Event, StoreError> {
    Event::from_json(body.as_bytes()).map_err(|e| StoreError::Corrupt {
        table: "outbox",
        key: seq.to_string(),
        // EventError's text names attributes and types, not values.
        reason: e.to_string(),
    })
}

/// Postgres cannot store a NUL character in text (nor as `\u0000` in jsonb); SQLite refuses the
/// same values so that both backends keep one contract. The error names the operation only.
pub(crate) fn refuse_nul<'a>(
    op: &'static str,
    fields: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    if fields.into_iter().any(|f| f.contains('\0')) {
        return Err(StoreError::Database(format!(
            "{op}: a text field contains a NUL character"
        )));
    }
    Ok(())
}

/// A key no row can hold (it contains NUL): looking it up finds nothing, on both backends
/// (Postgres would refuse the parameter instead).
pub(crate) fn unstorable(key: &str) -> bool {
    key.contains('\0')
}

/// Every text a new basket stores.
pub(crate) fn basket_texts(b: &NewBasket) -> impl Iterator<Item = &str> {
    let head = [
        b.basket_id.as_str(),
        &b.client,
        &b.idempotency_key,
        &b.request_hash,
        &b.resident_ref,
    ];
    let orders = b.orders.iter().flat_map(|o| {
        let head = [
            o.session_id.as_str(),
            &o.merchant,
            &o.gateway,
            &o.description,
        ];
        let items = o
            .items
            .iter()
            .flat_map(|i| std::iter::once(i.account_id.as_str()).chain(i.liability_id.as_deref()));
        head.into_iter().chain(items)
    });
    head.into_iter().chain(orders)
}

/// Every text a notification audit row stores.
pub(crate) fn notification_texts(n: &NotificationAudit) -> impl Iterator<Item = &str> {
    [n.gateway.as_str(), &n.merchant, &n.reason, &n.body_sha256]
        .into_iter()
        .chain(n.session_id.as_deref())
        .chain(n.remote_addr.as_deref())
}

/// `update_order` moves between open statuses only; final ones have their own operations.
pub(crate) fn check_open(status: OrderStatus) -> Result<(), StoreError> {
    if OPEN_STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "update order: {} is a final status (use close_order or settle)",
            status.as_str()
        )))
    }
}

/// `close_order` ends an order as cancelled or disputed; `paid` comes only from `settle`.
pub(crate) fn check_closing(status: OrderStatus) -> Result<(), StoreError> {
    if matches!(status, OrderStatus::Canceled | OrderStatus::Disputed) {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "close order: {} is not a closing status",
            status.as_str()
        )))
    }
}

/// Implements [`PaymentStore`](crate::PaymentStore) for a backend store type with a `pool`
/// field, from the sqlx database type, the statement that begins a write transaction, the
/// stored type of an instant and the two conversions of instants.
macro_rules! payment_store {
    (
        store: $store:ty,
        db: $db:ty,
        begin_write: $begin:expr,
        instant: $inst:ty,
        to_instant: $to:expr,
        from_instant: $from:expr $(,)?
    ) => {
        mod payment_store_impl {
            use super::*;
            use gsko_model::{Event, Nrb, Teryt};
            use $crate::error::map_sqlx;
            use $crate::payment_sql as q;
            use $crate::payments::{
                BasketOutcome, BasketRecord, NewBasket, NotificationAudit, OrderRecord,
                OrderStatus, OutboxMessage, PaymentStore,
            };
            use $crate::StoreError;

            type Conn = <$db as sqlx::Database>::Connection;

            const FROM: q::FromInstant<$inst> = $from;

            async fn read_basket(
                conn: &mut Conn,
                tenant: &Teryt,
                basket_id: &str,
            ) -> Result<Option<BasketRecord>, StoreError> {
                let op = "read basket";
                let row: Option<q::BasketCols<$inst>> = sqlx::query_as(q::BASKET_SELECT)
                    .bind(tenant.as_str())
                    .bind(basket_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| map_sqlx(op, e))?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let orders: Vec<q::OrderCols<$inst>> = sqlx::query_as(&q::basket_orders_sql())
                    .bind(tenant.as_str())
                    .bind(basket_id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(|e| map_sqlx(op, e))?;
                q::basket_record(tenant, row, orders, FROM).map(Some)
            }

            async fn insert_outbox(
                conn: &mut Conn,
                events: &[Event],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), StoreError> {
                for e in events {
                    sqlx::query(q::OUTBOX_INSERT)
                        .bind(e.tenant.as_str())
                        .bind(e.id.to_string())
                        .bind(q::outbox_body(e)?)
                        .bind($to(now))
                        .execute(&mut *conn)
                        .await
                        .map_err(|e| map_sqlx("queue outbox message", e))?;
                }
                Ok(())
            }

            #[async_trait::async_trait]
            impl PaymentStore for $store {
                async fn create_basket(
                    &self,
                    basket: &NewBasket,
                ) -> Result<BasketOutcome, StoreError> {
                    let op = "create basket";
                    q::refuse_nul(op, q::basket_texts(basket))?;
                    let now = q::now();
                    let t = basket.tenant.as_str();
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    // The unique idempotency key decides between two racing submits: the
                    // second waits for the first and then inserts nothing.
                    let inserted = sqlx::query(q::BASKET_INSERT)
                        .bind(t)
                        .bind(&basket.basket_id)
                        .bind(&basket.client)
                        .bind(&basket.idempotency_key)
                        .bind(&basket.request_hash)
                        .bind(&basket.resident_ref)
                        .bind($to(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?
                        .rows_affected();
                    if inserted == 0 {
                        let (basket_id, hash): (String, String) = sqlx::query_as(q::BASKET_BY_KEY)
                            .bind(t)
                            .bind(&basket.client)
                            .bind(&basket.idempotency_key)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?;
                        let outcome = if hash != basket.request_hash {
                            BasketOutcome::KeyReused { basket_id }
                        } else {
                            match read_basket(&mut tx, &basket.tenant, &basket_id).await? {
                                Some(b) => BasketOutcome::Existing(b),
                                None => {
                                    return Err(StoreError::Database(format!(
                                        "{op}: stored basket vanished"
                                    )))
                                }
                            }
                        };
                        tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                        return Ok(outcome);
                    }
                    for (seq, o) in basket.orders.iter().enumerate() {
                        let seq = i32::try_from(seq)
                            .map_err(|_| StoreError::Database(format!("{op}: too many orders")))?;
                        sqlx::query(q::ORDER_INSERT)
                            .bind(t)
                            .bind(&o.session_id)
                            .bind(&basket.basket_id)
                            .bind(seq)
                            .bind(&o.merchant)
                            .bind(&o.gateway)
                            .bind(o.amount.grosze())
                            .bind(&o.description)
                            .bind(sqlx::types::Json(&o.items))
                            .bind(OrderStatus::Created.as_str())
                            .bind($to(now))
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?;
                    }
                    let stored = read_basket(&mut tx, &basket.tenant, &basket.basket_id)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Database(format!("{op}: stored basket vanished"))
                        })?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(BasketOutcome::Created(stored))
                }

                async fn basket(
                    &self,
                    tenant: &Teryt,
                    basket_id: &str,
                ) -> Result<Option<BasketRecord>, StoreError> {
                    if q::unstorable(basket_id) {
                        return Ok(None);
                    }
                    let mut conn = self
                        .pool
                        .acquire()
                        .await
                        .map_err(|e| map_sqlx("read basket", e))?;
                    read_basket(&mut conn, tenant, basket_id).await
                }

                async fn basket_by_key(
                    &self,
                    tenant: &Teryt,
                    client: &str,
                    idempotency_key: &str,
                ) -> Result<Option<BasketRecord>, StoreError> {
                    if q::unstorable(client) || q::unstorable(idempotency_key) {
                        return Ok(None);
                    }
                    let op = "read basket by key";
                    let mut conn = self.pool.acquire().await.map_err(|e| map_sqlx(op, e))?;
                    let found: Option<(String, String)> = sqlx::query_as(q::BASKET_BY_KEY)
                        .bind(tenant.as_str())
                        .bind(client)
                        .bind(idempotency_key)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    match found {
                        Some((basket_id, _)) => read_basket(&mut conn, tenant, &basket_id).await,
                        None => Ok(None),
                    }
                }

                async fn order(
                    &self,
                    tenant: &Teryt,
                    session_id: &str,
                ) -> Result<Option<OrderRecord>, StoreError> {
                    if q::unstorable(session_id) {
                        return Ok(None);
                    }
                    let row: Option<q::OrderCols<$inst>> = sqlx::query_as(&q::order_sql())
                        .bind(tenant.as_str())
                        .bind(session_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| map_sqlx("read order", e))?;
                    row.map(|r| q::order_record(tenant, r, FROM)).transpose()
                }

                async fn update_order(
                    &self,
                    tenant: &Teryt,
                    session_id: &str,
                    status: OrderStatus,
                    gateway_ref: Option<&str>,
                    redirect_url: Option<&str>,
                    detail: Option<&str>,
                ) -> Result<bool, StoreError> {
                    q::check_open(status)?;
                    if q::unstorable(session_id) {
                        return Ok(false);
                    }
                    q::refuse_nul(
                        "update order",
                        [gateway_ref, redirect_url, detail].into_iter().flatten(),
                    )?;
                    let done = sqlx::query(q::ORDER_UPDATE)
                        .bind(status.as_str())
                        .bind(gateway_ref)
                        .bind(redirect_url)
                        .bind(detail)
                        .bind($to(q::now()))
                        .bind(tenant.as_str())
                        .bind(session_id)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_sqlx("update order", e))?;
                    Ok(done.rows_affected() > 0)
                }

                async fn close_order(
                    &self,
                    tenant: &Teryt,
                    session_id: &str,
                    status: OrderStatus,
                    detail: &str,
                    outbox: &[Event],
                ) -> Result<bool, StoreError> {
                    let op = "close order";
                    q::check_closing(status)?;
                    if q::unstorable(session_id) {
                        return Ok(false);
                    }
                    q::refuse_nul(op, [detail])?;
                    let now = q::now();
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    let done = sqlx::query(q::ORDER_CLOSE)
                        .bind(status.as_str())
                        .bind(detail)
                        .bind($to(now))
                        .bind(tenant.as_str())
                        .bind(session_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    if done.rows_affected() == 0 {
                        tx.rollback().await.map_err(|e| map_sqlx(op, e))?;
                        return Ok(false);
                    }
                    insert_outbox(&mut tx, outbox, now).await?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(true)
                }

                async fn settle(
                    &self,
                    tenant: &Teryt,
                    payment_id: &str,
                    session_id: Option<&str>,
                    outbox: &[Event],
                ) -> Result<bool, StoreError> {
                    let op = "settle payment";
                    q::refuse_nul(op, std::iter::once(payment_id).chain(session_id))?;
                    let now = q::now();
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    let claimed = sqlx::query(q::SETTLEMENT_CLAIM)
                        .bind(tenant.as_str())
                        .bind(payment_id)
                        .bind(session_id)
                        .bind($to(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?
                        .rows_affected();
                    if claimed == 0 {
                        tx.rollback().await.map_err(|e| map_sqlx(op, e))?;
                        return Ok(false);
                    }
                    if let Some(session_id) = session_id {
                        sqlx::query(q::ORDER_PAID)
                            .bind($to(now))
                            .bind(tenant.as_str())
                            .bind(session_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?;
                    }
                    insert_outbox(&mut tx, outbox, now).await?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(true)
                }

                async fn enqueue(&self, outbox: &[Event]) -> Result<(), StoreError> {
                    let op = "queue outbox messages";
                    if outbox.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    insert_outbox(&mut tx, outbox, q::now()).await?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))
                }

                async fn outbox_pending(
                    &self,
                    limit: u32,
                ) -> Result<Vec<OutboxMessage>, StoreError> {
                    let rows: Vec<(i64, String)> = sqlx::query_as(q::OUTBOX_PENDING)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| map_sqlx("read outbox", e))?;
                    rows.into_iter()
                        .map(|(seq, body)| {
                            Ok(OutboxMessage {
                                seq,
                                event: q::outbox_event(seq, &body)?,
                            })
                        })
                        .collect()
                }

                async fn outbox_published(&self, seqs: &[i64]) -> Result<(), StoreError> {
                    let now = $to(q::now());
                    for chunk in seqs.chunks(q::PUBLISHED_CHUNK) {
                        let sql = q::outbox_published_sql(chunk.len());
                        let mut query = sqlx::query(&sql).bind(now);
                        for seq in chunk {
                            query = query.bind(*seq);
                        }
                        query
                            .execute(&self.pool)
                            .await
                            .map_err(|e| map_sqlx("mark outbox published", e))?;
                    }
                    Ok(())
                }

                async fn audit_notification(
                    &self,
                    row: &NotificationAudit,
                ) -> Result<(), StoreError> {
                    q::refuse_nul("audit notification", q::notification_texts(row))?;
                    sqlx::query(q::NOTIFICATION_INSERT)
                        .bind(row.tenant.as_str())
                        .bind(&row.gateway)
                        .bind(&row.merchant)
                        .bind($to(row.received_at))
                        .bind(row.session_id.as_deref())
                        .bind(row.outcome.as_str())
                        .bind(&row.reason)
                        .bind(&row.body_sha256)
                        .bind(row.remote_addr.as_deref())
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_sqlx("audit notification", e))?;
                    Ok(())
                }

                async fn notifications(
                    &self,
                    tenant: &Teryt,
                    limit: u32,
                ) -> Result<Vec<NotificationAudit>, StoreError> {
                    let rows: Vec<q::NotificationCols<$inst>> =
                        sqlx::query_as(q::NOTIFICATIONS_SELECT)
                            .bind(tenant.as_str())
                            .bind(i64::from(limit))
                            .fetch_all(&self.pool)
                            .await
                            .map_err(|e| map_sqlx("read notifications", e))?;
                    rows.into_iter()
                        .map(|r| q::notification(tenant, r, FROM))
                        .collect()
                }

                async fn account_by_virtual_account(
                    &self,
                    tenant: &Teryt,
                    nrb: &Nrb,
                ) -> Result<Option<String>, StoreError> {
                    sqlx::query_scalar(q::ACCOUNT_BY_VIRTUAL_ACCOUNT)
                        .bind(tenant.as_str())
                        .bind(nrb.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| map_sqlx("find account by virtual account", e))
                }
            }
        }
    };
}

pub(crate) use payment_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_statuses_are_the_non_final_ones_the_statements_name() {
        for s in [
            OrderStatus::Created,
            OrderStatus::Registered,
            OrderStatus::Paid,
            OrderStatus::Canceled,
            OrderStatus::Disputed,
        ] {
            assert_eq!(OPEN_STATUSES.contains(&s), !s.is_final(), "{s:?}");
            let quoted = format!("'{}'", s.as_str());
            for sql in [ORDER_UPDATE, ORDER_CLOSE, ORDER_PAID] {
                let guard = &sql[sql.find("status IN").expect("guarded")..];
                assert_eq!(guard.contains(&quoted), !s.is_final(), "{sql}");
            }
        }
    }

    #[test]
    fn published_sql_numbers_its_placeholders() {
        assert_eq!(
            outbox_published_sql(3),
            "UPDATE outbox SET published_at = $1 WHERE published_at IS NULL AND seq IN ($2, $3, $4)"
        );
    }
}
