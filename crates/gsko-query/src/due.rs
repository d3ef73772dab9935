//! "What is due today": for each unpaid installment the principal left and the interest on
//! arrears up to a day, apart, and — for an amount the resident is about to pay — how the
//! payment would be applied (art. 62 §1 and art. 55 §2 Ordynacja podatkowa).
//!
//! Everything here is an ESTIMATE computed by GSKO from the assessed installments and the
//! payments the ledger booked against them; the ledger's own figures are `/balance`. Payments
//! booked without an installment reference are not attributed to an installment here.

use chrono::NaiveDate;
use gsko_model::{Amount, LevyKind, PostingKind};
use gsko_store::ResidentView;
use gsko_taxrules::{Arrear, InterestRates, TaxRulesError};
use serde::Serialize;
use std::collections::BTreeMap;

pub const NOTE: &str = "Estimate computed by GSKO from the installments and the payments booked against them (and those received but not yet booked); interest on arrears per art. 56 Ordynacja podatkowa, rounded to full zloty, not charged up to the 8.70 zl threshold. The tax ledger's figures are authoritative (see /balance).";

#[derive(Debug, Serialize)]
pub struct InterestPeriodView {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: u32,
    /// Annual rate in basis points (1 % = 100).
    pub rate_basis_points: u32,
}

#[derive(Debug, Serialize)]
pub struct DueInstallment {
    pub liability_id: String,
    pub account_id: String,
    pub levy: LevyKind,
    pub year: i32,
    pub seq: u8,
    /// As stated in the decision.
    pub due_date: NaiveDate,
    /// After the move to the next working day (art. 12 §5 OP).
    pub effective_due_date: NaiveDate,
    pub overdue: bool,
    pub principal_left: Amount,
    pub interest: Amount,
    pub total: Amount,
    pub interest_periods: Vec<InterestPeriodView>,
}

#[derive(Debug, Default, Serialize)]
pub struct DueTotals {
    pub principal: i64,
    pub interest: i64,
    pub total: i64,
}

#[derive(Debug, Serialize)]
pub struct PreviewLine {
    pub liability_id: String,
    pub seq: u8,
    pub principal_paid: Amount,
    pub interest_paid: Amount,
    pub principal_left: Amount,
    pub interest_left: Amount,
}

/// How a payment of `amount` on `as_of` would be applied to the overdue installments.
#[derive(Debug, Serialize)]
pub struct PaymentPreview {
    pub amount: Amount,
    pub lines: Vec<PreviewLine>,
    /// What no arrear would take (nadpłata).
    pub overpayment: Amount,
}

#[derive(Debug, Serialize)]
pub struct Due {
    pub tenant: String,
    pub as_of: NaiveDate,
    /// Always true: see `note`.
    pub estimate: bool,
    pub note: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates_verified_through: Option<NaiveDate>,
    /// Some day lies after the last verified entry of the rate table; its last rate was assumed.
    pub beyond_verified_rates: bool,
    pub installments: Vec<DueInstallment>,
    pub totals: DueTotals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_preview: Option<PaymentPreview>,
}

/// Sums, per (liability, installment), what the ledger booked as paid against it.
fn paid_per_installment(v: &ResidentView) -> BTreeMap<(String, u8), i64> {
    let mut paid: BTreeMap<(String, u8), i64> = BTreeMap::new();
    for p in v.accounts.iter().flat_map(|a| a.postings.iter()) {
        let (Some(l), Some(seq)) = (&p.liability_id, p.installment_seq) else {
            continue;
        };
        let sign = match p.kind {
            PostingKind::Payment => 1,
            PostingKind::Refund => -1,
            _ => continue,
        };
        *paid.entry((l.clone(), seq)).or_default() += sign * p.amount.grosze();
    }
    // Payments GSKO saw settle but the ledger has not booked yet count towards the installment
    // they were made for; otherwise the resident would be asked to pay it again.
    for pv in v
        .payments
        .iter()
        .filter(|p| p.status == gsko_store::BookingStatus::Received)
    {
        for item in &pv.payment.items {
            if let (Some(l), Some(seq)) = (&item.liability_id, item.installment_seq) {
                *paid.entry((l.clone(), seq)).or_default() += item.amount.grosze();
            }
        }
    }
    paid
}

pub fn compute(
    v: &ResidentView,
    as_of: NaiveDate,
    pay: Option<Amount>,
    rates: &InterestRates,
) -> Result<Due, TaxRulesError> {
    let paid = paid_per_installment(v);
    let mut installments = Vec::new();
    let mut totals = DueTotals::default();
    let mut beyond = false;
    let mut arrears = Vec::new();
    for l in v.accounts.iter().flat_map(|a| a.liabilities.iter()) {
        let per_seq: BTreeMap<u8, Amount> = l
            .installments
            .iter()
            .filter_map(|i| {
                let p = paid
                    .get(&(l.liability_id.clone(), i.seq))
                    .copied()
                    .unwrap_or(0)
                    .max(0);
                Amount::from_grosze(p).ok().map(|a| (i.seq, a))
            })
            .collect();
        for d in gsko_taxrules::due_today(l, &per_seq, as_of, rates)? {
            if d.principal_left == Amount::ZERO {
                continue;
            }
            beyond |= d
                .interest_detail
                .as_ref()
                .is_some_and(|r| r.beyond_verified_rates);
            totals.principal += d.principal_left.grosze();
            totals.interest += d.interest.grosze();
            totals.total += d.total.grosze();
            if d.overdue {
                arrears.push(Arrear {
                    id: format!("{}#{}", l.liability_id, d.seq),
                    levy: l.levy,
                    due_date: d.stated_due_date,
                    principal: d.principal_left,
                });
            }
            installments.push(DueInstallment {
                liability_id: l.liability_id.clone(),
                account_id: l.account_id.clone(),
                levy: l.levy,
                year: l.year,
                seq: d.seq,
                due_date: d.stated_due_date,
                effective_due_date: d.due_date,
                overdue: d.overdue,
                principal_left: d.principal_left,
                interest: d.interest,
                total: d.total,
                interest_periods: d
                    .interest_detail
                    .map(|r| {
                        r.periods
                            .into_iter()
                            .map(|p| InterestPeriodView {
                                from: p.from,
                                to: p.to,
                                days: p.days,
                                rate_basis_points: p.rate_basis_points,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    installments.sort_by(|a, b| {
        (a.effective_due_date, &a.liability_id, a.seq).cmp(&(
            b.effective_due_date,
            &b.liability_id,
            b.seq,
        ))
    });
    let payment_preview = match pay {
        Some(amount) => {
            let a = gsko_taxrules::allocate(amount, as_of, &arrears, None, rates)?;
            let lines = a
                .lines
                .into_iter()
                .map(|line| {
                    let (lid, seq) = line
                        .arrear_id
                        .rsplit_once('#')
                        .unwrap_or((line.arrear_id.as_str(), "0"));
                    PreviewLine {
                        liability_id: lid.to_owned(),
                        seq: seq.parse().unwrap_or(0),
                        principal_paid: line.principal_paid,
                        interest_paid: line.interest_paid,
                        principal_left: line.principal_left,
                        interest_left: line.interest_left,
                    }
                })
                .collect();
            Some(PaymentPreview {
                amount,
                lines,
                overpayment: a.overpayment,
            })
        }
        None => None,
    };
    Ok(Due {
        tenant: v.tenant.clone(),
        as_of,
        estimate: true,
        note: NOTE,
        rates_verified_through: rates.verified_through(),
        beyond_verified_rates: beyond,
        installments,
        totals,
        payment_preview,
    })
}
