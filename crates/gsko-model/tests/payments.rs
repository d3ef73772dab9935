//! The payment messages: stable ids for messages a producer may send again, and the way
//! through `to_json`/`from_json` of every payment type, command included.

use chrono::{NaiveDate, TimeZone, Utc};
use gsko_model::*;
use serde_json::Value;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn amt(g: i64) -> Amount {
    Amount::from_grosze(g).unwrap()
}

fn teryt(s: &str) -> Teryt {
    Teryt::parse(s).unwrap()
}

fn p24() -> Payment {
    Payment {
        payment_id: "p24-4183516932".into(),
        channel: PaymentChannel::Przelewy24,
        amount: amt(9870),
        paid_on: d(2026, 3, 15),
        received_on: d(2026, 3, 16),
        items: vec![PaymentItem {
            account_id: "A-ODP-000001".into(),
            liability_id: Some("L-2026-ODP-000001".into()),
            installment_seq: Some(1),
            amount: amt(9870),
        }],
        external_ref: Some("4183516932".into()),
        virtual_account: None,
        title: Some("Opłata za odpady komunalne 2026, rata 1".into()),
    }
}

fn payu() -> Payment {
    Payment {
        payment_id: "payu-WZHF5FFDRJ260514GUEST000P01".into(),
        channel: PaymentChannel::Payu,
        amount: amt(34_945),
        paid_on: d(2026, 5, 14),
        received_on: d(2026, 5, 14),
        items: vec![
            PaymentItem {
                account_id: "A-PROP-000001".into(),
                liability_id: Some("L-2026-000001".into()),
                installment_seq: Some(2),
                amount: amt(25_075),
            },
            PaymentItem {
                account_id: "A-ODP-000001".into(),
                liability_id: None,
                installment_seq: None,
                amount: amt(9870),
            },
        ],
        external_ref: None,
        virtual_account: None,
        title: None,
    }
}

fn bank() -> Payment {
    Payment {
        payment_id: "bank-20260316-000042".into(),
        channel: PaymentChannel::BankTransfer,
        amount: amt(25_075),
        paid_on: d(2026, 3, 13),
        received_on: d(2026, 3, 16),
        items: vec![PaymentItem {
            account_id: "A-PROP-000001".into(),
            liability_id: None,
            installment_seq: None,
            amount: amt(25_075),
        }],
        external_ref: Some("CEN2603131234567".into()),
        virtual_account: Some(Nrb::parse("61109010140000071219812874").unwrap()),
        title: Some("PODATEK OD NIERUCHOMOSCI 2026 RATA 1".into()),
    }
}

fn booked() -> PaymentBooked {
    PaymentBooked {
        payment_id: "bank-20260316-000042".into(),
        account_id: "A-PROP-000001".into(),
        posting_id: "P-000117".into(),
        amount: amt(25_075),
        booked_on: d(2026, 3, 13),
    }
}

fn unmatched(full: bool) -> UnmatchedPayment {
    UnmatchedPayment {
        payment_id: "bank-20260316-000043".into(),
        channel: PaymentChannel::BankTransfer,
        amount: amt(15_000),
        paid_on: full.then(|| d(2026, 3, 13)),
        reason: UnmatchedReason::UnknownVirtualAccount,
        detail: "nieznany rachunek wirtualny".into(),
        source: "mt940/0201043/20260316.sta:57".into(),
        external_ref: full.then(|| "CEN2603131234568".into()),
        virtual_account: full.then(|| Nrb::parse("26109010140000071219839015").unwrap()),
        title: full.then(|| "OPLATA ZA PSA 2026".into()),
        raw: ":61:2603130313C150,00NTRFNONREF//CEN2603131234568\n:86:152~00PRZELEW".into(),
    }
}

fn event(tenant: &str, data: EventData) -> Event {
    Event::new(format!("/gsko/payments/{tenant}"), teryt(tenant), 1, data)
}

const KEY: &str = "p24-4183516932";

#[test]
fn stable_id_is_the_same_for_the_same_tenant_type_and_key() {
    let first = event("0201043", EventData::PaymentSettled(p24()));
    let fresh = first.id;
    let first = first.with_stable_id(KEY);
    assert_ne!(first.id, fresh, "the fresh UUIDv7 is replaced");
    assert_eq!(first.id.get_version_num(), 5);

    // The same message built again (after a crash, by another instance): another time, source,
    // version, correlation, even other data; only tenant, type and key make the id.
    let mut again = Event::new(
        "/gsko/przelewy24/0201043",
        teryt("0201043"),
        9,
        EventData::PaymentSettled(bank()),
    )
    .with_correlation("p24-4183516932");
    again.time = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(again.with_stable_id(KEY).id, first.id);
    assert_eq!(first.clone().with_stable_id(KEY).id, first.id, "idempotent");

    // Without it, every event gets its own id.
    assert_ne!(
        event("0201043", EventData::PaymentSettled(p24())).id,
        event("0201043", EventData::PaymentSettled(p24())).id
    );
}

#[test]
fn stable_id_differs_when_tenant_type_or_key_differs() {
    let id = |tenant: &str, data: EventData, key: &str| event(tenant, data).with_stable_id(key).id;
    let base = id("0201043", EventData::PaymentSettled(p24()), KEY);
    assert_ne!(
        id("1465011", EventData::PaymentSettled(p24()), KEY),
        base,
        "tenant"
    );
    assert_ne!(
        id("0201043", EventData::PaymentBook(p24()), KEY),
        base,
        "type: the command for a payment is not its event"
    );
    assert_ne!(
        id(
            "0201043",
            EventData::PaymentSettled(p24()),
            "p24-4183516933"
        ),
        base,
        "key"
    );
    assert_ne!(
        id("0201043", EventData::PaymentSettled(p24()), ""),
        base,
        "empty key"
    );

    // Every payment type, in two tenants, with two keys: all ids distinct.
    let mut ids = std::collections::BTreeSet::new();
    for tenant in ["0201043", "1465011"] {
        for key in [KEY, "bank-20260316-000042"] {
            for data in [
                EventData::PaymentSettled(p24()),
                EventData::PaymentBook(p24()),
                EventData::PaymentBooked(booked()),
                EventData::PaymentUnmatched(unmatched(true)),
            ] {
                assert!(ids.insert(id(tenant, data, key)));
            }
        }
    }
    assert_eq!(ids.len(), 16);
}

/// The id is part of the contract (a consumer deduplicates by it, across GSKO releases): it is
/// UUIDv5 in GSKO's namespace of `<tenant>/<type>/<key>`. Expected value computed independently
/// (Python: `uuid.uuid5(UUID("6a0f3c52-9d1e-4b8a-a7c3-51e20f9bd4e6"),
/// "0201043/pl.gsko.payment.book.v1/p24-4183516932")`); it is also the id of the first example
/// in `schemas/messages/payment.book.v1.json`.
#[test]
fn stable_id_does_not_change_between_releases() {
    let e = event("0201043", EventData::PaymentBook(p24())).with_stable_id(KEY);
    assert_eq!(e.id.to_string(), "a06e9c0b-b744-591e-9b71-a9953b0e9a4a");
}

fn payment_messages() -> Vec<EventData> {
    vec![
        EventData::PaymentSettled(p24()),
        EventData::PaymentSettled(payu()),
        EventData::PaymentSettled(bank()),
        EventData::PaymentBook(p24()),
        EventData::PaymentBook(bank()),
        EventData::PaymentBooked(booked()),
        EventData::PaymentUnmatched(unmatched(true)),
        EventData::PaymentUnmatched(unmatched(false)),
    ]
}

#[test]
fn payment_messages_round_trip_through_json() {
    for data in payment_messages() {
        for stable in [false, true] {
            let mut e = event("0201043", data.clone()).with_correlation("corr-1");
            if stable {
                e = e.with_stable_id(KEY);
            }
            let t = e.message_type();
            let json = e.to_json();
            let back = Event::from_json(&json)
                .unwrap_or_else(|err| panic!("{} does not read back: {err}", t.type_name()));
            assert_eq!(back, e, "{}", t.type_name());
            assert_eq!(back.to_json(), json, "{}", t.type_name());

            let v: Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(v["type"], t.type_name());
            assert_eq!(v["dataschema"], t.dataschema());
            assert_eq!(v["tenant"], "0201043");
            // Money travels as integer grosze.
            assert!(v["data"]["amount"].is_u64(), "{v}");
            let subject = v["subject"].as_str().unwrap();
            let payment_id = v["data"]["payment_id"].as_str().unwrap();
            match &data {
                EventData::PaymentBooked(b) => assert_eq!(
                    subject,
                    format!("payment/{}/posting/{}", b.payment_id, b.posting_id)
                ),
                _ => assert_eq!(subject, format!("payment/{payment_id}")),
            }
        }
    }
}

#[test]
fn optional_payment_fields_are_left_out_not_null() {
    let e = event("0201043", EventData::PaymentSettled(payu()));
    let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
    let data = v["data"].as_object().unwrap();
    for absent in ["external_ref", "virtual_account", "title"] {
        assert!(!data.contains_key(absent), "{absent} in {v}");
    }
    let second_item = v["data"]["items"][1].as_object().unwrap();
    assert!(!second_item.contains_key("liability_id"));
    assert!(!second_item.contains_key("installment_seq"));
    let e = event("0201043", EventData::PaymentUnmatched(unmatched(false)));
    let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
    assert!(!v["data"].as_object().unwrap().contains_key("paid_on"));
}

#[test]
fn book_is_the_only_payment_command_and_is_routed_like_events() {
    for data in payment_messages() {
        let e = event("0201043", data);
        let t = e.message_type();
        assert_eq!(t.is_command(), t == MessageType::PaymentBook);
        assert_eq!(e.routing_key(), format!("{}.0201043", t.type_name()));
    }
    assert!(MessageType::ALL
        .into_iter()
        .any(|t| t == MessageType::PaymentBook && t.is_command()));
}

#[test]
fn a_book_command_relabelled_as_the_settled_event_is_refused() {
    let e = event("0201043", EventData::PaymentBook(bank()));
    let mut v: Value = serde_json::from_slice(&e.to_json()).unwrap();
    v["type"] = "pl.gsko.payment.settled.v1".into();
    let err = Event::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            EventError::Inconsistent {
                attribute: "dataschema",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn payment_data_is_strict_about_what_it_reads() {
    let e = event("0201043", EventData::PaymentSettled(bank()));
    let good: Value = serde_json::from_slice(&e.to_json()).unwrap();
    let reject = |f: &dyn Fn(&mut Value), why: &str| {
        let mut v = good.clone();
        f(&mut v);
        assert!(
            Event::from_json(&serde_json::to_vec(&v).unwrap()).is_err(),
            "accepted {why}"
        );
    };
    reject(
        &|v| v["data"]["channel"] = "blik".into(),
        "an unknown channel",
    );
    reject(&|v| v["data"]["amount"] = (-1).into(), "a negative amount");
    reject(&|v| v["data"]["amount"] = 250.75.into(), "złoty as a float");
    reject(
        &|v| v["data"]["items"][0]["extra"] = 1.into(),
        "an unknown field in an item",
    );
    reject(
        &|v| v["data"]["virtual_account"] = "PL61109010140000071219812874".into(),
        "a virtual account with the PL prefix",
    );
    reject(
        &|v| v["data"]["virtual_account"] = "62109010140000071219812874".into(),
        "a virtual account with a bad checksum",
    );
    reject(
        &|v| drop(v["data"].as_object_mut().unwrap().remove("paid_on")),
        "a payment without paid_on",
    );
}
