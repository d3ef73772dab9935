//! [`AuditStore`](super::AuditStore) for both backends, written once, the same way as
//! [`crate::delivery_sql`]: one statement text for Postgres and SQLite; the [`audit_store`]
//! macro fills in how instants are stored, how transactions begin and how writers are
//! serialized. The backends' own files are not touched: the store is reached through its
//! public `pool()`.

use super::{micros, AuditEntry, AuditRow, ChainCheck, ChainEnds};
use crate::payment_sql::FromInstant;
use crate::StoreError;

const COLUMNS: &str =
    "seq, at, actor, tenant, resident_pesel, action, outcome, remote, prev_hash, hash";

/// The chain's bookends (one row).
pub(super) const ENDS: &str =
    "SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM audit_chain WHERE id = 1";

/// `$1` seq, `$2` at, `$3` actor, `$4` tenant, `$5` PESEL, `$6` action, `$7` outcome,
/// `$8` remote, `$9` previous hash, `$10` hash.
pub(super) const INSERT: &str =
    "INSERT INTO audit_log (seq, at, actor, tenant, resident_pesel, action, outcome, remote, prev_hash, hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// `$1` head seq, `$2` head hash.
pub(super) const MOVE_HEAD: &str =
    "UPDATE audit_chain SET head_seq = $1, head_hash = $2 WHERE id = 1";

/// `$1` anchor seq, `$2` anchor hash.
pub(super) const MOVE_ANCHOR: &str =
    "UPDATE audit_chain SET anchor_seq = $1, anchor_hash = $2 WHERE id = 1";

/// `$1` the last seq pruned.
pub(super) const PRUNE: &str = "DELETE FROM audit_log WHERE seq <= $1";

/// Rows after `$1` in seq order, at most `$2`.
pub(super) fn page_sql() -> String {
    format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
}

/// Rows after `$1` up to and including `$2` in seq order, at most `$3`.
pub(super) fn range_sql() -> String {
    format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3")
}

/// The oldest `$1` rows.
pub(super) fn oldest_sql() -> String {
    format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq LIMIT $1")
}

/// A resident's rows (`$1` tenant, `$2` PESEL), newest first, at most `$3`.
pub(super) fn of_resident_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM audit_log WHERE tenant = $1 AND resident_pesel = $2
         ORDER BY seq DESC LIMIT $3"
    )
}

/// The key of the Postgres advisory lock that serializes appends and prunes ("gskoaudi").
pub(super) const PG_LOCK_KEY: i64 = 0x6773_6b6f_6175_6469;

/// How many rows a prune reads at a time while checking what it is about to delete.
pub(super) const PRUNE_PAGE: u32 = 500;

/// The columns of [`COLUMNS`], in order.
pub(super) type RowCols<I> = (
    i64,
    I,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    String,
);

pub(super) fn row<I>(r: RowCols<I>, from: FromInstant<I>) -> Result<AuditRow, StoreError> {
    let key = r.0.to_string();
    Ok(AuditRow {
        seq: r.0,
        entry: AuditEntry {
            at: from("audit_log", &key, r.1)?,
            actor: r.2,
            tenant: r.3,
            resident_pesel: r.4,
            action: r.5,
            outcome: r.6,
            remote: r.7,
        },
        prev_hash: r.8,
        hash: r.9,
    })
}

pub(super) fn ends(r: (i64, String, i64, String)) -> ChainEnds {
    ChainEnds {
        anchor_seq: r.0,
        anchor_hash: r.1,
        head_seq: r.2,
        head_hash: r.3,
    }
}

/// Every text an entry stores (Postgres refuses NUL characters in text).
pub(super) fn texts(e: &AuditEntry) -> impl Iterator<Item = &str> {
    [e.actor.as_str(), &e.action, &e.outcome]
        .into_iter()
        .chain(e.tenant.as_deref())
        .chain(e.resident_pesel.as_deref())
        .chain(e.remote.as_deref())
}

/// `last` as the store keeps it (instant cut to microseconds), to compare with the stored row.
pub(super) fn normalized(last: &AuditRow) -> AuditRow {
    let mut r = last.clone();
    r.entry.at = micros(r.entry.at);
    r
}

fn refused(seq: i64, why: &str) -> StoreError {
    StoreError::Database(format!("audit prune through row {seq} refused: {why}"))
}

/// Checks, before a prune deletes rows `(anchor, last.seq]`, that `last` is still exactly the
/// stored row and that the rows verify from the anchor (so the anchor only moves over an intact
/// stretch, and tampering is never pruned away unseen).
pub(super) struct PruneCheck {
    last: AuditRow,
    chain: ChainCheck,
    stored_last: Option<AuditRow>,
}

impl PruneCheck {
    /// Refuses at once a `last` that was already pruned or never appended.
    pub fn new(ends: &ChainEnds, last: &AuditRow) -> Result<PruneCheck, StoreError> {
        if last.seq <= ends.anchor_seq {
            return Err(refused(last.seq, "the row was already pruned"));
        }
        if last.seq > ends.head_seq {
            return Err(refused(last.seq, "no such row was appended"));
        }
        let last = normalized(last);
        let chain = ChainCheck::new(ChainEnds {
            anchor_seq: ends.anchor_seq,
            anchor_hash: ends.anchor_hash.clone(),
            head_seq: last.seq,
            head_hash: last.hash.clone(),
        });
        Ok(PruneCheck {
            last,
            chain,
            stored_last: None,
        })
    }

    pub fn feed(&mut self, row: AuditRow) {
        self.chain.feed(&row);
        if row.seq == self.last.seq {
            self.stored_last = Some(row);
        }
    }

    pub fn finish(self) -> Result<(), StoreError> {
        let seq = self.last.seq;
        if self.stored_last.as_ref() != Some(&self.last) {
            return Err(refused(
                seq,
                "the stored row differs from the one given (stale or tampered)",
            ));
        }
        match self.chain.finish().problems.first() {
            None => Ok(()),
            Some(p) => Err(refused(
                seq,
                &format!("the rows to delete do not verify ({p})"),
            )),
        }
    }
}

macro_rules! audit_store {
    (
        mod: $modname:ident,
        store: $store:ty,
        begin_write: $begin:expr,
        begin_read: $begin_read:expr,
        lock: $lock:expr,
        instant: $inst:ty,
        to_instant: $to:expr,
        from_instant: $from:expr $(,)?
    ) => {
        mod $modname {
            use super::*;
            use chrono::{DateTime, Utc};
            use $crate::audit::{audit_hash, AuditReport, AuditStore};
            use $crate::error::map_sqlx;
            use $crate::payment_sql as p;

            const FROM: p::FromInstant<$inst> = $from;

            /// Serializes writers of the chain for the rest of the transaction (Postgres; on
            /// SQLite the immediate begin already holds the write lock).
            const LOCK: Option<&str> = $lock;

            #[async_trait::async_trait]
            impl AuditStore for $store {
                async fn audit_append(
                    &self,
                    entries: &[AuditEntry],
                ) -> Result<Vec<AuditRow>, StoreError> {
                    let op = "append audit entries";
                    if entries.is_empty() {
                        return Ok(Vec::new());
                    }
                    p::refuse_nul(op, entries.iter().flat_map(texts))?;
                    let mut tx = self
                        .pool()
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    if let Some(lock) = LOCK {
                        sqlx::query(lock)
                            .bind(PG_LOCK_KEY)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx("lock the audit chain", e))?;
                    }
                    let head = ends(
                        sqlx::query_as(ENDS)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx("read the audit chain head", e))?,
                    );
                    let (mut seq, mut prev) = (head.head_seq, head.head_hash);
                    let mut rows = Vec::with_capacity(entries.len());
                    for e in entries {
                        seq += 1;
                        let mut entry = e.clone();
                        entry.at = micros(entry.at);
                        let hash = audit_hash(seq, &entry, &prev);
                        sqlx::query(INSERT)
                            .bind(seq)
                            .bind($to(entry.at))
                            .bind(&entry.actor)
                            .bind(entry.tenant.as_deref())
                            .bind(entry.resident_pesel.as_deref())
                            .bind(&entry.action)
                            .bind(&entry.outcome)
                            .bind(entry.remote.as_deref())
                            .bind(&prev)
                            .bind(&hash)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?;
                        rows.push(AuditRow {
                            seq,
                            entry,
                            prev_hash: std::mem::replace(&mut prev, hash.clone()),
                            hash,
                        });
                    }
                    sqlx::query(MOVE_HEAD)
                        .bind(seq)
                        .bind(&prev)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx("move the audit chain head", e))?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(rows)
                }

                async fn audit_verify(&self, page: u32) -> Result<AuditReport, StoreError> {
                    let op = "verify the audit chain";
                    let page = page.max(1);
                    // One snapshot: an append or prune running meanwhile is either wholly
                    // seen or not at all, so it cannot show as a gap or a bad start.
                    let mut tx = self
                        .pool()
                        .begin_with($begin_read)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    let mut check = ChainCheck::new(ends(
                        sqlx::query_as(ENDS)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?,
                    ));
                    let sql = page_sql();
                    let mut after = i64::MIN;
                    loop {
                        let rows: Vec<RowCols<$inst>> = sqlx::query_as(&sql)
                            .bind(after)
                            .bind(i64::from(page))
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?;
                        let n = rows.len();
                        for r in rows {
                            let r = row(r, FROM)?;
                            after = r.seq;
                            check.feed(&r);
                        }
                        if n < page as usize {
                            break;
                        }
                    }
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(check.finish())
                }

                async fn audit_oldest_before(
                    &self,
                    before: DateTime<Utc>,
                    limit: u32,
                ) -> Result<Vec<AuditRow>, StoreError> {
                    // The oldest rows regardless of time, cut at the first that is not old
                    // enough: clocks of several writers need not agree with the seq order,
                    // and skipping a row would let a prune delete it unarchived.
                    let rows: Vec<RowCols<$inst>> = sqlx::query_as(&oldest_sql())
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await
                        .map_err(|e| map_sqlx("read the oldest audit rows", e))?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        let r = row(r, FROM)?;
                        if r.entry.at >= before {
                            break;
                        }
                        out.push(r);
                    }
                    Ok(out)
                }

                async fn audit_prune_through(&self, last: &AuditRow) -> Result<u64, StoreError> {
                    let op = "prune the audit log";
                    let mut tx = self
                        .pool()
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    if let Some(lock) = LOCK {
                        sqlx::query(lock)
                            .bind(PG_LOCK_KEY)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx("lock the audit chain", e))?;
                    }
                    let chain = ends(
                        sqlx::query_as(ENDS)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?,
                    );
                    // Dropping the transaction on an error rolls it back: nothing deleted.
                    let mut check = PruneCheck::new(&chain, last)?;
                    let sql = range_sql();
                    let mut after = chain.anchor_seq;
                    loop {
                        let rows: Vec<RowCols<$inst>> = sqlx::query_as(&sql)
                            .bind(after)
                            .bind(last.seq)
                            .bind(i64::from(PRUNE_PAGE))
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(|e| map_sqlx(op, e))?;
                        let n = rows.len();
                        for r in rows {
                            let r = row(r, FROM)?;
                            after = r.seq;
                            check.feed(r);
                        }
                        if n < PRUNE_PAGE as usize {
                            break;
                        }
                    }
                    check.finish()?;
                    let deleted = sqlx::query(PRUNE)
                        .bind(last.seq)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?
                        .rows_affected();
                    sqlx::query(MOVE_ANCHOR)
                        .bind(last.seq)
                        .bind(&last.hash)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx("move the audit chain anchor", e))?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(deleted)
                }

                async fn audit_of_resident(
                    &self,
                    tenant: &str,
                    pesel: &str,
                    limit: u32,
                ) -> Result<Vec<AuditRow>, StoreError> {
                    if p::unstorable(tenant) || p::unstorable(pesel) {
                        return Ok(Vec::new());
                    }
                    let rows: Vec<RowCols<$inst>> = sqlx::query_as(&of_resident_sql())
                        .bind(tenant)
                        .bind(pesel)
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await
                        .map_err(|e| map_sqlx("read a resident's audit rows", e))?;
                    rows.into_iter().map(|r| row(r, FROM)).collect()
                }
            }
        }
    };
}

use crate::payment_sql::{pg_from_instant, pg_instant, sqlite_from_instant, sqlite_instant};

audit_store!(
    mod: pg_impl,
    store: crate::PgStore,
    begin_write: "BEGIN",
    // Every page from one snapshot.
    begin_read: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    lock: Some("SELECT pg_advisory_xact_lock($1)"),
    instant: DateTime<Utc>,
    to_instant: pg_instant,
    from_instant: pg_from_instant,
);

audit_store!(
    mod: sqlite_impl,
    store: crate::SqliteStore,
    // The write lock up front: two appenders queue on the busy timeout instead of both
    // reading the same head.
    begin_write: "BEGIN IMMEDIATE",
    // A deferred transaction reads one WAL snapshot from its first read on.
    begin_read: "BEGIN",
    lock: None,
    instant: i64,
    to_instant: sqlite_instant,
    from_instant: sqlite_from_instant,
);
