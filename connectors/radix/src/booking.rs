//! Booking payments in RADIX: the `pl.gsko.payment.book.v1` command becomes a file in the
//! ledger's import directory, exactly once per payment.
//!
//! RADIX has no API; like every ledger of its kind it imports payment files ("automatyczne
//! rozksięgowanie wpłat"). Two formats are offered ([`BookingFormat`]):
//! - [`BookingFormat::Xml`]: GSKO's own contract `urn:gsko:radix-payments:1`
//!   (`schemas/radix/radix-payments-v1.xsd`, example in `schemas/radix/examples/`), one
//!   `<payment>` with its items, amounts in integer grosze; file `<payment id>.xml`;
//! - [`BookingFormat::Elixir0`]: the bank clearing format every Polish ledger imports
//!   (payments spec §4.4), one record per item; file `<payment id>.pli`. The record's title
//!   carries the payment id on its first line and `account liability/installment` on the next
//!   (see [`ElixirOptions`] for the accounts and the code page).
//!
//! Either way the ledger copies the payment id into the `payment` attribute of the postings of
//! its next export, which the XML reader turns into `pl.gsko.payment.booked.v1`.
//!
//! # Exactly once
//! One file per payment, named after the payment id (ASCII `[A-Za-z0-9._-]`, at most 35
//! characters, not beginning with `.`; anything else is refused, never rewritten). The file is
//! written under a temporary name beginning with `.` in the same directory (the ledger must
//! ignore such names), fsynced, linked to its final name without replacing anything (a hard
//! link fails if the name exists, so two daemons racing on one payment write one file), and the
//! directory is fsynced. Before writing, the directory and its subdirectories [`DONE_SUBDIRS`]
//! (`imported/`, `processed/`: where a ledger moves the files it has read) are searched for the
//! payment's file; if it is there, nothing is written ([`Written::AlreadyThere`]). A ledger
//! that deletes imported files instead of moving them loses this protection; the `payment`
//! attribute of its export still lets GSKO see a double booking.
//!
//! # The consumer
//! [`run_booking`] takes `pl.gsko.payment.book.v1` commands from [`BOOKING_QUEUE`]: a booking
//! for a configured tenant is written, then acknowledged; a message that does not decode, is
//! not a booking command or is for a tenant without a writer is parked with the reason; a
//! payment that cannot be written in the format (bad id, items not summing up, a character the
//! code page lacks) is parked; an I/O error is retried down the ladder. Logs carry tenant,
//! message id and payment id, never amounts or names.

use chrono::NaiveDate;
use gsko_bus::{BusError, Delivery, Subscription};
use gsko_elixir::{ElixirPayment, ElixirWriter, TextEncoding, CREDIT_TRANSFER, LINE_CHARS};
use gsko_model::{Event, EventData, Nrb, Payment, PaymentChannel, Teryt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The RADIX connector's queue on the commands exchange.
pub const BOOKING_QUEUE: &str = gsko_bus::topology::BOOKING_QUEUE;
/// Its binding: booking commands of every tenant.
pub const BOOKING_BINDING: &str = "pl.gsko.payment.book.#";
/// XML namespace of format version 1 of the booking file.
pub const PAYMENTS_NAMESPACE_V1: &str = "urn:gsko:radix-payments:1";
/// Longest payment id: one line of an Elixir-0 title.
pub const MAX_PAYMENT_ID_CHARS: usize = 35;
/// Subdirectories of the import directory where the ledger moves files it has read; a payment
/// whose file is in one of them is not written again.
pub const DONE_SUBDIRS: [&str; 2] = ["imported", "processed"];

/// The file format the ledger imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum BookingFormat {
    /// `urn:gsko:radix-payments:1`, `<payment id>.xml`.
    #[default]
    #[serde(rename = "xml")]
    Xml,
    /// Elixir-0 records, `<payment id>.pli`.
    #[serde(rename = "elixir0", alias = "elixir-0")]
    Elixir0,
}

impl BookingFormat {
    /// File name extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            BookingFormat::Xml => "xml",
            BookingFormat::Elixir0 => "pli",
        }
    }
}

/// What an Elixir-0 record needs besides the payment (ignored for XML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElixirOptions {
    /// The municipality's collection (tax) account: the beneficiary when the payment names no
    /// virtual account (gateway payments).
    pub collection_account: Nrb,
    /// The beneficiary's name and address as the ledger expects it (e.g. "Urząd Gminy Łąck").
    pub beneficiary_name: String,
    /// Ordering account per gateway: the gateway's payout account the money comes from (from
    /// the gateway's contract). A gateway payment whose channel has none is refused (parked)
    /// with a configuration error.
    pub gateway_accounts: HashMap<PaymentChannel, Nrb>,
    /// Ordering account for bank transfers. The command does not carry the payer's account, so
    /// the record names this one; `None`: the collection account.
    pub bank_transfer_ordering: Option<Nrb>,
    /// Code page of the file: UTF-8 (default), Windows-1250 or CP852 as the ledger reads it.
    pub charset: TextEncoding,
}

impl ElixirOptions {
    /// Options with only the collection account and the beneficiary's name: UTF-8, no gateway
    /// accounts.
    pub fn new(collection_account: Nrb, beneficiary_name: impl Into<String>) -> Self {
        ElixirOptions {
            collection_account,
            beneficiary_name: beneficiary_name.into(),
            gateway_accounts: HashMap::new(),
            bank_transfer_ordering: None,
            charset: TextEncoding::Utf8,
        }
    }

    /// Adds a gateway's payout account.
    pub fn with_gateway(mut self, channel: PaymentChannel, payout_account: Nrb) -> Self {
        self.gateway_accounts.insert(channel, payout_account);
        self
    }

    pub fn with_charset(mut self, charset: TextEncoding) -> Self {
        self.charset = charset;
        self
    }
}

/// What [`BookingWriter::write`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The file was written (and is durable) at this path.
    New(PathBuf),
    /// A file for this payment was already there (in the import directory or one of
    /// [`DONE_SUBDIRS`]); nothing was written.
    AlreadyThere(PathBuf),
}

impl Written {
    pub fn path(&self) -> &Path {
        match self {
            Written::New(p) | Written::AlreadyThere(p) => p,
        }
    }
}

/// Why a payment was not written. Messages name the payment and the rule, never amounts or
/// names (they go to logs and park reasons).
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("payment id {id:?} cannot name a booking file: {reason}")]
    InvalidPaymentId { id: String, reason: String },
    #[error("payment {payment_id}: {reason}")]
    InvalidPayment { payment_id: String, reason: String },
    #[error("payment {payment_id} cannot be written as Elixir-0: {reason}")]
    Unrepresentable { payment_id: String, reason: String },
    #[error("booking configuration: {0}")]
    Config(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BookingError {
    /// True when writing again cannot help (the message is parked); false for I/O errors
    /// (retried).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, BookingError::Io { .. })
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BookingError {
    let path = path.to_owned();
    move |source| BookingError::Io {
        action,
        path,
        source,
    }
}

/// Writes one tenant's payments into its ledger's import directory.
#[derive(Debug, Clone)]
pub struct BookingWriter {
    dir: PathBuf,
    tenant: Teryt,
    format: BookingFormat,
    elixir: Option<ElixirOptions>,
}

impl BookingWriter {
    /// `dir`: the ledger's import directory (created on first write if missing). `elixir` is
    /// required for [`BookingFormat::Elixir0`] and ignored for XML.
    pub fn new(
        dir: impl Into<PathBuf>,
        tenant: Teryt,
        format: BookingFormat,
        elixir: Option<ElixirOptions>,
    ) -> Result<BookingWriter, BookingError> {
        if format == BookingFormat::Elixir0 && elixir.is_none() {
            return Err(BookingError::Config(format!(
                "tenant {tenant}: the Elixir-0 format needs the collection account (elixir options)"
            )));
        }
        if let Some(o) = &elixir {
            if o.beneficiary_name.contains(['"', '|', '\r', '\n']) {
                return Err(BookingError::Config(format!(
                    "tenant {tenant}: the beneficiary name contains a double quote, '|' or a line break"
                )));
            }
            if o.charset.encode(&o.beneficiary_name).is_none() {
                return Err(BookingError::Config(format!(
                    "tenant {tenant}: the beneficiary name cannot be written in {}",
                    o.charset.name()
                )));
            }
        }
        Ok(BookingWriter {
            dir: dir.into(),
            tenant,
            format,
            elixir,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn tenant(&self) -> &Teryt {
        &self.tenant
    }

    pub fn format(&self) -> BookingFormat {
        self.format
    }

    /// The file name of a payment (checks the id).
    pub fn file_name(&self, payment_id: &str) -> Result<String, BookingError> {
        check_payment_id(payment_id)?;
        Ok(format!("{payment_id}.{}", self.format.extension()))
    }

    /// Where the payment's file is, if it was written before (the import directory first, then
    /// [`DONE_SUBDIRS`]).
    pub fn existing(&self, payment_id: &str) -> Result<Option<PathBuf>, BookingError> {
        let name = self.file_name(payment_id)?;
        let candidates = std::iter::once(self.dir.join(&name))
            .chain(DONE_SUBDIRS.iter().map(|d| self.dir.join(d).join(&name)));
        for p in candidates {
            match fs::symlink_metadata(&p) {
                Ok(_) => return Ok(Some(p)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("checking", &p)(e)),
            }
        }
        Ok(None)
    }

    /// The file's content, without writing anything.
    pub fn render(&self, p: &Payment) -> Result<Vec<u8>, BookingError> {
        check_payment_id(&p.payment_id)?;
        check_payment(p)?;
        match self.format {
            BookingFormat::Xml => Ok(render_xml(&self.tenant, p, chrono::Utc::now())),
            BookingFormat::Elixir0 => {
                let o = self.elixir.as_ref().ok_or_else(|| {
                    BookingError::Config("Elixir-0 without elixir options".into())
                })?;
                render_elixir(o, p)
            }
        }
    }

    /// Writes the payment's file unless it exists (module docs: exactly once, durable).
    pub fn write(&self, p: &Payment) -> Result<Written, BookingError> {
        let name = self.file_name(&p.payment_id)?;
        if let Some(existing) = self.existing(&p.payment_id)? {
            return Ok(Written::AlreadyThere(existing));
        }
        let bytes = self.render(p)?;
        fs::create_dir_all(&self.dir).map_err(io_err("creating", &self.dir))?;
        let final_path = self.dir.join(&name);
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}.part",
            std::process::id(),
            uuid_like()
        ));
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io_err("creating", &tmp))?;
            f.write_all(&bytes).map_err(io_err("writing", &tmp))?;
            f.sync_all().map_err(io_err("syncing", &tmp))?;
            drop(f);
            // A hard link never replaces an existing name: of two writers racing on one
            // payment, one wins and the other sees AlreadyExists.
            match fs::hard_link(&tmp, &final_path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                // File systems without hard links: the check above is all we have.
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    fs::rename(&tmp, &final_path)
                        .map(|()| true)
                        .map_err(io_err("renaming", &tmp))
                }
                Err(e) => Err(io_err("linking", &final_path)(e)),
            }
        })();
        // The temporary name goes in every case (after a rename it is already gone).
        if let Err(e) = fs::remove_file(&tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %tmp.display(), error = %e, "cannot remove a temporary booking file");
            }
        }
        let new = written?;
        sync_dir(&self.dir)?;
        Ok(if new {
            Written::New(final_path)
        } else {
            Written::AlreadyThere(final_path)
        })
    }
}

impl BookingWriter {
    /// Removes temporary files (`.<name>.<pid>.<n>.part`) older than `age` that a writer
    /// killed mid-write left behind. The ledger never reads them (hidden names), so they only
    /// take space; another live writer's file is younger than any sensible `age`.
    pub fn remove_stale_parts(&self, age: std::time::Duration) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with('.') && name.ends_with(".part")) {
                continue;
            }
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed >= age);
            if old && fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// A unique suffix for temporary names (time and a counter; no randomness needed).
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), BookingError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), BookingError> {
    Ok(())
}

/// Payment ids name files and fill one Elixir-0 title line: ASCII letters, digits, `.`, `_`,
/// `-`, at most 35 characters, not beginning with `.` (hidden and temporary names).
pub fn check_payment_id(id: &str) -> Result<(), BookingError> {
    let bad = |reason: &str| {
        Err(BookingError::InvalidPaymentId {
            // The id may be anything; keep what is shown short and printable.
            id: id.chars().take(64).collect(),
            reason: reason.to_owned(),
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > MAX_PAYMENT_ID_CHARS {
        return bad("it is longer than 35 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    if id.starts_with('.') {
        return bad("it must not begin with '.'");
    }
    Ok(())
}

fn check_payment(p: &Payment) -> Result<(), BookingError> {
    let bad = |reason: String| {
        Err(BookingError::InvalidPayment {
            payment_id: p.payment_id.clone(),
            reason,
        })
    };
    if p.items.is_empty() {
        return bad("it has no items".into());
    }
    let mut sum: i64 = 0;
    for (i, it) in p.items.iter().enumerate() {
        let n = i + 1;
        if it.amount.grosze() <= 0 {
            return bad(format!("item {n} has no amount"));
        }
        if it.installment_seq.is_some() && it.liability_id.is_none() {
            return bad(format!(
                "item {n} names an installment without its liability"
            ));
        }
        check_ledger_id(&p.payment_id, n, "account", &it.account_id)?;
        if let Some(l) = &it.liability_id {
            check_ledger_id(&p.payment_id, n, "liability", l)?;
        }
        sum = sum.saturating_add(it.amount.grosze());
    }
    if sum != p.amount.grosze() {
        return bad("the items do not sum to the payment's amount".into());
    }
    Ok(())
}

/// Account and liability ids are the ledger's own (the export's `Id`: 1-64 characters, no
/// leading, trailing or double spaces).
fn check_ledger_id(
    payment_id: &str,
    item: usize,
    field: &str,
    v: &str,
) -> Result<(), BookingError> {
    let ok = !v.is_empty()
        && v.chars().count() <= 64
        && v.trim() == v
        && !v.contains("  ")
        && !v.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(BookingError::InvalidPayment {
            payment_id: payment_id.to_owned(),
            reason: format!("item {item}: the {field} id is not a ledger id (1-64 characters, single inner spaces)"),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// XML

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            // Not allowed in XML 1.0 at all.
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The booking file of one payment (`urn:gsko:radix-payments:1`).
pub fn render_xml(tenant: &Teryt, p: &Payment, created: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<payments xmlns=\"{PAYMENTS_NAMESPACE_V1}\" version=\"1\" tenant=\"{tenant}\" created=\"{}\">\n",
        created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    ));
    s.push_str(&format!(
        "  <payment id=\"{}\" channel=\"{}\" amount=\"{}\" paid-on=\"{}\" received-on=\"{}\"",
        escape(&p.payment_id),
        p.channel.as_str(),
        p.amount.grosze(),
        date(p.paid_on),
        date(p.received_on)
    ));
    if let Some(r) = p.external_ref.as_deref().filter(|r| !r.trim().is_empty()) {
        s.push_str(&format!(" external-ref=\"{}\"", escape(r)));
    }
    if let Some(v) = &p.virtual_account {
        s.push_str(&format!(" virtual-account=\"{}\"", v.as_str()));
    }
    s.push_str(">\n");
    if let Some(t) = p.title.as_deref().filter(|t| !t.trim().is_empty()) {
        s.push_str(&format!("    <title>{}</title>\n", escape(t)));
    }
    for it in &p.items {
        s.push_str(&format!("    <item account=\"{}\"", escape(&it.account_id)));
        if let Some(l) = &it.liability_id {
            s.push_str(&format!(" liability=\"{}\"", escape(l)));
        }
        if let Some(n) = it.installment_seq {
            s.push_str(&format!(" installment=\"{n}\""));
        }
        s.push_str(&format!(" amount=\"{}\"/>\n", it.amount.grosze()));
    }
    s.push_str("  </payment>\n</payments>\n");
    s.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Elixir-0

fn channel_party(c: PaymentChannel) -> &'static str {
    match c {
        PaymentChannel::Przelewy24 => "Przelewy24 (PayPro SA)",
        PaymentChannel::Payu => "PayU SA",
        PaymentChannel::BankTransfer => "Przelew bankowy",
    }
}

/// The title of one item's record: line 1 the payment id, then `account liability/installment`
/// (wrapped onto further lines when longer than 35 characters, never cut inside an id).
fn elixir_title(p: &Payment, item: usize) -> Result<String, BookingError> {
    let it = &p.items[item];
    let mut words = vec![it.account_id.clone()];
    if let Some(l) = &it.liability_id {
        words.push(match it.installment_seq {
            Some(n) => format!("{l}/{n}"),
            None => l.clone(),
        });
    }
    for w in &words {
        if w.chars().count() > LINE_CHARS
            || w.contains(char::is_whitespace)
            || w.contains(['"', '|'])
        {
            return Err(BookingError::Unrepresentable {
                payment_id: p.payment_id.clone(),
                reason: format!(
                    "item {}: an account or liability id with spaces, '\"', '|' or over {LINE_CHARS} characters does not fit a title line",
                    item + 1
                ),
            });
        }
    }
    Ok(format!("{}\n{}", p.payment_id, words.join(" ")))
}

/// One Elixir-0 record per item (module docs; [`ElixirOptions`]).
pub fn render_elixir(o: &ElixirOptions, p: &Payment) -> Result<Vec<u8>, BookingError> {
    let ordering = match p.channel {
        PaymentChannel::BankTransfer => o
            .bank_transfer_ordering
            .clone()
            .unwrap_or_else(|| o.collection_account.clone()),
        c => o.gateway_accounts.get(&c).cloned().ok_or_else(|| {
            BookingError::Config(format!(
                "no payout account is configured for gateway {} (elixir options)",
                c.as_str()
            ))
        })?,
    };
    let beneficiary = p
        .virtual_account
        .clone()
        .unwrap_or_else(|| o.collection_account.clone());
    let mut w = ElixirWriter::new(Vec::new(), o.charset);
    for (i, it) in p.items.iter().enumerate() {
        let rec = ElixirPayment {
            code: CREDIT_TRANSFER,
            date: p.paid_on,
            amount: it.amount,
            ordering_account: ordering.clone(),
            beneficiary_account: beneficiary.clone(),
            ordering_party: channel_party(p.channel).to_owned(),
            beneficiary_party: o.beneficiary_name.clone(),
            title: elixir_title(p, i)?,
            classification: gsko_elixir::STANDARD_CLASSIFICATION.to_owned(),
        };
        w.write(&rec).map_err(|e| BookingError::Unrepresentable {
            payment_id: p.payment_id.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(w.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The consumer

/// How [`run_booking`] takes its batches.
#[derive(Debug, Clone)]
pub struct BookingRunOptions {
    pub batch: usize,
    /// How long one wait for messages lasts; shutdown is noticed between waits.
    pub idle_wait: Duration,
    pub linger: Duration,
}

impl Default for BookingRunOptions {
    fn default() -> Self {
        BookingRunOptions {
            batch: 32,
            idle_wait: Duration::from_millis(500),
            linger: Duration::from_millis(20),
        }
    }
}

/// What a run did (for the caller's log and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookingStats {
    pub written: u64,
    pub already_there: u64,
    pub parked: u64,
    pub retried: u64,
}

/// What to do with one delivery.
enum Outcome {
    Ack(Written),
    Park(String),
    Retry(String),
}

/// Consumes [`BOOKING_QUEUE`] until `shutdown` turns true (or its sender is dropped), with the
/// default [`BookingRunOptions`]. Returns on a bus error (the caller resubscribes); everything
/// not acknowledged is redelivered and, being idempotent, written at most once.
pub async fn run_booking(
    sub: Box<dyn Subscription>,
    writers: BTreeMap<Teryt, BookingWriter>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<BookingStats, BusError> {
    run_booking_with(sub, writers, shutdown, BookingRunOptions::default()).await
}

/// [`run_booking`] with explicit batch options.
pub async fn run_booking_with(
    mut sub: Box<dyn Subscription>,
    writers: BTreeMap<Teryt, BookingWriter>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    opts: BookingRunOptions,
) -> Result<BookingStats, BusError> {
    let mut stats = BookingStats::default();
    for w in writers.values() {
        let n = w.remove_stale_parts(Duration::from_secs(600));
        if n > 0 {
            tracing::info!(tenant = %w.tenant(), removed = n, "removed temporary booking files left by an interrupted write");
        }
    }
    loop {
        if *shutdown.borrow() || shutdown.has_changed().is_err() {
            break;
        }
        let batch = sub
            .next_batch(opts.batch.max(1), opts.idle_wait, opts.linger)
            .await?;
        for d in batch {
            let message_id = d.message_id.clone().unwrap_or_default();
            match handle(&d, &writers).await {
                Outcome::Ack(w) => {
                    match &w {
                        Written::New(_) => stats.written += 1,
                        Written::AlreadyThere(_) => stats.already_there += 1,
                    }
                    sub.ack(vec![d]).await?;
                }
                Outcome::Park(reason) => {
                    tracing::warn!(message_id = %message_id, reason = %reason, "booking command parked");
                    stats.parked += 1;
                    sub.park(d, &reason).await?;
                }
                Outcome::Retry(reason) => {
                    tracing::warn!(message_id = %message_id, reason = %reason, "booking command retried");
                    stats.retried += 1;
                    sub.retry(d, &reason).await?;
                }
            }
        }
    }
    Ok(stats)
}

async fn handle(d: &Delivery, writers: &BTreeMap<Teryt, BookingWriter>) -> Outcome {
    let message_id = d.message_id.as_deref().unwrap_or("");
    let ev = match Event::from_json(&d.body) {
        Ok(ev) => ev,
        Err(e) => return Outcome::Park(format!("not a GSKO message: {e}")),
    };
    let tenant = ev.tenant.clone();
    let payment = match ev.data {
        EventData::PaymentBook(p) => p,
        other => {
            return Outcome::Park(format!(
                "{} is not a booking command (expected pl.gsko.payment.book.v1)",
                other.message_type().type_name()
            ))
        }
    };
    let Some(writer) = writers.get(&tenant) else {
        return Outcome::Park(format!("tenant {tenant} has no RADIX booking configured"));
    };
    let writer = writer.clone();
    let payment_id = payment.payment_id.clone();
    let result = match tokio::task::spawn_blocking(move || writer.write(&payment)).await {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(format!("writing task failed: {e}")),
    };
    match result {
        Ok(w) => {
            match &w {
                Written::New(path) => {
                    tracing::info!(tenant = %tenant, message_id, payment_id = %payment_id, file = %path.display(), "payment file written for the ledger")
                }
                Written::AlreadyThere(path) => {
                    tracing::info!(tenant = %tenant, message_id, payment_id = %payment_id, file = %path.display(), "payment file already there; not written again")
                }
            }
            Outcome::Ack(w)
        }
        Err(e) if e.is_permanent() => Outcome::Park(format!("tenant {tenant}: {e}")),
        Err(e) => Outcome::Retry(format!("tenant {tenant}: {e}")),
    }
}
