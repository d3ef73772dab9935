//! Statements from the independent simulator parse completely, balance, and every credit is
//! attributed as the simulator intended.

mod common;

use common::*;
use gsko_bank::{identify, parse_statements_with, Gateway, Identification, UnidentifiedReason};
use gsko_sim::bank::{BankSimSpec, SimEntryKind};

#[test]
fn generated_statements_parse_and_identify_completely() {
    for (seed, (profile, cs, crlf)) in profiles().into_iter().enumerate() {
        let spec = BankSimSpec {
            charset: cs,
            crlf,
            ..BankSimSpec::new(seed as u64 + 1, profile)
        };
        let (bytes, truth) = generate(&spec);
        let dir = directory(&spec, &truth);
        let label = format!("{profile:?}/{cs:?}");
        let mut statements = Vec::new();
        for item in parse_statements_with(&bytes[..], "sim.sta", options(&spec)) {
            match item {
                Ok(s) => statements.push(s),
                Err(e) => panic!("{label}: unexpected error {e}"),
            }
        }
        assert_eq!(statements.len(), spec.statements as usize, "{label}");
        let txs: Vec<_> = statements.iter().flat_map(|s| &s.transactions).collect();
        assert_eq!(txs.len(), truth.entries.len(), "{label}");
        for s in &statements {
            assert!(
                s.trailer.balance_verified,
                "{label}: {}",
                s.header.reference
            );
            assert_eq!(
                s.header.account.as_ref().map(|a| a.as_str()),
                Some(truth.account.as_str())
            );
        }
        let mut virtual_credits = 0;
        for (tx, t) in txs.iter().zip(&truth.entries) {
            assert_eq!(tx.statement, t.statement, "{label}");
            assert_eq!(tx.amount.grosze(), t.amount_grosze, "{label}");
            assert_eq!(tx.value_date.to_string(), t.value_date, "{label}");
            assert_eq!(tx.mark.is_inflow(), t.credit, "{label}");
            assert_eq!(tx.customer_reference, t.customer_reference, "{label}");
            assert_eq!(tx.bank_reference, t.bank_reference, "{label}");
            // Polish letters survive the charset round trip.
            assert_eq!(
                tx.details.as_ref().map(|d| d.title.as_str()),
                Some(t.title.as_str()),
                "{label}"
            );
            let id = identify(tx, &dir);
            match &t.kind {
                SimEntryKind::VirtualAccount { nrb, account_key } => {
                    virtual_credits += 1;
                    match id {
                        Identification::ByVirtualAccount { nrb: n, account } => {
                            assert_eq!(n.as_str(), nrb, "{label}");
                            assert_eq!(&account.account_key, account_key, "{label}");
                            assert_eq!(account.tenant.as_str(), TENANT);
                        }
                        other => panic!("{label}: virtual credit identified as {other:?}"),
                    }
                }
                SimEntryKind::Title { token, account_key } => match id {
                    Identification::ByTitle {
                        token: tk, account, ..
                    } => {
                        assert_eq!(&tk, token, "{label}");
                        assert_eq!(&account.account_key, account_key, "{label}");
                    }
                    other => panic!("{label}: title credit identified as {other:?}"),
                },
                SimEntryKind::GatewayPayout {
                    gateway, reference, ..
                } => match id {
                    Identification::GatewayPayout {
                        gateway: g,
                        reference: r,
                    } => {
                        let expected = if *gateway == "przelewy24" {
                            Gateway::Przelewy24
                        } else {
                            Gateway::PayU
                        };
                        assert_eq!(g, expected, "{label}");
                        assert_eq!(&r, reference, "{label}");
                    }
                    other => panic!("{label}: payout identified as {other:?}"),
                },
                SimEntryKind::Debit => assert_eq!(
                    id,
                    Identification::Unidentified {
                        reason: UnidentifiedReason::NotACredit
                    }
                ),
            }
        }
        assert!(virtual_credits > 50, "{label}: too few virtual credits");
    }
}

#[test]
fn unknown_virtual_account_in_our_range_is_reported_as_such() {
    let spec = BankSimSpec::new(11, gsko_sim::bank::BankProfile::PkoBp);
    let (bytes, truth) = generate(&spec);
    // A directory that knows the range but none of the accounts.
    let mut dir = gsko_bank::VirtualAccountDirectory::new();
    dir.add_range(gsko_bank::VirtualRange {
        bban_prefix: truth.virtual_prefix.clone(),
    });
    let s = parse_statements_with(&bytes[..], "sim.sta", options(&spec))
        .next()
        .unwrap()
        .unwrap();
    let (tx, t) = s
        .transactions
        .iter()
        .zip(&truth.entries)
        .find(|(_, t)| matches!(t.kind, SimEntryKind::VirtualAccount { .. }))
        .unwrap();
    let SimEntryKind::VirtualAccount { nrb, .. } = &t.kind else {
        unreachable!()
    };
    assert_eq!(
        identify(tx, &dir),
        Identification::Unidentified {
            reason: UnidentifiedReason::UnknownVirtualAccount { nrb: nrb.clone() }
        }
    );
}
