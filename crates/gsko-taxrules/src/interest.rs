//! Interest on arrears (odsetki za zwłokę) for one arrear, as an ESTIMATE.
//!
//! Rules applied, in order:
//!
//! 1. **Due date shift, art. 12 §5 OP:** a due date on a Saturday, Sunday or public holiday
//!    moves to the next working day ([`crate::effective_due_date`]); switchable by
//!    [`InterestOptions::shift_due_date`] for callers whose due date is already shifted.
//! 2. **Period, art. 53 §1 and §4 OP; rozporządzenie MF z 22.08.2005 w sprawie naliczania
//!    odsetek za zwłokę (Dz.U. Nr 165 poz. 1373):** interest accrues per day on the unpaid
//!    principal (an arrear, art. 51 §1 OP) from the day after the (shifted) due date up to and
//!    including the payment day; it is paid without a call from the authority (art. 55 §1 OP).
//!    (The paragraph number §4 is cited from memory; the spec cites the regulation.)
//! 3. **Formula, same regulation:** `principal × days × rate / 365`, with a **365-day year also
//!    in leap years** (29 February is a day of the period like any other, the divisor stays
//!    365). The period is split at each rate change of the table (art. 56 §1 OP rates,
//!    [`InterestRates`]). The sum over the periods is kept as an exact fraction of grosze.
//! 4. **Threshold, art. 54 §1 pkt 5 OP:** interest is not charged when it would not exceed
//!    three times the Poczta Polska fee for a registered letter, 8.70 zł (3 × 2.90 zł since
//!    1.02.2014; [`DEFAULT_THRESHOLD_GROSZE`], a parameter). The comparison is made on the
//!    **exact, unrounded** amount: 8.70 zł exactly is not charged, anything above is (and is
//!    then rounded to 9 zł). This reading ("nie przekracza" applied before rounding) follows
//!    common commentary; the statute itself does not say which value is compared.
//! 5. **Rounding, art. 63 §1 OP:** the interest is rounded to full złoty, amounts below 50 gr
//!    dropped and 50 gr or more rounded up. Only the total is rounded, never the periods.
//!
//! Not modelled: the reduced (art. 56a) and increased (art. 56b) rates, the suspension of
//! interest under art. 54 §1 pkt 1–4 and 7 (e.g. after a late decision) and the cap on interest
//! for late-delivered decisions. The ledger is the truth.

use crate::{calendar, InterestRates, TaxRulesError};
use chrono::NaiveDate;
use gsko_model::Amount;
use serde::Serialize;

/// 8.70 zł: three times the Poczta Polska registered-letter fee (2.90 zł), art. 54 §1 pkt 5 OP.
pub const DEFAULT_THRESHOLD_GROSZE: i64 = 870;

/// Denominator of per-day interest in grosze with a rate in basis points: 365 days × 10 000.
const DENOM: u128 = 365 * 10_000;

/// An exact non-negative number of grosze, `numerator / denominator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExactGrosze {
    pub numerator: u128,
    pub denominator: u128,
}

impl ExactGrosze {
    const ZERO: ExactGrosze = ExactGrosze {
        numerator: 0,
        denominator: DENOM,
    };

    /// Hundredths of a grosz, truncated (for display: `1234567` = 123.4567 zł).
    pub fn hundredths_of_grosz_floor(&self) -> u128 {
        self.numerator.saturating_mul(100) / self.denominator.max(1)
    }

    /// Whether the value is greater than `grosze` (exactly).
    pub fn exceeds(&self, grosze: Amount) -> bool {
        let g = u128::try_from(grosze.grosze()).unwrap_or(0);
        match g.checked_mul(self.denominator) {
            Some(scaled) => self.numerator > scaled,
            None => false,
        }
    }

    /// Rounded to full złoty per art. 63 §1 OP (< 50 gr down, ≥ 50 gr up), in grosze.
    pub fn rounded_to_full_zloty(&self) -> Result<Amount, TaxRulesError> {
        let per_zloty = self
            .denominator
            .checked_mul(100)
            .ok_or(TaxRulesError::Overflow)?;
        let half = self
            .denominator
            .checked_mul(50)
            .ok_or(TaxRulesError::Overflow)?;
        let zloty = self
            .numerator
            .checked_add(half)
            .ok_or(TaxRulesError::Overflow)?
            / per_zloty.max(1);
        let grosze = zloty.checked_mul(100).ok_or(TaxRulesError::Overflow)?;
        let g = i64::try_from(grosze).map_err(|_| TaxRulesError::Overflow)?;
        Amount::from_grosze(g).map_err(|_| TaxRulesError::Overflow)
    }
}

/// Options of [`interest_on_arrears`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterestOptions {
    /// De-minimis threshold of art. 54 §1 pkt 5 OP: interest whose exact value does not exceed
    /// it is not charged. Default 8.70 zł.
    pub threshold: Amount,
    /// Apply the art. 12 §5 OP shift of a due date falling on a day off. Default `true`; set to
    /// `false` when the caller's due date is already the effective one.
    pub shift_due_date: bool,
}

impl Default for InterestOptions {
    fn default() -> Self {
        InterestOptions {
            threshold: Amount::from_grosze(DEFAULT_THRESHOLD_GROSZE).unwrap_or(Amount::ZERO),
            shift_due_date: true,
        }
    }
}

/// Why the charged interest is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InterestStatus {
    /// Interest is charged (rounded per art. 63 §1 OP).
    Charged,
    /// The payment day is not after the effective due date: no arrear yet (art. 51 §1 OP).
    NotOverdue,
    /// Nothing is unpaid.
    ZeroPrincipal,
    /// The exact interest does not exceed the threshold of art. 54 §1 pkt 5 OP: not charged.
    BelowThreshold,
}

/// One period at a single rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterestPeriod {
    /// First day of the period (inclusive).
    pub from: NaiveDate,
    /// Last day of the period (inclusive).
    pub to: NaiveDate,
    pub days: u32,
    /// Annual basic rate in basis points.
    pub rate_basis_points: u32,
    /// Unrounded interest of this period: `principal × days × rate_bp / (365 × 10 000)` grosze.
    pub exact: ExactGrosze,
    /// `exact` in hundredths of a grosz, truncated (for display only).
    pub hundredths_of_grosz: u128,
}

/// Interest on one arrear up to a payment day. An ESTIMATE: the ledger is the truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterestResult {
    /// Always `true`: this is an estimate for display, the authority's ledger decides.
    pub estimate: bool,
    pub principal: Amount,
    /// The due date as given.
    pub due_date: NaiveDate,
    /// The due date after the art. 12 §5 OP shift (equal to `due_date` if not shifted).
    pub effective_due_date: NaiveDate,
    pub payment_date: NaiveDate,
    /// Days of delay: from the day after `effective_due_date` to `payment_date`, inclusive.
    pub days: u32,
    pub periods: Vec<InterestPeriod>,
    /// Exact unrounded total (sum of the periods).
    pub exact: ExactGrosze,
    /// `exact` in hundredths of a grosz, truncated (for display only).
    pub hundredths_of_grosz: u128,
    /// The total rounded to full złoty (art. 63 §1 OP), before the threshold is applied.
    pub rounded: Amount,
    /// What is charged: `rounded`, or 0 when `status` says why not.
    pub interest: Amount,
    pub status: InterestStatus,
    /// The threshold that was applied.
    pub threshold: Amount,
    /// The table's last verified date, if it has one.
    pub rates_verified_through: Option<NaiveDate>,
    /// `true` when some day of the period lies after `rates_verified_through`: the last known
    /// rate was assumed for it.
    pub beyond_verified_rates: bool,
}

/// Rounds an amount of grosze to full złoty per art. 63 §1 OP: below 50 gr down, 50 gr or more
/// up (25.49 → 25, 25.50 → 26). Errors only when the result would not fit.
pub fn round_to_full_zloty(amount: Amount) -> Result<Amount, TaxRulesError> {
    let g = amount.grosze();
    let up = g.checked_add(50).ok_or(TaxRulesError::Overflow)?;
    Amount::from_grosze(up / 100 * 100).map_err(|_| TaxRulesError::Overflow)
}

/// Interest on arrears on `principal` (unpaid since `due_date`) up to and including
/// `payment_date` — see the module documentation for the rules and their articles.
///
/// Errors: dates outside the holiday calendar's range (when shifting), days before the first
/// entry of the rate table, or amounts too large for exact arithmetic. A `payment_date` not
/// after the effective due date is not an error: the result is 0 with
/// [`InterestStatus::NotOverdue`].
pub fn interest_on_arrears(
    principal: Amount,
    due_date: NaiveDate,
    payment_date: NaiveDate,
    rates: &InterestRates,
    opts: InterestOptions,
) -> Result<InterestResult, TaxRulesError> {
    let effective_due_date = if opts.shift_due_date {
        calendar::effective_due_date(due_date)?
    } else {
        due_date
    };
    let mut result = InterestResult {
        estimate: true,
        principal,
        due_date,
        effective_due_date,
        payment_date,
        days: 0,
        periods: Vec::new(),
        exact: ExactGrosze::ZERO,
        hundredths_of_grosz: 0,
        rounded: Amount::ZERO,
        interest: Amount::ZERO,
        status: InterestStatus::NotOverdue,
        threshold: opts.threshold,
        rates_verified_through: rates.verified_through(),
        beyond_verified_rates: false,
    };
    if payment_date <= effective_due_date {
        return Ok(result);
    }
    let first_day = effective_due_date
        .succ_opt()
        .ok_or(TaxRulesError::DateOutOfRange(effective_due_date))?;
    result.beyond_verified_rates = rates.verified_through().is_some_and(|v| payment_date > v);

    let p = u128::try_from(principal.grosze()).map_err(|_| TaxRulesError::Overflow)?;
    let mut total: u128 = 0;
    let mut total_days: u32 = 0;
    for (from, to, bp) in rates.segments(first_day, payment_date)? {
        let days64 = (to - from).num_days() + 1;
        let days = u32::try_from(days64).map_err(|_| TaxRulesError::Overflow)?;
        let numerator = p
            .checked_mul(u128::from(days))
            .and_then(|x| x.checked_mul(u128::from(bp)))
            .ok_or(TaxRulesError::Overflow)?;
        total = total
            .checked_add(numerator)
            .ok_or(TaxRulesError::Overflow)?;
        total_days = total_days
            .checked_add(days)
            .ok_or(TaxRulesError::Overflow)?;
        let exact = ExactGrosze {
            numerator,
            denominator: DENOM,
        };
        result.periods.push(InterestPeriod {
            from,
            to,
            days,
            rate_basis_points: bp,
            exact,
            hundredths_of_grosz: exact.hundredths_of_grosz_floor(),
        });
    }
    result.days = total_days;
    result.exact = ExactGrosze {
        numerator: total,
        denominator: DENOM,
    };
    result.hundredths_of_grosz = result.exact.hundredths_of_grosz_floor();
    result.rounded = result.exact.rounded_to_full_zloty()?;
    if principal == Amount::ZERO {
        result.status = InterestStatus::ZeroPrincipal;
    } else if !result.exact.exceeds(opts.threshold) {
        result.status = InterestStatus::BelowThreshold;
    } else {
        result.status = InterestStatus::Charged;
        result.interest = result.rounded;
    }
    Ok(result)
}
