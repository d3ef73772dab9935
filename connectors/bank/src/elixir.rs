//! Elixir-0 payment records for ledgers (spec §4.4). The format and its writer live in
//! `gsko-elixir`, shared with the RADIX connector; this module re-exports them and adds what is
//! bank-specific: the record of an identified statement credit ([`FromCredit`]).

use crate::identify::Identification;
use crate::mt940::Transaction;
use gsko_model::Nrb;

pub use gsko_elixir::{
    wrap, ElixirError, ElixirPayment, ElixirWriter, TextEncoding, CREDIT_TRANSFER, LINE_CHARS,
    STANDARD_CLASSIFICATION, TEXT_LINES,
};

/// Builds Elixir-0 records from bank statement entries (an extension of
/// [`ElixirPayment`], which lives in `gsko-elixir`): `ElixirPayment::from_credit(…)` with this
/// trait in scope.
pub trait FromCredit: Sized {
    /// The record for an identified incoming bank payment: the payer's account as ordering
    /// party, the virtual account (or the statement account) as beneficiary. `None` when the
    /// entry is not a credit or the payer's account is not a full NRB.
    fn from_credit(
        tx: &Transaction,
        statement_account: &Nrb,
        identification: &Identification,
        beneficiary_party: &str,
    ) -> Option<Self>;
}

impl FromCredit for ElixirPayment {
    fn from_credit(
        tx: &Transaction,
        statement_account: &Nrb,
        identification: &Identification,
        beneficiary_party: &str,
    ) -> Option<ElixirPayment> {
        from_credit(tx, statement_account, identification, beneficiary_party)
    }
}

/// See [`FromCredit::from_credit`].
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

/// Replaces the characters the format cannot carry and squeezes spaces (line breaks too), for
/// texts that come from a bank statement rather than from GSKO.
fn clean(s: &str) -> String {
    s.replace(['"', '|'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
