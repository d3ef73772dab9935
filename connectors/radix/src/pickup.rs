//! File pickup: a tenant's inbox directory, imported file by file onto the bus.
//!
//! Layout of a tenant's directory (`TenantDirs::root`):
//!
//! ```text
//! inbox/                 exports waiting to be imported (names starting with '.' are ignored:
//!                        downloads in progress)
//! processed/             imported files
//! failed/                refused files with <file>.error.txt, and <file>.errors.jsonl with the
//!                        rejected records of any file (one RejectedRecord JSON per line)
//! .gsko-imported/<sha>   ledger: one marker per imported file checksum
//! ```
//!
//! Crash safety comes from ordering, not from a database (the connector has none): the file stays
//! in the inbox until every event (records, rejections, the final `import.completed`) is
//! confirmed by the bus; only then is the ledger marker written and the file moved. A crash
//! anywhere before that leaves the file in the inbox and the next run imports it again, which is
//! harmless: the projector keeps the highest `source_version` of each record. A crash between the
//! marker and the move is finished by the next run (the file is recognised and moved).

use crate::csv::{CsvMapping, CsvSource};
use crate::{
    event_source, file_meta, item_to_event, FileError, FileMeta, RecordSource, SourceItem,
};
use gsko_bus::{Bus, BusError, Outgoing};
use gsko_model::{Event, EventData, ImportCompleted, Teryt};
use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default number of events per `Bus::publish` call; at most one batch is held in memory.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// The directories of one tenant (see the module docs).
#[derive(Debug, Clone)]
pub struct TenantDirs {
    pub root: PathBuf,
}

impl TenantDirs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        TenantDirs { root: root.into() }
    }
    pub fn inbox(&self) -> PathBuf {
        self.root.join("inbox")
    }
    pub fn processed(&self) -> PathBuf {
        self.root.join("processed")
    }
    pub fn failed(&self) -> PathBuf {
        self.root.join("failed")
    }
    pub fn ledger(&self) -> PathBuf {
        self.root.join(".gsko-imported")
    }

    pub fn ensure(&self) -> std::io::Result<()> {
        for d in [self.inbox(), self.processed(), self.failed(), self.ledger()] {
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    }

    /// Files waiting in the inbox, oldest name first (exports carry dates in their names).
    pub fn pending(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.inbox())? {
            let e = e?;
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if !hidden && e.file_type()?.is_file() {
                out.push(e.path());
            }
        }
        out.sort();
        Ok(out)
    }

    fn marker(&self, sha256: &str) -> PathBuf {
        self.ledger().join(sha256)
    }
}

/// How files are read.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub batch_size: usize,
    /// Mappings for `*.csv` files by file-name prefix: DOS-era programs export one table per
    /// file (`podatnicy.csv`, `konta.csv`, `wplaty.csv` …), so each prefix names its layout. The
    /// longest matching prefix wins; a CSV file no prefix matches is refused (moved to `failed/`).
    pub csv: BTreeMap<String, CsvMapping>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            csv: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Read to the end, all events confirmed, file moved to `processed/`.
    Imported,
    /// Read up to a break in the XML; the events before it were confirmed and the file moved to
    /// `failed/` with the reason.
    Truncated { reason: String },
    /// A file with this checksum was imported before; nothing was published.
    AlreadyImported,
    /// The file as a whole was refused (header, tenant, no CSV mapping); moved to `failed/`.
    Refused { reason: String },
}

/// What an import did, for the caller's log and metrics (no personal data in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub file: String,
    pub sha256: String,
    pub outcome: ImportOutcome,
    pub accepted: u64,
    pub rejected: u64,
    /// Where the file is now.
    pub moved_to: Option<PathBuf>,
    /// `failed/<file>.errors.jsonl`, when records were rejected.
    pub errors_file: Option<PathBuf>,
}

/// An import that could not finish: the file stays in the inbox and is retried on the next run.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {action}: {source}")]
    Io {
        file: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: publishing to the bus failed (the file stays in the inbox): {source}")]
    Bus {
        file: String,
        #[source]
        source: BusError,
    },
}

fn io_err(file: &str, action: &'static str) -> impl FnOnce(std::io::Error) -> ImportError {
    let file = file.to_owned();
    move |source| ImportError::Io {
        file,
        action,
        source,
    }
}

fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Imports one export file of `tenant` from its inbox (see the module docs for the guarantees).
///
/// The file is read with blocking I/O between the awaited publishes: reading a local file is
/// short next to a broker round trip, and it keeps exactly one batch in memory. Call it from a
/// multi-threaded runtime (as the daemon does), where a briefly busy worker harms no one.
pub async fn import_file(
    path: &Path,
    tenant: &Teryt,
    bus: &dyn Bus,
    dirs: &TenantDirs,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let display = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dirs.ensure()
        .map_err(io_err(&display, "creating the tenant directories"))?;
    let meta = match file_meta(path) {
        Ok(m) => m,
        Err(FileError::Io { source, .. }) => {
            return Err(ImportError::Io {
                file: display,
                action: "reading",
                source,
            })
        }
        Err(e) => unreachable!("file_meta only fails on I/O: {e}"),
    };
    let mut report = ImportReport {
        file: meta.name.clone(),
        sha256: meta.sha256.clone(),
        outcome: ImportOutcome::Imported,
        accepted: 0,
        rejected: 0,
        moved_to: None,
        errors_file: None,
    };

    if dirs.marker(&meta.sha256).exists() {
        // The same bytes were imported and kept in processed/ before: this copy (typically the
        // same export fetched from the URL again) adds nothing, so it is removed rather than
        // piling up identical files.
        tracing::info!(file = %meta.name, sha256 = %meta.sha256, "export already imported; duplicate removed from the inbox");
        report.outcome = ImportOutcome::AlreadyImported;
        std::fs::remove_file(path).map_err(io_err(&meta.name, "removing a duplicate"))?;
        return Ok(report);
    }

    let opened: Result<Box<dyn RecordSource + Send>, FileError> =
        open_source(path, &meta, tenant, opts);
    let mut source = match opened {
        Ok(s) => s,
        Err(e) if e.is_permanent() => {
            let reason = e.to_string();
            tracing::warn!(file = %meta.name, sha256 = %meta.sha256, "export refused at file level; moving it to failed/");
            write_atomic(
                &dirs.failed().join(format!("{}.error.txt", meta.name)),
                format!("{reason}\n").as_bytes(),
            )
            .map_err(io_err(&meta.name, "writing the error report"))?;
            report.moved_to = Some(
                move_into(path, &dirs.failed(), &meta)
                    .map_err(io_err(&meta.name, "moving to failed/"))?,
            );
            report.outcome = ImportOutcome::Refused { reason };
            return Ok(report);
        }
        Err(FileError::Io { source, .. }) => {
            return Err(ImportError::Io {
                file: meta.name.clone(),
                action: "reading",
                source,
            })
        }
        Err(e) => unreachable!("non-permanent file errors are I/O: {e}"),
    };

    let header = source.header().clone();
    let correlation = meta.sha256.clone();
    let errors_path = dirs.failed().join(format!("{}.errors.jsonl", meta.name));
    // A report left by an interrupted earlier run of this file would be stale.
    if errors_path.exists() {
        std::fs::remove_file(&errors_path)
            .map_err(io_err(&meta.name, "removing a stale errors file"))?;
    }
    let mut errors: Option<std::io::BufWriter<std::fs::File>> = None;
    let batch_size = opts.batch_size.max(1);
    let mut batch: Vec<Outgoing> = Vec::with_capacity(batch_size);

    loop {
        let item = match source.next_item() {
            Ok(Some(i)) => i,
            Ok(None) => break,
            Err(FileError::Io { source, .. }) => {
                return Err(ImportError::Io {
                    file: meta.name.clone(),
                    action: "reading",
                    source,
                })
            }
            Err(e) => {
                return Err(ImportError::Io {
                    file: meta.name.clone(),
                    action: "reading",
                    source: std::io::Error::other(e.to_string()),
                })
            }
        };
        match &item {
            SourceItem::Record(_) => report.accepted += 1,
            SourceItem::Rejected(r) => {
                report.rejected += 1;
                if errors.is_none() {
                    let f = std::fs::File::create(&errors_path)
                        .map_err(io_err(&meta.name, "creating the errors file"))?;
                    errors = Some(std::io::BufWriter::new(f));
                }
                if let Some(w) = errors.as_mut() {
                    let mut line = serde_json::to_vec(r).expect("rejections serialize");
                    line.push(b'\n');
                    w.write_all(&line)
                        .map_err(io_err(&meta.name, "writing the errors file"))?;
                }
            }
        }
        batch.push(Outgoing::event(&item_to_event(item, tenant, &correlation)));
        if batch.len() >= batch_size {
            publish(bus, &batch, &meta.name).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        publish(bus, &batch, &meta.name).await?;
        batch.clear();
    }
    if let Some(mut w) = errors.take() {
        w.flush()
            .map_err(io_err(&meta.name, "writing the errors file"))?;
        w.get_ref()
            .sync_all()
            .map_err(io_err(&meta.name, "writing the errors file"))?;
        report.errors_file = Some(errors_path);
    }

    // Only after every record event is confirmed: the completion event.
    let done = ImportCompleted {
        file: meta.name.clone(),
        file_sha256: meta.sha256.clone(),
        export_kind: header.kind.as_str().to_owned(),
        records_accepted: report.accepted,
        records_rejected: report.rejected,
    };
    let version = header
        .generated_at
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    let ev = Event::new(
        event_source(tenant),
        tenant.clone(),
        version,
        EventData::ImportCompleted(done),
    )
    .with_correlation(&correlation);
    publish(bus, &[Outgoing::event(&ev)], &meta.name).await?;

    if let Some(reason) = source.stopped_early().map(str::to_owned) {
        // Not marked in the ledger: the same bytes dropped again are read again.
        write_atomic(
            &dirs.failed().join(format!("{}.error.txt", meta.name)),
            format!("reading stopped at {reason}\n").as_bytes(),
        )
        .map_err(io_err(&meta.name, "writing the error report"))?;
        report.moved_to = Some(
            move_into(path, &dirs.failed(), &meta)
                .map_err(io_err(&meta.name, "moving to failed/"))?,
        );
        report.outcome = ImportOutcome::Truncated { reason };
    } else {
        let marker = format!(
            "{{\"file\":{},\"imported_at\":\"{}\"}}\n",
            serde_json::Value::String(meta.name.clone()),
            chrono::Utc::now().to_rfc3339()
        );
        write_atomic(&dirs.marker(&meta.sha256), marker.as_bytes())
            .map_err(io_err(&meta.name, "writing the ledger marker"))?;
        report.moved_to = Some(
            move_into(path, &dirs.processed(), &meta)
                .map_err(io_err(&meta.name, "moving to processed/"))?,
        );
    }
    tracing::info!(file = %meta.name, sha256 = %meta.sha256, accepted = report.accepted, rejected = report.rejected, "export imported");
    Ok(report)
}

/// Imports every file waiting in the tenant's inbox, one after another. Stops at the first
/// [`ImportError`] (a bus or disk failure would fail the next file too); the file stays.
pub async fn import_inbox(
    tenant: &Teryt,
    bus: &dyn Bus,
    dirs: &TenantDirs,
    opts: &ImportOptions,
) -> Result<Vec<ImportReport>, ImportError> {
    dirs.ensure()
        .map_err(io_err("inbox", "creating the tenant directories"))?;
    let mut reports = Vec::new();
    for path in dirs.pending().map_err(io_err("inbox", "listing"))? {
        reports.push(import_file(&path, tenant, bus, dirs, opts).await?);
    }
    Ok(reports)
}

/// The mapping whose prefix is the longest one the file name starts with (case-insensitive).
pub fn csv_mapping_for<'a>(
    file_name: &str,
    mappings: &'a BTreeMap<String, CsvMapping>,
) -> Option<&'a CsvMapping> {
    let name = file_name.to_lowercase();
    mappings
        .iter()
        .filter(|(prefix, _)| name.starts_with(&prefix.to_lowercase()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, m)| m)
}

fn open_source(
    path: &Path,
    meta: &FileMeta,
    tenant: &Teryt,
    opts: &ImportOptions,
) -> Result<Box<dyn RecordSource + Send>, FileError> {
    let f = std::fs::File::open(path).map_err(|source| FileError::Io {
        file: meta.name.clone(),
        source,
    })?;
    let input = BufReader::with_capacity(64 * 1024, f);
    if is_csv(path) {
        let mapping = csv_mapping_for(&meta.name, &opts.csv)
            .ok_or_else(|| FileError::Config {
                file: meta.name.clone(),
                reason: if opts.csv.is_empty() {
                    "a CSV file arrived but no CSV mapping is configured for this tenant".into()
                } else {
                    format!(
                        "no CSV mapping matches this file name (configured prefixes: {})",
                        opts.csv.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                },
            })?
            .clone();
        // CSV rows rarely carry a version: the file's modification time stands in (see csv docs).
        let mtime_ms = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Ok(Box::new(
            CsvSource::new(input, meta.clone(), mapping, tenant.clone())?
                .with_fallback_version(mtime_ms),
        ))
    } else {
        Ok(Box::new(crate::xml::XmlSource::new(
            input,
            meta.clone(),
            Some(tenant),
        )?))
    }
}

async fn publish(bus: &dyn Bus, batch: &[Outgoing], file: &str) -> Result<(), ImportError> {
    bus.publish(batch).await.map_err(|source| ImportError::Bus {
        file: file.to_owned(),
        source,
    })
}

/// Writes a small file via a temporary name and a rename, so it is either whole or absent.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Moves a file into `dir`, never overwriting an older file of the same name (the checksum is
/// appended then).
fn move_into(path: &Path, dir: &Path, meta: &FileMeta) -> std::io::Result<PathBuf> {
    let mut dest = dir.join(&meta.name);
    if dest.exists() {
        dest = dir.join(format!("{}.{}", meta.name, &meta.sha256[..12]));
    }
    std::fs::rename(path, &dest)?;
    Ok(dest)
}

/// A download that did not produce a file in the inbox.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("download from {host} failed: {source}")]
    Http {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("download from {host} answered HTTP {status}")]
    Status { host: String, status: u16 },
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("writing the download into {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Default time limit of one download (connect + whole body).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Downloads an export from an HTTP(S) URL into `dir` (the tenant's inbox). The body is streamed
/// to a hidden temporary file (ignored by pickup) and renamed when complete, so pickup never
/// sees half a file. Returns the final path.
pub async fn fetch_url(url: &str, dir: &Path) -> Result<PathBuf, FetchError> {
    fetch_url_with_timeout(url, dir, FETCH_TIMEOUT).await
}

pub async fn fetch_url_with_timeout(
    url: &str,
    dir: &Path,
    timeout: Duration,
) -> Result<PathBuf, FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::Url(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::Url(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    // Only the host goes into errors and logs: query strings may carry access tokens.
    let host = parsed.host_str().unwrap_or("?").to_owned();
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .filter(|n| {
            !n.is_empty()
                && !n.starts_with('.')
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        })
        .unwrap_or_else(|| {
            format!(
                "radix-export-{}.xml",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f")
            )
        });
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .build()
        .map_err(|source| FetchError::Http {
            host: host.clone(),
            source,
        })?;
    let mut resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|source| FetchError::Http {
            host: host.clone(),
            source,
        })?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            host,
            status: resp.status().as_u16(),
        });
    }
    let io = |source| FetchError::Io {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{name}.part-{}", std::process::id()));
    let result: Result<PathBuf, FetchError> = async {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        while let Some(chunk) = resp.chunk().await.map_err(|source| FetchError::Http {
            host: host.clone(),
            source,
        })? {
            f.write_all(&chunk).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        let mut dest = dir.join(&name);
        if dest.exists() {
            dest = dir.join(format!(
                "{}-{name}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f")
            ));
        }
        std::fs::rename(&tmp, &dest).map_err(io)?;
        Ok(dest)
    }
    .await;
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    if result.is_ok() {
        tracing::info!(host = %host, "export downloaded into the inbox");
    }
    result
}
