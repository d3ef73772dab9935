//! Streaming MT940 reader with Polish banks' variants (spec §4.3).
//!
//! Two levels:
//! - [`Mt940Reader`] yields [`Record`]s — a statement header, each transaction, a statement
//!   trailer — one at a time and keeps only running totals, so memory stays flat whatever the
//!   number of entries (a municipality's main account can see 100,000 credits a day around a
//!   tax due date);
//! - [`parse_statements`] groups those records into whole [`Statement`]s, for callers that want
//!   a statement at a time.
//!
//! Bad input loses nothing and stops nothing: a malformed entry becomes an `Err` item carrying
//! its raw text (for the admin) and its location (file, line, statement reference, field), and
//! reading continues at the next `:61:` or statement. Balances are checked
//! (opening + credits − debits = closing) because a truncated or tampered file shows up there
//! first.
//!
//! Variants handled: CRLF or LF line ends, a UTF-8 BOM, `-` lines between statements, SWIFT
//! block headers (`{1:…}{2:…}{4:`) and `-}` trailers, `:60M:`/`:62M:` intermediate balances,
//! `:25:` with or without `/` and `PL`, an optional entry date and funds code in `:61:`, and the
//! charsets of [`Charset`].

use crate::charset::Charset;
use crate::layout86::{known_layouts, Details, Layout86};
use chrono::{Datelike, NaiveDate};
use gsko_model::{Amount, Nrb};
use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;
use std::io::BufRead;
use std::sync::Arc;

/// How to read one bank's files.
#[derive(Clone)]
pub struct ParseOptions {
    pub charset: Charset,
    /// Tried in order for each `:86:`; the first that recognises the text reads it.
    pub layouts: Vec<Arc<dyn Layout86>>,
}

impl Default for ParseOptions {
    /// UTF-8 and every layout the connector knows.
    fn default() -> Self {
        ParseOptions {
            charset: Charset::Utf8,
            layouts: known_layouts().into_iter().map(Arc::from).collect(),
        }
    }
}

impl ParseOptions {
    pub fn with_charset(mut self, charset: Charset) -> Self {
        self.charset = charset;
        self
    }
    /// Only the given layouts (a bank's configuration names its own).
    pub fn with_layouts(mut self, layouts: Vec<Arc<dyn Layout86>>) -> Self {
        self.layouts = layouts;
        self
    }
}

/// Where something was found: file, 1-based line, statement reference (`:20:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub statement: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: statement {:?}",
            self.file, self.line, self.statement
        )
    }
}

/// What went wrong, where, and (for entries) the raw text kept for the admin.
#[derive(Debug, thiserror::Error)]
pub enum Mt940Error {
    #[error("{file}: cannot read after line {line}: {source}")]
    Io {
        file: String,
        line: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: field {field}: {problem}")]
    Field {
        at: Location,
        field: String,
        problem: String,
        raw: String,
    },
    #[error("{at}: field {field}: byte {offset} of the line is not valid {charset}; is the bank's charset configured correctly?")]
    Encoding {
        at: Location,
        field: String,
        charset: &'static str,
        offset: usize,
        raw: String,
    },
    #[error(
        "{at}: field :86:: no configured layout recognises the entry details (tried: {tried})"
    )]
    UnknownLayout86 {
        at: Location,
        tried: String,
        raw: String,
        /// The entry as far as `:61:` says (amount, dates, references), for manual booking.
        transaction: Box<Transaction>,
    },
    #[error("{at}: field {field}: balances do not add up: opening {opening} + credits {credits} - debits {debits} = {computed}, but the closing balance is {closing}")]
    Balance {
        at: Location,
        field: String,
        opening: String,
        credits: String,
        debits: String,
        computed: String,
        closing: String,
    },
}

impl Mt940Error {
    /// The raw text of the rejected field or entry, if any.
    pub fn raw(&self) -> Option<&str> {
        match self {
            Mt940Error::Field { raw, .. }
            | Mt940Error::Encoding { raw, .. }
            | Mt940Error::UnknownLayout86 { raw, .. } => Some(raw),
            _ => None,
        }
    }
    pub fn location(&self) -> Option<&Location> {
        match self {
            Mt940Error::Field { at, .. }
            | Mt940Error::Encoding { at, .. }
            | Mt940Error::UnknownLayout86 { at, .. }
            | Mt940Error::Balance { at, .. } => Some(at),
            Mt940Error::Io { .. } => None,
        }
    }
    /// The field the error is about (`:61: amount`, `:62F:`, …).
    pub fn field(&self) -> Option<&str> {
        match self {
            Mt940Error::Field { field, .. }
            | Mt940Error::Encoding { field, .. }
            | Mt940Error::Balance { field, .. } => Some(field),
            Mt940Error::UnknownLayout86 { .. } => Some(":86:"),
            Mt940Error::Io { .. } => None,
        }
    }
}

/// Debit or credit side of a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Side {
    #[serde(rename = "C")]
    Credit,
    #[serde(rename = "D")]
    Debit,
}

/// A `:60F:`, `:62F:`, `:64:` or `:65:` balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub side: Side,
    pub date: NaiveDate,
    pub currency: String,
    pub amount: Amount,
    /// `true` for `:60M:`/`:62M:` (intermediate, the statement continues in another message).
    pub intermediate: bool,
}

impl Balance {
    /// Grosze, negative for a debit balance.
    pub fn signed(&self) -> i64 {
        match self.side {
            Side::Credit => self.amount.grosze(),
            Side::Debit => -self.amount.grosze(),
        }
    }
}

/// Debit/credit mark of a `:61:` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mark {
    #[serde(rename = "C")]
    Credit,
    #[serde(rename = "D")]
    Debit,
    /// Reversal of a credit: takes money out.
    #[serde(rename = "RC")]
    ReversalCredit,
    /// Reversal of a debit: brings money in.
    #[serde(rename = "RD")]
    ReversalDebit,
}

impl Mark {
    /// Whether the entry increases the balance.
    pub fn is_inflow(self) -> bool {
        matches!(self, Mark::Credit | Mark::ReversalDebit)
    }
}

/// One `:61:` entry with its `:86:` details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transaction {
    /// Statement reference (`:20:`).
    pub statement: String,
    /// Line of the `:61:` tag.
    pub line: usize,
    pub value_date: NaiveDate,
    pub entry_date: Option<NaiveDate>,
    pub mark: Mark,
    /// Third letter of the currency code (`N` for PLN) where the bank writes it.
    pub funds_code: Option<char>,
    pub amount: Amount,
    /// `N`/`F`/`S` + three characters: `NTRF`, `N641`, …
    pub type_code: String,
    /// Customer reference (often `NONREF`).
    pub customer_reference: String,
    /// Bank reference after `//`.
    pub bank_reference: Option<String>,
    /// Supplementary details (the line after `:61:`).
    pub supplementary: Option<String>,
    pub details: Option<Details>,
    /// `:86:` as read (continuation lines joined), for rules and for the admin.
    pub details_raw: Option<String>,
}

/// The start of a statement: everything before the first entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementHeader {
    pub file: String,
    pub line: usize,
    pub reference: String,
    pub related_reference: Option<String>,
    /// The statement account when `:25:` holds a valid NRB/IBAN.
    pub account: Option<Nrb>,
    pub account_raw: Option<String>,
    pub number: Option<String>,
    pub opening: Option<Balance>,
}

/// The end of a statement, with the totals the reader kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementTrailer {
    pub reference: String,
    pub line: usize,
    pub closing: Option<Balance>,
    pub available: Option<Balance>,
    pub forward_available: Vec<Balance>,
    /// A `:86:` that follows no `:61:` (statement-level information).
    pub info: Option<String>,
    pub credits: Amount,
    pub debits: Amount,
    pub entries: u64,
    /// Entries rejected as malformed (reported as `Err` items).
    pub rejected: u64,
    /// Opening + credits − debits = closing held. `false` if it did not, or if it could not be
    /// checked (a missing balance, or a rejected entry whose amount is unknown).
    pub balance_verified: bool,
}

/// One item of the record stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Header(StatementHeader),
    /// Boxed: an entry is several times the size of the other records.
    Transaction(Box<Transaction>),
    Trailer(StatementTrailer),
}

/// A whole statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub header: StatementHeader,
    pub transactions: Vec<Transaction>,
    pub trailer: StatementTrailer,
}

/// One tag with its continuation lines.
struct RawField {
    tag: String,
    line: usize,
    /// Decoded lines of the content (first line without the tag).
    lines: Vec<String>,
    raw: String,
    decode_error: Option<(usize, crate::charset::DecodeError)>,
}

enum Item {
    Field(RawField),
    End,
}

struct PendingTx {
    tx: Result<Transaction, Mt940Error>,
    has_details: bool,
}

struct Open {
    header: StatementHeader,
    header_emitted: bool,
    pending: Option<PendingTx>,
    credits: i64,
    debits: i64,
    entries: u64,
    rejected: u64,
    amounts_unknown: bool,
    /// The closing balance, its tag and its line.
    closing: Option<(Balance, String, usize)>,
    available: Option<Balance>,
    forward: Vec<Balance>,
    info: Option<String>,
}

/// Streams [`Record`]s out of an MT940 file.
pub struct Mt940Reader<R> {
    input: R,
    file: String,
    options: ParseOptions,
    line_no: usize,
    buf: Vec<u8>,
    lookahead: Option<(usize, Vec<u8>)>,
    eof: bool,
    open: Option<Open>,
    out: VecDeque<Result<Record, Mt940Error>>,
}

impl<R: BufRead> Mt940Reader<R> {
    pub fn new(input: R, file_name: impl Into<String>, options: ParseOptions) -> Self {
        Mt940Reader {
            input,
            file: file_name.into(),
            options,
            line_no: 0,
            buf: Vec::new(),
            lookahead: None,
            eof: false,
            open: None,
            out: VecDeque::new(),
        }
    }

    fn read_line(&mut self) -> std::io::Result<Option<(usize, Vec<u8>)>> {
        if let Some(l) = self.lookahead.take() {
            return Ok(Some(l));
        }
        self.buf.clear();
        let n = self.input.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let mut l = std::mem::take(&mut self.buf);
        while matches!(l.last(), Some(b'\n' | b'\r')) {
            l.pop();
        }
        if self.line_no == 1 && l.starts_with(b"\xEF\xBB\xBF") {
            l.drain(..3);
        }
        Ok(Some((self.line_no, l)))
    }

    fn tag_of(line: &[u8]) -> Option<(String, usize)> {
        // ":NN:" or ":NNa:"
        if line.first() != Some(&b':') {
            return None;
        }
        let end = line.iter().skip(1).position(|&b| b == b':')? + 1;
        let tag = &line[1..end];
        let ok = (tag.len() == 2 || tag.len() == 3)
            && tag[..2].iter().all(u8::is_ascii_digit)
            && tag.get(2).is_none_or(|b| b.is_ascii_uppercase());
        ok.then(|| (String::from_utf8_lossy(tag).into_owned(), end + 1))
    }

    fn is_end(line: &[u8]) -> bool {
        let t = line.trim_ascii();
        t == b"-" || t.starts_with(b"-}")
    }

    fn decode(&self, line: usize, bytes: &[u8], field: &mut RawField) -> String {
        match self.options.charset.decode(bytes) {
            Ok(s) => s,
            Err(e) => {
                if field.decode_error.is_none() {
                    field.decode_error = Some((line, e));
                }
                String::from_utf8_lossy(bytes).into_owned()
            }
        }
    }

    /// Next tag with its continuation lines, or a statement end, or `None` at end of file.
    fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        loop {
            let Some((no, line)) = self.read_line()? else {
                return Ok(None);
            };
            if Self::is_end(&line) {
                return Ok(Some(Item::End));
            }
            let Some((tag, start)) = Self::tag_of(&line) else {
                // Blank lines, SWIFT block headers and stray text outside a field.
                continue;
            };
            let mut field = RawField {
                tag,
                line: no,
                lines: Vec::new(),
                raw: String::new(),
                decode_error: None,
            };
            // The tag is ASCII in every supported charset, so its byte length is its length
            // in the decoded text too.
            let decoded = self.decode(no, &line, &mut field);
            field
                .lines
                .push(decoded.get(start..).unwrap_or_default().to_owned());
            field.raw = decoded;
            loop {
                match self.read_line()? {
                    None => break,
                    Some((n, l)) => {
                        if Self::is_end(&l) || Self::tag_of(&l).is_some() || l.starts_with(b"{") {
                            self.lookahead = Some((n, l));
                            break;
                        }
                        let s = self.decode(n, &l, &mut field);
                        field.raw.push('\n');
                        field.raw.push_str(&s);
                        field.lines.push(s);
                    }
                }
            }
            return Ok(Some(Item::Field(field)));
        }
    }

    fn at(&self, line: usize) -> Location {
        Location {
            file: self.file.clone(),
            line,
            statement: self
                .open
                .as_ref()
                .map(|o| o.header.reference.clone())
                .unwrap_or_default(),
        }
    }

    fn field_error(&self, line: usize, field: &str, problem: String, raw: &str) -> Mt940Error {
        Mt940Error::Field {
            at: self.at(line),
            field: field.to_owned(),
            problem,
            raw: raw.to_owned(),
        }
    }

    fn start(&mut self, reference: String, line: usize) {
        self.open = Some(Open {
            header: StatementHeader {
                file: self.file.clone(),
                line,
                reference,
                related_reference: None,
                account: None,
                account_raw: None,
                number: None,
                opening: None,
            },
            header_emitted: false,
            pending: None,
            credits: 0,
            debits: 0,
            entries: 0,
            rejected: 0,
            amounts_unknown: false,
            closing: None,
            available: None,
            forward: Vec::new(),
            info: None,
        });
    }

    fn flush_pending(&mut self) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if !open.header_emitted {
            open.header_emitted = true;
            self.out.push_back(Ok(Record::Header(open.header.clone())));
        }
        if let Some(p) = open.pending.take() {
            match p.tx {
                Ok(tx) => {
                    open.entries += 1;
                    self.out.push_back(Ok(Record::Transaction(Box::new(tx))));
                }
                Err(e) => {
                    open.rejected += 1;
                    self.out.push_back(Err(e));
                }
            }
        }
    }

    fn finish(&mut self, line: usize) {
        if self.open.is_none() {
            return;
        }
        self.flush_pending();
        let Some(open) = self.open.take() else {
            return;
        };
        let at = Location {
            file: self.file.clone(),
            line,
            statement: open.header.reference.clone(),
        };
        let mut verified = false;
        match (&open.header.opening, &open.closing) {
            (_, None) => self.out.push_back(Err(Mt940Error::Field {
                at: at.clone(),
                field: ":62F:".into(),
                problem: "the statement has no closing balance".into(),
                raw: String::new(),
            })),
            (Some(opening), Some((closing, field, closing_line))) if !open.amounts_unknown => {
                let computed = opening.signed() + open.credits - open.debits;
                if computed == closing.signed() {
                    verified = true;
                } else {
                    self.out.push_back(Err(Mt940Error::Balance {
                        at: Location {
                            line: *closing_line,
                            ..at.clone()
                        },
                        field: field.clone(),
                        opening: signed_zloty(opening.signed()),
                        credits: signed_zloty(open.credits),
                        debits: signed_zloty(open.debits),
                        computed: signed_zloty(computed),
                        closing: signed_zloty(closing.signed()),
                    }));
                }
            }
            _ => {}
        }
        let amount = |g: i64| Amount::from_grosze(g).unwrap_or(Amount::ZERO);
        self.out.push_back(Ok(Record::Trailer(StatementTrailer {
            reference: open.header.reference,
            line,
            closing: open.closing.map(|(b, _, _)| b),
            available: open.available,
            forward_available: open.forward,
            info: open.info,
            credits: amount(open.credits),
            debits: amount(open.debits),
            entries: open.entries,
            rejected: open.rejected,
            balance_verified: verified,
        })));
    }

    fn process(&mut self, f: RawField) {
        if f.tag == "20" {
            if self.open.is_some() {
                // A new statement without the `-` separator: close the previous one.
                self.finish(f.line);
            }
            self.start(f.lines.join("").trim().to_owned(), f.line);
        } else if self.open.is_none() {
            self.start(String::new(), f.line);
            self.out.push_back(Err(self.field_error(
                f.line,
                ":20:",
                format!("statement has no :20: reference before :{}:", f.tag),
                &f.raw,
            )));
        }
        if let Some((line, e)) = &f.decode_error {
            let entry_field = f.tag == "61"
                || (f.tag == "86"
                    && self
                        .open
                        .as_ref()
                        .and_then(|o| o.pending.as_ref())
                        .is_some_and(|p| !p.has_details));
            if !entry_field {
                let err = Mt940Error::Encoding {
                    at: self.at(*line),
                    field: format!(":{}:", f.tag),
                    charset: e.charset,
                    offset: e.offset,
                    raw: f.raw.clone(),
                };
                self.out.push_back(Err(err));
            }
        }
        let text = f.lines.join("");
        match f.tag.as_str() {
            "20" => {}
            "21" => self.with_open(|o| o.header.related_reference = Some(text.trim().to_owned())),
            "25" => {
                let raw = text.trim().to_owned();
                let compact: String = raw
                    .trim_start_matches('/')
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                let digits = compact.strip_prefix("PL").unwrap_or(&compact);
                let account = if digits.len() == 26 && digits.bytes().all(|b| b.is_ascii_digit()) {
                    match Nrb::parse(digits) {
                        Ok(n) => Some(n),
                        Err(e) => {
                            let err = self.field_error(f.line, ":25:", e.to_string(), &f.raw);
                            self.out.push_back(Err(err));
                            None
                        }
                    }
                } else {
                    None
                };
                self.with_open(|o| {
                    o.header.account = account;
                    o.header.account_raw = Some(raw);
                });
            }
            "28" | "28C" => self.with_open(|o| o.header.number = Some(text.trim().to_owned())),
            "60F" | "60M" => match parse_balance(text.trim(), f.tag.ends_with('M')) {
                Ok(b) => self.with_open(|o| o.header.opening = Some(b)),
                Err((part, problem)) => {
                    let field = format!(":{}: {part}", f.tag);
                    let e = self.field_error(f.line, &field, problem, &f.raw);
                    self.out.push_back(Err(e));
                }
            },
            "61" => {
                self.flush_pending();
                let pending = self.parse_61(&f);
                self.with_open(|o| {
                    if let Ok(tx) = &pending.tx {
                        if tx.mark.is_inflow() {
                            o.credits += tx.amount.grosze();
                        } else {
                            o.debits += tx.amount.grosze();
                        }
                    } else {
                        o.amounts_unknown = true;
                    }
                    o.pending = Some(pending);
                });
            }
            "86" => {
                let has_tx = self
                    .open
                    .as_ref()
                    .and_then(|o| o.pending.as_ref())
                    .is_some_and(|p| !p.has_details);
                if has_tx {
                    self.attach_86(&f, text);
                } else {
                    self.with_open(|o| o.info = Some(text));
                }
            }
            "62F" | "62M" => {
                self.flush_pending();
                match parse_balance(text.trim(), f.tag.ends_with('M')) {
                    Ok(b) => {
                        let field = format!(":{}:", f.tag);
                        self.with_open(|o| o.closing = Some((b, field, f.line)));
                    }
                    Err((part, problem)) => {
                        let field = format!(":{}: {part}", f.tag);
                        let e = self.field_error(f.line, &field, problem, &f.raw);
                        self.out.push_back(Err(e));
                    }
                }
            }
            "64" | "65" => {
                self.flush_pending();
                match parse_balance(text.trim(), false) {
                    Ok(b) => self.with_open(|o| {
                        if f.tag == "64" {
                            o.available = Some(b);
                        } else {
                            o.forward.push(b);
                        }
                    }),
                    Err((part, problem)) => {
                        let field = format!(":{}: {part}", f.tag);
                        let e = self.field_error(f.line, &field, problem, &f.raw);
                        self.out.push_back(Err(e));
                    }
                }
            }
            other => {
                tracing::debug!(tag = other, line = f.line, "MT940 tag ignored");
            }
        }
    }

    fn with_open(&mut self, f: impl FnOnce(&mut Open)) {
        if let Some(o) = self.open.as_mut() {
            f(o);
        }
    }

    fn parse_61(&self, f: &RawField) -> PendingTx {
        let statement = self
            .open
            .as_ref()
            .map(|o| o.header.reference.clone())
            .unwrap_or_default();
        if let Some((line, e)) = &f.decode_error {
            return PendingTx {
                tx: Err(Mt940Error::Encoding {
                    at: self.at(*line),
                    field: ":61:".into(),
                    charset: e.charset,
                    offset: e.offset,
                    raw: f.raw.clone(),
                }),
                has_details: false,
            };
        }
        let first = f.lines.first().map(String::as_str).unwrap_or_default();
        let supplementary = {
            let s = f.lines[1..].join("\n");
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        };
        let tx = parse_61_line(first).map(|p| Transaction {
            statement,
            line: f.line,
            value_date: p.value_date,
            entry_date: p.entry_date,
            mark: p.mark,
            funds_code: p.funds_code,
            amount: p.amount,
            type_code: p.type_code,
            customer_reference: p.customer_reference,
            bank_reference: p.bank_reference,
            supplementary,
            details: None,
            details_raw: None,
        });
        PendingTx {
            tx: tx.map_err(|(part, problem)| {
                self.field_error(f.line, &format!(":61: {part}"), problem, &f.raw)
            }),
            has_details: false,
        }
    }

    fn attach_86(&mut self, f: &RawField, text: String) {
        let Some(pending) = self.open.as_mut().and_then(|o| o.pending.take()) else {
            return;
        };
        let mut pending = pending;
        pending.has_details = true;
        pending.tx = match pending.tx {
            Err(Mt940Error::Field {
                at,
                field,
                problem,
                mut raw,
            }) => {
                // Keep the whole entry's text for the admin.
                raw.push('\n');
                raw.push_str(&f.raw);
                Err(Mt940Error::Field {
                    at,
                    field,
                    problem,
                    raw,
                })
            }
            Err(e) => Err(e),
            Ok(mut tx) => {
                let raw = format!("{}\n{}", raw_61(&tx), f.raw);
                if let Some((line, e)) = &f.decode_error {
                    Err(Mt940Error::Encoding {
                        at: self.at(*line),
                        field: ":86:".into(),
                        charset: e.charset,
                        offset: e.offset,
                        raw,
                    })
                } else {
                    tx.details_raw = Some(text.clone());
                    match self.options.layouts.iter().find(|l| l.recognizes(&text)) {
                        Some(layout) => match layout.parse(&text) {
                            Ok(d) => {
                                tx.details = Some(d);
                                Ok(tx)
                            }
                            Err(problem) => Err(self.field_error(
                                f.line,
                                &format!(":86: ({})", layout.name()),
                                problem,
                                &raw,
                            )),
                        },
                        None => Err(Mt940Error::UnknownLayout86 {
                            at: self.at(f.line),
                            tried: self
                                .options
                                .layouts
                                .iter()
                                .map(|l| l.name().to_owned())
                                .collect::<Vec<_>>()
                                .join(", "),
                            raw,
                            transaction: Box::new(tx),
                        }),
                    }
                }
            }
        };
        self.with_open(|o| o.pending = Some(pending));
    }
}

/// A short reconstruction of the `:61:` of an accepted entry, for error texts.
fn raw_61(tx: &Transaction) -> String {
    format!(
        ":61:{} {:?} {} {} {}",
        tx.value_date, tx.mark, tx.amount, tx.type_code, tx.customer_reference
    )
}

impl<R: BufRead> Iterator for Mt940Reader<R> {
    type Item = Result<Record, Mt940Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.out.pop_front() {
                return Some(item);
            }
            if self.eof {
                return None;
            }
            match self.next_item() {
                Ok(Some(Item::Field(f))) => self.process(f),
                Ok(Some(Item::End)) => self.finish(self.line_no),
                Ok(None) => {
                    self.eof = true;
                    self.finish(self.line_no);
                }
                Err(source) => {
                    self.eof = true;
                    return Some(Err(Mt940Error::Io {
                        file: self.file.clone(),
                        line: self.line_no,
                        source,
                    }));
                }
            }
        }
    }
}

/// Groups the record stream into statements (one statement in memory at a time).
pub struct Statements<R> {
    records: Mt940Reader<R>,
    current: Option<(StatementHeader, Vec<Transaction>)>,
}

impl<R: BufRead> Iterator for Statements<R> {
    type Item = Result<Statement, Mt940Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.records.next()? {
                Err(e) => return Some(Err(e)),
                Ok(Record::Header(h)) => self.current = Some((h, Vec::new())),
                Ok(Record::Transaction(t)) => {
                    if let Some((_, txs)) = self.current.as_mut() {
                        txs.push(*t);
                    }
                }
                Ok(Record::Trailer(trailer)) => {
                    if let Some((header, transactions)) = self.current.take() {
                        return Some(Ok(Statement {
                            header,
                            transactions,
                            trailer,
                        }));
                    }
                }
            }
        }
    }
}

/// Statements of an MT940 file with the default options (UTF-8, every known layout).
///
/// Items come in file order: an `Err` for each malformed entry or field as soon as it is read,
/// then the statement with the entries that were read; a balance mismatch is an `Err` just
/// before its statement (whose trailer then says `balance_verified: false`).
pub fn parse_statements<R: BufRead>(reader: R, file_name: &str) -> Statements<R> {
    parse_statements_with(reader, file_name, ParseOptions::default())
}

/// [`parse_statements`] with a bank's options.
pub fn parse_statements_with<R: BufRead>(
    reader: R,
    file_name: &str,
    options: ParseOptions,
) -> Statements<R> {
    Statements {
        records: Mt940Reader::new(reader, file_name, options),
        current: None,
    }
}

/// "-12.34" style złoty for error messages (balances may be negative).
fn signed_zloty(g: i64) -> String {
    let sign = if g < 0 { "-" } else { "" };
    let a = g.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

type PartError = (&'static str, String);

/// `YYMMDD`. Years 80–99 are the 1900s, as in every SWIFT implementation.
fn parse_yymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = s[..2].parse().ok()?;
    let m: u32 = s[2..4].parse().ok()?;
    let d: u32 = s[4..6].parse().ok()?;
    let y = if yy >= 80 { 1900 + yy } else { 2000 + yy };
    NaiveDate::from_ymd_opt(y, m, d)
}

/// SWIFT decimal: digits with a comma decimal mark, `25,` allowed.
fn parse_swift_amount(s: &str) -> Result<Amount, String> {
    if s.matches(',').count() != 1 || s.len() > 15 || s.starts_with(',') {
        return Err(format!(
            "{s:?} is not an amount with a decimal comma (at most 15 characters)"
        ));
    }
    let s2 = if s.ends_with(',') {
        format!("{s}00")
    } else {
        s.to_owned()
    };
    Amount::parse_zloty(&s2).map_err(|e| e.to_string())
}

/// `D|C YYMMDD CUR amount`.
fn parse_balance(s: &str, intermediate: bool) -> Result<Balance, PartError> {
    let side = match s.chars().next() {
        Some('C') => Side::Credit,
        Some('D') => Side::Debit,
        _ => return Err(("mark", format!("{s:?} does not start with C or D"))),
    };
    let date = s
        .get(1..7)
        .and_then(parse_yymmdd)
        .ok_or_else(|| ("date", format!("{s:?} has no valid YYMMDD date")))?;
    let currency = s
        .get(7..10)
        .filter(|c| c.bytes().all(|b| b.is_ascii_uppercase()))
        .ok_or_else(|| ("currency", format!("{s:?} has no currency code")))?
        .to_owned();
    let amount = parse_swift_amount(s.get(10..).unwrap_or_default()).map_err(|p| ("amount", p))?;
    Ok(Balance {
        side,
        date,
        currency,
        amount,
        intermediate,
    })
}

struct Line61 {
    value_date: NaiveDate,
    entry_date: Option<NaiveDate>,
    mark: Mark,
    funds_code: Option<char>,
    amount: Amount,
    type_code: String,
    customer_reference: String,
    bank_reference: Option<String>,
}

/// `6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]` (spec §4.3).
fn parse_61_line(s: &str) -> Result<Line61, PartError> {
    let value_date = s
        .get(..6)
        .and_then(parse_yymmdd)
        .ok_or_else(|| ("value date", format!("{s:?} does not start with YYMMDD")))?;
    let mut rest = &s[6..];
    let mut entry_date = None;
    if let Some(md) = rest
        .get(..4)
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        let m: u32 = md[..2].parse().unwrap_or(0);
        let d: u32 = md[2..].parse().unwrap_or(0);
        // The entry date has no year: take the value date's, across a year end if needed.
        let mut y = value_date.year();
        if m == 12 && value_date.month() == 1 {
            y -= 1;
        } else if m == 1 && value_date.month() == 12 {
            y += 1;
        }
        entry_date = Some(
            NaiveDate::from_ymd_opt(y, m, d)
                .ok_or_else(|| ("entry date", format!("{md:?} is not a valid MMDD date")))?,
        );
        rest = &rest[4..];
    }
    let (mark, n) = if rest.starts_with("RC") {
        (Mark::ReversalCredit, 2)
    } else if rest.starts_with("RD") {
        (Mark::ReversalDebit, 2)
    } else if rest.starts_with('C') {
        (Mark::Credit, 1)
    } else if rest.starts_with('D') {
        (Mark::Debit, 1)
    } else {
        return Err((
            "debit/credit mark",
            format!("expected C, D, RC or RD at {rest:?}"),
        ));
    };
    rest = &rest[n..];
    let mut funds_code = None;
    if let Some(c) = rest.chars().next().filter(char::is_ascii_alphabetic) {
        funds_code = Some(c);
        rest = &rest[1..];
    }
    let amount_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ','))
        .unwrap_or(rest.len());
    let amount = parse_swift_amount(&rest[..amount_len])
        .map_err(|p| ("amount", format!("{p}, in {rest:?}")))?;
    rest = &rest[amount_len..];
    let type_code = rest
        .get(..4)
        .filter(|t| {
            matches!(t.as_bytes()[0], b'N' | b'F' | b'S')
                && t[1..].bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .ok_or_else(|| {
            (
                "transaction type",
                format!("expected N, F or S and a three-character code at {rest:?}"),
            )
        })?
        .to_owned();
    rest = &rest[4..];
    let (customer, bank) = match rest.find("//") {
        Some(i) => (&rest[..i], Some(rest[i + 2..].trim().to_owned())),
        None => (rest, None),
    };
    let customer = customer.trim();
    if customer.is_empty() || customer.chars().count() > 16 {
        return Err((
            "customer reference",
            format!("{customer:?} must have 1 to 16 characters (NONREF if none)"),
        ));
    }
    Ok(Line61 {
        value_date,
        entry_date,
        mark,
        funds_code,
        amount,
        type_code,
        customer_reference: customer.to_owned(),
        bank_reference: bank.filter(|b| !b.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_61_examples() {
        let t = parse_61_line("1701190119CN0,01NTRFNONREF//MB170119012058").unwrap();
        assert_eq!(t.amount.grosze(), 1);
        assert_eq!(t.funds_code, Some('N'));
        assert_eq!(t.mark, Mark::Credit);
        assert_eq!(t.type_code, "NTRF");
        assert_eq!(t.bank_reference.as_deref(), Some("MB170119012058"));
        let t = parse_61_line("0810021002DN000000001273,23N641NONREF").unwrap();
        assert_eq!(t.amount.grosze(), 127323);
        assert_eq!(t.mark, Mark::Debit);
        assert_eq!(t.type_code, "N641");
        let t = parse_61_line("2105260526D25,00N152NONREF//6460500500000513").unwrap();
        assert_eq!(t.funds_code, None);
        assert_eq!(t.amount.grosze(), 2500);
        let t = parse_61_line("2012311231RD25,N152NONREF").unwrap();
        assert_eq!(t.mark, Mark::ReversalDebit);
        assert_eq!(t.entry_date, NaiveDate::from_ymd_opt(2020, 12, 31));
        let t = parse_61_line("2101041231C5,00NTRFX").unwrap();
        assert_eq!(t.entry_date, NaiveDate::from_ymd_opt(2020, 12, 31));
        assert!(parse_61_line("2101041231C5.00NTRFX").is_err());
    }

    #[test]
    fn mbank_sample_parses_with_balanced_arithmetic() {
        let file = ":20:ST170119CYC/1\r\n:25:PL29114010810000267002001002\r\n:28C:1/1\r\n:60F:C170119PLN0,40\r\n:61:1701190119CN0,01NTRFNONREF//MB170119012058\r\n911-TRANSAKCJA IPH\r\n:86:911 TRANSAKCJA COLLECT; ID IPH: XX000000000001; Z RACH.: \r\n56114010810000267002001001; OD: JAN NOWAK  \r\nUL. NIJAKA 1 M 2 31-234 KRAKOW; TYT.: PRZELEW SRODKOW   ; \r\nTNR: 179171073864111.010001\r\n:62F:C170119PLN0,43\r\n:64:C170119PLN0,43\r\n-\r\n";
        let items: Vec<_> = parse_statements(file.as_bytes(), "t.sta").collect();
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(matches!(&items[0], Err(Mt940Error::Balance { .. })));
        let s = items[1].as_ref().unwrap();
        assert!(!s.trailer.balance_verified);
        let d = s.transactions[0].details.as_ref().unwrap();
        assert_eq!(d.payer_id.as_deref(), Some("000000000001"));
        assert_eq!(
            d.counterparty_account.as_deref(),
            Some("56114010810000267002001001")
        );
        assert_eq!(
            s.transactions[0].supplementary.as_deref(),
            Some("911-TRANSAKCJA IPH")
        );
    }
}
