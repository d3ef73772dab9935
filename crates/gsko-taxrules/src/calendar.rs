//! Polish working days and the shift of a due date (art. 12 §5 OP).
//!
//! **Art. 12 §5 OP:** if the last day of a term falls on a Saturday or a statutory day off work
//! (dzień ustawowo wolny od pracy), the last day of the term is the next day after the day(s)
//! off. For a tax due date this means: interest on arrears runs only from the day after the
//! *shifted* due date.
//!
//! Statutory days off are listed in art. 1 of the ustawa z 18.01.1951 o dniach wolnych od pracy:
//! Sundays and 1 Jan, 6 Jan (since 2011), Easter Sunday and Monday, 1 May, 3 May, Pentecost
//! Sunday, Corpus Christi, 15 Aug, 1 Nov, 11 Nov, 24 Dec (since 2025), 25 Dec, 26 Dec. In
//! addition 12 Nov 2018 was a one-off statutory holiday (ustawa z 9.11.2018).
//!
//! The calendar is supported for [`FIRST_SUPPORTED`]..=[`LAST_SUPPORTED`]; outside it the
//! functions return [`TaxRulesError::DateOutOfRange`] instead of guessing (the holiday law before
//! 1990 differed and future law is unknown). Saturday counts as a day off for every supported
//! date (the current wording of art. 12 §5; the date Saturday was added to it is not pinned
//! down here, and no rate table entry precedes 2022 anyway).

use crate::TaxRulesError;
use chrono::{Datelike, NaiveDate, Weekday};
use serde::Serialize;

/// First date the holiday calendar is defined for.
pub const FIRST_SUPPORTED: NaiveDate = match NaiveDate::from_ymd_opt(1990, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// Last date the holiday calendar is defined for.
pub const LAST_SUPPORTED: NaiveDate = match NaiveDate::from_ymd_opt(2199, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// A Polish statutory public holiday (święto, dzień ustawowo wolny od pracy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Holiday {
    /// Nowy Rok, 1 Jan
    NewYear,
    /// Święto Trzech Króli, 6 Jan (a day off since 2011)
    Epiphany,
    /// Wielkanoc (a Sunday)
    EasterSunday,
    /// Poniedziałek Wielkanocny
    EasterMonday,
    /// Święto Państwowe, 1 May
    LabourDay,
    /// Święto Narodowe Trzeciego Maja
    ConstitutionDay,
    /// Zielone Świątki, Pentecost Sunday (Easter + 49 days)
    Pentecost,
    /// Boże Ciało, Corpus Christi (Easter + 60 days, a Thursday)
    CorpusChristi,
    /// Wniebowzięcie NMP, 15 Aug
    Assumption,
    /// Wszystkich Świętych, 1 Nov
    AllSaints,
    /// Narodowe Święto Niepodległości, 11 Nov
    IndependenceDay,
    /// 12 Nov 2018 only (one-off, ustawa z 9.11.2018)
    IndependenceCentenary,
    /// Wigilia, 24 Dec (a day off since 2025)
    ChristmasEve,
    /// Boże Narodzenie, 25 Dec
    Christmas,
    /// drugi dzień Bożego Narodzenia, 26 Dec
    SecondDayOfChristmas,
}

fn check_range(date: NaiveDate) -> Result<(), TaxRulesError> {
    if date < FIRST_SUPPORTED || date > LAST_SUPPORTED {
        return Err(TaxRulesError::DateOutOfRange(date));
    }
    Ok(())
}

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm, Meeus/Jones/Butcher).
/// Defined for years 1583..=9999; `None` outside.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    if !(1583..=9999).contains(&year) {
        return None;
    }
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The statutory public holiday falling on `date`, if any (Sundays that are not holidays return
/// `None`; they are days off anyway, see [`is_working_day`]).
pub fn polish_public_holiday(date: NaiveDate) -> Result<Option<Holiday>, TaxRulesError> {
    check_range(date)?;
    let year = date.year();
    let fixed = match (date.month(), date.day()) {
        (1, 1) => Some(Holiday::NewYear),
        (1, 6) if year >= 2011 => Some(Holiday::Epiphany),
        (5, 1) => Some(Holiday::LabourDay),
        (5, 3) => Some(Holiday::ConstitutionDay),
        (8, 15) => Some(Holiday::Assumption),
        (11, 1) => Some(Holiday::AllSaints),
        (11, 11) => Some(Holiday::IndependenceDay),
        (11, 12) if year == 2018 => Some(Holiday::IndependenceCentenary),
        (12, 24) if year >= 2025 => Some(Holiday::ChristmasEve),
        (12, 25) => Some(Holiday::Christmas),
        (12, 26) => Some(Holiday::SecondDayOfChristmas),
        _ => None,
    };
    if fixed.is_some() {
        return Ok(fixed);
    }
    let easter = easter_sunday(year).ok_or(TaxRulesError::DateOutOfRange(date))?;
    let offset = (date - easter).num_days();
    Ok(match offset {
        0 => Some(Holiday::EasterSunday),
        1 => Some(Holiday::EasterMonday),
        49 => Some(Holiday::Pentecost),
        60 => Some(Holiday::CorpusChristi),
        _ => None,
    })
}

/// Whether `date` is a working day for art. 12 §5 OP: not a Saturday, not a Sunday, not a
/// statutory public holiday.
pub fn is_working_day(date: NaiveDate) -> Result<bool, TaxRulesError> {
    if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        check_range(date)?;
        return Ok(false);
    }
    Ok(polish_public_holiday(date)?.is_none())
}

/// The due date as art. 12 §5 OP makes it: `due_date` itself if it is a working day, otherwise
/// the next working day.
pub fn effective_due_date(due_date: NaiveDate) -> Result<NaiveDate, TaxRulesError> {
    let mut d = due_date;
    // At most a few consecutive days off exist (e.g. Sat 24 Dec .. Mon 26 Dec); the bound only
    // guards the loop.
    for _ in 0..16 {
        if is_working_day(d)? {
            return Ok(d);
        }
        d = d
            .succ_opt()
            .ok_or(TaxRulesError::DateOutOfRange(due_date))?;
    }
    Err(TaxRulesError::DateOutOfRange(due_date))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_known_years() {
        assert_eq!(easter_sunday(2024), Some(d(2024, 3, 31)));
        assert_eq!(easter_sunday(2025), Some(d(2025, 4, 20)));
        assert_eq!(easter_sunday(2026), Some(d(2026, 4, 5)));
        assert_eq!(easter_sunday(2027), Some(d(2027, 3, 28)));
        assert_eq!(easter_sunday(2038), Some(d(2038, 4, 25)));
        assert_eq!(easter_sunday(2285), Some(d(2285, 3, 22)));
        assert_eq!(easter_sunday(1000), None);
    }

    #[test]
    fn holidays_2026() {
        assert_eq!(
            polish_public_holiday(d(2026, 4, 6)).unwrap(),
            Some(Holiday::EasterMonday)
        );
        assert_eq!(
            polish_public_holiday(d(2026, 6, 4)).unwrap(),
            Some(Holiday::CorpusChristi)
        );
        assert_eq!(
            polish_public_holiday(d(2025, 12, 24)).unwrap(),
            Some(Holiday::ChristmasEve)
        );
        assert_eq!(polish_public_holiday(d(2024, 12, 24)).unwrap(), None);
        assert_eq!(polish_public_holiday(d(2010, 1, 6)).unwrap(), None);
        assert_eq!(
            polish_public_holiday(d(2018, 11, 12)).unwrap(),
            Some(Holiday::IndependenceCentenary)
        );
        assert_eq!(polish_public_holiday(d(2019, 11, 12)).unwrap(), None);
    }

    #[test]
    fn shifts() {
        // 15 Nov 2025 is a Saturday -> Monday 17 Nov.
        assert_eq!(
            effective_due_date(d(2025, 11, 15)).unwrap(),
            d(2025, 11, 17)
        );
        // 15 Mar 2026 is a Sunday -> Monday 16 Mar.
        assert_eq!(effective_due_date(d(2026, 3, 15)).unwrap(), d(2026, 3, 16));
        // Easter Monday 6 Apr 2026 -> Tuesday 7 Apr.
        assert_eq!(effective_due_date(d(2026, 4, 6)).unwrap(), d(2026, 4, 7));
        // Easter Sunday 5 Apr 2026 -> over Easter Monday -> 7 Apr.
        assert_eq!(effective_due_date(d(2026, 4, 5)).unwrap(), d(2026, 4, 7));
        // Corpus Christi, Thursday 4 Jun 2026 -> Friday 5 Jun.
        assert_eq!(effective_due_date(d(2026, 6, 4)).unwrap(), d(2026, 6, 5));
        // Sat 24 Dec 2022 (no Wigilia holiday yet) -> Sun, 25, 26 Dec -> Tue 27 Dec.
        assert_eq!(
            effective_due_date(d(2022, 12, 24)).unwrap(),
            d(2022, 12, 27)
        );
        // Wed 24 Dec 2025 (holiday since 2025) -> 25, 26 Dec, weekend -> Mon 29 Dec.
        assert_eq!(
            effective_due_date(d(2025, 12, 24)).unwrap(),
            d(2025, 12, 29)
        );
        // A working day stays.
        assert_eq!(effective_due_date(d(2025, 9, 15)).unwrap(), d(2025, 9, 15));
        // 1 and 3 May 2026 (Fri, Sun): 1 May -> Mon 4 May.
        assert_eq!(effective_due_date(d(2026, 5, 1)).unwrap(), d(2026, 5, 4));
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        assert!(effective_due_date(NaiveDate::MAX).is_err());
        assert!(effective_due_date(NaiveDate::MIN).is_err());
        assert!(effective_due_date(d(1989, 12, 31)).is_err());
        assert!(is_working_day(d(2200, 1, 1)).is_err());
    }
}

/// The calendar day in Poland (Europe/Warsaw: CET, CEST from the last Sunday of March to the
/// last Sunday of October, switching at 01:00 UTC) at an instant. Payment dates are Polish
/// calendar days: a card payment at 23:30 UTC on 14 March is a payment of 15 March.
pub fn warsaw_date(at: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    use chrono::{Duration, NaiveTime};
    fn last_sunday(year: i32, month: u32) -> NaiveDate {
        let mut d =
            NaiveDate::from_ymd_opt(year, month, 31).expect("March and October have 31 days");
        while d.weekday() != Weekday::Sun {
            d = d.pred_opt().expect("in range");
        }
        d
    }
    let year = at.year();
    let one_am = NaiveTime::from_hms_opt(1, 0, 0).expect("valid time");
    let summer_starts = last_sunday(year, 3).and_time(one_am).and_utc();
    let summer_ends = last_sunday(year, 10).and_time(one_am).and_utc();
    let offset = if at >= summer_starts && at < summer_ends {
        Duration::hours(2)
    } else {
        Duration::hours(1)
    };
    (at + offset).date_naive()
}

#[cfg(test)]
mod warsaw_tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn winter_and_summer_offsets_and_the_switch_instants() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        // Winter: UTC+1.
        assert_eq!(
            warsaw_date(Utc.with_ymd_and_hms(2026, 3, 14, 23, 30, 0).unwrap()),
            d(2026, 3, 15)
        );
        assert_eq!(
            warsaw_date(Utc.with_ymd_and_hms(2026, 3, 14, 22, 59, 0).unwrap()),
            d(2026, 3, 14)
        );
        // Summer: UTC+2 (2026: 29 March to 25 October).
        assert_eq!(
            warsaw_date(Utc.with_ymd_and_hms(2026, 7, 1, 22, 0, 0).unwrap()),
            d(2026, 7, 2)
        );
        assert_eq!(
            warsaw_date(Utc.with_ymd_and_hms(2026, 7, 1, 21, 59, 0).unwrap()),
            d(2026, 7, 1)
        );
        // Around the October switch (25 Oct 2026, 01:00 UTC).
        assert_eq!(
            warsaw_date(Utc.with_ymd_and_hms(2026, 10, 24, 22, 30, 0).unwrap()),
            d(2026, 10, 25)
        );
        assert_eq!(
            warsaw_date(Utc.with_ymd_and_hms(2026, 10, 25, 23, 30, 0).unwrap()),
            d(2026, 10, 26)
        );
        assert_eq!(
            warsaw_date(Utc.with_ymd_and_hms(2026, 10, 25, 22, 30, 0).unwrap()),
            d(2026, 10, 25)
        );
    }
}
