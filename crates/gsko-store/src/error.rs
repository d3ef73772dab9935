//! Mapping of sqlx errors onto [`StoreError`].
//!
//! Two rules drive it. First, the projector decides between "wait and try the same batch again"
//! and "find the bad event and park it" from [`StoreError::is_transient`], so everything that
//! may heal by itself (lost connection, pool timeout, server shutting down, deadlock,
//! serialization failure, SQLite busy) or is not about any event (missing table, read-only
//! standby; see `is_transient_code`) must become `Unavailable`. Second, error texts end up in
//! logs and in the headers of parked messages, so they carry only the operation, the SQLSTATE
//! (or SQLite result code) and object names — never the server's message text, which can quote
//! values (names, PESEL numbers) from the row that failed, and never SQL.

use crate::StoreError;

/// What the store was doing, for error messages. Static strings only.
pub(crate) type Op = &'static str;

pub(crate) fn map_sqlx(op: Op, e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match e {
        E::Io(io) => StoreError::Unavailable(format!("{op}: I/O error ({})", io.kind())),
        E::Tls(_) => StoreError::Unavailable(format!("{op}: TLS error")),
        E::PoolTimedOut => {
            StoreError::Unavailable(format!("{op}: timed out waiting for a database connection"))
        }
        E::PoolClosed => StoreError::Unavailable(format!("{op}: connection pool closed")),
        E::WorkerCrashed => StoreError::Unavailable(format!("{op}: database worker crashed")),
        // A protocol error leaves the connection in an unknown state; sqlx drops it and a
        // fresh connection usually works.
        E::Protocol(_) => StoreError::Unavailable(format!("{op}: database protocol error")),
        E::Database(db) => {
            let code = db
                .code()
                .map(|c| c.into_owned())
                .unwrap_or_else(|| "unknown".to_owned());
            let mut msg = format!("{op}: database error {code}");
            if let Some(c) = db.constraint() {
                msg.push_str(&format!(" (constraint {c})"));
            }
            if let Some(t) = db.table() {
                msg.push_str(&format!(" (table {t})"));
            }
            let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
            if is_transient_code(sqlite, &code) {
                StoreError::Unavailable(msg)
            } else {
                StoreError::Database(msg)
            }
        }
        E::Configuration(_) => {
            StoreError::Database(format!("{op}: invalid database configuration"))
        }
        E::ColumnDecode { index, .. } => {
            StoreError::Database(format!("{op}: cannot decode column {index}"))
        }
        E::ColumnNotFound(c) => StoreError::Database(format!("{op}: column {c} not found")),
        E::ColumnIndexOutOfBounds { index, len } => {
            StoreError::Database(format!("{op}: column index {index} out of bounds ({len})"))
        }
        E::RowNotFound => StoreError::Database(format!("{op}: row not found")),
        E::TypeNotFound { type_name } => {
            StoreError::Database(format!("{op}: type {type_name} not found"))
        }
        E::Decode(_) => StoreError::Database(format!("{op}: cannot decode a value")),
        E::Encode(_) => StoreError::Database(format!("{op}: cannot encode a value")),
        E::Migrate(m) => StoreError::Migration(m.to_string()),
        _ => StoreError::Database(format!("{op}: database driver error")),
    }
}

/// SQLSTATE classes and codes (Postgres) and result codes (SQLite, where sqlx reports the
/// extended code as a decimal string) after which the same statement may well succeed later.
///
/// Besides the errors that heal by themselves, this includes those that say the database is
/// not usable as configured — a missing table or column, missing privileges, a read-only
/// standby after a failover. No event causes them (the SQL is fixed and every value is bound
/// with its type), so treating them as permanent would make the projector park the whole
/// stream, event by event; waiting for an operator loses nothing. What stays permanent are the
/// errors a value can cause: data exceptions (class 22, e.g. a NUL character Postgres refuses)
/// and integrity violations (class 23).
fn is_transient_code(sqlite: bool, code: &str) -> bool {
    const PG_CLASSES: [&str; 8] = [
        "08",  // connection exception
        "28",  // invalid authorization
        "3D",  // invalid catalog (database) name
        "3F",  // invalid schema name
        "42",  // undefined table/column, insufficient privilege
        "53",  // insufficient resources: disk full, out of memory, too many connections
        "57P", // admin or crash shutdown, cannot connect now
        "58",  // system error (I/O)
    ];
    const PG_CODES: [&str; 4] = [
        "40001", // serialization_failure
        "40P01", // deadlock_detected
        "55P03", // lock_not_available
        "25006", // read_only_sql_transaction (connected to a standby)
    ];
    // SQLite: the primary result code is the low byte of the extended one. 1 ERROR (with fixed
    // SQL: the schema is not what the code expects), 5 BUSY, 6 LOCKED, 8 READONLY, 10 IOERR,
    // 13 FULL, 14 CANTOPEN.
    const SQLITE_PRIMARY: [i32; 7] = [1, 5, 6, 8, 10, 13, 14];
    if sqlite {
        code.parse::<i32>()
            .is_ok_and(|c| SQLITE_PRIMARY.contains(&(c & 0xff)))
    } else {
        PG_CLASSES.iter().any(|c| code.starts_with(c)) || PG_CODES.contains(&code)
    }
}

pub(crate) fn migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError as M;
    match e {
        M::Execute(inner) => match map_sqlx("run migrations", inner) {
            u @ StoreError::Unavailable(_) => u,
            other => StoreError::Migration(other.to_string()),
        },
        other => StoreError::Migration(other.to_string()),
    }
}

/// A stored payload that does not decode into its model type. serde_json's message can quote
/// the offending value (possibly personal data), so only its category and position are kept.
pub(crate) fn corrupt(table: &'static str, key: &str, e: &serde_json::Error) -> StoreError {
    let category = match e.classify() {
        serde_json::error::Category::Io => "I/O",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "unexpected end",
    };
    StoreError::Corrupt {
        table,
        key: key.to_owned(),
        reason: format!(
            "payload does not match the model ({category} error at line {} column {})",
            e.line(),
            e.column()
        ),
    }
}

/// Decodes one stored JSON payload into its model type.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &'static str,
    key: &str,
    payload: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(payload).map_err(|e| corrupt(table, key, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        assert!(is_transient_code(false, "08006"));
        assert!(is_transient_code(false, "40P01"));
        assert!(is_transient_code(false, "57P01"));
        assert!(is_transient_code(true, "5")); // SQLITE_BUSY
        assert!(is_transient_code(true, "517")); // SQLITE_BUSY_SNAPSHOT
        assert!(is_transient_code(false, "42P01")); // undefined_table
        assert!(is_transient_code(false, "25006")); // read-only standby
        assert!(is_transient_code(true, "8")); // SQLITE_READONLY
        assert!(!is_transient_code(false, "23505"));
        assert!(!is_transient_code(false, "23514")); // check_violation
        assert!(!is_transient_code(true, "2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(!is_transient_code(true, "275")); // SQLITE_CONSTRAINT_CHECK
        assert!(!is_transient_code(false, "22P05")); // unsupported Unicode escape (NUL)
        assert!(!is_transient_code(false, "22021")); // invalid byte sequence
    }

    #[test]
    fn corrupt_payload_reason_does_not_quote_values() {
        let err = decode::<gsko_model::Taxpayer>(
            "taxpayers",
            "T-1",
            r#"{"taxpayer_id":"T-1","kind":"natural","pesel":"44051401358","name":"Jan"}"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(
            err,
            StoreError::Corrupt {
                table: "taxpayers",
                ..
            }
        ));
        assert!(!text.contains("44051401358"), "{text}");
    }
}
