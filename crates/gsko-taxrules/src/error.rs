//! Errors of the tax-rule computations. No function of this crate panics on any input; what it
//! cannot compute it says here.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxRulesError {
    /// The rate table could not be read as TOML of the expected shape.
    #[error("rate table is not valid TOML of the expected shape: {0}")]
    RateTableSyntax(String),
    /// A date in the rate table is not an ISO date (YYYY-MM-DD).
    #[error("rate table entry {index}: {value:?} is not an ISO date (YYYY-MM-DD)")]
    RateTableDate { index: usize, value: String },
    #[error("rate table is empty")]
    RateTableEmpty,
    /// Entries must be strictly ascending by effective date (sorted, no duplicates).
    #[error("rate table entry {index} ({date}) is not after the previous entry ({previous})")]
    RateTableOrder {
        index: usize,
        date: NaiveDate,
        previous: NaiveDate,
    },
    #[error("rate table entry {index} ({date}): rate {basis_points} bp is invalid: {reason}")]
    RateTableRate {
        index: usize,
        date: NaiveDate,
        basis_points: u32,
        reason: &'static str,
    },
    /// No rate is known for a day the interest period covers (before the first table entry).
    #[error("no interest rate known for {0}: the rate table starts later")]
    NoRateFor(NaiveDate),
    /// A date outside the range the calendar of Polish public holidays supports.
    #[error("date {0} is outside the supported range {first}..={last}", first = crate::calendar::FIRST_SUPPORTED, last = crate::calendar::LAST_SUPPORTED)]
    DateOutOfRange(NaiveDate),
    /// An intermediate value did not fit (amounts near `i64::MAX` grosze).
    #[error("arithmetic overflow (amount too large)")]
    Overflow,
}
