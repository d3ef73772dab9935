//! Local-tax rules: interest on arrears and allocation of payments. No I/O.
//!
//! Everything here is an **ESTIMATE** for a resident-facing view ("what is due today"): the
//! authority's ledger (RADIX) is the truth. Every result type carries `estimate: true` so a
//! portal cannot forget to say so.
//!
//! Abbreviations: **OP** = Ordynacja podatkowa (ustawa z 29.08.1997); **upol** = ustawa o
//! podatkach i opłatach lokalnych.
//!
//! | rule | where |
//! |---|---|
//! | basic rate of odsetki za zwłokę, by effective date (art. 56 §1 OP) | [`InterestRates`], `config/rates/odsetki-za-zwloke.toml` |
//! | interest per day, 365-day year, split at rate changes | [`interest_on_arrears`] |
//! | rounding of interest to full złoty (art. 63 §1 OP) | [`round_to_full_zloty`] |
//! | de-minimis threshold 8.70 zł (art. 54 §1 pkt 5 OP) | [`InterestOptions::threshold`] |
//! | due date on Saturday / Sunday / holiday moves (art. 12 §5 OP) | [`calendar`] |
//! | proportional split of a partial payment (art. 55 §2 OP) | [`split_payment`] |
//! | order of allocation of a payment (art. 62 §1 OP) | [`allocate`] |
//! | per-installment view | [`due_today`] |
//!
//! ```
//! use chrono::NaiveDate;
//! use gsko_model::Amount;
//! use gsko_taxrules::{interest_on_arrears, split_payment, InterestOptions, InterestRates};
//!
//! let rates = InterestRates::builtin()?;
//! let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
//! // 883 zł due 15 Mar 2024, paid 30 Sep 2024: 199 days at 14.5 % = 69.81 zł -> 70 zł.
//! let r = interest_on_arrears(
//!     Amount::parse_zloty("883").unwrap(),
//!     day(2024, 3, 15),
//!     day(2024, 9, 30),
//!     &rates,
//!     InterestOptions::default(),
//! )?;
//! assert_eq!(r.interest.to_string(), "70.00");
//! // 436 zł paid: split per art. 55 §2 OP.
//! let s = split_payment(Amount::parse_zloty("436").unwrap(), r.principal, r.interest);
//! assert_eq!((s.principal.to_string(), s.interest.to_string()), ("403.97".into(), "32.03".into()));
//! # Ok::<(), gsko_taxrules::TaxRulesError>(())
//! ```
//!
//! All money arithmetic is exact integer arithmetic (grosze, rates in basis points, 128-bit
//! intermediates); no floats anywhere.

pub mod allocation;
pub mod calendar;
pub mod due;
pub mod error;
pub mod interest;
pub mod rates;
pub mod split;

pub use allocation::{allocate, allocate_with, AllocatedLine, Allocation, AllocationBasis, Arrear};
pub use calendar::{
    easter_sunday, effective_due_date, is_working_day, polish_public_holiday, warsaw_date, Holiday,
};
pub use due::{due_today, due_today_with, InstallmentDue};
pub use error::TaxRulesError;
pub use interest::{
    interest_on_arrears, round_to_full_zloty, ExactGrosze, InterestOptions, InterestPeriod,
    InterestResult, InterestStatus, DEFAULT_THRESHOLD_GROSZE,
};
pub use rates::{InterestRates, RateEntry};
pub use split::{split_payment, Split};
