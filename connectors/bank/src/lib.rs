//! Bank connector: MT940 statements in, identified payments and Elixir-0 records out.
//!
//! A municipality learns of bank payments from its bank's daily statement (MT940, "wyciąg
//! bankowy"); each taxpayer pays into a virtual account of their own, so most credits can be
//! attributed without reading titles (spec §4.2, §4.5). Layers, each replaceable on its own:
//! - [`charset`]: the code pages Polish banks write (CP852, Windows-1250, ISO-8859-2, UTF-8);
//! - [`mt940`]: a streaming reader of statements and entries, with balance checks and per-entry
//!   errors that keep the raw text;
//! - [`layout86`]: the banks' `:86:` conventions behind the [`Layout86`] trait;
//! - [`mod@identify`]: virtual account → gateway payout → title → unidentified;
//! - [`elixir`]: Elixir-0 records for ledgers (the writer is `gsko-elixir`'s; the record of a
//!   statement credit is here);
//! - [`inspect_statement`]: what a file contains, as JSON lines, touching nothing.
//!
//! The connector knows its external formats and the normalized model, nothing else. It never
//! logs names, account numbers or amounts: errors carry them to the admin, logs do not.
//!
//! ```
//! use gsko_bank::{identify, parse_statements, Identification, VirtualAccountDirectory};
//! let file = ":20:ST1\n:25:PL61109010140000071219812874\n:28C:1\n:60F:C260313PLN100,00\n\
//! :61:2603130313C25,50NTRFNONREF//B1\n:86:152~00PRZELEW~20Podatek rolny\n\
//! ~32JAN NOWAK\n:62F:C260313PLN125,50\n-\n";
//! for statement in parse_statements(file.as_bytes(), "example.sta") {
//!     let statement = statement?;
//!     assert!(statement.trailer.balance_verified);
//!     let tx = &statement.transactions[0];
//!     assert_eq!(tx.amount.grosze(), 2550);
//!     assert!(matches!(
//!         identify(tx, &VirtualAccountDirectory::new()),
//!         Identification::Unidentified { .. }
//!     ));
//! }
//! # Ok::<(), gsko_bank::Mt940Error>(())
//! ```

pub mod charset;
pub mod elixir;
pub mod identify;
pub mod layout86;
pub mod mt940;

pub use charset::Charset;
pub use elixir::{from_credit, ElixirError, ElixirPayment, ElixirWriter, FromCredit};
pub use identify::{
    identify, identify_with, AccountRef, Gateway, GatewayRule, Identification, IdentifyRules,
    TitleRule, UnidentifiedReason, VirtualAccountDirectory, VirtualRange,
};
pub use layout86::{Details, Layout86, MbankCollectLayout, SeparatedLayout};
pub use mt940::{
    parse_statements, parse_statements_with, Balance, Location, Mark, Mt940Error, Mt940Reader,
    ParseOptions, Record, Statement, StatementHeader, StatementTrailer, Transaction,
};

use serde_json::json;
use std::io::{BufReader, Write};
use std::path::Path;

/// What [`inspect_statement`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InspectSummary {
    pub statements: u64,
    pub payments: u64,
    pub debits: u64,
    pub errors: u64,
}

/// The file could not be opened, or the output could not be written. Problems inside the file
/// are printed as `"kind":"error"` lines, not returned.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the report: {0}")]
    Output(#[source] std::io::Error),
}

/// `gsko inspect statement FILE`: prints every statement, entry and problem of an MT940 file
/// as JSON lines, with default options (UTF-8, all known layouts) and no directory, so credits
/// are identified only by gateway and title patterns and virtual accounts are shown as found.
pub fn inspect_statement(
    path: &Path,
    out: &mut impl Write,
) -> Result<InspectSummary, InspectError> {
    inspect_statement_with(
        path,
        &ParseOptions::default(),
        &VirtualAccountDirectory::default(),
        &IdentifyRules::default(),
        out,
    )
}

/// [`inspect_statement`] with a bank's options and a tenant's directory.
pub fn inspect_statement_with(
    path: &Path,
    options: &ParseOptions,
    dir: &VirtualAccountDirectory,
    rules: &IdentifyRules,
    out: &mut impl Write,
) -> Result<InspectSummary, InspectError> {
    let file = std::fs::File::open(path).map_err(|source| InspectError::Open {
        path: path.display().to_string(),
        source,
    })?;
    let name = path.display().to_string();
    let reader = Mt940Reader::new(BufReader::new(file), name, options.clone());
    let mut summary = InspectSummary::default();
    for item in reader {
        let line = match item {
            Ok(Record::Header(_)) => continue,
            Ok(Record::Trailer(t)) => {
                summary.statements += 1;
                json!({
                    "kind": "statement",
                    "statement": t.reference,
                    "line": t.line,
                    "entries": t.entries,
                    "rejected": t.rejected,
                    "credits_grosze": t.credits.grosze(),
                    "debits_grosze": t.debits.grosze(),
                    "closing": t.closing,
                    "balance_verified": t.balance_verified,
                })
            }
            Ok(Record::Transaction(tx)) => {
                let identification = identify_with(&tx, dir, rules);
                if tx.mark.is_inflow() {
                    summary.payments += 1;
                } else {
                    summary.debits += 1;
                }
                let d = tx.details.as_ref();
                json!({
                    "kind": if tx.mark.is_inflow() { "payment" } else { "debit" },
                    "statement": tx.statement,
                    "line": tx.line,
                    "value_date": tx.value_date,
                    "entry_date": tx.entry_date,
                    "mark": tx.mark,
                    "amount_grosze": tx.amount.grosze(),
                    "type_code": tx.type_code,
                    "customer_reference": tx.customer_reference,
                    "bank_reference": tx.bank_reference,
                    "title": d.map(|d| d.title.as_str()),
                    "counterparty_name": d.and_then(|d| d.counterparty_name.as_deref()),
                    "counterparty_account": d.and_then(|d| d.counterparty_account.as_deref()),
                    "layout": d.map(|d| d.layout.as_str()),
                    "identification": identification,
                })
            }
            Err(e) => {
                summary.errors += 1;
                let at = e.location();
                json!({
                    "kind": "error",
                    "message": e.to_string(),
                    "file": at.map(|a| a.file.as_str()),
                    "line": at.map(|a| a.line),
                    "statement": at.map(|a| a.statement.as_str()),
                    "field": e.field(),
                    "raw": e.raw(),
                })
            }
        };
        writeln!(out, "{line}").map_err(InspectError::Output)?;
    }
    Ok(summary)
}
