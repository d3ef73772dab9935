//! Cases in the municipality's EZD: the case reference (znak sprawy) as a parsed type, the
//! normalized case statuses and the payload of `pl.gsko.case.status-changed.v1`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The longest znak sprawy EZD RP stores (`znakSprawy` ≤ 50 characters).
pub const CASE_REF_MAX_LEN: usize = 50;

/// Why a text is not a znak sprawy; each names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseRefError {
    #[error("znak sprawy is empty")]
    Empty,
    #[error("znak sprawy is longer than {CASE_REF_MAX_LEN} characters")]
    TooLong,
    #[error(
        "znak sprawy must have the form UNIT.SYMBOL.NUMBER[.SUBNUMBER].YEAR[.INITIALS], \
         got {0} dot-separated parts"
    )]
    Parts(usize),
    #[error(
        "unit (komórka) must be letters and digits with at least one letter, a sub-unit \
         joined by a hyphen (e.g. FN, OŚ, B2, ABC-A)"
    )]
    Unit,
    #[error("JRWA symbol must be 1 to 4 digits")]
    Symbol,
    #[error("case number must be a natural number of at most 9 digits, without leading zeros")]
    Number,
    #[error("sub-number must be a natural number of at most 9 digits, without leading zeros")]
    SubNumber,
    #[error("year must be four digits (1900-2199)")]
    Year,
    #[error("initials must be 1 to 4 letters")]
    Initials,
}

/// Znak sprawy, the case reference a resident quotes: `[unit].[JRWA symbol].[number].[year]`,
/// e.g. `FN.3120.1.2025`, per the instrukcja kancelaryjna (Dz.U. 2011 nr 14 poz. 67): a
/// sub-number after the number for a podteczka (`FN.3120.1.2.2025`), a sub-unit joined to the
/// unit by a hyphen (`ABC-A.123.77.2011`) and the handler's initials at the end
/// (`FN.3120.1.2025.JW`). Kept exactly as written; equal only when written the same.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaseRef {
    text: String,
    symbol: u16,
    number: u32,
    sub_number: Option<u32>,
    year: u16,
}

/// Letters of unit designations and initials: ASCII and the Polish diacritics (`OŚ`, `ŁK`).
fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || "ĄĆĘŁŃÓŚŹŻąćęłńóśźż".contains(c)
}

/// At most nine digits: every register number fits, and the schema's pattern says the same.
fn natural(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_unit(s: &str) -> bool {
    let mut segments = s.split('-');
    let first = segments.next().unwrap_or("");
    let alnum = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || is_letter(c));
    alnum(first) && first.chars().any(is_letter) && segments.all(alnum)
}

fn is_initials(s: &str) -> bool {
    let n = s.chars().count();
    (1..=4).contains(&n) && s.chars().all(is_letter)
}

fn is_year(s: &str) -> Option<u16> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: u16 = s.parse().ok()?;
    (1900..=2199).contains(&y).then_some(y)
}

impl CaseRef {
    pub fn parse(s: &str) -> Result<CaseRef, CaseRefError> {
        if s.is_empty() {
            return Err(CaseRefError::Empty);
        }
        if s.chars().count() > CASE_REF_MAX_LEN {
            return Err(CaseRefError::TooLong);
        }
        let parts: Vec<&str> = s.split('.').collect();
        // 4 parts: U.S.N.Y; 5: U.S.N.SUB.Y or U.S.N.Y.INI; 6: U.S.N.SUB.Y.INI.
        let (sub, year, initials) = match parts.len() {
            4 => (None, parts[3], None),
            5 if parts[4].bytes().all(|b| b.is_ascii_digit()) => (Some(parts[3]), parts[4], None),
            5 => (None, parts[3], Some(parts[4])),
            6 => (Some(parts[3]), parts[4], Some(parts[5])),
            n => return Err(CaseRefError::Parts(n)),
        };
        if !is_unit(parts[0]) {
            return Err(CaseRefError::Unit);
        }
        let symbol = parts[1];
        if symbol.is_empty() || symbol.len() > 4 || !symbol.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CaseRefError::Symbol);
        }
        let number = natural(parts[2]).ok_or(CaseRefError::Number)?;
        let sub_number = match sub {
            Some(s) => Some(natural(s).ok_or(CaseRefError::SubNumber)?),
            None => None,
        };
        let year = is_year(year).ok_or(CaseRefError::Year)?;
        if let Some(i) = initials {
            if !is_initials(i) {
                return Err(CaseRefError::Initials);
            }
        }
        Ok(CaseRef {
            text: s.to_owned(),
            symbol: symbol.parse().map_err(|_| CaseRefError::Symbol)?,
            number,
            sub_number,
            year,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The organisational unit (komórka), with its sub-unit when there is one: `FN`, `ABC-A`.
    pub fn unit(&self) -> &str {
        self.text.split('.').next().unwrap_or("")
    }

    /// The JRWA classification symbol as written (`3120`); leading zeros are kept.
    pub fn jrwa_symbol(&self) -> &str {
        self.text.split('.').nth(1).unwrap_or("")
    }

    /// The JRWA symbol as a number.
    pub fn symbol(&self) -> u16 {
        self.symbol
    }

    /// The case's number in the unit's register of cases (spis spraw) for the symbol and year.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The podteczka's number, when the case is in one.
    pub fn sub_number(&self) -> Option<u32> {
        self.sub_number
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    /// The handler's initials at the end, when written.
    pub fn initials(&self) -> Option<&str> {
        let parts: Vec<&str> = self.text.split('.').collect();
        let last = *parts.last()?;
        (!last.bytes().all(|b| b.is_ascii_digit())).then_some(last)
    }
}

impl fmt::Display for CaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for CaseRef {
    // Not personal data: a case reference names a unit, a class and a number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaseRef({})", self.text)
    }
}

impl FromStr for CaseRef {
    type Err = CaseRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CaseRef::parse(s)
    }
}

impl Serialize for CaseRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CaseRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CaseRef::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where a case stands, normalized over EZD products. EZD RP's `StatusSprawy` maps onto it
/// (see the EZD connector); the resident's timeline shows these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Just registered: the letter got its znak sprawy.
    Registered,
    /// Assigned to a handler (EZD RP "Przydzielone").
    Assigned,
    /// Being handled ("W toku").
    InProgress,
    /// Put aside ("Odłożona").
    Postponed,
    /// Suspended ("Zawieszona"), e.g. waiting for the resident or another authority.
    Suspended,
    /// Resumed after a suspension ("Wznowiona").
    Resumed,
    /// Moved under another znak sprawy ("Przerejestrowana").
    ReRegistered,
    /// Closed ("Zakończona"): the matter is settled.
    Closed,
    /// Closed and handed to the archive (archiving, archived, appraisal and disposal states).
    Archived,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Registered => "registered",
            CaseStatus::Assigned => "assigned",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::Postponed => "postponed",
            CaseStatus::Suspended => "suspended",
            CaseStatus::Resumed => "resumed",
            CaseStatus::ReRegistered => "re_registered",
            CaseStatus::Closed => "closed",
            CaseStatus::Archived => "archived",
        }
    }

    /// Whether the case can still change in ways a resident waits for.
    pub fn is_open(self) -> bool {
        !matches!(self, CaseStatus::Closed | CaseStatus::Archived)
    }
}

/// `pl.gsko.case.status-changed.v1`: a case in the tenant's EZD moved to another status. The
/// connector numbers a case's changes (`seq`, also the event's `sourceversion`), so a change
/// reported twice is one entry in the case's timeline and an older report never overwrites a
/// newer status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseStatusChanged {
    pub case_ref: CaseRef,
    /// EZD's own id of the case (EZD RP `idSprawa`).
    pub ezd_case_id: String,
    pub status: CaseStatus,
    /// When the case changed, as EZD dates it, or when GSKO first saw it changed when EZD gives
    /// no date.
    pub at: DateTime<Utc>,
    /// The position of this change in the case's timeline, from 1.
    pub seq: u32,
    /// The case's title in EZD (`tytul`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// EZD's own status as it names it (e.g. `3 Zawieszona`), for an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_status: Option<String>,
    /// The day by which the case is to be settled (`terminZalatwienia`), when EZD has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_on: Option<NaiveDate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_of_the_instrukcja() {
        let r = CaseRef::parse("FN.3120.1.2025").unwrap();
        assert_eq!(
            (
                r.unit(),
                r.jrwa_symbol(),
                r.number(),
                r.sub_number(),
                r.year()
            ),
            ("FN", "3120", 1, None, 2025)
        );
        let r = CaseRef::parse("ABC-A.123.77.3.2011.JW").unwrap();
        assert_eq!(
            (r.unit(), r.number(), r.sub_number(), r.year(), r.initials()),
            ("ABC-A", 77, Some(3), 2011, Some("JW"))
        );
        let r = CaseRef::parse("b99.0012.5.2026.ŁK").unwrap();
        assert_eq!(
            (r.jrwa_symbol(), r.symbol(), r.initials()),
            ("0012", 12, Some("ŁK"))
        );
        assert_eq!(
            CaseRef::parse("11d.31.2.2.2026").unwrap().sub_number(),
            Some(2)
        );
        assert_eq!(CaseRef::parse("OŚ.6131.2.2026").unwrap().unit(), "OŚ");
    }

    #[test]
    fn refuses_with_the_part_that_is_wrong() {
        use CaseRefError as E;
        for (s, e) in [
            ("", E::Empty),
            ("FN.3120.2025", E::Parts(3)),
            ("12.3120.1.2025", E::Unit),
            ("F N.3120.1.2025", E::Unit),
            ("FN-.3120.1.2025", E::Unit),
            ("FN.31200.1.2025", E::Symbol),
            ("FN.31a.1.2025", E::Symbol),
            ("FN.3120.0.2025", E::Number),
            ("FN.3120.01.2025", E::Number),
            ("FN.3120.1.0.2025", E::SubNumber),
            ("FN.3120.1.25", E::Year),
            ("FN.3120.1.2025.J1", E::Initials),
            ("FN.3120.1.2025.JWXYZ", E::Initials),
            ("FN.3120.1.2.3.2025.JW", E::Parts(7)),
            ("FN.3120.1234567890.2025", E::Number),
            ("FÜ.3120.1.2025", E::Unit),
        ] {
            assert_eq!(CaseRef::parse(s), Err(e), "{s}");
        }
        let long = format!("{}.3120.1.2025", "A".repeat(40));
        assert_eq!(CaseRef::parse(&long), Err(E::TooLong));
    }

    #[test]
    fn serializes_as_written() {
        let r: CaseRef = serde_json::from_str("\"FN.3120.7.2026\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"FN.3120.7.2026\"");
        assert!(serde_json::from_str::<CaseRef>("\"FN.3120.7\"").is_err());
    }
}
