//! The audit log on both backends (SQLite in a temp file and a fresh Postgres database, like
//! tests/case_work.rs): appends chain contiguously, even from concurrent writers; verify names
//! each kind of tampering done with plain SQL; archiving prunes in batches without breaking
//! the chain and refuses a stale or tampered batch; a resident sees only their own rows.
//!
//! `cargo test -p gsko-store --test audit` (Postgres at `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

mod support;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use gsko_store::{
    audit_hash, AuditEntry, AuditProblem, AuditRow, AuditStore, PgStore, SqliteStore, AUDIT_GENESIS,
};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use support::{at, PgTestDb};

/// A backend: the store, and its pool for tampering behind the store's back.
#[derive(Clone)]
struct Db {
    store: Arc<dyn AuditStore>,
    raw: Raw,
}

#[derive(Clone)]
enum Raw {
    Pg(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Db {
    /// Runs one statement directly (`$1` bound to `text`, when given); rows affected.
    async fn exec(&self, sql: &str, text: Option<&str>) -> u64 {
        let done = match &self.raw {
            Raw::Pg(pool) => {
                let mut q = sqlx::query(sql);
                if let Some(t) = text {
                    q = q.bind(t);
                }
                q.execute(pool).await.map(|d| d.rows_affected())
            }
            Raw::Sqlite(pool) => {
                let mut q = sqlx::query(sql);
                if let Some(t) = text {
                    q = q.bind(t);
                }
                q.execute(pool).await.map(|d| d.rows_affected())
            }
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Every stored row, oldest first.
    async fn all(&self) -> Vec<AuditRow> {
        self.store
            .audit_oldest_before(far_future(), 100_000)
            .await
            .expect("read all audit rows")
    }

    async fn problems(&self) -> Vec<AuditProblem> {
        self.store.audit_verify(4).await.expect("verify").problems
    }
}

async fn with_sqlite_file<F, Fut>(f: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("audit.db"))
        .await
        .unwrap_or_else(|e| panic!("SqliteStore::open: {e}"));
    let db = Db {
        store: Arc::new(store.clone()),
        raw: Raw::Sqlite(store.pool().clone()),
    };
    f(db).await;
    store.close().await;
}

async fn with_pg<F, Fut>(f: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let pg = PgTestDb::create().await;
    let store = PgStore::connect(&pg.url, 4)
        .await
        .unwrap_or_else(|e| panic!("PgStore::connect: {e}"));
    let db = Db {
        store: Arc::new(store.clone()),
        raw: Raw::Pg(store.pool().clone()),
    };
    let result = AssertUnwindSafe(f(db)).catch_unwind().await;
    store.close().await;
    pg.drop_db().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::with_sqlite_file(super::$name).await; } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::with_pg(super::$name).await; } )*
        }
    };
}

on_both_backends!(
    appended_batches_form_one_contiguous_chain,
    a_row_changed_in_place_is_reported_modified,
    a_row_rewritten_with_a_fresh_hash_breaks_the_next_link,
    a_deleted_middle_row_is_reported_missing,
    deleted_newest_rows_are_reported_as_a_missing_tail,
    a_deleted_oldest_row_is_reported_as_a_bad_start,
    concurrent_appenders_never_share_a_predecessor,
    archiving_in_batches_keeps_the_chain_verifiable,
    a_stale_or_tampered_batch_is_not_pruned,
    oldest_before_stops_at_the_first_row_not_old_enough,
    a_resident_sees_only_their_own_rows_in_that_tenant,
);

const A: &str = "0201011";
const B: &str = "1465011";
const P1: &str = "44051401359";
const P2: &str = "02070803628";

fn far_future() -> DateTime<Utc> {
    at(10_000_000)
}

fn entry(secs: i64, tenant: Option<&str>, pesel: Option<&str>, action: &str) -> AuditEntry {
    AuditEntry {
        at: at(secs),
        actor: "portal:ebok-vendor".to_owned(),
        tenant: tenant.map(str::to_owned),
        resident_pesel: pesel.map(str::to_owned),
        action: action.to_owned(),
        outcome: "200".to_owned(),
        remote: Some("10.1.2.3".to_owned()),
    }
}

fn entries(n: i64, from_secs: i64) -> Vec<AuditEntry> {
    (0..n)
        .map(|i| {
            entry(
                from_secs + i,
                Some(A),
                Some(P1),
                &format!("GET /v1/tenants/{A}/resident/letters#{i}"),
            )
        })
        .collect()
}

fn seqs(rows: &[AuditRow]) -> Vec<i64> {
    rows.iter().map(|r| r.seq).collect()
}

/// Nine rows in three batches (3, 1, 5).
async fn nine(db: &Db) -> Vec<AuditRow> {
    let mut out = Vec::new();
    for (n, from) in [(3, 0), (1, 10), (5, 20)] {
        out.extend(
            db.store
                .audit_append(&entries(n, from))
                .await
                .expect("append"),
        );
    }
    out
}

async fn appended_batches_form_one_contiguous_chain(db: Db) {
    let mut first = entries(3, 0);
    // Below a microsecond is not stored: the returned and the stored row agree.
    first[0].at += chrono::Duration::nanoseconds(1_234_567);
    let mut written = db.store.audit_append(&first).await.expect("append");
    assert_eq!(
        written[0].entry.at,
        at(0) + chrono::Duration::microseconds(1_234)
    );
    assert!(db.store.audit_append(&[]).await.expect("empty").is_empty());
    written.extend(
        db.store
            .audit_append(&entries(1, 10))
            .await
            .expect("append"),
    );
    written.extend(
        db.store
            .audit_append(&entries(5, 20))
            .await
            .expect("append"),
    );

    assert_eq!(seqs(&written), (1..=9).collect::<Vec<_>>());
    assert_eq!(written[0].prev_hash, AUDIT_GENESIS);
    for pair in written.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "row {}", pair[1].seq);
    }
    for r in &written {
        assert_eq!(r.hash, audit_hash(r.seq, &r.entry, &r.prev_hash));
    }
    assert_eq!(db.all().await, written, "stored rows read back as written");

    // A page smaller than the chain, one equal to it, and one larger.
    for page in [2, 9, 1000] {
        let report = db.store.audit_verify(page).await.expect("verify");
        assert_eq!(report.problems, vec![], "page {page}");
        assert_eq!(
            (report.rows, report.first_seq, report.last_seq),
            (9, Some(1), Some(9))
        );
    }
}

async fn a_row_changed_in_place_is_reported_modified(db: Db) {
    nine(&db).await;
    let n = db
        .exec(
            "UPDATE audit_log SET resident_pesel = $1 WHERE seq = 4",
            Some(P2),
        )
        .await;
    assert_eq!(n, 1);
    assert_eq!(db.problems().await, vec![AuditProblem::Modified { seq: 4 }]);
}

async fn a_row_rewritten_with_a_fresh_hash_breaks_the_next_link(db: Db) {
    let rows = nine(&db).await;
    // Someone who knows the hashing rewrites row 3 consistently with itself.
    let mut forged = rows[2].entry.clone();
    forged.actor = "admin:someone-else".to_owned();
    let hash = audit_hash(3, &forged, &rows[2].prev_hash);
    db.exec(
        "UPDATE audit_log SET actor = 'admin:someone-else' WHERE seq = 3",
        None,
    )
    .await;
    db.exec("UPDATE audit_log SET hash = $1 WHERE seq = 3", Some(&hash))
        .await;
    assert_eq!(
        db.problems().await,
        vec![AuditProblem::BrokenLink { seq: 4 }]
    );

    // The newest row rewritten the same way: no next row, but the head remembers.
    let mut forged = rows[8].entry.clone();
    forged.outcome = "403".to_owned();
    let hash = audit_hash(9, &forged, &rows[8].prev_hash);
    db.exec("UPDATE audit_log SET outcome = '403' WHERE seq = 9", None)
        .await;
    db.exec("UPDATE audit_log SET hash = $1 WHERE seq = 9", Some(&hash))
        .await;
    assert_eq!(
        db.problems().await,
        vec![
            AuditProblem::BrokenLink { seq: 4 },
            AuditProblem::Modified { seq: 9 }
        ]
    );
}

async fn a_deleted_middle_row_is_reported_missing(db: Db) {
    nine(&db).await;
    db.exec("DELETE FROM audit_log WHERE seq = 5", None).await;
    let problems = db.problems().await;
    assert_eq!(problems, vec![AuditProblem::Missing { after: 4, next: 6 }]);
    assert_eq!(
        problems[0].to_string(),
        "audit row 5 is missing (between rows 4 and 6)"
    );
}

async fn deleted_newest_rows_are_reported_as_a_missing_tail(db: Db) {
    nine(&db).await;
    db.exec("DELETE FROM audit_log WHERE seq = 9", None).await;
    assert_eq!(
        db.problems().await,
        vec![AuditProblem::TailMissing { head: 9, last: 8 }]
    );
    db.exec("DELETE FROM audit_log", None).await;
    let report = db.store.audit_verify(4).await.expect("verify");
    assert_eq!(
        report.problems,
        vec![AuditProblem::TailMissing { head: 9, last: 0 }]
    );
    assert_eq!((report.rows, report.first_seq), (0, None));
}

async fn a_deleted_oldest_row_is_reported_as_a_bad_start(db: Db) {
    nine(&db).await;
    db.exec("DELETE FROM audit_log WHERE seq = 1", None).await;
    assert_eq!(db.problems().await, vec![AuditProblem::BadStart { seq: 2 }]);
}

async fn concurrent_appenders_never_share_a_predecessor(db: Db) {
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let all = entries(200, w * 1000);
                for batch in all.chunks(7) {
                    store.audit_append(batch).await.expect("concurrent append");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer task");
    }
    let report = db.store.audit_verify(50).await.expect("verify");
    assert_eq!(report.problems, vec![]);
    assert_eq!(
        (report.rows, report.first_seq, report.last_seq),
        (400, Some(1), Some(400))
    );
    let mut s = seqs(&db.all().await);
    s.dedup();
    assert_eq!(s, (1..=400).collect::<Vec<_>>());
}

/// Archives (here: collects) and prunes every row older than `before`, `batch` at a time.
async fn archive(db: &Db, before: DateTime<Utc>, batch: u32) -> (Vec<u64>, Vec<AuditRow>) {
    let (mut deleted, mut archived) = (Vec::new(), Vec::new());
    loop {
        let rows = db
            .store
            .audit_oldest_before(before, batch)
            .await
            .expect("oldest before");
        let Some(last) = rows.last().cloned() else {
            break;
        };
        deleted.push(db.store.audit_prune_through(&last).await.expect("prune"));
        archived.extend(rows);
    }
    (deleted, archived)
}

async fn archiving_in_batches_keeps_the_chain_verifiable(db: Db) {
    let old = db
        .store
        .audit_append(&entries(35, 0))
        .await
        .expect("append");
    let new = db
        .store
        .audit_append(&entries(5, 5000))
        .await
        .expect("append");

    let (deleted, archived) = archive(&db, at(1000), 10).await;
    assert_eq!(deleted, vec![10, 10, 10, 5]);
    assert_eq!(archived, old, "every pruned row was handed out first, once");

    let report = db.store.audit_verify(3).await.expect("verify");
    assert_eq!(report.problems, vec![]);
    assert_eq!(
        (report.rows, report.first_seq, report.last_seq),
        (5, Some(36), Some(40))
    );
    assert_eq!(db.all().await, new);

    // The chain goes on after a prune, and a prune of everything leaves the head to check.
    db.store
        .audit_append(&entries(2, 6000))
        .await
        .expect("append");
    assert_eq!(db.problems().await, vec![]);
    let (deleted, _) = archive(&db, far_future(), 10).await;
    assert_eq!(deleted, vec![7]);
    let report = db.store.audit_verify(3).await.expect("verify");
    assert_eq!((report.rows, report.problems), (0, vec![]));
    db.store
        .audit_append(&entries(1, 7000))
        .await
        .expect("append");
    let report = db.store.audit_verify(3).await.expect("verify");
    assert_eq!((report.rows, report.first_seq), (1, Some(43)));
    assert_eq!(report.problems, vec![]);
}

async fn a_stale_or_tampered_batch_is_not_pruned(db: Db) {
    let rows = db
        .store
        .audit_append(&entries(30, 0))
        .await
        .expect("append");
    assert_eq!(
        db.store.audit_prune_through(&rows[9]).await.expect("prune"),
        10
    );

    // Already pruned.
    let err = db
        .store
        .audit_prune_through(&rows[4])
        .await
        .expect_err("row 5 was already pruned");
    assert!(err.to_string().contains("already pruned"), "{err}");

    // Never appended.
    let mut ghost = rows[29].clone();
    ghost.seq = 31;
    assert!(db.store.audit_prune_through(&ghost).await.is_err());

    // The archiver's copy differs from the stored row (it changed since it was read).
    let mut stale = rows[19].clone();
    stale.entry.outcome = "500".to_owned();
    let err = db
        .store
        .audit_prune_through(&stale)
        .await
        .expect_err("a copy that is not the stored row");
    assert!(err.to_string().contains("stale or tampered"), "{err}");

    // A row being deleted was tampered with: its evidence is not pruned away.
    db.exec(
        "UPDATE audit_log SET resident_pesel = $1 WHERE seq = 14",
        Some(P2),
    )
    .await;
    let err = db
        .store
        .audit_prune_through(&rows[19])
        .await
        .expect_err("the rows to delete do not verify");
    assert!(
        err.to_string().contains("audit row 14 was modified"),
        "{err}"
    );
    // The error names rows, never personal data.
    assert!(!err.to_string().contains(P2) && !err.to_string().contains(P1));

    // Nothing was deleted by any refusal: rows 11..=30 are all still there.
    assert_eq!(seqs(&db.all().await), (11..=30).collect::<Vec<_>>());
    assert_eq!(
        db.problems().await,
        vec![AuditProblem::Modified { seq: 14 }]
    );
    // Pruning before the tampered row still works.
    assert_eq!(
        db.store
            .audit_prune_through(&rows[12])
            .await
            .expect("prune"),
        3
    );
}

async fn oldest_before_stops_at_the_first_row_not_old_enough(db: Db) {
    // A writer with a fast clock: row 2 is newer than row 3.
    for secs in [0, 5000, 1] {
        db.store
            .audit_append(&entries(1, secs))
            .await
            .expect("append");
    }
    let rows = db
        .store
        .audit_oldest_before(at(1000), 10)
        .await
        .expect("oldest");
    assert_eq!(seqs(&rows), vec![1]);
    let rows = db
        .store
        .audit_oldest_before(far_future(), 2)
        .await
        .expect("oldest");
    assert_eq!(seqs(&rows), vec![1, 2], "at most the limit");
    assert!(db
        .store
        .audit_oldest_before(at(0), 10)
        .await
        .expect("oldest")
        .is_empty());
}

async fn a_resident_sees_only_their_own_rows_in_that_tenant(db: Db) {
    let batch = vec![
        entry(1, Some(A), Some(P1), "GET letters"),
        entry(2, Some(B), Some(P1), "GET letters"),
        entry(3, Some(A), Some(P2), "GET letters"),
        entry(4, Some(A), None, "GET /v1/admin/letters"),
        entry(5, None, None, "gsko audit verify"),
        entry(6, Some(A), Some(P1), "GET cases"),
        entry(7, Some(A), Some(P1), "GET view"),
    ];
    db.store.audit_append(&batch).await.expect("append");
    let mine = db
        .store
        .audit_of_resident(A, P1, 10)
        .await
        .expect("of resident");
    assert_eq!(seqs(&mine), vec![7, 6, 1]);
    assert!(mine
        .iter()
        .all(|r| r.entry.tenant.as_deref() == Some(A)
            && r.entry.resident_pesel.as_deref() == Some(P1)));
    let newest = db
        .store
        .audit_of_resident(A, P1, 2)
        .await
        .expect("of resident");
    assert_eq!(seqs(&newest), vec![7, 6]);
    let other = db
        .store
        .audit_of_resident(B, P1, 10)
        .await
        .expect("of resident");
    assert_eq!(seqs(&other), vec![2]);
    assert!(db
        .store
        .audit_of_resident(B, P2, 10)
        .await
        .expect("of resident")
        .is_empty());
}
