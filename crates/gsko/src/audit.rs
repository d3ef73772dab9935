//! `gsko audit verify` and `gsko audit archive`: checking the audit log's hash chain and
//! moving old entries out of the database in bounded batches.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use gsko_config::{Config, DatabaseConfig};
use gsko_store::AuditStore;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The database alone (no broker): what the audit and session commands need.
pub enum Database {
    Postgres(Arc<gsko_store::PgStore>),
    Sqlite(Arc<gsko_store::SqliteStore>),
}

impl Database {
    pub fn audit(&self) -> Arc<dyn AuditStore> {
        match self {
            Database::Postgres(s) => s.clone(),
            Database::Sqlite(s) => s.clone(),
        }
    }

    pub fn logins(&self) -> Arc<dyn gsko_store::LoginStore> {
        match self {
            Database::Postgres(s) => s.clone(),
            Database::Sqlite(s) => s.clone(),
        }
    }
}

pub async fn open_database(cfg: &Config) -> Result<Database> {
    Ok(match &cfg.main.database {
        DatabaseConfig::Postgres { url, .. } => {
            let url = url
                .resolve()
                .map_err(anyhow::Error::msg)
                .context("database.url")?;
            Database::Postgres(Arc::new(
                gsko_store::PgStore::connect(url.expose(), 2)
                    .await
                    .context("connecting to PostgreSQL")?,
            ))
        }
        DatabaseConfig::Sqlite { path } => {
            let path = cfg.resolve_path(path);
            Database::Sqlite(Arc::new(
                gsko_store::SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("opening SQLite database {}", path.display()))?,
            ))
        }
    })
}

pub async fn open_store(cfg: &Config) -> Result<Arc<dyn AuditStore>> {
    Ok(open_database(cfg).await?.audit())
}

/// Ends every live session of a resident (a lost or stolen device, a request of the
/// resident); the action goes to the audit log. Returns how many sessions were ended.
pub async fn revoke_sessions(db: &Database, pesel: &gsko_model::Pesel) -> Result<u64> {
    let now = Utc::now();
    let n = db
        .logins()
        .session_revoke_resident(pesel.as_str(), now)
        .await
        .context("revoking sessions")?;
    db.audit()
        .audit_append(&[gsko_store::AuditEntry {
            at: now,
            actor: format!("cli:{}", whoami()),
            tenant: None,
            resident_pesel: Some(pesel.as_str().to_owned()),
            action: "revoke sessions".into(),
            outcome: format!("{n} revoked"),
            remote: None,
        }])
        .await
        .context("recording the revocation in the audit log")?;
    Ok(n)
}

/// The operating-system user running the command, for the audit.
fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Checks the whole chain; prints what it found. `Ok(false)` when the chain is broken.
pub async fn verify(store: &dyn AuditStore) -> Result<bool> {
    let report = store
        .audit_verify(10_000)
        .await
        .context("reading the audit log")?;
    let range = match (report.first_seq, report.last_seq) {
        (Some(a), Some(b)) => format!("entries {a}..={b}"),
        _ => "no entries".to_owned(),
    };
    if report.problems.is_empty() {
        println!("audit log intact: {} rows ({range})", report.rows);
        return Ok(true);
    }
    for p in &report.problems {
        println!("{p}");
    }
    println!(
        "audit log BROKEN: {} problem(s) in {} rows ({range})",
        report.problems.len(),
        report.rows
    );
    Ok(false)
}

/// Writes every entry older than `before` to `out` (JSON lines, appended and synced) and then
/// deletes it, `batch` rows at a time; the chain's anchor moves with each batch, so what stays
/// still verifies. Returns how many rows moved.
pub async fn archive(
    store: &dyn AuditStore,
    before: DateTime<Utc>,
    out: &Path,
    batch: u32,
) -> Result<u64> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("opening {}", out.display()))?;
    let mut moved = 0;
    loop {
        let rows = store
            .audit_oldest_before(before, batch.max(1))
            .await
            .context("reading old audit entries")?;
        let Some(last) = rows.last() else {
            return Ok(moved);
        };
        for r in &rows {
            serde_json::to_writer(&mut file, r).context("writing the archive")?;
            file.write_all(b"\n").context("writing the archive")?;
        }
        // Durable in the archive before it leaves the database.
        file.sync_all().context("syncing the archive")?;
        moved += store
            .audit_prune_through(last)
            .await
            .context("pruning archived audit entries")?;
    }
}
