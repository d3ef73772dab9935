//! Bank statements (MT940) into settled payments (spec §4.2, §4.3, §4.5, §5).
//!
//! The bank drops the tenant's daily statements into `<directory>/inbox/`; [`run_inbox`] imports
//! each file ([`import_statement`]) and moves it to `processed/` (or `failed/`). Every entry of
//! a file is handled on its own, and nothing stops the rest of the file:
//!
//! | entry | what happens |
//! |---|---|
//! | credit (`:61:` `C`) to a virtual account of a tax account of the tenant | a [`Payment`] (channel `bank_transfer`), settled through [`PaymentStore::settle`]: the `payment.settled` event and the `payment.book` command are queued in the outbox in the same transaction that claims the payment id |
//! | the same credit seen in another file (the id is already claimed) | `payment.unmatched`, reason `duplicate` |
//! | credit to a valid NRB (in the tenant's range or not) that no tax account has | `payment.unmatched`, reason `unknown_virtual_account` |
//! | credit with no virtual account that is not a gateway payout | `payment.unmatched`, reason `unidentified`, with the title so an admin can book it by hand |
//! | gateway payout (Przelewy24, PayU; the bank connector's [`IdentifyRules`]) | counted in [`StatementReport::payouts`]; not a payment of its own, because its payments were settled one by one from the gateway's notifications |
//! | debit, reversal | counted, nothing else |
//! | malformed entry or field, balances that do not add up, a `:86:` in no configured layout | `import.record-rejected` naming file, line and field, with the raw text |
//!
//! The report lists each gateway payout with its gateway, reference and amount;
//! [`crate::payout::reconcile_payouts`] then matches it against the gateway's batch report
//! (P24 `report/batch/details`; spec §4.5 point 2) and the daemon runs it after each import.
//! Titles are not matched to tax accounts here (the store has no title-token lookup): a credit
//! without a virtual account goes to an admin.
//!
//! # Payment ids
//!
//! A statement credit's id is `bank-` + the first 24 hex digits of SHA-256 over the statement
//! account (`:25:`), the statement reference (`:20:`), the bank reference (or, when the bank
//! writes none, the entry's type code, customer reference and details), the value date, the
//! amount and the entry's index within its statement (rejected entries count, so a corrected
//! file gives the good entries the same ids). It is 29 ASCII characters (the ledger echoes it
//! back, so it must fit 35), the same whenever the same statement is imported again, whichever
//! file carries it, and is what [`PaymentStore::settle`] claims once per tenant ever. An
//! unmatched credit carries the same id, so a re-import does not list it twice (the view keeps
//! the first); a duplicate gets an id of its own, derived from the original id and the file.
//!
//! # Dates
//!
//! `paid_on` is the entry's **value date**. Ordynacja podatkowa art. 60 § 1 pkt 2 makes the
//! legal payment date of a transfer the day the *payer's* account was debited, which a
//! statement does not carry; the value date is the closest date it has, and for a transfer
//! within the same bank the two are equal. `received_on` is the entry (booking) date, or the
//! value date when the bank writes none.
//!
//! # Crash safety
//!
//! At least once, nothing lost, nothing settled twice:
//! - a payment is settled by claiming its id and queueing its messages in one transaction, so
//!   importing a file again can never settle its payments a second time;
//! - before a file is imported, [`run_inbox`] writes `.gsko-imported/<sha256>.started`; after
//!   the whole file was imported, `.gsko-imported/<sha256>` (the report, as JSON); only then is
//!   the file moved to `processed/`. A file whose content was imported already is moved without
//!   importing it again; a file whose import was interrupted (a crash, a store failure) is
//!   imported again from the start, and then a payment that is already settled is counted as
//!   [`StatementReport::already_settled`], not reported as a duplicate. (The price: a genuine
//!   duplicate of another file that an interrupted import had not reached yet is not reported
//!   either; its money was settled once, from the other file.)
//! - unmatched and rejected messages have stable ids and keys, so queueing them again is
//!   harmless;
//! - when the store fails, the file stays in the inbox and is imported again on the next run.
//!
//! Files are read twice (once for the SHA-256, once to parse), so the bank (or the transfer
//! job) must put a file into `inbox/` only once it is complete: write it under a name starting
//! with `.`, which is skipped, and rename it. Only one process may run [`run_inbox`] on a
//! directory at a time (the daemon's scheduler takes care of that).
//!
//! # Privacy
//!
//! Logs carry the tenant, the file name and counts, never amounts, names, account numbers or
//! titles. The events and the report do carry them (an admin needs them): the report's
//! `rejected` strings quote the parser's reasons and must not be logged verbatim.

use crate::PaymentService;
use chrono::{Datelike, NaiveDate};
use gsko_bank::identify::{nrb_from_bban, sort_code_valid};
use gsko_bank::layout86::COUNTERPARTY_ACCOUNT_FIELDS;
use gsko_bank::{
    identify_with, Charset, Gateway, Identification, IdentifyRules, Layout86, Mark,
    MbankCollectLayout, Mt940Error, Mt940Reader, ParseOptions, Record, SeparatedLayout,
    StatementHeader, Transaction, UnidentifiedReason, VirtualAccountDirectory,
};
use gsko_config::BankConfig;
use gsko_model::{
    Amount, Event, EventData, Nrb, Payment, PaymentChannel, PaymentItem, RejectedRecord, Teryt,
    UnmatchedPayment, UnmatchedReason,
};
use gsko_store::{PaymentStore, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory (under the bank directory) of the per-file import markers.
pub const MARKER_DIR: &str = ".gsko-imported";

/// How to read one tenant's bank statements.
#[derive(Clone)]
pub struct StatementOptions {
    /// Charset and `:86:` layouts of the bank's files.
    pub parse: ParseOptions,
    /// Gateway payout patterns (title patterns are not used: see the module docs).
    pub rules: IdentifyRules,
    /// BBAN prefixes (sort code + the municipality's client code) of the tenant's virtual
    /// accounts, to turn a payer id (mBank `ID IPH`) into the full virtual NRB. Empty: the
    /// statement account's first `24 − length of the payer id` digits, which is how the
    /// bank builds them (spec §4.2).
    pub virtual_prefixes: Vec<String>,
}

impl fmt::Debug for StatementOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatementOptions")
            .field("charset", &self.parse.charset)
            .field(
                "layouts",
                &self
                    .parse
                    .layouts
                    .iter()
                    .map(|l| l.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("gateway_rules", &self.rules.gateways.len())
            .field("virtual_prefixes", &self.virtual_prefixes)
            .finish()
    }
}

impl StatementOptions {
    /// The given parse options, the default gateway rules, prefixes from the statements.
    pub fn new(parse: ParseOptions) -> Self {
        StatementOptions {
            parse,
            rules: IdentifyRules::default(),
            virtual_prefixes: Vec::new(),
        }
    }

    /// From a tenant's `[bank]` section: `layout` `separated` (PKO BP `~`, Pekao `^`, ING `<`
    /// subfields) or `mbank` (mBank Collect), and the charset of the files.
    pub fn from_config(cfg: &BankConfig) -> Result<Self, String> {
        let layouts: Vec<Arc<dyn Layout86>> = match cfg.layout.as_str() {
            "separated" => vec![
                Arc::new(SeparatedLayout::pko_bp()),
                Arc::new(SeparatedLayout::pekao()),
                Arc::new(SeparatedLayout::ing()),
            ],
            "mbank" => vec![Arc::new(MbankCollectLayout)],
            other => {
                return Err(format!(
                    "bank.layout: {other:?} is not one of separated, mbank"
                ))
            }
        };
        let charset = Charset::from_name(&cfg.charset).ok_or_else(|| {
            format!(
                "bank.charset: {:?} is not supported for bank statements (cp852, cp1250, iso-8859-2, utf-8)",
                cfg.charset
            )
        })?;
        Ok(StatementOptions::new(
            ParseOptions::default()
                .with_charset(charset)
                .with_layouts(layouts),
        ))
    }
}

/// A gateway payout seen on the statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayoutLine {
    pub gateway: Gateway,
    /// The payout (batch, report) reference from the title.
    pub reference: String,
    pub amount: Amount,
    pub value_date: NaiveDate,
    /// `file:line` of the entry.
    pub source: String,
}

/// What one statement file contained and what became of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatementReport {
    /// File name as received.
    pub file: String,
    pub file_sha256: String,
    /// The same content was imported before: the file was moved without importing it again
    /// (every count is zero).
    pub already_imported: bool,
    /// Statements (`:20:` … `:62F:`) read.
    pub statements: u64,
    /// Credit entries read (`:61:` `C`); each is settled, already settled, unmatched or a
    /// payout.
    pub credits: u64,
    /// Payments settled now (each queued `payment.settled` and `payment.book`).
    pub settled: u64,
    /// Payments an earlier, interrupted import of this same file had settled.
    pub already_settled: u64,
    /// Credits settled before from another file or statement (also counted in `unmatched`).
    pub duplicates: u64,
    /// Credits queued as `payment.unmatched` (unknown virtual account, unidentified, duplicate).
    pub unmatched: u64,
    /// Gateway payouts, for reconciliation with the gateways' batch reports.
    pub payouts: Vec<PayoutLine>,
    pub debits: u64,
    /// Reversals (`RC`, `RD`): counted, not booked.
    pub reversals: u64,
    /// `file:line: field X: reason` of every rejected entry or field (may quote the entry:
    /// do not log).
    pub rejected: Vec<String>,
}

/// A statement file that could not be imported at all. Problems inside a readable file are
/// reported per entry instead (see [`StatementReport::rejected`]).
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error("{file}: cannot read the statement file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not an MT940 statement (no tag such as :20: found)")]
    NotMt940 { file: String },
    /// The store failed; the file stays in the inbox and is imported again on the next run.
    #[error(
        "{file}: the store failed during the import, the file will be imported again: {source}"
    )]
    Store {
        file: String,
        #[source]
        source: StoreError,
    },
    /// Imported, but the file could not be moved out of the inbox (or the marker not written).
    #[error("{file}: {action}: {source}")]
    Inbox {
        file: String,
        action: String,
        #[source]
        source: std::io::Error,
    },
}

impl StatementError {
    /// Whether the file was left in the inbox to be tried again (rather than moved to
    /// `failed/`).
    pub fn retried(&self) -> bool {
        matches!(
            self,
            StatementError::Store { .. } | StatementError::Inbox { .. }
        )
    }
}

/// Imports one MT940 file into the tenant's payments. See the module docs for what becomes
/// of each entry. Err only when the file cannot be read at all (or the store fails).
///
/// This function keeps no record of the files it imported: importing the same file a second
/// time reports its payments as duplicates. [`run_inbox`] keeps that record.
pub async fn import_statement(
    path: &Path,
    tenant: &Teryt,
    store: &dyn PaymentStore,
    options: &StatementOptions,
) -> Result<StatementReport, StatementError> {
    import_statement_with(path, tenant, store, options, false).await
}

/// [`import_statement`], saying whether an earlier import of this same file may have been
/// interrupted (`resumed`): then a payment whose id is already claimed was settled by that
/// earlier import and is not a duplicate.
pub async fn import_statement_with(
    path: &Path,
    tenant: &Teryt,
    store: &dyn PaymentStore,
    options: &StatementOptions,
    resumed: bool,
) -> Result<StatementReport, StatementError> {
    let name = file_name(path);
    let sha = file_sha256(path)
        .await
        .map_err(|source| StatementError::Read {
            file: name.clone(),
            source,
        })?;
    import_file(path, &name, &sha, tenant, store, options, resumed).await
}

/// Imports every file in `dir/inbox/` (by name; names starting with `.` are skipped as
/// incomplete) and moves each to `dir/processed/`, or to `dir/failed/` with a
/// `<name>.error.txt` beside it when it cannot be read. A file whose content was imported
/// before is moved without importing it again. A file is left in the inbox when the store
/// fails. One result per file, in order.
pub async fn run_inbox(
    dir: &Path,
    tenant: &Teryt,
    store: &dyn PaymentStore,
    options: &StatementOptions,
) -> Vec<Result<StatementReport, StatementError>> {
    let inbox = dir.join("inbox");
    let markers = dir.join(MARKER_DIR);
    let mut results = Vec::new();
    let names = match list_inbox(&inbox).await {
        Ok(n) => n,
        Err(source) => {
            results.push(Err(StatementError::Inbox {
                file: inbox.display().to_string(),
                action: "cannot list the inbox".into(),
                source,
            }));
            return results;
        }
    };
    for name in names {
        let path = inbox.join(&name);
        let result = run_one(dir, &path, &name, &markers, tenant, store, options).await;
        if let Err(e) = &result {
            tracing::warn!(tenant = %tenant, file = %name, retried = e.retried(), "bank statement file not imported");
        }
        results.push(result);
    }
    results
}

async fn run_one(
    dir: &Path,
    path: &Path,
    name: &str,
    markers: &Path,
    tenant: &Teryt,
    store: &dyn PaymentStore,
    options: &StatementOptions,
) -> Result<StatementReport, StatementError> {
    let inbox_err = |action: &str, source: std::io::Error| StatementError::Inbox {
        file: name.to_owned(),
        action: action.to_owned(),
        source,
    };
    let sha = match file_sha256(path).await {
        Ok(s) => s,
        Err(source) => {
            let e = StatementError::Read {
                file: name.to_owned(),
                source,
            };
            fail(dir, path, name, &e).await?;
            return Err(e);
        }
    };
    let done = markers.join(&sha);
    let started = markers.join(format!("{sha}.started"));
    if tokio::fs::try_exists(&done)
        .await
        .map_err(|e| inbox_err("cannot check the import marker", e))?
    {
        move_to(dir, path, name, "processed", &sha)
            .await
            .map_err(|e| inbox_err("cannot move the file to processed/", e))?;
        tracing::info!(tenant = %tenant, file = %name, "bank statement file imported before; moved without importing it again");
        return Ok(StatementReport {
            file: name.to_owned(),
            file_sha256: sha,
            already_imported: true,
            ..StatementReport::default()
        });
    }
    let resumed = tokio::fs::try_exists(&started)
        .await
        .map_err(|e| inbox_err("cannot check the import marker", e))?;
    if !resumed {
        write_marker(markers, &started, b"")
            .await
            .map_err(|e| inbox_err("cannot write the import marker", e))?;
    }
    match import_file(path, name, &sha, tenant, store, options, resumed).await {
        Ok(report) => {
            let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
            write_marker(markers, &done, &json)
                .await
                .map_err(|e| inbox_err("cannot write the import marker", e))?;
            move_to(dir, path, name, "processed", &sha)
                .await
                .map_err(|e| inbox_err("cannot move the file to processed/", e))?;
            Ok(report)
        }
        Err(e) if e.retried() => Err(e),
        Err(e) => {
            fail(dir, path, name, &e).await?;
            Err(e)
        }
    }
}

/// Moves a file that cannot be imported to `failed/`, with the reason beside it.
async fn fail(
    dir: &Path,
    path: &Path,
    name: &str,
    error: &StatementError,
) -> Result<(), StatementError> {
    let inbox_err = |source| StatementError::Inbox {
        file: name.to_owned(),
        action: "cannot move the file to failed/".into(),
        source,
    };
    let target = move_to(dir, path, name, "failed", "")
        .await
        .map_err(inbox_err)?;
    let mut note = target.into_os_string();
    note.push(".error.txt");
    tokio::fs::write(&note, format!("{error}\n"))
        .await
        .map_err(inbox_err)
}

/// File names in the inbox, sorted; hidden files (uploads in progress) and directories skipped.
async fn list_inbox(inbox: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut entries = match tokio::fs::read_dir(inbox).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        if !entry.file_type().await?.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Renames `path` into `dir/<sub>/`, never over an existing file (banks reuse names): the
/// name, else the name with the start of the file's hash, else with a counter.
async fn move_to(
    dir: &Path,
    path: &Path,
    name: &str,
    sub: &str,
    sha: &str,
) -> std::io::Result<PathBuf> {
    let target_dir = dir.join(sub);
    tokio::fs::create_dir_all(&target_dir).await?;
    let short = sha.get(..12).unwrap_or(sha);
    let mut candidates = vec![name.to_owned()];
    if !short.is_empty() {
        candidates.push(format!("{name}.{short}"));
    }
    let mut n = 1u32;
    loop {
        let candidate = match candidates.get((n - 1) as usize) {
            Some(c) => c.clone(),
            None => format!("{name}.{n}"),
        };
        let target = target_dir.join(&candidate);
        if !tokio::fs::try_exists(&target).await? {
            tokio::fs::rename(path, &target).await?;
            return Ok(target);
        }
        n += 1;
    }
}

/// Writes a marker durably: a temporary file, synced, renamed into place.
async fn write_marker(markers: &Path, path: &Path, content: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(markers).await?;
    let (markers, path, content) = (markers.to_owned(), path.to_owned(), content.to_vec());
    tokio::task::spawn_blocking(move || {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &content)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        // Make the rename itself durable (best effort: not every platform can open a dir).
        if let Ok(d) = std::fs::File::open(&markers) {
            if d.sync_all().is_err() {
                tracing::debug!("the marker directory cannot be synced on this platform");
            }
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// SHA-256 of a file, hex, read in a blocking thread.
async fn file_sha256(path: &Path) -> std::io::Result<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path)?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Reads the file in a blocking thread (the reader streams; memory stays flat) and handles
/// its records here as they come.
async fn import_file(
    path: &Path,
    name: &str,
    sha: &str,
    tenant: &Teryt,
    store: &dyn PaymentStore,
    options: &StatementOptions,
    resumed: bool,
) -> Result<StatementReport, StatementError> {
    let read_err = |source| StatementError::Read {
        file: name.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(256);
    let (file_name, parse) = (name.to_owned(), options.parse.clone());
    let producer = tokio::task::spawn_blocking(move || {
        for item in Mt940Reader::new(BufReader::new(file), file_name, parse) {
            if sender.blocking_send(item).is_err() {
                break;
            }
        }
    });
    let mut import = Import {
        tenant,
        store,
        options,
        file: name,
        sha,
        resumed,
        report: StatementReport {
            file: name.to_owned(),
            file_sha256: sha.to_owned(),
            ..StatementReport::default()
        },
        statement: None,
        cache: HashMap::new(),
        anything: false,
    };
    let store_err = |source| StatementError::Store {
        file: name.to_owned(),
        source,
    };
    while let Some(item) = receiver.recv().await {
        match item {
            Ok(Record::Header(h)) => import.header(&h),
            Ok(Record::Transaction(tx)) => import.entry(*tx).await.map_err(store_err)?,
            Ok(Record::Trailer(_)) => {
                import.anything = true;
                import.report.statements += 1;
                import.statement = None;
            }
            Err(Mt940Error::Io { source, .. }) => return Err(read_err(source)),
            Err(e) => import.reject(e).await.map_err(store_err)?,
        }
    }
    producer.await.map_err(|e| {
        read_err(std::io::Error::other(format!(
            "the MT940 reader failed: {e}"
        )))
    })?;
    if !import.anything {
        return Err(StatementError::NotMt940 {
            file: name.to_owned(),
        });
    }
    let r = &import.report;
    tracing::debug!(
        tenant = %tenant,
        file = %name,
        statements = r.statements,
        credits = r.credits,
        settled = r.settled,
        already_settled = r.already_settled,
        duplicates = r.duplicates,
        unmatched = r.unmatched,
        payouts = r.payouts.len(),
        debits = r.debits,
        rejected = r.rejected.len(),
        "bank statement file read"
    );
    Ok(import.report)
}

/// The statement being read.
struct Current {
    /// `:25:` as an NRB, when it is one.
    account: Option<Nrb>,
    /// `:25:` as written, for the payment id.
    account_key: String,
    reference: String,
    /// Entries (accepted or rejected) seen so far in this statement.
    entries: u64,
}

struct Import<'a> {
    tenant: &'a Teryt,
    store: &'a dyn PaymentStore,
    options: &'a StatementOptions,
    file: &'a str,
    sha: &'a str,
    resumed: bool,
    report: StatementReport,
    statement: Option<Current>,
    /// Virtual account → tax account, per file (a taxpayer often pays several installments).
    cache: HashMap<String, Option<String>>,
    /// Whether the file held anything MT940 at all.
    anything: bool,
}

/// How a credit was attributed.
enum Attribution {
    Account { nrb: Nrb, account_id: String },
    Payout { gateway: Gateway, reference: String },
    UnknownVirtual { nrb: Nrb, in_range: bool },
    Unidentified { why: String },
}

impl Import<'_> {
    fn source(&self) -> String {
        format!("/gsko/bank/{}", self.tenant)
    }

    fn correlation(&self) -> String {
        format!("mt940:{}", self.sha)
    }

    fn header(&mut self, h: &StatementHeader) {
        self.anything = true;
        self.statement = Some(Current {
            account: h.account.clone(),
            account_key: h
                .account
                .as_ref()
                .map(|a| a.as_str().to_owned())
                .or_else(|| h.account_raw.clone())
                .unwrap_or_default(),
            reference: h.reference.clone(),
            entries: 0,
        });
    }

    /// Position of the next entry in its statement (0-based).
    fn next_index(&mut self) -> u64 {
        match self.statement.as_mut() {
            Some(s) => {
                s.entries += 1;
                s.entries - 1
            }
            None => 0,
        }
    }

    async fn entry(&mut self, tx: Transaction) -> Result<(), StoreError> {
        self.anything = true;
        let index = self.next_index();
        match tx.mark {
            Mark::Credit => {}
            Mark::Debit => {
                self.report.debits += 1;
                return Ok(());
            }
            Mark::ReversalCredit | Mark::ReversalDebit => {
                self.report.reversals += 1;
                return Ok(());
            }
        }
        self.report.credits += 1;
        let payment_id = self.payment_id(&tx, index);
        match self.attribute(&tx).await? {
            Attribution::Account { nrb, account_id } => {
                let payment = Payment {
                    payment_id: payment_id.clone(),
                    channel: PaymentChannel::BankTransfer,
                    amount: tx.amount,
                    // OP art. 60 wants the day the payer's account was debited, which a
                    // statement does not carry; the value date is the closest it has.
                    paid_on: tx.value_date,
                    received_on: tx.entry_date.unwrap_or(tx.value_date),
                    items: vec![PaymentItem {
                        account_id,
                        liability_id: None,
                        installment_seq: None,
                        amount: tx.amount,
                    }],
                    external_ref: external_ref(&tx),
                    virtual_account: Some(nrb.clone()),
                    title: title(&tx),
                };
                let messages = PaymentService::settlement_messages(self.tenant, &payment);
                if self
                    .store
                    .settle(self.tenant, &payment_id, None, &messages)
                    .await?
                {
                    self.report.settled += 1;
                } else if self.resumed {
                    self.report.already_settled += 1;
                } else {
                    self.report.duplicates += 1;
                    let id = duplicate_id(&payment_id, self.sha);
                    let detail = format!(
                        "the credit of {} zł to virtual account {} was already settled as payment {payment_id} (from another file or statement); this copy is not booked",
                        tx.amount,
                        nrb.as_str()
                    );
                    self.unmatched(&tx, id, UnmatchedReason::Duplicate, detail, Some(nrb))
                        .await?;
                }
            }
            Attribution::Payout { gateway, reference } => {
                self.report.payouts.push(PayoutLine {
                    gateway,
                    reference,
                    amount: tx.amount,
                    value_date: tx.value_date,
                    source: format!("{}:{}", self.file, tx.line),
                });
            }
            Attribution::UnknownVirtual { nrb, in_range } => {
                let detail = format!(
                    "a credit of {} zł to account {}, {}, which no tax account of the tenant has",
                    tx.amount,
                    nrb.as_str(),
                    if in_range {
                        "a virtual account in the tenant's range"
                    } else {
                        "a valid account number outside the tenant's virtual-account range"
                    }
                );
                self.unmatched(
                    &tx,
                    payment_id,
                    UnmatchedReason::UnknownVirtualAccount,
                    detail,
                    Some(nrb),
                )
                .await?;
            }
            Attribution::Unidentified { why } => {
                let detail = format!(
                    "a credit of {} zł with no virtual account of the tenant ({why}); book it by hand from the title",
                    tx.amount
                );
                self.unmatched(&tx, payment_id, UnmatchedReason::Unidentified, detail, None)
                    .await?;
            }
        }
        Ok(())
    }

    /// `bank-` + 24 hex digits of SHA-256 over what identifies the entry (module docs).
    fn payment_id(&self, tx: &Transaction, index: u64) -> String {
        let (account, reference) = self
            .statement
            .as_ref()
            .map(|s| (s.account_key.as_str(), s.reference.as_str()))
            .unwrap_or(("", tx.statement.as_str()));
        let entry_ref = match &tx.bank_reference {
            Some(r) => format!("ref:{r}"),
            None => format!(
                "entry:{}/{}/{}/{}",
                tx.type_code,
                tx.customer_reference,
                tx.supplementary.as_deref().unwrap_or_default(),
                tx.details_raw.as_deref().unwrap_or_default()
            ),
        };
        let mut h = Sha256::new();
        for part in [
            "gsko-mt940-entry/1",
            account,
            reference,
            &entry_ref,
            &tx.value_date.to_string(),
            &tx.amount.grosze().to_string(),
            &index.to_string(),
        ] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        format!("bank-{}", &hex::encode(h.finalize())[..24])
    }

    async fn attribute(&mut self, tx: &Transaction) -> Result<Attribution, StoreError> {
        let account = self.statement.as_ref().and_then(|s| s.account.clone());
        let candidates = virtual_candidates(tx, &self.options.virtual_prefixes, account.as_ref());
        for nrb in &candidates {
            let found = match self.cache.get(nrb.as_str()) {
                Some(f) => f.clone(),
                None => {
                    let f = self
                        .store
                        .account_by_virtual_account(self.tenant, nrb)
                        .await?;
                    self.cache.insert(nrb.as_str().to_owned(), f.clone());
                    f
                }
            };
            if let Some(account_id) = found {
                return Ok(Attribution::Account {
                    nrb: nrb.clone(),
                    account_id,
                });
            }
        }
        // No directory: this only asks the gateway rules (and says why nothing matched).
        let why = match identify_with(tx, &VirtualAccountDirectory::new(), &self.options.rules) {
            Identification::GatewayPayout { gateway, reference } => {
                return Ok(Attribution::Payout { gateway, reference })
            }
            Identification::Unidentified {
                reason: UnidentifiedReason::UnknownTitleToken { rule, .. },
            } => {
                format!("the title matches the {rule} pattern, which is not matched automatically")
            }
            _ => "no virtual account, gateway or known title".to_owned(),
        };
        if let Some(nrb) = candidates.into_iter().next() {
            let in_range = in_range(&nrb, &self.options.virtual_prefixes, account.as_ref());
            return Ok(Attribution::UnknownVirtual { nrb, in_range });
        }
        Ok(Attribution::Unidentified { why })
    }

    async fn unmatched(
        &mut self,
        tx: &Transaction,
        payment_id: String,
        reason: UnmatchedReason,
        detail: String,
        virtual_account: Option<Nrb>,
    ) -> Result<(), StoreError> {
        self.report.unmatched += 1;
        let data = UnmatchedPayment {
            payment_id: payment_id.clone(),
            channel: PaymentChannel::BankTransfer,
            amount: tx.amount,
            paid_on: Some(tx.value_date),
            reason,
            detail,
            source: format!("{}:{}", self.file, tx.line),
            external_ref: external_ref(tx),
            virtual_account,
            title: title(tx),
            raw: raw_entry(tx),
        };
        let event = Event::new(
            self.source(),
            self.tenant.clone(),
            1,
            EventData::PaymentUnmatched(data),
        )
        .with_stable_id(&payment_id)
        .with_correlation(self.correlation());
        self.store.enqueue(&[event]).await
    }

    async fn reject(&mut self, e: Mt940Error) -> Result<(), StoreError> {
        if is_entry_error(&e) {
            self.next_index();
        }
        let (line, statement) = e
            .location()
            .map(|l| (l.line.max(1), l.statement.clone()))
            .unwrap_or((1, String::new()));
        let field = e.field().unwrap_or("file").to_owned();
        let (record_type, reason, record_id, raw) = match &e {
            Mt940Error::Balance {
                opening,
                credits,
                debits,
                computed,
                closing,
                ..
            } => (
                "statement".to_owned(),
                format!("balances do not add up: opening {opening} + credits {credits} - debits {debits} = {computed}, but the closing balance is {closing}"),
                (!statement.is_empty()).then(|| statement.clone()),
                e.to_string(),
            ),
            Mt940Error::Field { problem, raw, .. } => (
                record_type(&field),
                problem.clone(),
                None,
                raw.clone(),
            ),
            Mt940Error::Encoding {
                charset,
                offset,
                raw,
                ..
            } => (
                record_type(&field),
                format!("byte {offset} of the line is not valid {charset}; is the bank's charset configured correctly?"),
                None,
                raw.clone(),
            ),
            Mt940Error::UnknownLayout86 {
                tried,
                raw,
                transaction,
                ..
            } => (
                record_type(&field),
                format!("no configured layout recognises the entry details (tried: {tried}); the entry is not booked"),
                transaction.bank_reference.clone(),
                raw.clone(),
            ),
            Mt940Error::Io { .. } => ("file".to_owned(), e.to_string(), None, String::new()),
        };
        let line_text = format!("{}:{line}: field {field}: {reason}", self.file);
        self.report.rejected.push(line_text);
        let key = format!("{}/{line}/{field}", self.sha);
        let data = RejectedRecord {
            file: self.file.to_owned(),
            file_sha256: self.sha.to_owned(),
            line: line as u64,
            record_type,
            record_id,
            field: Some(field),
            reason,
            raw,
        };
        let event = Event::new(
            self.source(),
            self.tenant.clone(),
            1,
            EventData::RecordRejected(data),
        )
        .with_stable_id(&key)
        .with_correlation(self.correlation());
        self.store.enqueue(&[event]).await
    }
}

/// Whether the error stands for one `:61:` entry (so it takes an index in its statement).
fn is_entry_error(e: &Mt940Error) -> bool {
    match e {
        Mt940Error::UnknownLayout86 { .. } => true,
        Mt940Error::Field { field, .. } | Mt940Error::Encoding { field, .. } => {
            field.starts_with(":61:") || field.starts_with(":86:")
        }
        _ => false,
    }
}

/// `mt940:<tag>` of a field name such as `:61: amount` or `:86: (pko-bp)`.
fn record_type(field: &str) -> String {
    let tag: String = field
        .trim_start_matches(':')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    if tag.is_empty() {
        "statement".to_owned()
    } else {
        format!("mt940:{tag}")
    }
}

/// Id of the duplicate sighting of a settled payment in one file.
fn duplicate_id(payment_id: &str, file_sha: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"gsko-mt940-duplicate/1\x1f");
    h.update(payment_id.as_bytes());
    h.update([0x1f]);
    h.update(file_sha.as_bytes());
    format!("bank-{}", &hex::encode(h.finalize())[..24])
}

/// The bank's reference of the entry: `//` reference, else the bank's transaction number
/// (mBank `TNR`), else the customer reference when it is one.
fn external_ref(tx: &Transaction) -> Option<String> {
    tx.bank_reference
        .clone()
        .or_else(|| {
            tx.details
                .as_ref()
                .and_then(|d| d.bank_transaction_id.clone())
        })
        .or_else(|| (tx.customer_reference != "NONREF").then(|| tx.customer_reference.clone()))
}

fn title(tx: &Transaction) -> Option<String> {
    tx.details
        .as_ref()
        .map(|d| d.title.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The entry in MT940 form (the `:61:` rebuilt from its parts, the `:86:` as read).
fn raw_entry(tx: &Transaction) -> String {
    let (y, m, d) = (
        tx.value_date.year().rem_euclid(100),
        tx.value_date.month(),
        tx.value_date.day(),
    );
    let entry = tx
        .entry_date
        .map(|e| format!("{:02}{:02}", e.month(), e.day()))
        .unwrap_or_default();
    let mark = match tx.mark {
        Mark::Credit => "C",
        Mark::Debit => "D",
        Mark::ReversalCredit => "RC",
        Mark::ReversalDebit => "RD",
    };
    let g = tx.amount.grosze();
    let mut s = format!(
        ":61:{y:02}{m:02}{d:02}{entry}{mark}{}{},{:02}{}{}",
        tx.funds_code.map(String::from).unwrap_or_default(),
        g / 100,
        g % 100,
        tx.type_code,
        tx.customer_reference
    );
    if let Some(r) = &tx.bank_reference {
        s.push_str("//");
        s.push_str(r);
    }
    if let Some(sup) = &tx.supplementary {
        s.push('\n');
        s.push_str(sup);
    }
    if let Some(d) = &tx.details_raw {
        s.push_str("\n:86:");
        s.push_str(d);
    }
    s
}

/// Every 26-digit run in a text (NRBs are printed compactly in MT940).
fn runs_of_26(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 26)
}

/// The NRBs an entry may have been paid to, best evidence first: the layout's virtual-account
/// field, the payer id within the tenant's range, any account number outside the
/// counterparty's fields. Each passes both checks of spec §4.1 (mod 97 and the sort code's
/// digit); the counterparty's own account and the statement account are never candidates.
fn virtual_candidates(tx: &Transaction, prefixes: &[String], statement: Option<&Nrb>) -> Vec<Nrb> {
    let mut raw: Vec<String> = Vec::new();
    let details = tx.details.as_ref();
    if let Some(d) = details {
        raw.extend(d.virtual_account.clone());
        if let Some(pid) = &d.payer_id {
            if prefixes.is_empty() {
                if let Some(bban) = statement.and_then(|s| s.as_str().get(2..)) {
                    if pid.len() < 24 {
                        raw.extend(nrb_from_bban(&format!("{}{pid}", &bban[..24 - pid.len()])));
                    }
                }
            } else {
                for p in prefixes {
                    let width = 24usize.saturating_sub(p.len());
                    if pid.len() <= width {
                        raw.extend(nrb_from_bban(&format!("{p}{pid:0>width$}")));
                    }
                }
            }
        }
        for (code, text) in &d.subfields {
            if COUNTERPARTY_ACCOUNT_FIELDS.contains(&code.as_str())
                || code == "Z RACH."
                || code == "NA RACH."
            {
                continue;
            }
            raw.extend(runs_of_26(text).map(str::to_owned));
        }
    } else if let Some(text) = &tx.details_raw {
        raw.extend(runs_of_26(text).map(str::to_owned));
    }
    let counterparty = details.and_then(|d| d.counterparty_account.as_deref());
    let mut out: Vec<Nrb> = Vec::new();
    for c in raw {
        if Some(c.as_str()) == counterparty || Some(c.as_str()) == statement.map(|s| s.as_str()) {
            continue;
        }
        let Ok(nrb) = Nrb::parse(&c) else { continue };
        if sort_code_valid(nrb.as_str()) && !out.contains(&nrb) {
            out.push(nrb);
        }
    }
    out
}

/// Whether an NRB lies in the tenant's virtual-account range: a configured prefix, or else
/// the statement account's bank (sort code), where the municipality's virtual accounts live.
fn in_range(nrb: &Nrb, prefixes: &[String], statement: Option<&Nrb>) -> bool {
    let bban = &nrb.as_str()[2..];
    if !prefixes.is_empty() {
        return prefixes.iter().any(|p| bban.starts_with(p.as_str()));
    }
    statement
        .and_then(|s| s.as_str().get(2..10))
        .is_some_and(|sort| bban.starts_with(sort))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_from_field_names() {
        assert_eq!(record_type(":61: amount"), "mt940:61");
        assert_eq!(record_type(":86: (pko-bp)"), "mt940:86");
        assert_eq!(record_type(":62F:"), "mt940:62F");
        assert_eq!(record_type(""), "statement");
    }

    #[test]
    fn duplicate_ids_are_short_and_ascii() {
        let id = duplicate_id("bank-0123456789abcdef01234567", "00ff");
        assert!(id.starts_with("bank-") && id.len() == 29 && id.is_ascii());
    }
}
