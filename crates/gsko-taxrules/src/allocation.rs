//! Allocation of a payment to arrears (art. 62 §1 OP), each share split per art. 55 §2 OP.
//!
//! **Art. 62 §1 OP:** when the taxpayer has tax arrears, a payment is applied to the arrear with
//! the **earliest due date within the tax indicated by the taxpayer**; with no indication, or
//! no arrear in the indicated tax, to the arrear with the **earliest due date among all
//! arrears**. Paying to a bank account dedicated to one tax counts as indicating it — the
//! caller passes that levy as `indicated_levy`.
//!
//! How this estimate proceeds:
//! - Only arrears overdue on the payment day (after the art. 12 §5 OP shift) are arrears; other
//!   entries are listed in [`Allocation::not_overdue`] and receive nothing.
//! - With an indicated levy that has arrears, the payment goes to that levy's arrears only,
//!   earliest due date first; what is left is an overpayment (art. 72 §1 OP). The authority
//!   then offsets it **ex officio** against other arrears (art. 76 §1, art. 76a §1 OP) — that
//!   is a separate act recorded by the ledger, flagged here by
//!   [`Allocation::overpayment_may_be_offset`], not simulated.
//! - Without an effective indication, the payment goes to all arrears, earliest due date first.
//! - Equal due dates keep the order of the input slice (stable).
//! - On each arrear the interest due on the payment day is computed
//!   ([`crate::interest_on_arrears`]); a payment covering principal + interest settles it, a
//!   smaller one is split per art. 55 §2 OP ([`crate::split_payment`]) and ends the allocation.
//! - Reminder costs (koszty upomnienia) are not modelled: where they fall in the order was not
//!   verified.
//!
//! An ESTIMATE; the ledger is the truth.

use crate::{
    calendar, interest_on_arrears, split_payment, InterestOptions, InterestRates, InterestResult,
    TaxRulesError,
};
use chrono::NaiveDate;
use gsko_model::{Amount, LevyKind};
use serde::Serialize;

/// An unpaid obligation (its principal) with its due date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arrear {
    /// Caller's id of the arrear (e.g. liability id + installment number).
    pub id: String,
    pub levy: LevyKind,
    /// Due date as stated in the decision (the art. 12 §5 OP shift is applied here).
    pub due_date: NaiveDate,
    /// Unpaid principal.
    pub principal: Amount,
}

/// Why an arrear came at its place in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationBasis {
    /// Earliest due date within the levy the taxpayer indicated (art. 62 §1 OP).
    IndicatedLevy,
    /// Earliest due date among all arrears: no indication, or no arrear in the indicated levy
    /// (art. 62 §1 OP).
    EarliestDue,
}

/// What one arrear receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllocatedLine {
    pub arrear_id: String,
    pub levy: LevyKind,
    pub due_date: NaiveDate,
    pub basis: AllocationBasis,
    /// Interest due on the payment day, with its breakdown.
    pub interest_due: InterestResult,
    /// Applied to the principal.
    pub principal_paid: Amount,
    /// Applied to the interest.
    pub interest_paid: Amount,
    pub principal_left: Amount,
    pub interest_left: Amount,
    /// Principal and interest both paid in full.
    pub settled: bool,
}

/// How a payment would be applied. An ESTIMATE: the ledger is the truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allocation {
    /// Always `true`.
    pub estimate: bool,
    pub payment: Amount,
    pub payment_date: NaiveDate,
    pub indicated_levy: Option<LevyKind>,
    /// Whether the indication was effective (the indicated levy had arrears).
    pub indication_applied: bool,
    /// Arrears that received something, in the order of application.
    pub lines: Vec<AllocatedLine>,
    /// What no arrear took (nadpłata, art. 72 §1 OP).
    pub overpayment: Amount,
    /// `true` when there is an overpayment while arrears remain unpaid: the authority offsets it
    /// against them ex officio (art. 76 §1 OP), which this estimate does not simulate.
    pub overpayment_may_be_offset: bool,
    /// Ids of the input entries not overdue on the payment day (not arrears, nothing applied).
    pub not_overdue: Vec<String>,
}

/// [`allocate_with`] with the default [`InterestOptions`] (8.70 zł threshold, due date shift).
pub fn allocate(
    payment: Amount,
    payment_date: NaiveDate,
    arrears: &[Arrear],
    indicated_levy: Option<LevyKind>,
    rates: &InterestRates,
) -> Result<Allocation, TaxRulesError> {
    allocate_with(
        payment,
        payment_date,
        arrears,
        indicated_levy,
        rates,
        InterestOptions::default(),
    )
}

/// Applies `payment` made on `payment_date` to `arrears` per art. 62 §1 and art. 55 §2 OP (see
/// the module documentation).
pub fn allocate_with(
    payment: Amount,
    payment_date: NaiveDate,
    arrears: &[Arrear],
    indicated_levy: Option<LevyKind>,
    rates: &InterestRates,
    opts: InterestOptions,
) -> Result<Allocation, TaxRulesError> {
    // Overdue arrears with their effective due dates, in input order.
    let mut overdue: Vec<(NaiveDate, &Arrear)> = Vec::new();
    let mut not_overdue = Vec::new();
    for a in arrears {
        let eff = if opts.shift_due_date {
            calendar::effective_due_date(a.due_date)?
        } else {
            a.due_date
        };
        if payment_date > eff && a.principal > Amount::ZERO {
            overdue.push((eff, a));
        } else if a.principal > Amount::ZERO {
            not_overdue.push(a.id.clone());
        }
    }
    // Stable: equal due dates keep the input order.
    overdue.sort_by_key(|(eff, _)| *eff);

    let indication_applied =
        indicated_levy.is_some_and(|l| overdue.iter().any(|(_, a)| a.levy == l));
    let (order, basis): (Vec<&Arrear>, AllocationBasis) = match indicated_levy {
        Some(l) if indication_applied => (
            overdue
                .iter()
                .filter(|(_, a)| a.levy == l)
                .map(|(_, a)| *a)
                .collect(),
            AllocationBasis::IndicatedLevy,
        ),
        _ => (
            overdue.iter().map(|(_, a)| *a).collect(),
            AllocationBasis::EarliestDue,
        ),
    };

    let mut left = payment;
    let mut lines = Vec::new();
    let mut unpaid_remain = false;
    for a in &order {
        if left == Amount::ZERO {
            unpaid_remain = true;
            break;
        }
        let interest = interest_on_arrears(a.principal, a.due_date, payment_date, rates, opts)?;
        let split = split_payment(left, a.principal, interest.interest);
        let principal_left = Amount::from_grosze(a.principal.grosze() - split.principal.grosze())
            .map_err(|_| TaxRulesError::Overflow)?;
        let interest_left =
            Amount::from_grosze(interest.interest.grosze() - split.interest.grosze())
                .map_err(|_| TaxRulesError::Overflow)?;
        let settled = principal_left == Amount::ZERO && interest_left == Amount::ZERO;
        if !settled {
            unpaid_remain = true;
        }
        lines.push(AllocatedLine {
            arrear_id: a.id.clone(),
            levy: a.levy,
            due_date: a.due_date,
            basis,
            interest_due: interest,
            principal_paid: split.principal,
            interest_paid: split.interest,
            principal_left,
            interest_left,
            settled,
        });
        left = split.surplus;
    }
    // Arrears outside the indicated levy stay unpaid by this payment.
    if order.len() < overdue.len() {
        unpaid_remain = true;
    }
    Ok(Allocation {
        estimate: true,
        payment,
        payment_date,
        indicated_levy,
        indication_applied,
        lines,
        overpayment: left,
        overpayment_may_be_offset: left > Amount::ZERO && unpaid_remain,
        not_overdue,
    })
}
