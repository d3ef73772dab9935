//! [`CaseWorkStore`](super::CaseWorkStore) for both backends, written once, the same way as
//! [`crate::delivery_sql`]: one statement text for Postgres and SQLite, the
//! [`case_work_store`] macro fills in how instants are stored and how a write transaction
//! begins. The backends' own files are not touched: the store is reached through its public
//! `pool()`.
//!
//! Booleans are bound as `bool` (boolean on Postgres, 0/1 on SQLite) and tested bare
//! (`AND open`), which both read the same way.

use super::{RegistrationRecord, RegistrationState, WatchedCase};
use crate::payment_sql::FromInstant;
use crate::StoreError;
use chrono::{DateTime, Utc};
use gsko_model::{CaseRef, CaseStatus, Pesel, Teryt};

const REG_COLUMNS: &str =
    "tenant, letter_id, state, ezd_case_id, case_ref, rpw, problem, updated_at";

/// One registration (`$1` tenant, `$2` letter id).
pub(super) fn registration_sql() -> String {
    format!("SELECT {REG_COLUMNS} FROM ezd_registrations WHERE tenant = $1 AND letter_id = $2")
}

/// The tenant's parked registrations (`$1`), oldest change first, at most `$2`.
pub(super) fn parked_sql() -> String {
    format!(
        "SELECT {REG_COLUMNS} FROM ezd_registrations WHERE tenant = $1 AND state = 'parked'
         ORDER BY updated_at, letter_id LIMIT $2"
    )
}

/// `$1` tenant, `$2` letter, `$3` EZD case id, `$4` znak, `$5` RPW, `$6` instant. A parked row
/// becomes registered; a registered one is left as it is (the first registration stays).
pub(super) const RECORD_REGISTRATION: &str =
    "INSERT INTO ezd_registrations (tenant, letter_id, state, ezd_case_id, case_ref, rpw, problem, updated_at)
     VALUES ($1, $2, 'registered', $3, $4, $5, NULL, $6)
     ON CONFLICT (tenant, letter_id) DO UPDATE
     SET state = 'registered', ezd_case_id = excluded.ezd_case_id, case_ref = excluded.case_ref,
         rpw = excluded.rpw, problem = NULL, updated_at = excluded.updated_at
     WHERE ezd_registrations.state = 'parked'";

/// `$1` tenant, `$2` letter, `$3` problem, `$4` EZD case id, `$5` znak, `$6` RPW, `$7` instant.
/// Only a parked row is updated (never a registered one); what EZD returned before is kept
/// where this call has nothing.
pub(super) const PARK_REGISTRATION: &str =
    "INSERT INTO ezd_registrations (tenant, letter_id, state, problem, ezd_case_id, case_ref, rpw, updated_at)
     VALUES ($1, $2, 'parked', $3, $4, $5, $6, $7)
     ON CONFLICT (tenant, letter_id) DO UPDATE
     SET problem = excluded.problem,
         ezd_case_id = COALESCE(excluded.ezd_case_id, ezd_registrations.ezd_case_id),
         case_ref = COALESCE(excluded.case_ref, ezd_registrations.case_ref),
         rpw = COALESCE(excluded.rpw, ezd_registrations.rpw),
         updated_at = excluded.updated_at
     WHERE ezd_registrations.state = 'parked'";

const CASE_COLUMNS: &str =
    "tenant, ezd_case_id, case_ref, letter_id, resident_pesel, CAST(recipient AS TEXT),
     sender_contact_id, jrwa_symbol, status, seq, open, registered_at, last_polled_at";

/// `$1`…`$13` the columns of a [`WatchedCase`] in [`CASE_COLUMNS`] order, `$14` now. A case
/// already watched keeps its row (status, seq, polling).
pub(super) const WATCH: &str =
    "INSERT INTO ezd_cases (tenant, ezd_case_id, case_ref, letter_id, resident_pesel, recipient,
                            sender_contact_id, jrwa_symbol, status, seq, open, registered_at,
                            last_polled_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (tenant, ezd_case_id) DO NOTHING";

/// One watched case (`$1` tenant, `$2` EZD case id).
pub(super) fn watched_sql() -> String {
    format!("SELECT {CASE_COLUMNS} FROM ezd_cases WHERE tenant = $1 AND ezd_case_id = $2")
}

/// The resident's newest open case in a class: `$1` tenant, `$2` PESEL, `$3` JRWA symbol.
pub(super) fn open_case_sql() -> String {
    format!(
        "SELECT {CASE_COLUMNS} FROM ezd_cases
         WHERE tenant = $1 AND resident_pesel = $2 AND jrwa_symbol = $3 AND open
         ORDER BY registered_at DESC, ezd_case_id DESC LIMIT 1"
    )
}

/// Open cases of `$1`, never polled first, then least recently polled, at most `$2`.
/// (`NULLS FIRST` spelled out: Postgres sorts NULL last in ascending order, SQLite first.)
pub(super) fn to_poll_sql() -> String {
    format!(
        "SELECT {CASE_COLUMNS} FROM ezd_cases WHERE tenant = $1 AND open
         ORDER BY last_polled_at NULLS FIRST, registered_at, ezd_case_id LIMIT $2"
    )
}

/// `$1` znak, `$2` status, `$3` seq, `$4` open, `$5` now, `$6` tenant, `$7` EZD case id: only
/// the next change in the case's timeline applies.
pub(super) const RECORD_STATUS: &str = "UPDATE ezd_cases
     SET case_ref = $1, status = $2, seq = $3, open = $4, updated_at = $5
     WHERE tenant = $6 AND ezd_case_id = $7 AND seq = $3 - 1";

/// `$1` instant, `$2` tenant, `$3` EZD case id.
pub(super) const MARK_POLLED: &str =
    "UPDATE ezd_cases SET last_polled_at = $1 WHERE tenant = $2 AND ezd_case_id = $3";

/// `$1` tenant, `$2` decision id.
pub(super) const DECISION_SHA: &str =
    "SELECT sha256 FROM ezd_decisions WHERE tenant = $1 AND decision_id = $2";

/// `$1` tenant, `$2` decision id, `$3` EZD case id, `$4` SHA-256, `$5` now.
pub(super) const RECORD_DECISION: &str =
    "INSERT INTO ezd_decisions (tenant, decision_id, ezd_case_id, sha256, recorded_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (tenant, decision_id) DO NOTHING";

/// The statuses as stored (the model's serialization).
const STATUSES: [CaseStatus; 9] = [
    CaseStatus::Registered,
    CaseStatus::Assigned,
    CaseStatus::InProgress,
    CaseStatus::Postponed,
    CaseStatus::Suspended,
    CaseStatus::Resumed,
    CaseStatus::ReRegistered,
    CaseStatus::Closed,
    CaseStatus::Archived,
];

fn parse_status(s: &str) -> Option<CaseStatus> {
    STATUSES.into_iter().find(|x| x.as_str() == s)
}

/// `t` cut to whole microseconds, the precision both backends keep (Postgres would round,
/// SQLite's integer would truncate; cutting here makes them agree).
pub(super) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The columns of [`REG_COLUMNS`], in order.
pub(super) type RegCols<I> = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    I,
);

/// The columns of [`CASE_COLUMNS`], in order.
pub(super) type CaseCols<I> = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    i64,
    bool,
    I,
    Option<I>,
);

fn corrupt(table: &'static str, key: &str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

pub(super) fn registration<I>(
    row: RegCols<I>,
    from: FromInstant<I>,
) -> Result<RegistrationRecord, StoreError> {
    let t = "ezd_registrations";
    let key = format!("{}/{}", row.0, row.1);
    Ok(RegistrationRecord {
        tenant: Teryt::parse(&row.0).map_err(|_| corrupt(t, &key, "tenant is not a TERYT code"))?,
        state: RegistrationState::parse(&row.2).ok_or_else(|| corrupt(t, &key, "unknown state"))?,
        ezd_case_id: row.3,
        case_ref: row.4,
        rpw: row.5,
        problem: row.6,
        updated_at: from(t, &key, row.7)?,
        letter_id: row.1,
    })
}

pub(super) fn watched<I>(
    row: CaseCols<I>,
    from: FromInstant<I>,
) -> Result<WatchedCase, StoreError> {
    let t = "ezd_cases";
    let key = format!("{}/{}", row.0, row.1);
    Ok(WatchedCase {
        tenant: Teryt::parse(&row.0).map_err(|_| corrupt(t, &key, "tenant is not a TERYT code"))?,
        case_ref: CaseRef::parse(&row.2)
            .map_err(|_| corrupt(t, &key, "case_ref is not a znak sprawy"))?,
        letter_id: row.3,
        // The reason names the column only: the value is personal data.
        resident_pesel: row
            .4
            .map(|p| {
                Pesel::parse(&p).map_err(|_| corrupt(t, &key, "resident_pesel is not a PESEL"))
            })
            .transpose()?,
        recipient: crate::error::decode(t, &key, &row.5)?,
        sender_contact_id: row.6,
        jrwa_symbol: row.7,
        status: parse_status(&row.8).ok_or_else(|| corrupt(t, &key, "unknown status"))?,
        seq: u32::try_from(row.9).map_err(|_| corrupt(t, &key, "seq out of range"))?,
        open: row.10,
        registered_at: from(t, &key, row.11)?,
        last_polled_at: row.12.map(|i| from(t, &key, i)).transpose()?,
        ezd_case_id: row.1,
    })
}

/// The checks `record_registration` makes before writing: the record and the watched case
/// must be about the same tenant and (when the record names one) the same EZD case.
pub(super) fn check_registration(
    rec: &RegistrationRecord,
    watch: &WatchedCase,
) -> Result<(), StoreError> {
    let op = "record registration";
    if rec.tenant != watch.tenant {
        return Err(StoreError::Database(format!(
            "{op} {}: the registration and the watched case are of different tenants",
            rec.letter_id
        )));
    }
    if rec
        .ezd_case_id
        .as_deref()
        .is_some_and(|id| id != watch.ezd_case_id)
    {
        return Err(StoreError::Database(format!(
            "{op} {}: the registration names another EZD case than the watched one",
            rec.letter_id
        )));
    }
    Ok(())
}

/// Every text `record_registration` stores.
pub(super) fn registration_texts<'a>(
    rec: &'a RegistrationRecord,
    watch: &'a WatchedCase,
) -> impl Iterator<Item = &'a str> {
    [
        rec.letter_id.as_str(),
        &watch.ezd_case_id,
        watch.case_ref.as_str(),
        &watch.letter_id,
        &watch.jrwa_symbol,
    ]
    .into_iter()
    .chain(rec.case_ref.as_deref())
    .chain(rec.rpw.as_deref())
    .chain(watch.sender_contact_id.as_deref())
}

/// Implements [`CaseWorkStore`](super::CaseWorkStore) for a backend store type with a public
/// `pool()`; the arguments are those of [`crate::payment_sql::payment_store`].
macro_rules! case_work_store {
    (
        mod: $modname:ident,
        store: $store:ty,
        db: $db:ty,
        begin_write: $begin:expr,
        instant: $inst:ty,
        to_instant: $to:expr,
        from_instant: $from:expr $(,)?
    ) => {
        mod $modname {
            use super::*;
            use chrono::{DateTime, Utc};
            use gsko_model::{CaseRef, CaseStatus, Pesel, Teryt};
            use $crate::cases_work::{CaseWorkStore, RegistrationRecord, WatchedCase};
            use $crate::error::map_sqlx;
            use $crate::payment_sql as p;
            use $crate::StoreError;

            type Conn = <$db as sqlx::Database>::Connection;

            const FROM: p::FromInstant<$inst> = $from;

            async fn read_registration(
                conn: &mut Conn,
                tenant: &Teryt,
                letter_id: &str,
            ) -> Result<Option<RegistrationRecord>, StoreError> {
                let row: Option<RegCols<$inst>> = sqlx::query_as(&registration_sql())
                    .bind(tenant.as_str())
                    .bind(letter_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| map_sqlx("read registration", e))?;
                row.map(|r| registration(r, FROM)).transpose()
            }

            #[async_trait::async_trait]
            impl CaseWorkStore for $store {
                async fn registration(
                    &self,
                    tenant: &Teryt,
                    letter_id: &str,
                ) -> Result<Option<RegistrationRecord>, StoreError> {
                    if p::unstorable(letter_id) {
                        return Ok(None);
                    }
                    let mut conn = self
                        .pool()
                        .acquire()
                        .await
                        .map_err(|e| map_sqlx("read registration", e))?;
                    read_registration(&mut conn, tenant, letter_id).await
                }

                async fn record_registration(
                    &self,
                    rec: &RegistrationRecord,
                    watch: &WatchedCase,
                ) -> Result<(), StoreError> {
                    let op = "record registration";
                    check_registration(rec, watch)?;
                    p::refuse_nul(op, registration_texts(rec, watch))?;
                    let recipient = serde_json::to_string(&watch.recipient).map_err(|_| {
                        StoreError::Database(format!("{op}: the recipient does not serialize"))
                    })?;
                    // A NUL anywhere in the recipient shows as \u0000 in its JSON.
                    if recipient.contains("\\u0000") {
                        return Err(StoreError::Database(format!(
                            "{op}: a text field contains a NUL character"
                        )));
                    }
                    let case_ref = rec.case_ref.as_deref().unwrap_or(watch.case_ref.as_str());
                    let mut tx = self
                        .pool()
                        .begin_with($begin)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    sqlx::query(RECORD_REGISTRATION)
                        .bind(rec.tenant.as_str())
                        .bind(&rec.letter_id)
                        .bind(&watch.ezd_case_id)
                        .bind(case_ref)
                        .bind(rec.rpw.as_deref())
                        .bind($to(micros(rec.updated_at)))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    // A letter registered before keeps its first case: recording another one
                    // would leave a case watched that no registration points at.
                    let stored = read_registration(&mut tx, &rec.tenant, &rec.letter_id)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Database(format!("{op}: recorded registration vanished"))
                        })?;
                    if stored.ezd_case_id.as_deref() != Some(watch.ezd_case_id.as_str()) {
                        tx.rollback().await.map_err(|e| map_sqlx(op, e))?;
                        return Err(StoreError::Database(format!(
                            "{op} {}: the letter is already registered to another EZD case",
                            rec.letter_id
                        )));
                    }
                    sqlx::query(WATCH)
                        .bind(watch.tenant.as_str())
                        .bind(&watch.ezd_case_id)
                        .bind(watch.case_ref.as_str())
                        .bind(&watch.letter_id)
                        .bind(watch.resident_pesel.as_ref().map(Pesel::as_str))
                        .bind(sqlx::types::Json(&watch.recipient))
                        .bind(watch.sender_contact_id.as_deref())
                        .bind(&watch.jrwa_symbol)
                        .bind(watch.status.as_str())
                        .bind(i64::from(watch.seq))
                        .bind(watch.open)
                        .bind($to(micros(watch.registered_at)))
                        .bind(watch.last_polled_at.map(|t| $to(micros(t))))
                        .bind($to(p::now()))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_sqlx("watch case", e))?;
                    tx.commit().await.map_err(|e| map_sqlx(op, e))?;
                    Ok(())
                }

                async fn park_registration(
                    &self,
                    tenant: &Teryt,
                    letter_id: &str,
                    problem: &str,
                    ezd_case_id: Option<&str>,
                    case_ref: Option<&str>,
                    rpw: Option<&str>,
                ) -> Result<(), StoreError> {
                    let op = "park registration";
                    p::refuse_nul(
                        op,
                        [letter_id, problem]
                            .into_iter()
                            .chain(ezd_case_id)
                            .chain(case_ref)
                            .chain(rpw),
                    )?;
                    sqlx::query(PARK_REGISTRATION)
                        .bind(tenant.as_str())
                        .bind(letter_id)
                        .bind(problem)
                        .bind(ezd_case_id)
                        .bind(case_ref)
                        .bind(rpw)
                        .bind($to(p::now()))
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    Ok(())
                }

                async fn parked_registrations(
                    &self,
                    tenant: &Teryt,
                    limit: u32,
                ) -> Result<Vec<RegistrationRecord>, StoreError> {
                    let rows: Vec<RegCols<$inst>> = sqlx::query_as(&parked_sql())
                        .bind(tenant.as_str())
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await
                        .map_err(|e| map_sqlx("read parked registrations", e))?;
                    rows.into_iter().map(|r| registration(r, FROM)).collect()
                }

                async fn open_case_of(
                    &self,
                    tenant: &Teryt,
                    pesel: &Pesel,
                    jrwa_symbol: &str,
                ) -> Result<Option<WatchedCase>, StoreError> {
                    if p::unstorable(jrwa_symbol) {
                        return Ok(None);
                    }
                    let row: Option<CaseCols<$inst>> = sqlx::query_as(&open_case_sql())
                        .bind(tenant.as_str())
                        .bind(pesel.as_str())
                        .bind(jrwa_symbol)
                        .fetch_optional(self.pool())
                        .await
                        .map_err(|e| map_sqlx("read open case of resident", e))?;
                    row.map(|r| watched(r, FROM)).transpose()
                }

                async fn watched_case(
                    &self,
                    tenant: &Teryt,
                    ezd_case_id: &str,
                ) -> Result<Option<WatchedCase>, StoreError> {
                    if p::unstorable(ezd_case_id) {
                        return Ok(None);
                    }
                    let row: Option<CaseCols<$inst>> = sqlx::query_as(&watched_sql())
                        .bind(tenant.as_str())
                        .bind(ezd_case_id)
                        .fetch_optional(self.pool())
                        .await
                        .map_err(|e| map_sqlx("read watched case", e))?;
                    row.map(|r| watched(r, FROM)).transpose()
                }

                async fn cases_to_poll(
                    &self,
                    tenant: &Teryt,
                    limit: u32,
                ) -> Result<Vec<WatchedCase>, StoreError> {
                    let rows: Vec<CaseCols<$inst>> = sqlx::query_as(&to_poll_sql())
                        .bind(tenant.as_str())
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await
                        .map_err(|e| map_sqlx("read cases to poll", e))?;
                    rows.into_iter().map(|r| watched(r, FROM)).collect()
                }

                async fn record_status(
                    &self,
                    tenant: &Teryt,
                    ezd_case_id: &str,
                    case_ref: &CaseRef,
                    status: CaseStatus,
                    seq: u32,
                    open: bool,
                ) -> Result<bool, StoreError> {
                    let op = "record case status";
                    if p::unstorable(ezd_case_id) {
                        return Ok(false);
                    }
                    p::refuse_nul(op, [case_ref.as_str()])?;
                    let done = sqlx::query(RECORD_STATUS)
                        .bind(case_ref.as_str())
                        .bind(status.as_str())
                        .bind(i64::from(seq))
                        .bind(open)
                        .bind($to(p::now()))
                        .bind(tenant.as_str())
                        .bind(ezd_case_id)
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    Ok(done.rows_affected() > 0)
                }

                async fn mark_polled(
                    &self,
                    tenant: &Teryt,
                    ezd_case_id: &str,
                    at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    if p::unstorable(ezd_case_id) {
                        return Ok(());
                    }
                    sqlx::query(MARK_POLLED)
                        .bind($to(micros(at)))
                        .bind(tenant.as_str())
                        .bind(ezd_case_id)
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx("mark case polled", e))?;
                    Ok(())
                }

                async fn decision_sha(
                    &self,
                    tenant: &Teryt,
                    decision_id: &str,
                ) -> Result<Option<String>, StoreError> {
                    if p::unstorable(decision_id) {
                        return Ok(None);
                    }
                    let row: Option<(String,)> = sqlx::query_as(DECISION_SHA)
                        .bind(tenant.as_str())
                        .bind(decision_id)
                        .fetch_optional(self.pool())
                        .await
                        .map_err(|e| map_sqlx("read raised decision", e))?;
                    Ok(row.map(|(sha,)| sha))
                }

                async fn record_decision(
                    &self,
                    tenant: &Teryt,
                    decision_id: &str,
                    ezd_case_id: &str,
                    sha256: &str,
                ) -> Result<(), StoreError> {
                    let op = "record raised decision";
                    p::refuse_nul(op, [decision_id, ezd_case_id, sha256])?;
                    sqlx::query(RECORD_DECISION)
                        .bind(tenant.as_str())
                        .bind(decision_id)
                        .bind(ezd_case_id)
                        .bind(sha256)
                        .bind($to(p::now()))
                        .execute(self.pool())
                        .await
                        .map_err(|e| map_sqlx(op, e))?;
                    Ok(())
                }
            }
        }
    };
}

use crate::payment_sql::{pg_from_instant, pg_instant, sqlite_from_instant, sqlite_instant};

case_work_store!(
    mod: pg_impl,
    store: crate::PgStore,
    db: sqlx::Postgres,
    begin_write: "BEGIN",
    instant: DateTime<Utc>,
    to_instant: pg_instant,
    from_instant: pg_from_instant,
);

case_work_store!(
    mod: sqlite_impl,
    store: crate::SqliteStore,
    db: sqlx::Sqlite,
    // SQLite takes the write lock up front, so the read inside the transaction cannot turn
    // into a busy upgrade.
    begin_write: "BEGIN IMMEDIATE",
    instant: i64,
    to_instant: sqlite_instant,
    from_instant: sqlite_from_instant,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_statuses_round_trip_their_stored_names() {
        for s in RegistrationState::ALL {
            assert_eq!(RegistrationState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("serializes"),
                serde_json::Value::String(s.as_str().to_owned())
            );
        }
        for s in STATUSES {
            assert_eq!(parse_status(s.as_str()), Some(s));
            // The stored name is the model's own serialization.
            assert_eq!(
                serde_json::to_value(s).expect("serializes"),
                serde_json::Value::String(s.as_str().to_owned())
            );
        }
    }

    #[test]
    fn the_migrations_allow_exactly_the_stored_names() {
        for sql in [
            include_str!("../migrations/postgres/0008_case_work.sql"),
            include_str!("../migrations/sqlite/0008_case_work.sql"),
        ] {
            for s in STATUSES {
                assert!(sql.contains(&format!("'{}'", s.as_str())), "{s:?}");
            }
            for s in RegistrationState::ALL {
                assert!(sql.contains(&format!("'{}'", s.as_str())), "{s:?}");
            }
        }
    }
}
