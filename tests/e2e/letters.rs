//! End to end, production mode: letters wait in two municipalities' simulated ePUAP boxes; the
//! daemon pulls them with signed WS-Pull requests, keeps every document and attachment by
//! content hash, publishes `letter.received` and only then confirms. Killing the daemon in the
//! middle loses no letter.
//!
//! `cargo test -p gsko --test e2e_letters`

mod common;

use common::*;
use gsko_sim::epuap::{self as sim, EpuapSim, EpuapSimConfig, LetterSpec};
use sha2::{Digest, Sha256};
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
            "\n[epuap]\npull_url = \"{url}\"\npodmiot = \"{podmiot}\"\nboxes = [\"skrytka\"]\ncertificate = {{ file = \"{dir}/{podmiot}.crt\" }}\nprivate_key = {{ file = \"{dir}/{podmiot}.key\" }}\nschedule = \"*/1 * * * * *\"\n",
            url = handle.pull_url(),
            dir = certs.display(),
        ));
        std::fs::write(&file, t).unwrap();
    }

    // 40 letters per box, with attachments.
    let date = gsko_sim::SimDate::new(2026, 11, 20).unwrap();
    let mut expected: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for (i, (teryt, name, podmiot)) in [A, B].into_iter().enumerate() {
        let spec = LetterSpec::new(&format!("Urząd {name}"), name, "59-700", date);
        let b = sim::BoxAddress::new(podmiot, "skrytka");
        for n in 0..40 {
            let l = sim::generate_letter((i * 1000 + n) as u64, &spec);
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
            40,
            "{podmiot}: each letter confirmed once"
        );
    }
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
