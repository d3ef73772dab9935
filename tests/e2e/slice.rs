//! The first vertical slice end to end: RADIX export files → `gsko run` (RabbitMQ + PostgreSQL)
//! → query API, as a portal vendor and an admin see it.

mod common;

use common::*;
use gsko_sim::DemoResident;
use std::time::Duration;

const A: (&str, &str) = ("0201011", "Bolesławiec");
const B: (&str, &str) = ("0201032", "Gromadka");
const JAN: &str = "78031501236";
const ANNA: &str = "81072204569";
const PIOTR: &str = "83110907816";

#[test]
fn export_reaches_the_query_api_and_each_key_sees_only_its_tenants() {
    let env = Env::new();
    env.write_config(
        &[A, B],
        &[
            ("all", PORTAL_KEY, &["*"], false),
            ("only-a", "key-a", &[A.0], false),
            ("admin", ADMIN_KEY, &["*"], true),
        ],
    );
    export(
        &env.inbox(A.0),
        A.0,
        150,
        11,
        vec![DemoResident::owner(JAN, "Jan Kowalski", "jan-a")],
    );
    export(
        &env.inbox(B.0),
        B.0,
        150,
        12,
        vec![
            DemoResident::owner(JAN, "Jan Kowalski", "jan-b"),
            DemoResident::owner(ANNA, "Anna Nowak", "nowak"),
            DemoResident::co_owner(PIOTR, "Piotr Nowak", "nowak"),
        ],
    );
    let d = env.spawn();
    d.wait_imports(A.0, 1, Duration::from_secs(120));
    d.wait_imports(B.0, 1, Duration::from_secs(120));

    // A resident with property in two municipalities sees both where the key allows both…
    let v = d.get_when(
        "/v1/resident/summary",
        Some(PORTAL_KEY),
        Some(JAN),
        Duration::from_secs(30),
        |v| v["tenants"].as_array().is_some_and(|t| t.len() == 2),
    );
    let mut tenants: Vec<&str> = v["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    tenants.sort();
    assert_eq!(tenants, vec![A.0, B.0]);
    // …and only A through a key scoped to A.
    let (s, v) = d.get("/v1/resident/summary", Some("key-a"), Some(JAN));
    assert_eq!(s, 200);
    let tenants: Vec<&str> = v["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, vec![A.0]);
    // A foreign tenant answers exactly like an unknown resident: 404, nothing revealed.
    let (s, v) = d.get(
        &format!("/v1/tenants/{}/resident/summary", B.0),
        Some("key-a"),
        Some(JAN),
    );
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")));
    let (s, _) = d.get(
        &format!("/v1/tenants/{}/resident/liabilities", B.0),
        Some("key-a"),
        Some(ANNA),
    );
    assert_eq!(s, 404);

    // Jan's liabilities in A carry installments on the statutory dates.
    let (s, v) = d.get(
        &format!("/v1/tenants/{}/resident/liabilities", A.0),
        Some(PORTAL_KEY),
        Some(JAN),
    );
    assert_eq!(s, 200, "{v}");
    let liabilities = v["liabilities"].as_array().unwrap();
    let property = liabilities
        .iter()
        .find(|l| l["levy"] == "property")
        .expect("a property tax liability");
    let dues: Vec<&str> = property["installments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["due_date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dues,
        vec!["2026-03-15", "2026-05-15", "2026-09-15", "2026-11-15"]
    );
    let sum: i64 = property["installments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(
        sum,
        property["total"].as_i64().unwrap(),
        "installments add up to the total, in grosze"
    );

    // Co-owners both see the shared account, each with their own role.
    for (pesel, role) in [(ANNA, "owner"), (PIOTR, "co_owner")] {
        let (s, v) = d.get(
            &format!("/v1/tenants/{}/resident/summary", B.0),
            Some(PORTAL_KEY),
            Some(pesel),
        );
        assert_eq!(s, 200, "{v}");
        let shared = v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["holders"].as_array().unwrap().len() == 2)
            .unwrap_or_else(|| panic!("shared account in {v}"));
        assert_eq!(shared["role"], role);
        let holders: Vec<&str> = shared["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert!(
            holders.contains(&"Anna Nowak") && holders.contains(&"Piotr Nowak"),
            "{holders:?}"
        );
    }

    // Balance and ledger answer for the same resident.
    let (s, v) = d.get(
        &format!("/v1/tenants/{}/resident/balance", A.0),
        Some(PORTAL_KEY),
        Some(JAN),
    );
    assert_eq!(s, 200, "{v}");
    assert!(!v["balances"].as_array().unwrap().is_empty());
    let (s, v) = d.get(
        &format!("/v1/tenants/{}/resident/ledger", A.0),
        Some(PORTAL_KEY),
        Some(JAN),
    );
    assert_eq!(s, 200, "{v}");
    assert!(v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| !a["postings"].as_array().unwrap().is_empty()));

    // Callers get precise errors.
    assert_eq!(d.get("/v1/resident/summary", None, Some(JAN)).0, 401);
    assert_eq!(
        d.get("/v1/resident/summary", Some("wrong"), Some(JAN)).0,
        401
    );
    let (s, v) = d.get("/v1/resident/summary", Some(PORTAL_KEY), None);
    assert_eq!((s, v["error"].as_str()), (400, Some("missing_resident")));
    let (s, v) = d.get(
        "/v1/resident/summary",
        Some(PORTAL_KEY),
        Some("78031501237"),
    );
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("checksum"), "{v}");
    assert_eq!(
        d.get(
            &format!("/v1/tenants/{}/admin/imports", A.0),
            Some(PORTAL_KEY),
            None
        )
        .0,
        403
    );

    // Files leave the inbox only once imported.
    for t in [A.0, B.0] {
        let processed = std::fs::read_dir(env.radix_dir(t).join("processed"))
            .unwrap()
            .count();
        assert!(processed >= 1, "tenant {t}: the export moved to processed/");
    }
    let logs = env.logs();
    for secret in [JAN, ANNA, PIOTR, "Kowalski", "Nowak"] {
        assert!(
            !logs.contains(secret),
            "the daemon's log must not contain personal data ({secret})"
        );
    }
}

/// A hand-written export with one good record of each kind and bad ones between them.
const BAD_EXPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<radix-export xmlns="urn:gsko:radix-export:1" format-version="1" tenant="0201011" kind="incremental" generated-at="2026-03-02T02:00:00Z" export-id="bad-1">
  <taxpayers>
    <taxpayer id="GOOD-1" version="1" kind="natural">
      <pesel>44051401359</pesel>
      <name>Jan Dobry</name>
    </taxpayer>
    <taxpayer id="BAD-PESEL" version="1" kind="natural">
      <pesel>44051401358</pesel>
      <name>Zły Numer</name>
    </taxpayer>
  </taxpayers>
  <accounts>
    <account id="ACC-GOOD" version="1" levy="property">
      <holder taxpayer="GOOD-1" role="owner"/>
    </account>
    <account id="ACC-BAD-LEVY" version="1" levy="church_tax">
      <holder taxpayer="GOOD-1" role="owner"/>
    </account>
  </accounts>
  <liabilities>
    <liability id="L-GOOD" version="1" account="ACC-GOOD" levy="property" year="2026" total="400.00">
      <installment seq="1" due-date="2026-03-15" amount="100.00"/>
      <installment seq="2" due-date="2026-05-15" amount="100.00"/>
      <installment seq="3" due-date="2026-09-15" amount="100.00"/>
      <installment seq="4" due-date="2026-11-15" amount="100.00"/>
    </liability>
  </liabilities>
  <postings>
    <posting id="P-NEG" version="1" account="ACC-GOOD" kind="payment" value-date="2026-03-10" amount="-5.00"/>
    <posting id="P-GOOD" version="1" account="ACC-GOOD" kind="payment" value-date="2026-03-10" amount="100.00" liability="L-GOOD" installment="1"/>
  </postings>
  <balances>
    <balance account="ACC-GOOD" version="1" as-of="2026-03-11" principal="300.00" interest="0.00" costs="0.00" overpayment="0.00"/>
  </balances>
</radix-export>
"#;

#[test]
fn bad_records_are_reported_with_their_place_and_the_good_ones_arrive() {
    let env = Env::new();
    env.write_config(
        &[A],
        &[
            ("all", PORTAL_KEY, &["*"], false),
            ("admin", ADMIN_KEY, &["*"], true),
        ],
    );
    std::fs::write(env.inbox(A.0).join("radix-bad.xml"), BAD_EXPORT).unwrap();
    let d = env.spawn();
    d.wait_imports(A.0, 1, Duration::from_secs(60));

    let v = d.get_when(
        &format!("/v1/tenants/{}/admin/rejected-records", A.0),
        Some(ADMIN_KEY),
        None,
        Duration::from_secs(30),
        |v| {
            v["records"].as_array().is_some_and(|r| {
                ["BAD-PESEL", "ACC-BAD-LEVY", "P-NEG"]
                    .iter()
                    .all(|id| r.iter().any(|x| x["record"]["record_id"] == *id))
            })
        },
    );
    let records = v["records"].as_array().unwrap();
    let find = |id: &str| {
        records
            .iter()
            .map(|r| &r["record"])
            .find(|r| r["record_id"] == id)
            .unwrap_or_else(|| panic!("{id} reported in {v}"))
            .clone()
    };
    let pesel = find("BAD-PESEL");
    assert_eq!(
        (pesel["line"].as_u64(), pesel["file"].as_str()),
        (Some(8), Some("radix-bad.xml"))
    );
    assert_eq!(pesel["field"], "pesel");
    assert!(
        pesel["reason"].as_str().unwrap().contains("checksum"),
        "{pesel}"
    );
    let levy = find("ACC-BAD-LEVY");
    assert_eq!(levy["line"].as_u64(), Some(17));
    assert!(
        levy["reason"].as_str().unwrap().contains("church_tax"),
        "{levy}"
    );
    let neg = find("P-NEG");
    assert_eq!(neg["line"].as_u64(), Some(30));
    assert_eq!(neg["field"], "amount");
    assert!(
        neg["reason"].as_str().unwrap().contains("negative"),
        "{neg}"
    );
    assert!(
        neg["raw"].as_str().unwrap().contains("P-NEG"),
        "the raw record is kept for the admin"
    );

    // The good records arrived.
    let v = d.get_when(
        &format!("/v1/tenants/{}/resident/ledger", A.0),
        Some(PORTAL_KEY),
        Some("44051401359"),
        Duration::from_secs(30),
        |v| {
            v["accounts"][0]["postings"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        },
    );
    let postings = v["accounts"][0]["postings"].as_array().unwrap();
    assert_eq!(postings.len(), 1);
    assert_eq!(postings[0]["posting_id"], "P-GOOD");
    assert_eq!(postings[0]["amount"], 10000);
    let (_, v) = d.get(
        &format!("/v1/tenants/{}/resident/summary", A.0),
        Some(PORTAL_KEY),
        Some("44051401359"),
    );
    assert_eq!(v["totals"]["principal"], 30000, "{v}");

    // The admin also finds the errors next to the file.
    let failed = env.radix_dir(A.0).join("failed");
    let errors: Vec<_> = std::fs::read_dir(&failed)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".errors.jsonl"))
        .collect();
    assert_eq!(errors.len(), 1, "one errors file in failed/");
    assert_eq!(
        std::fs::read_to_string(errors[0].path())
            .unwrap()
            .lines()
            .count(),
        3
    );
}

/// Serves `body` to every GET on a loopback port, for at most `max` requests.
fn serve_file(body: Vec<u8>, max: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            drop(s.read(&mut buf));
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            drop(s.write_all(head.as_bytes()));
            drop(s.write_all(&body));
        }
    });
    port
}

#[test]
fn an_export_published_at_a_url_is_fetched_on_schedule_and_imported_once() {
    let env = Env::new();
    env.write_config(
        &[A],
        &[
            ("all", PORTAL_KEY, &["*"], false),
            ("admin", ADMIN_KEY, &["*"], true),
        ],
    );
    let staging = env.path().join("remote");
    std::fs::create_dir_all(&staging).unwrap();
    let file = export(
        &staging,
        A.0,
        50,
        21,
        vec![DemoResident::owner(JAN, "Jan Kowalski", "jan")],
    );
    let port = serve_file(std::fs::read(&file).unwrap(), 1000);
    let tenant_file = env.path().join("tenants").join(format!("{}.toml", A.0));
    let mut t = std::fs::read_to_string(&tenant_file).unwrap();
    t.push_str(&format!(
        "url = \"http://127.0.0.1:{port}/export/latest.xml\"\n"
    ));
    std::fs::write(&tenant_file, t).unwrap();

    let d = env.spawn();
    d.wait_imports(A.0, 1, Duration::from_secs(60));
    d.get_ok(
        &format!("/v1/tenants/{}/resident/summary", A.0),
        Some(PORTAL_KEY),
        Some(JAN),
        Duration::from_secs(30),
    );
    // The schedule runs every second and fetches the same bytes again: still one import.
    std::thread::sleep(Duration::from_secs(4));
    let (_, v) = d.get(
        &format!("/v1/tenants/{}/admin/imports", A.0),
        Some(ADMIN_KEY),
        None,
    );
    assert_eq!(v["imports"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn a_message_the_projector_cannot_read_is_parked_and_listed_for_the_admin() {
    let env = Env::new();
    env.write_config(&[A], &[("admin", ADMIN_KEY, &["*"], true)]);
    let d = env.spawn();
    // A producer on the events exchange sends something that is not a CloudEvent.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use gsko_bus::Bus;
        // The same retry ladder as the daemon's config (1 s, 2 s): the broker refuses a
        // topology that disagrees with the declared one.
        let topology = gsko_bus::Topology {
            retry_ladder: vec![Duration::from_secs(1), Duration::from_secs(2)],
            ..Default::default()
        };
        let bus = gsko_bus::AmqpBus::connect(&env.amqp_url, topology)
            .await
            .unwrap();
        let bad = gsko_bus::Outgoing {
            exchange: gsko_bus::Exchange::Events,
            routing_key: format!("pl.gsko.liability.upserted.v1.{}", A.0),
            message_id: "not-a-cloudevent-1".into(),
            tenant: A.0.into(),
            content_type: "application/cloudevents+json".into(),
            body: b"{\"specversion\":\"1.0\",\"oops\":".to_vec(),
        };
        bus.publish(&[bad]).await.unwrap();
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let out = gsko()
            .args(["parked", "--config"])
            .arg(env.path().join("gsko.toml"))
            .env("GSKO_TEST_DB", &env.db_url)
            .env("GSKO_TEST_AMQP", &env.amqp_url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("not-a-cloudevent-1") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let line: serde_json::Value = serde_json::from_str(
        listed
            .lines()
            .find(|l| l.contains("not-a-cloudevent-1"))
            .unwrap_or_else(|| panic!("parked message listed: {listed:?}")),
    )
    .unwrap();
    assert_eq!(line["original_queue"], "gsko.projector");
    assert!(line["reason"].as_str().unwrap().contains("JSON"), "{line}");
    assert_eq!(line["tenant"], A.0);
    // The daemon is still healthy.
    assert_eq!(d.get("/readyz", None, None).0, 200);
}
