//! A simulated RADIX ledger that books GSKO's payment files and answers with an incremental
//! export, closing the loop "payment settled → booked in the ledger → the export confirms it".
//!
//! Like every simulator here it is a second, independent implementation: it reads the booking
//! files (`urn:gsko:radix-payments:1`, `schemas/radix/radix-payments-v1.xsd`, and Elixir-0
//! records) with its own code (quick-xml events and a hand-written field splitter), and shares
//! nothing with `gsko-radix` or `gsko-elixir`.
//!
//! [`LedgerSim::book`] takes
//! - the tenant's last export (the XML [`crate::radix`] writes, or an earlier output of this
//!   simulator; [`LedgerSim::book_after`] takes several, oldest first, when the last one is an
//!   incremental export that does not carry every account): tenant, accounts, balances, the
//!   highest record version, the payments already booked;
//! - the booking directory: every regular file not beginning with `.` (temporary names) is a
//!   booking file; `*.xml` is read as a GSKO booking file, `*.pli`, `*.txt` and `*.exl` as
//!   Elixir-0 (payment id = first 35 characters of the title's first line; the words of the
//!   next lines are the account and `liability/installment`; the record's date is the payment
//!   date). Subdirectories are ignored.
//!
//! and writes to `out_file` an incremental export (format v1, `kind="incremental"`) holding,
//! for each payment item, a posting of kind `payment` with `payment="<payment id>"`, the item's
//! liability and installment, value date = the payment date, the item's amount, a fresh id
//! (`WPL-<payment id>-<item number>`) and a version above every version seen; and for each
//! touched account a new balance (principal reduced by what was booked, the excess as
//! overpayment) with that version. The booked files are then moved to `imported/` in the
//! booking directory, so a file is booked once.
//!
//! A file that cannot be booked (unreadable, another tenant, an account the ledger does not
//! know, items that do not add up) stays where it is and is listed in the report with the
//! reason; a payment the previous export already names is not booked again (its file is moved
//! to `imported/` and listed as skipped). When nothing is booked no export is written.
//!
//! ```no_run
//! use gsko_sim::ledger::LedgerSim;
//! use std::path::Path;
//! let report = LedgerSim::book(
//!     Path::new("radix-1465011-full-1.xml"),
//!     Path::new("ledger-import/"),
//!     Path::new("inbox/radix-1465011-booked-1.xml"),
//! )?;
//! println!("{} payments booked", report.booked.len());
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::xml::{amount, escape};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

/// Namespace of the booking files the simulator reads.
const PAYMENTS_NS: &str = "urn:gsko:radix-payments:1";
/// Where booked files go.
pub const IMPORTED_DIR: &str = "imported";

/// A payment booked by one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedPayment {
    pub payment_id: String,
    /// Booking file it came from (name only).
    pub file: String,
    /// Ids of the postings written for it, one per item.
    pub postings: Vec<String>,
    pub amount_grosze: i64,
}

/// A booking file (or a payment in it) the run did not book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub file: String,
    pub reason: String,
}

/// What [`LedgerSim::book`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerReport {
    pub booked: Vec<BookedPayment>,
    pub skipped: Vec<SkippedFile>,
    /// The export written (`None` when nothing was booked).
    pub export: Option<PathBuf>,
    /// Version of every record of the export.
    pub version: i64,
    pub postings: usize,
    pub balances: usize,
}

/// The simulated ledger (stateless: its state is the exports it is given).
#[derive(Debug, Clone, Copy, Default)]
pub struct LedgerSim;

/// A balance as the export carries it, in grosze.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bal {
    principal: i64,
    interest: i64,
    costs: i64,
    overpayment: i64,
}

/// What the ledger knows from its exports.
#[derive(Debug, Default)]
struct LedgerState {
    tenant: Option<String>,
    accounts: BTreeSet<String>,
    balances: BTreeMap<String, Bal>,
    as_of: String,
    max_version: i64,
    posting_ids: BTreeSet<String>,
    booked_payments: BTreeSet<String>,
}

/// One item to book.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    account: String,
    liability: Option<String>,
    installment: Option<String>,
    grosze: i64,
}

/// One payment read from a booking file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SimPayment {
    id: String,
    /// YYYY-MM-DD
    paid_on: String,
    amount: i64,
    items: Vec<Item>,
    channel: String,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn attrs(e: &BytesStart) -> io::Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for a in e.attributes() {
        let a = a.map_err(|x| bad(format!("attribute: {x}")))?;
        let k = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let v = a
            .unescape_value()
            .map_err(|x| bad(format!("attribute {k}: {x}")))?
            .into_owned();
        m.insert(k, v);
    }
    Ok(m)
}

fn local(e: &BytesStart) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

/// "250.75" → 25075 (the export's decimal złoty), without floats.
fn parse_zloty(s: &str) -> io::Result<i64> {
    let (zl, gr) = match s.split_once('.') {
        Some((z, g)) => (z, g),
        None => (s, ""),
    };
    let ok = !zl.is_empty()
        && zl.bytes().all(|b| b.is_ascii_digit())
        && gr.len() <= 2
        && gr.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(bad(format!("{s:?} is not an amount")));
    }
    let zl: i64 = zl.parse().map_err(|_| bad(format!("{s:?} is too large")))?;
    let gr: i64 = match gr.len() {
        0 => 0,
        1 => gr.parse::<i64>().unwrap_or(0) * 10,
        _ => gr.parse().unwrap_or(0),
    };
    zl.checked_mul(100)
        .and_then(|v| v.checked_add(gr))
        .ok_or_else(|| bad(format!("{s:?} is too large")))
}

fn parse_grosze(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn valid_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (y, m, d) = (
        s[0..4].parse::<i32>(),
        s[5..7].parse::<u32>(),
        s[8..10].parse::<u32>(),
    );
    matches!((y, m, d), (Ok(y), Ok(m), Ok(d)) if crate::SimDate::new(y, m, d).is_some())
}

impl LedgerState {
    /// Reads one export (streaming) into the state; later exports override earlier records.
    fn read_export(&mut self, path: &Path) -> io::Result<()> {
        let f = fs::File::open(path)?;
        let mut r = Reader::from_reader(BufReader::new(f));
        let mut buf = Vec::new();
        loop {
            let ev = r
                .read_event_into(&mut buf)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            match ev {
                Event::Start(e) | Event::Empty(e) => {
                    let name = local(&e);
                    let a = attrs(&e)?;
                    if let Some(v) = a.get("version") {
                        if name != "radix-export" {
                            let v: i64 = v.parse().map_err(|_| bad(format!("version {v:?}")))?;
                            self.max_version = self.max_version.max(v);
                        }
                    }
                    match name.as_str() {
                        "radix-export" => {
                            let t = a.get("tenant").cloned().ok_or_else(|| bad("no tenant"))?;
                            if let Some(prev) = &self.tenant {
                                if prev != &t {
                                    return Err(bad(format!(
                                        "exports of two tenants ({prev}, {t})"
                                    )));
                                }
                            }
                            self.tenant = Some(t);
                        }
                        "account" => {
                            if let Some(id) = a.get("id") {
                                self.accounts.insert(id.clone());
                            }
                        }
                        "liability" => {
                            if let Some(acc) = a.get("account") {
                                self.accounts.insert(acc.clone());
                            }
                        }
                        "posting" => {
                            if let Some(id) = a.get("id") {
                                self.posting_ids.insert(id.clone());
                            }
                            if let Some(acc) = a.get("account") {
                                self.accounts.insert(acc.clone());
                            }
                            if let Some(p) = a.get("payment") {
                                self.booked_payments.insert(p.clone());
                            }
                        }
                        "balance" => {
                            let get = |k: &str| -> io::Result<i64> {
                                parse_zloty(a.get(k).map(String::as_str).unwrap_or(""))
                            };
                            let acc = a
                                .get("account")
                                .cloned()
                                .ok_or_else(|| bad("balance without account"))?;
                            self.accounts.insert(acc.clone());
                            self.balances.insert(
                                acc,
                                Bal {
                                    principal: get("principal")?,
                                    interest: get("interest")?,
                                    costs: get("costs")?,
                                    overpayment: get("overpayment")?,
                                },
                            );
                            if let Some(d) = a.get("as-of") {
                                if *d > self.as_of {
                                    self.as_of = d.clone();
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        if self.tenant.is_none() {
            return Err(bad(format!("{}: no <radix-export> root", path.display())));
        }
        Ok(())
    }
}

/// Reads a GSKO booking file (XML): the payments in it, or why it cannot be booked.
fn read_booking_xml(bytes: &[u8], tenant: &str) -> Result<Vec<SimPayment>, String> {
    let mut r = Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut out: Vec<SimPayment> = Vec::new();
    let mut seen_root = false;
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| format!("not well-formed XML: {e}"))?;
        match ev {
            Event::DocType(_) => return Err("DOCTYPE in a booking file".into()),
            Event::Start(e) | Event::Empty(e) => {
                let name = local(&e);
                let a = attrs(&e).map_err(|e| e.to_string())?;
                match name.as_str() {
                    "payments" => {
                        if a.get("xmlns").map(String::as_str) != Some(PAYMENTS_NS) {
                            return Err(format!("root is not in namespace {PAYMENTS_NS}"));
                        }
                        if a.get("version").map(String::as_str) != Some("1") {
                            return Err("unsupported booking file version".into());
                        }
                        if a.get("tenant").map(String::as_str) != Some(tenant) {
                            return Err(format!(
                                "booking file is for tenant {:?}, this ledger is {tenant}",
                                a.get("tenant")
                            ));
                        }
                        seen_root = true;
                    }
                    "payment" if seen_root => {
                        let req = |k: &str| {
                            a.get(k)
                                .cloned()
                                .ok_or_else(|| format!("payment without {k}"))
                        };
                        let paid_on = req("paid-on")?;
                        if !valid_iso_date(&paid_on) {
                            return Err("paid-on is not a date".into());
                        }
                        out.push(SimPayment {
                            id: req("id")?,
                            paid_on,
                            amount: parse_grosze(&req("amount")?)
                                .ok_or("payment amount is not grosze")?,
                            items: Vec::new(),
                            channel: req("channel")?,
                        });
                    }
                    "item" if seen_root => {
                        let p = out.last_mut().ok_or("item outside a payment")?;
                        p.items.push(Item {
                            account: a.get("account").cloned().ok_or("item without account")?,
                            liability: a.get("liability").cloned(),
                            installment: a.get("installment").cloned(),
                            grosze: a
                                .get("amount")
                                .and_then(|v| parse_grosze(v))
                                .ok_or("item amount is not grosze")?,
                        });
                    }
                    // The payer's title: the ledger keeps it, the simulator does not need it.
                    "title" => {}
                    other if !seen_root => {
                        return Err(format!("root element is <{other}>, expected <payments>"))
                    }
                    other => return Err(format!("unexpected element <{other}>")),
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err("no <payments> root".into());
    }
    if out.is_empty() {
        return Err("no payment in the file".into());
    }
    Ok(out)
}

/// Splits one Elixir-0 record into its fields (quoted fields have no escapes).
fn split_elixir(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Reads an Elixir-0 file: records with the same payment id (title line 1) are one payment.
fn read_booking_elixir(bytes: &[u8]) -> Result<Vec<SimPayment>, String> {
    // Only ASCII matters here (ids, digits); Polish letters in names may be in any code page.
    let text = String::from_utf8_lossy(bytes);
    let mut out: Vec<SimPayment> = Vec::new();
    for (n, line) in text.split("\r\n").enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f = split_elixir(line);
        if f.len() != 16 {
            return Err(format!("record {n}: {} fields, expected 16", f.len()));
        }
        if f[0] != "110" {
            return Err(format!(
                "record {n}: operation {} is not a credit transfer",
                f[0]
            ));
        }
        let d = &f[1];
        let date = if d.len() == 8 {
            format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8])
        } else {
            String::new()
        };
        if !valid_iso_date(&date) {
            return Err(format!("record {n}: date {d:?} is not YYYYMMDD"));
        }
        let grosze =
            parse_grosze(&f[2]).ok_or_else(|| format!("record {n}: amount is not grosze"))?;
        let lines: Vec<&str> = f[11].split('|').collect();
        let id: String = lines[0].trim().chars().take(35).collect();
        if id.is_empty() {
            return Err(format!(
                "record {n}: the title's first line (payment id) is empty"
            ));
        }
        let words: Vec<&str> = lines[1..]
            .iter()
            .flat_map(|l| l.split_whitespace())
            .collect();
        let account = words
            .first()
            .ok_or_else(|| format!("record {n}: the title names no account"))?
            .to_string();
        let (liability, installment) = match words.get(1) {
            None => (None, None),
            Some(w) => match w.rsplit_once('/') {
                Some((l, i)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => {
                    (Some(l.to_owned()), Some(i.to_owned()))
                }
                _ => (Some(w.to_string()), None),
            },
        };
        let item = Item {
            account,
            liability,
            installment,
            grosze,
        };
        match out.iter_mut().find(|p| p.id == id) {
            Some(p) => {
                if p.paid_on != date {
                    return Err(format!("record {n}: payment {id} has two dates"));
                }
                p.amount += grosze;
                p.items.push(item);
            }
            None => out.push(SimPayment {
                id,
                paid_on: date,
                amount: grosze,
                items: vec![item],
                channel: "elixir0".into(),
            }),
        }
    }
    if out.is_empty() {
        return Err("no record in the file".into());
    }
    Ok(out)
}

fn check_payment(p: &SimPayment, state: &LedgerState) -> Result<(), String> {
    if p.id.is_empty()
        || p.id.len() > 35
        || !p
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!("payment id {:?} is not a GSKO payment id", p.id));
    }
    if p.items.is_empty() {
        return Err(format!("payment {}: no items", p.id));
    }
    let sum: i64 = p.items.iter().map(|i| i.grosze).sum();
    if sum != p.amount {
        return Err(format!("payment {}: items do not sum to the amount", p.id));
    }
    for i in &p.items {
        if i.grosze <= 0 {
            return Err(format!("payment {}: an item without amount", p.id));
        }
        if !state.accounts.contains(&i.account) {
            return Err(format!(
                "payment {}: account {} is unknown to the ledger",
                p.id, i.account
            ));
        }
        if i.installment.is_some() && i.liability.is_none() {
            return Err(format!("payment {}: installment without liability", p.id));
        }
    }
    Ok(())
}

impl LedgerSim {
    /// Books the files of `booking_dir` against `previous_export` (module docs).
    pub fn book(
        previous_export: &Path,
        booking_dir: &Path,
        out_file: &Path,
    ) -> io::Result<LedgerReport> {
        LedgerSim::book_after(&[previous_export], booking_dir, out_file)
    }

    /// [`LedgerSim::book`] against several exports of the tenant, oldest first (a full export
    /// and the incremental ones after it).
    pub fn book_after(
        exports: &[&Path],
        booking_dir: &Path,
        out_file: &Path,
    ) -> io::Result<LedgerReport> {
        let mut state = LedgerState::default();
        for e in exports {
            state.read_export(e)?;
        }
        let tenant = state
            .tenant
            .clone()
            .ok_or_else(|| bad("no previous export given"))?;
        let mut report = LedgerReport {
            version: state.max_version + 1,
            ..LedgerReport::default()
        };
        let mut names: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(booking_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            names.push(entry.path());
        }
        names.sort();

        // (file, payments) to book; files to move.
        let mut to_book: Vec<(String, SimPayment)> = Vec::new();
        let mut to_move: Vec<PathBuf> = Vec::new();
        let mut ids_this_run: BTreeSet<String> = BTreeSet::new();
        for path in names {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    report.skipped.push(SkippedFile {
                        file: name,
                        reason: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            let parsed = match ext.as_str() {
                "xml" => read_booking_xml(&bytes, &tenant),
                "pli" | "txt" | "exl" => read_booking_elixir(&bytes),
                _ => Err("not a booking file (expected .xml, .pli, .txt or .exl)".into()),
            };
            let payments = match parsed {
                Ok(p) => p,
                Err(reason) => {
                    report.skipped.push(SkippedFile { file: name, reason });
                    continue;
                }
            };
            let mut fresh = Vec::new();
            let mut file_ok = true;
            for p in payments {
                if state.booked_payments.contains(&p.id) || ids_this_run.contains(&p.id) {
                    report.skipped.push(SkippedFile {
                        file: name.clone(),
                        reason: format!("payment {} is already booked", p.id),
                    });
                    continue;
                }
                if let Err(reason) = check_payment(&p, &state) {
                    report.skipped.push(SkippedFile {
                        file: name.clone(),
                        reason,
                    });
                    file_ok = false;
                    break;
                }
                fresh.push(p);
            }
            if !file_ok {
                continue;
            }
            for p in fresh {
                ids_this_run.insert(p.id.clone());
                to_book.push((name.clone(), p));
            }
            to_move.push(path);
        }

        let version = report.version;
        let mut postings = String::new();
        let mut touched: BTreeMap<String, Bal> = BTreeMap::new();
        let mut as_of = state.as_of.clone();
        for (file, p) in &to_book {
            let mut ids = Vec::new();
            for (n, it) in p.items.iter().enumerate() {
                let mut id = format!("WPL-{}-{}", p.id, n + 1);
                let mut k = 2;
                while state.posting_ids.contains(&id) {
                    id = format!("WPL-{}-{}-{k}", p.id, n + 1);
                    k += 1;
                }
                state.posting_ids.insert(id.clone());
                let mut line = Vec::new();
                write!(
                    line,
                    "    <posting id=\"{id}\" version=\"{version}\" account=\""
                )?;
                escape(&mut line, &it.account)?;
                write!(
                    line,
                    "\" kind=\"payment\" value-date=\"{}\" amount=\"",
                    p.paid_on
                )?;
                amount(&mut line, it.grosze)?;
                line.write_all(b"\"")?;
                if let Some(l) = &it.liability {
                    line.write_all(b" liability=\"")?;
                    escape(&mut line, l)?;
                    line.write_all(b"\"")?;
                    if let Some(i) = &it.installment {
                        line.write_all(b" installment=\"")?;
                        escape(&mut line, i)?;
                        line.write_all(b"\"")?;
                    }
                }
                write!(line, " payment=\"{}\">", p.id)?;
                writeln!(
                    line,
                    "<description>wpłata z pliku GSKO ({})</description></posting>",
                    p.channel
                )?;
                postings.push_str(&String::from_utf8_lossy(&line));
                ids.push(id);
                let b = touched.entry(it.account.clone()).or_insert_with(|| {
                    state.balances.get(&it.account).copied().unwrap_or_default()
                });
                let to_principal = it.grosze.min(b.principal);
                b.principal -= to_principal;
                b.overpayment += it.grosze - to_principal;
            }
            if p.paid_on > as_of {
                as_of = p.paid_on.clone();
            }
            report.booked.push(BookedPayment {
                payment_id: p.id.clone(),
                file: file.clone(),
                postings: ids,
                amount_grosze: p.amount,
            });
            report.postings += p.items.len();
        }

        if !report.booked.is_empty() {
            let mut balances = Vec::new();
            for (acc, b) in &touched {
                balances.write_all(b"    <balance account=\"")?;
                escape(&mut balances, acc)?;
                write!(
                    balances,
                    "\" version=\"{version}\" as-of=\"{as_of}\" principal=\""
                )?;
                amount(&mut balances, b.principal)?;
                balances.write_all(b"\" interest=\"")?;
                amount(&mut balances, b.interest)?;
                balances.write_all(b"\" costs=\"")?;
                amount(&mut balances, b.costs)?;
                balances.write_all(b"\" overpayment=\"")?;
                amount(&mut balances, b.overpayment)?;
                balances.write_all(b"\"/>\n")?;
            }
            report.balances = touched.len();
            let generated = now_rfc3339();
            let mut doc = Vec::new();
            doc.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
            writeln!(
                doc,
                "<!-- Simulated RADIX ledger: payments booked from GSKO's booking files. -->"
            )?;
            writeln!(
                doc,
                "<radix-export xmlns=\"urn:gsko:radix-export:1\" format-version=\"1\" tenant=\"{tenant}\" kind=\"incremental\" generated-at=\"{generated}\" export-id=\"LEDGER-SIM-{tenant}-{version}\">"
            )?;
            doc.write_all(b"  <postings>\n")?;
            doc.write_all(postings.as_bytes())?;
            doc.write_all(b"  </postings>\n  <balances>\n")?;
            doc.write_all(&balances)?;
            doc.write_all(b"  </balances>\n</radix-export>\n")?;
            write_atomically(out_file, &doc)?;
            report.export = Some(out_file.to_owned());
        }

        if !to_move.is_empty() {
            let imported = booking_dir.join(IMPORTED_DIR);
            fs::create_dir_all(&imported)?;
            for p in to_move {
                if let Some(name) = p.file_name() {
                    fs::rename(&p, imported.join(name))?;
                }
            }
        }
        Ok(report)
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Temporary name in the same directory, then rename: a pickup never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.part", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        fs::remove_file(&tmp).ok();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zloty_and_records_parse() {
        assert_eq!(parse_zloty("250.75").unwrap(), 25075);
        assert_eq!(parse_zloty("3.5").unwrap(), 350);
        assert_eq!(parse_zloty("0").unwrap(), 0);
        assert!(parse_zloty("1,00").is_err());
        let p = read_booking_elixir(
            b"110,20260314,11379,10202120,0,\"11\",\"22\",\"a\",\"b\",0,10202120,\"p24-1|A-1|L-1/2\",\"\",\"\",\"51\",\"\"\r\n",
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].id, "p24-1");
        assert_eq!(p[0].paid_on, "2026-03-14");
        assert_eq!(
            p[0].items,
            vec![Item {
                account: "A-1".into(),
                liability: Some("L-1".into()),
                installment: Some("2".into()),
                grosze: 11379
            }]
        );
    }
}
