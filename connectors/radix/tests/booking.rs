//! Booking payments in the ledger: the files (XML checked with libxml2's `xmllint` against
//! `radix-payments-v1.xsd`, Elixir-0 read back with a splitter that exists only here), exactly
//! once per payment, and the consumer of `pl.gsko.payment.book.v1` on the in-process bus.

use chrono::NaiveDate;
use gsko_bus::{Bus, Exchange, MemoryBus, Outgoing, ParkingLot, QueueSpec, Topology};
use gsko_elixir::TextEncoding;
use gsko_model::{Amount, Event, EventData, Nrb, Payment, PaymentChannel, PaymentItem, Teryt};
use gsko_radix::booking::{
    check_payment_id, run_booking_with, BookingRunOptions, BookingStats, BOOKING_BINDING,
};
use gsko_radix::{
    BookingError, BookingFormat, BookingWriter, ElixirOptions, Written, BOOKING_QUEUE,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/radix")
}

fn xmllint_available() -> bool {
    Command::new("xmllint").arg("--version").output().is_ok()
}

fn validate_payments(file: &Path) -> (bool, String) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schemas().join("radix-payments-v1.xsd"))
        .arg(file)
        .output()
        .expect("xmllint runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tenant() -> Teryt {
    Teryt::parse("1465011").unwrap()
}

fn other_tenant() -> Teryt {
    Teryt::parse("0201043").unwrap()
}

fn collection() -> Nrb {
    Nrb::parse("61109010140000071219812874").unwrap()
}

fn virtual_account() -> Nrb {
    Nrb::parse(&gsko_sim::identifiers::nrb("102021230000000000010001")).unwrap()
}

/// A gateway's payout account.
fn payout() -> Nrb {
    Nrb::parse(&gsko_sim::identifiers::nrb("114020040000000000000777")).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

fn g(n: i64) -> Amount {
    Amount::from_grosze(n).unwrap()
}

fn payment(id: &str) -> Payment {
    Payment {
        payment_id: id.into(),
        channel: PaymentChannel::Przelewy24,
        amount: g(21379),
        paid_on: day(14),
        received_on: day(15),
        items: vec![
            PaymentItem {
                account_id: "A-WASTE-000004".into(),
                liability_id: Some("L-2026-000002".into()),
                installment_seq: Some(1),
                amount: g(11379),
            },
            PaymentItem {
                account_id: "A-PROP-000001".into(),
                liability_id: None,
                installment_seq: None,
                amount: g(10000),
            },
        ],
        external_ref: Some("316427118".into()),
        virtual_account: None,
        title: Some("Opłata za śmieci & podatek <2026>".into()),
    }
}

fn elixir_options() -> ElixirOptions {
    ElixirOptions::new(collection(), "Urząd Gminy Łąck")
        .with_gateway(PaymentChannel::Przelewy24, payout())
        .with_gateway(PaymentChannel::Payu, payout())
}

/// Splits one Elixir-0 record into its 16 fields (quoted fields have no escapes).
fn split_record(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

#[test]
fn the_example_and_the_writers_xml_validate_against_the_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let w = BookingWriter::new(dir.path(), tenant(), BookingFormat::Xml, None).unwrap();
    let mut p = payment("p24-0001-2026-03-14");
    p.virtual_account = Some(virtual_account());
    let Written::New(path) = w.write(&p).unwrap() else {
        panic!("first write is new")
    };
    assert_eq!(path, dir.path().join("p24-0001-2026-03-14.xml"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#"<payment id="p24-0001-2026-03-14" channel="przelewy24" amount="21379" paid-on="2026-03-14" received-on="2026-03-15""#), "{text}");
    assert!(
        text.contains("<title>Opłata za śmieci &amp; podatek &lt;2026&gt;</title>"),
        "{text}"
    );
    assert!(
        text.contains(r#"<item account="A-PROP-000001" amount="10000"/>"#),
        "{text}"
    );
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["p24-0001-2026-03-14.xml".to_owned()]);
    if !xmllint_available() {
        eprintln!("SKIPPED: xmllint not found (install the Debian package libxml2-utils) — the XSD was not checked");
        return;
    }
    for f in [schemas().join("examples/payments-v1.xml"), path] {
        let (ok, err) = validate_payments(&f);
        assert!(ok, "{} does not validate:\n{err}", f.display());
    }
    // And the XSD refuses what the contract forbids.
    let example = std::fs::read_to_string(schemas().join("examples/payments-v1.xml")).unwrap();
    let cases = [
        ("decimal amount", r#"amount="11379""#, r#"amount="113.79""#),
        ("zero amount", r#"amount="11379""#, r#"amount="0""#),
        (
            "long id",
            r#"id="p24-0001-2026-03-14""#,
            r#"id="p24-0001-2026-03-14-0000000000000000000""#,
        ),
        (
            "id with a slash",
            r#"id="p24-0001-2026-03-14""#,
            r#"id="p24/0001""#,
        ),
        (
            "unknown channel",
            r#"channel="przelewy24""#,
            r#"channel="cash""#,
        ),
    ];
    for (what, from, to) in cases {
        assert!(example.contains(from), "{what}: pattern not in example");
        let f = dir.path().join(format!("{}.bad", what.replace(' ', "-")));
        std::fs::write(&f, example.replacen(from, to, 1)).unwrap();
        assert!(
            !validate_payments(&f).0,
            "the XSD accepted a file with {what}"
        );
    }
}

#[test]
fn a_payment_is_written_once_even_after_the_ledger_moved_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = BookingWriter::new(dir.path(), tenant(), BookingFormat::Xml, None).unwrap();
    let p = payment("payu-ABC.1_x");
    let first = w.write(&p).unwrap();
    assert!(matches!(first, Written::New(_)));
    let before = std::fs::read(first.path()).unwrap();
    assert_eq!(
        w.write(&p).unwrap(),
        Written::AlreadyThere(first.path().to_owned())
    );
    for sub in ["imported", "processed"] {
        let moved = dir.path().join(sub).join("payu-ABC.1_x.xml");
        std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
        let from = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.is_file())
            .unwrap_or_else(|| dir.path().join("imported/payu-ABC.1_x.xml"));
        std::fs::rename(&from, &moved).unwrap();
        assert_eq!(
            w.write(&p).unwrap(),
            Written::AlreadyThere(moved.clone()),
            "{sub}"
        );
        assert_eq!(std::fs::read(&moved).unwrap(), before);
    }
    assert!(
        !dir.path().join("payu-ABC.1_x.xml").exists(),
        "not written again"
    );
}

#[test]
fn ids_and_payments_that_cannot_be_written_are_refused() {
    for bad in [
        "",
        ".hidden",
        "a/b",
        "../x",
        "płatność",
        "x y",
        &"x".repeat(36),
    ] {
        let e = check_payment_id(bad).unwrap_err();
        assert!(e.is_permanent());
        assert!(
            matches!(e, BookingError::InvalidPaymentId { .. }),
            "{bad:?}: {e}"
        );
    }
    check_payment_id(&"x".repeat(35)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let w = BookingWriter::new(dir.path(), tenant(), BookingFormat::Xml, None).unwrap();
    let mut p = payment("p24-2");
    p.amount = g(1);
    let e = w.write(&p).unwrap_err();
    assert!(matches!(e, BookingError::InvalidPayment { .. }), "{e}");
    assert!(
        !e.to_string().contains("21379"),
        "no amounts in errors: {e}"
    );
    let mut p = payment("p24-3");
    p.items[1].installment_seq = Some(2);
    assert!(matches!(
        w.write(&p).unwrap_err(),
        BookingError::InvalidPayment { .. }
    ));
    assert!(w.write(&payment("../etc")).is_err());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
    // Elixir-0 needs its options.
    assert!(matches!(
        BookingWriter::new(dir.path(), tenant(), BookingFormat::Elixir0, None),
        Err(BookingError::Config(_))
    ));
}

#[test]
fn elixir0_has_one_record_per_item_with_the_payment_id_on_the_first_title_line() {
    let dir = tempfile::tempdir().unwrap();
    let w = BookingWriter::new(
        dir.path(),
        tenant(),
        BookingFormat::Elixir0,
        Some(elixir_options().with_charset(TextEncoding::Cp852)),
    )
    .unwrap();
    let mut p = payment("p24-0001-2026-03-14");
    p.items[0].account_id = "A-PROP-0000001".into();
    p.items[0].liability_id = Some("L-2026-PROP-0000001".into());
    let written = w.write(&p).unwrap();
    assert_eq!(written.path(), dir.path().join("p24-0001-2026-03-14.pli"));
    let bytes = std::fs::read(written.path()).unwrap();
    assert!(
        bytes.windows(2).any(|x| x == [0x9D, 0xA5]),
        "Łą in CP852 (\"Łąck\")"
    );
    let text = String::from_utf8_lossy(&bytes);
    let records: Vec<Vec<String>> = text.split_terminator("\r\n").map(split_record).collect();
    assert_eq!(records.len(), 2);
    for (r, item) in records.iter().zip(&p.items) {
        assert_eq!(r.len(), 16);
        assert_eq!(r[0], "110");
        assert_eq!(r[1], "20260314", "the legal payment date");
        assert_eq!(r[2], item.amount.grosze().to_string());
        assert_eq!(
            r[5],
            payout().as_str(),
            "a gateway pays from its payout account"
        );
        assert_eq!(
            r[6],
            collection().as_str(),
            "no virtual account: the collection account"
        );
        let lines: Vec<&str> = r[11].split('|').collect();
        assert_eq!(lines[0], "p24-0001-2026-03-14");
        assert!(lines.iter().all(|l| l.chars().count() <= 35));
        let words: Vec<&str> = lines[1..]
            .iter()
            .flat_map(|l| l.split_whitespace())
            .collect();
        let mut expected = vec![item.account_id.clone()];
        if let Some(l) = &item.liability_id {
            expected.push(match item.installment_seq {
                Some(n) => format!("{l}/{n}"),
                None => l.clone(),
            });
        }
        assert_eq!(words, expected);
    }
    // A long account + liability wraps onto a third line, never inside an id.
    assert_eq!(
        records[0][11],
        "p24-0001-2026-03-14|A-PROP-0000001|L-2026-PROP-0000001/1"
    );
    assert_eq!(
        w.write(&p).unwrap(),
        Written::AlreadyThere(written.path().to_owned())
    );

    // A bank transfer to a virtual account names it as beneficiary.
    let mut b = payment("bank-7");
    b.channel = PaymentChannel::BankTransfer;
    b.virtual_account = Some(virtual_account());
    let text = String::from_utf8_lossy(&w.render(&b).unwrap()).into_owned();
    let r = split_record(text.lines().next().unwrap());
    assert_eq!(r[6], virtual_account().as_str());
    assert_eq!(r[5], collection().as_str());

    // A gateway without a configured payout account, an id too long for a title line, or a
    // character the code page lacks is refused.
    let w2 = BookingWriter::new(
        dir.path(),
        tenant(),
        BookingFormat::Elixir0,
        Some(ElixirOptions::new(collection(), "Gmina")),
    )
    .unwrap();
    assert!(matches!(
        w2.write(&payment("p24-9")).unwrap_err(),
        BookingError::Config(_)
    ));
    let mut long = payment("bank-8");
    long.channel = PaymentChannel::BankTransfer;
    long.items[0].account_id = "A".repeat(36);
    assert!(matches!(
        w2.write(&long).unwrap_err(),
        BookingError::Unrepresentable { .. }
    ));
    assert!(matches!(
        BookingWriter::new(
            dir.path(),
            tenant(),
            BookingFormat::Elixir0,
            Some(ElixirOptions::new(collection(), "Gmina €").with_charset(TextEncoding::Cp852)),
        ),
        Err(BookingError::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// The consumer on the in-process bus.

async fn bus() -> MemoryBus {
    let topology = Topology {
        queues: vec![QueueSpec {
            name: BOOKING_QUEUE.into(),
            exchange: Exchange::Commands,
            bindings: vec![BOOKING_BINDING.into()],
        }],
        retry_ladder: vec![Duration::from_millis(50)],
    };
    MemoryBus::open(None, topology).await.unwrap()
}

fn book(tenant: Teryt, p: Payment) -> Event {
    Event::new("/gsko/payments", tenant, 1, EventData::PaymentBook(p))
}

/// A raw message on the booking routing key.
fn raw(body: &[u8], id: &str) -> Outgoing {
    Outgoing {
        exchange: Exchange::Commands,
        routing_key: "pl.gsko.payment.book.v1.1465011".into(),
        message_id: id.into(),
        tenant: "1465011".into(),
        content_type: gsko_model::CONTENT_TYPE.into(),
        body: body.to_vec(),
    }
}

/// Runs the consumer until `done` says the expected work is there, then shuts it down.
async fn run_until(
    bus: &MemoryBus,
    writers: BTreeMap<Teryt, BookingWriter>,
    done: impl Fn() -> bool,
) -> BookingStats {
    let sub = bus.subscribe(BOOKING_QUEUE, 16).await.unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let opts = BookingRunOptions {
        idle_wait: Duration::from_millis(50),
        ..BookingRunOptions::default()
    };
    let handle = tokio::spawn(run_booking_with(sub, writers, rx, opts));
    let parked_or_files = async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if handle.is_finished() {
                break;
            }
            // `done` looks at what can be observed from outside (files, parking).
            if done() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), parked_or_files)
        .await
        .expect("the consumer did its work in time");
    tx.send(true).unwrap();
    handle.await.unwrap().unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_written_once_and_bad_messages_parked_while_good_ones_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let xml_dir = tmp.path().join("t1");
    let pli_dir = tmp.path().join("t2");
    let mut writers = BTreeMap::new();
    writers.insert(
        tenant(),
        BookingWriter::new(&xml_dir, tenant(), BookingFormat::Xml, None).unwrap(),
    );
    writers.insert(
        other_tenant(),
        BookingWriter::new(
            &pli_dir,
            other_tenant(),
            BookingFormat::Elixir0,
            Some(elixir_options().with_charset(TextEncoding::Cp1250)),
        )
        .unwrap(),
    );
    let bus = bus().await;
    let first = book(tenant(), payment("p24-1"));
    let unknown_tenant = book(Teryt::parse("1261011").unwrap(), payment("p24-5"));
    let not_a_booking = Event::new(
        "/gsko/payments",
        tenant(),
        1,
        EventData::PaymentSettled(payment("p24-6")),
    );
    let bad_id = book(tenant(), payment("p24/../../etc"));
    let batch = vec![
        Outgoing::event(&first),
        // the same command again (a redelivery after a crash, or a duplicate publish)
        Outgoing::event(&first),
        raw(b"{not json", "garbage-1"),
        raw(&not_a_booking.to_json(), "settled-1"),
        Outgoing::event(&unknown_tenant),
        Outgoing::event(&bad_id),
        Outgoing::event(&book(tenant(), payment("p24-2"))),
        Outgoing::event(&book(other_tenant(), payment("p24-3"))),
        Outgoing::event(&book(other_tenant(), payment("p24-3"))),
    ];
    bus.publish(&batch).await.unwrap();

    let xml_dir2 = xml_dir.clone();
    let pli_dir2 = pli_dir.clone();
    let stats = run_until(&bus, writers, move || {
        files(&xml_dir2).len() == 2 && files(&pli_dir2).len() == 1
    })
    .await;
    // The consumer handles deliveries in order and was stopped after the last file: every
    // message before it has been settled.
    assert_eq!(files(&xml_dir), vec!["p24-1.xml", "p24-2.xml"]);
    assert_eq!(files(&pli_dir), vec!["p24-3.pli"]);
    let parked = bus.parked(100).await.unwrap();
    let reasons: Vec<&str> = parked.iter().map(|p| p.reason.as_str()).collect();
    assert_eq!(parked.len(), 4, "{reasons:#?}");
    assert!(reasons[0].starts_with("not a GSKO message"), "{reasons:?}");
    assert!(
        reasons[1].contains("pl.gsko.payment.settled.v1 is not a booking command"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("tenant 1261011 has no RADIX booking"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("cannot name a booking file"),
        "{reasons:?}"
    );
    assert!(parked.iter().all(|p| p.original_queue == BOOKING_QUEUE));
    assert_eq!(
        stats,
        BookingStats {
            written: 3,
            already_there: 2,
            parked: 4,
            retried: 0
        }
    );
    // Elixir-0 of tenant 2: two items, two records.
    let pli = std::fs::read(pli_dir.join("p24-3.pli")).unwrap();
    assert_eq!(
        pli.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_errors_are_retried() {
    let tmp = tempfile::tempdir().unwrap();
    // The import "directory" is a file: every write fails with an I/O error.
    let not_a_dir = tmp.path().join("blocked");
    std::fs::write(&not_a_dir, b"").unwrap();
    let mut writers = BTreeMap::new();
    writers.insert(
        tenant(),
        BookingWriter::new(not_a_dir.join("in"), tenant(), BookingFormat::Xml, None).unwrap(),
    );
    let bus = bus().await;
    bus.publish(&[Outgoing::event(&book(tenant(), payment("p24-1")))])
        .await
        .unwrap();
    let bus2 = std::sync::Arc::new(bus);
    let b = bus2.clone();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = seen.clone();
    let probe = tokio::spawn(async move {
        // The ladder has one 50 ms rung: after it the message is parked with the I/O reason.
        for _ in 0..200 {
            if !b.parked(10).await.unwrap().is_empty() {
                s2.store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let s3 = seen.clone();
    let stats = run_until(&bus2, writers, move || {
        s3.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    probe.await.unwrap();
    assert!(stats.retried >= 1, "{stats:?}");
    let parked = bus2.parked(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains("retry ladder exhausted"),
        "{}",
        parked[0].reason
    );
}

#[test]
fn temporary_files_of_an_interrupted_write_are_removed_once_old_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let w = BookingWriter::new(dir.path(), tenant(), BookingFormat::Xml, None).unwrap();
    w.write(&payment("p24-0002-2026-03-14")).unwrap();
    // What a writer killed between its write and its link leaves behind.
    let part = dir.path().join(".p24-0003-2026-03-14.xml.4242.1a-0.part");
    std::fs::write(&part, b"half a file").unwrap();
    assert_eq!(
        w.remove_stale_parts(std::time::Duration::from_secs(3600)),
        0
    );
    assert!(
        part.exists(),
        "a young temporary file may belong to a live writer"
    );
    assert_eq!(w.remove_stale_parts(std::time::Duration::ZERO), 1);
    assert!(!part.exists());
    assert!(dir.path().join("p24-0002-2026-03-14.xml").exists());
    // The payment whose write was interrupted is written normally afterwards.
    assert!(matches!(
        w.write(&payment("p24-0003-2026-03-14")).unwrap(),
        Written::New(_)
    ));
}
