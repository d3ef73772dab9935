//! The table of basic rates of odsetki za zwłokę (art. 56 §1 OP), kept as data.
//!
//! **Art. 56 §1 OP:** the basic rate is 200 % of the NBP lombard rate plus 2 percentage points,
//! and not less than 8 %. The rate changes whenever the lombard rate does; the table is kept in
//! `config/rates/odsetki-za-zwloke.toml` (one entry per effective date, with its source) and
//! compiled in by [`InterestRates::builtin`]. A deployment may load a newer table with
//! [`InterestRates::from_toml_str`].

use crate::TaxRulesError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The text of `config/rates/odsetki-za-zwloke.toml` as compiled into this crate.
pub const BUILTIN_TOML: &str = include_str!("../../../config/rates/odsetki-za-zwloke.toml");

/// The statutory floor of the basic rate (art. 56 §1 OP: "nie może być niższa niż 8 %").
pub const STATUTORY_MINIMUM_BP: u32 = 800;
/// A sanity ceiling: a basic rate above 100 % per year is treated as a typo in the table.
pub const SANITY_MAXIMUM_BP: u32 = 10_000;

/// One basic rate and the first day it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateEntry {
    /// First day the rate applies (inclusive).
    pub effective_from: NaiveDate,
    /// Annual basic rate in basis points (hundredths of a percent): 14.5 % = 1450.
    pub basis_points: u32,
    /// The NBP lombard rate the entry was derived from, when the table states it.
    pub lombard_basis_points: Option<u32>,
    /// Where the entry comes from.
    pub source: String,
}

/// Validated table of basic rates, strictly ascending by effective date. The last entry applies
/// to every later day (until the table is updated); see [`InterestRates::verified_through`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterestRates {
    entries: Vec<RateEntry>,
    verified_through: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    verified_through: Option<String>,
    #[serde(default)]
    rate: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    effective_from: String,
    basis_points: u32,
    #[serde(default)]
    lombard_basis_points: Option<u32>,
    #[serde(default)]
    source: String,
}

fn parse_date(index: usize, s: &str) -> Result<NaiveDate, TaxRulesError> {
    // Exactly YYYY-MM-DD: chrono alone would also accept e.g. "+2025-01-01" or one-digit months.
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(TaxRulesError::RateTableDate {
            index,
            value: s.to_owned(),
        });
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| TaxRulesError::RateTableDate {
        index,
        value: s.to_owned(),
    })
}

impl InterestRates {
    /// The table compiled from `config/rates/odsetki-za-zwloke.toml`.
    ///
    /// The file is validated by this crate's tests, so this does not fail in a released build;
    /// it still returns a `Result` rather than panicking.
    pub fn builtin() -> Result<Self, TaxRulesError> {
        Self::from_toml_str(BUILTIN_TOML)
    }

    /// Parses and validates a rate table: at least one entry; effective dates strictly ascending
    /// (sorted, no duplicates); every rate > 0, not below the 8 % floor of art. 56 §1 OP and not
    /// above [`SANITY_MAXIMUM_BP`]; where the lombard rate is given, the rate must equal
    /// `max(2 × lombard + 2 pp, 8 %)` (art. 56 §1 OP).
    pub fn from_toml_str(text: &str) -> Result<Self, TaxRulesError> {
        let raw: RawTable = toml::from_str(text)
            .map_err(|e| TaxRulesError::RateTableSyntax(e.message().to_owned()))?;
        let verified_through = raw
            .verified_through
            .as_deref()
            .map(|s| parse_date(0, s))
            .transpose()?;
        let mut entries = Vec::with_capacity(raw.rate.len());
        for (index, r) in raw.rate.into_iter().enumerate() {
            let date = parse_date(index, &r.effective_from)?;
            if let Some(prev) = entries.last().map(|e: &RateEntry| e.effective_from) {
                if date <= prev {
                    return Err(TaxRulesError::RateTableOrder {
                        index,
                        date,
                        previous: prev,
                    });
                }
            }
            let bad = |reason| TaxRulesError::RateTableRate {
                index,
                date,
                basis_points: r.basis_points,
                reason,
            };
            if r.basis_points == 0 {
                return Err(bad("must be greater than 0"));
            }
            if r.basis_points < STATUTORY_MINIMUM_BP {
                return Err(bad("below the 8 % floor of art. 56 §1 OP"));
            }
            if r.basis_points > SANITY_MAXIMUM_BP {
                return Err(bad("above 100 % a year (likely a typo)"));
            }
            if let Some(l) = r.lombard_basis_points {
                let expected = l
                    .checked_mul(2)
                    .and_then(|x| x.checked_add(200))
                    .map(|x| x.max(STATUTORY_MINIMUM_BP));
                if expected != Some(r.basis_points) {
                    return Err(bad("does not equal 200 % of the lombard rate + 2 pp"));
                }
            }
            entries.push(RateEntry {
                effective_from: date,
                basis_points: r.basis_points,
                lombard_basis_points: r.lombard_basis_points,
                source: r.source,
            });
        }
        if entries.is_empty() {
            return Err(TaxRulesError::RateTableEmpty);
        }
        Ok(InterestRates {
            entries,
            verified_through,
        })
    }

    /// The entries, ascending by effective date.
    pub fn entries(&self) -> &[RateEntry] {
        &self.entries
    }

    /// The last day the table was checked against sources, if it says so. Later days use the
    /// last known rate and are flagged in [`crate::InterestResult::beyond_verified_rates`].
    pub fn verified_through(&self) -> Option<NaiveDate> {
        self.verified_through
    }

    /// The basic rate (basis points) in force on `date`.
    pub fn rate_on(&self, date: NaiveDate) -> Result<u32, TaxRulesError> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.effective_from <= date)
            .map(|e| e.basis_points)
            .ok_or(TaxRulesError::NoRateFor(date))
    }

    /// Splits the inclusive day range `from..=to` at every rate change: `(first, last, bp)`
    /// triples, in order. Errors when `from` precedes the first entry.
    pub(crate) fn segments(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, NaiveDate, u32)>, TaxRulesError> {
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let first = self.entries.first().ok_or(TaxRulesError::RateTableEmpty)?;
        if from < first.effective_from {
            return Err(TaxRulesError::NoRateFor(from));
        }
        for (i, e) in self.entries.iter().enumerate() {
            let next_start = self.entries.get(i + 1).map(|n| n.effective_from);
            // This entry covers effective_from ..= next_start - 1 (or onwards for the last one).
            let seg_from = from.max(e.effective_from);
            let seg_to = match next_start.and_then(|n| n.pred_opt()) {
                Some(last_day) => to.min(last_day),
                None => to,
            };
            if seg_from <= seg_to {
                out.push((seg_from, seg_to, e.basis_points));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn builtin_table_loads_and_matches_the_spec_timeline() {
        let r = InterestRates::builtin().unwrap();
        let expect = [
            (d(2022, 9, 8), 1650),
            (d(2023, 10, 5), 1450),
            (d(2025, 5, 8), 1350),
            (d(2025, 7, 3), 1300),
            (d(2025, 9, 4), 1250),
            (d(2025, 10, 9), 1200),
            (d(2025, 11, 6), 1150),
            (d(2025, 12, 4), 1100),
        ];
        for (date, bp) in expect {
            assert_eq!(r.rate_on(date).unwrap(), bp, "{date}");
        }
        assert_eq!(r.rate_on(d(2023, 9, 7)).unwrap(), 1500);
        assert_eq!(r.rate_on(d(2023, 9, 6)).unwrap(), 1650);
        assert_eq!(r.rate_on(d(2025, 12, 3)).unwrap(), 1150);
        assert_eq!(r.rate_on(d(2022, 7, 8)).unwrap(), 1600);
        assert!(matches!(
            r.rate_on(d(2022, 7, 7)),
            Err(TaxRulesError::NoRateFor(_))
        ));
        assert_eq!(r.verified_through(), Some(d(2026, 1, 14)));
    }

    #[test]
    fn validation() {
        let one = |date: &str, bp: u32| {
            format!("[[rate]]\neffective_from = \"{date}\"\nbasis_points = {bp}\nsource = \"t\"\n")
        };
        let two = format!("{}{}", one("2024-01-02", 1000), one("2024-01-01", 1000));
        assert!(matches!(
            InterestRates::from_toml_str(&two),
            Err(TaxRulesError::RateTableOrder { index: 1, .. })
        ));
        let dup = format!("{}{}", one("2024-01-01", 1000), one("2024-01-01", 1100));
        assert!(matches!(
            InterestRates::from_toml_str(&dup),
            Err(TaxRulesError::RateTableOrder { .. })
        ));
        assert!(matches!(
            InterestRates::from_toml_str(&one("2024-01-01", 0)),
            Err(TaxRulesError::RateTableRate { .. })
        ));
        assert!(matches!(
            InterestRates::from_toml_str(&one("2024-01-01", 799)),
            Err(TaxRulesError::RateTableRate { .. })
        ));
        assert!(matches!(
            InterestRates::from_toml_str(&one("2024-13-01", 900)),
            Err(TaxRulesError::RateTableDate { .. })
        ));
        assert!(matches!(
            InterestRates::from_toml_str(&one("2024-1-01", 900)),
            Err(TaxRulesError::RateTableDate { .. })
        ));
        assert!(matches!(
            InterestRates::from_toml_str(""),
            Err(TaxRulesError::RateTableEmpty)
        ));
        assert!(matches!(
            InterestRates::from_toml_str("[[rate]]\nbasis_points = -3"),
            Err(TaxRulesError::RateTableSyntax(_))
        ));
        let lombard_typo = "[[rate]]\neffective_from = \"2024-01-01\"\nbasis_points = 1450\nlombard_basis_points = 650\n";
        assert!(matches!(
            InterestRates::from_toml_str(lombard_typo),
            Err(TaxRulesError::RateTableRate { .. })
        ));
        assert!(InterestRates::from_toml_str(&one("2024-01-01", 1450)).is_ok());
    }

    #[test]
    fn segments_split_at_changes() {
        let r = InterestRates::builtin().unwrap();
        let s = r.segments(d(2025, 4, 1), d(2025, 7, 10)).unwrap();
        assert_eq!(
            s,
            vec![
                (d(2025, 4, 1), d(2025, 5, 7), 1450),
                (d(2025, 5, 8), d(2025, 7, 2), 1350),
                (d(2025, 7, 3), d(2025, 7, 10), 1300),
            ]
        );
        assert!(r.segments(d(2025, 4, 2), d(2025, 4, 1)).unwrap().is_empty());
    }
}
