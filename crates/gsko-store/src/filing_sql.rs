//! [`FilingStore`](crate::FilingStore) for both backends, written once, like
//! [`crate::payment_sql`]: the same statements on Postgres and SQLite, the [`filing_store`]
//! macro filling in how an instant is stored and how a write transaction begins.

use crate::filing::{FilingRecord, FilingRoute, FilingStatus, FilingUpdate, NewFiling};
use crate::StoreError;
use gsko_model::Teryt;

pub(crate) const FILING_INSERT: &str =
    "INSERT INTO filings (tenant, filing_id, client, idempotency_key, request_hash, resident_ref,
                          mode, title, return_url, status, unsigned_sha256, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'created', $10, $11, $11)
     ON CONFLICT (tenant, client, idempotency_key) DO NOTHING";

pub(crate) const FILING_BY_KEY: &str = "SELECT filing_id, request_hash FROM filings
     WHERE tenant = $1 AND client = $2 AND idempotency_key = $3";

/// The columns [`filing_record`] reads, in order.
const FILING_COLUMNS: &str = "filing_id, client, idempotency_key, request_hash, resident_ref,
     mode, title, return_url, status, unsigned_sha256, sign_url, signed_sha256, upp_sha256,
     upp_id, epuap_document_id, letter_id, status_detail, created_at, updated_at";

/// One filing (`$1` tenant, `$2` filing id).
pub(crate) fn filing_sql() -> String {
    format!("SELECT {FILING_COLUMNS} FROM filings WHERE tenant = $1 AND filing_id = $2")
}

/// Filings in a status (`$1` tenant, `$2` status, `$3` limit).
pub(crate) fn filings_in_sql() -> String {
    format!(
        "SELECT {FILING_COLUMNS} FROM filings WHERE tenant = $1 AND status = $2
         ORDER BY updated_at, filing_id LIMIT $3"
    )
}

/// The compare-and-set update, leaving from any of `n_from` statuses (`$12…`).
pub(crate) fn filing_update_sql(n_from: usize) -> String {
    let from: Vec<String> = (0..n_from).map(|i| format!("${}", i + 12)).collect();
    format!(
        "UPDATE filings SET status = $1,
             sign_url = COALESCE($2, sign_url),
             signed_sha256 = COALESCE($3, signed_sha256),
             upp_sha256 = COALESCE($4, upp_sha256),
             upp_id = COALESCE($5, upp_id),
             epuap_document_id = COALESCE($6, epuap_document_id),
             letter_id = COALESCE($7, letter_id),
             status_detail = $8,
             updated_at = $9
         WHERE tenant = $10 AND filing_id = $11 AND status IN ({})",
        from.join(", ")
    )
}

/// The text columns of a row, in [`FILING_COLUMNS`] order up to `status_detail`.
pub(crate) struct FilingTexts {
    pub filing_id: String,
    pub client: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub resident_ref: String,
    pub mode: String,
    pub title: String,
    pub return_url: String,
    pub status: String,
    pub unsigned_sha256: String,
    pub sign_url: Option<String>,
    pub signed_sha256: Option<String>,
    pub upp_sha256: Option<String>,
    pub upp_id: Option<String>,
    pub epuap_document_id: Option<String>,
    pub letter_id: Option<String>,
    pub status_detail: Option<String>,
}

pub(crate) fn filing_record<I>(
    tenant: &Teryt,
    t: FilingTexts,
    created_at: I,
    updated_at: I,
    from: crate::payment_sql::FromInstant<I>,
) -> Result<FilingRecord, StoreError> {
    let table = "filings";
    let corrupt = |reason: &str| StoreError::Corrupt {
        table,
        key: t.filing_id.clone(),
        reason: reason.to_owned(),
    };
    let status = FilingStatus::parse(&t.status).ok_or_else(|| corrupt("unknown filing status"))?;
    let route = FilingRoute::parse(&t.mode).ok_or_else(|| corrupt("unknown filing mode"))?;
    Ok(FilingRecord {
        tenant: tenant.clone(),
        created_at: from(table, &t.filing_id, created_at)?,
        updated_at: from(table, &t.filing_id, updated_at)?,
        status,
        route,
        filing_id: t.filing_id,
        client: t.client,
        idempotency_key: t.idempotency_key,
        request_hash: t.request_hash,
        resident_ref: t.resident_ref,
        title: t.title,
        return_url: t.return_url,
        unsigned_sha256: t.unsigned_sha256,
        sign_url: t.sign_url,
        signed_sha256: t.signed_sha256,
        upp_sha256: t.upp_sha256,
        upp_id: t.upp_id,
        epuap_document_id: t.epuap_document_id,
        letter_id: t.letter_id,
        status_detail: t.status_detail,
    })
}

pub(crate) fn new_filing_texts(f: &NewFiling) -> impl Iterator<Item = &str> {
    [
        f.filing_id.as_str(),
        &f.client,
        &f.idempotency_key,
        &f.request_hash,
        &f.resident_ref,
        &f.title,
        &f.return_url,
        &f.unsigned_sha256,
    ]
    .into_iter()
}

pub(crate) fn update_texts(u: &FilingUpdate) -> impl Iterator<Item = &str> {
    [
        &u.sign_url,
        &u.signed_sha256,
        &u.upp_sha256,
        &u.upp_id,
        &u.epuap_document_id,
        &u.letter_id,
        &u.status_detail,
    ]
    .into_iter()
    .filter_map(|s| s.as_deref())
}

/// Implements [`FilingStore`](crate::FilingStore) for a backend store type with a `pool`
/// field; the arguments are those of [`crate::payment_sql::payment_store`].
macro_rules! filing_store {
    (
        store: $store:ty,
        db: $db:ty,
        begin_write: $begin:expr,
        instant: $inst:ty,
        to_instant: $to:expr,
        from_instant: $from:expr $(,)?
    ) => {
        mod filing_store_impl {
            use super::*;
            use gsko_model::{Event, Teryt};
            use sqlx::Row as _;
            use $crate::error::map_sqlx;
            use $crate::filing::{
                FilingOutcome, FilingRecord, FilingStatus, FilingStore, FilingUpdate, NewFiling,
            };
            use $crate::filing_sql as f;
            use $crate::payment_sql as q;
            use $crate::StoreError;

            type Conn = <$db as sqlx::Database>::Connection;
            type DbRow = <$db as sqlx::Database>::Row;

            const FROM: q::FromInstant<$inst> = $from;

            fn decode(tenant: &Teryt, row: &DbRow) -> Result<FilingRecord, StoreError> {
                let op = "read filing";
                let s = |i: usize| -> Result<String, StoreError> {
                    row.try_get::<String, _>(i).map_err(|e| map_sqlx(op, e))
                };
                let o = |i: usize| -> Result<Option<String>, StoreError> {
                    row.try_get::<Option<String>, _>(i)
                        .map_err(|e| map_sqlx(op, e))
                };
                let texts = f::FilingTexts {
                    filing_id: s(0)?,
                    client: s(1)?,
                    idempotency_key: s(2)?,
                    request_hash: s(3)?,
                    resident_ref: s(4)?,
                    mode: s(5)?,
                    title: s(6)?,
                    return_url: s(7)?,
                    status: s(8)?,
                    unsigned_sha256: s(9)?,
                    sign_url: o(10)?,
                    signed_sha256: o(11)?,
                    upp_sha256: o(12)?,
                    upp_id: o(13)?,
                    epuap_document_id: o(14)?,
                    letter_id: o(15)?,
                    status_detail: o(16)?,
                };
                let created: $inst = row.try_get(17).map_err(|e| map_sqlx(op, e))?;
                let updated: $inst = row.try_get(18).map_err(|e| map_sqlx(op, e))?;
                f::filing_record(tenant, texts, created, updated, FROM)
            }

            async fn read(
                conn: &mut Conn,
                tenant: &Teryt,
                filing_id: &str,
            ) -> Result<Option<FilingRecord>, StoreError> {
                let row = sqlx::query(&f::filing_sql())
                    .bind(tenant.as_str())
                    .bind(filing_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| map_sqlx("read filing", e))?;
                row.map(|r| decode(tenant, &r)).transpose()
            }

            #[async_trait::async_trait]
            impl FilingStore for $store {
                async fn create_filing(
                    &self,
                    filing: &NewFiling,
                ) -> Result<FilingOutcome, StoreError> {
                    let op = "create filing";
                    q::refuse_nul(op, f::new_filing_texts(filing))?;
                    let now = q::now();
                    let t = filing.tenant.as_str();
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    // The unique key decides between two racing submits of the same request.
                    let inserted = sqlx::query(f::FILING_INSERT)
                        .bind(t)
                        .bind(&filing.filing_id)
                        .bind(&filing.client)
                        .bind(&filing.idempotency_key)
                        .bind(&filing.request_hash)
                        .bind(&filing.resident_ref)
                        .bind(filing.route.as_str())
                        .bind(&filing.title)
                        .bind(&filing.return_url)
                        .bind(&filing.unsigned_sha256)
                        .bind($to(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?
                        .rows_affected();
                    let outcome = if inserted == 0 {
                        let (filing_id, hash): (String, String) = sqlx::query_as(f::FILING_BY_KEY)
                            .bind(t)
                            .bind(&filing.client)
                            .bind(&filing.idempotency_key)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?;
                        if hash != filing.request_hash {
                            FilingOutcome::KeyReused { filing_id }
                        } else {
                            FilingOutcome::Existing(
                                read(&mut tx, &filing.tenant, &filing_id)
                                    .await?
                                    .ok_or_else(|| {
                                        StoreError::Database(format!(
                                            "{op}: stored filing vanished"
                                        ))
                                    })?,
                            )
                        }
                    } else {
                        FilingOutcome::Created(
                            read(&mut tx, &filing.tenant, &filing.filing_id)
                                .await?
                                .ok_or_else(|| {
                                    StoreError::Database(format!("{op}: stored filing vanished"))
                                })?,
                        )
                    };
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(outcome)
                }

                async fn filing(
                    &self,
                    tenant: &Teryt,
                    filing_id: &str,
                ) -> Result<Option<FilingRecord>, StoreError> {
                    if q::unstorable(filing_id) {
                        return Ok(None);
                    }
                    let mut conn = self
                        .pool
                        .acquire()
                        .await
                        .map_err(|e| map_sqlx("read filing", e))?;
                    read(&mut conn, tenant, filing_id).await
                }

                async fn update_filing(
                    &self,
                    tenant: &Teryt,
                    filing_id: &str,
                    from: &[FilingStatus],
                    update: &FilingUpdate,
                    outbox: &[Event],
                ) -> Result<Option<FilingRecord>, StoreError> {
                    let op = "update filing";
                    if from.is_empty() || q::unstorable(filing_id) {
                        return Ok(None);
                    }
                    q::refuse_nul(op, f::update_texts(update))?;
                    let now = q::now();
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    let sql = f::filing_update_sql(from.len());
                    let mut query = sqlx::query(&sql)
                        .bind(update.status.as_str())
                        .bind(update.sign_url.as_deref())
                        .bind(update.signed_sha256.as_deref())
                        .bind(update.upp_sha256.as_deref())
                        .bind(update.upp_id.as_deref())
                        .bind(update.epuap_document_id.as_deref())
                        .bind(update.letter_id.as_deref())
                        .bind(update.status_detail.as_deref())
                        .bind($to(now))
                        .bind(tenant.as_str())
                        .bind(filing_id);
                    for s in from {
                        query = query.bind(s.as_str());
                    }
                    let done = query
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?
                        .rows_affected();
                    if done == 0 {
                        tx.rollback().await.map_err(|e| map_sqlx(op, e))?;
                        return Ok(None);
                    }
                    for e in outbox {
                        sqlx::query(q::OUTBOX_INSERT)
                            .bind(e.tenant.as_str())
                            .bind(e.id.to_string())
                            .bind(q::outbox_body(e)?)
                            .bind($to(now))
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx("queue outbox message", e))?;
                    }
                    let record = read(&mut tx, tenant, filing_id).await?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(record)
                }

                async fn filings_in(
                    &self,
                    tenant: &Teryt,
                    status: FilingStatus,
                    limit: u32,
                ) -> Result<Vec<FilingRecord>, StoreError> {
                    let rows = sqlx::query(&f::filings_in_sql())
                        .bind(tenant.as_str())
                        .bind(status.as_str())
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| map_sqlx("read filings", e))?;
                    rows.iter().map(|r| decode(tenant, r)).collect()
                }
            }
        }
    };
}

pub(crate) use filing_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_sql_numbers_the_states_it_leaves_after_the_fixed_parameters() {
        let sql = filing_update_sql(2);
        assert!(sql.ends_with("status IN ($12, $13)"), "{sql}");
        assert_eq!(sql.matches('$').count(), 13);
    }
}
