//! CRD documents: "Pismo ogólne" read in full, other forms generically, and every way a letter
//! can be wrong kept as a problem rather than an error.

use gsko_epuap::document::{parse, DocumentError, PartyKind, DEFAULT_MAX_ATTACHMENT_BYTES};

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="http://crd.gov.pl/wzor/2013/12/12/1410/styl.xsl"?>
<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/" xmlns:meta="http://crd.gov.pl/xml/schematy/meta/2009/11/16/" xmlns:str="http://crd.gov.pl/xml/schematy/struktura/2009/11/16/" xmlns:adr="http://crd.gov.pl/xml/schematy/adres/2009/11/09/" xmlns:oso="http://crd.gov.pl/xml/schematy/osoba/2009/11/16/" xmlns:inst="http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/">"#;

fn pismo(attachments: &str, signature: &str) -> String {
    format!(
        r#"{HEAD}
  <wnio:OpisDokumentu><meta:Data typDaty="stworzony"><meta:Czas>2026-11-20</meta:Czas></meta:Data></wnio:OpisDokumentu>
  <wnio:DaneDokumentu>
    <str:Naglowek><str:NazwaDokumentu>Pismo ogólne do podmiotu publicznego</str:NazwaDokumentu></str:Naglowek>
    <meta:Data typDaty="stworzony"><meta:Czas>2026-11-20</meta:Czas></meta:Data>
    <str:Adresaci><meta:Podmiot><inst:Instytucja><inst:NazwaInstytucji>Urząd Miasta Bolesławiec</inst:NazwaInstytucji><inst:IdInstytucji><inst:REGON>000516564</inst:REGON></inst:IdInstytucji></inst:Instytucja></meta:Podmiot></str:Adresaci>
    <str:Nadawcy><meta:Podmiot><oso:Osoba><oso:Imie>Jan</oso:Imie><oso:Nazwisko>Kowalski</oso:Nazwisko>
      <adr:Adres><adr:KodPocztowy>59-700</adr:KodPocztowy><adr:Miejscowosc>Bolesławiec</adr:Miejscowosc><adr:Ulica>Kutuzowa</adr:Ulica><adr:Budynek>12</adr:Budynek><adr:Lokal>3</adr:Lokal></adr:Adres>
      <oso:IdOsoby><oso:PESEL>78031501236</oso:PESEL></oso:IdOsoby>
      <adr:Kontakt><adr:Email>jan@example.pl</adr:Email></adr:Kontakt></oso:Osoba></meta:Podmiot></str:Nadawcy>
  </wnio:DaneDokumentu>
  <wnio:TrescDokumentu format="text/xml" kodowanie="XML">
    <wnio:MiejscowoscDokumentu>Bolesławiec</wnio:MiejscowoscDokumentu>
    <wnio:Tytul>Wniosek o rozłożenie podatku na raty</wnio:Tytul>
    <wnio:RodzajWnioskuRozszerzony rodzaj="wniosek" jakiInny=""/>
    <wnio:Informacje><wnio:Informacja>Proszę o rozłożenie na raty.</wnio:Informacja><wnio:Informacja>Z poważaniem</wnio:Informacja></wnio:Informacje>
    <wnio:Podpis><oso:Imie>Jan</oso:Imie><oso:Nazwisko>Kowalski</oso:Nazwisko></wnio:Podpis>
    <str:Zalaczniki>{attachments}</str:Zalaczniki>
  </wnio:TrescDokumentu>{signature}
</wnio:Dokument>"#
    )
}

const PZ_SIGNATURE: &str = r#"
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="Signature"><ds:SignedInfo/><ds:SignatureValue>AA==</ds:SignatureValue>
    <ds:Object><xades:QualifyingProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#"><xades:SignedProperties><xades:SignedSignatureProperties><xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>
      <ppZP:PodpisZP xmlns:ppZP="http://crd.gov.pl/xml/schematy/ppzp/" xmlns:os="http://crd.gov.pl/xml/schematy/osoba/2009/03/06/"><ppZP:DaneZP><ppZP:DaneZPOsobyFizycznej><os:Nazwisko rodzajCzlonu="pierwszy">KOWALSKI</os:Nazwisko><os:Imie>JAN</os:Imie><os:PESEL>78031501236</os:PESEL><ppZP:IdKontaUzytkownikaEpuap>jkowalski</ppZP:IdKontaUzytkownikaEpuap></ppZP:DaneZPOsobyFizycznej></ppZP:DaneZP></ppZP:PodpisZP>
    </xades:ClaimedRole></xades:ClaimedRoles></xades:SignerRole></xades:SignedSignatureProperties></xades:SignedProperties></xades:QualifyingProperties></ds:Object>
  </ds:Signature>"#;

#[test]
fn pismo_ogolne_is_read_in_full() {
    let att = r#"<str:Zalacznik format="application/pdf" kodowanie="base64" nazwaPliku="skan.pdf"><str:DaneZalacznika>JVBERi0x
LjQK</str:DaneZalacznika><str:OpisZalacznika>Skan decyzji</str:OpisZalacznika></str:Zalacznik>
<str:Zalacznik format="image/png" kodowanie="URI" nazwaPliku="foto.png"><str:DaneZalacznika>https://ws.epuap.gov.pl/repo?fileId=123</str:DaneZalacznika></str:Zalacznik>"#;
    let d = parse(
        pismo(att, PZ_SIGNATURE).as_bytes(),
        DEFAULT_MAX_ATTACHMENT_BYTES,
    )
    .unwrap();
    assert_eq!(d.form_namespace, "http://crd.gov.pl/wzor/2013/12/12/1410/");
    assert_eq!(
        d.form_name.as_deref(),
        Some("Pismo ogólne do podmiotu publicznego")
    );
    assert_eq!(
        d.title.as_deref(),
        Some("Wniosek o rozłożenie podatku na raty")
    );
    assert_eq!(d.place.as_deref(), Some("Bolesławiec"));
    assert_eq!(d.kind.as_deref(), Some("wniosek"));
    assert_eq!(d.created.as_deref(), Some("2026-11-20"));
    assert_eq!(d.body, "Proszę o rozłożenie na raty.\n\nZ poważaniem");
    assert_eq!(d.signed_as.as_deref(), Some("Jan Kowalski"));
    assert_eq!(d.senders.len(), 1);
    let s = &d.senders[0];
    assert_eq!(s.kind, Some(PartyKind::Person));
    assert_eq!(s.name, "Jan Kowalski");
    assert_eq!(s.pesel.as_deref(), Some("78031501236"));
    assert_eq!(s.email.as_deref(), Some("jan@example.pl"));
    assert_eq!(
        s.address.as_deref(),
        Some("Kutuzowa 12/3, 59-700 Bolesławiec")
    );
    let a = &d.addressees[0];
    assert_eq!(
        (a.kind, a.name.as_str(), a.regon.as_deref()),
        (
            Some(PartyKind::Institution),
            "Urząd Miasta Bolesławiec",
            Some("000516564")
        )
    );
    assert_eq!(d.attachments.len(), 2);
    let pdf = &d.attachments[0];
    assert_eq!(pdf.content.as_deref(), Some(&b"%PDF-1.4\n"[..]));
    assert_eq!(pdf.size_bytes, Some(9));
    assert_eq!(pdf.sha256.as_deref().map(str::len), Some(64));
    assert_eq!(pdf.description.as_deref(), Some("Skan decyzji"));
    assert_eq!(
        d.attachments[1].uri.as_deref(),
        Some("https://ws.epuap.gov.pl/repo?fileId=123")
    );
    assert_eq!(d.signatures, 1);
    assert_eq!(d.trusted_profile_claims.len(), 1);
    let c = &d.trusted_profile_claims[0];
    assert_eq!(
        (
            c.form,
            c.pesel.as_deref(),
            c.surname.as_deref(),
            c.epuap_login.as_deref()
        ),
        (
            "PodpisZP",
            Some("78031501236"),
            Some("KOWALSKI"),
            Some("jkowalski")
        )
    );
    assert!(d.problems.is_empty(), "{:?}", d.problems);
}

#[test]
fn the_new_podpis_zaufany_form_is_read_too() {
    let sig = r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Object><x:ClaimedRole xmlns:x="http://uri.etsi.org/01903/v1.3.2#"><EPSignature xmlns="http://crd.gov.pl/xml/schematy/podpis_zaufany/"><NaturalPerson><CurrentFamilyName>NOWAK</CurrentFamilyName><FirstName>ANNA</FirstName><DateOfBirth>1981-07-22</DateOfBirth><PersonalIdentifier>81072204569</PersonalIdentifier></NaturalPerson><SignatureData><IdentityIssuer>pz.gov.pl</IdentityIssuer></SignatureData></EPSignature></x:ClaimedRole></ds:Object></ds:Signature>"#;
    let d = parse(pismo("", sig).as_bytes(), DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
    let c = &d.trusted_profile_claims[0];
    assert_eq!(
        (c.form, c.first_name.as_deref(), c.pesel.as_deref()),
        ("EPSignature", Some("ANNA"), Some("81072204569"))
    );
}

#[test]
fn what_is_wrong_is_recorded_and_the_letter_kept() {
    // Unsigned; an attachment that is not base64; one over the size limit; one without a name.
    let att = r#"<str:Zalacznik format="application/pdf" kodowanie="base64" nazwaPliku="zly.pdf"><str:DaneZalacznika>!!!nie-base64</str:DaneZalacznika></str:Zalacznik>
<str:Zalacznik format="application/pdf" kodowanie="base64" nazwaPliku="duzy.pdf"><str:DaneZalacznika>QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB</str:DaneZalacznika></str:Zalacznik>
<str:Zalacznik kodowanie="base64"><str:DaneZalacznika>QQ==</str:DaneZalacznika></str:Zalacznik>"#;
    let d = parse(pismo(att, "").as_bytes(), 16).unwrap();
    let problems: Vec<String> = d
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.at, p.what))
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Zalacznik[1]") && p.contains("not base64")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Zalacznik[2]") && p.contains("larger than the limit")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Zalacznik[3]") && p.contains("no nazwaPliku")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("not signed")),
        "{problems:?}"
    );
    assert_eq!(d.attachments.len(), 3);
    assert_eq!(d.attachments[2].name, "zalacznik-3");
    assert_eq!(d.attachments[2].content.as_deref(), Some(&b"A"[..]));
    assert_eq!(
        d.title.as_deref(),
        Some("Wniosek o rozłożenie podatku na raty")
    );
}

#[test]
fn another_form_is_read_generically() {
    let xml = r#"<w:Dokument xmlns:w="http://crd.gov.pl/wzor/2021/05/04/10559/" xmlns:str="http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"><w:TrescDokumentu><w:Pole>Zgłoszenie psa</w:Pole></w:TrescDokumentu></w:Dokument>"#;
    let d = parse(xml.as_bytes(), DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
    assert_eq!(d.form_namespace, "http://crd.gov.pl/wzor/2021/05/04/10559/");
    assert_eq!(d.body, "Zgłoszenie psa");
    assert!(d
        .problems
        .iter()
        .any(|p| p.what.contains("read generically")));
    assert!(d.problems.iter().any(|p| p.what.contains("no sender")));
}

#[test]
fn a_doctype_or_broken_xml_is_refused_with_its_place() {
    let xxe =
        r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>"#;
    assert_eq!(parse(xxe.as_bytes(), 1024), Err(DocumentError::Doctype));
    match parse(b"<a>\n<b></a>", 1024) {
        Err(DocumentError::Malformed { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&[0xff, 0xfe, 0x00], 1024),
        Err(DocumentError::Malformed { .. })
    ));
}
