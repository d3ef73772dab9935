//! The XSD of the export, checked with an independent validator (libxml2's `xmllint`): the
//! example files must validate, and files breaking the enumerations or amount rules must not.
//! Without `xmllint` (Debian package libxml2-utils) the test says so and passes; CI installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/radix")
}

fn xmllint_available() -> bool {
    Command::new("xmllint").arg("--version").output().is_ok()
}

fn validate(file: &Path) -> (bool, String) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schemas().join("radix-export-v1.xsd"))
        .arg(file)
        .output()
        .expect("xmllint runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn examples_validate_against_the_xsd() {
    if !xmllint_available() {
        eprintln!("SKIPPED: xmllint not found (install the Debian package libxml2-utils) — the XSD was not checked");
        return;
    }
    for f in ["example-full-v1.xml", "example-incremental-v1.xml"] {
        let (ok, err) = validate(&schemas().join(f));
        assert!(ok, "{f} does not validate:\n{err}");
    }
}

#[test]
fn the_xsd_refuses_what_the_contract_forbids() {
    if !xmllint_available() {
        eprintln!("SKIPPED: xmllint not found (install the Debian package libxml2-utils) — the XSD was not checked");
        return;
    }
    let example = std::fs::read_to_string(schemas().join("example-full-v1.xml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown levy",
            r#"levy="property">"#,
            r#"levy="church_tax">"#,
        ),
        (
            "negative amount",
            r#"amount="1003.00" liability"#,
            r#"amount="-5.00" liability"#,
        ),
        (
            "comma amount",
            r#"amount="1003.00" liability"#,
            r#"amount="1003,00" liability"#,
        ),
        ("unknown posting kind", r#"kind="charge""#, r#"kind="gift""#),
        (
            "unknown holder role",
            r#"role="co_owner""#,
            r#"role="tenant""#,
        ),
        (
            "unknown export kind",
            r#"kind="full" generated-at"#,
            r#"kind="delta" generated-at"#,
        ),
        (
            "account without holder",
            r#"<holder taxpayer="T000001" role="owner"/>
      <holder taxpayer="T000002" role="co_owner"/>"#,
            "",
        ),
        (
            "duplicate taxpayer id",
            r#"id="T000002""#,
            r#"id="T000001""#,
        ),
    ];
    for (what, from, to) in cases {
        assert!(example.contains(from), "{what}: pattern not in example");
        let path = dir.path().join(format!("{}.xml", what.replace(' ', "-")));
        std::fs::write(&path, example.replacen(from, to, 1)).unwrap();
        let (ok, _) = validate(&path);
        assert!(!ok, "the XSD accepted a file with {what}");
    }
}
