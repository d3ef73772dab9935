//! `gsko inspect statement FILE`: JSON lines for every statement, entry and problem, without
//! touching the file.

mod common;

use common::*;
use gsko_bank::{inspect_statement, inspect_statement_with, IdentifyRules};
use gsko_sim::bank::{BankProfile, BankSimSpec, Fault};

#[test]
fn inspect_prints_payments_and_problems_as_json_lines() {
    let spec = BankSimSpec {
        faults: vec![Fault::BrokenAmount {
            statement: 0,
            entry: 2,
        }],
        ..BankSimSpec::new(41, BankProfile::PkoBp)
    };
    let (bytes, truth) = generate(&spec);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wyciag.sta");
    std::fs::write(&path, &bytes).unwrap();
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();

    let mut out = Vec::new();
    let summary = inspect_statement(&path, &mut out).expect("inspect");
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let kind = |k: &str| lines.iter().filter(|l| l["kind"] == k).count() as u64;
    assert_eq!(kind("statement"), 3);
    assert_eq!(kind("error"), 1);
    assert_eq!(summary.errors, 1);
    let credits = truth
        .entries
        .iter()
        .filter(|e| e.credit && !e.faulty)
        .count() as u64;
    assert_eq!(kind("payment"), credits);
    assert_eq!(summary.payments, credits);
    let err = lines.iter().find(|l| l["kind"] == "error").unwrap();
    assert_eq!(err["field"], ":61: amount");
    assert_eq!(err["statement"], truth.statement_references[0].as_str());
    assert!(err["raw"].as_str().unwrap().starts_with(":61:"));
    // Without a directory, payouts are still recognised.
    assert!(lines
        .iter()
        .any(|l| l["identification"]["by"] == "gateway_payout"));

    // With the tenant's directory, virtual-account credits are attributed.
    let mut out = Vec::new();
    inspect_statement_with(
        &path,
        &options(&spec),
        &directory(&spec, &truth),
        &IdentifyRules::default(),
        &mut out,
    )
    .unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .contains(r#""by":"by_virtual_account""#));

    assert_eq!(std::fs::read(&path).unwrap(), bytes, "file untouched");
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    assert!(inspect_statement(&tmp.path().join("missing.sta"), &mut Vec::new()).is_err());
}
