//! Mapping of sqlx errors onto [`StoreError`].
//!
//! Two rules drive it. First, the projector decides between "wait and try the same batch again"
//! and "find the bad event and park it" from [`StoreError::is_transient`], so everything that
//! may heal by itself (lost connection, pool timeout, server shutting down, deadlock,
//! serialization failure, SQLite busy) must become `Unavailable`. Second, error texts end up in
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
            if is_transient_code(&code) {
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
/// extended code as a decimal string) after which the same statement may well succeed.
fn is_transient_code(code: &str) -> bool {
    // Postgres
    code.starts_with("08")            // connection exception
        || code == "40001"            // serialization_failure
        || code == "40P01"            // deadlock_detected
        || code == "55P03"            // lock_not_available
        || code.starts_with("53")     // insufficient resources (disk full, out of memory, too many connections)
        || code.starts_with("57P")    // admin/crash shutdown, cannot connect now
        || code == "58030"            // io_error
        // SQLite: the primary result code is the low byte of the extended one.
        || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14))
    // 5 BUSY, 6 LOCKED, 10 IOERR, 13 FULL, 14 CANTOPEN
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
        assert!(is_transient_code("08006"));
        assert!(is_transient_code("40P01"));
        assert!(is_transient_code("57P01"));
        assert!(is_transient_code("5")); // SQLITE_BUSY
        assert!(is_transient_code("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(!is_transient_code("23505"));
        assert!(!is_transient_code("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(!is_transient_code("22P05"));
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
