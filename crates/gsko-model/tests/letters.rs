//! The letter and decision messages: the way through `to_json`/`from_json` of each (commands
//! included), their subjects, routing and stable ids, and the rules the model enforces beyond
//! the field types (a delivered decision has its evidence, a failed one its reason).

use chrono::{NaiveDate, TimeZone, Utc};
use gsko_model::*;
use serde_json::Value;

fn teryt(s: &str) -> Teryt {
    Teryt::parse(s).unwrap()
}

fn pesel() -> Pesel {
    Pesel::parse("44051401359").unwrap()
}

fn sha(tag: &str) -> String {
    // Any 64 lowercase hex digits will do for these tests.
    format!(
        "{:0>64}",
        tag.bytes().map(|b| format!("{b:02x}")).collect::<String>()
    )[..64]
        .to_owned()
}

fn file(name: &str, mime: &str, size: u64) -> StoredFile {
    StoredFile {
        name: name.into(),
        mime_type: mime.into(),
        size_bytes: size,
        sha256: sha(name),
        description: None,
    }
}

fn signed_letter() -> Letter {
    Letter {
        letter_id: "epuap-81234567".into(),
        channel: LetterChannel::Epuap,
        received_at: Utc.with_ymd_and_hms(2026, 3, 2, 9, 14, 27).unwrap(),
        epuap_box: Some("/ugnowogrodziec/skrytka".into()),
        sender: LetterSender {
            kind: SenderKind::Person,
            name: "Jan Kowalski".into(),
            pesel: Some(pesel()),
            nip: None,
            regon: None,
            epuap_login: Some("jkowalski".into()),
            reply_address: Some("/jkowalski/skrytka".into()),
            address: None,
            contacts: vec![ContactChannel {
                kind: ContactKind::Email,
                value: "jan.kowalski@example.pl".into(),
            }],
        },
        addressee: Some("Urząd Gminy i Miasta Nowogrodziec".into()),
        title: "Wniosek o rozłożenie na raty zaległości".into(),
        // Long text survives whole.
        body_text: Some("Wnoszę o rozłożenie zaległości na raty.\n".repeat(20_000)),
        form: Some(LetterForm {
            namespace: "http://crd.gov.pl/wzor/2013/12/12/1410/".into(),
            name: Some("Pismo ogólne do podmiotu publicznego".into()),
        }),
        document: file("Pismo_ogolne.xml", "application/xml", 1_482_133),
        attachments: vec![
            StoredFile {
                description: Some("Zaświadczenie o dochodach".into()),
                ..file("zaswiadczenie.pdf", "application/pdf", 183_311)
            },
            file("umowa_najmu.jpg", "image/jpeg", 912_004),
        ],
        signature: LetterSignature {
            status: SignatureStatus::Valid,
            form: Some(SignatureForm::PodpisZaufany),
            signer_pesel: Some(pesel()),
            signer_name: Some("JAN KOWALSKI".into()),
            signed_at: Some(Utc.with_ymd_and_hms(2026, 3, 2, 9, 13, 58).unwrap()),
            problems: vec![],
        },
        test: false,
        upp_id: Some("81234568".into()),
        problems: vec![],
    }
}

/// What an unparseable, unsigned document still yields: the ePUAP envelope and the stored bytes.
fn unreadable_letter() -> Letter {
    Letter {
        letter_id: "epuap-81234999".into(),
        channel: LetterChannel::Epuap,
        received_at: Utc.with_ymd_and_hms(2026, 3, 3, 7, 0, 1).unwrap(),
        epuap_box: Some("/ugnowogrodziec/skrytka".into()),
        sender: LetterSender {
            kind: SenderKind::Organisation,
            name: "Usługi Remontowe Nowak sp. z o.o.".into(),
            pesel: None,
            nip: Some(Nip::parse("5260001246").unwrap()),
            regon: Some(Regon::parse("123456785").unwrap()),
            epuap_login: None,
            reply_address: None,
            address: None,
            contacts: vec![],
        },
        addressee: None,
        title: "pismo.xml".into(),
        body_text: None,
        form: None,
        document: file("pismo.xml", "text/xml", 912),
        attachments: vec![],
        signature: LetterSignature {
            status: SignatureStatus::Unverifiable,
            form: None,
            signer_pesel: None,
            signer_name: None,
            signed_at: None,
            problems: vec![
                "the document is not well-formed XML, so no signature could be found".into(),
            ],
        },
        test: true,
        upp_id: None,
        problems: vec!["the document is not well-formed XML: unclosed element at line 12".into()],
    }
}

fn deliver_ade() -> DecisionDelivery {
    DecisionDelivery {
        decision_id: "ezd-1284733".into(),
        case_ref: "FN.3120.7.2026".parse().unwrap(),
        title: "Decyzja w sprawie rozłożenia na raty".into(),
        recipient: DecisionRecipient {
            name: "Jan Kowalski".into(),
            pesel: Some(pesel()),
            nip: None,
            epuap_address: None,
            ade_address: Some(AdeAddress::parse("AE:PL-13447-72418-ECVIU-30").unwrap()),
        },
        document: file("Decyzja.pdf", "application/pdf", 96_512),
        channel: DeliveryPreference::Auto,
        deliver_by: NaiveDate::from_ymd_opt(2026, 3, 30),
        in_reply_to: Some("epuap-81234567".into()),
    }
}

fn delivered_upd() -> DecisionDelivered {
    DecisionDelivered {
        decision_id: "ezd-1284790".into(),
        outcome: DeliveryOutcome::Delivered,
        channel: DeliveryChannel::Epuap,
        at: Utc.with_ymd_and_hms(2026, 3, 18, 7, 12, 40).unwrap(),
        shipment_id: Some("5129934".into()),
        evidence: Some(DeliveryEvidence {
            kind: EvidenceKind::Upd,
            id: "UPD-5129934-1".into(),
            code: None,
            sha256: sha("upd"),
        }),
        reason: None,
        recipient_pesel: None,
        case_ref: Some("FN.3120.7.2026".parse().unwrap()),
        title: None,
        in_reply_to: None,
    }
}

fn failed() -> DecisionDelivered {
    DecisionDelivered {
        decision_id: "ezd-1284802".into(),
        outcome: DeliveryOutcome::Failed,
        channel: DeliveryChannel::EDoreczenia,
        at: Utc.with_ymd_and_hms(2026, 3, 19, 12, 3, 10).unwrap(),
        shipment_id: None,
        evidence: None,
        reason: Some("the recipient's address is not active".into()),
        recipient_pesel: None,
        case_ref: None,
        title: None,
        in_reply_to: None,
    }
}

fn event(data: EventData) -> Event {
    Event::new("/gsko/epuap/0201043", teryt("0201043"), 1, data)
}

fn messages() -> Vec<EventData> {
    vec![
        EventData::LetterReceived(signed_letter()),
        EventData::LetterReceived(unreadable_letter()),
        EventData::LetterRegister(signed_letter()),
        EventData::LetterRegister(unreadable_letter()),
        EventData::DecisionDeliver(deliver_ade()),
        EventData::DecisionDelivered(delivered_upd()),
        EventData::DecisionDelivered(failed()),
    ]
}

#[test]
fn letter_and_decision_messages_round_trip_through_json() {
    for data in messages() {
        for stable in [false, true] {
            let mut e = event(data.clone()).with_correlation("epuap-81234567");
            if stable {
                e = e.with_stable_id("key");
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
            let subject = v["subject"].as_str().unwrap();
            match &data {
                EventData::LetterReceived(l) | EventData::LetterRegister(l) => {
                    assert_eq!(subject, format!("letter/{}", l.letter_id))
                }
                EventData::DecisionDeliver(d) => {
                    assert_eq!(subject, format!("decision/{}", d.decision_id))
                }
                EventData::DecisionDelivered(d) => {
                    assert_eq!(subject, format!("decision/{}", d.decision_id))
                }
                other => panic!("not a letter message: {other:?}"),
            }
        }
    }
}

#[test]
fn commands_are_register_and_deliver_and_are_routed_like_events() {
    for data in messages() {
        let e = event(data);
        let t = e.message_type();
        assert_eq!(
            t.is_command(),
            matches!(
                t,
                MessageType::LetterRegister | MessageType::DecisionDeliver
            ),
            "{}",
            t.type_name()
        );
        assert_eq!(e.routing_key(), format!("{}.0201043", t.type_name()));
    }
    let commands: Vec<&str> = MessageType::ALL
        .into_iter()
        .filter(|t| t.is_command())
        .map(MessageType::type_name)
        .collect();
    assert_eq!(
        commands,
        [
            "pl.gsko.payment.book.v1",
            "pl.gsko.letter.register.v1",
            "pl.gsko.decision.deliver.v1"
        ]
    );
}

/// A letter pulled again after a crash is the same message: its id derives from the letter id.
/// Expected values computed independently (Python `uuid.uuid5(UUID("6a0f3c52-9d1e-4b8a-a7c3-
/// 51e20f9bd4e6"), "0201043/pl.gsko.letter.received.v1/epuap-81234567")`); they are also the ids
/// of the first examples in the schemas.
#[test]
fn stable_ids_of_letters_and_decisions_do_not_change_between_releases() {
    let received =
        event(EventData::LetterReceived(signed_letter())).with_stable_id("epuap-81234567");
    assert_eq!(
        received.id.to_string(),
        "fc8d9d3f-1aa7-553f-8711-57e7b97b15df"
    );
    let mut again = event(EventData::LetterReceived(signed_letter()));
    again.time = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(again.with_stable_id("epuap-81234567").id, received.id);
    let register =
        event(EventData::LetterRegister(signed_letter())).with_stable_id("epuap-81234567");
    assert_ne!(register.id, received.id, "the command is not the event");

    for (t, key) in [
        (MessageType::LetterReceived, "epuap-81234567"),
        (MessageType::LetterRegister, "epuap-81234567"),
        (MessageType::DecisionDeliver, "ezd-1284733"),
        (MessageType::DecisionDelivered, "ezd-1284790/delivered"),
    ] {
        let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/messages")
            .join(t.schema_file());
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(schema).unwrap()).unwrap();
        let example = &schema["examples"][0];
        let e = Event::from_json(&serde_json::to_vec(example).unwrap()).unwrap();
        assert_eq!(
            e.clone().with_stable_id(key).id,
            e.id,
            "{}: the first example's id is the stable id of {key}",
            t.type_name()
        );
    }
}

#[test]
fn optional_fields_are_left_out_not_null() {
    let v: Value =
        serde_json::from_slice(&event(EventData::LetterReceived(unreadable_letter())).to_json())
            .unwrap();
    let data = v["data"].as_object().unwrap();
    for absent in ["addressee", "body_text", "form", "attachments", "upp_id"] {
        assert!(!data.contains_key(absent), "{absent} in {v}");
    }
    assert_eq!(data["test"], true);
    let sender = v["data"]["sender"].as_object().unwrap();
    for absent in [
        "pesel",
        "epuap_login",
        "reply_address",
        "address",
        "contacts",
    ] {
        assert!(!sender.contains_key(absent), "{absent} in {v}");
    }
    let signature = v["data"]["signature"].as_object().unwrap();
    assert_eq!(signature["status"], "unverifiable");
    for absent in ["form", "signer_pesel", "signer_name", "signed_at"] {
        assert!(!signature.contains_key(absent), "{absent} in {v}");
    }
    let v: Value =
        serde_json::from_slice(&event(EventData::DecisionDelivered(failed())).to_json()).unwrap();
    for absent in ["shipment_id", "evidence"] {
        assert!(!v["data"].as_object().unwrap().contains_key(absent));
    }
}

#[test]
fn a_delivered_decision_needs_evidence_and_a_failed_one_a_reason() {
    let read = |d: &DecisionDelivered, f: &dyn Fn(&mut Value)| {
        let mut v: Value =
            serde_json::from_slice(&event(EventData::DecisionDelivered(d.clone())).to_json())
                .unwrap();
        f(&mut v);
        Event::from_json(&serde_json::to_vec(&v).unwrap())
    };
    let no_evidence = read(&delivered_upd(), &|v| {
        v["data"].as_object_mut().unwrap().remove("evidence");
    });
    let err = no_evidence.unwrap_err().to_string();
    assert!(err.contains("evidence"), "{err}");
    let deemed = read(&delivered_upd(), &|v| {
        v["data"]["outcome"] = "deemed_delivered".into();
        v["data"].as_object_mut().unwrap().remove("evidence");
    });
    assert!(deemed.is_err());
    let no_reason = read(&failed(), &|v| {
        v["data"].as_object_mut().unwrap().remove("reason");
    });
    let err = no_reason.unwrap_err().to_string();
    assert!(err.contains("reason"), "{err}");
    // Evidence with a failure and a reason with a delivery are fine.
    assert!(read(&failed(), &|v| {
        v["data"]["evidence"] = serde_json::to_value(delivered_upd().evidence).unwrap();
    })
    .is_ok());
    assert!(read(&delivered_upd(), &|v| v["data"]["reason"] = "late".into()).is_ok());
    assert!(read(&delivered_upd(), &|v| v["data"]["extra"] = 1.into()).is_err());
}

#[test]
fn letter_data_is_strict_about_what_it_reads_and_says_no_personal_data() {
    let good: Value =
        serde_json::from_slice(&event(EventData::LetterReceived(signed_letter())).to_json())
            .unwrap();
    let reject = |f: &dyn Fn(&mut Value), why: &str| {
        let mut v = good.clone();
        f(&mut v);
        let err = Event::from_json(&serde_json::to_vec(&v).unwrap())
            .err()
            .unwrap_or_else(|| panic!("accepted {why}"));
        let shown = err.to_string();
        for personal in ["44051401358", "44051401359", "Kowalski", "KOWALSKI"] {
            assert!(!shown.contains(personal), "{why}: {shown}");
        }
    };
    reject(
        &|v| v["data"]["signature"]["signer_pesel"] = "44051401358".into(),
        "a signer PESEL with a bad checksum",
    );
    reject(
        &|v| v["data"]["sender"]["pesel"] = "44051401358".into(),
        "a sender PESEL with a bad checksum",
    );
    reject(
        &|v| v["data"]["sender"]["kind"] = "Kowalski".into(),
        "an unknown sender kind",
    );
    reject(
        &|v| v["data"]["signature"]["status"] = "ok".into(),
        "an unknown signature status",
    );
    reject(
        &|v| v["data"]["attachments"][0]["content"] = "JVBERi0".into(),
        "an attachment with inline content",
    );
    reject(
        &|v| drop(v["data"].as_object_mut().unwrap().remove("test")),
        "a letter without its test flag",
    );
    let mut v: Value =
        serde_json::from_slice(&event(EventData::DecisionDeliver(deliver_ade())).to_json())
            .unwrap();
    v["data"]["recipient"]["ade_address"] = "AE:PL-13447-72418-ECVIU-31".into();
    let err = Event::from_json(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    assert!(!err.contains("ECVIU"), "{err}");
}

#[test]
fn debug_of_a_delivery_hides_pesel_and_ade_address() {
    let shown = format!("{:?}", deliver_ade());
    assert!(!shown.contains("44051401359"), "{shown}");
    assert!(!shown.contains("ECVIU"), "{shown}");
    assert!(shown.contains("AdeAddress(***)"), "{shown}");
}

#[test]
fn a_register_command_relabelled_as_the_received_event_is_refused() {
    let e = event(EventData::LetterRegister(signed_letter()));
    let mut v: Value = serde_json::from_slice(&e.to_json()).unwrap();
    v["type"] = "pl.gsko.letter.received.v1".into();
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
