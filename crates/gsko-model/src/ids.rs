//! Validated identifiers. Each is parsed once at the boundary; past it, a value of these types
//! is known to carry a correct checksum. `Debug` of personal identifiers is redacted so that a
//! stray `?pesel` in a log line cannot leak personal data.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must have {expected} digits, got {got} characters")]
    Length {
        kind: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{kind} may contain only digits")]
    NotDigits { kind: &'static str },
    #[error("{kind} checksum does not match")]
    Checksum { kind: &'static str },
    #[error("{kind} has an impossible date of birth")]
    Date { kind: &'static str },
    #[error("TERYT code has an unknown kind digit {0} (expected 1-5, 8 or 9)")]
    TerytKind(char),
    #[error("{kind} must have the form {expected}")]
    Format {
        kind: &'static str,
        expected: &'static str,
    },
}

fn digits(
    kind: &'static str,
    s: &str,
    lens: &[usize],
    expected: &'static str,
) -> Result<Vec<u32>, IdError> {
    if !s.chars().all(|c| c.is_ascii_digit()) {
        return Err(IdError::NotDigits { kind });
    }
    if !lens.contains(&s.len()) {
        return Err(IdError::Length {
            kind,
            expected,
            got: s.chars().count(),
        });
    }
    Ok(s.bytes().map(|b| u32::from(b - b'0')).collect())
}

fn weighted(d: &[u32], w: &[u32]) -> u32 {
    d.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// Strips the separators people type into tax ids ("123-456-32-18", "PL 61 1090 ...").
fn compact(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\u{a0}'))
        .collect()
}

macro_rules! string_id {
    ($ty:ident, $redact:expr) => {
        string_id!($ty, $redact, "digits only");
    };
    ($ty:ident, $redact:expr, $canonical:literal) => {
        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $redact {
                    write!(f, concat!(stringify!($ty), "(***)"))
                } else {
                    write!(f, concat!(stringify!($ty), "({})"), self.0)
                }
            }
        }
        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                $ty::parse(s)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // On the wire only the canonical form is accepted: separators, prefixes and
                // padding are for people typing, not for messages between systems.
                let s = String::deserialize(d)?;
                let v = $ty::parse(&s).map_err(serde::de::Error::custom)?;
                if v.0 != s {
                    return Err(serde::de::Error::custom(concat!(
                        stringify!($ty),
                        " is not in its canonical form (",
                        $canonical,
                        ")"
                    )));
                }
                Ok(v)
            }
        }
    };
}

/// TERC code of a gmina (`WWPPGGR`): the tenant id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Teryt(String);
string_id!(Teryt, false);

impl Teryt {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        digits("TERYT", s, &[7], "7")?;
        let kind = s.chars().last().unwrap_or('0');
        if !matches!(kind, '1'..='5' | '8' | '9') {
            return Err(IdError::TerytKind(kind));
        }
        Ok(Teryt(s.to_owned()))
    }
}

/// Personal id number. Checksum and date of birth are validated.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pesel(String);
string_id!(Pesel, true);

impl Pesel {
    const WEIGHTS: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        let d = digits("PESEL", s, &[11], "11")?;
        let check = (10 - weighted(&d[..10], &Self::WEIGHTS) % 10) % 10;
        if check != d[10] {
            return Err(IdError::Checksum { kind: "PESEL" });
        }
        let p = Pesel(s.to_owned());
        if p.birth_date().is_none() {
            return Err(IdError::Date { kind: "PESEL" });
        }
        Ok(p)
    }

    /// Date of birth encoded in the number (the month carries the century).
    pub fn birth_date(&self) -> Option<chrono::NaiveDate> {
        let n = |i: usize| u32::from(self.0.as_bytes()[i] - b'0');
        let yy = n(0) * 10 + n(1);
        let mm = n(2) * 10 + n(3);
        let dd = n(4) * 10 + n(5);
        let (century, month) = match mm {
            1..=12 => (1900, mm),
            21..=32 => (2000, mm - 20),
            41..=52 => (2100, mm - 40),
            61..=72 => (2200, mm - 60),
            81..=92 => (1800, mm - 80),
            _ => return None,
        };
        chrono::NaiveDate::from_ymd_opt(century + yy as i32, month, dd)
    }
}

/// Tax id (10 digits, mod-11 checksum). Separators are accepted on input and dropped.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nip(String);
string_id!(Nip, false);

impl Nip {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        let s = compact(s.strip_prefix("PL").unwrap_or(s));
        let d = digits("NIP", &s, &[10], "10")?;
        let sum = weighted(&d[..9], &[6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11;
        if sum == 10 || sum != d[9] {
            return Err(IdError::Checksum { kind: "NIP" });
        }
        Ok(Nip(s))
    }
}

/// Business register id: 9 digits, or 14 for a local unit (both checksums validated).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Regon(String);
string_id!(Regon, false);

impl Regon {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = compact(s.trim());
        let d = digits("REGON", &s, &[9, 14], "9 or 14")?;
        let ok9 = weighted(&d[..8], &[8, 9, 2, 3, 4, 5, 6, 7]) % 11 % 10 == d[8];
        let ok = if d.len() == 9 {
            ok9
        } else {
            ok9 && weighted(&d[..13], &[2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8]) % 11 % 10 == d[13]
        };
        if !ok {
            return Err(IdError::Checksum { kind: "REGON" });
        }
        Ok(Regon(s))
    }
}

/// Polish bank account number (26 digits, IBAN mod-97 check with country code PL).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nrb(String);
string_id!(Nrb, false);

impl Nrb {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = compact(s.trim());
        let s = s.strip_prefix("PL").unwrap_or(&s).to_owned();
        let d = digits("NRB", &s, &[26], "26")?;
        // IBAN: BBAN followed by "PL" (25 21) and the two check digits; the whole is 1 mod 97.
        let rearranged = d[2..].iter().chain(&[2, 5, 2, 1]).chain(&d[..2]);
        let rem = rearranged.fold(0u32, |acc, x| (acc * 10 + x) % 97);
        if rem != 1 {
            return Err(IdError::Checksum { kind: "NRB" });
        }
        Ok(Nrb(s))
    }

    /// Printed form in groups of four, as on a payment slip.
    pub fn grouped(&self) -> String {
        let (a, b) = self.0.split_at(2);
        let mut out = a.to_owned();
        for chunk in b.as_bytes().chunks(4) {
            out.push(' ');
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        }
        out
    }
}

/// e-Doręczenia address (adres do doręczeń elektronicznych, ADE) of a person, business or office:
/// `AE:PL-DDDDD-DDDDD-LLLLL-CC`, five digits, five digits, five capital letters and two check
/// digits. The check digits are the sum of the decimal digits of
/// `|Σ ASCII(LLLLL) − (DDDDD₁ + DDDDD₂)|` (verified on the published sample addresses, e.g.
/// `AE:PL-97075-47631-STVJH-19`). A person's address identifies the person, so `Debug` is
/// redacted like a PESEL's. Input may be lower case or padded with spaces; on the wire only the
/// canonical upper-case form is accepted.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdeAddress(String);
string_id!(
    AdeAddress,
    true,
    "AE:PL-DDDDD-DDDDD-LLLLL-CC in upper case, without spaces"
);

impl AdeAddress {
    const KIND: &'static str = "ADE address";
    const FORM: &'static str = "AE:PL-DDDDD-DDDDD-LLLLL-CC";

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim().to_ascii_uppercase();
        let format = IdError::Format {
            kind: Self::KIND,
            expected: Self::FORM,
        };
        let rest = s.strip_prefix("AE:PL-").ok_or(format.clone())?;
        let parts: Vec<&str> = rest.split('-').collect();
        let [d1, d2, letters, check] = parts[..] else {
            return Err(format);
        };
        let all = |p: &str, n: usize, f: fn(&u8) -> bool| p.len() == n && p.bytes().all(|b| f(&b));
        if !(all(d1, 5, u8::is_ascii_digit)
            && all(d2, 5, u8::is_ascii_digit)
            && all(letters, 5, u8::is_ascii_uppercase)
            && all(check, 2, u8::is_ascii_digit))
        {
            return Err(format);
        }
        let number = |p: &str| p.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
        let ascii: i64 = letters.bytes().map(i64::from).sum();
        let base = (ascii - (number(d1) + number(d2))).unsigned_abs();
        let digit_sum: u64 = base.to_string().bytes().map(|b| u64::from(b - b'0')).sum();
        if digit_sum != number(check) as u64 {
            return Err(IdError::Checksum { kind: Self::KIND });
        }
        Ok(AdeAddress(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pesel_accepts_valid_and_rejects_bad_checksum() {
        assert!(Pesel::parse("44051401359").is_ok());
        assert_eq!(
            Pesel::parse("44051401358"),
            Err(IdError::Checksum { kind: "PESEL" })
        );
        assert!(matches!(
            Pesel::parse("4405140135"),
            Err(IdError::Length { .. })
        ));
        assert!(matches!(
            Pesel::parse("4405140135a"),
            Err(IdError::NotDigits { .. })
        ));
        let p = Pesel::parse("02270803624").unwrap();
        assert_eq!(p.birth_date(), chrono::NaiveDate::from_ymd_opt(2002, 7, 8));
    }

    #[test]
    fn pesel_with_valid_checksum_but_impossible_date_is_rejected() {
        // month 13 with a matching checksum digit
        let base = "4413140135";
        let d: Vec<u32> = base.bytes().map(|b| u32::from(b - b'0')).collect();
        let q = (10 - weighted(&d, &Pesel::WEIGHTS) % 10) % 10;
        assert_eq!(
            Pesel::parse(&format!("{base}{q}")),
            Err(IdError::Date { kind: "PESEL" })
        );
    }

    #[test]
    fn pesel_debug_is_redacted() {
        let p = Pesel::parse("44051401359").unwrap();
        assert_eq!(format!("{p:?}"), "Pesel(***)");
    }

    #[test]
    fn wire_form_must_be_canonical() {
        assert!(serde_json::from_str::<Nip>("\"5260001246\"").is_ok());
        assert!(serde_json::from_str::<Nip>("\"526-000-12-46\"").is_err());
        assert!(serde_json::from_str::<Teryt>("\" 0201043 \"").is_err());
        assert!(Nip::parse("PLPL5260001246").is_err());
    }

    #[test]
    fn nip_regon_nrb_teryt() {
        assert!(Nip::parse("526-000-12-46").is_ok());
        assert!(Nip::parse("5260001247").is_err());
        assert!(Regon::parse("123456785").is_ok());
        assert!(Regon::parse("123456786").is_err());
        assert!(Regon::parse("12345678512347").is_ok());
        assert!(Nrb::parse("61 1090 1014 0000 0712 1981 2874").is_ok());
        assert!(Nrb::parse("PL61109010140000071219812874").is_ok());
        assert!(Nrb::parse("62109010140000071219812874").is_err());
        assert!(Teryt::parse("1465011").is_ok());
        assert_eq!(Teryt::parse("1465017"), Err(IdError::TerytKind('7')));
    }

    #[test]
    fn ade_address_check_digits() {
        // The addresses published in the e-Doręczenia samples (spec §4.4).
        for a in [
            "AE:PL-97075-47631-STVJH-19",
            "AE:PL-00000-00014-AAAAA-05",
            "AE:PL-00000-00013-AAAAA-06",
            "AE:PL-13447-72418-ECVIU-30",
            "AE:PL-25888-20449-HTFCF-29",
        ] {
            assert_eq!(AdeAddress::parse(a).unwrap().as_str(), a);
        }
        assert_eq!(
            AdeAddress::parse("AE:PL-97075-47631-STVJH-18"),
            Err(IdError::Checksum {
                kind: "ADE address"
            })
        );
        // A letter changed: the check digits no longer match.
        assert!(matches!(
            AdeAddress::parse("AE:PL-97075-47631-STVJI-19"),
            Err(IdError::Checksum { .. })
        ));
        for bad in [
            "",
            "AE:PL-97075-47631-STVJH",
            "AE:DE-97075-47631-STVJH-19",
            "AE:PL-9707-547631-STVJH-19",
            "AE:PL-97075-47631-STVJ1-19",
            "AE:PL-97075-47631-STVJH-19-1",
            "AE:PL-97075-47631-STVJH-019",
            "ADE.AE:PL-97075-47631-STVJH-19",
            "AE:PL-97075-47631-ŚTVJH-19",
        ] {
            assert!(
                matches!(AdeAddress::parse(bad), Err(IdError::Format { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ade_address_is_redacted_and_canonical_on_the_wire() {
        let a = AdeAddress::parse(" ae:pl-97075-47631-stvjh-19 ").unwrap();
        assert_eq!(a.to_string(), "AE:PL-97075-47631-STVJH-19");
        assert_eq!(format!("{a:?}"), "AdeAddress(***)");
        assert!(serde_json::from_str::<AdeAddress>("\"AE:PL-97075-47631-STVJH-19\"").is_ok());
        assert!(serde_json::from_str::<AdeAddress>("\"ae:pl-97075-47631-stvjh-19\"").is_err());
        assert!(serde_json::from_str::<AdeAddress>("\"AE:PL-97075-47631-STVJH-18\"").is_err());
    }
}
