//! The letter signature verifier against signatures it did not make: the simulator's (xmlsec1,
//! libxmlsec1 on OpenSSL) in every form a letter arrives in, and Python signxml's (lxml and
//! `cryptography`), an independent XAdES implementation. Needs `openssl`, `xmlsec1` and
//! `python3` with signxml (scripts/ensure-services.sh installs them).

use gsko_epuap::xades::{verify_document, XadesTrust};
use gsko_model::{SignatureForm, SignatureStatus};
use gsko_sim::epuap::{generate_letter, LetterSignature, LetterSpec};
use gsko_sim::xades::{coi_certificate, epuap_certificate, sign_enveloped, SignerClaim};
use gsko_sim::SimDate;
use std::process::Command;

fn spec(signature: LetterSignature) -> LetterSpec {
    LetterSpec {
        signature,
        attachments: 2,
        ..LetterSpec::new(
            "Urząd Miasta Bolesławiec",
            "Bolesławiec",
            "59-700",
            SimDate::new(2026, 11, 20).unwrap(),
        )
    }
}

fn coi_only() -> XadesTrust {
    XadesTrust::with_pz_certificates_pem(&coi_certificate().cert_pem).unwrap()
}

#[test]
fn podpis_zaufany_old_form_is_valid_and_names_the_sender() {
    let l = generate_letter(1, &spec(LetterSignature::PodpisZaufany));
    let r = verify_document(&l.xml, &coi_only());
    assert_eq!(r.status(), SignatureStatus::Valid, "{:?}", r.problems);
    assert_eq!(r.form, Some(SignatureForm::PodpisZaufany));
    assert_eq!(r.signer_pesel.as_deref(), Some(l.pesel.as_str()));
    assert_eq!(
        r.signer_name.as_deref(),
        Some(format!("{} {}", l.first_name, l.surname).as_str())
    );
    assert_eq!(
        r.signer_epuap_login.as_deref(),
        Some(l.epuap_login.as_str())
    );
    assert!(r.signed_at.is_some(), "SigningTime read");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
}

#[test]
fn podpis_zaufany_new_form_is_valid_and_names_the_sender() {
    let l = generate_letter(2, &spec(LetterSignature::EpSignature));
    let r = verify_document(&l.xml, &coi_only());
    assert_eq!(r.status(), SignatureStatus::Valid, "{:?}", r.problems);
    assert_eq!(r.form, Some(SignatureForm::PodpisZaufany));
    assert_eq!(r.signer_pesel.as_deref(), Some(l.pesel.as_str()));
}

#[test]
fn a_letter_changed_after_signing_is_invalid_and_says_so() {
    let l = generate_letter(3, &spec(LetterSignature::Tampered));
    let r = verify_document(&l.xml, &coi_only());
    assert_eq!(r.status(), SignatureStatus::Invalid);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("changed after it was signed")),
        "{:?}",
        r.problems
    );
    // The identity it claims is kept (unproven: the status says so), so that the letter
    // reaches the person it names, flagged.
    assert_eq!(r.signer_pesel.as_deref(), Some(l.pesel.as_str()));
}

#[test]
fn signed_by_someone_else_is_valid_but_names_the_other_person() {
    let l = generate_letter(4, &spec(LetterSignature::SignedBySomeoneElse));
    let r = verify_document(&l.xml, &coi_only());
    assert_eq!(r.status(), SignatureStatus::Valid, "{:?}", r.problems);
    let signer = l.signer_pesel.clone().expect("signed");
    assert_ne!(signer, l.pesel);
    assert_eq!(r.signer_pesel.as_deref(), Some(signer.as_str()));
}

#[test]
fn unsigned_letter_is_absent() {
    let l = generate_letter(5, &spec(LetterSignature::Unsigned));
    let r = verify_document(&l.xml, &coi_only());
    assert_eq!(r.status(), SignatureStatus::Absent);
    assert!(r.problems[0].contains("no ds:Signature"));
}

#[test]
fn a_podpis_zaufany_by_a_certificate_that_is_not_cois_is_not_valid() {
    let l = generate_letter(6, &spec(LetterSignature::Unsigned));
    let forged = sign_enveloped(
        &l.xml,
        epuap_certificate(),
        &SignerClaim::PodpisZp {
            first_name: l.first_name.clone(),
            surname: l.surname.clone(),
            pesel: l.pesel.clone(),
            epuap_login: l.epuap_login.clone(),
        },
        "2026-11-20T10:00:00+01:00",
    )
    .unwrap();
    let r = verify_document(&forged, &coi_only());
    assert_eq!(r.status(), SignatureStatus::Unverifiable);
    assert!(r
        .problems
        .iter()
        .any(|p| p.contains("not one of the configured Profil Zaufany")));
    // Without the COI list configured the signature counts, and the letter says what was not
    // checked.
    let r = verify_document(&forged, &XadesTrust::default());
    assert_eq!(r.status(), SignatureStatus::Valid);
    assert!(r.problems.iter().any(|p| p.contains("not configured")));
}

#[test]
fn a_signature_that_leaves_the_content_out_is_invalid() {
    // Re-point the whole-document Reference at the SignedProperties only: whatever the
    // cryptography says, the letter's text is not protected.
    let l = generate_letter(7, &spec(LetterSignature::PodpisZaufany));
    let text = String::from_utf8(l.xml.clone()).unwrap();
    let cut = text.replacen(
        "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
        "",
        1,
    );
    assert_ne!(cut, text, "the generator writes the enveloped transform");
    let r = verify_document(cut.as_bytes(), &coi_only());
    assert_eq!(r.status(), SignatureStatus::Invalid);
    assert!(r.problems[0].contains("no Reference covers the whole document"));
}

#[test]
fn doctype_and_garbage_are_unverifiable_not_errors() {
    let l = generate_letter(8, &spec(LetterSignature::PodpisZaufany));
    let text = String::from_utf8(l.xml.clone()).unwrap();
    let with_doctype = text.replacen(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
        1,
    );
    assert_ne!(with_doctype, text);
    let r = verify_document(with_doctype.as_bytes(), &coi_only());
    assert_eq!(r.status(), SignatureStatus::Unverifiable);
    assert!(r.problems[0].contains("DOCTYPE"));
    let r = verify_document(b"\xff\xfe not xml", &coi_only());
    assert_eq!(r.status(), SignatureStatus::Unverifiable);
}

/// Python signxml signs; GSKO verifies, and refuses the same document changed.
#[test]
fn a_signxml_xades_signature_is_verified_and_its_signer_read() {
    let l = generate_letter(9, &spec(LetterSignature::Unsigned));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let coi = coi_certificate();
    std::fs::write(&cert, &coi.cert_pem).unwrap();
    std::fs::write(&key, &coi.key_pem).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/xades_sign.py");
    let input = dir.path().join("in.xml");
    std::fs::write(&input, &l.xml).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .args([
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .args([
            "--pesel",
            &l.pesel,
            "--first-name",
            &l.first_name,
            "--surname",
            &l.surname,
        ])
        .args(["--login", &l.epuap_login])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .expect("python3 with signxml (scripts/ensure-services.sh installs it)");
    assert!(
        out.status.success(),
        "scripts/xades_sign.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = out.stdout;
    let r = verify_document(&signed, &coi_only());
    assert_eq!(r.status(), SignatureStatus::Valid, "{:?}", r.problems);
    assert_eq!(r.form, Some(SignatureForm::PodpisZaufany));
    assert_eq!(r.signer_pesel.as_deref(), Some(l.pesel.as_str()));
    assert_eq!(
        r.signer_epuap_login.as_deref(),
        Some(l.epuap_login.as_str())
    );

    let tampered = gsko_sim::xades::tamper(&signed);
    assert_ne!(tampered, signed);
    assert_eq!(
        verify_document(&tampered, &coi_only()).status(),
        SignatureStatus::Invalid
    );
}
