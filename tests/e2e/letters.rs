//! End to end, production mode: 200 letters with attachments, signed with Profil Zaufany in
//! both forms (some changed after signing, some signed by someone other than the declared
//! sender, a few unsigned), wait in two municipalities' simulated ePUAP boxes; the daemon pulls
//! them with signed WS-Pull requests, keeps every document and attachment by content hash,
//! verifies each signature, publishes `letter.received` (and `letter.register`) and only then
//! confirms. Killing the daemon in the middle loses no letter and duplicates none; each letter
//! is then in the view of the resident who signed it, the tampered ones flagged.
//!
//! `cargo test -p gsko --test e2e_letters`

mod common;

use common::*;
use gsko_sim::epuap::{self as sim, EpuapSim, EpuapSimConfig, LetterSignature, LetterSpec};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const A: (&str, &str, &str) = ("0201011", "Bolesławiec", "umboleslawiec");
const B: (&str, &str, &str) = ("0201032", "Gromadka", "uggromadka");

/// A self-signed system certificate for an office, as PEM files in `dir`.
fn office_certificate(dir: &std::path::Path, podmiot: &str) -> Vec<u8> {
    let (cert, key) = (
        dir.join(format!("{podmiot}.crt")),
        dir.join(format!("{podmiot}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={podmiot}")])
        .output()
        .expect("openssl (scripts/ensure-services.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

const PER_BOX: usize = 100;

/// A letter as the view must show it: document SHA-256, signature status, signed by someone
/// other than the declared sender.
type Expected = (String, &'static str, bool);

#[test]
fn letters_in_two_boxes_are_pulled_kept_and_confirmed_and_a_kill_loses_none() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = Env::new();
    env.write_config(
        &[(A.0, A.1), (B.0, B.1)],
        &[("admin", ADMIN_KEY, &["*"], true)],
    );
    let certs = env.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let mut config = EpuapSimConfig::new();
    for (_, _, podmiot) in [A, B] {
        let der = office_certificate(&certs, podmiot);
        config = config
            .with_box(podmiot, "skrytka")
            .with_certificate(podmiot, der);
    }
    let handle = rt.block_on(EpuapSim::start(config)).unwrap();
    for (teryt, _, podmiot) in [A, B] {
        let file = env.path().join("tenants").join(format!("{teryt}.toml"));
        let mut t = std::fs::read_to_string(&file).unwrap();
        t.push_str(&format!(
            "\n[epuap]\npull_url = \"{url}\"\npodmiot = \"{podmiot}\"\nboxes = [\"skrytka\"]\ncertificate = {{ file = \"{dir}/{podmiot}.crt\" }}\nprivate_key = {{ file = \"{dir}/{podmiot}.key\" }}\nschedule = \"*/1 * * * * *\"\npz_certificates = {{ file = \"{dir}/coi.pem\" }}\n",
            url = handle.pull_url(),
            dir = certs.display(),
        ));
        std::fs::write(&file, t).unwrap();
    }

    std::fs::write(
        certs.join("coi.pem"),
        &gsko_sim::xades::coi_certificate().cert_pem,
    )
    .unwrap();

    // 100 letters per box, with attachments, in every signature variant.
    let date = gsko_sim::SimDate::new(2026, 11, 20).unwrap();
    let mut expected: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    // (tenant, signer PESEL) -> [(document SHA-256, expected signature status, signed by
    // someone else)]
    let mut signed: BTreeMap<(String, String), Vec<Expected>> = BTreeMap::new();
    let mut unsigned = 0;
    for (i, (teryt, name, podmiot)) in [A, B].into_iter().enumerate() {
        let b = sim::BoxAddress::new(podmiot, "skrytka");
        for n in 0..PER_BOX {
            let signature = match n % 20 {
                7 | 17 => LetterSignature::Tampered,
                8 => LetterSignature::SignedBySomeoneElse,
                13 => LetterSignature::Unsigned,
                k if k % 2 == 0 => LetterSignature::PodpisZaufany,
                _ => LetterSignature::EpSignature,
            };
            let spec = LetterSpec {
                signature,
                attachments: 1 + n % 3,
                ..LetterSpec::new(&format!("Urząd {name}"), name, "59-700", date)
            };
            let l = sim::generate_letter((i * 1000 + n) as u64, &spec);
            match &l.signer_pesel {
                Some(p) => signed
                    .entry((teryt.to_owned(), p.clone()))
                    .or_default()
                    .push((
                        hex::encode(Sha256::digest(&l.letter.content)),
                        if signature == LetterSignature::Tampered {
                            "invalid"
                        } else {
                            "valid"
                        },
                        signature == LetterSignature::SignedBySomeoneElse,
                    )),
                None => unsigned += 1,
            }
            handle.deposit(&b, l.letter.clone()).unwrap();
            expected.push((
                teryt.to_owned(),
                std::iter::once(l.letter.content.clone())
                    .chain(l.attachments.iter().map(|a| a.content.clone()))
                    .collect(),
            ));
        }
    }

    // Start, kill -9 as soon as the first letters are confirmed, start again.
    let mut d = env.spawn();
    let b_a = sim::BoxAddress::new(A.2, "skrytka");
    let deadline = Instant::now() + Duration::from_secs(60);
    while handle.confirmed(&b_a).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing confirmed: {}",
            env.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.kill9();
    d = env.spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (_, _, podmiot) in [A, B] {
        let b = sim::BoxAddress::new(podmiot, "skrytka");
        while !handle.pending(&b).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{podmiot}: letters left in the box"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            handle.confirmed(&b).len(),
            PER_BOX,
            "{podmiot}: each letter confirmed once"
        );
    }
    // Each signed letter is in the view of the person who signed it, once, with its
    // signature's verdict; the one signed by someone else says so.
    for ((teryt, pesel), letters) in &signed {
        let v = d.get_when(
            &format!("/v1/tenants/{teryt}/resident/letters"),
            Some(ADMIN_KEY),
            Some(pesel),
            Duration::from_secs(60),
            |v| {
                v["letters"]
                    .as_array()
                    .is_some_and(|l| l.len() >= letters.len())
            },
        );
        let got = v["letters"].as_array().unwrap();
        assert_eq!(got.len(), letters.len(), "{teryt}: {v}");
        for (title, status, someone_else) in letters {
            let l = got
                .iter()
                .find(|l| l["letter"]["document"]["sha256"] == title.as_str())
                .unwrap_or_else(|| panic!("{teryt}: {title} missing: {v}"));
            assert_eq!(l["state"], "received");
            assert_eq!(l["letter"]["signature"]["status"], *status, "{title}: {l}");
            assert_eq!(l["letter"]["signature"]["signer_pesel"], pesel.as_str());
            let problems = l["letter"]["signature"]["problems"].to_string();
            assert_eq!(
                problems.contains("other than the declared sender"),
                *someone_else,
                "{title}: {problems}"
            );
            if *status == "invalid" {
                assert!(
                    problems.contains("changed after it was signed"),
                    "{problems}"
                );
            }
        }
    }
    // The admin sees every letter once, and the flagged ones: tampered, signed by someone
    // else, unsigned.
    let mut all = 0;
    let mut flagged = 0;
    for (teryt, _, _) in [A, B] {
        let v = d.get_when(
            &format!("/v1/tenants/{teryt}/admin/letters"),
            Some(ADMIN_KEY),
            None,
            Duration::from_secs(60),
            |v| v["letters"].as_array().is_some_and(|l| l.len() >= PER_BOX),
        );
        all += v["letters"].as_array().unwrap().len();
        let v = d.get_ok(
            &format!("/v1/tenants/{teryt}/admin/letters?flagged=true"),
            Some(ADMIN_KEY),
            None,
            Duration::from_secs(10),
        );
        flagged += v["letters"].as_array().unwrap().len();
    }
    assert_eq!(all, 2 * PER_BOX);
    let tampered_or_other: usize = signed
        .values()
        .flatten()
        .filter(|(_, status, other)| *status == "invalid" || *other)
        .count();
    assert_eq!(flagged, tampered_or_other + unsigned);
    // Every document and attachment is kept under its hash in the tenant's document store.
    for (teryt, contents) in &expected {
        for c in contents {
            let sha = hex::encode(Sha256::digest(c));
            let path = env
                .path()
                .join("documents")
                .join(teryt)
                .join(&sha[..2])
                .join(&sha);
            assert_eq!(
                &std::fs::read(&path).unwrap_or_default(),
                c,
                "{}",
                path.display()
            );
        }
    }
    assert_eq!(
        handle.rejections().len(),
        0,
        "every request was signed with the registered certificate: {:?}",
        handle.rejections()
    );
    d.stop();
}
