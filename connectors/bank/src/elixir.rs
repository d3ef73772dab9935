//! Elixir-0 payment records (spec §4.4): the comma-separated, one-line-per-payment format of
//! KIR's domestic clearing, which ledger systems import. GSKO writes identified bank payments
//! in it so a ledger that cannot take events can still book them.
//!
//! No official KIR specification was found (spec §6); the field order follows the two
//! open-source implementations the spec cites. Text fields are quoted and have no escape
//! mechanism, so a `"` or `|` inside a text is refused rather than written ambiguously; long
//! texts are wrapped into the format's 4 lines of 35 characters, and refused beyond that.

use crate::charset::Charset;
use crate::identify::Identification;
use crate::mt940::Transaction;
use chrono::NaiveDate;
use gsko_model::{Amount, Nrb};
use std::io::Write;

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

impl ElixirPayment {
    /// The record for an identified incoming bank payment: the payer's account as ordering
    /// party, the virtual account (or the statement account) as beneficiary. `None` when the
    /// entry is not a credit or the payer's account is not a full NRB.
    pub fn from_credit(
        tx: &Transaction,
        statement_account: &Nrb,
        identification: &Identification,
        beneficiary_party: &str,
    ) -> Option<ElixirPayment> {
        if !tx.mark.is_inflow() {
            return None;
        }
        let d = tx.details.as_ref()?;
        let ordering_account = Nrb::parse(d.counterparty_account.as_deref()?).ok()?;
        let beneficiary_account = match identification {
            Identification::ByVirtualAccount { nrb, .. } => nrb.clone(),
            _ => statement_account.clone(),
        };
        let mut party = d.counterparty_name.clone().unwrap_or_default();
        if let Some(a) = &d.counterparty_address {
            party.push(' ');
            party.push_str(a);
        }
        Some(ElixirPayment {
            code: CREDIT_TRANSFER,
            date: tx.entry_date.unwrap_or(tx.value_date),
            amount: tx.amount,
            ordering_account,
            beneficiary_account,
            ordering_party: clean(&party),
            beneficiary_party: clean(beneficiary_party),
            title: clean(&d.title),
            classification: STANDARD_CLASSIFICATION.to_owned(),
        })
    }
}

/// Replaces the characters the format cannot carry and squeezes spaces, for texts that come
/// from a bank statement rather than from GSKO.
fn clean(s: &str) -> String {
    s.replace(['"', '|'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Wraps a text into at most 4 lines of 35 characters, breaking at spaces where possible.
fn wrap(record: usize, field: &'static str, text: &str) -> Result<String, ElixirError> {
    if text.contains(['"', '|', '\r', '\n']) {
        return Err(ElixirError::Field {
            record,
            field,
            problem: "contains a double quote, '|' or a line break".into(),
        });
    }
    let mut lines: Vec<String> = Vec::new();
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
    if !cur.is_empty() {
        lines.push(cur);
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

/// Writes Elixir-0 records, CRLF-terminated, in a charset the receiving ledger expects.
pub struct ElixirWriter<W> {
    out: W,
    charset: Charset,
    records: usize,
}

impl<W: Write> ElixirWriter<W> {
    pub fn new(out: W, charset: Charset) -> Self {
        ElixirWriter {
            out,
            charset,
            records: 0,
        }
    }

    /// Writes one record; nothing is written if the record is refused.
    pub fn write(&mut self, p: &ElixirPayment) -> Result<(), ElixirError> {
        let record = self.records + 1;
        let line = format!(
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
        );
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
    }
}
