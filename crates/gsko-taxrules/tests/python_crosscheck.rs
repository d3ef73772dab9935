//! Independent cross-check: ~200 pseudo-random cases computed by this crate and by a separate
//! Python implementation (exact `fractions.Fraction`, `datetime`, the rate table read with
//! `tomllib`, its own Easter algorithm and a day-by-day sum instead of rate periods) must agree
//! exactly. Skipped, with a printed reason, when python3 (≥ 3.11, for tomllib) is missing.

use chrono::{Days, NaiveDate};
use gsko_model::Amount;
use gsko_taxrules::{interest_on_arrears, InterestOptions, InterestRates, InterestStatus};
use std::io::Write;
use std::process::{Command, Stdio};

/// Written independently of the Rust code, from the rules in the spec (§3.2 of
/// radix-ezd-tax-rules.md) and the holiday list of the ustawa o dniach wolnych od pracy.
const PY: &str = r#"
import sys, tomllib, bisect, datetime as dt
from fractions import Fraction

with open(sys.argv[1], 'rb') as f:
    table = tomllib.load(f)
starts = [dt.date.fromisoformat(r['effective_from']) for r in table['rate']]
bps = [r['basis_points'] for r in table['rate']]

def easter(y):
    # Oudin's algorithm (as in dateutil.easter, western)
    g = y % 19
    c = y // 100
    h = (c - c // 4 - (8 * c + 13) // 25 + 19 * g + 15) % 30
    i = h - (h // 28) * (1 - (h // 28) * (29 // (h + 1)) * ((21 - g) // 11))
    j = (y + y // 4 + i + 2 - c + c // 4) % 7
    p = i - j
    d = 1 + (p + 27 + (p + 6) // 40) % 31
    m = 3 + (p + 26) // 30
    return dt.date(y, m, d)

def holidays(y):
    e = easter(y)
    s = {dt.date(y, 1, 1), dt.date(y, 5, 1), dt.date(y, 5, 3), dt.date(y, 8, 15),
         dt.date(y, 11, 1), dt.date(y, 11, 11), dt.date(y, 12, 25), dt.date(y, 12, 26),
         e, e + dt.timedelta(days=1), e + dt.timedelta(days=49), e + dt.timedelta(days=60)}
    if y >= 2011: s.add(dt.date(y, 1, 6))
    if y >= 2025: s.add(dt.date(y, 12, 24))
    if y == 2018: s.add(dt.date(2018, 11, 12))
    return s

def day_off(d):
    return d.weekday() >= 5 or d in holidays(d.year)

for line in sys.stdin:
    p, due, pay, thr = line.split()
    p = int(p); thr = int(thr)
    due = dt.date.fromisoformat(due); pay = dt.date.fromisoformat(pay)
    eff = due
    while day_off(eff):
        eff += dt.timedelta(days=1)
    total = Fraction(0)
    days = 0
    d = eff + dt.timedelta(days=1)
    err = False
    while d <= pay:
        k = bisect.bisect_right(starts, d) - 1
        if k < 0:
            err = True
            break
        total += Fraction(p * bps[k], 365 * 10000)
        days += 1
        d += dt.timedelta(days=1)
    if err:
        print('ERR'); continue
    zl = int((total / 100 + Fraction(1, 2)) // 1)
    if pay <= eff:
        status, charged = 'not_overdue', 0
    elif p == 0:
        status, charged = 'zero', 0
    elif total <= thr:
        status, charged = 'below', 0
    else:
        status, charged = 'charged', zl * 100
    print(eff.isoformat(), days, total.numerator, total.denominator, zl * 100, charged, status)
"#;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn agrees_with_independent_python() {
    let table = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/rates/odsetki-za-zwloke.toml"
    );
    let rates = InterestRates::builtin().unwrap();
    let first = NaiveDate::from_ymd_opt(2022, 7, 8).unwrap();

    let mut rng = Rng(0x5EED_2026_0415);
    let mut cases = Vec::new();
    for n in 0..200 {
        let principal = match rng.below(4) {
            0 => rng.below(100_000),        // up to 1 000 zł
            1 => rng.below(10_000_000),     // up to 100 000 zł
            2 => rng.below(2_000_000_000),  // up to 20 mln zł
            _ => 70_000 + rng.below(5_000), // around the threshold for short delays
        } as i64;
        // Due dates: mostly the 15th (the statutory dates), sometimes any day; 2022-07-08..2026.
        let due = if n % 3 == 0 {
            first + Days::new(rng.below(1_600))
        } else {
            let y = 2022 + rng.below(5) as i32;
            let m = 1 + rng.below(12) as u32;
            let cand = NaiveDate::from_ymd_opt(y, m, 15).unwrap();
            if cand < first {
                first + Days::new(rng.below(30))
            } else {
                cand
            }
        };
        let pay = match rng.below(5) {
            0 => due + Days::new(rng.below(6)), // around the (shifted) due date
            1 => due + Days::new(rng.below(60)),
            _ => due + Days::new(rng.below(1_500)),
        };
        let threshold = if rng.below(4) == 0 {
            rng.below(5_000) as i64
        } else {
            870
        };
        cases.push((principal, due, pay, threshold));
    }

    // Fixed cases on days off and rate changes, so every calendar rule is exercised.
    let special = [
        (2025, 12, 24),
        (2026, 12, 24),
        (2024, 12, 24),
        (2026, 4, 5),
        (2026, 4, 6),
        (2026, 6, 4),
        (2025, 11, 15),
        (2026, 3, 15),
        (2023, 1, 6),
        (2026, 5, 1),
        (2023, 9, 6),
        (2025, 5, 7),
        (2022, 7, 7),
        (2022, 7, 8),
    ];
    for (i, (y, m, dd)) in special.into_iter().enumerate() {
        let due = NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        for extra in [1u64, 3, 5, 40] {
            cases.push((1_000_000 + i as i64, due, due + Days::new(extra), 870));
        }
    }

    let mut input = String::new();
    for (p, due, pay, thr) in &cases {
        input.push_str(&format!("{p} {due} {pay} {thr}\n"));
    }
    let child = Command::new("python3")
        .arg("-c")
        .arg(PY)
        .arg(table)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            println!("SKIPPED: python3 not available ({e})");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("tomllib") {
        println!("SKIPPED: python3 has no tomllib (needs ≥ 3.11): {stderr}");
        return;
    }
    assert!(out.status.success(), "python failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), cases.len());

    let mut charged = 0;
    for ((p, due, pay, thr), line) in cases.iter().zip(lines) {
        let opts = InterestOptions {
            threshold: Amount::from_grosze(*thr).unwrap(),
            ..InterestOptions::default()
        };
        let r = interest_on_arrears(Amount::from_grosze(*p).unwrap(), *due, *pay, &rates, opts);
        let ctx = format!("case p={p} due={due} pay={pay} thr={thr}: python {line}");
        if line == "ERR" {
            assert!(r.is_err(), "{ctx}");
            continue;
        }
        let r = r.unwrap_or_else(|e| panic!("{ctx}: rust error {e}"));
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(r.effective_due_date.to_string(), f[0], "{ctx}");
        assert_eq!(r.days.to_string(), f[1], "{ctx}");
        let (pn, pd): (u128, u128) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        assert_eq!(r.exact.numerator * pd, pn * r.exact.denominator, "{ctx}");
        if r.status != InterestStatus::NotOverdue {
            assert_eq!(r.rounded.grosze().to_string(), f[4], "{ctx}");
        }
        assert_eq!(r.interest.grosze().to_string(), f[5], "{ctx}");
        let status = match r.status {
            InterestStatus::Charged => "charged",
            InterestStatus::NotOverdue => "not_overdue",
            InterestStatus::ZeroPrincipal => "zero",
            InterestStatus::BelowThreshold => "below",
        };
        assert_eq!(status, f[6], "{ctx}");
        if status == "charged" {
            charged += 1;
        }
    }
    // The sample must exercise more than one outcome.
    assert!(charged > 50 && charged < cases.len(), "charged {charged}");
    println!(
        "python cross-check: {} cases agree ({charged} charged)",
        cases.len()
    );
}
