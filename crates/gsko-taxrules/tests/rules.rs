//! Rules against hand-computed values (each derivation is in the comment above it).

use chrono::NaiveDate;
use gsko_model::{Amount, Installment, LevyKind, Liability};
use gsko_taxrules::*;
use std::collections::BTreeMap;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}
fn zl(s: &str) -> Amount {
    Amount::parse_zloty(s).unwrap()
}
fn gr(g: i64) -> Amount {
    Amount::from_grosze(g).unwrap()
}
fn rates() -> InterestRates {
    InterestRates::builtin().unwrap()
}
fn interest(p: Amount, due: NaiveDate, pay: NaiveDate) -> InterestResult {
    interest_on_arrears(p, due, pay, &rates(), InterestOptions::default()).unwrap()
}

/// 10 000.00 zł due Thu 15 May 2025, paid Wed 10 Dec 2025: 209 days over six rates.
///
/// | from | to | days | rate |
/// |---|---|---|---|
/// | 2025-05-16 | 2025-07-02 | 16+30+2 = 48 | 13.5 % |
/// | 2025-07-03 | 2025-09-03 | 29+31+3 = 63 | 13.0 % |
/// | 2025-09-04 | 2025-10-08 | 27+8 = 35 | 12.5 % |
/// | 2025-10-09 | 2025-11-05 | 23+5 = 28 | 12.0 % |
/// | 2025-11-06 | 2025-12-03 | 25+3 = 28 | 11.5 % |
/// | 2025-12-04 | 2025-12-10 | 7 | 11.0 % |
///
/// Σ days × rate = 6.48 + 8.19 + 4.375 + 3.36 + 3.22 + 0.77 = 26.395 (percent-days ÷ 100)
/// interest = 10 000 × 26.395 / 365 = 723.1507 zł → 723 zł (art. 63 §1).
#[test]
fn several_rate_changes() {
    let r = interest(zl("10000"), d(2025, 5, 15), d(2025, 12, 10));
    assert_eq!(r.days, 209);
    let got: Vec<(NaiveDate, NaiveDate, u32, u32)> = r
        .periods
        .iter()
        .map(|p| (p.from, p.to, p.days, p.rate_basis_points))
        .collect();
    assert_eq!(
        got,
        vec![
            (d(2025, 5, 16), d(2025, 7, 2), 48, 1350),
            (d(2025, 7, 3), d(2025, 9, 3), 63, 1300),
            (d(2025, 9, 4), d(2025, 10, 8), 35, 1250),
            (d(2025, 10, 9), d(2025, 11, 5), 28, 1200),
            (d(2025, 11, 6), d(2025, 12, 3), 28, 1150),
            (d(2025, 12, 4), d(2025, 12, 10), 7, 1100),
        ]
    );
    // Exact: 1 000 000 gr × 263 950 bp-days / 3 650 000 = 72 315.07 gr.
    assert_eq!(r.exact.numerator, 1_000_000u128 * 263_950);
    assert_eq!(r.exact.denominator, 3_650_000);
    assert_eq!(r.exact.hundredths_of_grosz_floor(), 7_231_506);
    assert_eq!(r.rounded, zl("723"));
    assert_eq!(r.interest, zl("723"));
    assert_eq!(r.status, InterestStatus::Charged);
    assert!(r.estimate);
    assert!(!r.beyond_verified_rates);
}

/// 36 500.00 zł due Thu 15 Feb 2024, paid Fri 15 Mar 2024: 14 days of February (with 29 Feb)
/// and 15 of March, 29 days at 14.5 %. The divisor stays 365 in a leap year:
/// 36 500 × 29 × 0.145 / 365 = 420.50 zł → 421 zł (exactly 50 gr rounds up).
/// (A 366-day year would give 419.35 → 419 zł.)
#[test]
fn leap_year_uses_365() {
    let r = interest(zl("36500"), d(2024, 2, 15), d(2024, 3, 15));
    assert_eq!(r.days, 29);
    assert_eq!(r.exact.hundredths_of_grosz_floor(), 4_205_000);
    assert_eq!(r.interest, zl("421"));
}

/// At 14.5 %, 730.00 zł for 30 days: 730 × 30 × 0.145 / 365 = 8.70 zł exactly → not charged
/// (art. 54 §1 pkt 5: "does not exceed"). 730.01 zł → 8.7001 zł → charged, rounded to 9 zł.
/// Due Tue 15 Oct 2024, paid Thu 14 Nov 2024 = 16 + 14 = 30 days.
#[test]
fn threshold_exactly_and_just_above() {
    let at = interest(zl("730"), d(2024, 10, 15), d(2024, 11, 14));
    assert_eq!(at.days, 30);
    assert_eq!(at.exact.hundredths_of_grosz_floor(), 87_000);
    assert_eq!(at.rounded, zl("9"));
    assert_eq!(at.interest, Amount::ZERO);
    assert_eq!(at.status, InterestStatus::BelowThreshold);

    let above = interest(zl("730.01"), d(2024, 10, 15), d(2024, 11, 14));
    assert_eq!(above.status, InterestStatus::Charged);
    assert_eq!(above.interest, zl("9"));

    // The threshold is a parameter.
    let opts = InterestOptions {
        threshold: Amount::ZERO,
        ..InterestOptions::default()
    };
    let r =
        interest_on_arrears(zl("100"), d(2024, 10, 15), d(2024, 11, 14), &rates(), opts).unwrap();
    // 100 × 30 × 0.145 / 365 = 1.19 zł → 1 zł
    assert_eq!(r.interest, zl("1"));
}

/// At 12.5 % (4 Sep – 8 Oct 2025), 10 days (due Mon 15 Sep, paid Thu 25 Sep 2025):
/// 3 650.00 zł → 3 650 × 10 × 0.125 / 365 = 12.50 zł → 13 zł;
/// 3 647.08 zł → 12.49 zł → 12 zł.
#[test]
fn rounding_049_050() {
    let half = interest(zl("3650"), d(2025, 9, 15), d(2025, 9, 25));
    assert_eq!(half.days, 10);
    assert_eq!(half.exact.hundredths_of_grosz_floor(), 125_000);
    assert_eq!(half.interest, zl("13"));
    let below = interest(zl("3647.08"), d(2025, 9, 15), d(2025, 9, 25));
    assert_eq!(below.exact.hundredths_of_grosz_floor(), 124_900);
    assert_eq!(below.interest, zl("12"));

    assert_eq!(round_to_full_zloty(zl("25.49")).unwrap(), zl("25"));
    assert_eq!(round_to_full_zloty(zl("25.50")).unwrap(), zl("26"));
    assert_eq!(round_to_full_zloty(zl("25.91")).unwrap(), zl("26"));
    assert!(round_to_full_zloty(gr(i64::MAX)).is_err());
}

/// 15 Nov 2025 is a Saturday: the due date becomes Mon 17 Nov (art. 12 §5). Paying on the 17th
/// is on time; on Tue 18 Nov it is 1 day late: 100 000 zł × 1 × 0.115 / 365 = 31.51 → 32 zł.
/// Without the shift it would be 3 days: 94.52 → 95 zł.
#[test]
fn weekend_shift() {
    let on_time = interest(zl("100000"), d(2025, 11, 15), d(2025, 11, 17));
    assert_eq!(on_time.effective_due_date, d(2025, 11, 17));
    assert_eq!(on_time.status, InterestStatus::NotOverdue);
    assert_eq!(on_time.interest, Amount::ZERO);

    let late = interest(zl("100000"), d(2025, 11, 15), d(2025, 11, 18));
    assert_eq!(late.days, 1);
    assert_eq!(late.interest, zl("32"));

    let opts = InterestOptions {
        shift_due_date: false,
        ..InterestOptions::default()
    };
    let unshifted = interest_on_arrears(
        zl("100000"),
        d(2025, 11, 15),
        d(2025, 11, 18),
        &rates(),
        opts,
    )
    .unwrap();
    assert_eq!(unshifted.days, 3);
    assert_eq!(unshifted.interest, zl("95"));
}

/// Easter 2026 is Sun 5 April: a term ending on Easter Monday 6 April ends on Tue 7 April;
/// Corpus Christi Thu 4 June 2026 → Fri 5 June; 24 Dec 2025 (a holiday since 2025, a
/// Wednesday) → 25, 26 Dec, weekend → Mon 29 Dec.
#[test]
fn holiday_shifts() {
    assert_eq!(easter_sunday(2026), Some(d(2026, 4, 5)));
    let r = interest(zl("100000"), d(2026, 4, 6), d(2026, 4, 7));
    assert_eq!(r.effective_due_date, d(2026, 4, 7));
    assert_eq!(r.status, InterestStatus::NotOverdue);
    let r = interest(zl("100000"), d(2026, 4, 6), d(2026, 4, 8));
    assert_eq!(r.days, 1);
    assert_eq!(effective_due_date(d(2026, 6, 4)).unwrap(), d(2026, 6, 5));
    assert_eq!(
        effective_due_date(d(2025, 12, 24)).unwrap(),
        d(2025, 12, 29)
    );
    assert_eq!(effective_due_date(d(2026, 3, 15)).unwrap(), d(2026, 3, 16));
    assert!(is_working_day(d(2026, 4, 7)).unwrap());
    assert!(!is_working_day(d(2026, 4, 6)).unwrap());
}

/// The spec's example (art. 55 §2): 436 zł paid on 883 zł of arrears → 403.97 principal and
/// 32.03 interest, which implies 70 zł of interest. Constructed: 883 zł due Fri 15 Mar 2024,
/// paid Mon 30 Sep 2024 = 16+30+31+30+31+31+30 = 199 days at 14.5 %:
/// 883 × 199 × 0.145 / 365 = 69.8054 zł → 70 zł. Then 436 × 883 / 953 = 403.9706 → 403.97.
#[test]
fn spec_example_through_allocation() {
    let arrears = [Arrear {
        id: "N-2024-1".into(),
        levy: LevyKind::Property,
        due_date: d(2024, 3, 15),
        principal: zl("883"),
    }];
    let a = allocate(zl("436"), d(2024, 9, 30), &arrears, None, &rates()).unwrap();
    assert!(a.estimate);
    assert_eq!(a.lines.len(), 1);
    let l = &a.lines[0];
    assert_eq!(l.interest_due.days, 199);
    assert_eq!(l.interest_due.interest, zl("70"));
    assert_eq!(l.principal_paid, zl("403.97"));
    assert_eq!(l.interest_paid, zl("32.03"));
    assert_eq!(l.principal_left, zl("479.03"));
    assert_eq!(l.interest_left, zl("37.97"));
    assert!(!l.settled);
    assert_eq!(a.overpayment, Amount::ZERO);
}

/// Three arrears, payment date Mon 2 Jun 2025 (14.5 % to 7 May, 13.5 % from 8 May):
/// - V1 vehicle 300 zł due Mon 17 Feb 2025: 79 days at 14.5 % + 26 at 13.5 %:
///   300 × (79×0.145 + 26×0.135) / 365 = 300 × 14.965 / 365 = 12.30 → 12 zł
/// - P1 property 500 zł due Mon 17 Mar 2025: 51 days at 14.5 % + 26 at 13.5 %:
///   500 × (7.395 + 3.51) / 365 = 14.94 → 15 zł
/// - P2 property 500 zł due Thu 15 May 2025: 18 days at 13.5 % = 3.33 zł ≤ 8.70 → 0
fn three_arrears() -> Vec<Arrear> {
    vec![
        Arrear {
            id: "P1".into(),
            levy: LevyKind::Property,
            due_date: d(2025, 3, 17),
            principal: zl("500"),
        },
        Arrear {
            id: "V1".into(),
            levy: LevyKind::Vehicle,
            due_date: d(2025, 2, 17),
            principal: zl("300"),
        },
        Arrear {
            id: "P2".into(),
            levy: LevyKind::Property,
            due_date: d(2025, 5, 15),
            principal: zl("500"),
        },
    ]
}

/// No indication, 400 zł: V1 (earliest) takes 300 + 12 = 312; 88 zł left on P1 (515 due):
/// 88 × 500 / 515 = 85.4369 → 85.44 principal, 2.56 interest.
#[test]
fn allocation_without_indication() {
    let a = allocate(zl("400"), d(2025, 6, 2), &three_arrears(), None, &rates()).unwrap();
    assert!(!a.indication_applied);
    let got: Vec<(&str, Amount, Amount, Amount)> = a
        .lines
        .iter()
        .map(|l| {
            (
                l.arrear_id.as_str(),
                l.interest_due.interest,
                l.principal_paid,
                l.interest_paid,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("V1", zl("12"), zl("300"), zl("12")),
            ("P1", zl("15"), zl("85.44"), zl("2.56")),
        ]
    );
    assert!(a.lines[0].settled);
    assert_eq!(a.lines[0].basis, AllocationBasis::EarliestDue);
    assert_eq!(a.overpayment, Amount::ZERO);
    assert!(!a.overpayment_may_be_offset);
}

/// Property indicated (e.g. paid to the property tax account), 400 zł: P1 first although V1 is
/// older: 400 × 500 / 515 = 388.3495 → 388.35 principal, 11.65 interest; V1 untouched.
#[test]
fn allocation_with_indication() {
    let a = allocate(
        zl("400"),
        d(2025, 6, 2),
        &three_arrears(),
        Some(LevyKind::Property),
        &rates(),
    )
    .unwrap();
    assert!(a.indication_applied);
    assert_eq!(a.lines.len(), 1);
    assert_eq!(a.lines[0].arrear_id, "P1");
    assert_eq!(a.lines[0].basis, AllocationBasis::IndicatedLevy);
    assert_eq!(a.lines[0].principal_paid, zl("388.35"));
    assert_eq!(a.lines[0].interest_paid, zl("11.65"));

    // An indicated levy without arrears falls back to the earliest due date (art. 62 §1).
    let a = allocate(
        zl("400"),
        d(2025, 6, 2),
        &three_arrears(),
        Some(LevyKind::Forest),
        &rates(),
    )
    .unwrap();
    assert!(!a.indication_applied);
    assert_eq!(a.lines[0].arrear_id, "V1");
}

/// Overpayment: property indicated, 1 100 zł: P1 515 + P2 500 (interest 0 under the
/// threshold) = 1 015 → 85 zł over, while V1 stays unpaid (to be offset ex officio, art. 76).
/// No indication, 2 000 zł: 312 + 515 + 500 = 1 327 → 673 zł over, nothing left to offset.
#[test]
fn overpayment() {
    let a = allocate(
        zl("1100"),
        d(2025, 6, 2),
        &three_arrears(),
        Some(LevyKind::Property),
        &rates(),
    )
    .unwrap();
    assert_eq!(a.lines.len(), 2);
    assert_eq!(a.lines[1].arrear_id, "P2");
    assert_eq!(
        a.lines[1].interest_due.status,
        InterestStatus::BelowThreshold
    );
    assert!(a.lines.iter().all(|l| l.settled));
    assert_eq!(a.overpayment, zl("85"));
    assert!(a.overpayment_may_be_offset);

    let a = allocate(zl("2000"), d(2025, 6, 2), &three_arrears(), None, &rates()).unwrap();
    assert_eq!(a.lines.len(), 3);
    assert_eq!(a.overpayment, zl("673"));
    assert!(!a.overpayment_may_be_offset);

    // Not yet due on the payment day: not an arrear, nothing applied.
    let a = allocate(zl("100"), d(2025, 3, 1), &three_arrears(), None, &rates()).unwrap();
    assert_eq!(a.lines.len(), 1);
    assert_eq!(a.not_overdue, vec!["P1".to_string(), "P2".to_string()]);
}

/// Property tax 2025, four installments of 250.75 zł; 15 Mar and 15 Nov 2025 are Saturdays.
/// Today Mon 17 Nov 2025; paid: I in full, 100 zł of II.
/// - II: 150.75 zł left, due Thu 15 May; 16 May – 17 Nov: 48 d × 13.5 %, 63 × 13 %, 35 × 12.5 %,
///   28 × 12 %, 12 × 11.5 % → Σ = 237 850 bp-days; 15 075 gr × 237 850 / 3 650 000 = 982.353 gr
///   = 9.82 zł > 8.70 → 10 zł.
/// - III: 250.75 left, due Mon 15 Sep; 23 × 12.5 %, 28 × 12 %, 12 × 11.5 % → 76 150;
///   25 075 × 76 150 / 3 650 000 = 523.1 gr = 5.23 zł ≤ 8.70 → 0 (but overdue).
/// - IV: due Sat 15 Nov → Mon 17 Nov = today: not overdue.
#[test]
fn due_today_per_installment() {
    let inst = |seq, m| Installment {
        seq,
        due_date: d(2025, m, 15),
        amount: zl("250.75"),
    };
    let liability = Liability {
        liability_id: "L1".into(),
        account_id: "A1".into(),
        levy: LevyKind::Property,
        year: 2025,
        decision: None,
        total: zl("1003"),
        installments: vec![inst(1, 3), inst(2, 5), inst(3, 9), inst(4, 11)],
    };
    let paid = BTreeMap::from([(1u8, zl("250.75")), (2u8, zl("100"))]);
    let due = due_today(&liability, &paid, d(2025, 11, 17), &rates()).unwrap();
    let got: Vec<(u8, NaiveDate, Amount, Amount, Amount, bool)> = due
        .iter()
        .map(|i| {
            (
                i.seq,
                i.due_date,
                i.principal_left,
                i.interest,
                i.total,
                i.overdue,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                d(2025, 3, 17),
                Amount::ZERO,
                Amount::ZERO,
                Amount::ZERO,
                false
            ),
            (
                2,
                d(2025, 5, 15),
                zl("150.75"),
                zl("10"),
                zl("160.75"),
                true
            ),
            (
                3,
                d(2025, 9, 15),
                zl("250.75"),
                Amount::ZERO,
                zl("250.75"),
                true
            ),
            (
                4,
                d(2025, 11, 17),
                zl("250.75"),
                Amount::ZERO,
                zl("250.75"),
                false
            ),
        ]
    );
    assert_eq!(
        due[1]
            .interest_detail
            .as_ref()
            .unwrap()
            .exact
            .hundredths_of_grosz_floor(),
        98_235
    );
    assert_eq!(
        due[2].interest_detail.as_ref().unwrap().status,
        InterestStatus::BelowThreshold
    );
    assert!(due.iter().all(|i| i.estimate));
}

/// No panics on extreme input: errors, or flagged results.
#[test]
fn extremes_do_not_panic() {
    let r = rates();
    let o = InterestOptions::default();
    let max = gr(i64::MAX);
    assert!(matches!(
        interest_on_arrears(zl("100"), NaiveDate::MAX, NaiveDate::MAX, &r, o),
        Err(TaxRulesError::DateOutOfRange(_))
    ));
    assert!(matches!(
        interest_on_arrears(zl("100"), NaiveDate::MIN, d(2025, 1, 1), &r, o),
        Err(TaxRulesError::DateOutOfRange(_))
    ));
    // Before the first rate of the table.
    assert!(matches!(
        interest_on_arrears(zl("100"), d(2020, 1, 15), d(2025, 1, 1), &r, o),
        Err(TaxRulesError::NoRateFor(_))
    ));
    // Without the shift the calendar is not consulted: far dates still compute, flagged.
    let no_shift = InterestOptions {
        shift_due_date: false,
        ..o
    };
    let far = interest_on_arrears(zl("100"), d(2025, 1, 15), NaiveDate::MAX, &r, no_shift).unwrap();
    assert!(far.beyond_verified_rates);
    assert!(interest_on_arrears(max, d(2025, 1, 15), NaiveDate::MAX, &r, no_shift).is_err());
    assert!(interest_on_arrears(max, d(2025, 1, 15), d(2199, 1, 1), &r, o).is_err());
    // Payment before the due date.
    let early = interest(zl("100"), d(2025, 9, 15), d(2020, 1, 1));
    assert_eq!(early.status, InterestStatus::NotOverdue);
    // Zero principal.
    let zero = interest(Amount::ZERO, d(2025, 9, 15), d(2025, 12, 1));
    assert_eq!(zero.status, InterestStatus::ZeroPrincipal);
    assert_eq!(zero.interest, Amount::ZERO);
    // Allocation with huge amounts.
    let arrears = [Arrear {
        id: "x".into(),
        levy: LevyKind::Other,
        due_date: d(2025, 9, 15),
        principal: max,
    }];
    let a = allocate(max, d(2025, 9, 16), &arrears, None, &r).unwrap();
    assert_eq!(a.lines.len(), 1);
    let total = a.lines[0].principal_paid.grosze() + a.lines[0].interest_paid.grosze();
    assert_eq!(total, i64::MAX);
    assert!(allocate(max, d(2250, 1, 1), &arrears, None, &r).is_err());
}

/// Results serialize to JSON for the query service (u128 fractions included).
#[test]
fn results_serialize() {
    let r = interest(zl("10000"), d(2025, 5, 15), d(2025, 12, 10));
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["estimate"], true);
    assert_eq!(v["interest"], 72300);
    assert_eq!(v["status"], "charged");
    assert_eq!(v["periods"][0]["rate_basis_points"], 1350);
    assert_eq!(v["hundredths_of_grosz"], 7_231_506);
    // 48 days × 13.5 % on 10 000 zł = 177.53 zł
    assert_eq!(v["periods"][0]["hundredths_of_grosz"], 1_775_342);
}
