//! Money is an integer number of grosze, never a float.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {0:?} is not a decimal number of złoty with at most two decimal places")]
    Syntax(String),
    #[error("amount {0:?} is negative")]
    Negative(String),
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

/// A non-negative amount in grosze (1/100 PLN). Direction (charge, payment, reversal) is said by
/// the record that carries the amount, never by a sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn from_grosze(grosze: i64) -> Result<Self, AmountError> {
        if grosze < 0 {
            return Err(AmountError::Negative(grosze.to_string()));
        }
        Ok(Amount(grosze))
    }

    pub fn grosze(self) -> i64 {
        self.0
    }

    /// Parses "1234.56", "1234,56", "1234.5" or "1234" (złoty), exactly, without floats.
    pub fn parse_zloty(s: &str) -> Result<Self, AmountError> {
        let t = s.trim();
        if t.starts_with('-') {
            return Err(AmountError::Negative(t.to_owned()));
        }
        let t = t.strip_prefix('+').unwrap_or(t);
        let (whole, frac) = match t.find(['.', ',']) {
            Some(i) => (&t[..i], &t[i + 1..]),
            None => (t, ""),
        };
        let syntax = || AmountError::Syntax(s.to_owned());
        if whole.is_empty()
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(syntax());
        }
        if t.contains(['.', ',']) && frac.is_empty() {
            return Err(syntax());
        }
        let whole: i64 = whole
            .parse()
            .map_err(|_| AmountError::Overflow(s.to_owned()))?;
        let frac: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| syntax())? * 10,
            _ => frac.parse().map_err(|_| syntax())?,
        };
        whole
            .checked_mul(100)
            .and_then(|g| g.checked_add(frac))
            .map(Amount)
            .ok_or_else(|| AmountError::Overflow(s.to_owned()))
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    /// "1234.56" — the decimal złoty form used in exports and files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let g = i64::deserialize(d)?;
        Amount::from_grosze(g).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zloty_exactly() {
        assert_eq!(Amount::parse_zloty("250.75").unwrap().grosze(), 25075);
        assert_eq!(Amount::parse_zloty("250,7").unwrap().grosze(), 25070);
        assert_eq!(Amount::parse_zloty("1003").unwrap().grosze(), 100300);
        assert_eq!(Amount::parse_zloty("0.01").unwrap().grosze(), 1);
        assert!(matches!(
            Amount::parse_zloty("-5.00"),
            Err(AmountError::Negative(_))
        ));
        assert!(matches!(
            Amount::parse_zloty("1.234"),
            Err(AmountError::Syntax(_))
        ));
        assert!(matches!(
            Amount::parse_zloty("1e3"),
            Err(AmountError::Syntax(_))
        ));
        assert!(matches!(
            Amount::parse_zloty("12."),
            Err(AmountError::Syntax(_))
        ));
        assert!(matches!(
            Amount::parse_zloty(""),
            Err(AmountError::Syntax(_))
        ));
    }

    #[test]
    fn displays_and_rejects_negative_json() {
        assert_eq!(Amount::from_grosze(25075).unwrap().to_string(), "250.75");
        assert_eq!(Amount::from_grosze(5).unwrap().to_string(), "0.05");
        assert!(serde_json::from_str::<Amount>("-1").is_err());
        assert_eq!(serde_json::from_str::<Amount>("199").unwrap().grosze(), 199);
    }
}
