//! Crash safety: a daemon killed with SIGKILL in the middle of a large import, and a RabbitMQ
//! restarted in the middle of one, both end with the same view as a clean import — nothing lost,
//! nothing doubled.

mod common;

use common::*;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// These tests restart shared services and load both cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const T: (&str, &str) = ("0201043", "Nowogrodziec");
const TAXPAYERS: usize = 4000;

fn sql(env: &Env, q: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-At", &env.db_url, "-c", q])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A digest of every row of the view (ordered by key), without timestamps of arrival.
fn fingerprint(env: &Env) -> String {
    let tables = [
        (
            "taxpayers",
            "taxpayer_id",
            "source_version::text || payload::text",
        ),
        (
            "accounts",
            "account_id",
            "source_version::text || payload::text",
        ),
        (
            "account_holders",
            "account_id, taxpayer_id",
            "account_id || taxpayer_id || role",
        ),
        (
            "liabilities",
            "liability_id",
            "source_version::text || payload::text",
        ),
        (
            "postings",
            "posting_id",
            "source_version::text || payload::text",
        ),
        (
            "balances",
            "account_id",
            "source_version::text || payload::text",
        ),
        ("rejected_records", "file_sha256, line", "record::text"),
    ];
    tables
        .iter()
        .map(|(t, key, expr)| {
            let n = sql(env, &format!("SELECT count(*) FROM {t}"));
            let h = sql(env, &format!("SELECT coalesce(md5(string_agg(tenant || {expr}, ',' ORDER BY tenant, {key})), '') FROM {t}"));
            format!("{t}:{n}:{h}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn queue_depth(env: &Env) -> u64 {
    let out = Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "-p", &env.vhost, "name", "messages"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("gsko."))
        .filter_map(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

/// Waits until the import is recorded, the queues are empty and the view stops changing.
fn settle(env: &Env, d: &Daemon) -> String {
    d.wait_imports(T.0, 1, Duration::from_secs(300));
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = String::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "the view did not settle; daemon log:\n{}",
            env.logs()
        );
        if queue_depth(env) == 0 {
            let f = fingerprint(env);
            if f == last {
                return f;
            }
            last = f;
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
}

fn clean_import(file: &std::path::Path) -> String {
    let env = Env::new();
    env.write_config(&[T], &[("admin", ADMIN_KEY, &["*"], true)]);
    std::fs::copy(file, env.inbox(T.0).join(file.file_name().unwrap())).unwrap();
    let d = env.spawn();
    settle(&env, &d)
}

/// Waits until the projector has written some, but not all, of the postings.
fn wait_mid_import(env: &Env) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n: u64 = sql(env, "SELECT count(*) FROM postings")
            .parse()
            .unwrap_or(0);
        if n > 500 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "import did not start; log:\n{}",
            env.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_mid_import_then_restart_equals_a_clean_import() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    env.write_config(&[T], &[("admin", ADMIN_KEY, &["*"], true)]);
    let file = export(&env.inbox(T.0), T.0, TAXPAYERS, 77, Vec::new());
    let keep = env.path().join("copy.xml");
    std::fs::copy(&file, &keep).unwrap();

    let mut d = env.spawn();
    wait_mid_import(&env);
    d.kill9();
    let partial: u64 = sql(&env, "SELECT count(*) FROM postings").parse().unwrap();
    assert!(
        file.exists(),
        "the export stays in the inbox until all its events are confirmed"
    );

    let d = env.spawn();
    let after_crash = settle(&env, &d);
    drop(d);
    let clean = clean_import(&keep);
    assert_eq!(
        after_crash, clean,
        "view after SIGKILL at {partial} postings differs from a clean import"
    );
}

#[test]
fn rabbitmq_restart_mid_import_equals_a_clean_import() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    env.write_config(&[T], &[("admin", ADMIN_KEY, &["*"], true)]);
    let file = export(&env.inbox(T.0), T.0, TAXPAYERS, 78, Vec::new());
    let keep = env.path().join("copy.xml");
    std::fs::copy(&file, &keep).unwrap();

    let d = env.spawn();
    wait_mid_import(&env);
    for args in [["stop_app"], ["start_app"]] {
        let s = Command::new("rabbitmqctl").args(args).status().unwrap();
        assert!(s.success(), "rabbitmqctl {args:?}");
    }
    let after_restart = settle(&env, &d);
    drop(d);
    let clean = clean_import(&keep);
    assert_eq!(
        after_restart, clean,
        "view after a broker restart differs from a clean import"
    );
}
