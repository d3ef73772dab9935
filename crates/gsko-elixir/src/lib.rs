//! Elixir-0 payment records (payments spec §4.4): the comma-separated, one-line-per-payment
//! format of KIR's domestic clearing, which ledger systems import. The bank connector writes
//! identified bank payments in it, the RADIX connector writes payments to book; both use this
//! writer, so neither depends on the other.
//!
//! No official KIR specification was found (spec §6); the field order follows the two
//! open-source implementations the spec cites. Text fields are quoted and have no escape
//! mechanism, so a `"` or `|` inside a text is refused rather than written ambiguously; long
//! texts are wrapped into the format's 4 lines of 35 characters, and refused beyond that. A
//! line break (`\n`) in a text starts a new line of the field, for callers that give lines a
//! meaning (a ledger reading the payment id from the title's first line).
//!
//! Charsets are `gsko-codepages`' [`TextEncoding`]s (UTF-8, Windows-1250, ISO-8859-2, CP852,
//! Mazovia); a character the charset cannot carry refuses the record instead of writing `?`.

use chrono::NaiveDate;
use gsko_model::{Amount, Nrb};
use std::io::Write;

pub use gsko_codepages::TextEncoding;

/// Operation code of a credit transfer.
pub const CREDIT_TRANSFER: u16 = 110;
/// Transaction classification of a standard transfer.
pub const STANDARD_CLASSIFICATION: &str = "51";
/// Lines per text field and characters per line.
pub const TEXT_LINES: usize = 4;
pub const LINE_CHARS: usize = 35;

/// One domestic payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElixirPayment {
    /// Operation code, [`CREDIT_TRANSFER`] for a payment.
    pub code: u16,
    pub date: NaiveDate,
    pub amount: Amount,
    pub ordering_account: Nrb,
    pub beneficiary_account: Nrb,
    /// Name and address of the payer, free text (wrapped into 4×35).
    pub ordering_party: String,
    pub beneficiary_party: String,
    /// Free text wrapped into 4×35; `\n` forces a new line.
    pub title: String,
    /// [`STANDARD_CLASSIFICATION`] unless the ledger wants another.
    pub classification: String,
}

/// A record that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ElixirError {
    #[error("record {record}: field {field}: {problem}")]
    Field {
        record: usize,
        field: &'static str,
        problem: String,
    },
    #[error("writing record {record}: {source}")]
    Io {
        record: usize,
        #[source]
        source: std::io::Error,
    },
}

/// Wraps a text into at most 4 lines of 35 characters, breaking at spaces where possible and
/// at every `\n`; the lines are joined with `|` as the format wants.
pub fn wrap(record: usize, field: &'static str, text: &str) -> Result<String, ElixirError> {
    if text.contains(['"', '|', '\r']) {
        return Err(ElixirError::Field {
            record,
            field,
            problem: "contains a double quote, '|' or a carriage return".into(),
        });
    }
    let mut lines: Vec<String> = Vec::new();
    for part in text.split('\n') {
        wrap_line(part, &mut lines);
    }
    // Trailing empty lines (a text ending in a line break) carry nothing.
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if lines.len() > TEXT_LINES {
        return Err(ElixirError::Field {
            record,
            field,
            problem: format!(
                "longer than {TEXT_LINES} lines of {LINE_CHARS} characters ({} characters)",
                text.chars().count()
            ),
        });
    }
    Ok(lines.join("|"))
}

/// Wraps one explicit line (no `\n`) into lines of at most [`LINE_CHARS`].
fn wrap_line(text: &str, lines: &mut Vec<String>) {
    let start = lines.len();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        loop {
            let cur_len = cur.chars().count();
            let sep = usize::from(cur_len > 0);
            let wl = word.chars().count();
            if cur_len + sep + wl <= LINE_CHARS {
                if sep == 1 {
                    cur.push(' ');
                }
                cur.push_str(word);
                break;
            }
            if cur_len > 0 {
                lines.push(std::mem::take(&mut cur));
                continue;
            }
            // A word longer than a line: cut it.
            let cut = word
                .char_indices()
                .nth(LINE_CHARS)
                .map(|(i, _)| i)
                .unwrap_or(word.len());
            lines.push(word[..cut].to_owned());
            word = &word[cut..];
            if word.is_empty() {
                break;
            }
        }
    }
    if !cur.is_empty() || lines.len() == start {
        lines.push(cur);
    }
}

/// Writes Elixir-0 records, CRLF-terminated, in a charset the receiving system expects.
pub struct ElixirWriter<W> {
    out: W,
    charset: TextEncoding,
    records: usize,
}

impl<W: Write> ElixirWriter<W> {
    /// `charset`: a [`TextEncoding`] or anything convertible into one (the bank connector's
    /// `Charset`).
    pub fn new(out: W, charset: impl Into<TextEncoding>) -> Self {
        ElixirWriter {
            out,
            charset: charset.into(),
            records: 0,
        }
    }

    /// The record as it would be written (text, before encoding); nothing is written.
    pub fn format(&self, p: &ElixirPayment) -> Result<String, ElixirError> {
        format_record(self.records + 1, p)
    }

    /// Writes one record; nothing is written if the record is refused.
    pub fn write(&mut self, p: &ElixirPayment) -> Result<(), ElixirError> {
        let record = self.records + 1;
        let line = format_record(record, p)?;
        let bytes = self
            .charset
            .encode(&line)
            .ok_or_else(|| ElixirError::Field {
                record,
                field: "text",
                problem: format!(
                    "has a character not representable in {}",
                    self.charset.name()
                ),
            })?;
        self.out
            .write_all(&bytes)
            .map_err(|source| ElixirError::Io { record, source })?;
        self.records = record;
        Ok(())
    }

    /// Number of records written.
    pub fn records(&self) -> usize {
        self.records
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn format_record(record: usize, p: &ElixirPayment) -> Result<String, ElixirError> {
    if p.amount.grosze() < 0 {
        return Err(ElixirError::Field {
            record,
            field: "amount",
            problem: "is negative".into(),
        });
    }
    if p.classification.contains(['"', '|', '\r', '\n']) {
        return Err(ElixirError::Field {
            record,
            field: "classification",
            problem: "contains a double quote, '|' or a line break".into(),
        });
    }
    Ok(format!(
        "{},{},{},{},0,\"{}\",\"{}\",\"{}\",\"{}\",0,{},\"{}\",\"\",\"\",\"{}\",\"\"\r\n",
        p.code,
        p.date.format("%Y%m%d"),
        p.amount.grosze(),
        &p.ordering_account.as_str()[2..10],
        p.ordering_account.as_str(),
        p.beneficiary_account.as_str(),
        wrap(record, "ordering party", &p.ordering_party)?,
        wrap(record, "beneficiary party", &p.beneficiary_party)?,
        &p.beneficiary_account.as_str()[2..10],
        wrap(record, "title", &p.title)?,
        p.classification,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_into_four_lines_of_35() {
        let t = "Podatek od nieruchomosci konto podatnika K0001234 rata 1 za rok 2026";
        let w = wrap(1, "title", t).unwrap();
        assert!(w.split('|').all(|l| l.chars().count() <= 35), "{w}");
        assert_eq!(w.replace('|', " "), t);
        assert!(wrap(1, "title", &"x".repeat(141)).is_err());
        assert!(wrap(1, "title", "a \"quoted\" title").is_err());
        assert!(wrap(1, "title", "a\rb").is_err());
    }

    #[test]
    fn line_breaks_start_a_new_line() {
        assert_eq!(wrap(1, "t", "p24-1\nA-1 L-1/2").unwrap(), "p24-1|A-1 L-1/2");
        assert_eq!(
            wrap(1, "t", "p24-1\nA-PROP-0000001 L-2026-PROP-0000001/1").unwrap(),
            "p24-1|A-PROP-0000001|L-2026-PROP-0000001/1"
        );
        assert_eq!(wrap(1, "t", "a\n\nb\n").unwrap(), "a||b");
        assert!(wrap(1, "t", "a\nb\nc\nd\ne").is_err());
    }

    #[test]
    fn writes_one_crlf_record_in_the_charset() {
        let nrb = Nrb::parse("61109010140000071219812874").unwrap();
        let p = ElixirPayment {
            code: CREDIT_TRANSFER,
            date: NaiveDate::from_ymd_opt(2026, 3, 15).unwrap(),
            amount: Amount::from_grosze(12345).unwrap(),
            ordering_account: nrb.clone(),
            beneficiary_account: nrb,
            ordering_party: "Przelewy24".into(),
            beneficiary_party: "Gmina Łąck".into(),
            title: "p24-1\nA-1".into(),
            classification: STANDARD_CLASSIFICATION.into(),
        };
        let mut w = ElixirWriter::new(Vec::new(), TextEncoding::Cp852);
        w.write(&p).unwrap();
        let out = w.into_inner();
        let text = TextEncoding::Cp852.encode(
            "110,20260315,12345,10901014,0,\"61109010140000071219812874\",\"61109010140000071219812874\",\"Przelewy24\",\"Gmina Łąck\",0,10901014,\"p24-1|A-1\",\"\",\"\",\"51\",\"\"\r\n",
        );
        assert_eq!(Some(out), text);
    }
}
