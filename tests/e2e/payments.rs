//! End to end, production mode (PostgreSQL + RabbitMQ): a resident pays two installments
//! through the Przelewy24 simulator and one through the PayU simulator; the notifications
//! arrive (one of them twice); the view shows the payments received; the ledger's booking
//! directory holds each payment exactly once; the ledger's next export confirms them and the
//! view shows them booked with the balance reduced.
//!
//! `cargo test -p gsko --test e2e_payments`

mod common;

use common::*;
use gsko_sim::DemoResident;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const A: (&str, &str) = ("0201011", "Bolesławiec");
const JAN: &str = "78031501236";
const LIABILITY: &str = "L-2026-PROP-D0001";

struct Sims {
    rt: tokio::runtime::Runtime,
    p24: gsko_sim::przelewy24::P24SimHandle,
    payu: gsko_sim::payu::PayuSimHandle,
}

fn start_sims() -> Sims {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut p24_cfg =
        gsko_sim::przelewy24::SimConfig::new(41_001, 41_001, "p24-api-key", "p24-crc");
    // Retries of unanswered notifications within a test's patience (3 min → 36 ms).
    p24_cfg.time_scale = 0.0002;
    let p24 = rt
        .block_on(gsko_sim::przelewy24::P24Sim::start(p24_cfg))
        .unwrap();
    let mut payu_cfg =
        gsko_sim::payu::SimConfig::new("145227", "145227", "payu-secret", "payu-second-key");
    payu_cfg.minute = Duration::from_millis(50);
    let payu = rt
        .block_on(gsko_sim::payu::PayuSim::start(payu_cfg))
        .unwrap();
    Sims { rt, p24, payu }
}

/// Adds the payment settings to the tenant file `write_config` wrote.
fn add_payments(env: &Env, teryt: &str, sims: &Sims) {
    let file = env.path().join("tenants").join(format!("{teryt}.toml"));
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&format!(
        r#"
[payments]
return_url = "https://portal.example.pl/platnosci/wynik"

[payments.merchants.taxes]
levies = ["property", "agricultural", "forest", "joint", "vehicle"]

[payments.merchants.taxes.przelewy24]
url = "{p24}"
merchant_id = 41001
api_key = {{ value = "p24-api-key" }}
crc = {{ value = "p24-crc" }}
timeout_secs = 5

[payments.merchants.taxes.payu]
url = "{payu}"
pos_id = "145227"
client_secret = {{ value = "payu-secret" }}
second_key = {{ value = "payu-second-key" }}
timeout_secs = 5
"#,
        p24 = sims.p24.base_url,
        payu = sims.payu.base_url,
    ));
    std::fs::write(&file, text).unwrap();
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The files the ledger would read below `dir` (hidden names are writers' temporary files).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else if !e.file_name().to_string_lossy().starts_with('.') {
                out.push(p);
            }
        }
    }
    out
}

/// The ledger's principal on Jan's property account, once the view has a balance for it that
/// satisfies `ready` (the projector may still be applying an import's last events).
fn principal(d: &Daemon, ready: impl Fn(i64) -> bool) -> i64 {
    let of = |v: &serde_json::Value| {
        v["balances"]
            .as_array()?
            .iter()
            .find(|b| b["account_id"] == "A-PROP-D0001")?["principal"]
            .as_i64()
    };
    let v = d.get_when(
        &format!("/v1/tenants/{}/resident/balance", A.0),
        Some(PORTAL_KEY),
        Some(JAN),
        Duration::from_secs(30),
        |v| of(v).is_some_and(&ready),
    );
    of(&v).unwrap()
}

#[test]
fn a_resident_pays_through_both_gateways_and_the_ledger_books_each_payment_once() {
    let sims = start_sims();
    let env = Env::new();
    env.write_config(
        &[A],
        &[
            ("portal", PORTAL_KEY, &["*"], false),
            ("admin", ADMIN_KEY, &["*"], true),
        ],
    );
    add_payments(&env, A.0, &sims);
    export(
        &env.inbox(A.0),
        A.0,
        40,
        31,
        vec![DemoResident::owner(JAN, "Jan Kowalski", "jan")],
    );
    let d = env.spawn();
    d.wait_imports(A.0, 1, Duration::from_secs(120));
    let principal_before = principal(&d, |_| true);

    // Two installments through Przelewy24: one basket, one order.
    let orders = format!("/v1/tenants/{}/resident/payment-orders", A.0);
    let p24_basket = json!({
        "items": [
            {"liability_id": LIABILITY, "installment": 2},
            {"liability_id": LIABILITY, "installment": 3}
        ],
        "gateway": "przelewy24",
        "email": "jan@example.pl"
    });
    let key = [("Idempotency-Key", "basket-p24-0001")];
    let (s, first) = d.send(
        "POST",
        &orders,
        Some(PORTAL_KEY),
        Some(JAN),
        &key,
        Some(&p24_basket),
    );
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["orders"].as_array().unwrap().len(), 1, "{first}");
    let p24_order = &first["orders"][0];
    assert_eq!(p24_order["status"], "registered", "{first}");
    let redirect = p24_order["redirect_url"].as_str().unwrap().to_owned();
    assert!(redirect.starts_with(&sims.p24.base_url), "{redirect}");
    // The same request again (a portal retry) is the same basket; P24 saw one registration.
    let (s, again) = d.send(
        "POST",
        &orders,
        Some(PORTAL_KEY),
        Some(JAN),
        &key,
        Some(&p24_basket),
    );
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["basket_id"], first["basket_id"]);
    assert_eq!(
        again["orders"][0]["redirect_url"],
        p24_order["redirect_url"]
    );
    let p24_session = p24_order["order_id"].as_str().unwrap().to_owned();
    assert_eq!(sims.p24.transactions_for_session(&p24_session).len(), 1);
    // The same key with another basket is refused, not silently answered.
    let other = json!({"items": [{"liability_id": LIABILITY, "installment": 4}], "gateway": "przelewy24", "email": "jan@example.pl"});
    let (s, v) = d.send(
        "POST",
        &orders,
        Some(PORTAL_KEY),
        Some(JAN),
        &key,
        Some(&other),
    );
    assert_eq!(
        (s, v["error"].as_str()),
        (409, Some("idempotency_key_reused")),
        "{v}"
    );

    // One installment through PayU.
    let payu_basket = json!({
        "items": [{"liability_id": LIABILITY, "installment": 4}],
        "gateway": "payu",
        "email": "jan@example.pl",
        "customer_ip": "192.0.2.10"
    });
    let (s, payu_answer) = d.send(
        "POST",
        &orders,
        Some(PORTAL_KEY),
        Some(JAN),
        &[("Idempotency-Key", "basket-payu-0001")],
        Some(&payu_basket),
    );
    assert_eq!(s, 201, "{payu_answer}");
    let payu_session = payu_answer["orders"][0]["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payu_order_id = sims
        .payu
        .order_id_for(&payu_session)
        .expect("PayU holds the order");

    // The resident pays; P24's notification is delivered twice.
    sims.p24
        .inject_notification_fault(gsko_sim::przelewy24::NotificationFault::Duplicate);
    let token = redirect.rsplit('/').next().unwrap();
    sims.p24.pay(token).unwrap();
    sims.rt.block_on(sims.payu.pay(&payu_order_id)).unwrap();

    let payments_path = format!("/v1/tenants/{}/resident/payments", A.0);
    let payments = wait_for("two payments received", Duration::from_secs(60), || {
        let (s, v) = d.get(&payments_path, Some(PORTAL_KEY), Some(JAN));
        (s == 200 && v["payments"].as_array().map_or(0, |a| a.len()) == 2).then_some(v)
    });
    for p in payments["payments"].as_array().unwrap() {
        assert_eq!(p["status"], "received", "{p}");
    }
    let p24_payment = format!("p24-{p24_session}");
    let payu_payment = format!("payu-{payu_session}");
    let ids: Vec<&str> = payments["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["payment"]["payment_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&p24_payment.as_str()) && ids.contains(&payu_payment.as_str()),
        "{ids:?}"
    );
    // P24 was told (transaction/verify), so the money is the municipality's, not an advance.
    assert!(
        sims.p24
            .transactions_for_session(&p24_session)
            .iter()
            .all(|t| t.state == gsko_sim::przelewy24::SimTxState::Verified),
        "{:?}",
        sims.p24.transactions_for_session(&p24_session)
    );
    // Received, not booked: nothing more is due on those installments in GSKO's estimate.
    let (s, due) = d.get(
        &format!("/v1/tenants/{}/resident/due", A.0),
        Some(PORTAL_KEY),
        Some(JAN),
    );
    assert_eq!(s, 200);
    assert!(
        !due["installments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["liability_id"] == LIABILITY),
        "{due}"
    );
    // A portal that retries the paid basket with its key gets the basket, not "nothing due".
    let (s, paid_again) = d.send(
        "POST",
        &orders,
        Some(PORTAL_KEY),
        Some(JAN),
        &key,
        Some(&p24_basket),
    );
    assert_eq!(s, 200, "{paid_again}");
    assert_eq!(paid_again["basket_id"], first["basket_id"]);
    assert_eq!(paid_again["orders"][0]["status"], "paid", "{paid_again}");
    // The audit has the duplicate as a replay.
    let (s, audit) = d.get(
        &format!("/v1/tenants/{}/admin/gateway-notifications", A.0),
        Some(ADMIN_KEY),
        None,
    );
    assert_eq!(s, 200, "{audit}");
    let outcomes: Vec<(&str, &str)> = audit["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["gateway"].as_str().unwrap(),
                n["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        outcomes.contains(&("przelewy24", "accepted")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("przelewy24", "replayed")),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&("payu", "accepted")), "{outcomes:?}");

    // The ledger's booking directory holds each payment exactly once.
    let booking = env.radix_dir(A.0).join("booking");
    let files = wait_for("two booking files", Duration::from_secs(30), || {
        let f = files_under(&booking);
        (f.len() >= 2).then_some(f)
    });
    std::thread::sleep(Duration::from_millis(500));
    let texts: Vec<String> = files_under(&booking)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{files:?}");
    for id in [&p24_payment, &payu_payment] {
        let n: usize = texts
            .iter()
            .map(|t| t.matches(&format!("\"{id}\"")).count())
            .sum();
        assert_eq!(n, 1, "payment {id} in the booking files {n} times");
    }

    // The ledger books them and its next export confirms it.
    let previous = files_under(&env.radix_dir(A.0).join("processed"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "xml"))
        .expect("the first export was moved to processed/");
    let staging = env.path().join("ledger-out.xml");
    let report = gsko_sim::ledger::LedgerSim::book(&previous, &booking, &staging).unwrap();
    assert_eq!(report.booked.len(), 2, "{report:?}");
    std::fs::rename(&staging, env.inbox(A.0).join("radix-incremental-2.xml")).unwrap();
    d.wait_imports(A.0, 2, Duration::from_secs(60));
    let booked = wait_for("both payments booked", Duration::from_secs(30), || {
        let (_, v) = d.get(&payments_path, Some(PORTAL_KEY), Some(JAN));
        v["payments"]
            .as_array()
            .filter(|a| a.len() == 2 && a.iter().all(|p| p["status"] == "booked"))
            .map(|_| v.clone())
    });
    let paid: i64 = booked["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["payment"]["amount"].as_i64().unwrap())
        .sum();
    let principal_after = principal(&d, |p| p < principal_before);
    assert!(
        principal_after < principal_before,
        "{principal_before} → {principal_after}"
    );
    assert!(principal_before - principal_after <= paid);
}

/// Kills the daemon (SIGKILL) twice while six payments are being notified, settled, relayed and
/// booked; after the restarts every payment is received once and in the ledger's files once.
#[test]
fn killing_the_daemon_while_payments_settle_loses_and_duplicates_nothing() {
    const ANNA: &str = "81072204569";
    let mut sims = start_sims();
    // Unanswered notifications are retried for about a minute and a half (P24's schedule,
    // scaled), so a daemon that is down for a while still gets them.
    drop(sims.p24);
    let mut p24_cfg =
        gsko_sim::przelewy24::SimConfig::new(41_001, 41_001, "p24-api-key", "p24-crc");
    p24_cfg.time_scale = 0.002;
    sims.p24 = sims
        .rt
        .block_on(gsko_sim::przelewy24::P24Sim::start(p24_cfg))
        .unwrap();
    let env = Env::new();
    env.write_config(
        &[A],
        &[
            ("portal", PORTAL_KEY, &["*"], false),
            ("admin", ADMIN_KEY, &["*"], true),
        ],
    );
    add_payments(&env, A.0, &sims);
    export(
        &env.inbox(A.0),
        A.0,
        40,
        32,
        vec![
            DemoResident::owner(JAN, "Jan Kowalski", "jan"),
            DemoResident::owner(ANNA, "Anna Nowak", "anna"),
        ],
    );
    let mut d = env.spawn();
    d.wait_imports(A.0, 1, Duration::from_secs(120));

    // Six one-installment baskets: installments 2–4 of Jan's and of Anna's property tax.
    let orders = format!("/v1/tenants/{}/resident/payment-orders", A.0);
    let mut tokens = Vec::new();
    let mut payment_ids = Vec::new();
    for (pesel, liability) in [(JAN, "L-2026-PROP-D0001"), (ANNA, "L-2026-PROP-D0002")] {
        for seq in 2..=4 {
            let key = format!("crash-{pesel}-{seq}");
            let body = json!({
                "items": [{"liability_id": liability, "installment": seq}],
                "gateway": "przelewy24",
                "email": "payer@example.pl"
            });
            let (s, v) = d.send(
                "POST",
                &orders,
                Some(PORTAL_KEY),
                Some(pesel),
                &[("Idempotency-Key", key.as_str())],
                Some(&body),
            );
            assert_eq!(s, 201, "{v}");
            let o = &v["orders"][0];
            tokens.push(
                o["redirect_url"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
            payment_ids.push(format!("p24-{}", o["order_id"].as_str().unwrap()));
        }
    }

    // Pay all six, kill the daemon while it handles them, restart, pay nothing more, kill
    // again shortly after the restart, restart again.
    for t in &tokens {
        sims.p24.pay(t).unwrap();
    }
    std::thread::sleep(Duration::from_millis(60));
    d.kill9();
    d = env.spawn();
    std::thread::sleep(Duration::from_millis(150));
    d.kill9();
    d = env.spawn();

    let payments_path = format!("/v1/tenants/{}/resident/payments", A.0);
    for pesel in [JAN, ANNA] {
        wait_for(
            "three payments per resident",
            Duration::from_secs(120),
            || {
                let (s, v) = d.get(&payments_path, Some(PORTAL_KEY), Some(pesel));
                (s == 200 && v["payments"].as_array().map_or(0, |a| a.len()) == 3).then_some(())
            },
        );
    }
    let booking = env.radix_dir(A.0).join("booking");
    wait_for("six booking files", Duration::from_secs(60), || {
        (files_under(&booking).len() >= 6).then_some(())
    });
    std::thread::sleep(Duration::from_millis(800));
    let texts: Vec<String> = files_under(&booking)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(texts.len(), 6);
    for id in &payment_ids {
        let n: usize = texts
            .iter()
            .map(|t| t.matches(&format!("\"{id}\"")).count())
            .sum();
        assert_eq!(n, 1, "payment {id} in the booking files {n} times");
    }
    // Each P24 transaction verified once, and each session registered once.
    for id in &payment_ids {
        let session = id.trim_start_matches("p24-");
        let txs = sims.p24.transactions_for_session(session);
        assert_eq!(txs.len(), 1, "{session}");
        assert_eq!(txs[0].state, gsko_sim::przelewy24::SimTxState::Verified);
    }
    d.stop();
}
