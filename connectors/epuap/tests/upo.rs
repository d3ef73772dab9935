//! UPP and UPD receipts read from hand-written samples in the §2.4 layout: the fields a clerk
//! sees, both attribute forms, the DOCTYPE refusal, and the cheap root check.
//!
//! `cargo test -p gsko-epuap --test upo`

use gsko_epuap::upo::{is_upo, read, Kind, Party, UpoError};

const UPP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- poświadczenie -->
<pos:Dokument xmlns:pos="http://crd.gov.pl/xml/schematy/UPO/2008/05/09/">
  <pos:UPP>
    <pos:IdentyfikatorPoswiadczenia>UPP-77</pos:IdentyfikatorPoswiadczenia>
    <pos:Adresat>
      <pos:Nazwa>Urząd Miasta Bolesławiec</pos:Nazwa>
      <pos:IdentyfikatorPodmiotu pos:TypIdentyfikatora="ePUAP-ID">umboleslawiec</pos:IdentyfikatorPodmiotu>
    </pos:Adresat>
    <pos:Nadawca>
      <pos:Nazwa>Jan Kowalski</pos:Nazwa>
      <pos:IdentyfikatorPodmiotu pos:TypIdentyfikatora="ePUAP-ID">jkowalski</pos:IdentyfikatorPodmiotu>
    </pos:Nadawca>
    <pos:DataDoreczenia>2026-11-20T10:11:12.000+01:00</pos:DataDoreczenia>
    <pos:DataWytworzeniaPoswiadczenia>2026-11-20T10:11:13.000+01:00</pos:DataWytworzeniaPoswiadczenia>
    <pos:IdentyfikatorDokumentu>1000000001</pos:IdentyfikatorDokumentu>
    <pos:InformacjaUzupelniajaca pos:TypInformacjiUzupelniajacej="Skrot dokumentu">q1w2e3==</pos:InformacjaUzupelniajaca>
    <pos:InformacjaUzupelniajaca pos:TypInformacjiUzupelniajacej="Tytul">Wniosek</pos:InformacjaUzupelniajaca>
  </pos:UPP>
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>
</pos:Dokument>"#;

/// Unqualified attributes, default namespace, no signature.
const UPD: &str = r#"<Dokument xmlns="http://crd.gov.pl/xml/schematy/UPO/2008/05/09/">
  <UPD>
    <IdentyfikatorPoswiadczenia>UPD-9</IdentyfikatorPoswiadczenia>
    <PodmiotWystawiajacyPoswiadczenie><Nazwa>ePUAP</Nazwa><IdentyfikatorPodmiotu TypIdentyfikatora="ePUAP-ID">epuap</IdentyfikatorPodmiotu></PodmiotWystawiajacyPoswiadczenie>
    <Adresat><Nazwa>Anna Nowak</Nazwa><IdentyfikatorPodmiotu>anowak</IdentyfikatorPodmiotu></Adresat>
    <DataOdbioru>2026-12-01T08:00:00.000+01:00</DataOdbioru>
    <DataUtworzeniaPoswiadczenia>2026-12-01T08:00:01.000+01:00</DataUtworzeniaPoswiadczenia>
    <IdentyfikatorSprawy>FN.3120.7.2026</IdentyfikatorSprawy>
    <IdentyfikatorDokumentu>DEC-2026-0042</IdentyfikatorDokumentu>
    <InformacjaUzupelniajaca TypInformacjiUzupelniajacej="Sposob doreczenia">odebrany</InformacjaUzupelniajaca>
  </UPD>
</Dokument>"#;

#[test]
fn a_upp_gives_its_parties_dates_and_document() {
    let p = read(UPP.as_bytes()).unwrap();
    assert_eq!(p.kind, Kind::Upp);
    assert_eq!(p.id, "UPP-77");
    assert_eq!(p.document_id.as_deref(), Some("1000000001"));
    assert_eq!(p.case_id, None);
    assert_eq!(
        p.addressee,
        Some(Party {
            name: Some("Urząd Miasta Bolesławiec".into()),
            id: Some("umboleslawiec".into()),
            id_type: Some("ePUAP-ID".into()),
        })
    );
    let sender = p.sender_or_issuer.unwrap();
    assert_eq!(sender.id.as_deref(), Some("jkowalski"));
    assert_eq!(sender.id_type.as_deref(), Some("ePUAP-ID"));
    assert_eq!(
        p.delivered_at.as_deref(),
        Some("2026-11-20T10:11:12.000+01:00")
    );
    assert_eq!(
        p.created_at.as_deref(),
        Some("2026-11-20T10:11:13.000+01:00")
    );
    assert_eq!(
        p.extra,
        vec![
            ("Skrot dokumentu".to_owned(), "q1w2e3==".to_owned()),
            ("Tytul".to_owned(), "Wniosek".to_owned()),
        ]
    );
    assert!(p.signed);
}

#[test]
fn a_upd_gives_the_issuer_case_and_our_document_id_with_unqualified_attributes() {
    let p = read(UPD.as_bytes()).unwrap();
    assert_eq!(p.kind, Kind::Upd);
    assert_eq!(p.id, "UPD-9");
    assert_eq!(p.document_id.as_deref(), Some("DEC-2026-0042"));
    assert_eq!(p.case_id.as_deref(), Some("FN.3120.7.2026"));
    let issuer = p.sender_or_issuer.unwrap();
    assert_eq!(issuer.name.as_deref(), Some("ePUAP"));
    assert_eq!(issuer.id_type.as_deref(), Some("ePUAP-ID"));
    let addressee = p.addressee.unwrap();
    assert_eq!(addressee.id.as_deref(), Some("anowak"));
    assert_eq!(addressee.id_type, None);
    assert_eq!(
        p.delivered_at.as_deref(),
        Some("2026-12-01T08:00:00.000+01:00")
    );
    assert_eq!(
        p.created_at.as_deref(),
        Some("2026-12-01T08:00:01.000+01:00")
    );
    assert_eq!(
        p.extra,
        vec![("Sposob doreczenia".to_owned(), "odebrany".to_owned())]
    );
    assert!(!p.signed);
}

#[test]
fn an_attribute_in_another_namespace_is_not_taken_for_the_identifier_type() {
    let x = UPD.replace(
        r#"<IdentyfikatorPodmiotu TypIdentyfikatora="ePUAP-ID">epuap"#,
        r#"<IdentyfikatorPodmiotu xmlns:o="urn:other" o:TypIdentyfikatora="X">epuap"#,
    );
    let p = read(x.as_bytes()).unwrap();
    assert_eq!(p.sender_or_issuer.unwrap().id_type, None);
}

#[test]
fn a_doctype_is_refused_before_anything_is_read() {
    let x = UPP.replacen(
        "<!-- poświadczenie -->",
        r#"<!DOCTYPE pos:Dokument [<!ENTITY x "UPP-77">]>"#,
        1,
    );
    assert_eq!(read(x.as_bytes()), Err(UpoError::Doctype));
    assert!(!is_upo(x.as_bytes()));
}

#[test]
fn other_documents_are_told_apart() {
    let pismo = br#"<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/"><wnio:TrescDokumentu/></wnio:Dokument>"#;
    assert!(matches!(read(pismo), Err(UpoError::NotUpo(_))));
    assert!(!is_upo(pismo));
    let empty = br#"<pos:Dokument xmlns:pos="http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"/>"#;
    assert!(matches!(read(empty), Err(UpoError::NotUpo(_))));
    let no_id = UPD.replace(
        "<IdentyfikatorPoswiadczenia>UPD-9</IdentyfikatorPoswiadczenia>",
        "",
    );
    assert_eq!(
        read(no_id.as_bytes()),
        Err(UpoError::Missing {
            kind: Kind::Upd,
            element: "IdentyfikatorPoswiadczenia"
        })
    );
    assert!(matches!(
        read(b"<pos:Dokument"),
        Err(UpoError::Malformed(_))
    ));
}

#[test]
fn is_upo_looks_at_the_root_start_tag_only() {
    assert!(is_upo(UPP.as_bytes()));
    assert!(is_upo(UPD.as_bytes()));
    // A BOM, and the namespace declared after other attributes, with single quotes.
    let x = "\u{feff}<?xml version='1.0'?>\n<p:UPP a='1>' xmlns:p='http://crd.gov.pl/xml/schematy/UPO/2008/05/09/'>";
    assert!(is_upo(x.as_bytes()));
    // The prefix used must be the one bound to the namespace.
    let x = r#"<q:Dokument xmlns:q="urn:x" xmlns:pos="http://crd.gov.pl/xml/schematy/UPO/2008/05/09/">"#;
    assert!(!is_upo(x.as_bytes()));
    // The namespace only deeper down does not count.
    let x = r#"<Dokument><pos:UPP xmlns:pos="http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"/></Dokument>"#;
    assert!(!is_upo(x.as_bytes()));
    assert!(!is_upo(b""));
    assert!(!is_upo(b"not xml"));
}

#[test]
fn a_bare_upd_root_is_read_too() {
    let x = r#"<pos:UPD xmlns:pos="http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"><pos:IdentyfikatorPoswiadczenia>U1</pos:IdentyfikatorPoswiadczenia></pos:UPD>"#;
    let p = read(x.as_bytes()).unwrap();
    assert_eq!((p.kind, p.id.as_str()), (Kind::Upd, "U1"));
}
