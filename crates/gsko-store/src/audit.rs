//! The audit log: every read of and every action on a resident's data, in an append-only,
//! hash-chained table (tajemnica skarbowa, RODO art. 30/32). Each row carries the SHA-256 of
//! its contents and of the previous row's hash, so a row changed, removed or inserted in the
//! middle breaks the chain where it happened, and `gsko audit verify` names the place.
//!
//! Why a separate head/anchor row (`audit_chain`): the chain alone cannot show that its newest
//! rows were deleted, nor where it legitimately starts once old rows were archived and pruned.
//! The head (last seq and hash) is written in the same transaction as every append; the anchor
//! (seq and hash of the last pruned row) in the same transaction as every prune.
//!
//! Why the hash is computed here and not in SQL: both backends must chain byte-for-byte the
//! same way, and an archive written from one must verify against the other.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

// The SQL and the two backend implementations (one statement text for both).
#[path = "audit_sql.rs"]
mod sql;

/// One audited access. Personal data lives here on purpose (this table is the record of who
/// read whose data); it never goes to the ordinary logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened; stored (and hashed) to the microsecond.
    pub at: DateTime<Utc>,
    /// Who: e.g. "portal:ebok-vendor", "admin:ops", "resident:session-…".
    pub actor: String,
    /// The tenant (TERYT), when the access concerned one.
    pub tenant: Option<String>,
    pub resident_pesel: Option<String>,
    /// What: e.g. "GET /v1/tenants/{teryt}/resident/letters".
    pub action: String,
    /// How it ended: e.g. "200", "403".
    pub outcome: String,
    /// The client address.
    pub remote: Option<String>,
}

/// One stored entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub entry: AuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash the first row of a fresh chain points back to.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `t` cut to whole microseconds, the precision both backends keep.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The canonical form that is hashed: the compact JSON array
/// `[seq, at, actor, tenant, resident_pesel, action, outcome, remote, prev_hash]`, `at` in
/// RFC 3339 with six fraction digits and `Z`, absent values as `null`.
fn canonical(seq: i64, entry: &AuditEntry, prev_hash: &str) -> String {
    let at = micros(entry.at).to_rfc3339_opts(SecondsFormat::Micros, true);
    serde_json::json!([
        seq,
        at,
        entry.actor,
        entry.tenant,
        entry.resident_pesel,
        entry.action,
        entry.outcome,
        entry.remote,
        prev_hash,
    ])
    .to_string()
}

/// SHA-256 (lowercase hex) of the canonical form of a row: serde_json's compact form of
/// `[seq, at (RFC 3339, 6 fraction digits, Z), actor, tenant|null, resident_pesel|null, action,
/// outcome, remote|null, prev_hash]`. `at` is cut to whole microseconds first, as stored.
pub fn audit_hash(seq: i64, entry: &AuditEntry, prev_hash: &str) -> String {
    sha256::hex(canonical(seq, entry, prev_hash).as_bytes())
}

/// One way the stored chain differs from what was appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditProblem {
    /// The row's contents do not hash to its stored hash (or, for the newest row, to the hash
    /// the head recorded when it was appended).
    Modified { seq: i64 },
    /// Rows between `after` and `next` are gone.
    Missing { after: i64, next: i64 },
    /// The row does not point back to the hash of the row before it.
    BrokenLink { seq: i64 },
    /// The head recorded rows up to `head`, but the newest stored row is `last`.
    TailMissing { head: i64, last: i64 },
    /// The oldest stored row does not follow the anchor (the last pruned row).
    BadStart { seq: i64 },
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditProblem::Modified { seq } => write!(
                f,
                "audit row {seq} was modified: its contents do not match the hash recorded when it was appended"
            ),
            AuditProblem::Missing { after, next } => {
                let (first, last) = (after + 1, next - 1);
                if first == last {
                    write!(f, "audit row {first} is missing (between rows {after} and {next})")
                } else {
                    write!(
                        f,
                        "audit rows {first} to {last} are missing (between rows {after} and {next})"
                    )
                }
            }
            AuditProblem::BrokenLink { seq } => write!(
                f,
                "audit row {seq} does not link to row {}: its previous hash differs from that row's hash",
                seq - 1
            ),
            AuditProblem::TailMissing { head, last } => write!(
                f,
                "the newest audit rows are missing: the chain head records row {head}, but the newest stored row is {last}"
            ),
            AuditProblem::BadStart { seq } => write!(
                f,
                "audit row {seq}, the oldest stored, does not follow the anchor (the last pruned row)"
            ),
        }
    }
}

/// What `audit_verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditReport {
    /// Rows read.
    pub rows: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// Every problem, in chain order; empty when the chain is intact.
    pub problems: Vec<AuditProblem>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends the entries in order in one transaction, each chained to the previous (seq =
    /// previous + 1; the first row of a fresh chain follows [`AUDIT_GENESIS`]), and moves the
    /// head in the same transaction. Serialized across processes (Postgres: an advisory
    /// transaction lock; SQLite: `BEGIN IMMEDIATE`), so two writers never chain to the same
    /// predecessor. Returns the rows written (instants cut to microseconds).
    async fn audit_append(&self, entries: &[AuditEntry]) -> Result<Vec<AuditRow>, StoreError>;

    /// Reads the whole chain in seq order, `page` rows at a time, in one read snapshot, and
    /// reports every problem (see [`AuditProblem`]).
    async fn audit_verify(&self, page: u32) -> Result<AuditReport, StoreError>;

    /// The oldest rows with `at < before`, at most `limit`, in seq order: always a prefix of
    /// the chain (it stops at the first row at or after `before`), so pruning through the last
    /// of them deletes nothing that was not returned.
    async fn audit_oldest_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError>;

    /// Deletes every row up to and including `last.seq` and moves the anchor to `last`, in one
    /// transaction, only when `last` is still exactly the row stored at that seq and the rows
    /// being deleted verify from the anchor; otherwise an error and nothing deleted. Returns
    /// how many rows were deleted.
    async fn audit_prune_through(&self, last: &AuditRow) -> Result<u64, StoreError>;

    /// The newest rows about one resident in one tenant, newest first, at most `limit`.
    async fn audit_of_resident(
        &self,
        tenant: &str,
        pesel: &str,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError>;
}

/// The chain's bookends as stored in `audit_chain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainEnds {
    pub anchor_seq: i64,
    pub anchor_hash: String,
    pub head_seq: i64,
    pub head_hash: String,
}

/// Checks rows fed in seq order, page after page, keeping only the previous row.
pub(crate) struct ChainCheck {
    ends: ChainEnds,
    prev: Option<(i64, String)>,
    report: AuditReport,
}

impl ChainCheck {
    pub fn new(ends: ChainEnds) -> Self {
        ChainCheck {
            ends,
            prev: None,
            report: AuditReport::default(),
        }
    }

    pub fn feed(&mut self, row: &AuditRow) {
        let r = &mut self.report;
        r.rows += 1;
        r.first_seq.get_or_insert(row.seq);
        r.last_seq = Some(row.seq);
        if audit_hash(row.seq, &row.entry, &row.prev_hash) != row.hash {
            r.problems.push(AuditProblem::Modified { seq: row.seq });
        }
        match &self.prev {
            None => {
                if row.seq != self.ends.anchor_seq + 1 || row.prev_hash != self.ends.anchor_hash {
                    r.problems.push(AuditProblem::BadStart { seq: row.seq });
                }
            }
            // A gap already says the link is gone; BrokenLink is for neighbours that disagree.
            Some((seq, _)) if row.seq != seq + 1 => r.problems.push(AuditProblem::Missing {
                after: *seq,
                next: row.seq,
            }),
            Some((_, hash)) if row.prev_hash != *hash => {
                r.problems.push(AuditProblem::BrokenLink { seq: row.seq })
            }
            Some(_) => {}
        }
        self.prev = Some((row.seq, row.hash.clone()));
    }

    pub fn finish(mut self) -> AuditReport {
        let last = self.prev.as_ref().map_or(self.ends.anchor_seq, |(s, _)| *s);
        if last < self.ends.head_seq {
            self.report.problems.push(AuditProblem::TailMissing {
                head: self.ends.head_seq,
                last,
            });
        } else if let Some((seq, hash)) = &self.prev {
            // The newest row rewritten together with its own hash: only the head still knows.
            let flagged = self
                .report
                .problems
                .contains(&AuditProblem::Modified { seq: *seq });
            if *seq == self.ends.head_seq && *hash != self.ends.head_hash && !flagged {
                self.report
                    .problems
                    .push(AuditProblem::Modified { seq: *seq });
            }
        }
        self.report
    }
}

/// SHA-256 from the RustCrypto `sha2` crate (never a home-made digest).
mod sha256 {
    use sha2::{Digest, Sha256};

    /// The digest of `data` as 64 lowercase hex digits.
    pub fn hex(data: &[u8]) -> String {
        Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sha256_matches_the_fips_test_vectors() {
        // Expected digests checked with Python: hashlib.sha256(data).hexdigest().
        assert_eq!(
            sha256::hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256::hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256::hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // Lengths around the padding boundary (55, 56, 63, 64 bytes) and several blocks.
        assert_eq!(
            sha256::hex(&[b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        assert_eq!(
            sha256::hex(&[b'a'; 55]),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"
        );
        assert_eq!(
            sha256::hex(&[b'a'; 56]),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"
        );
        assert_eq!(
            sha256::hex(&[b'a'; 64]),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"
        );
    }

    fn entry() -> AuditEntry {
        AuditEntry {
            // 1.234567891 s past the minute: the nanoseconds beyond the microsecond are cut.
            at: Utc
                .with_ymd_and_hms(2026, 3, 14, 9, 26, 53)
                .single()
                .expect("valid instant")
                + chrono::Duration::nanoseconds(123_456_789),
            actor: "portal:ebok-vendor".to_owned(),
            tenant: Some("1465011".to_owned()),
            resident_pesel: Some("44051401359".to_owned()),
            action: "GET /v1/tenants/1465011/resident/letters \"Łódź\"".to_owned(),
            outcome: "200".to_owned(),
            remote: None,
        }
    }

    #[test]
    fn the_canonical_form_is_the_documented_array() {
        assert_eq!(
            canonical(7, &entry(), AUDIT_GENESIS),
            format!(
                "[7,\"2026-03-14T09:26:53.123456Z\",\"portal:ebok-vendor\",\"1465011\",\"44051401359\",\"GET /v1/tenants/1465011/resident/letters \\\"Łódź\\\"\",\"200\",null,\"{AUDIT_GENESIS}\"]"
            )
        );
    }

    #[test]
    fn audit_hash_is_pinned() {
        // Computed independently:
        // python3 -c "import hashlib,json; print(hashlib.sha256(json.dumps([7,'2026-03-14T09:26:53.123456Z','portal:ebok-vendor','1465011','44051401359','GET /v1/tenants/1465011/resident/letters \"Łódź\"','200',None,'0'*64],separators=(',',':'),ensure_ascii=False).encode()).hexdigest())"
        assert_eq!(
            audit_hash(7, &entry(), AUDIT_GENESIS),
            "8007d3d58f7210840863cb7750f59383886c3645b4c9fd01b9762997349b7eb0"
        );
        // Any field, the seq and the link change it.
        let h = audit_hash(7, &entry(), AUDIT_GENESIS);
        assert_ne!(audit_hash(8, &entry(), AUDIT_GENESIS), h);
        assert_ne!(audit_hash(7, &entry(), &"1".repeat(64)), h);
        let mut e = entry();
        e.remote = Some(String::new());
        assert_ne!(audit_hash(7, &e, AUDIT_GENESIS), h);
        let mut e = entry();
        e.at += chrono::Duration::microseconds(1);
        assert_ne!(audit_hash(7, &e, AUDIT_GENESIS), h);
        // Below a microsecond nothing is stored, so nothing is hashed.
        let mut e = entry();
        e.at += chrono::Duration::nanoseconds(100);
        assert_eq!(audit_hash(7, &e, AUDIT_GENESIS), h);
    }

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut prev = AUDIT_GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let hash = audit_hash(seq, &entry(), &prev);
                AuditRow {
                    seq,
                    entry: entry(),
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    fn check(rows: &[AuditRow], anchor: (i64, &str), head: &AuditRow) -> Vec<AuditProblem> {
        let mut c = ChainCheck::new(ChainEnds {
            anchor_seq: anchor.0,
            anchor_hash: anchor.1.to_owned(),
            head_seq: head.seq,
            head_hash: head.hash.clone(),
        });
        rows.iter().for_each(|r| c.feed(r));
        c.finish().problems
    }

    #[test]
    fn the_checker_names_each_kind_of_damage() {
        let rows = chain(5);
        let head = rows[4].clone();
        assert_eq!(check(&rows, (0, AUDIT_GENESIS), &head), vec![]);
        // A pruned prefix is fine when the anchor moved with it, not otherwise.
        assert_eq!(check(&rows[2..], (2, &rows[1].hash), &head), vec![]);
        assert_eq!(
            check(&rows[2..], (0, AUDIT_GENESIS), &head),
            vec![AuditProblem::BadStart { seq: 3 }]
        );
        // The newest row rewritten with a fresh hash: only the head notices.
        let mut forged = rows.clone();
        forged[4].entry.outcome = "403".to_owned();
        forged[4].hash = audit_hash(5, &forged[4].entry, &forged[4].prev_hash);
        assert_eq!(
            check(&forged, (0, AUDIT_GENESIS), &head),
            vec![AuditProblem::Modified { seq: 5 }]
        );
        // A middle row rewritten with a fresh hash: the next row's link breaks.
        let mut forged = rows.clone();
        forged[1].entry.actor = "admin:someone-else".to_owned();
        forged[1].hash = audit_hash(2, &forged[1].entry, &forged[1].prev_hash);
        assert_eq!(
            check(&forged, (0, AUDIT_GENESIS), &head),
            vec![AuditProblem::BrokenLink { seq: 3 }]
        );
        // Everything gone: the head still says 5.
        assert_eq!(
            check(&[], (0, AUDIT_GENESIS), &head),
            vec![AuditProblem::TailMissing { head: 5, last: 0 }]
        );
    }

    #[test]
    fn problems_read_as_one_precise_sentence() {
        assert_eq!(
            AuditProblem::Missing { after: 3, next: 5 }.to_string(),
            "audit row 4 is missing (between rows 3 and 5)"
        );
        assert_eq!(
            AuditProblem::Missing { after: 3, next: 7 }.to_string(),
            "audit rows 4 to 6 are missing (between rows 3 and 7)"
        );
        assert_eq!(
            AuditProblem::TailMissing { head: 9, last: 7 }.to_string(),
            "the newest audit rows are missing: the chain head records row 9, but the newest stored row is 7"
        );
        assert!(AuditProblem::BrokenLink { seq: 4 }
            .to_string()
            .contains("row 4 does not link to row 3"));
    }

    #[test]
    fn the_migrations_seed_the_chain_at_genesis() {
        for sql in [
            include_str!("../migrations/postgres/0009_audit.sql"),
            include_str!("../migrations/sqlite/0009_audit.sql"),
        ] {
            assert!(sql.contains(&format!("'{AUDIT_GENESIS}'")));
        }
    }
}
