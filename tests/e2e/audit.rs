//! The audit log end to end, production mode: a portal's reads of a resident's data are
//! audited by the running daemon; `gsko audit verify` finds the chain intact, then detects a
//! modified row and a deleted row (exit code 1, one line naming each).
//!
//! `cargo test -p gsko --test e2e_audit`

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const T: (&str, &str) = ("0201011", "Bolesławiec");
const JAN: &str = "78031501236";

fn in_db(env: &Env, sql: &str) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &env.db_url, "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verify(env: &Env) -> (bool, String) {
    let out = gsko()
        .args(["audit", "verify", "--config"])
        .arg(env.path().join("gsko.toml"))
        .env("GSKO_TEST_DB", &env.db_url)
        .env("GSKO_TEST_AMQP", &env.amqp_url)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn reads_are_audited_and_verify_detects_a_modified_and_a_deleted_row() {
    let env = Env::new();
    env.write_config(&[T], &[("portal", PORTAL_KEY, &["*"], false)]);
    let mut d = env.spawn();
    for _ in 0..5 {
        let (s, _) = d.get(
            &format!("/v1/tenants/{}/resident/letters", T.0),
            Some(PORTAL_KEY),
            Some(JAN),
        );
        assert_eq!(s, 200);
    }
    let (s, _) = d.get(
        &format!("/v1/tenants/{}/resident/letters", T.0),
        Some("not-a-key"),
        Some(JAN),
    );
    assert_eq!(s, 401, "a refusal is audited too");
    std::thread::sleep(Duration::from_millis(200));
    d.stop();

    let (ok, text) = verify(&env);
    assert!(ok, "{text}");
    assert!(text.contains("intact: 6 rows"), "{text}");

    in_db(
        &env,
        "UPDATE audit_log SET resident_pesel = '81072204569' WHERE seq = 3",
    );
    let (ok, text) = verify(&env);
    assert!(!ok);
    assert!(text.contains("audit row 3 was modified"), "{text}");

    in_db(
        &env,
        "UPDATE audit_log SET resident_pesel = '78031501236' WHERE seq = 3",
    );
    in_db(&env, "DELETE FROM audit_log WHERE seq = 5");
    let (ok, text) = verify(&env);
    assert!(!ok);
    assert!(text.contains("audit row 5 is missing"), "{text}");
}
