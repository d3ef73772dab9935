//! The embedded backend: SQLite in one file (or in memory for tests and demos).
//!
//! SQLite runs in-process, so a statement costs a function call, not a round trip: `apply` runs
//! one prepared (and cached) statement per row inside one `BEGIN IMMEDIATE` transaction. The
//! immediate begin takes the write lock up front, so two writers queue on the busy timeout
//! instead of failing on a lock upgrade.

use crate::error::{decode, map_sqlx, migrate_err};
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
use chrono::{DateTime, Utc};
use gsko_model::{Event, Pesel, Teryt};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::path::Path;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for another writer's transaction before giving up with
/// SQLITE_BUSY (reported as `Unavailable`, so the projector retries).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections of a file database: WAL lets readers (the query service) run beside the single
/// writer (the projector).
const FILE_POOL_SIZE: u32 = 4;

/// The consolidated view in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`, or a private in-memory
    /// database when `path` is `:memory:`, and brings the schema up to date.
    ///
    /// File databases use WAL with `synchronous = FULL`: the projector acknowledges messages
    /// once `apply` returns, so a commit must survive a power cut, not only a crash. Foreign
    /// keys stay off on purpose: events arrive in any order (a liability before its account).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let memory = path.as_os_str() == ":memory:" || path.as_os_str() == "sqlite::memory:";
        let options = SqliteConnectOptions::new()
            .foreign_keys(false)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full);
        let (options, pool) = if memory {
            // Every connection to ":memory:" is its own empty database, so the pool holds
            // exactly one connection and never lets it expire.
            let options = options
                .in_memory(true)
                .journal_mode(SqliteJournalMode::Memory);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (options, pool)
        } else {
            let options = options
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal);
            (
                options,
                SqlitePoolOptions::new().max_connections(FILE_POOL_SIZE),
            )
        };
        let pool = pool
            .acquire_timeout(BUSY_TIMEOUT * 2)
            .connect_with(options)
            .await
            .map_err(|e| map_sqlx("open SQLite database", e))?;
        MIGRATOR.run(&pool).await.map_err(migrate_err)?;
        Ok(SqliteStore { pool })
    }

    /// The underlying pool, for components that keep their own tables in the same file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool (checkpointing the WAL as the last connection closes).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Microseconds since the epoch: SQLite stores instants as integers (see the migration).
fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(table: &'static str, key: &str, us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        reason: "timestamp out of range".to_owned(),
    })
}

async fn write(tx: &mut Transaction<'_, Sqlite>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    let mut applied = 0;
    for r in &plan.taxpayers {
        applied += sqlx::query(
            "INSERT INTO taxpayers AS t (tenant, taxpayer_id, source_version, pesel, nip, name, kind, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant, taxpayer_id) DO UPDATE SET
                 source_version = excluded.source_version, pesel = excluded.pesel, nip = excluded.nip,
                 name = excluded.name, kind = excluded.kind, payload = excluded.payload
             WHERE excluded.source_version > t.source_version",
        )
        .bind(r.tenant)
        .bind(r.taxpayer_id)
        .bind(r.version)
        .bind(r.pesel)
        .bind(r.nip)
        .bind(r.name)
        .bind(r.kind)
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("upsert taxpayers", e))?
        .rows_affected();
    }
    for r in &plan.accounts {
        let changed = sqlx::query(
            "INSERT INTO accounts AS t (tenant, account_id, source_version, levy, virtual_account, payload)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant, account_id) DO UPDATE SET
                 source_version = excluded.source_version, levy = excluded.levy,
                 virtual_account = excluded.virtual_account, payload = excluded.payload
             WHERE excluded.source_version > t.source_version",
        )
        .bind(r.tenant)
        .bind(r.account_id)
        .bind(r.version)
        .bind(r.levy)
        .bind(r.virtual_account)
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("upsert accounts", e))?
        .rows_affected();
        if changed == 0 {
            continue;
        }
        applied += changed;
        sqlx::query("DELETE FROM account_holders WHERE tenant = $1 AND account_id = $2")
            .bind(r.tenant)
            .bind(r.account_id)
            .execute(&mut **tx)
            .await
            .map_err(|e| map_sqlx("replace account holders", e))?;
        for (taxpayer, role) in &r.holders {
            sqlx::query(
                "INSERT INTO account_holders (tenant, account_id, taxpayer_id, role) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(r.tenant)
            .bind(r.account_id)
            .bind(*taxpayer)
            .bind(*role)
            .execute(&mut **tx)
            .await
            .map_err(|e| map_sqlx("replace account holders", e))?;
        }
    }
    for r in &plan.liabilities {
        applied += sqlx::query(
            "INSERT INTO liabilities AS t (tenant, liability_id, account_id, source_version, levy, year, total_grosze, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant, liability_id) DO UPDATE SET
                 account_id = excluded.account_id, source_version = excluded.source_version, levy = excluded.levy,
                 year = excluded.year, total_grosze = excluded.total_grosze, payload = excluded.payload
             WHERE excluded.source_version > t.source_version",
        )
        .bind(r.tenant)
        .bind(r.liability_id)
        .bind(r.account_id)
        .bind(r.version)
        .bind(r.levy)
        .bind(r.year)
        .bind(r.total_grosze)
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("upsert liabilities", e))?
        .rows_affected();
    }
    for r in &plan.postings {
        applied += sqlx::query(
            "INSERT INTO postings AS t (tenant, posting_id, account_id, source_version, kind, value_date, amount_grosze, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant, posting_id) DO UPDATE SET
                 account_id = excluded.account_id, source_version = excluded.source_version, kind = excluded.kind,
                 value_date = excluded.value_date, amount_grosze = excluded.amount_grosze, payload = excluded.payload
             WHERE excluded.source_version > t.source_version",
        )
        .bind(r.tenant)
        .bind(r.posting_id)
        .bind(r.account_id)
        .bind(r.version)
        .bind(r.kind)
        .bind(r.value_date)
        .bind(r.amount_grosze)
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("upsert postings", e))?
        .rows_affected();
    }
    for r in &plan.balances {
        applied += sqlx::query(
            "INSERT INTO balances AS t (tenant, account_id, source_version, as_of, principal_grosze, interest_grosze,
                                       costs_grosze, overpayment_grosze, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant, account_id) DO UPDATE SET
                 source_version = excluded.source_version, as_of = excluded.as_of,
                 principal_grosze = excluded.principal_grosze, interest_grosze = excluded.interest_grosze,
                 costs_grosze = excluded.costs_grosze, overpayment_grosze = excluded.overpayment_grosze,
                 payload = excluded.payload
             WHERE excluded.source_version > t.source_version",
        )
        .bind(r.tenant)
        .bind(r.account_id)
        .bind(r.version)
        .bind(r.as_of)
        .bind(r.principal_grosze)
        .bind(r.interest_grosze)
        .bind(r.costs_grosze)
        .bind(r.overpayment_grosze)
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("upsert balances", e))?
        .rows_affected();
    }
    for r in &plan.rejected {
        applied += sqlx::query(
            "INSERT INTO rejected_records (tenant, file_sha256, line, record, received_at_us) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant, file_sha256, line) DO NOTHING",
        )
        .bind(r.tenant)
        .bind(r.file_sha256)
        .bind(r.line)
        .bind(&r.record)
        .bind(to_micros(r.received_at))
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("insert rejected records", e))?
        .rows_affected();
    }
    for r in &plan.imports {
        applied += sqlx::query(
            "INSERT INTO imports (tenant, file_sha256, payload, completed_at_us) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, file_sha256) DO NOTHING",
        )
        .bind(r.tenant)
        .bind(r.file_sha256)
        .bind(&r.payload)
        .bind(to_micros(r.completed_at))
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("insert imports", e))?
        .rows_affected();
    }
    applied += write_payments(tx, plan).await?;
    applied += write_cases(tx, plan).await?;
    Ok(applied)
}

/// The payment records of a batch: insert-if-absent, a payment's items only with the payment.
async fn write_payments(
    tx: &mut Transaction<'_, Sqlite>,
    plan: &Plan<'_>,
) -> Result<u64, StoreError> {
    let mut applied = 0;
    for r in &plan.payments {
        let inserted = sqlx::query(
            "INSERT INTO payments (tenant, payment_id, channel, amount_grosze, paid_on, received_on, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant, payment_id) DO NOTHING",
        )
        .bind(r.tenant)
        .bind(r.payment_id)
        .bind(r.channel)
        .bind(r.amount_grosze)
        .bind(r.paid_on)
        .bind(r.received_on)
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("insert payments", e))?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        applied += inserted;
        for item in &r.items {
            sqlx::query(
                "INSERT INTO payment_items (tenant, payment_id, item_no, account_id, liability_id, installment_seq, amount_grosze)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT DO NOTHING",
            )
            .bind(r.tenant)
            .bind(r.payment_id)
            .bind(item.item_no)
            .bind(item.account_id)
            .bind(item.liability_id)
            .bind(item.installment_seq)
            .bind(item.amount_grosze)
            .execute(&mut **tx)
            .await
            .map_err(|e| map_sqlx("insert payment items", e))?;
        }
    }
    for r in &plan.bookings {
        applied += sqlx::query(
            "INSERT INTO payment_bookings (tenant, payment_id, posting_id, account_id, amount_grosze, booked_on, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant, payment_id, posting_id) DO NOTHING",
        )
        .bind(r.tenant)
        .bind(r.payment_id)
        .bind(r.posting_id)
        .bind(r.account_id)
        .bind(r.amount_grosze)
        .bind(r.booked_on)
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("insert payment bookings", e))?
        .rows_affected();
    }
    for r in &plan.unmatched {
        applied += sqlx::query(
            "INSERT INTO unmatched_payments (tenant, payment_id, reason, received_at, payload)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant, payment_id) DO NOTHING",
        )
        .bind(r.tenant)
        .bind(r.payment_id)
        .bind(r.reason)
        .bind(to_micros(r.received_at))
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("insert unmatched payments", e))?
        .rows_affected();
    }
    for r in &plan.letters {
        applied += sqlx::query(crate::letters::LETTER_INSERT)
            .bind(r.tenant)
            .bind(r.letter_id)
            .bind(r.signer_pesel)
            .bind(to_micros(r.received_at))
            .bind(r.signature_status)
            .bind(r.flagged)
            .bind(&r.payload)
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
            .bind(to_micros(r.registered_at))
            .bind(&r.payload)
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
            .bind(to_micros(r.at))
            .bind(&r.payload)
            .execute(&mut **tx)
            .await
            .map_err(|e| map_sqlx("insert decision deliveries", e))?
            .rows_affected();
    }
    Ok(applied)
}

/// Case status changes: the latest status per case (replaced only by a higher seq) and one
/// timeline entry per (case, seq), counted by the timeline entries inserted.
async fn write_cases(tx: &mut Transaction<'_, Sqlite>, plan: &Plan<'_>) -> Result<u64, StoreError> {
    for r in &plan.case_statuses {
        sqlx::query(
            "INSERT INTO cases AS k (tenant, ezd_case_id, case_ref, status, seq, changed_at, title, due_on, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant, ezd_case_id) DO UPDATE SET
                 case_ref = excluded.case_ref, status = excluded.status, seq = excluded.seq,
                 changed_at = excluded.changed_at, title = excluded.title, due_on = excluded.due_on,
                 payload = excluded.payload
             WHERE excluded.seq > k.seq",
        )
        .bind(r.tenant)
        .bind(r.ezd_case_id)
        .bind(r.case_ref)
        .bind(r.status)
        .bind(r.seq)
        .bind(to_micros(r.changed_at))
        .bind(r.title)
        .bind(r.due_on)
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("upsert cases", e))?;
    }
    let mut applied = 0;
    for r in &plan.case_timeline {
        applied += sqlx::query(
            "INSERT INTO case_timeline (tenant, ezd_case_id, seq, status, at, payload)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant, ezd_case_id, seq) DO NOTHING",
        )
        .bind(r.tenant)
        .bind(r.ezd_case_id)
        .bind(r.seq)
        .bind(r.status)
        .bind(to_micros(r.at))
        .bind(&r.payload)
        .execute(&mut **tx)
        .await
        .map_err(|e| map_sqlx("insert case timeline", e))?
        .rows_affected();
    }
    Ok(applied)
}

impl SqliteStore {
    /// The rows of one resident's cases, read in one (WAL) snapshot.
    async fn case_rows(
        &self,
        tenant: &Teryt,
        pesel: &Pesel,
    ) -> Result<crate::cases_view::CaseRows, StoreError> {
        let op = "read resident cases";
        let (t, p) = (tenant.as_str(), pesel.as_str());
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx(op, e))?;
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

#[async_trait]
impl Store for SqliteStore {
    async fn apply(&self, events: &[Event]) -> Result<ApplyOutcome, StoreError> {
        if events.is_empty() {
            return Ok(ApplyOutcome::default());
        }
        let plan = Plan::build(events)?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map_sqlx("begin apply", e))?;
        let applied = write(&mut tx, &plan).await?;
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
        // A (deferred, read-only) transaction reads one WAL snapshot across all the queries.
        let mut tx = self.pool.begin().await.map_err(|e| map_sqlx(op, e))?;
        let mut rows = ViewRows {
            taxpayers: sqlx::query_as(
                "SELECT taxpayer_id, payload FROM taxpayers WHERE tenant = $1 AND pesel = $2",
            )
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?,
            ..ViewRows::default()
        };
        if !rows.taxpayers.is_empty() {
            rows.accounts = sqlx::query_as(&format!(
                "SELECT a.account_id, a.payload FROM accounts a WHERE a.tenant = $1 AND a.account_id IN ({RESIDENT_ACCOUNTS})"
            ))
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
        }
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
                "SELECT account_id, liability_id, payload FROM liabilities WHERE tenant = $1 AND account_id IN ({RESIDENT_ACCOUNTS})"
            ))
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
            rows.postings = sqlx::query_as(&format!(
                "SELECT account_id, posting_id, payload FROM postings WHERE tenant = $1 AND account_id IN ({RESIDENT_ACCOUNTS})"
            ))
            .bind(t)
            .bind(p)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map_sqlx(op, e))?;
            rows.balances = sqlx::query_as(&format!(
                "SELECT account_id, payload FROM balances WHERE tenant = $1 AND account_id IN ({RESIDENT_ACCOUNTS})"
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
        let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT file_sha256, line, record, received_at_us FROM rejected_records
             WHERE tenant = $1 ORDER BY received_at_us DESC, file_sha256, line LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx("read rejected records", e))?;
        rows.into_iter()
            .map(|(sha, line, record, us)| {
                let key = format!("{sha}:{line}");
                Ok(RejectedRecordRow {
                    received_at: from_micros("rejected_records", &key, us)?,
                    record: decode("rejected_records", &key, &record)?,
                })
            })
            .collect()
    }

    async fn imports(&self, tenant: &Teryt, limit: u32) -> Result<Vec<ImportRow>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT file_sha256, payload, completed_at_us FROM imports
             WHERE tenant = $1 ORDER BY completed_at_us DESC, file_sha256 LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_sqlx("read imports", e))?;
        rows.into_iter()
            .map(|(sha, payload, us)| {
                Ok(ImportRow {
                    completed_at: from_micros("imports", &sha, us)?,
                    import: decode("imports", &sha, &payload)?,
                })
            })
            .collect()
    }

    async fn unmatched_payments(
        &self,
        tenant: &Teryt,
        limit: u32,
    ) -> Result<Vec<UnmatchedPaymentRow>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(UNMATCHED_SQL)
            .bind(tenant.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map_sqlx("read unmatched payments", e))?;
        rows.into_iter()
            .map(|(id, payload, us)| {
                Ok(UnmatchedPaymentRow {
                    received_at: from_micros("unmatched_payments", &id, us)?,
                    payment: decode("unmatched_payments", &id, &payload)?,
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

crate::payment_sql::payment_store!(
    store: SqliteStore,
    db: Sqlite,
    begin_write: "BEGIN IMMEDIATE",
    instant: i64,
    to_instant: to_micros,
    from_instant: from_micros,
);

crate::delivery_sql::delivery_store!(
    store: SqliteStore,
    db: Sqlite,
    begin_write: "BEGIN IMMEDIATE",
    instant: i64,
    to_instant: to_micros,
    from_instant: from_micros,
);

crate::filing_sql::filing_store!(
    store: SqliteStore,
    db: Sqlite,
    begin_write: "BEGIN IMMEDIATE",
    instant: i64,
    to_instant: to_micros,
    from_instant: from_micros,
);
