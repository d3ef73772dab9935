//! The production backend: Postgres through an sqlx pool.
//!
//! `apply` writes a whole batch in one transaction with one statement per record type: the rows
//! travel as parallel arrays and are expanded with `UNNEST`, so a batch of 500 events costs about
//! ten round trips instead of five hundred. That is what lets one projector keep up with a full
//! export replay on a small machine.

use crate::error::{map_sqlx, migrate_err};
use crate::plan::Plan;
use crate::read::{
    allowed_tenants, assemble, resident_bookings_sql, resident_payments_sql, ViewRows,
    RESIDENT_ACCOUNTS, UNMATCHED_SQL,
};
use crate::{
    ApplyOutcome, ImportRow, RejectedRecordRow, ResidentView, Store, StoreError, TableCounts,
    UnmatchedPaymentRow,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use gsko_model::{Event, Pesel, Teryt};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a caller waits for a pooled connection before the store reports `Unavailable`.
/// Short enough that `/readyz` and the projector notice an outage quickly.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The consolidated view in Postgres.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:5432/db`) with a pool of at most
    /// `max_connections` and brings the schema up to date (migrations run under Postgres'
    /// advisory lock, so several daemon instances may start at once).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // The URL may hold a password: never echo it.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Database("invalid Postgres connection URL".to_owned()))?;
        Self::connect_with(options, max_connections).await
    }

    /// Like [`PgStore::connect`], from prepared options.
    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| map_sqlx("connect to Postgres", e))?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (shared with the outbox, say) and runs the migrations on it.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await.map_err(migrate_err)?;
        Ok(PgStore { pool })
    }

    /// The underlying pool, for components that keep their own tables in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

type Tx<'c> = Transaction<'c, Postgres>;

async fn upsert_taxpayers(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.taxpayers;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let id: Vec<&str> = rows.iter().map(|r| r.taxpayer_id).collect();
    let version: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let pesel: Vec<Option<&str>> = rows.iter().map(|r| r.pesel).collect();
    let nip: Vec<Option<&str>> = rows.iter().map(|r| r.nip).collect();
    let name: Vec<&str> = rows.iter().map(|r| r.name).collect();
    let kind: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO taxpayers AS t (tenant, taxpayer_id, source_version, pesel, nip, name, kind, payload)
         SELECT u.tenant, u.taxpayer_id, u.source_version, u.pesel, u.nip, u.name, u.kind, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
              AS u(tenant, taxpayer_id, source_version, pesel, nip, name, kind, payload)
         ON CONFLICT (tenant, taxpayer_id) DO UPDATE SET
             source_version = excluded.source_version, pesel = excluded.pesel, nip = excluded.nip,
             name = excluded.name, kind = excluded.kind, payload = excluded.payload
         WHERE excluded.source_version > t.source_version",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&version)
    .bind(&pesel)
    .bind(&nip)
    .bind(&name)
    .bind(&kind)
    .bind(&payload)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("upsert taxpayers", e))?;
    Ok(done.rows_affected())
}

async fn upsert_accounts(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.accounts;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let id: Vec<&str> = rows.iter().map(|r| r.account_id).collect();
    let version: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let levy: Vec<&str> = rows.iter().map(|r| r.levy).collect();
    let virtual_account: Vec<Option<&str>> = rows.iter().map(|r| r.virtual_account).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    // RETURNING yields exactly the rows inserted or replaced: those are the accounts whose
    // holders must be replaced too.
    let changed: Vec<(String, String)> = sqlx::query_as(
        "INSERT INTO accounts AS t (tenant, account_id, source_version, levy, virtual_account, payload)
         SELECT u.tenant, u.account_id, u.source_version, u.levy, u.virtual_account, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
              AS u(tenant, account_id, source_version, levy, virtual_account, payload)
         ON CONFLICT (tenant, account_id) DO UPDATE SET
             source_version = excluded.source_version, levy = excluded.levy,
             virtual_account = excluded.virtual_account, payload = excluded.payload
         WHERE excluded.source_version > t.source_version
         RETURNING t.tenant, t.account_id",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&version)
    .bind(&levy)
    .bind(&virtual_account)
    .bind(&payload)
    .fetch_all(&mut **tx)
    .await
    .map_err(|e| map_sqlx("upsert accounts", e))?;
    if changed.is_empty() {
        return Ok(0);
    }

    let changed_set: std::collections::HashSet<(&str, &str)> = changed
        .iter()
        .map(|(t, a)| (t.as_str(), a.as_str()))
        .collect();
    let del_tenant: Vec<&str> = changed.iter().map(|(t, _)| t.as_str()).collect();
    let del_account: Vec<&str> = changed.iter().map(|(_, a)| a.as_str()).collect();
    sqlx::query(
        "DELETE FROM account_holders h
         USING UNNEST($1::text[], $2::text[]) AS u(tenant, account_id)
         WHERE h.tenant = u.tenant AND h.account_id = u.account_id",
    )
    .bind(&del_tenant)
    .bind(&del_account)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("replace account holders", e))?;

    let (mut h_tenant, mut h_account, mut h_taxpayer, mut h_role) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in rows
        .iter()
        .filter(|r| changed_set.contains(&(r.tenant, r.account_id)))
    {
        for (taxpayer, role) in &r.holders {
            h_tenant.push(r.tenant);
            h_account.push(r.account_id);
            h_taxpayer.push(*taxpayer);
            h_role.push(*role);
        }
    }
    if !h_tenant.is_empty() {
        sqlx::query(
            "INSERT INTO account_holders (tenant, account_id, taxpayer_id, role)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&h_tenant)
        .bind(&h_account)
        .bind(&h_taxpayer)
        .bind(&h_role)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("replace account holders", e))?;
    }
    Ok(changed.len() as u64)
}

async fn upsert_liabilities(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.liabilities;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let id: Vec<&str> = rows.iter().map(|r| r.liability_id).collect();
    let account: Vec<&str> = rows.iter().map(|r| r.account_id).collect();
    let version: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let levy: Vec<&str> = rows.iter().map(|r| r.levy).collect();
    let year: Vec<i32> = rows.iter().map(|r| r.year).collect();
    let total: Vec<i64> = rows.iter().map(|r| r.total_grosze).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO liabilities AS t (tenant, liability_id, account_id, source_version, levy, year, total_grosze, payload)
         SELECT u.tenant, u.liability_id, u.account_id, u.source_version, u.levy, u.year, u.total_grosze, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int4[], $7::bigint[], $8::text[])
              AS u(tenant, liability_id, account_id, source_version, levy, year, total_grosze, payload)
         ON CONFLICT (tenant, liability_id) DO UPDATE SET
             account_id = excluded.account_id, source_version = excluded.source_version, levy = excluded.levy,
             year = excluded.year, total_grosze = excluded.total_grosze, payload = excluded.payload
         WHERE excluded.source_version > t.source_version",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&account)
    .bind(&version)
    .bind(&levy)
    .bind(&year)
    .bind(&total)
    .bind(&payload)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("upsert liabilities", e))?;
    Ok(done.rows_affected())
}

async fn upsert_postings(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.postings;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let id: Vec<&str> = rows.iter().map(|r| r.posting_id).collect();
    let account: Vec<&str> = rows.iter().map(|r| r.account_id).collect();
    let version: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let kind: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    let value_date: Vec<NaiveDate> = rows.iter().map(|r| r.value_date).collect();
    let amount: Vec<i64> = rows.iter().map(|r| r.amount_grosze).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO postings AS t (tenant, posting_id, account_id, source_version, kind, value_date, amount_grosze, payload)
         SELECT u.tenant, u.posting_id, u.account_id, u.source_version, u.kind, u.value_date, u.amount_grosze, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::date[], $7::bigint[], $8::text[])
              AS u(tenant, posting_id, account_id, source_version, kind, value_date, amount_grosze, payload)
         ON CONFLICT (tenant, posting_id) DO UPDATE SET
             account_id = excluded.account_id, source_version = excluded.source_version, kind = excluded.kind,
             value_date = excluded.value_date, amount_grosze = excluded.amount_grosze, payload = excluded.payload
         WHERE excluded.source_version > t.source_version",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&account)
    .bind(&version)
    .bind(&kind)
    .bind(&value_date)
    .bind(&amount)
    .bind(&payload)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("upsert postings", e))?;
    Ok(done.rows_affected())
}

async fn upsert_balances(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.balances;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let account: Vec<&str> = rows.iter().map(|r| r.account_id).collect();
    let version: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let as_of: Vec<NaiveDate> = rows.iter().map(|r| r.as_of).collect();
    let principal: Vec<i64> = rows.iter().map(|r| r.principal_grosze).collect();
    let interest: Vec<i64> = rows.iter().map(|r| r.interest_grosze).collect();
    let costs: Vec<i64> = rows.iter().map(|r| r.costs_grosze).collect();
    let overpayment: Vec<i64> = rows.iter().map(|r| r.overpayment_grosze).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO balances AS t (tenant, account_id, source_version, as_of, principal_grosze, interest_grosze,
                                   costs_grosze, overpayment_grosze, payload)
         SELECT u.tenant, u.account_id, u.source_version, u.as_of, u.principal_grosze, u.interest_grosze,
                u.costs_grosze, u.overpayment_grosze, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::date[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[])
              AS u(tenant, account_id, source_version, as_of, principal_grosze, interest_grosze, costs_grosze, overpayment_grosze, payload)
         ON CONFLICT (tenant, account_id) DO UPDATE SET
             source_version = excluded.source_version, as_of = excluded.as_of,
             principal_grosze = excluded.principal_grosze, interest_grosze = excluded.interest_grosze,
             costs_grosze = excluded.costs_grosze, overpayment_grosze = excluded.overpayment_grosze,
             payload = excluded.payload
         WHERE excluded.source_version > t.source_version",
    )
    .bind(&tenant)
    .bind(&account)
    .bind(&version)
    .bind(&as_of)
    .bind(&principal)
    .bind(&interest)
    .bind(&costs)
    .bind(&overpayment)
    .bind(&payload)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("upsert balances", e))?;
    Ok(done.rows_affected())
}

async fn insert_rejected(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.rejected;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let sha: Vec<&str> = rows.iter().map(|r| r.file_sha256).collect();
    let line: Vec<i64> = rows.iter().map(|r| r.line).collect();
    let record: Vec<&str> = rows.iter().map(|r| r.record.as_str()).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.received_at).collect();
    let done = sqlx::query(
        "INSERT INTO rejected_records (tenant, file_sha256, line, record, received_at)
         SELECT u.tenant, u.file_sha256, u.line, u.record::jsonb, u.received_at
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[])
              AS u(tenant, file_sha256, line, record, received_at)
         ON CONFLICT (tenant, file_sha256, line) DO NOTHING",
    )
    .bind(&tenant)
    .bind(&sha)
    .bind(&line)
    .bind(&record)
    .bind(&at)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("insert rejected records", e))?;
    Ok(done.rows_affected())
}

async fn insert_imports(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.imports;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let sha: Vec<&str> = rows.iter().map(|r| r.file_sha256).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.completed_at).collect();
    let done = sqlx::query(
        "INSERT INTO imports (tenant, file_sha256, payload, completed_at)
         SELECT u.tenant, u.file_sha256, u.payload::jsonb, u.completed_at
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(tenant, file_sha256, payload, completed_at)
         ON CONFLICT (tenant, file_sha256) DO NOTHING",
    )
    .bind(&tenant)
    .bind(&sha)
    .bind(&payload)
    .bind(&at)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("insert imports", e))?;
    Ok(done.rows_affected())
}

/// Inserts the payments not stored yet and, for exactly those, their items.
async fn insert_payments(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.payments;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let id: Vec<&str> = rows.iter().map(|r| r.payment_id).collect();
    let channel: Vec<&str> = rows.iter().map(|r| r.channel).collect();
    let amount: Vec<i64> = rows.iter().map(|r| r.amount_grosze).collect();
    let paid_on: Vec<NaiveDate> = rows.iter().map(|r| r.paid_on).collect();
    let received_on: Vec<NaiveDate> = rows.iter().map(|r| r.received_on).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let inserted: Vec<(String, String)> = sqlx::query_as(
        "INSERT INTO payments (tenant, payment_id, channel, amount_grosze, paid_on, received_on, payload)
         SELECT u.tenant, u.payment_id, u.channel, u.amount_grosze, u.paid_on, u.received_on, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::date[], $6::date[], $7::text[])
              AS u(tenant, payment_id, channel, amount_grosze, paid_on, received_on, payload)
         ON CONFLICT (tenant, payment_id) DO NOTHING
         RETURNING tenant, payment_id",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&channel)
    .bind(&amount)
    .bind(&paid_on)
    .bind(&received_on)
    .bind(&payload)
    .fetch_all(&mut **tx)
    .await
    .map_err(|e| map_sqlx("insert payments", e))?;
    if inserted.is_empty() {
        return Ok(0);
    }
    let new: std::collections::HashSet<(&str, &str)> = inserted
        .iter()
        .map(|(t, p)| (t.as_str(), p.as_str()))
        .collect();
    let (mut i_tenant, mut i_payment, mut i_no, mut i_account) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut i_liability, mut i_installment, mut i_amount) = (Vec::new(), Vec::new(), Vec::new());
    for r in rows
        .iter()
        .filter(|r| new.contains(&(r.tenant, r.payment_id)))
    {
        for item in &r.items {
            i_tenant.push(r.tenant);
            i_payment.push(r.payment_id);
            i_no.push(item.item_no);
            i_account.push(item.account_id);
            i_liability.push(item.liability_id);
            i_installment.push(item.installment_seq);
            i_amount.push(item.amount_grosze);
        }
    }
    if !i_tenant.is_empty() {
        sqlx::query(
            "INSERT INTO payment_items (tenant, payment_id, item_no, account_id, liability_id, installment_seq, amount_grosze)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::int4[], $7::bigint[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&i_tenant)
        .bind(&i_payment)
        .bind(&i_no)
        .bind(&i_account)
        .bind(&i_liability)
        .bind(&i_installment)
        .bind(&i_amount)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("insert payment items", e))?;
    }
    Ok(inserted.len() as u64)
}

async fn insert_bookings(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.bookings;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let payment: Vec<&str> = rows.iter().map(|r| r.payment_id).collect();
    let posting: Vec<&str> = rows.iter().map(|r| r.posting_id).collect();
    let account: Vec<&str> = rows.iter().map(|r| r.account_id).collect();
    let amount: Vec<i64> = rows.iter().map(|r| r.amount_grosze).collect();
    let booked_on: Vec<NaiveDate> = rows.iter().map(|r| r.booked_on).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO payment_bookings (tenant, payment_id, posting_id, account_id, amount_grosze, booked_on, payload)
         SELECT u.tenant, u.payment_id, u.posting_id, u.account_id, u.amount_grosze, u.booked_on, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::date[], $7::text[])
              AS u(tenant, payment_id, posting_id, account_id, amount_grosze, booked_on, payload)
         ON CONFLICT (tenant, payment_id, posting_id) DO NOTHING",
    )
    .bind(&tenant)
    .bind(&payment)
    .bind(&posting)
    .bind(&account)
    .bind(&amount)
    .bind(&booked_on)
    .bind(&payload)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("insert payment bookings", e))?;
    Ok(done.rows_affected())
}

async fn insert_unmatched(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.unmatched;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let payment: Vec<&str> = rows.iter().map(|r| r.payment_id).collect();
    let reason: Vec<&str> = rows.iter().map(|r| r.reason).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.received_at).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO unmatched_payments (tenant, payment_id, reason, received_at, payload)
         SELECT u.tenant, u.payment_id, u.reason, u.received_at, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
              AS u(tenant, payment_id, reason, received_at, payload)
         ON CONFLICT (tenant, payment_id) DO NOTHING",
    )
    .bind(&tenant)
    .bind(&payment)
    .bind(&reason)
    .bind(&at)
    .bind(&payload)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("insert unmatched payments", e))?;
    Ok(done.rows_affected())
}

/// Case status changes: the latest status per case (replaced only by a higher seq) and one
/// timeline entry per (case, seq). Counted by the timeline entries inserted, one per event
/// that added a change the view did not have.
async fn upsert_cases(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let rows = &plan.case_statuses;
    if !rows.is_empty() {
        let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
        let id: Vec<&str> = rows.iter().map(|r| r.ezd_case_id).collect();
        let case_ref: Vec<&str> = rows.iter().map(|r| r.case_ref).collect();
        let status: Vec<&str> = rows.iter().map(|r| r.status).collect();
        let seq: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let changed_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.changed_at).collect();
        let title: Vec<Option<&str>> = rows.iter().map(|r| r.title).collect();
        let due_on: Vec<Option<NaiveDate>> = rows.iter().map(|r| r.due_on).collect();
        let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
        sqlx::query(
            "INSERT INTO cases AS k (tenant, ezd_case_id, case_ref, status, seq, changed_at, title, due_on, payload)
             SELECT u.tenant, u.ezd_case_id, u.case_ref, u.status, u.seq, u.changed_at, u.title, u.due_on, u.payload::jsonb
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::text[], $8::date[], $9::text[])
                  AS u(tenant, ezd_case_id, case_ref, status, seq, changed_at, title, due_on, payload)
             ON CONFLICT (tenant, ezd_case_id) DO UPDATE SET
                 case_ref = excluded.case_ref, status = excluded.status, seq = excluded.seq,
                 changed_at = excluded.changed_at, title = excluded.title, due_on = excluded.due_on,
                 payload = excluded.payload
             WHERE excluded.seq > k.seq",
        )
        .bind(&tenant)
        .bind(&id)
        .bind(&case_ref)
        .bind(&status)
        .bind(&seq)
        .bind(&changed_at)
        .bind(&title)
        .bind(&due_on)
        .bind(&payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("upsert cases", e))?;
    }
    let rows = &plan.case_timeline;
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant: Vec<&str> = rows.iter().map(|r| r.tenant).collect();
    let id: Vec<&str> = rows.iter().map(|r| r.ezd_case_id).collect();
    let seq: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let status: Vec<&str> = rows.iter().map(|r| r.status).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.at).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO case_timeline (tenant, ezd_case_id, seq, status, at, payload)
         SELECT u.tenant, u.ezd_case_id, u.seq, u.status, u.at, u.payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::text[])
              AS u(tenant, ezd_case_id, seq, status, at, payload)
         ON CONFLICT (tenant, ezd_case_id, seq) DO NOTHING",
    )
    .bind(&tenant)
    .bind(&id)
    .bind(&seq)
    .bind(&status)
    .bind(&at)
    .bind(&payload)
    .execute(&mut **tx)
    .await
    .map_err(|e| map_sqlx("insert case timeline", e))?;
    Ok(done.rows_affected())
}

impl PgStore {
    /// The rows of one resident's cases, read in one snapshot.
    async fn case_rows(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<crate::cases_view::CaseRows, StoreError> {
        let op = "read resident cases";
        let (t, p) = (tenant.as_str(), pesel.as_str());
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx(op, e))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
        let mut rows = crate::cases_view::CaseRows::default();
        for (sql, out) in [
            (
                crate::letters::RESIDENT_CASES.to_owned(),
                &mut rows.registrations,
            ),
            (
                crate::letters::RESIDENT_LETTERS.to_owned(),
                &mut rows.letters,
            ),
            (crate::cases_view::resident_case_rows_sql(), &mut rows.cases),
            (
                crate::cases_view::resident_timeline_sql(),
                &mut rows.timeline,
            ),
            (
                crate::letters::RESIDENT_DECISIONS.to_owned(),
                &mut rows.decisions,
            ),
        ] {
            *out = sqlx::query_scalar(&sql)
                .bind(t)
                .bind(p)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| map_sqlx(op, e))?;
        }
        tx.commit().await.map_err(|e| map_sqlx(op, e))?;
        Ok(rows)
    }
}

fn json_value(payload: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(payload).map_err(|e| StoreError::Database(format!("payload: {e}")))
}

/// Letters and delivery outcomes: insert-if-absent, row by row (a batch holds few).
async fn insert_letters(tx: &mut Tx<'_>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let mut applied = 0;
    for r in &plan.letters {
        applied += sqlx::query(crate::letters::LETTER_INSERT)
            .bind(r.tenant)
            .bind(r.letter_id)
            .bind(r.signer_pesel)
            .bind(r.received_at)
            .bind(r.signature_status)
            .bind(r.flagged)
            .bind(sqlx::types::Json(json_value(&r.payload)?))
            .execute(&mut **tx)
            .await
            .map_err(|e| map_sqlx("insert letters", e))?
            .rows_affected();
    }
    for r in &plan.cases {
        applied += sqlx::query(crate::letters::CASE_INSERT)
            .bind(r.tenant)
            .bind(r.letter_id)
            .bind(r.case_ref)
            .bind(r.ezd_case_id)
            .bind(r.registered_at)
            .bind(sqlx::types::Json(json_value(&r.payload)?))
            .execute(&mut **tx)
            .await
            .map_err(|e| map_sqlx("insert letter cases", e))?
            .rows_affected();
    }
    for r in &plan.decisions {
        applied += sqlx::query(crate::letters::DECISION_INSERT)
            .bind(r.tenant)
            .bind(r.decision_id)
            .bind(r.recipient_pesel)
            .bind(r.in_reply_to)
            .bind(r.outcome)
            .bind(r.at)
            .bind(sqlx::types::Json(json_value(&r.payload)?))
            .execute(&mut **tx)
            .await
            .map_err(|e| map_sqlx("insert decision deliveries", e))?
            .rows_affected();
    }
    Ok(applied)
}

#[async_trait]
impl Store for PgStore {
    async fn apply(&self, events: &[Event]) -> Result<ApplyOutcome, StoreError> {
        if events.is_empty() {
            return Ok(ApplyOutcome::default());
        }
        let plan = Plan::build(events)?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| map_sqlx("begin apply", e))?;
        let mut applied = 0;
        applied += upsert_taxpayers(&mut tx, &plan).await?;
        applied += upsert_accounts(&mut tx, &plan).await?;
        applied += upsert_liabilities(&mut tx, &plan).await?;
        applied += upsert_postings(&mut tx, &plan).await?;
        applied += upsert_balances(&mut tx, &plan).await?;
        applied += insert_rejected(&mut tx, &plan).await?;
        applied += insert_imports(&mut tx, &plan).await?;
        applied += insert_payments(&mut tx, &plan).await?;
        applied += insert_bookings(&mut tx, &plan).await?;
        applied += insert_unmatched(&mut tx, &plan).await?;
        applied += insert_letters(&mut tx, &plan).await?;
        applied += upsert_cases(&mut tx, &plan).await?;
        tx.commit().await.map_err(|e| map_sqlx("commit apply", e))?;
        let total = events.len() as u64;
        Ok(ApplyOutcome {
            applied,
            ignored: total.saturating_sub(applied),
        })
    }

    async fn resident_tenants(
        &self,
        pesel: &Pesel,
        allowed: &[Teryt],
    ) -> Result<Vec<Teryt>, StoreError> {
        if allowed.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT tenant FROM taxpayers WHERE pesel = $1")
                .bind(pesel.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx("read resident tenants", e))?;
        allowed_tenants(stored, allowed)
    }

    async fn resident_view(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Option<ResidentView>, StoreError> {
        let op = "read resident view";
        let (t, p) = (tenant.as_str(), pesel.as_str());
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx(op, e))?;
        // One snapshot for all the queries: the view must not show a posting of a batch whose
        // balance it does not show yet.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
        let mut rows = ViewRows {
            taxpayers: sqlx::query_as(
                "SELECT taxpayer_id, payload::text FROM taxpayers WHERE tenant = $1 AND pesel = $2",
            )
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?,
            ..ViewRows::default()
        };
        if rows.taxpayers.is_empty() {
            tx.commit().await.map_err(|e| map_sqlx(op, e))?;
            return Ok(None);
        }
        rows.accounts = sqlx::query_as(&format!(
            "SELECT a.account_id, a.payload::text FROM accounts a WHERE a.tenant = $1 AND a.account_id IN ({RESIDENT_ACCOUNTS})"
        ))
        .bind(t)
        .bind(p)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| map_sqlx(op, e))?;
        if !rows.accounts.is_empty() {
            rows.holder_names = sqlx::query_as(&format!(
                "SELECT DISTINCT x.taxpayer_id, x.name FROM account_holders h
                 JOIN taxpayers x ON x.tenant = h.tenant AND x.taxpayer_id = h.taxpayer_id
                 WHERE h.tenant = $1 AND h.account_id IN ({RESIDENT_ACCOUNTS})"
            ))
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
            rows.liabilities = sqlx::query_as(&format!(
                "SELECT account_id, liability_id, payload::text FROM liabilities
                 WHERE tenant = $1 AND account_id IN ({RESIDENT_ACCOUNTS})"
            ))
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
            rows.postings = sqlx::query_as(&format!(
                "SELECT account_id, posting_id, payload::text FROM postings
                 WHERE tenant = $1 AND account_id IN ({RESIDENT_ACCOUNTS})"
            ))
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
            rows.balances = sqlx::query_as(&format!(
                "SELECT account_id, payload::text FROM balances WHERE tenant = $1 AND account_id IN ({RESIDENT_ACCOUNTS})"
            ))
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
            rows.payments = sqlx::query_as(&resident_payments_sql())
                .bind(t)
                .bind(p)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| map_sqlx(op, e))?;
            if !rows.payments.is_empty() {
                rows.bookings = sqlx::query_as(&resident_bookings_sql())
                    .bind(t)
                    .bind(p)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| map_sqlx(op, e))?;
            }
        }
        tx.commit().await.map_err(|e| map_sqlx(op, e))?;
        assemble(tenant, rows)
    }

    async fn rejected_records(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<RejectedRecordRow>, StoreError> {
        let rows: Vec<(String, i64, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT file_sha256, line, record::text, received_at FROM rejected_records
             WHERE tenant = $1 ORDER BY received_at DESC, file_sha256, line LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx("read rejected records", e))?;
        rows.into_iter()
            .map(|(sha, line, record, received_at)| {
                let record =
                    crate::error::decode("rejected_records", &format!("{sha}:{line}"), &record)?;
                Ok(RejectedRecordRow {
                    received_at,
                    record,
                })
            })
            .collect()
    }

    async fn imports(&self, tenant: &Teryt, limit: u32) -> Result<Vec<ImportRow>, StoreError> {
        let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT file_sha256, payload::text, completed_at FROM imports
             WHERE tenant = $1 ORDER BY completed_at DESC, file_sha256 LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx("read imports", e))?;
        rows.into_iter()
            .map(|(sha, payload, completed_at)| {
                let import = crate::error::decode("imports", &sha, &payload)?;
                Ok(ImportRow {
                    completed_at,
                    import,
                })
            })
            .collect()
    }

    async fn unmatched_payments(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<UnmatchedPaymentRow>, StoreError> {
        let rows: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(UNMATCHED_SQL)
            .bind(tenant.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx("read unmatched payments", e))?;
        rows.into_iter()
            .map(|(id, payload, received_at)| {
                Ok(UnmatchedPaymentRow {
                    received_at,
                    payment: crate::error::decode("unmatched_payments", &id, &payload)?,
                })
            })
            .collect()
    }

    async fn resident_letters(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<crate::LetterView>, StoreError> {
        let op = "read resident letters";
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx(op, e))?;
        let letters: Vec<String> = sqlx::query_scalar(crate::letters::RESIDENT_LETTERS)
            .bind(tenant.as_str())
            .bind(pesel.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
        let cases: Vec<String> = sqlx::query_scalar(crate::letters::RESIDENT_CASES)
            .bind(tenant.as_str())
            .bind(pesel.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
        let answers: Vec<String> = sqlx::query_scalar(crate::letters::RESIDENT_ANSWERS)
            .bind(tenant.as_str())
            .bind(pesel.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
        tx.commit().await.map_err(|e| map_sqlx(op, e))?;
        crate::letters::letter_views(letters, cases, answers)
    }

    async fn resident_decisions(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<gsko_model::DecisionDelivered>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(crate::letters::RESIDENT_DECISIONS)
            .bind(tenant.as_str())
            .bind(pesel.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx("read resident decisions", e))?;
        rows.iter()
            .map(|r| crate::letters::decode("decision_deliveries", r))
            .collect()
    }

    async fn resident_cases(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<Vec<crate::CaseView>, StoreError> {
        crate::cases_view::case_views(self.case_rows(tenant, pesel).await?)
    }

    async fn resident_case(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
        case_ref: &gsko_model::CaseRef,
    ) -> Result<Option<crate::CaseView>, StoreError> {
        crate::cases_view::case_view(self.case_rows(tenant, pesel).await?, case_ref)
    }

    async fn letters(
        &self,
        tenant: &Teryt,
        flagged_only: bool,
        limit: u32,
    ) -> Result<Vec<gsko_model::Letter>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(crate::letters::ADMIN_LETTERS)
            .bind(tenant.as_str())
            .bind(flagged_only)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx("read letters", e))?;
        rows.iter()
            .map(|r| crate::letters::decode("letters", r))
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx("ping", e))?;
        Ok(())
    }

    async fn counts(&self, tenant: &Teryt) -> Result<TableCounts, StoreError> {
        let row: crate::read::CountsRow = sqlx::query_as(crate::read::COUNTS_SQL)
            .bind(tenant.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_sqlx("count rows", e))?;
        Ok(crate::read::counts(row))
    }
}

/// Postgres keeps instants as `timestamptz`: no conversion.
fn to_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

fn from_instant(_: &'static str, _: &str, t: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
    Ok(t)
}

crate::payment_sql::payment_store!(
    store: PgStore,
    db: Postgres,
    begin_write: "BEGIN",
    instant: DateTime<Utc>,
    to_instant: to_instant,
    from_instant: from_instant,
);

crate::delivery_sql::delivery_store!(
    store: PgStore,
    db: Postgres,
    begin_write: "BEGIN",
    instant: DateTime<Utc>,
    to_instant: to_instant,
    from_instant: from_instant,
);

crate::filing_sql::filing_store!(
    store: PgStore,
    db: Postgres,
    begin_write: "BEGIN",
    instant: DateTime<Utc>,
    to_instant: to_instant,
    from_instant: from_instant,
);
