//! The whole loop against the simulated ledger (gsko-sim's `LedgerSim`, an independent
//! implementation): booking files (one written by hand, one Elixir-0 and one XML from the
//! connector's writer) are booked by the simulator, whose incremental export validates against
//! the export XSD and, imported by the connector, yields a `PaymentBooked` per item.

use chrono::NaiveDate;
use gsko_bus::{Bus, Exchange, MemoryBus, QueueSpec, Topology};
use gsko_model::{
    Amount, Balance, Event, EventData, Nrb, Payment, PaymentChannel, PaymentItem, Teryt,
};
use gsko_radix::{
    import_file, BookingFormat, BookingWriter, ElixirOptions, ImportOptions, ImportOutcome,
    RecordSource, SourceItem, TenantDirs, Written,
};
use gsko_sim::ledger::LedgerSim;
use gsko_sim::{generate_to_dir, RadixExportSpec};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const TENANT: &str = "1465011";

fn tenant() -> Teryt {
    Teryt::parse(TENANT).unwrap()
}

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/radix")
}

/// (account, liability, installment seq) of an installment.
type InstallmentRef = (String, String, u8);

/// Every installment and the balances, as the connector reads the generated export.
fn read_export(path: &std::path::Path) -> (Vec<InstallmentRef>, BTreeMap<String, Balance>) {
    let mut src = gsko_radix::open_xml(path, Some(&tenant())).unwrap();
    let (mut inst, mut bal) = (Vec::new(), BTreeMap::new());
    while let Some(item) = src.next_item().unwrap() {
        let SourceItem::Record(r) = item else {
            panic!("the generated export is clean: {item:?}")
        };
        match r.data {
            EventData::LiabilityUpserted(l) => {
                for i in &l.installments {
                    inst.push((l.account_id.clone(), l.liability_id.clone(), i.seq));
                }
            }
            EventData::BalanceReported(b) => {
                bal.insert(b.account_id.clone(), b);
            }
            _ => {}
        }
    }
    (inst, bal)
}

fn g(n: i64) -> Amount {
    Amount::from_grosze(n).unwrap()
}

fn payment(id: &str, channel: PaymentChannel, items: Vec<(&str, &str, u8, i64)>) -> Payment {
    Payment {
        payment_id: id.into(),
        channel,
        amount: g(items.iter().map(|i| i.3).sum()),
        paid_on: NaiveDate::from_ymd_opt(2026, 10, 20).unwrap(),
        received_on: NaiveDate::from_ymd_opt(2026, 10, 21).unwrap(),
        items: items
            .into_iter()
            .map(|(a, l, s, n)| PaymentItem {
                account_id: a.into(),
                liability_id: Some(l.into()),
                installment_seq: Some(s),
                amount: g(n),
            })
            .collect(),
        external_ref: None,
        virtual_account: None,
        title: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_books_each_payment_once_and_its_export_confirms_it() {
    let tmp = tempfile::tempdir().unwrap();
    let gen_dir = tmp.path().join("gen");
    std::fs::create_dir_all(&gen_dir).unwrap();
    let export = generate_to_dir(&RadixExportSpec::new(TENANT, 12, 7, 2026), &gen_dir).unwrap();
    let (installments, balances) = read_export(&export);
    // Three different accounts.
    let mut picked: Vec<InstallmentRef> = Vec::new();
    for i in &installments {
        if picked.iter().all(|p| p.0 != i.0) {
            picked.push(i.clone());
        }
        if picked.len() == 3 {
            break;
        }
    }
    assert_eq!(
        picked.len(),
        3,
        "the export has three accounts with liabilities"
    );
    let (a, b, c) = (&picked[0], &picked[1], &picked[2]);

    let booking = tmp.path().join("ledger-import");
    std::fs::create_dir_all(&booking).unwrap();
    // 1. A booking file written by hand, as the contract describes it.
    std::fs::write(
        booking.join("p24-100.xml"),
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<payments xmlns="urn:gsko:radix-payments:1" version="1" tenant="{TENANT}" created="2026-10-20T10:00:00Z">
  <payment id="p24-100" channel="przelewy24" amount="5000" paid-on="2026-10-19" received-on="2026-10-19">
    <title>Podatek</title>
    <item account="{}" liability="{}" installment="{}" amount="5000"/>
  </payment>
</payments>
"#,
            a.0, a.1, a.2
        ),
    )
    .unwrap();
    // 2. Elixir-0 from the connector's writer (a bank transfer to a virtual account).
    let collection = Nrb::parse("61109010140000071219812874").unwrap();
    let elixir = BookingWriter::new(
        &booking,
        tenant(),
        BookingFormat::Elixir0,
        Some(ElixirOptions::new(collection.clone(), "Urząd Gminy")),
    )
    .unwrap();
    let bank = payment(
        "bank-200",
        PaymentChannel::BankTransfer,
        vec![
            (b.0.as_str(), b.1.as_str(), b.2, 12_345),
            (c.0.as_str(), c.1.as_str(), c.2, 1),
        ],
    );
    assert!(matches!(elixir.write(&bank).unwrap(), Written::New(_)));
    // 3. XML from the connector's writer, two items on one account.
    let xml = BookingWriter::new(&booking, tenant(), BookingFormat::Xml, None).unwrap();
    let payu = payment(
        "payu-300",
        PaymentChannel::Payu,
        vec![
            (a.0.as_str(), a.1.as_str(), a.2, 700),
            (c.0.as_str(), c.1.as_str(), c.2, 99_999_900),
        ],
    );
    assert!(matches!(xml.write(&payu).unwrap(), Written::New(_)));
    // 4. A file for another municipality: skipped, left in place.
    std::fs::write(
        booking.join("other.xml"),
        r#"<payments xmlns="urn:gsko:radix-payments:1" version="1" tenant="0201043" created="2026-10-20T10:00:00Z"><payment id="x" channel="payu" amount="1" paid-on="2026-10-19" received-on="2026-10-19"><item account="A" amount="1"/></payment></payments>"#,
    )
    .unwrap();

    let dirs = TenantDirs::new(tmp.path().join("tenant"));
    dirs.ensure().unwrap();
    let out = dirs.inbox().join("radix-booked-1.xml");
    let report = LedgerSim::book(&export, &booking, &out).unwrap();
    let mut booked: Vec<&str> = report
        .booked
        .iter()
        .map(|b| b.payment_id.as_str())
        .collect();
    booked.sort();
    assert_eq!(
        booked,
        vec!["bank-200", "p24-100", "payu-300"],
        "{report:#?}"
    );
    assert_eq!(report.postings, 5);
    assert_eq!(report.balances, 3);
    assert_eq!(report.skipped.len(), 1, "{report:#?}");
    assert_eq!(report.skipped[0].file, "other.xml");
    assert!(report.skipped[0].reason.contains("tenant"), "{report:#?}");
    assert!(booking.join("other.xml").exists(), "a refused file stays");
    for f in ["p24-100.xml", "bank-200.pli", "payu-300.xml"] {
        assert!(
            booking.join("imported").join(f).exists(),
            "{f} moved to imported/"
        );
    }

    if Command::new("xmllint").arg("--version").output().is_ok() {
        let o = Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(schemas().join("radix-export-v1.xsd"))
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "the simulated export does not validate:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        eprintln!("SKIPPED: xmllint not found (install the Debian package libxml2-utils) — the XSD was not checked");
    }

    // The connector imports the ledger's answer.
    let topology = Topology {
        queues: vec![QueueSpec {
            name: "test.events".into(),
            exchange: Exchange::Events,
            bindings: vec!["pl.gsko.#".into()],
        }],
        ..Topology::default()
    };
    let bus = MemoryBus::open(None, topology).await.unwrap();
    let r = import_file(&out, &tenant(), &bus, &dirs, &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(r.outcome, ImportOutcome::Imported);
    assert_eq!(r.rejected, 0);
    let imported_export = r.moved_to.clone().expect("moved to processed/");
    let mut sub = bus.subscribe("test.events", 100).await.unwrap();
    let mut events: Vec<Event> = Vec::new();
    loop {
        let batch = sub
            .next_batch(100, Duration::from_millis(200), Duration::from_millis(10))
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        events.extend(batch.iter().map(|d| Event::from_json(&d.body).unwrap()));
        sub.ack(batch).await.unwrap();
    }
    let mut got: Vec<(String, String, i64, String)> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::PaymentBooked(p) => Some((
                p.payment_id.clone(),
                p.account_id.clone(),
                p.amount.grosze(),
                p.booked_on.to_string(),
            )),
            _ => None,
        })
        .collect();
    got.sort();
    let mut expected = vec![
        (
            "bank-200".to_owned(),
            b.0.clone(),
            12_345,
            "2026-10-20".to_owned(),
        ),
        (
            "bank-200".to_owned(),
            c.0.clone(),
            1,
            "2026-10-20".to_owned(),
        ),
        (
            "p24-100".to_owned(),
            a.0.clone(),
            5000,
            "2026-10-19".to_owned(),
        ),
        (
            "payu-300".to_owned(),
            a.0.clone(),
            700,
            "2026-10-20".to_owned(),
        ),
        (
            "payu-300".to_owned(),
            c.0.clone(),
            99_999_900,
            "2026-10-20".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(got, expected);
    // Postings carry their liability and installment; balances went down (the excess of the
    // large payment is an overpayment) with a higher version.
    assert!(balances.len() >= 3);
    for e in &events {
        match &e.data {
            EventData::PostingRecorded(p) => {
                assert!(p.liability_id.is_some() && p.installment_seq.is_some());
                assert!(e.source_version > 1000, "above the generator's versions");
            }
            EventData::BalanceReported(nb) => {
                let old = &balances[&nb.account_id];
                let paid: i64 = expected
                    .iter()
                    .filter(|x| x.1 == nb.account_id)
                    .map(|x| x.2)
                    .sum();
                let to_principal = paid.min(old.principal.grosze());
                assert_eq!(nb.principal.grosze(), old.principal.grosze() - to_principal);
                assert_eq!(
                    nb.overpayment.grosze(),
                    old.overpayment.grosze() + paid - to_principal
                );
                assert_eq!(nb.costs, old.costs);
            }
            _ => {}
        }
    }
    assert!(events
        .iter()
        .any(|e| matches!(&e.data, EventData::BalanceReported(b) if b.account_id == c.0 && b.overpayment.grosze() > 0)));

    // Once booked, never again: the sim finds nothing new, and the connector's writer sees
    // the files in imported/.
    let again = LedgerSim::book_after(
        &[export.as_path(), imported_export.as_path()],
        &booking,
        &tmp.path().join("radix-booked-2.xml"),
    )
    .unwrap();
    assert!(again.booked.is_empty(), "{again:#?}");
    assert!(again.export.is_none());
    assert_eq!(
        xml.write(&payu).unwrap(),
        Written::AlreadyThere(booking.join("imported/payu-300.xml"))
    );
    assert!(matches!(
        elixir.write(&bank).unwrap(),
        Written::AlreadyThere(_)
    ));
    // A payment the ledger's export already names is not booked twice even if its file comes
    // back.
    std::fs::copy(
        booking.join("imported/payu-300.xml"),
        booking.join("payu-300-copy.xml"),
    )
    .unwrap();
    let third = LedgerSim::book_after(
        &[export.as_path(), imported_export.as_path()],
        &booking,
        &tmp.path().join("radix-booked-3.xml"),
    )
    .unwrap();
    assert!(third.booked.is_empty(), "{third:#?}");
    assert!(third
        .skipped
        .iter()
        .any(|s| s.file == "payu-300-copy.xml" && s.reason.contains("already booked")));
}
