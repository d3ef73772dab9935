//! The streaming XML reader: the example files, per-record rejections with their place, broken
//! XML, refused headers.

use gsko_model::payload::{ContactKind, HolderRole, TaxpayerKind};
use gsko_model::{Event, EventData, LevyKind, MessageType, PostingKind, RejectedRecord, Teryt};
use gsko_radix::xml::XmlSource;
use gsko_radix::{ExportKind, FileError, FileMeta, RecordSource, SourceItem};
use std::path::PathBuf;

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/radix")
}

fn tenant() -> Teryt {
    Teryt::parse("1465011").unwrap()
}

fn meta(name: &str) -> FileMeta {
    FileMeta {
        name: name.into(),
        sha256: "ab".repeat(32),
    }
}

fn source(xml: &str) -> Result<XmlSource<&[u8]>, FileError> {
    XmlSource::new(xml.as_bytes(), meta("test.xml"), Some(&tenant()))
}

fn drain<S: RecordSource>(s: &mut S) -> (Vec<(EventData, i64, u64)>, Vec<RejectedRecord>) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    while let Some(item) = s.next_item().unwrap() {
        match item {
            SourceItem::Record(r) => ok.push((r.data, r.source_version, r.line)),
            SourceItem::Rejected(r) => bad.push(*r),
        }
    }
    (ok, bad)
}

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<radix-export xmlns="urn:gsko:radix-export:1" format-version="1" tenant="1465011" kind="full" generated-at="2026-03-01T02:00:00Z" export-id="X">
"#;

#[test]
fn example_full_yields_the_expected_events() {
    let mut src =
        gsko_radix::open_xml(&schemas().join("example-full-v1.xml"), Some(&tenant())).unwrap();
    assert_eq!(src.header().kind, ExportKind::Full);
    assert_eq!(
        src.header().export_id.as_deref(),
        Some("POGRUN-2026-03-01-0001")
    );
    let (ok, bad) = drain(&mut src);
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(src.stopped_early().is_none());
    let lines: Vec<u64> = ok.iter().map(|r| r.2).collect();
    assert_eq!(lines, vec![15, 29, 33, 41, 48, 57, 58, 63]);

    let EventData::TaxpayerUpserted(t) = &ok[0].0 else {
        panic!("{:?}", ok[0])
    };
    assert_eq!(ok[0].1, 17);
    assert_eq!(t.taxpayer_id, "T000001");
    assert_eq!(t.kind, TaxpayerKind::Natural);
    assert_eq!(t.pesel.as_ref().unwrap().as_str(), "44051401359");
    assert_eq!(t.name, "Jan Kowalski");
    let a = t.address.as_ref().unwrap();
    assert_eq!(
        (
            a.street.as_deref(),
            a.postal_code.as_str(),
            a.city.as_str(),
            a.simc.as_deref(),
            a.country.as_str()
        ),
        (
            Some("ul. Marszałkowska"),
            "00-590",
            "Warszawa",
            Some("0918123"),
            "PL"
        )
    );
    assert_eq!(t.contacts.len(), 2);
    assert_eq!(t.contacts[1].kind, ContactKind::Phone);

    let EventData::TaxpayerUpserted(t3) = &ok[2].0 else {
        panic!()
    };
    assert_eq!(t3.kind, TaxpayerKind::Legal);
    assert_eq!(t3.nip.as_ref().unwrap().as_str(), "5260001246");
    assert_eq!(t3.regon.as_ref().unwrap().as_str(), "123456785");
    assert_eq!(t3.contacts[0].kind, ContactKind::Ade);

    let EventData::TaxAccountUpserted(acc) = &ok[3].0 else {
        panic!()
    };
    assert_eq!(acc.levy, LevyKind::Property);
    assert_eq!(acc.holders.len(), 2);
    assert_eq!(acc.holders[1].role, HolderRole::CoOwner);
    assert_eq!(
        acc.virtual_account.as_ref().unwrap().as_str(),
        "61109010140000071219812874"
    );

    let EventData::LiabilityUpserted(l) = &ok[4].0 else {
        panic!()
    };
    assert_eq!(l.total.grosze(), 100_300);
    assert_eq!(l.year, 2026);
    assert_eq!(l.installments.len(), 4);
    assert!(l.installments.iter().all(|i| i.amount.grosze() == 25_075));
    let d = l.decision.as_ref().unwrap();
    assert_eq!(d.number, "FN.3120.1.2026");
    assert_eq!(d.delivered_on.unwrap().to_string(), "2026-02-20");

    let EventData::PostingRecorded(p) = &ok[6].0 else {
        panic!()
    };
    assert_eq!(p.kind, PostingKind::Payment);
    assert_eq!(p.installment_seq, Some(1));
    assert_eq!(p.description.as_deref(), Some("wpłata przelew"));

    let EventData::BalanceReported(b) = &ok[7].0 else {
        panic!()
    };
    assert_eq!(
        (b.principal.grosze(), b.interest.grosze(), ok[7].1),
        (75_225, 0, 9)
    );
}

#[test]
fn example_incremental_is_read() {
    let mut src = gsko_radix::open_xml(
        &schemas().join("example-incremental-v1.xml"),
        Some(&tenant()),
    )
    .unwrap();
    assert_eq!(src.header().kind, ExportKind::Incremental);
    let (ok, bad) = drain(&mut src);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(ok.len(), 10);
    // The posting booked from GSKO's payment file comes with its PaymentBooked, same version
    // and line.
    let booked: Vec<_> = ok
        .iter()
        .filter_map(|(d, v, l)| match d {
            EventData::PaymentBooked(b) => Some((b, *v, *l)),
            _ => None,
        })
        .collect();
    assert_eq!(booked.len(), 1);
    let (b, v, l) = booked[0];
    assert_eq!(
        (
            b.payment_id.as_str(),
            b.account_id.as_str(),
            b.posting_id.as_str(),
            b.amount.grosze(),
            b.booked_on.to_string().as_str(),
            v
        ),
        (
            "p24-0001-2026-03-14",
            "A-WASTE-000004",
            "P-000004",
            11379,
            "2026-03-14",
            1
        )
    );
    let i = ok
        .iter()
        .position(|(d, _, _)| matches!(d, EventData::PaymentBooked(_)))
        .unwrap();
    assert!(
        matches!(&ok[i - 1].0, EventData::PostingRecorded(p) if p.posting_id == "P-000004"),
        "the posting comes first"
    );
    assert_eq!(ok[i - 1].2, l);
    let EventData::TaxpayerUpserted(t) = &ok[0].0 else {
        panic!()
    };
    assert_eq!(
        (ok[0].1, t.address.as_ref().unwrap().street.as_deref()),
        (18, Some("ul. Żółkiewskiego"))
    );
    assert_eq!(t.contacts[1].kind, ContactKind::EpuapBox);
}

#[test]
fn bad_records_are_reported_with_their_place_and_the_good_ones_still_come_out() {
    let xml = format!(
        r#"{HEAD}  <taxpayers>
    <taxpayer id="T1" version="1" kind="natural">
      <pesel>44051401358</pesel>
      <name>Zła Suma</name>
    </taxpayer>
    <taxpayer id="T2" version="1" kind="natural"><name>Dobry Bez Peselu</name></taxpayer>
  </taxpayers>
  <accounts>
    <account id="A1" version="1" levy="church_tax">
      <holder taxpayer="T2" role="owner"/>
    </account>
    <account id="A2" version="1" levy="dog_fee"/>
    <account id="A3" version="4" levy="dog_fee"><holder taxpayer="T2" role="owner"/></account>
  </accounts>
  <liabilities>
    <liability id="L1" version="1" account="A3" levy="dog_fee" year="2026" total="100.00">
      <installment seq="1" due-date="2026-03-15" amount="50.00"/>
      <installment seq="2" due-date="2026-05-15" amount="49.99"/>
    </liability>
    <liability id="L2" version="1" account="A3" levy="dog_fee" year="2026" total="100.00">
      <installment seq="1" due-date="2026-03-15" amount="100.00"/>
    </liability>
  </liabilities>
  <postings>
    <posting id="P1" version="1" account="A3" kind="payment" value-date="2026-03-14" amount="-5.00"/>
    <posting id="P2" version="1" account="A3" kind="payment" value-date="2026-02-30" amount="5.00"/>
    <posting id="P3" version="1" account="A3" kind="gift" value-date="2026-03-14" amount="5.00"/>
    <posting id="P4" version="1" account="A3" kind="payment" value-date="2026-03-14" amount="5.00" colour="red"/>
    <posting id="P5" version="1" account="A3" kind="payment" value-date="2026-03-14" amount="5.00"/>
  </postings>
</radix-export>
"#
    );
    let mut src = source(&xml).unwrap();
    let (ok, bad) = drain(&mut src);
    let ids: Vec<_> = ok.iter().map(|(d, _, _)| d.subject()).collect();
    assert_eq!(
        ids,
        vec![
            "taxpayer/T2",
            "tax-account/A3",
            "liability/L2",
            "posting/P5"
        ]
    );

    let summary: Vec<(u64, &str, Option<&str>, Option<&str>)> = bad
        .iter()
        .map(|r| {
            (
                r.line,
                r.record_type.as_str(),
                r.record_id.as_deref(),
                r.field.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (4, "taxpayer", Some("T1"), Some("pesel")),
            (11, "account", Some("A1"), Some("levy")),
            (14, "account", Some("A2"), Some("holder")),
            (18, "liability", Some("L1"), Some("total")),
            (27, "posting", Some("P1"), Some("amount")),
            (28, "posting", Some("P2"), Some("value-date")),
            (29, "posting", Some("P3"), Some("kind")),
            (30, "posting", Some("P4"), Some("colour")),
        ]
    );
    assert_eq!(
        bad[0].reason,
        r#"field "pesel": PESEL checksum does not match"#
    );
    assert_eq!(
        bad[1].reason,
        r#"attribute "levy": unknown levy "church_tax""#
    );
    assert!(
        bad[2].reason.contains("at least one holder"),
        "{}",
        bad[2].reason
    );
    assert_eq!(
        bad[3].reason,
        r#"attribute "total": installments sum to 99.99 but the liability total is 100.00"#
    );
    assert_eq!(
        bad[4].reason,
        r#"attribute "amount": amount "-5.00" is negative"#
    );
    assert!(bad[5].reason.contains("not a valid date"));
    assert!(bad[7].reason.contains("unknown attribute"));
    for r in &bad {
        assert_eq!(r.file, "test.xml");
        assert_eq!(r.file_sha256, "ab".repeat(32));
    }
    // the raw text is the record as written
    assert!(
        bad[0].raw.starts_with("<taxpayer id=\"T1\""),
        "{}",
        bad[0].raw
    );
    assert!(bad[0].raw.ends_with("</taxpayer>"), "{}", bad[0].raw);
    assert_eq!(
        bad[4].raw,
        r#"<posting id="P1" version="1" account="A3" kind="payment" value-date="2026-03-14" amount="-5.00"/>"#
    );
    assert!(src.stopped_early().is_none());
}

#[test]
fn broken_xml_midway_reports_the_place_and_stops_but_keeps_earlier_records() {
    let xml = format!(
        r#"{HEAD}  <taxpayers>
    <taxpayer id="T1" version="1" kind="legal"><name>Przed</name></taxpayer>
    <taxpayer id="T2" version="1" kind="legal">
      <name>Zepsuty</nam>
    </taxpayer>
    <taxpayer id="T3" version="1" kind="legal"><name>Po</name></taxpayer>
  </taxpayers>
</radix-export>
"#
    );
    let mut src = source(&xml).unwrap();
    let (ok, bad) = drain(&mut src);
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].0.subject(), "taxpayer/T1");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 6, "{bad:?}");
    assert_eq!(bad[0].record_type, "taxpayer");
    assert!(
        bad[0].reason.contains("not well-formed"),
        "{}",
        bad[0].reason
    );
    assert!(src.stopped_early().is_some());
    assert!(src.next_item().unwrap().is_none());
}

#[test]
fn truncated_file_is_reported() {
    let xml = format!("{HEAD}  <taxpayers>\n    <taxpayer id=\"T1\" version=\"1\" kind=\"legal\"><name>A</name></taxpayer>\n    <taxpayer id=\"T2\" version=\"1\" kind=\"legal\"><na");
    let mut src = source(&xml).unwrap();
    let (ok, bad) = drain(&mut src);
    assert_eq!(ok.len(), 1);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 5);
    assert!(src.stopped_early().is_some());
}

#[test]
fn doctype_and_entities_are_refused() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE radix-export [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<radix-export xmlns="urn:gsko:radix-export:1" format-version="1" tenant="1465011" kind="full"/>"#;
    let err = source(xml).err().expect("refused");
    assert!(
        matches!(&err, FileError::Header { line: 2, reason, .. } if reason.contains("DOCTYPE")),
        "{err}"
    );
    assert!(err.is_permanent());

    // an entity reference without a DTD: the record is refused, the rest goes on
    let xml = format!("{HEAD}<taxpayers>\n<taxpayer id=\"T1\" version=\"1\" kind=\"legal\"><name>&xxe;</name></taxpayer>\n<taxpayer id=\"T2\" version=\"1\" kind=\"legal\"><name>Dobra &amp; Spółka</name></taxpayer>\n</taxpayers></radix-export>");
    let (ok, bad) = drain(&mut source(&xml).unwrap());
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].record_id.as_deref(), Some("T1"));
    let EventData::TaxpayerUpserted(t) = &ok[0].0 else {
        panic!()
    };
    assert_eq!(t.name, "Dobra & Spółka");
}

#[test]
fn header_errors_are_file_level() {
    let cases = [
        (
            r#"<radix-export xmlns="urn:gsko:radix-export:2" format-version="1" tenant="1465011" kind="full"></radix-export>"#,
            "namespace",
        ),
        (
            r#"<radix-export xmlns="urn:gsko:radix-export:1" format-version="2" tenant="1465011" kind="full"></radix-export>"#,
            "format version",
        ),
        (
            r#"<radix-export xmlns="urn:gsko:radix-export:1" format-version="1" tenant="1465011" kind="delta"></radix-export>"#,
            "unknown export kind",
        ),
        (
            r#"<radix-export xmlns="urn:gsko:radix-export:1" format-version="1" tenant="1465017" kind="full"></radix-export>"#,
            "tenant",
        ),
        (
            r#"<export xmlns="urn:gsko:radix-export:1"/>"#,
            "root element",
        ),
        (
            r#"<?xml version="1.0" encoding="windows-1250"?><radix-export/>"#,
            "encoding",
        ),
    ];
    for (xml, expect) in cases {
        let err = source(xml)
            .err()
            .unwrap_or_else(|| panic!("accepted: {xml}"));
        assert!(err.to_string().contains(expect), "{err} / {expect}");
        assert!(err.is_permanent());
    }
    let other = r#"<radix-export xmlns="urn:gsko:radix-export:1" format-version="1" tenant="0201043" kind="full"></radix-export>"#;
    let err = source(other).err().unwrap();
    assert!(matches!(err, FileError::TenantMismatch { .. }), "{err}");
}

#[test]
fn unknown_elements_are_rejected_as_records_and_reading_goes_on() {
    let xml = format!("{HEAD}<taxpayers>\n<person id=\"X1\"/>\n<taxpayer id=\"T1\" version=\"1\" kind=\"legal\"><name>A</name><shoe-size>42</shoe-size></taxpayer>\n<taxpayer id=\"T2\" version=\"1\" kind=\"legal\"><name>B</name></taxpayer>\n</taxpayers>\n<gossip>x</gossip>\n</radix-export>\n");
    let (ok, bad) = drain(&mut source(&xml).unwrap());
    assert_eq!(ok.len(), 1);
    let what: Vec<_> = bad
        .iter()
        .map(|r| (r.line, r.record_type.as_str(), r.field.as_deref()))
        .collect();
    assert_eq!(
        what,
        vec![
            (4, "person", None),
            (5, "taxpayer", Some("shoe-size")),
            (8, "gossip", None)
        ]
    );
}

#[test]
fn inspect_writes_cloudevents_json_lines() {
    let mut out = Vec::new();
    let s = gsko_radix::inspect_xml_file(&schemas().join("example-full-v1.xml"), &mut out).unwrap();
    assert_eq!((s.accepted, s.rejected), (8, 0));
    let text = String::from_utf8(out).unwrap();
    let events: Vec<Event> = text
        .lines()
        .map(|l| Event::from_json(l.as_bytes()).unwrap())
        .collect();
    assert_eq!(events.len(), 8);
    assert_eq!(events[0].message_type(), MessageType::TaxpayerUpserted);
    assert_eq!(events[0].source, "/gsko/radix/1465011");
    assert_eq!(events[4].source_version, 2);
    let sha = events[0].correlation_id.clone().unwrap();
    assert_eq!(sha.len(), 64);
    assert!(events
        .iter()
        .all(|e| e.correlation_id.as_deref() == Some(sha.as_str())));
}

#[test]
fn a_posting_naming_a_payment_is_also_a_payment_booked() {
    let xml = format!(
        r#"{HEAD}  <postings>
    <posting id="P1" version="7" account="A1" kind="payment" value-date="2026-03-14" amount="12.34" liability="L1" installment="2" payment="payu-42"/>
    <posting id="P2" version="1" account="A1" kind="payment" value-date="2026-03-14" amount="5.00" payment="  "/>
    <posting id="P3" version="1" account="A1" kind="payment" value-date="2026-03-14" amount="5.00" payment="{long}"/>
    <posting id="P4" version="2" account="A1" kind="refund" value-date="2026-03-15" amount="5.00" payment="payu-42"/>
    <posting id="P5" version="3" account="A1" kind="payment" value-date="2026-03-16" amount="1.00"/>
  </postings>
</radix-export>
"#,
        long = "x".repeat(65)
    );
    let mut src = source(&xml).unwrap();
    let (ok, bad) = drain(&mut src);
    let kinds: Vec<(MessageType, i64)> =
        ok.iter().map(|(d, v, _)| (d.message_type(), *v)).collect();
    assert_eq!(
        kinds,
        vec![
            (MessageType::PostingRecorded, 7),
            (MessageType::PaymentBooked, 7),
            (MessageType::PostingRecorded, 2),
            (MessageType::PostingRecorded, 3),
        ]
    );
    let EventData::PaymentBooked(b) = &ok[1].0 else {
        panic!("{:?}", ok[1])
    };
    assert_eq!(
        (
            b.payment_id.as_str(),
            b.account_id.as_str(),
            b.posting_id.as_str(),
            b.amount.grosze()
        ),
        ("payu-42", "A1", "P1", 1234)
    );
    assert_eq!(b.booked_on.to_string(), "2026-03-14");
    assert_eq!(bad.len(), 2, "{bad:#?}");
    for r in &bad {
        assert_eq!(r.field.as_deref(), Some("payment"), "{r:?}");
        assert_eq!(r.record_type, "posting");
    }
    assert_eq!(bad[0].record_id.as_deref(), Some("P2"));
    assert_eq!(bad[1].record_id.as_deref(), Some("P3"));
}
