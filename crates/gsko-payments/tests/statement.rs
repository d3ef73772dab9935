//! Bank statements into payments, against the embedded store: statements from the independent
//! bank simulator settle each virtual-account credit once (settled + book in the outbox), a
//! re-import settles nothing new, the same entry in another file is a duplicate, unknown and
//! unidentified credits go to an admin, payouts are counted, malformed entries are rejected
//! with file, line and field while the rest of the file still settles, and the settled
//! payments reach the resident's view.
//!
//! `cargo test -p gsko-payments --test statement`

use gsko_bank::{Charset, Gateway, ParseOptions};
use gsko_config::BankConfig;
use gsko_model::*;
use gsko_payments::statement::{
    import_statement, import_statement_with, run_inbox, StatementOptions, StatementReport,
    MARKER_DIR,
};
use gsko_sim::bank::{
    self as sim, BankProfile, BankSimSpec, BankSimSummary, Fault, SimCharset, SimEntryKind,
};
use gsko_sim::identifiers;
use gsko_store::{PaymentStore, SqliteStore, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const TENANT: &str = "1211052";

fn tenant() -> Teryt {
    Teryt::parse(TENANT).unwrap()
}

/// A valid PESEL for a person born 1 Jan 1950 + `n` days.
fn pesel(n: u32) -> Pesel {
    let born = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap()
        + chrono::Days::new(u64::from(n % 18000));
    let base = format!("{}{:04}", born.format("%y%m%d"), n % 10000);
    let w = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = base
        .bytes()
        .zip(w)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Pesel::parse(&format!("{base}{}", (10 - sum % 10) % 10)).unwrap()
}

fn taxpayer_pesel(account_key: &str) -> Pesel {
    pesel(account_key[1..].parse().unwrap())
}

/// A store that knows the simulator's taxpayers: one taxpayer (with a PESEL) and one property
/// tax account with the taxpayer's virtual account each.
async fn store_with_taxpayers(spec: &BankSimSpec) -> SqliteStore {
    let store = SqliteStore::open(":memory:").await.unwrap();
    let t = tenant();
    let mut events = Vec::new();
    for tp in sim::taxpayers(spec) {
        let taxpayer_id = format!("T{}", &tp.account_key[1..]);
        events.push(Event::new(
            "/gsko/test",
            t.clone(),
            1,
            EventData::TaxpayerUpserted(Taxpayer {
                taxpayer_id: taxpayer_id.clone(),
                kind: TaxpayerKind::Natural,
                pesel: Some(taxpayer_pesel(&tp.account_key)),
                nip: None,
                regon: None,
                name: format!("Podatnik {}", tp.account_key),
                address: None,
                contacts: Vec::new(),
            }),
        ));
        events.push(Event::new(
            "/gsko/test",
            t.clone(),
            1,
            EventData::TaxAccountUpserted(TaxAccount {
                account_id: tp.account_key.clone(),
                levy: LevyKind::Property,
                holders: vec![AccountHolder {
                    taxpayer_id,
                    role: HolderRole::Owner,
                }],
                virtual_account: Some(Nrb::parse(&tp.virtual_nrb).unwrap()),
            }),
        ));
    }
    Store::apply(&store, &events).await.unwrap();
    store
}

fn sim_charset(c: SimCharset) -> Charset {
    match c {
        SimCharset::Utf8 => Charset::Utf8,
        SimCharset::Cp1250 => Charset::Cp1250,
        SimCharset::Iso8859_2 => Charset::Iso8859_2,
        SimCharset::Cp852 => Charset::Cp852,
    }
}

/// The options a tenant configures for this bank.
fn options(spec: &BankSimSpec) -> StatementOptions {
    let layout = match spec.profile {
        BankProfile::MbankCollect => "mbank",
        _ => "separated",
    };
    let charset = match spec.charset {
        SimCharset::Utf8 => "utf-8",
        SimCharset::Cp1250 => "cp1250",
        SimCharset::Iso8859_2 => "iso-8859-2",
        SimCharset::Cp852 => "cp852",
    };
    let o = StatementOptions::from_config(&bank_config(layout, charset)).unwrap();
    assert_eq!(o.parse.charset, sim_charset(spec.charset));
    o
}

fn bank_config(layout: &str, charset: &str) -> BankConfig {
    BankConfig {
        directory: PathBuf::from("bank"),
        layout: layout.to_owned(),
        charset: charset.to_owned(),
        schedule: "0 */15 * * * *".to_owned(),
    }
}

fn generate(spec: &BankSimSpec) -> (Vec<u8>, BankSimSummary) {
    let mut out = Vec::new();
    let truth = sim::write_statements(spec, &mut out).unwrap();
    (out, truth)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

async fn outbox(store: &SqliteStore) -> Vec<Event> {
    PaymentStore::outbox_pending(store, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.event)
        .collect()
}

fn settled(events: &[Event]) -> Vec<&Payment> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PaymentSettled(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn booked(events: &[Event]) -> Vec<&Payment> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PaymentBook(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn unmatched(events: &[Event]) -> Vec<&UnmatchedPayment> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PaymentUnmatched(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn rejected(events: &[Event]) -> Vec<&RejectedRecord> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::RecordRejected(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// 1-based line numbers of every line starting with `prefix`.
fn lines_starting(bytes: &[u8], prefix: &[u8]) -> Vec<usize> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| l.starts_with(prefix))
        .map(|(i, _)| i + 1)
        .collect()
}

/// Virtual-account credits the simulator wrote without a fault: (account key, amount, date).
fn virtual_truth(truth: &BankSimSummary) -> Vec<(String, i64, String)> {
    truth
        .entries
        .iter()
        .filter(|e| !e.faulty)
        .filter_map(|e| match &e.kind {
            SimEntryKind::VirtualAccount { account_key, .. } => {
                Some((account_key.clone(), e.amount_grosze, e.value_date.clone()))
            }
            _ => None,
        })
        .collect()
}

fn count_kind(truth: &BankSimSummary, f: impl Fn(&SimEntryKind) -> bool) -> u64 {
    truth.entries.iter().filter(|e| f(&e.kind)).count() as u64
}

#[tokio::test]
async fn simulated_statements_settle_each_virtual_credit_once() {
    for (seed, profile, charset) in [
        (11, BankProfile::PkoBp, SimCharset::Utf8),
        (12, BankProfile::Pekao, SimCharset::Cp852),
        (13, BankProfile::MbankCollect, SimCharset::Cp1250),
    ] {
        let label = format!("{profile:?}");
        let spec = BankSimSpec {
            charset,
            ..BankSimSpec::new(seed, profile)
        };
        let store = store_with_taxpayers(&spec).await;
        let (bytes, truth) = generate(&spec);
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "wyciag.sta", &bytes);
        let report = import_statement(&path, &tenant(), &store, &options(&spec))
            .await
            .unwrap();

        let expected = virtual_truth(&truth);
        let titles = count_kind(&truth, |k| matches!(k, SimEntryKind::Title { .. }));
        let payouts = count_kind(&truth, |k| matches!(k, SimEntryKind::GatewayPayout { .. }));
        let debits = count_kind(&truth, |k| matches!(k, SimEntryKind::Debit));
        assert_eq!(report.file, "wyciag.sta", "{label}");
        assert_eq!(report.file_sha256, sha256_hex(&bytes), "{label}");
        assert_eq!(report.statements, u64::from(spec.statements), "{label}");
        assert_eq!(report.settled, expected.len() as u64, "{label}");
        assert_eq!(report.duplicates, 0, "{label}");
        assert_eq!(report.already_settled, 0, "{label}");
        assert_eq!(
            report.unmatched, titles,
            "{label}: title-only credits go to an admin"
        );
        assert_eq!(report.payouts.len() as u64, payouts, "{label}");
        assert_eq!(report.debits, debits, "{label}");
        assert_eq!(
            report.credits,
            report.settled + report.unmatched + report.payouts.len() as u64,
            "{label}"
        );
        assert!(report.rejected.is_empty(), "{label}: {:?}", report.rejected);

        // The payouts, with gateway, reference and amount, for reconciliation.
        let want_payouts: Vec<(Gateway, String, i64)> = truth
            .entries
            .iter()
            .filter_map(|e| match &e.kind {
                SimEntryKind::GatewayPayout {
                    gateway, reference, ..
                } => Some((
                    if *gateway == "payu" {
                        Gateway::PayU
                    } else {
                        Gateway::Przelewy24
                    },
                    reference.clone(),
                    e.amount_grosze,
                )),
                _ => None,
            })
            .collect();
        let got_payouts: Vec<(Gateway, String, i64)> = report
            .payouts
            .iter()
            .map(|p| (p.gateway, p.reference.clone(), p.amount.grosze()))
            .collect();
        assert_eq!(got_payouts, want_payouts, "{label}");

        // The outbox holds payment.settled and payment.book once per payment.
        let events = outbox(&store).await;
        let s = settled(&events);
        let b = booked(&events);
        assert_eq!(s.len(), expected.len(), "{label}");
        assert_eq!(b.len(), expected.len(), "{label}");
        let ids: BTreeSet<&str> = s.iter().map(|p| p.payment_id.as_str()).collect();
        assert_eq!(ids.len(), s.len(), "{label}: payment ids are distinct");
        let mut got: Vec<(String, i64, String)> = s
            .iter()
            .map(|p| {
                assert!(
                    p.payment_id.starts_with("bank-")
                        && p.payment_id.len() <= 35
                        && p.payment_id.is_ascii(),
                    "{label}: {}",
                    p.payment_id
                );
                assert_eq!(p.channel, PaymentChannel::BankTransfer);
                assert_eq!(p.items.len(), 1);
                assert_eq!(p.items[0].amount, p.amount);
                assert!(p.virtual_account.is_some());
                assert!(p.title.is_some());
                assert_eq!(p.received_on, p.paid_on, "entry date = value date here");
                (
                    p.items[0].account_id.clone(),
                    p.amount.grosze(),
                    p.paid_on.to_string(),
                )
            })
            .collect();
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{label}");
        for p in &b {
            assert!(ids.contains(p.payment_id.as_str()), "{label}");
        }
        // The title-only credits are unidentified, with the title for an admin.
        for u in unmatched(&events) {
            assert_eq!(u.reason, UnmatchedReason::Unidentified, "{label}");
            assert!(u.title.is_some(), "{label}");
            assert!(u.source.starts_with("wyciag.sta:"), "{label}");
            assert!(u.raw.starts_with(":61:"), "{label}");
        }

        // The same statement imported again gives the same ids (and settles nothing).
        let again = import_statement_with(&path, &tenant(), &store, &options(&spec), true)
            .await
            .unwrap();
        assert_eq!(again.settled, 0, "{label}");
        assert_eq!(again.already_settled, expected.len() as u64, "{label}");
        assert_eq!(again.duplicates, 0, "{label}");
        let after = outbox(&store).await;
        assert_eq!(settled(&after).len(), expected.len(), "{label}");
    }
}

#[tokio::test]
async fn settled_payments_reach_the_residents_view_as_received() {
    let spec = BankSimSpec {
        statements: 1,
        ..BankSimSpec::new(21, BankProfile::PkoBp)
    };
    let store = store_with_taxpayers(&spec).await;
    let (bytes, truth) = generate(&spec);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "wyciag.sta", &bytes);
    let report = import_statement(&path, &tenant(), &store, &options(&spec))
        .await
        .unwrap();
    assert!(report.settled > 0);
    let events = outbox(&store).await;
    let outcome = Store::apply(&store, &events).await.unwrap();
    assert!(outcome.applied > 0);

    let (account_key, amount, date) = virtual_truth(&truth).remove(0);
    let view = store
        .resident_view(&tenant(), &taxpayer_pesel(&account_key))
        .await
        .unwrap()
        .expect("the taxpayer is known");
    let payments: Vec<_> = view
        .payments
        .iter()
        .filter(|p| p.payment.items[0].account_id == account_key)
        .collect();
    assert!(!payments.is_empty());
    let p = payments
        .iter()
        .find(|p| p.payment.amount.grosze() == amount && p.payment.paid_on.to_string() == date)
        .expect("the simulated credit is in the view");
    assert_eq!(p.status, gsko_store::BookingStatus::Received);
    assert_eq!(p.payment.channel, PaymentChannel::BankTransfer);
    // Every settled payment is in the view, once.
    let counts = store.counts(&tenant()).await.unwrap();
    assert_eq!(counts.payments, report.settled);
    // Applying the outbox twice changes nothing.
    Store::apply(&store, &events).await.unwrap();
    assert_eq!(store.counts(&tenant()).await.unwrap(), counts);
}

#[tokio::test]
async fn the_inbox_imports_once_and_moves_files() {
    let spec = BankSimSpec {
        statements: 2,
        ..BankSimSpec::new(31, BankProfile::PkoBp)
    };
    let store = store_with_taxpayers(&spec).await;
    let (bytes, truth) = generate(&spec);
    let expected = virtual_truth(&truth).len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    write(&inbox, "20260313.sta", &bytes);
    write(&inbox, ".20260314.sta.part", b"incomplete upload");
    write(&inbox, "readme.txt", b"this is not a statement\n");
    let opts = options(&spec);

    let results = run_inbox(dir.path(), &tenant(), &store, &opts).await;
    assert_eq!(
        results.len(),
        2,
        "the hidden upload is skipped: {results:?}"
    );
    let report = results[0].as_ref().unwrap();
    assert_eq!(report.settled, expected);
    assert!(!report.already_imported);
    assert!(
        matches!(
            &results[1],
            Err(e @ gsko_payments::statement::StatementError::NotMt940 { .. }) if !e.retried()
        ),
        "{:?}",
        results[1]
    );
    assert!(dir.path().join("processed/20260313.sta").is_file());
    assert!(dir.path().join("failed/readme.txt").is_file());
    let note = std::fs::read_to_string(dir.path().join("failed/readme.txt.error.txt")).unwrap();
    assert!(note.contains("not an MT940 statement"), "{note}");
    assert!(inbox.join(".20260314.sta.part").is_file());
    let sha = sha256_hex(&bytes);
    let marker = dir.path().join(MARKER_DIR).join(&sha);
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    assert_eq!(recorded["settled"], serde_json::json!(expected));
    let outbox_before = outbox(&store).await.len();

    // The bank sends the same file again (same name): nothing imported, moved beside the first.
    write(&inbox, "20260313.sta", &bytes);
    let results = run_inbox(dir.path(), &tenant(), &store, &opts).await;
    assert_eq!(results.len(), 1);
    let again: &StatementReport = results[0].as_ref().unwrap();
    assert!(again.already_imported);
    assert_eq!(
        (again.settled, again.duplicates, again.unmatched),
        (0, 0, 0)
    );
    assert_eq!(outbox(&store).await.len(), outbox_before);
    assert!(!inbox.join("20260313.sta").exists());
    assert!(dir
        .path()
        .join(format!("processed/20260313.sta.{}", &sha[..12]))
        .is_file());

    // A crash after the import but before its marker: the file is imported again, settles
    // nothing new, and its payments are not reported as duplicates.
    std::fs::remove_file(&marker).unwrap();
    write(&inbox, "20260313-retry.sta", &bytes);
    let results = run_inbox(dir.path(), &tenant(), &store, &opts).await;
    let retry = results[0].as_ref().unwrap();
    assert!(!retry.already_imported);
    assert_eq!(retry.settled, 0);
    assert_eq!(retry.duplicates, 0);
    assert_eq!(retry.already_settled, expected);
    let events = outbox(&store).await;
    assert_eq!(settled(&events).len() as u64, expected);
    assert!(unmatched(&events)
        .iter()
        .all(|u| u.reason != UnmatchedReason::Duplicate));
    assert!(marker.is_file(), "the marker is written after the import");
    // The unidentified credits were queued again with the same ids and event ids: the view
    // lists each once.
    let unmatched_ids: BTreeSet<&str> = unmatched(&events)
        .iter()
        .map(|u| u.payment_id.as_str())
        .collect();
    Store::apply(&store, &events).await.unwrap();
    assert_eq!(
        store.counts(&tenant()).await.unwrap().unmatched_payments,
        unmatched_ids.len() as u64
    );
    assert_eq!(
        store
            .unmatched_payments(&tenant(), 1000)
            .await
            .unwrap()
            .len(),
        unmatched_ids.len()
    );
}

#[tokio::test]
async fn the_same_entry_in_another_file_is_a_duplicate() {
    let spec = BankSimSpec {
        statements: 1,
        ..BankSimSpec::new(41, BankProfile::Pekao)
    };
    let store = store_with_taxpayers(&spec).await;
    let (lf, truth) = generate(&spec);
    // The bank sends the same statement again in another file (here with CRLF line ends).
    let (crlf, _) = generate(&BankSimSpec {
        crlf: true,
        ..spec.clone()
    });
    assert_ne!(sha256_hex(&lf), sha256_hex(&crlf));
    let expected = virtual_truth(&truth).len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    write(&inbox, "a.sta", &lf);
    write(&inbox, "b.sta", &crlf);
    let results = run_inbox(dir.path(), &tenant(), &store, &options(&spec)).await;
    let (a, b) = (results[0].as_ref().unwrap(), results[1].as_ref().unwrap());
    assert_eq!(a.settled, expected);
    assert_eq!(b.settled, 0);
    assert_eq!(b.duplicates, expected);
    let events = outbox(&store).await;
    assert_eq!(settled(&events).len() as u64, expected);
    let settled_ids: BTreeSet<&str> = settled(&events)
        .iter()
        .map(|p| p.payment_id.as_str())
        .collect();
    let dups: Vec<_> = unmatched(&events)
        .into_iter()
        .filter(|u| u.reason == UnmatchedReason::Duplicate)
        .collect();
    assert_eq!(dups.len() as u64, expected);
    for d in &dups {
        assert!(d.source.starts_with("b.sta:"), "{}", d.source);
        assert!(d.virtual_account.is_some());
        assert!(!settled_ids.contains(d.payment_id.as_str()));
        assert!(
            settled_ids.iter().any(|id| d.detail.contains(id)),
            "the detail names the settled payment"
        );
    }
    // The view lists every duplicate (and each unidentified credit once).
    Store::apply(&store, &events).await.unwrap();
    let listed = store.unmatched_payments(&tenant(), 1000).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .filter(|r| r.payment.reason == UnmatchedReason::Duplicate)
            .count() as u64,
        expected
    );
}

/// A hand-written PKO BP–style statement of the simulator's bank and client code.
fn handmade(spec: &BankSimSpec) -> (String, String, String, String) {
    let sort = spec.profile.sort_code();
    let main = identifiers::nrb(&format!("{sort}{}000000000000", spec.client_code));
    let unknown_in_range = identifiers::nrb(&format!("{sort}{}999999999999", spec.client_code));
    let other_sort = format!("1050101{}", identifiers::sort_code_check_digit("1050101"));
    let outside = identifiers::nrb(&format!("{other_sort}0000123456789012"));
    let payer = identifiers::nrb(&format!("{other_sort}0000555566667777"));
    let known = &sim::taxpayers(spec)[0].virtual_nrb;
    let text = format!(
        "\
:20:TEST/1
:25:PL{main}
:28C:00001
:60F:C260313PLN1000,00
:61:2603130313C100,00N152NONREF//REF0001
152 0
:86:152~00PRZELEW~20Podatek od nieruchomosci~27PL{unknown_in_range}
~30{other_sort}~310000555566667777~32JAN TESTOWY~38PL{payer}
:61:2603130313C50,00N152NONREF//REF0002
:86:152~00PRZELEW~20Oplata targowa~27PL{outside}~32ANNA TESTOWA
:61:2603130313C25,50N152NONREF//REF0003
:86:152~00PRZELEW~20Podatek rolny 2026 Jan Testowy~32JAN TESTOWY
~38PL{payer}
:61:2603130313C1234,00N152NONREF//REF0004
:86:152~00PRZELEW~20Przelewy24 wyplata batch 41000123
~32PAYPRO SPOLKA AKCYJNA
:61:2603130313D10,00N641NONREF//REF0005
:86:641~00PRZELEW WYCHODZACY~20Faktura 1/2026~32FIRMA
:61:2603130313C77,00N152NONREF//REF0006
:86:152~00PRZELEW~20Podatek 2026~27PL{known}~32JAN TESTOWY
:62F:C260313PLN2476,50
-
"
    );
    (text, unknown_in_range, outside, known.clone())
}

#[tokio::test]
async fn unknown_and_unidentified_credits_go_to_an_admin_and_payouts_are_counted() {
    let spec = BankSimSpec::new(51, BankProfile::PkoBp);
    let store = store_with_taxpayers(&spec).await;
    let (text, unknown_in_range, outside, known) = handmade(&spec);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "reczny.sta", text.as_bytes());
    let opts = options(&spec);
    let report = import_statement(&path, &tenant(), &store, &opts)
        .await
        .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.statements, 1);
    assert_eq!(report.credits, 5);
    assert_eq!(report.settled, 1);
    assert_eq!(report.unmatched, 3);
    assert_eq!(report.debits, 1);
    assert_eq!(report.payouts.len(), 1);
    let payout = &report.payouts[0];
    assert_eq!(payout.gateway, Gateway::Przelewy24);
    assert_eq!(payout.reference, "41000123");
    assert_eq!(payout.amount.grosze(), 123_400);
    assert_eq!(payout.source, "reczny.sta:14");

    let events = outbox(&store).await;
    let s = settled(&events);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].virtual_account.as_ref().unwrap().as_str(), known);
    assert_eq!(s[0].items[0].account_id, "K0000001");
    assert_eq!(s[0].external_ref.as_deref(), Some("REF0006"));
    assert_eq!(s[0].title.as_deref(), Some("Podatek 2026"));

    let u = unmatched(&events);
    let by_ref: BTreeMap<&str, &UnmatchedPayment> = u
        .iter()
        .map(|u| (u.external_ref.as_deref().unwrap(), *u))
        .collect();
    let in_range = by_ref["REF0001"];
    assert_eq!(in_range.reason, UnmatchedReason::UnknownVirtualAccount);
    assert_eq!(
        in_range.virtual_account.as_ref().unwrap().as_str(),
        unknown_in_range,
        "the payer's own account (subfields 30/31/38) is never taken for the virtual account"
    );
    assert!(in_range.detail.contains("in the tenant's range"));
    assert_eq!(in_range.source, "reczny.sta:5");
    assert_eq!(in_range.amount.grosze(), 10_000);
    assert_eq!(
        in_range.paid_on,
        Some(chrono::NaiveDate::from_ymd_opt(2026, 3, 13).unwrap())
    );
    let elsewhere = by_ref["REF0002"];
    assert_eq!(elsewhere.reason, UnmatchedReason::UnknownVirtualAccount);
    assert_eq!(
        elsewhere.virtual_account.as_ref().unwrap().as_str(),
        outside
    );
    assert!(elsewhere
        .detail
        .contains("outside the tenant's virtual-account range"));
    let unidentified = by_ref["REF0003"];
    assert_eq!(unidentified.reason, UnmatchedReason::Unidentified);
    assert_eq!(unidentified.virtual_account, None);
    assert_eq!(
        unidentified.title.as_deref(),
        Some("Podatek rolny 2026 Jan Testowy")
    );
    assert!(unidentified.raw.contains(":61:260313"));
    assert!(unidentified.raw.contains("\n:86:152~00PRZELEW"));

    // Imported again (an interrupted import, resumed): the same ids, nothing listed twice.
    let again = import_statement_with(&path, &tenant(), &store, &opts, true)
        .await
        .unwrap();
    assert_eq!(
        (again.settled, again.already_settled, again.unmatched),
        (0, 1, 3)
    );
    let events = outbox(&store).await;
    let ids: Vec<&str> = unmatched(&events)
        .iter()
        .map(|u| u.payment_id.as_str())
        .collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 3);
    let event_ids: BTreeSet<_> = events
        .iter()
        .filter(|e| matches!(e.data, EventData::PaymentUnmatched(_)))
        .map(|e| e.id)
        .collect();
    assert_eq!(event_ids.len(), 3, "stable event ids");
    Store::apply(&store, &events).await.unwrap();
    assert_eq!(
        store
            .unmatched_payments(&tenant(), 100)
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn malformed_entries_are_rejected_and_the_rest_of_the_file_settles() {
    let base = BankSimSpec {
        statements: 2,
        ..BankSimSpec::new(61, BankProfile::PkoBp)
    };
    // Pick virtual-account credits to break (generation is deterministic; faults change only
    // how an entry is written).
    let (_, clean) = generate(&base);
    let first_statement = &clean.statement_references[0];
    let mut virtual_in_0 = clean.entries.iter().filter(|e| {
        &e.statement == first_statement && matches!(e.kind, SimEntryKind::VirtualAccount { .. })
    });
    let broken = virtual_in_0.next().unwrap().index;
    let unknown = virtual_in_0.next().unwrap().index;
    let spec = BankSimSpec {
        faults: vec![
            Fault::BrokenAmount {
                statement: 0,
                entry: broken,
            },
            Fault::UnknownLayout86 {
                statement: 0,
                entry: unknown,
            },
            Fault::BadClosingBalance { statement: 1 },
        ],
        ..base
    };
    let store = store_with_taxpayers(&spec).await;
    let (bytes, truth) = generate(&spec);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "uszkodzony.sta", &bytes);
    let report = import_statement(&path, &tenant(), &store, &options(&spec))
        .await
        .unwrap();

    // Every good virtual-account credit is still settled.
    let expected = virtual_truth(&truth);
    assert_eq!(expected.len(), virtual_truth(&clean).len() - 2);
    assert_eq!(report.settled, expected.len() as u64);
    assert_eq!(report.statements, 2);
    let events = outbox(&store).await;
    assert_eq!(settled(&events).len(), expected.len());

    // Three rejections, each naming file, line and field.
    let lines_61 = lines_starting(&bytes, b":61:");
    let lines_86 = lines_starting(&bytes, b":86:");
    let lines_62 = lines_starting(&bytes, b":62F:");
    let global = |statement: u32, entry: u32| {
        let reference = &truth.statement_references[statement as usize];
        truth
            .entries
            .iter()
            .position(|e| &e.statement == reference && e.index == entry)
            .unwrap()
    };
    let broken_line = lines_61[global(0, broken)];
    let unknown_line = lines_86[global(0, unknown)];
    let closing_line = lines_62[1];
    assert_eq!(report.rejected.len(), 3, "{:?}", report.rejected);
    assert!(
        report.rejected.iter().any(|r| r.starts_with(&format!(
            "uszkodzony.sta:{broken_line}: field :61: amount: "
        ))),
        "{:?}",
        report.rejected
    );
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.starts_with(&format!("uszkodzony.sta:{unknown_line}: field :86:: "))),
        "{:?}",
        report.rejected
    );
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.starts_with(&format!("uszkodzony.sta:{closing_line}: field :62F:: "))),
        "{:?}",
        report.rejected
    );

    let sha = sha256_hex(&bytes);
    let r = rejected(&events);
    assert_eq!(r.len(), 3);
    for x in &r {
        assert_eq!(x.file, "uszkodzony.sta");
        assert_eq!(x.file_sha256, sha);
    }
    let amount = r.iter().find(|x| x.line == broken_line as u64).unwrap();
    assert_eq!(amount.record_type, "mt940:61");
    assert_eq!(amount.field.as_deref(), Some(":61: amount"));
    assert!(amount.raw.starts_with(":61:"), "{}", amount.raw);
    assert!(
        amount.raw.contains(":86:"),
        "the whole entry is kept: {}",
        amount.raw
    );
    let layout = r.iter().find(|x| x.line == unknown_line as u64).unwrap();
    assert_eq!(layout.record_type, "mt940:86");
    assert_eq!(layout.field.as_deref(), Some(":86:"));
    assert!(layout.raw.contains("PRZELEW OD"), "{}", layout.raw);
    assert!(layout.reason.contains("no configured layout"));
    let balance = r.iter().find(|x| x.line == closing_line as u64).unwrap();
    assert_eq!(balance.record_type, "statement");
    assert_eq!(balance.field.as_deref(), Some(":62F:"));
    assert_eq!(
        balance.record_id.as_deref(),
        Some(truth.statement_references[1].as_str())
    );
    assert!(balance.reason.contains("balances do not add up"));

    // The rejected records reach the admin's list.
    Store::apply(&store, &events).await.unwrap();
    assert_eq!(
        store.rejected_records(&tenant(), 100).await.unwrap().len(),
        3
    );
}

#[test]
fn options_from_the_tenant_configuration() {
    let o = StatementOptions::from_config(&bank_config("separated", "cp852")).unwrap();
    assert_eq!(o.parse.charset, Charset::Cp852);
    let names: Vec<&str> = o.parse.layouts.iter().map(|l| l.name()).collect();
    assert_eq!(names, ["pko-bp", "pekao", "ing"]);
    let o = StatementOptions::from_config(&bank_config("mbank", "windows-1250")).unwrap();
    assert_eq!(o.parse.charset, Charset::Cp1250);
    let names: Vec<&str> = o.parse.layouts.iter().map(|l| l.name()).collect();
    assert_eq!(names, ["mbank-collect"]);
    assert!(
        StatementOptions::from_config(&bank_config("elixir", "cp852"))
            .unwrap_err()
            .contains("bank.layout")
    );
    assert!(
        StatementOptions::from_config(&bank_config("separated", "mazovia"))
            .unwrap_err()
            .contains("bank.charset")
    );
    // The default parse options are not what a tenant gets.
    assert_ne!(ParseOptions::default().layouts.len(), 1);
}
