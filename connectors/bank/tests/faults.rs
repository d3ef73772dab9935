//! Bad input: each fault the simulator can inject gives one clear error naming the file, line,
//! statement and field, keeps the raw text, and every other entry still comes out.

mod common;

use common::*;
use gsko_bank::{parse_statements_with, Charset, Mt940Error, Statement};
use gsko_sim::bank::{BankProfile, BankSimSpec, BankSimSummary, Fault, SimCharset};

const FILE: &str = "faulty.sta";

fn run(spec: &BankSimSpec) -> (Vec<u8>, BankSimSummary, Vec<Statement>, Vec<Mt940Error>) {
    let (bytes, truth) = generate(spec);
    let mut statements = Vec::new();
    let mut errors = Vec::new();
    for item in parse_statements_with(&bytes[..], FILE, options(spec)) {
        match item {
            Ok(s) => statements.push(s),
            Err(e) => errors.push(e),
        }
    }
    (bytes, truth, statements, errors)
}

/// 1-based line of the n-th (0-based, file-wide) `:61:`.
fn line_of_61(bytes: &[u8], n: usize) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| l.starts_with(b":61:"))
        .nth(n)
        .map(|(i, _)| i + 1)
        .expect("enough entries")
}

fn global_index(truth: &BankSimSummary, statement: u32, entry: u32) -> usize {
    let reference = &truth.statement_references[statement as usize];
    truth
        .entries
        .iter()
        .position(|e| &e.statement == reference && e.index == entry)
        .expect("entry exists")
}

fn entries(statements: &[Statement]) -> usize {
    statements.iter().map(|s| s.transactions.len()).sum()
}

#[test]
fn broken_amount_is_reported_and_the_rest_parses() {
    for profile in [
        BankProfile::PkoBp,
        BankProfile::Pekao,
        BankProfile::MbankCollect,
    ] {
        let spec = BankSimSpec {
            faults: vec![Fault::BrokenAmount {
                statement: 1,
                entry: 5,
            }],
            crlf: true,
            ..BankSimSpec::new(21, profile)
        };
        let (bytes, truth, statements, errors) = run(&spec);
        assert_eq!(errors.len(), 1, "{profile:?}: {errors:?}");
        let e = &errors[0];
        let msg = e.to_string();
        println!("{msg}");
        assert!(matches!(e, Mt940Error::Field { .. }), "{e:?}");
        assert_eq!(e.field(), Some(":61: amount"));
        let at = e.location().unwrap();
        assert_eq!(at.file, FILE);
        assert_eq!(at.statement, truth.statement_references[1]);
        let n = global_index(&truth, 1, 5);
        assert_eq!(at.line, line_of_61(&bytes, n));
        assert!(msg.contains(FILE) && msg.contains(":61: amount") && msg.contains(&at.statement));
        let raw = e.raw().unwrap();
        assert!(raw.starts_with(":61:") && raw.contains(":86:"), "{raw}");
        assert_eq!(statements.len(), 3);
        assert_eq!(entries(&statements), truth.entries.len() - 1);
        // The entry after the broken one is read normally.
        let next = &truth.entries[n + 1];
        assert!(statements[1]
            .transactions
            .iter()
            .any(|t| t.amount.grosze() == next.amount_grosze));
        // Its amount is unknown, so the statement's balance cannot be verified; the others are.
        assert!(!statements[1].trailer.balance_verified);
        assert_eq!(statements[1].trailer.rejected, 1);
        assert!(statements[0].trailer.balance_verified && statements[2].trailer.balance_verified);
    }
}

#[test]
fn bad_balance_arithmetic_names_statement_and_figures() {
    let spec = BankSimSpec {
        faults: vec![Fault::BadClosingBalance { statement: 0 }],
        ..BankSimSpec::new(22, BankProfile::Pekao)
    };
    let (bytes, truth, statements, errors) = run(&spec);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    println!("{e}");
    let Mt940Error::Balance {
        at,
        field,
        computed,
        closing,
        ..
    } = e
    else {
        panic!("expected a balance error, got {e:?}")
    };
    assert_eq!(field, ":62F:");
    assert_eq!(at.statement, truth.statement_references[0]);
    assert_eq!(at.file, FILE);
    // The error points at the statement's closing balance.
    let text = String::from_utf8_lossy(&bytes);
    let closing_line = text.lines().position(|l| l.starts_with(":62F:")).unwrap() + 1;
    assert_eq!(at.line, closing_line);
    let diff = |s: &str| -> i64 { s.replace('.', "").parse::<i64>().unwrap() };
    assert_eq!(diff(closing) - diff(computed), 100);
    // Nothing is lost: every entry comes out, and the statement says it is unverified.
    assert_eq!(entries(&statements), truth.entries.len());
    assert!(!statements[0].trailer.balance_verified);
    assert!(statements[1].trailer.balance_verified);
}

#[test]
fn unknown_86_layout_keeps_the_entry_for_the_admin() {
    for profile in [BankProfile::PkoBp, BankProfile::MbankCollect] {
        let spec = BankSimSpec {
            faults: vec![Fault::UnknownLayout86 {
                statement: 2,
                entry: 3,
            }],
            charset: SimCharset::Cp852,
            ..BankSimSpec::new(23, profile)
        };
        let (bytes, truth, statements, errors) = run(&spec);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = &errors[0];
        println!("{e}");
        let Mt940Error::UnknownLayout86 {
            at,
            raw,
            transaction,
            ..
        } = e
        else {
            panic!("expected an unknown-layout error, got {e:?}")
        };
        let n = global_index(&truth, 2, 3);
        assert_eq!(at.statement, truth.statement_references[2]);
        assert_eq!(
            at.line,
            line_of_61(&bytes, n) + 1 + usize::from(profile != BankProfile::Pekao)
        );
        assert_eq!(e.field(), Some(":86:"));
        assert!(
            raw.contains("PRZELEW OD") && raw.contains("TYTUŁEM"),
            "{raw}"
        );
        assert_eq!(transaction.amount.grosze(), truth.entries[n].amount_grosze);
        assert_eq!(entries(&statements), truth.entries.len() - 1);
        // The amount was known, so the balances still check out.
        assert!(statements.iter().all(|s| s.trailer.balance_verified));
    }
}

#[test]
fn wrong_encoding_is_reported_with_the_line() {
    let spec = BankSimSpec {
        faults: vec![Fault::WrongEncoding {
            statement: 0,
            entry: 0,
        }],
        charset: SimCharset::Utf8,
        ..BankSimSpec::new(24, BankProfile::PkoBp)
    };
    let (bytes, truth, statements, errors) = run(&spec);
    assert_eq!(options(&spec).charset, Charset::Utf8);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    println!("{e}");
    assert!(matches!(e, Mt940Error::Encoding { .. }), "{e:?}");
    assert_eq!(e.field(), Some(":86:"));
    let at = e.location().unwrap();
    assert_eq!(at.statement, truth.statement_references[0]);
    // The reported line is the first line of the entry that is not UTF-8.
    let bad_line = bytes
        .split(|&b| b == b'\n')
        .position(|l| std::str::from_utf8(l).is_err())
        .unwrap()
        + 1;
    assert_eq!(at.line, bad_line);
    assert!(e.to_string().contains("UTF-8"));
    assert_eq!(entries(&statements), truth.entries.len() - 1);
}

#[test]
fn statement_without_closing_balance_is_an_error_and_the_next_statement_parses() {
    let spec = BankSimSpec::new(25, BankProfile::PkoBp);
    let (bytes, truth) = generate(&spec);
    let text = String::from_utf8(bytes).unwrap();
    // Cut the first statement's :62F:/:64: (a truncated transfer glued to the next file).
    let first_end = text.lines().position(|l| l == "-").unwrap();
    let cut: String = text
        .lines()
        .enumerate()
        .filter(|(i, l)| !(*i < first_end && (l.starts_with(":62F:") || l.starts_with(":64:"))))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let items: Vec<_> = parse_statements_with(cut.as_bytes(), FILE, options(&spec)).collect();
    let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field(), Some(":62F:"));
    let statements: Vec<_> = items.iter().filter_map(|i| i.as_ref().ok()).collect();
    assert_eq!(statements.len(), 3);
    assert_eq!(
        statements
            .iter()
            .map(|s| s.transactions.len())
            .sum::<usize>(),
        truth.entries.len()
    );
}

/// A bank the connector does not know yet is one [`Layout86`] implementation away: the same
/// file that gave an unknown-layout error reads cleanly once the layout is configured.
#[test]
fn a_new_bank_layout_is_a_small_addition() {
    use gsko_bank::{Details, Layout86};
    use std::sync::Arc;

    struct FreeText;
    impl Layout86 for FreeText {
        fn name(&self) -> &str {
            "free-text"
        }
        fn recognizes(&self, text: &str) -> bool {
            text.starts_with("PRZELEW OD ")
        }
        fn parse(&self, text: &str) -> Result<Details, String> {
            let (name, title) = text["PRZELEW OD ".len()..]
                .split_once(" TYTUŁEM ")
                .ok_or("no TYTUŁEM")?;
            Ok(Details {
                layout: "free-text".into(),
                title: title.into(),
                counterparty_name: Some(name.into()),
                ..Details::default()
            })
        }
    }

    let spec = BankSimSpec {
        faults: vec![Fault::UnknownLayout86 {
            statement: 0,
            entry: 1,
        }],
        ..BankSimSpec::new(26, BankProfile::Pekao)
    };
    let (bytes, truth) = generate(&spec);
    let mut layouts = options(&spec).layouts;
    layouts.push(Arc::new(FreeText));
    let opts = options(&spec).with_layouts(layouts);
    let statements: Vec<_> = parse_statements_with(&bytes[..], FILE, opts)
        .map(|s| s.expect("clean with the new layout"))
        .collect();
    assert_eq!(entries(&statements), truth.entries.len());
    let n = global_index(&truth, 0, 1);
    let d = statements[0].transactions[1].details.as_ref().unwrap();
    assert_eq!(d.layout, "free-text");
    assert_eq!(d.title, truth.entries[n].title);
}
