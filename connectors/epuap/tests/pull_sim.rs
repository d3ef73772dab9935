//! The connector's pieces against the ePUAP simulator (an independent implementation that
//! verifies signatures with xmlsec1): a signed WS-Pull cycle reads generated letters in order,
//! parses them, and confirms each with its digest; an unsigned request is refused.
//!
//! `cargo test -p gsko-epuap --test pull_sim`

use gsko_epuap::document::{parse, DEFAULT_MAX_ATTACHMENT_BYTES};
use gsko_epuap::pull::{
    parse_confirm, parse_next, parse_pending, request_body, BoxAddress, PullError, PullOperation,
};
use gsko_epuap::wssec::{envelope, sign_envelope, SigningIdentity};
use gsko_sim::epuap::{self as sim, EpuapSim, EpuapSimConfig, LetterSpec};
use std::process::Command;

struct Office {
    _dir: tempfile::TempDir,
    identity: SigningIdentity,
}

fn office_certificate() -> Office {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=UM Boleslawiec system"])
        .output()
        .expect("openssl makes the test certificate (scripts/ensure-services.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let identity = SigningIdentity::from_pem(
        &std::fs::read_to_string(cert).unwrap(),
        &std::fs::read_to_string(key).unwrap(),
    )
    .unwrap();
    Office {
        _dir: dir,
        identity,
    }
}

async fn call(
    url: &str,
    op: PullOperation,
    body: String,
    identity: Option<&SigningIdentity>,
) -> String {
    let env = envelope(&body, &[]);
    let env = match identity {
        Some(id) => sign_envelope(&env, id).unwrap(),
        None => env,
    };
    reqwest::Client::new()
        .post(url)
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", op.soap_action())
        .body(env)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_pull_cycle_reads_every_letter_once_in_order() {
    let office = office_certificate();
    let handle = EpuapSim::start(
        EpuapSimConfig::new()
            .with_box("umboleslawiec", "skrytka")
            .with_certificate("umboleslawiec", office.identity.certificate_der().to_vec()),
    )
    .await
    .unwrap();
    let sim_box = sim::BoxAddress::new("umboleslawiec", "skrytka");
    let date = gsko_sim::SimDate::new(2026, 11, 20).unwrap();
    let spec = LetterSpec::new("Urząd Miasta Bolesławiec", "Bolesławiec", "59-700", date);
    let letters: Vec<_> = (0..3)
        .map(|seed| sim::generate_letter(seed, &spec))
        .collect();
    for l in &letters {
        handle.deposit(&sim_box, l.letter.clone()).unwrap();
    }
    let url = handle.pull_url();
    let b = BoxAddress::new("umboleslawiec", "skrytka");

    // Unsigned: refused, nothing taken.
    let answer = call(
        &url,
        PullOperation::Pending,
        request_body(PullOperation::Pending, &b, None),
        None,
    )
    .await;
    assert!(
        matches!(parse_pending(&answer), Err(PullError::Fault { .. })),
        "{answer}"
    );

    let answer = call(
        &url,
        PullOperation::Pending,
        request_body(PullOperation::Pending, &b, None),
        Some(&office.identity),
    )
    .await;
    assert_eq!(parse_pending(&answer), Ok(3));
    for expected in &letters {
        let answer = call(
            &url,
            PullOperation::Next,
            request_body(PullOperation::Next, &b, None),
            Some(&office.identity),
        )
        .await;
        let doc = parse_next(&answer).unwrap().expect("a letter waits");
        let parsed = parse(&doc.content, DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
        assert_eq!(parsed.title.as_deref(), Some(expected.title.as_str()));
        assert_eq!(
            parsed.senders[0].pesel.as_deref(),
            Some(expected.pesel.as_str())
        );
        assert_eq!(parsed.attachments.len(), expected.attachments.len());
        for (a, e) in parsed.attachments.iter().zip(&expected.attachments) {
            assert_eq!(
                a.content.as_deref(),
                Some(e.content.as_slice()),
                "{}",
                e.file_name
            );
        }
        // A wrong digest confirms nothing; the right one removes the letter.
        let wrong = call(
            &url,
            PullOperation::Confirm,
            request_body(
                PullOperation::Confirm,
                &b,
                Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ),
            Some(&office.identity),
        )
        .await;
        assert!(parse_confirm(&wrong).is_err(), "{wrong}");
        let ok = call(
            &url,
            PullOperation::Confirm,
            request_body(PullOperation::Confirm, &b, Some(&doc.digest())),
            Some(&office.identity),
        )
        .await;
        assert_eq!(parse_confirm(&ok), Ok(()), "{ok}");
    }
    let answer = call(
        &url,
        PullOperation::Next,
        request_body(PullOperation::Next, &b, None),
        Some(&office.identity),
    )
    .await;
    assert_eq!(parse_next(&answer), Ok(None));
    assert_eq!(handle.confirmed(&sim_box).len(), 3);
    assert!(handle
        .rejections()
        .iter()
        .any(|r| r.kind.is_authentication()));
}
