//! [`DeliveryStore`](crate::delivery::DeliveryStore) for both backends, written once, the same
//! way as [`crate::payment_sql`]: one statement text for Postgres and SQLite, the
//! [`delivery_store`] macro fills in how instants are stored and how a write transaction
//! begins. The outbox rows are written with the payment store's statement and body encoding, so
//! the one relay publishes both.

use crate::delivery::{parse_channel, DeliveryRecord, DeliveryState};
use crate::payment_sql::FromInstant;
use crate::StoreError;
use gsko_model::{DeliveryChannel, Event, EventData, Teryt};

pub(crate) const CLAIM: &str =
    "INSERT INTO deliveries (tenant, decision_id, command, channel, state, attempts, created_at, updated_at)
     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)
     ON CONFLICT (tenant, decision_id) DO NOTHING";

const COLUMNS: &str =
    "tenant, decision_id, CAST(command AS TEXT), channel, state, shipment_id, attempts,
     last_error, created_at, updated_at, finished_at";

/// One delivery (`$1` tenant, `$2` decision id).
pub(crate) fn by_decision_sql() -> String {
    format!("SELECT {COLUMNS} FROM deliveries WHERE tenant = $1 AND decision_id = $2")
}

/// Sent, not final, through `$1`, oldest change first, at most `$2`.
pub(crate) fn in_flight_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM deliveries WHERE state = 'sent' AND channel = $1
         ORDER BY updated_at, tenant, decision_id LIMIT $2"
    )
}

/// The tenant's uncertain deliveries (`$1`), oldest first.
pub(crate) fn parked_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM deliveries WHERE tenant = $1 AND state = 'uncertain'
         ORDER BY created_at, decision_id"
    )
}

/// `pending` → `sending`: `$1` now, `$2` tenant, `$3` decision.
pub(crate) const MARK_SENDING: &str =
    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = $1
     WHERE tenant = $2 AND decision_id = $3 AND state = 'pending'";

/// `sending` → `pending`: `$1` now, `$2` detail, `$3` tenant, `$4` decision.
pub(crate) const RELEASE: &str =
    "UPDATE deliveries SET state = 'pending', last_error = $2, updated_at = $1
     WHERE tenant = $3 AND decision_id = $4 AND state = 'sending'";

/// `sending`/`uncertain` → `sent`: `$1` now, `$2` shipment id, `$3` tenant, `$4` decision.
pub(crate) const MARK_SENT: &str =
    "UPDATE deliveries SET state = 'sent', shipment_id = COALESCE($2, shipment_id), updated_at = $1
     WHERE tenant = $3 AND decision_id = $4 AND state IN ('sending', 'uncertain')";

/// `sending` → `uncertain`: `$1` now, `$2` detail, `$3` tenant, `$4` decision.
pub(crate) const MARK_UNCERTAIN: &str =
    "UPDATE deliveries SET state = 'uncertain', last_error = $2, updated_at = $1
     WHERE tenant = $3 AND decision_id = $4 AND state = 'sending'";

/// Not final → final: `$1` now, `$2` state, `$3` shipment id, `$4` reason, `$5` tenant,
/// `$6` decision.
pub(crate) const FINISH: &str = "UPDATE deliveries
     SET state = $2, shipment_id = COALESCE($3, shipment_id), last_error = COALESCE($4, last_error),
         updated_at = $1, finished_at = $1
     WHERE tenant = $5 AND decision_id = $6
       AND state IN ('pending', 'sending', 'sent', 'uncertain')";

/// The columns of [`COLUMNS`], in order.
pub(crate) type RecordCols<I> = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i32,
    Option<String>,
    I,
    I,
    Option<I>,
);

pub(crate) fn record<I>(
    row: RecordCols<I>,
    from: FromInstant<I>,
) -> Result<DeliveryRecord, StoreError> {
    let t = "deliveries";
    let (tenant, decision_id, command, channel, state) = (row.0, row.1, row.2, row.3, row.4);
    let key = format!("{tenant}/{decision_id}");
    let corrupt = |reason: &str| StoreError::Corrupt {
        table: t,
        key: key.clone(),
        reason: reason.to_owned(),
    };
    Ok(DeliveryRecord {
        tenant: Teryt::parse(&tenant).map_err(|_| corrupt("tenant is not a TERYT code"))?,
        command: crate::error::decode(t, &key, &command)?,
        channel: parse_channel(&channel).ok_or_else(|| corrupt("unknown channel"))?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("unknown state"))?,
        shipment_id: row.5,
        attempts: row.6,
        last_error: row.7,
        created_at: from(t, &key, row.8)?,
        updated_at: from(t, &key, row.9)?,
        finished_at: row.10.map(|i| from(t, &key, i)).transpose()?,
        decision_id,
    })
}

/// What `finish` writes, read from its event (refused unless it is this tenant's and this
/// decision's `decision.delivered`): the final state, the shipment id and the failure reason.
pub(crate) fn finishing(
    tenant: &Teryt,
    decision_id: &str,
    event: &Event,
) -> Result<(DeliveryState, Option<String>, Option<String>), StoreError> {
    let EventData::DecisionDelivered(d) = &event.data else {
        return Err(StoreError::Database(format!(
            "finish delivery {decision_id}: the outcome must be a decision.delivered event, not {}",
            event.message_type().type_name()
        )));
    };
    if &event.tenant != tenant || d.decision_id != decision_id {
        return Err(StoreError::Database(format!(
            "finish delivery {decision_id}: the event is about another tenant or decision"
        )));
    }
    Ok((
        DeliveryState::of_outcome(d.outcome),
        d.shipment_id.clone(),
        d.reason.clone(),
    ))
}

/// The channel as stored.
pub(crate) fn channel(c: DeliveryChannel) -> &'static str {
    crate::delivery::channel_str(c)
}

/// Implements [`DeliveryStore`](crate::delivery::DeliveryStore) for a backend store type with a
/// `pool` field; the arguments are those of [`crate::payment_sql::payment_store`].
macro_rules! delivery_store {
    (
        store: $store:ty,
        db: $db:ty,
        begin_write: $begin:expr,
        instant: $inst:ty,
        to_instant: $to:expr,
        from_instant: $from:expr $(,)?
    ) => {
        mod delivery_store_impl {
            use super::*;
            use gsko_model::{DecisionDelivery, DeliveryChannel, Event, Teryt};
            use $crate::delivery::{Claimed, DeliveryRecord, DeliveryStore};
            use $crate::delivery_sql as q;
            use $crate::error::map_sqlx;
            use $crate::payment_sql as p;
            use $crate::StoreError;

            type Conn = <$db as sqlx::Database>::Connection;

            const FROM: p::FromInstant<$inst> = $from;

            async fn read(
                conn: &mut Conn,
                tenant: &Teryt,
                decision_id: &str,
            ) -> Result<Option<DeliveryRecord>, StoreError> {
                let row: Option<q::RecordCols<$inst>> = sqlx::query_as(&q::by_decision_sql())
                    .bind(tenant.as_str())
                    .bind(decision_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| map_sqlx("read delivery", e))?;
                row.map(|r| q::record(r, FROM)).transpose()
            }

            impl $store {
                /// Runs one guarded state change; true when it changed a row.
                async fn delivery_update(
                    &self,
                    op: &'static str,
                    sql: &'static str,
                    tenant: &Teryt,
                    decision_id: &str,
                    // `None`: the statement has no `$2` text; `Some(t)`: it binds `t` there.
                    text: Option<Option<&str>>,
                ) -> Result<bool, StoreError> {
                    if p::unstorable(decision_id) {
                        return Ok(false);
                    }
                    p::refuse_nul(op, text.flatten())?;
                    let mut query = sqlx::query(sql).bind($to(p::now()));
                    if let Some(text) = text {
                        query = query.bind(text);
                    }
                    let done = query
                        .bind(tenant.as_str())
                        .bind(decision_id)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    Ok(done.rows_affected() > 0)
                }
            }

            #[async_trait::async_trait]
            impl DeliveryStore for $store {
                async fn claim(
                    &self,
                    tenant: &Teryt,
                    command: &DecisionDelivery,
                    channel: DeliveryChannel,
                ) -> Result<Claimed, StoreError> {
                    let op = "claim delivery";
                    let json = serde_json::to_string(command).map_err(|_| {
                        StoreError::Database(format!("{op}: the command does not serialize"))
                    })?;
                    // A NUL anywhere in the command shows as \u0000 in its JSON.
                    if json.contains("\\u0000") || command.decision_id.contains('\0') {
                        return Err(StoreError::Database(format!(
                            "{op}: a text field contains a NUL character"
                        )));
                    }
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    let inserted = sqlx::query(q::CLAIM)
                        .bind(tenant.as_str())
                        .bind(&command.decision_id)
                        .bind(sqlx::types::Json(command))
                        .bind(q::channel(channel))
                        .bind($to(p::now()))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?
                        .rows_affected();
                    let record = read(&mut tx, tenant, &command.decision_id)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Database(format!("{op}: claimed delivery vanished"))
                        })?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(if inserted > 0 {
                        Claimed::New(record)
                    } else {
                        Claimed::Existing(record)
                    })
                }

                async fn mark_sending(
                    &self,
                    tenant: &Teryt,
                    decision_id: &str,
                ) -> Result<bool, StoreError> {
                    self.delivery_update(
                        "mark delivery sending",
                        q::MARK_SENDING,
                        tenant,
                        decision_id,
                        None,
                    )
                    .await
                }

                async fn release(
                    &self,
                    tenant: &Teryt,
                    decision_id: &str,
                    detail: &str,
                ) -> Result<bool, StoreError> {
                    self.delivery_update(
                        "release delivery",
                        q::RELEASE,
                        tenant,
                        decision_id,
                        Some(Some(detail)),
                    )
                    .await
                }

                async fn mark_sent(
                    &self,
                    tenant: &Teryt,
                    decision_id: &str,
                    shipment_id: Option<&str>,
                ) -> Result<bool, StoreError> {
                    self.delivery_update(
                        "mark delivery sent",
                        q::MARK_SENT,
                        tenant,
                        decision_id,
                        Some(shipment_id),
                    )
                    .await
                }

                async fn mark_uncertain(
                    &self,
                    tenant: &Teryt,
                    decision_id: &str,
                    detail: &str,
                ) -> Result<bool, StoreError> {
                    self.delivery_update(
                        "mark delivery uncertain",
                        q::MARK_UNCERTAIN,
                        tenant,
                        decision_id,
                        Some(Some(detail)),
                    )
                    .await
                }

                async fn finish(
                    &self,
                    tenant: &Teryt,
                    decision_id: &str,
                    outcome_event: &Event,
                ) -> Result<bool, StoreError> {
                    let op = "finish delivery";
                    let (state, shipment_id, reason) =
                        q::finishing(tenant, decision_id, outcome_event)?;
                    if p::unstorable(decision_id) {
                        return Ok(false);
                    }
                    p::refuse_nul(
                        op,
                        shipment_id.as_deref().into_iter().chain(reason.as_deref()),
                    )?;
                    let body = p::outbox_body(outcome_event)?;
                    if body.contains("\\u0000") {
                        return Err(StoreError::Database(format!(
                            "{op}: a text field contains a NUL character"
                        )));
                    }
                    let now = p::now();
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    let done = sqlx::query(q::FINISH)
                        .bind($to(now))
                        .bind(state.as_str())
                        .bind(shipment_id.as_deref())
                        .bind(reason.as_deref())
                        .bind(tenant.as_str())
                        .bind(decision_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    if done.rows_affected() == 0 {
                        tx.rollback().await.map_err(|e| map_sqlx(op, e))?;
                        return Ok(false);
                    }
                    sqlx::query(p::OUTBOX_INSERT)
                        .bind(outcome_event.tenant.as_str())
                        .bind(outcome_event.id.to_string())
                        .bind(body)
                        .bind($to(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx("queue decision.delivered", e))?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(true)
                }

                async fn by_decision(
                    &self,
                    tenant: &Teryt,
                    decision_id: &str,
                ) -> Result<Option<DeliveryRecord>, StoreError> {
                    if p::unstorable(decision_id) {
                        return Ok(None);
                    }
                    let mut conn = self
                        .pool
                        .acquire()
                        .await
                        .map_err(|e| map_sqlx("read delivery", e))?;
                    read(&mut conn, tenant, decision_id).await
                }

                async fn in_flight(
                    &self,
                    channel: DeliveryChannel,
                    limit: u32,
                ) -> Result<Vec<DeliveryRecord>, StoreError> {
                    let rows: Vec<q::RecordCols<$inst>> = sqlx::query_as(&q::in_flight_sql())
                        .bind(q::channel(channel))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| map_sqlx("read deliveries in flight", e))?;
                    rows.into_iter().map(|r| q::record(r, FROM)).collect()
                }

                async fn parked(&self, tenant: &Teryt) -> Result<Vec<DeliveryRecord>, StoreError> {
                    let rows: Vec<q::RecordCols<$inst>> = sqlx::query_as(&q::parked_sql())
                        .bind(tenant.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| map_sqlx("read parked deliveries", e))?;
                    rows.into_iter().map(|r| q::record(r, FROM)).collect()
                }
            }
        }
    };
}

pub(crate) use delivery_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guards_name_exactly_the_open_states() {
        let open: Vec<String> = DeliveryState::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let guard = &FINISH[FINISH.find("state IN").expect("guarded")..];
        for s in DeliveryState::ALL {
            let quoted = format!("'{}'", s.as_str());
            assert_eq!(guard.contains(&quoted), open.contains(&quoted), "{s:?}");
        }
    }

    #[test]
    fn states_and_channels_round_trip_their_stored_names() {
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        for c in [DeliveryChannel::Epuap, DeliveryChannel::EDoreczenia] {
            assert_eq!(parse_channel(channel(c)), Some(c));
            // The stored name is the model's own serialization.
            assert_eq!(
                serde_json::to_value(c).expect("serializes"),
                serde_json::Value::String(channel(c).to_owned())
            );
        }
    }
}
