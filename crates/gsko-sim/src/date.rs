//! A minimal civil date. The simulator needs only day arithmetic and ISO printing; keeping it
//! here (instead of pulling chrono) keeps the simulator independent of the model's types.

use std::fmt;

/// A proleptic-Gregorian calendar date, stored as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDate {
    days: i32,
}

impl SimDate {
    /// `None` for an impossible date (month 13, 30 February, ...).
    pub fn new(year: i32, month: u32, day: u32) -> Option<SimDate> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(SimDate {
            days: days_from_civil(year, month, day),
        })
    }

    /// Like [`SimDate::new`] for dates the generator builds from constants; panics on an
    /// impossible date because that is a bug in the simulator, never bad input.
    pub(crate) fn ymd(year: i32, month: u32, day: u32) -> SimDate {
        SimDate::new(year, month, day).expect("simulator built an impossible date")
    }

    pub fn year(self) -> i32 {
        self.parts().0
    }

    /// (year, month, day)
    pub fn parts(self) -> (i32, u32, u32) {
        civil_from_days(self.days)
    }

    pub fn add_days(self, n: i32) -> SimDate {
        SimDate {
            days: self.days + n,
        }
    }

    /// Days from `self` to `later` (negative if `later` is earlier).
    pub fn days_until(self, later: SimDate) -> i32 {
        later.days - self.days
    }
}

impl fmt::Display for SimDate {
    /// ISO 8601 `YYYY-MM-DD`, as the export format requires.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.parts();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

pub(crate) fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (public-domain algorithms).
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_impossible_dates() {
        let d = SimDate::new(2024, 2, 29).unwrap();
        assert_eq!(d.to_string(), "2024-02-29");
        assert_eq!(d.add_days(1).to_string(), "2024-03-01");
        assert_eq!(SimDate::new(1970, 1, 1).unwrap().days, 0);
        assert!(SimDate::new(2025, 2, 29).is_none());
        assert!(SimDate::new(2025, 13, 1).is_none());
        let mut x = SimDate::new(1899, 12, 31).unwrap();
        for _ in 0..200_000 {
            let (y, m, dd) = x.parts();
            assert_eq!(SimDate::new(y, m, dd), Some(x));
            x = x.add_days(1);
        }
    }
}
