//! "What is due today" per installment of a liability. An ESTIMATE: the ledger is the truth.
//!
//! For each installment: the principal still unpaid, the due date after the art. 12 §5 OP
//! shift, and — when the installment is overdue — interest on arrears up to and including
//! `today` (as if paying today), shown apart from the principal.
//!
//! Limitation (why this is only an estimate): `paid_per_installment` carries no payment dates,
//! so interest is computed on the principal left **as if it had been unpaid for the whole
//! period since the due date**. A partial payment made after the due date reduced the interest
//! before it and carried its own interest share (art. 55 §2 OP); neither is known here, so the
//! interest shown can be higher than the ledger's. The art. 54 §1 pkt 5 threshold and the art.
//! 63 §1 rounding apply per installment.

use crate::{
    calendar, interest_on_arrears, InterestOptions, InterestRates, InterestResult, TaxRulesError,
};
use chrono::NaiveDate;
use gsko_model::{Amount, Liability};
use serde::Serialize;
use std::collections::BTreeMap;

/// One installment as due on a given day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallmentDue {
    /// Always `true`.
    pub estimate: bool,
    pub seq: u8,
    /// Due date after the art. 12 §5 OP shift.
    pub due_date: NaiveDate,
    /// Due date as stated in the decision.
    pub stated_due_date: NaiveDate,
    pub principal_left: Amount,
    /// Interest on arrears up to and including `today` (0 when not overdue or below the
    /// threshold).
    pub interest: Amount,
    /// `principal_left + interest`.
    pub total: Amount,
    /// Unpaid principal and `today` after the (shifted) due date.
    pub overdue: bool,
    /// The interest breakdown, for overdue installments.
    pub interest_detail: Option<InterestResult>,
}

/// [`due_today_with`] with the default [`InterestOptions`].
pub fn due_today(
    liability: &Liability,
    paid_per_installment: &BTreeMap<u8, Amount>,
    today: NaiveDate,
    rates: &InterestRates,
) -> Result<Vec<InstallmentDue>, TaxRulesError> {
    due_today_with(
        liability,
        paid_per_installment,
        today,
        rates,
        InterestOptions::default(),
    )
}

/// Each installment of `liability` as due on `today`. `paid_per_installment` maps an
/// installment's `seq` to the principal already paid on it (payments beyond the installment
/// amount leave 0 left). Installments are returned in the liability's order.
pub fn due_today_with(
    liability: &Liability,
    paid_per_installment: &BTreeMap<u8, Amount>,
    today: NaiveDate,
    rates: &InterestRates,
    opts: InterestOptions,
) -> Result<Vec<InstallmentDue>, TaxRulesError> {
    let mut out = Vec::with_capacity(liability.installments.len());
    for inst in &liability.installments {
        let paid = paid_per_installment
            .get(&inst.seq)
            .copied()
            .unwrap_or(Amount::ZERO);
        let principal_left = Amount::from_grosze((inst.amount.grosze() - paid.grosze()).max(0))
            .map_err(|_| TaxRulesError::Overflow)?;
        let due_date = if opts.shift_due_date {
            calendar::effective_due_date(inst.due_date)?
        } else {
            inst.due_date
        };
        let overdue = principal_left > Amount::ZERO && today > due_date;
        let interest_detail = if overdue {
            Some(interest_on_arrears(
                principal_left,
                inst.due_date,
                today,
                rates,
                opts,
            )?)
        } else {
            None
        };
        let interest = interest_detail
            .as_ref()
            .map(|r| r.interest)
            .unwrap_or(Amount::ZERO);
        let total = principal_left
            .checked_add(interest)
            .ok_or(TaxRulesError::Overflow)?;
        out.push(InstallmentDue {
            estimate: true,
            seq: inst.seq,
            due_date,
            stated_due_date: inst.due_date,
            principal_left,
            interest,
            total,
            overdue,
            interest_detail,
        });
    }
    Ok(out)
}
