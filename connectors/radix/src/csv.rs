//! CSV adapter for legacy RADIX installations (X-Base/DOS era exports in Mazovia, CP852 or
//! CP1250). There is no fixed layout, so each tenant's configuration says which column holds
//! what ([`CsvMapping`], a serde struct read from the tenant's TOML). One CSV file holds one kind
//! of record (taxpayers, accounts, liabilities, postings or balances), as the DOS programs
//! export one table per file.
//!
//! Decisions:
//! - The file is split into records and fields on raw bytes (all supported code pages are
//!   ASCII-compatible, see [`crate::encoding`]); only field contents are decoded.
//! - Installments are **columns**: a liability row names up to N pairs (due date, amount) in
//!   [`LiabilityColumns::installments`]; the installment number is the pair's position; a pair
//!   with both cells empty is skipped. RADIX prints decisions the same way (one row, four rates).
//! - Account holders are one column with taxpayer ids separated by `holder_separator` (default
//!   `|`): the first is the owner, the rest co-owners.
//! - Coded values (levy `PN`, posting kind `WP` …) are translated through `values`, e.g.
//!   `[values.levy] PN = "property"`; without a table the model's own names are expected.
//! - Without a version column every record takes the fallback version given to
//!   [`CsvSource::new`] (pickup uses the file's modification time in milliseconds): later
//!   exports replace earlier ones, but re-importing an *older* file after a newer one would also
//!   win, so a version column should be mapped whenever RADIX has one.
//!
//! A mapping, as it sits in a tenant's configuration:
//!
//! ```toml
//! encoding = "mazovia"          # utf-8 | cp1250 | iso-8859-2 | cp852 | mazovia
//! delimiter = ";"
//! date_format = "%d.%m.%Y"
//! decimal_separator = ","
//! [values.levy]
//! PN = "property"
//! [layout]
//! record = "liabilities"        # taxpayers | accounts | liabilities | postings | balances
//! id = "NR_DEC"                 # a header name, or a 0-based column number
//! account = "KONTO"
//! levy = "PODATEK"
//! year = "ROK"
//! total = "KWOTA"
//! installments = [
//!   { due_date = "TERMIN1", amount = "RATA1" },
//!   { due_date = "TERMIN2", amount = "RATA2" },
//! ]
//! ```
//!
//! Errors per record as in XML: a [`RejectedRecord`] with the CSV line number, the record id when
//! readable, the column at fault and why; the file goes on.

use crate::encoding::{Decoder, TextEncoding};
use crate::{
    ExportHeader, ExportKind, FileError, FileMeta, NormalizedRecord, RecordSource, SourceItem,
};
use chrono::NaiveDate;
use gsko_model::payload::{AccountHolder, HolderRole, Installment, TaxpayerKind};
use gsko_model::payload::{ContactChannel, ContactKind, Decision};
use gsko_model::{
    Address, Amount, Balance, EventData, LedgerPosting, LevyKind, Liability, Nip, Nrb, Pesel,
    PostingKind, Regon, RejectedRecord, TaxAccount, Taxpayer, Teryt,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;

/// A column: by its header name, or by 0-based position for files without a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
}

/// How one tenant's CSV files are laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    /// Field delimiter (ASCII), `;` in Polish exports.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    #[serde(default)]
    pub encoding: TextEncoding,
    /// chrono format of dates, e.g. `%Y-%m-%d` or `%d.%m.%Y`.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// `,` or `.`; the other one in an amount is an error, not a thousands separator.
    #[serde(default = "default_decimal")]
    pub decimal_separator: char,
    #[serde(default = "default_true")]
    pub has_header: bool,
    #[serde(default = "default_kind")]
    pub export_kind: ExportKind,
    #[serde(default = "default_holder_separator")]
    pub holder_separator: char,
    /// Per model field (`levy`, `kind`, `taxpayer_kind`), source code → model name.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    pub layout: CsvLayout,
}

fn default_delimiter() -> char {
    ';'
}
fn default_date_format() -> String {
    "%Y-%m-%d".to_owned()
}
fn default_decimal() -> char {
    ','
}
fn default_true() -> bool {
    true
}
fn default_kind() -> ExportKind {
    ExportKind::Full
}
fn default_holder_separator() -> char {
    '|'
}

/// Which record a file holds and where its fields are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum CsvLayout {
    Taxpayers(TaxpayerColumns),
    Accounts(AccountColumns),
    Liabilities(LiabilityColumns),
    Postings(PostingColumns),
    Balances(BalanceColumns),
}

impl CsvLayout {
    fn record_type(&self) -> &'static str {
        match self {
            CsvLayout::Taxpayers(_) => "taxpayer",
            CsvLayout::Accounts(_) => "account",
            CsvLayout::Liabilities(_) => "liability",
            CsvLayout::Postings(_) => "posting",
            CsvLayout::Balances(_) => "balance",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxpayerColumns {
    pub id: Column,
    pub version: Option<Column>,
    /// Without it: `natural` when the PESEL cell is filled, otherwise `legal`.
    pub kind: Option<Column>,
    pub pesel: Option<Column>,
    pub nip: Option<Column>,
    pub regon: Option<Column>,
    /// Surname or full name.
    pub name: Column,
    /// Given names, put before `name` when present.
    pub given_names: Option<Column>,
    pub street: Option<Column>,
    pub building: Option<Column>,
    pub unit: Option<Column>,
    pub postal_code: Option<Column>,
    pub city: Option<Column>,
    pub simc: Option<Column>,
    pub email: Option<Column>,
    pub phone: Option<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountColumns {
    pub id: Column,
    pub version: Option<Column>,
    /// Levy column, or `levy_constant` when a file holds one levy only.
    pub levy: Option<Column>,
    pub levy_constant: Option<LevyKind>,
    /// Taxpayer ids, separated by `holder_separator`; the first is the owner.
    pub holders: Column,
    pub virtual_account: Option<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallmentColumns {
    pub due_date: Column,
    pub amount: Column,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiabilityColumns {
    pub id: Column,
    pub version: Option<Column>,
    pub account: Column,
    pub levy: Option<Column>,
    pub levy_constant: Option<LevyKind>,
    pub year: Column,
    pub total: Column,
    pub decision_number: Option<Column>,
    pub decision_issued_on: Option<Column>,
    pub decision_delivered_on: Option<Column>,
    /// Installment n is the n-th pair.
    pub installments: Vec<InstallmentColumns>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostingColumns {
    pub id: Column,
    pub version: Option<Column>,
    pub account: Column,
    pub kind: Column,
    pub value_date: Column,
    pub amount: Column,
    pub liability: Option<Column>,
    pub installment: Option<Column>,
    pub description: Option<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceColumns {
    pub account: Column,
    pub version: Option<Column>,
    pub as_of: Column,
    pub principal: Column,
    pub interest: Column,
    pub costs: Column,
    pub overpayment: Column,
}

/// Why a row is refused.
struct Fault {
    field: Option<String>,
    reason: String,
}

/// One row, decoded, with the header to name columns in errors.
struct Row<'a> {
    cells: Vec<String>,
    headers: &'a [String],
    mapping: &'a CsvMapping,
}

impl Row<'_> {
    fn label(&self, c: &Column) -> String {
        match c {
            Column::Name(n) => n.clone(),
            Column::Index(i) => self
                .headers
                .get(*i)
                .cloned()
                .unwrap_or_else(|| format!("#{}", i + 1)),
        }
    }

    fn fault(&self, c: &Column, msg: impl std::fmt::Display) -> Fault {
        let label = self.label(c);
        Fault {
            reason: format!("column \"{label}\": {msg}"),
            field: Some(label),
        }
    }

    fn index(&self, c: &Column) -> Option<usize> {
        match c {
            Column::Index(i) => Some(*i),
            Column::Name(n) => self.headers.iter().position(|h| h == n),
        }
    }

    /// Trimmed cell; `None` when empty (DBF exports pad with spaces).
    fn get(&self, c: &Column) -> Option<&str> {
        let v = self.cells.get(self.index(c)?)?.trim();
        (!v.is_empty()).then_some(v)
    }

    fn opt(&self, c: &Option<Column>) -> Option<String> {
        c.as_ref().and_then(|c| self.get(c)).map(str::to_owned)
    }

    fn req(&self, c: &Column) -> Result<&str, Fault> {
        self.get(c).ok_or_else(|| self.fault(c, "is empty"))
    }

    fn id(&self, c: &Column) -> Result<String, Fault> {
        let v = self.req(c)?;
        if v.chars().count() > crate::xml::MAX_ID_CHARS {
            return Err(self.fault(
                c,
                format!("is longer than {} characters", crate::xml::MAX_ID_CHARS),
            ));
        }
        Ok(v.to_owned())
    }

    fn version(&self, c: &Option<Column>, fallback: i64) -> Result<i64, Fault> {
        match c {
            None => Ok(fallback),
            Some(c) => {
                let v = self.req(c)?;
                match v.parse::<i64>() {
                    Ok(n) if n >= 0 && v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                    _ => Err(self.fault(c, format!("{v:?} is not a non-negative integer"))),
                }
            }
        }
    }

    fn amount(&self, c: &Column) -> Result<Amount, Fault> {
        let v = self.req(c)?;
        let sep = self.mapping.decimal_separator;
        let other = if sep == ',' { '.' } else { ',' };
        if v.contains(other) {
            return Err(self.fault(
                c,
                format!("amount {v:?} uses {other:?}; the decimal separator is {sep:?}"),
            ));
        }
        Amount::parse_zloty(&v.replace(sep, ".")).map_err(|e| self.fault(c, e))
    }

    fn date(&self, c: &Column) -> Result<NaiveDate, Fault> {
        let v = self.req(c)?;
        NaiveDate::parse_from_str(v, &self.mapping.date_format).map_err(|_| {
            self.fault(
                c,
                format!(
                    "{v:?} is not a date in the format {}",
                    self.mapping.date_format
                ),
            )
        })
    }

    /// A coded value translated through `values.<field>` (or taken as the model's name).
    fn code<'s>(&'s self, field: &str, c: &Column, v: &'s str) -> Result<&'s str, Fault> {
        match self.mapping.values.get(field) {
            None => Ok(v),
            Some(table) => table
                .get(v)
                .map(String::as_str)
                .ok_or_else(|| self.fault(c, format!("unknown {field} code {v:?}"))),
        }
    }

    fn levy(&self, col: &Option<Column>, constant: Option<LevyKind>) -> Result<LevyKind, Fault> {
        match (col, constant) {
            (Some(c), _) => {
                let raw = self.req(c)?;
                let v = self.code("levy", c, raw)?;
                LevyKind::parse(v).ok_or_else(|| self.fault(c, format!("unknown levy {v:?}")))
            }
            (None, Some(k)) => Ok(k),
            (None, None) => Err(Fault {
                field: Some("levy".into()),
                reason: "the mapping names neither a levy column nor levy_constant".into(),
            }),
        }
    }
}

/// Counts lines under the CSV parser. The `csv` crate's own line numbers point *before* line
/// terminators and blank lines it skipped (one line short after every CRLF), so the record's
/// start byte is mapped to a line here: every CR and LF offset read is remembered until the
/// parser has passed it (a window of the parser's read-ahead, a few KiB).
struct LineTap<R> {
    inner: R,
    consumed: u64,
    /// Offsets of CR and LF bytes not yet passed, and whether each is LF.
    terminators: std::collections::VecDeque<(u64, bool)>,
    /// LF bytes before the window.
    lines_before: u64,
}

impl<R: std::io::Read> std::io::Read for LineTap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                self.terminators
                    .push_back((self.consumed + i as u64, b == b'\n'));
            }
        }
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R> LineTap<R> {
    /// 1-based line of the first content byte at or after `start` (records are read in order).
    fn line_of(&mut self, start: u64) -> u64 {
        let mut first = start;
        while let Some(&(off, is_lf)) = self.terminators.front() {
            if off < first {
                self.lines_before += u64::from(is_lf);
                self.terminators.pop_front();
            } else if off == first {
                // a terminator the parser skipped: the record begins after it
                self.lines_before += u64::from(is_lf);
                self.terminators.pop_front();
                first += 1;
            } else {
                break;
            }
        }
        self.lines_before + 1
    }
}

/// Streaming [`RecordSource`] over a CSV file.
pub struct CsvSource<R: BufRead> {
    reader: csv::Reader<LineTap<R>>,
    record: csv::ByteRecord,
    headers: Vec<String>,
    file: FileMeta,
    mapping: CsvMapping,
    header: ExportHeader,
    fallback_version: i64,
}

impl<R: BufRead> CsvSource<R> {
    /// Opens a CSV file for `tenant` (CSV files carry no header naming one). Every record
    /// without a version column gets version 0; see [`CsvSource::with_fallback_version`].
    pub fn new(
        input: R,
        file: FileMeta,
        mapping: CsvMapping,
        tenant: Teryt,
    ) -> Result<Self, FileError> {
        let config = |reason: String| FileError::Config {
            file: file.name.clone(),
            reason,
        };
        if !mapping.delimiter.is_ascii() {
            return Err(config(format!(
                "delimiter {:?} is not an ASCII character",
                mapping.delimiter
            )));
        }
        if !matches!(mapping.decimal_separator, ',' | '.') {
            return Err(config(format!(
                "decimal separator {:?} must be ',' or '.'",
                mapping.decimal_separator
            )));
        }
        let tap = LineTap {
            inner: input,
            consumed: 0,
            terminators: Default::default(),
            lines_before: 0,
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(mapping.delimiter as u8)
            .has_headers(false)
            .flexible(true)
            .from_reader(tap);
        let mut record = csv::ByteRecord::new();
        let mut headers = Vec::new();
        if mapping.has_header {
            let got = reader
                .read_byte_record(&mut record)
                .map_err(|e| csv_file_error(&file, e))?;
            if !got {
                return Err(config("the file is empty (no header line)".into()));
            }
            let start = record.position().map(|p| p.byte()).unwrap_or(0);
            reader.get_mut().line_of(start);
            for f in record.iter() {
                let h = mapping
                    .encoding
                    .decode(f)
                    .map_err(|e| config(format!("header line: {e}")))?;
                headers.push(h.trim().to_owned());
            }
        }
        let source = CsvSource {
            reader,
            record,
            headers,
            header: ExportHeader {
                tenant,
                kind: mapping.export_kind,
                export_id: None,
                generated_at: None,
            },
            file,
            mapping,
            fallback_version: 0,
        };
        source.check_columns()?;
        Ok(source)
    }

    /// Version for records when the mapping has no version column.
    pub fn with_fallback_version(mut self, v: i64) -> Self {
        self.fallback_version = v;
        self
    }

    pub fn file(&self) -> &FileMeta {
        &self.file
    }

    /// Every named column must exist in the header: a mapping that does not fit the file is a
    /// configuration error for the whole file, not thousands of rejected rows.
    fn check_columns(&self) -> Result<(), FileError> {
        let mut cols: Vec<&Column> = Vec::new();
        fn o<'c>(c: &'c Option<Column>, cols: &mut Vec<&'c Column>) {
            if let Some(c) = c {
                cols.push(c)
            }
        }
        let l = &self.mapping.layout;
        match l {
            CsvLayout::Taxpayers(t) => {
                cols.extend([&t.id, &t.name]);
                for c in [
                    &t.version,
                    &t.kind,
                    &t.pesel,
                    &t.nip,
                    &t.regon,
                    &t.given_names,
                    &t.street,
                    &t.building,
                    &t.unit,
                    &t.postal_code,
                    &t.city,
                    &t.simc,
                    &t.email,
                    &t.phone,
                ] {
                    o(c, &mut cols);
                }
            }
            CsvLayout::Accounts(a) => {
                if a.levy.is_none() && a.levy_constant.is_none() {
                    return Err(FileError::Config {
                        file: self.file.name.clone(),
                        reason: "accounts mapping names neither levy nor levy_constant".into(),
                    });
                }
                cols.extend([&a.id, &a.holders]);
                for c in [&a.version, &a.levy, &a.virtual_account] {
                    o(c, &mut cols);
                }
            }
            CsvLayout::Liabilities(li) => {
                if li.levy.is_none() && li.levy_constant.is_none() {
                    return Err(FileError::Config {
                        file: self.file.name.clone(),
                        reason: "liabilities mapping names neither levy nor levy_constant".into(),
                    });
                }
                cols.extend([&li.id, &li.account, &li.year, &li.total]);
                for c in [
                    &li.version,
                    &li.levy,
                    &li.decision_number,
                    &li.decision_issued_on,
                    &li.decision_delivered_on,
                ] {
                    o(c, &mut cols);
                }
                for i in &li.installments {
                    cols.extend([&i.due_date, &i.amount]);
                }
            }
            CsvLayout::Postings(p) => {
                cols.extend([&p.id, &p.account, &p.kind, &p.value_date, &p.amount]);
                for c in [&p.version, &p.liability, &p.installment, &p.description] {
                    o(c, &mut cols);
                }
            }
            CsvLayout::Balances(b) => {
                cols.extend([
                    &b.account,
                    &b.as_of,
                    &b.principal,
                    &b.interest,
                    &b.costs,
                    &b.overpayment,
                ]);
                o(&b.version, &mut cols);
            }
        }
        for c in cols {
            if let Column::Name(n) = c {
                if !self.headers.iter().any(|h| h == n) {
                    let why = if self.mapping.has_header {
                        "is not in the header line"
                    } else {
                        "is named, but the mapping says the file has no header line"
                    };
                    return Err(FileError::Config {
                        file: self.file.name.clone(),
                        reason: format!("column {n:?} {why}"),
                    });
                }
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<SourceItem>, FileError> {
        let record_type = self.mapping.layout.record_type();
        let got = match self.reader.read_byte_record(&mut self.record) {
            Ok(g) => g,
            Err(e) => {
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(csv_file_error(&self.file, e));
                }
                // A parse problem in one record: report it and go on with the next.
                let start = e.position().map(|p| p.byte()).unwrap_or(0);
                let line = self.reader.get_mut().line_of(start);
                return Ok(Some(self.reject(
                    line,
                    record_type,
                    None,
                    Fault {
                        field: None,
                        reason: format!("CSV record cannot be read: {e}"),
                    },
                    String::new(),
                )));
            }
        };
        if !got {
            return Ok(None);
        }
        let start = self.record.position().map(|p| p.byte()).unwrap_or(0);
        let line = self.reader.get_mut().line_of(start);
        let delim = self.mapping.delimiter.to_string();
        let mut cells = Vec::with_capacity(self.record.len());
        let mut decode_err = None;
        for (i, f) in self.record.iter().enumerate() {
            match self.mapping.encoding.decode(f) {
                Ok(s) => cells.push(s),
                Err(e) => {
                    decode_err.get_or_insert((i, e));
                    cells.push(String::from_utf8_lossy(f).into_owned());
                }
            }
        }
        let raw = cells.join(&delim);
        let row = Row {
            cells,
            headers: &self.headers,
            mapping: &self.mapping,
        };
        let id_col = match &self.mapping.layout {
            CsvLayout::Taxpayers(t) => &t.id,
            CsvLayout::Accounts(a) => &a.id,
            CsvLayout::Liabilities(l) => &l.id,
            CsvLayout::Postings(p) => &p.id,
            CsvLayout::Balances(b) => &b.account,
        };
        let record_id = row.get(id_col).map(str::to_owned);
        let result = match decode_err {
            Some((i, e)) => Err(row.fault(&Column::Index(i), e)),
            None => convert(&row, &self.mapping.layout, self.fallback_version),
        };
        Ok(Some(match result {
            Ok((data, source_version)) => SourceItem::Record(Box::new(NormalizedRecord {
                data,
                source_version,
                line,
            })),
            Err(f) => self.reject(line, record_type, record_id, f, raw),
        }))
    }

    fn reject(
        &self,
        line: u64,
        record_type: &str,
        record_id: Option<String>,
        f: Fault,
        raw: String,
    ) -> SourceItem {
        SourceItem::Rejected(Box::new(RejectedRecord {
            file: self.file.name.clone(),
            file_sha256: self.file.sha256.clone(),
            line,
            record_type: record_type.to_owned(),
            record_id,
            field: f.field,
            reason: f.reason,
            raw,
        }))
    }
}

fn csv_file_error(file: &FileMeta, e: csv::Error) -> FileError {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => FileError::Io {
            file: file.name.clone(),
            source,
        },
        other => FileError::Config {
            file: file.name.clone(),
            reason: format!("CSV cannot be read: {other:?}"),
        },
    }
}

impl<R: BufRead> RecordSource for CsvSource<R> {
    fn header(&self) -> &ExportHeader {
        &self.header
    }
    fn next_item(&mut self) -> Result<Option<SourceItem>, FileError> {
        self.step()
    }
    fn stopped_early(&self) -> Option<&str> {
        None
    }
}

impl<R: BufRead> Iterator for CsvSource<R> {
    type Item = Result<SourceItem, FileError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

fn convert(row: &Row, layout: &CsvLayout, fallback: i64) -> Result<(EventData, i64), Fault> {
    match layout {
        CsvLayout::Taxpayers(c) => {
            let version = row.version(&c.version, fallback)?;
            let pesel = match &c.pesel {
                Some(col) => row
                    .get(col)
                    .map(|v| Pesel::parse(v).map_err(|e| row.fault(col, e)))
                    .transpose()?,
                None => None,
            };
            let nip = match &c.nip {
                Some(col) => row
                    .get(col)
                    .map(|v| Nip::parse(v).map_err(|e| row.fault(col, e)))
                    .transpose()?,
                None => None,
            };
            let regon = match &c.regon {
                Some(col) => row
                    .get(col)
                    .map(|v| Regon::parse(v).map_err(|e| row.fault(col, e)))
                    .transpose()?,
                None => None,
            };
            let kind = match &c.kind {
                Some(col) => {
                    let raw = row.req(col)?;
                    match row.code("taxpayer_kind", col, raw)? {
                        "natural" => TaxpayerKind::Natural,
                        "legal" => TaxpayerKind::Legal,
                        "org_unit" => TaxpayerKind::OrgUnit,
                        k => return Err(row.fault(col, format!("unknown taxpayer kind {k:?}"))),
                    }
                }
                None if pesel.is_some() => TaxpayerKind::Natural,
                None => TaxpayerKind::Legal,
            };
            let surname = row.req(&c.name)?;
            let name = match row.opt(&c.given_names) {
                Some(g) => format!("{g} {surname}"),
                None => surname.to_owned(),
            };
            let address = match (row.opt(&c.postal_code), row.opt(&c.city)) {
                (Some(postal_code), Some(city)) => Some(Address {
                    street: row.opt(&c.street),
                    building: row.opt(&c.building),
                    unit: row.opt(&c.unit),
                    postal_code,
                    city,
                    simc: row.opt(&c.simc),
                    country: "PL".to_owned(),
                }),
                _ => None,
            };
            let mut contacts = Vec::new();
            if let Some(e) = row.opt(&c.email) {
                contacts.push(ContactChannel {
                    kind: ContactKind::Email,
                    value: e,
                });
            }
            if let Some(p) = row.opt(&c.phone) {
                contacts.push(ContactChannel {
                    kind: ContactKind::Phone,
                    value: p,
                });
            }
            let t = Taxpayer {
                taxpayer_id: row.id(&c.id)?,
                kind,
                pesel,
                nip,
                regon,
                name,
                address,
                contacts,
            };
            Ok((EventData::TaxpayerUpserted(t), version))
        }
        CsvLayout::Accounts(c) => {
            let version = row.version(&c.version, fallback)?;
            let levy = row.levy(&c.levy, c.levy_constant)?;
            let list = row.req(&c.holders)?;
            let mut holders: Vec<AccountHolder> = Vec::new();
            for (i, id) in list
                .split(row.mapping.holder_separator)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .enumerate()
            {
                if holders.iter().any(|h| h.taxpayer_id == id) {
                    return Err(row.fault(&c.holders, format!("taxpayer {id:?} is listed twice")));
                }
                holders.push(AccountHolder {
                    taxpayer_id: id.to_owned(),
                    role: if i == 0 {
                        HolderRole::Owner
                    } else {
                        HolderRole::CoOwner
                    },
                });
            }
            if holders.is_empty() {
                return Err(row.fault(&c.holders, "an account needs at least one holder"));
            }
            let virtual_account = match &c.virtual_account {
                Some(col) => row
                    .get(col)
                    .map(|v| Nrb::parse(v).map_err(|e| row.fault(col, e)))
                    .transpose()?,
                None => None,
            };
            Ok((
                EventData::TaxAccountUpserted(TaxAccount {
                    account_id: row.id(&c.id)?,
                    levy,
                    holders,
                    virtual_account,
                }),
                version,
            ))
        }
        CsvLayout::Liabilities(c) => {
            let version = row.version(&c.version, fallback)?;
            let levy = row.levy(&c.levy, c.levy_constant)?;
            let y = row.req(&c.year)?;
            let year = match y.parse::<i32>() {
                Ok(v) if (1900..=2999).contains(&v) => v,
                _ => return Err(row.fault(&c.year, format!("{y:?} is not a year 1900-2999"))),
            };
            let total = row.amount(&c.total)?;
            let decision = match &c.decision_number {
                Some(col) => match row.get(col) {
                    None => None,
                    Some(number) => {
                        let issued = c.decision_issued_on.as_ref().ok_or_else(|| {
                            row.fault(
                                col,
                                "a decision number needs decision_issued_on in the mapping",
                            )
                        })?;
                        Some(Decision {
                            number: number.to_owned(),
                            issued_on: row.date(issued)?,
                            delivered_on: match &c.decision_delivered_on {
                                Some(d) if row.get(d).is_some() => Some(row.date(d)?),
                                _ => None,
                            },
                        })
                    }
                },
                None => None,
            };
            let mut installments = Vec::new();
            for (i, ic) in c.installments.iter().enumerate() {
                if row.get(&ic.due_date).is_none() && row.get(&ic.amount).is_none() {
                    continue;
                }
                let seq = u8::try_from(i + 1)
                    .map_err(|_| row.fault(&ic.amount, "more than 255 installments"))?;
                installments.push(Installment {
                    seq,
                    due_date: row.date(&ic.due_date)?,
                    amount: row.amount(&ic.amount)?,
                });
            }
            if installments.is_empty() {
                return Err(Fault {
                    field: Some("installments".into()),
                    reason: "a liability needs at least one installment".into(),
                });
            }
            let sum = installments
                .iter()
                .try_fold(Amount::ZERO, |a, i| a.checked_add(i.amount))
                .ok_or_else(|| row.fault(&c.total, "installment amounts overflow"))?;
            if sum != total {
                return Err(row.fault(
                    &c.total,
                    format!("installments sum to {sum} but the liability total is {total}"),
                ));
            }
            let l = Liability {
                liability_id: row.id(&c.id)?,
                account_id: row.id(&c.account)?,
                levy,
                year,
                decision,
                total,
                installments,
            };
            Ok((EventData::LiabilityUpserted(l), version))
        }
        CsvLayout::Postings(c) => {
            let version = row.version(&c.version, fallback)?;
            let raw = row.req(&c.kind)?;
            let k = row.code("kind", &c.kind, raw)?;
            let kind = PostingKind::parse(k)
                .ok_or_else(|| row.fault(&c.kind, format!("unknown posting kind {k:?}")))?;
            let liability_id = match &c.liability {
                Some(col) => row.get(col).map(|_| row.id(col)).transpose()?,
                None => None,
            };
            let installment_seq = match &c.installment {
                Some(col) => match row.get(col) {
                    None => None,
                    Some(v) => match v.parse::<u8>() {
                        Ok(n) if n >= 1 => Some(n),
                        _ => {
                            return Err(
                                row.fault(col, format!("{v:?} is not an installment number 1-255"))
                            )
                        }
                    },
                },
                None => None,
            };
            let p = LedgerPosting {
                posting_id: row.id(&c.id)?,
                account_id: row.id(&c.account)?,
                kind,
                value_date: row.date(&c.value_date)?,
                amount: row.amount(&c.amount)?,
                liability_id,
                installment_seq,
                description: row.opt(&c.description),
            };
            Ok((EventData::PostingRecorded(p), version))
        }
        CsvLayout::Balances(c) => {
            let version = row.version(&c.version, fallback)?;
            let b = Balance {
                account_id: row.id(&c.account)?,
                as_of: row.date(&c.as_of)?,
                principal: row.amount(&c.principal)?,
                interest: row.amount(&c.interest)?,
                costs: row.amount(&c.costs)?,
                overpayment: row.amount(&c.overpayment)?,
            };
            Ok((EventData::BalanceReported(b), version))
        }
    }
}
