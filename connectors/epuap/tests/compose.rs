//! The "Pismo ogólne" GSKO writes for a resident reads back through the connector's own reader
//! with nothing lost and nothing flagged but the (not yet made) signature — Polish characters,
//! markup characters and attachments included.
//!
//! `cargo test -p gsko-epuap --test compose`

use gsko_epuap::compose::{
    paragraphs, pismo_ogolne, ComposeAttachment, PismoOgolne, PostalAddress, Sender,
};
use gsko_epuap::document::{parse, PartyKind, DEFAULT_MAX_ATTACHMENT_BYTES, PISMO_OGOLNE_NS};
use sha2::{Digest, Sha256};

fn letter() -> PismoOgolne {
    PismoOgolne {
        addressee: "Urząd Gminy Nowogrodziec & <Spółka>".into(),
        sender: Sender {
            first_name: "Zażółć".into(),
            surname: "Gęślą-Jaźń \"Ósma\"".into(),
            pesel: Some("85010212343".into()),
            address: Some(PostalAddress {
                street: Some("ul. Łąkowa".into()),
                building: Some("7".into()),
                flat: Some("3".into()),
                postal_code: Some("59-730".into()),
                town: Some("Nowogrodziec".into()),
            }),
        },
        place: "Nowogrodziec".into(),
        date: chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        title: "Wniosek o <zwrot> nadpłaty & odsetek".into(),
        kind: "wniosek".into(),
        paragraphs: vec![
            "Proszę o zwrot nadpłaty: 1 < 2 && 3 > 2.".into(),
            "Drugi akapit,\nw dwóch wierszach; cudzysłów \" i apostrof '.".into(),
        ],
        attachments: vec![
            ComposeAttachment {
                name: "potwierdzenie przelewu <1>.pdf".into(),
                mime_type: "application/pdf".into(),
                content: b"%PDF-1.4 \x00\x01\xff binary".to_vec(),
                description: Some("Potwierdzenie & skan".into()),
            },
            ComposeAttachment {
                name: "zdjęcie.jpg".into(),
                mime_type: "image/jpeg".into(),
                content: vec![0xff, 0xd8, 0xff, 0xe0],
                description: None,
            },
        ],
    }
}

#[test]
fn a_letter_reads_back_whole_with_no_problem_but_the_missing_signature() {
    let l = letter();
    let xml = pismo_ogolne(&l);
    let text = String::from_utf8(xml.clone()).unwrap();
    assert!(!text.contains("<!DOCTYPE"));
    let p = parse(&xml, DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
    assert_eq!(
        p.problems
            .iter()
            .map(|p| p.what.as_str())
            .collect::<Vec<_>>(),
        ["the document is not signed (no ds:Signature)"],
        "{text}"
    );
    assert_eq!(p.form_namespace, PISMO_OGOLNE_NS);
    assert_eq!(
        p.form_name.as_deref(),
        Some("Pismo ogólne do podmiotu publicznego")
    );
    assert_eq!(p.created.as_deref(), Some("2026-11-28"));
    assert_eq!(p.place.as_deref(), Some("Nowogrodziec"));
    assert_eq!(p.title.as_deref(), Some(l.title.as_str()));
    assert_eq!(p.kind.as_deref(), Some("wniosek"));
    assert_eq!(p.body, l.paragraphs.join("\n\n"));
    assert_eq!(p.addressees.len(), 1);
    assert_eq!(p.addressees[0].kind, Some(PartyKind::Institution));
    assert_eq!(p.addressees[0].name, l.addressee);
    assert_eq!(p.senders.len(), 1);
    let s = &p.senders[0];
    assert_eq!(s.kind, Some(PartyKind::Person));
    assert_eq!(s.name, "Zażółć Gęślą-Jaźń \"Ósma\"");
    assert_eq!(s.pesel.as_deref(), Some("85010212343"));
    assert_eq!(
        s.address.as_deref(),
        Some("ul. Łąkowa 7/3, 59-730 Nowogrodziec")
    );
    assert_eq!(p.signed_as.as_deref(), Some("Zażółć Gęślą-Jaźń \"Ósma\""));
    assert_eq!(p.attachments.len(), 2);
    for (got, want) in p.attachments.iter().zip(&l.attachments) {
        assert_eq!(got.name, want.name);
        assert_eq!(got.mime_type.as_deref(), Some(want.mime_type.as_str()));
        assert_eq!(got.description, want.description);
        assert_eq!(got.content.as_deref(), Some(want.content.as_slice()));
        assert_eq!(
            got.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(&want.content)).as_str())
        );
    }
}

#[test]
fn a_minimal_letter_without_pesel_address_or_attachments_reads_back() {
    let mut l = letter();
    l.sender.pesel = None;
    l.sender.address = None;
    l.attachments.clear();
    let p = parse(&pismo_ogolne(&l), DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert_eq!(p.senders[0].pesel, None);
    assert_eq!(p.senders[0].address, None);
    assert!(p.attachments.is_empty());
    assert!(!String::from_utf8(pismo_ogolne(&l))
        .unwrap()
        .contains("Zalaczniki"));
}

#[test]
fn characters_xml_cannot_carry_do_not_break_the_document() {
    let mut l = letter();
    l.title = "Tytuł\u{1}z\u{0}sterującymi".into();
    l.attachments[0].name = "a\tb\nc\"d.pdf".into();
    let p = parse(&pismo_ogolne(&l), DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
    assert_eq!(
        p.title.as_deref(),
        Some("Tytuł\u{FFFD}z\u{FFFD}sterującymi")
    );
    // Whitespace in an attribute survives as written (not normalized to spaces).
    assert_eq!(p.attachments[0].name, "a\tb\nc\"d.pdf");
}

#[test]
fn paragraphs_are_split_on_blank_lines_as_the_reader_joins_them() {
    assert_eq!(
        paragraphs("  Pierwszy\r\nciąg dalszy \r\n\r\n \n\nDrugi  \n"),
        ["Pierwszy\nciąg dalszy", "Drugi"]
    );
    assert!(paragraphs(" \n\n\t").is_empty());
    let mut l = letter();
    l.paragraphs = paragraphs("Jeden\r\n\r\nDwa\nTrzy");
    let p = parse(&pismo_ogolne(&l), DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
    assert_eq!(p.body, "Jeden\n\nDwa\nTrzy");
}
