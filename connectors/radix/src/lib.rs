//! RADIX connector.
//!
//! RADIX (the municipalities' tax and fee domain system) publishes no integration interface, so
//! GSKO defines the import contract itself: a versioned XML export (`urn:gsko:radix-export:1`,
//! XSD in `schemas/radix/radix-export-v1.xsd`). Legacy installations hand over CSV files in DOS
//! or Windows code pages instead; those are read through a configured column mapping
//! ([`csv::CsvMapping`]) into the same records.
//!
//! Layers, each replaceable on its own:
//! - a [`RecordSource`] turns one file into normalized records or [`RejectedRecord`]s, one record
//!   at a time, so memory stays flat however large the export is ([`xml::XmlSource`],
//!   [`csv::CsvSource`]);
//! - [`encoding`] turns the bytes of legacy code pages into UTF-8;
//! - [`pickup`] watches a tenant's inbox, publishes the records as events in confirmed batches
//!   and only then moves the file away, so a crash never loses anything;
//! - [`inspect`] prints what a file would publish, touching nothing;
//! - [`booking`] is the other direction: `pl.gsko.payment.book.v1` commands become payment files
//!   in the ledger's import directory (GSKO XML or Elixir-0), exactly once per payment; the
//!   ledger's next export names the payment on its postings (`payment` attribute), which the XML
//!   reader publishes as `pl.gsko.payment.booked.v1`.
//!
//! The connector knows its external format and the normalized model, nothing else: no SQL, no
//! other connector.

pub mod booking;
pub mod csv;
pub mod encoding;
pub mod pickup;
pub mod xml;

use gsko_model::{Event, EventData, RejectedRecord, Teryt};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

pub use booking::{
    run_booking, BookingError, BookingFormat, BookingWriter, ElixirOptions, Written, BOOKING_QUEUE,
};
pub use pickup::{
    fetch_url, import_file, import_inbox, FetchError, ImportError, ImportOptions, ImportOutcome,
    ImportReport, TenantDirs,
};

/// XML namespace of format version 1 of the export.
pub const NAMESPACE_V1: &str = "urn:gsko:radix-export:1";
/// Value of the root's `format-version` attribute this reader understands.
pub const FORMAT_VERSION: &str = "1";

/// The CloudEvents `source` of everything this connector publishes for a tenant.
pub fn event_source(tenant: &Teryt) -> String {
    format!("/gsko/radix/{tenant}")
}

/// Whether an export is a complete snapshot or only the records changed since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    Full,
    Incremental,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Full => "full",
            ExportKind::Incremental => "incremental",
        }
    }

    pub fn parse(s: &str) -> Option<ExportKind> {
        match s {
            "full" => Some(ExportKind::Full),
            "incremental" => Some(ExportKind::Incremental),
            _ => None,
        }
    }
}

/// What a file says about itself before its first record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportHeader {
    pub tenant: Teryt,
    pub kind: ExportKind,
    /// The exporter's own id of this export run, when it gives one.
    pub export_id: Option<String>,
    pub generated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The identity of a file being read: every rejection names it, so an admin can find the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// File name as received (no directory).
    pub name: String,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
}

/// One accepted record, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedRecord {
    pub data: EventData,
    /// The source's version of the record (the projector keeps the highest).
    pub source_version: i64,
    /// 1-based line where the record starts.
    pub line: u64,
}

/// What a [`RecordSource`] yields: a record, or why one could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceItem {
    Record(Box<NormalizedRecord>),
    Rejected(Box<RejectedRecord>),
}

/// A file-level problem: the file as a whole cannot be imported (it goes to `failed/`), or could
/// not be read at all (it stays where it is).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}, line {line}: {reason}")]
    Header {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file}: export is for tenant {found}, but was delivered to tenant {expected}")]
    TenantMismatch {
        file: String,
        expected: Teryt,
        found: Teryt,
    },
    #[error("{file}: {reason}")]
    Config { file: String, reason: String },
}

impl FileError {
    /// True when the file itself is bad (header, tenant, configuration) and must go to
    /// `failed/`; false when it merely could not be read now (it stays in the inbox).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, FileError::Io { .. })
    }
}

/// A file format adapter: yields one record at a time. Adding a format (DBF, JSON Lines …)
/// means implementing this trait; pickup, inspect and the error report stay as they are.
pub trait RecordSource {
    fn header(&self) -> &ExportHeader;

    /// The next record, `Ok(None)` at the end. `Err` only for I/O failures reading the file;
    /// every problem with the content is a [`SourceItem::Rejected`].
    fn next_item(&mut self) -> Result<Option<SourceItem>, FileError>;

    /// Why reading stopped before the end of the file (e.g. XML not well-formed), if it did.
    /// The records yielded before still count.
    fn stopped_early(&self) -> Option<&str>;
}

/// SHA-256 of everything a reader yields, lowercase hex. Streams: memory stays flat.
pub fn sha256_hex<R: std::io::Read>(mut r: R) -> std::io::Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Opens an XML export file as a [`RecordSource`] (buffered, streaming).
pub fn open_xml(
    path: &Path,
    expected_tenant: Option<&Teryt>,
) -> Result<xml::XmlSource<std::io::BufReader<std::fs::File>>, FileError> {
    let meta = file_meta(path)?;
    let f = std::fs::File::open(path).map_err(|source| FileError::Io {
        file: meta.name.clone(),
        source,
    })?;
    xml::XmlSource::new(
        std::io::BufReader::with_capacity(64 * 1024, f),
        meta,
        expected_tenant,
    )
}

/// Name and checksum of a file (reads it once).
pub fn file_meta(path: &Path) -> Result<FileMeta, FileError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let f = std::fs::File::open(path).map_err(|source| FileError::Io {
        file: name.clone(),
        source,
    })?;
    let sha256 = sha256_hex(std::io::BufReader::new(f)).map_err(|source| FileError::Io {
        file: name.clone(),
        source,
    })?;
    Ok(FileMeta { name, sha256 })
}

/// Turns a source item into the event it is published as. Every event of one file carries the
/// file's checksum as correlation id, so the events of one import can be found together.
pub fn item_to_event(item: SourceItem, tenant: &Teryt, correlation: &str) -> Event {
    let source = event_source(tenant);
    match item {
        SourceItem::Record(r) => Event::new(source, tenant.clone(), r.source_version, r.data)
            .with_correlation(correlation),
        // A rejection is not a version of any record: 0 keeps it from shadowing anything.
        SourceItem::Rejected(r) => {
            Event::new(source, tenant.clone(), 0, EventData::RecordRejected(*r))
                .with_correlation(correlation)
        }
    }
}

/// Counts of an inspection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InspectSummary {
    pub accepted: u64,
    pub rejected: u64,
}

/// `gsko inspect radix FILE`: writes, as JSON lines, the CloudEvents an import of `source` would
/// publish (accepted records and `record-rejected` events), touching nothing else. The caller
/// opens the source (XML via [`open_xml`], CSV via [`csv::CsvSource`]).
pub fn inspect<S: RecordSource, W: Write>(
    source: &mut S,
    file: &FileMeta,
    out: &mut W,
) -> Result<InspectSummary, FileError> {
    let tenant = source.header().tenant.clone();
    let mut summary = InspectSummary::default();
    let io = |source| FileError::Io {
        file: file.name.clone(),
        source,
    };
    while let Some(item) = source.next_item()? {
        match &item {
            SourceItem::Record(_) => summary.accepted += 1,
            SourceItem::Rejected(_) => summary.rejected += 1,
        }
        let ev = item_to_event(item, &tenant, &file.sha256);
        out.write_all(&ev.to_json()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(summary)
}

/// Convenience for the CLI: inspects an XML export file.
pub fn inspect_xml_file<W: Write>(path: &Path, out: &mut W) -> Result<InspectSummary, FileError> {
    let mut src = open_xml(path, None)?;
    let meta = src.file().clone();
    inspect(&mut src, &meta, out)
}
