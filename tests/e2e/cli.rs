//! The command line as an admin meets it: check-config, inspect, and the demo.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs `gsko check-config` on a minimal main file and the given tenant file.
fn check_config_with_tenant(tenant_toml: &str) -> (Option<i32>, String) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("tenants")).unwrap();
    let main = "version = 1\n[database]\nkind = \"sqlite\"\npath = \"x.sqlite\"\n[bus]\nkind = \"memory\"\n";
    std::fs::write(d.path().join("gsko.toml"), main).unwrap();
    std::fs::write(d.path().join("tenants/0201011.toml"), tenant_toml).unwrap();
    let out = gsko()
        .arg("check-config")
        .arg(d.path().join("gsko.toml"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_exits_78_naming_file_key_and_reason() {
    // A syntax-level mistake: the key and the line are named.
    let (code, err) = check_config_with_tenant("teryt = \"0201011\"\nname = \"B\"\n[radix]\ndirectory = \"in\"\nschedul = \"0 * * * * *\"\n");
    assert_eq!(code, Some(78));
    assert!(
        err.contains("0201011.toml") && err.contains("schedul") && err.contains("line 5"),
        "{err}"
    );
    // A mistake only the connector understands: a CSV mapping with an unknown encoding.
    let (code, err) = check_config_with_tenant("teryt = \"0201011\"\nname = \"B\"\n[radix]\ndirectory = \"in\"\n[radix.csv.podatnicy]\nencoding = \"ebcdic\"\n");
    assert_eq!(code, Some(78));
    assert!(
        err.contains("0201011.toml") && err.contains("radix.csv") && err.contains("ebcdic"),
        "{err}"
    );
    // Payment settings: an unknown levy, a levy collected by two merchant accounts, Elixir-0
    // booking without the collection account, a virtual-account NRB with a bad checksum.
    let merchant = |levies: &str, name: &str| {
        format!("[payments.merchants.{name}]\nlevies = [{levies}]\n[payments.merchants.{name}.payu]\nurl = \"https://secure.payu.com\"\npos_id = \"1\"\nclient_secret = {{ value = \"s\" }}\nsecond_key = {{ value = \"k\" }}\n")
    };
    let head =
        "teryt = \"0201011\"\nname = \"B\"\n[payments]\nreturn_url = \"https://portal.example/\"\n";
    let (code, err) = check_config_with_tenant(&format!(
        "{head}{}",
        merchant("\"property\", \"ufo_tax\"", "taxes")
    ));
    assert_eq!(code, Some(78));
    assert!(
        err.contains("payments.merchants.taxes.levies") && err.contains("ufo_tax"),
        "{err}"
    );
    let (code, err) = check_config_with_tenant(&format!(
        "{head}{}{}",
        merchant("\"property\"", "taxes"),
        merchant("\"property\", \"waste_fee\"", "waste")
    ));
    assert_eq!(code, Some(78));
    assert!(err.contains("already collected by merchant"), "{err}");
    let (code, err) = check_config_with_tenant("teryt = \"0201011\"\nname = \"B\"\n[radix]\ndirectory = \"in\"\n[radix.booking]\nformat = \"elixir0\"\n");
    assert_eq!(code, Some(78));
    assert!(err.contains("radix.booking.collection_account"), "{err}");
    let (code, err) = check_config_with_tenant("teryt = \"0201011\"\nname = \"B\"\n[radix]\ndirectory = \"in\"\n[radix.booking]\nformat = \"elixir0\"\ncollection_account = \"61109010140000071219812875\"\n");
    assert_eq!(code, Some(78));
    assert!(err.contains("radix.booking.collection_account"), "{err}");
    // ePUAP: a certificate file that is not there is named with its key.
    let (code, err) = check_config_with_tenant("teryt = \"0201011\"\nname = \"B\"\n[epuap]\npull_url = \"https://ws.epuap.gov.pl/pk_external_ws/services/pull\"\npodmiot = \"ugb\"\nboxes = [\"skrytka\"]\ncertificate = { file = \"/nonexistent/ugb.crt\" }\nprivate_key = { value = \"x\" }\n");
    assert_eq!(code, Some(78));
    assert!(
        err.contains("epuap.certificate") && err.contains("/nonexistent/ugb.crt"),
        "{err}"
    );
    // And a good one passes.
    let (code, err) = check_config_with_tenant("teryt = \"0201011\"\nname = \"B\"\n");
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_example_configuration_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = gsko()
        .arg("check-config")
        .arg(root.join("config/example/gsko.toml"))
        .env("GSKO_DATABASE_URL", "postgres://gsko@localhost/gsko")
        .env("GSKO_AMQP_URL", "amqp://localhost")
        .env("GSKO_ADMIN_KEY", "x")
        .env("GSKO_0201011_P24_API_KEY", "x")
        .env("GSKO_0201011_P24_CRC", "x")
        .env("GSKO_0201011_PAYU_CLIENT_SECRET", "x")
        .env("GSKO_0201011_PAYU_SECOND_KEY", "x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn inspect_radix_prints_one_cloudevent_per_line_and_touches_nothing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = root.join("schemas/radix/example-full-v1.xml");
    let before = std::fs::read(&example).unwrap();
    let out = gsko()
        .args(["inspect", "radix"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"pl.gsko.taxpayer.upserted.v1")
            && types.contains(&"pl.gsko.liability.upserted.v1"),
        "{types:?}"
    );
    assert!(lines
        .iter()
        .all(|e| e["specversion"] == "1.0" && e["tenant"] == "1465011"));
    assert_eq!(std::fs::read(&example).unwrap(), before);
    assert!(example.exists());
}

/// Polls `url` for Jan until `done` accepts the 200 answer or `within` passes.
fn poll_demo(
    url: &str,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + within;
    loop {
        let (s, body) =
            get(url, Some("demo-portal-key"), Some("78031501236")).map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        if s == 200 && done(&v) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("{url}: {s}: {body}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn demo_answers_a_query_for_a_demo_resident_and_shows_his_ezd_case() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = gsko()
        .args([
            "demo",
            "--taxpayers",
            "100",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--dir",
        ])
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("GSKO demo is ready") {
                tx.send(()).ok();
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(240));
    let result = (|| {
        ready.map_err(|_| "demo did not become ready".to_owned())?;
        let summary = poll_demo(
            &format!("http://127.0.0.1:{port}/v1/resident/summary"),
            Duration::from_secs(5),
            |v| v["tenants"].as_array().map_or(0, |t| t.len()) == 2,
        )?;
        // His letters are pulled every 10 s and registered in the demo EZD; the clerk's first
        // step comes 20 s after the start, so a minute sees the case move.
        let cases = poll_demo(
            &format!("http://127.0.0.1:{port}/v1/tenants/0201011/resident/cases"),
            Duration::from_secs(90),
            |v| {
                v["cases"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["timeline"].as_array().is_some_and(|t| t.len() >= 3))
                })
            },
        )?;
        Ok::<_, String>((summary, cases))
    })();
    drop(child.kill());
    drop(child.wait());
    let (summary, cases) = result.unwrap();
    assert!(summary["tenants"][0]["accounts"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    let case = cases["cases"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["timeline"].as_array().is_some_and(|t| t.len() >= 3))
        })
        .expect("the case polled for");
    let znak = case["case_ref"].as_str().unwrap_or_default();
    assert!(
        znak.starts_with("FN.3120.") && znak.ends_with(".2026"),
        "a znak sprawy in JRWA class 3120: {case}"
    );
    let timeline: Vec<&str> = case["timeline"]
        .as_array()
        .map(|t| t.iter().filter_map(|e| e["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        timeline.first().copied(),
        Some("registered"),
        "the timeline starts at registration: {case}"
    );
    assert!(
        timeline.len() >= 3,
        "the clerk moved the case: {timeline:?}"
    );
    assert!(
        case["letters"].as_array().is_some_and(|l| !l.is_empty()),
        "the case lists the letter it came from: {case}"
    );
}

#[test]
fn inspect_statement_prints_the_payments_of_an_mt940_file_in_its_charset() {
    let d = tempfile::tempdir().unwrap();
    let mut spec = gsko_sim::bank::BankSimSpec::new(5, gsko_sim::bank::BankProfile::PkoBp);
    spec.charset = gsko_sim::bank::SimCharset::Cp852;
    let file = d.path().join("wyciag.sta");
    let mut out = std::fs::File::create(&file).unwrap();
    let summary = gsko_sim::bank::write_statements(&spec, &mut out).unwrap();
    drop(out);
    let before = std::fs::read(&file).unwrap();

    let out = gsko()
        .args(["inspect", "statement", "--charset", "cp852"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statements = lines.iter().filter(|l| l["kind"] == "statement").count();
    let entries = lines
        .iter()
        .filter(|l| l["kind"] == "payment" || l["kind"] == "debit")
        .count() as u64;
    assert_eq!(statements, summary.statement_references.len());
    assert_eq!(entries, summary.entries_written);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "inspect touches nothing"
    );

    // Read in the wrong charset, the same file is refused line by line, not garbled silently.
    let out = gsko()
        .args(["inspect", "statement"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"kind\":\"error\""));
}

#[test]
fn inspect_epuap_prints_the_letter_and_its_problems_touching_nothing() {
    let d = tempfile::tempdir().unwrap();
    let date = gsko_sim::SimDate::new(2026, 11, 20).unwrap();
    let spec =
        gsko_sim::epuap::LetterSpec::new("Urząd Miasta Bolesławiec", "Bolesławiec", "59-700", date);
    let letter = gsko_sim::epuap::generate_letter(7, &spec);
    let file = d.path().join("pismo.xml");
    std::fs::write(&file, &letter.xml).unwrap();

    let out = gsko()
        .args(["inspect", "epuap"])
        .arg(&file)
        .output()
        .unwrap();
    // The generated letter is unsigned: printed in full, the problem named, exit code 2.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["document"]["title"], letter.title.as_str());
    assert_eq!(v["document"]["senders"][0]["pesel"], letter.pesel.as_str());
    assert_eq!(v["signature"]["status"], "absent");
    assert_eq!(
        v["document"]["attachments"].as_array().unwrap().len(),
        letter.attachments.len()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not signed"));
    assert_eq!(std::fs::read(&file).unwrap(), letter.xml);

    // Not XML at all: a clear error with the place, exit code 1.
    std::fs::write(&file, "<a>\n<b></a>").unwrap();
    let out = gsko()
        .args(["inspect", "epuap"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pismo.xml") && err.contains("line 2"), "{err}");
}
