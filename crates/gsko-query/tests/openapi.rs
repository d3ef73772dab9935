//! Keeps `schemas/openapi.yaml` equal to what the service does: the same paths, and every
//! response the service gives — success and error alike — valid against the documented schema
//! for its status code.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::NaiveDate;
use gsko_config::PortalKey;
use gsko_model::*;
use gsko_query::{router, AppState, Registry, OPENAPI_YAML};
use gsko_store::Store;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;
use tower::ServiceExt;

const T1: &str = "0201011";
const T2: &str = "0201032";
const JAN: &str = "78031501236";
const ANNA: &str = "81072204569";
const PIOTR: &str = "83110907816";

fn doc() -> Value {
    let y: serde_yaml::Value = serde_yaml::from_str(OPENAPI_YAML).expect("openapi.yaml parses");
    serde_json::to_value(y).unwrap()
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).unwrap()
}

fn g(x: i64) -> Amount {
    Amount::from_grosze(x).unwrap()
}

fn ev(tenant: &str, version: i64, data: EventData) -> Event {
    Event::new("/test", Teryt::parse(tenant).unwrap(), version, data)
}

fn person(id: &str, pesel: &str, name: &str) -> EventData {
    EventData::TaxpayerUpserted(Taxpayer {
        taxpayer_id: id.into(),
        kind: TaxpayerKind::Natural,
        pesel: Some(Pesel::parse(pesel).unwrap()),
        nip: None,
        regon: None,
        name: name.into(),
        address: Some(Address {
            street: Some("ul. Długa".into()),
            building: Some("1".into()),
            unit: None,
            postal_code: "59-700".into(),
            city: "Bolesławiec".into(),
            simc: None,
            country: "PL".into(),
        }),
        contacts: vec![ContactChannel {
            kind: ContactKind::Email,
            value: "x@example.pl".into(),
        }],
    })
}

fn account(id: &str, holders: &[(&str, HolderRole)], vacc: Option<&str>) -> EventData {
    EventData::TaxAccountUpserted(TaxAccount {
        account_id: id.into(),
        levy: LevyKind::Property,
        holders: holders
            .iter()
            .map(|(t, r)| AccountHolder {
                taxpayer_id: (*t).into(),
                role: *r,
            })
            .collect(),
        virtual_account: vacc.map(|v| Nrb::parse(v).unwrap()),
    })
}

fn liability(id: &str, acc: &str) -> EventData {
    EventData::LiabilityUpserted(Liability {
        liability_id: id.into(),
        account_id: acc.into(),
        levy: LevyKind::Property,
        year: 2026,
        decision: Some(Decision {
            number: "FN.3120.1.2026".into(),
            issued_on: d("2026-02-10"),
            delivered_on: Some(d("2026-02-20")),
        }),
        total: g(100300),
        installments: ["2026-03-15", "2026-05-15", "2026-09-15", "2026-11-15"]
            .iter()
            .enumerate()
            .map(|(i, due)| Installment {
                seq: i as u8 + 1,
                due_date: d(due),
                amount: g(25075),
            })
            .collect(),
    })
}

async fn populated() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = gsko_store::SqliteStore::open(dir.path().join("v.sqlite"))
        .await
        .unwrap();
    let events = vec![
        ev(T1, 1, person("T1", JAN, "Jan Kowalski")),
        ev(
            T1,
            1,
            account(
                "A1",
                &[("T1", HolderRole::Owner)],
                Some("61109010140000071219812874"),
            ),
        ),
        ev(T1, 1, liability("L1", "A1")),
        ev(
            T1,
            1,
            EventData::PostingRecorded(LedgerPosting {
                posting_id: "P1".into(),
                account_id: "A1".into(),
                kind: PostingKind::Charge,
                value_date: d("2026-02-20"),
                amount: g(100300),
                liability_id: Some("L1".into()),
                installment_seq: None,
                description: None,
            }),
        ),
        ev(
            T1,
            1,
            EventData::PostingRecorded(LedgerPosting {
                posting_id: "P2".into(),
                account_id: "A1".into(),
                kind: PostingKind::Payment,
                value_date: d("2026-03-14"),
                amount: g(25075),
                liability_id: Some("L1".into()),
                installment_seq: Some(1),
                description: Some("wpłata".into()),
            }),
        ),
        ev(
            T1,
            1,
            EventData::BalanceReported(Balance {
                account_id: "A1".into(),
                as_of: d("2026-03-20"),
                principal: g(75225),
                interest: g(0),
                costs: g(0),
                overpayment: g(0),
            }),
        ),
        ev(
            T1,
            1,
            EventData::RecordRejected(RejectedRecord {
                file: "x.xml".into(),
                file_sha256: "a".repeat(64),
                line: 8,
                record_type: "taxpayer".into(),
                record_id: Some("B".into()),
                field: Some("pesel".into()),
                reason: "PESEL checksum does not match".into(),
                raw: "<taxpayer/>".into(),
            }),
        ),
        ev(
            T1,
            1,
            EventData::ImportCompleted(ImportCompleted {
                file: "x.xml".into(),
                file_sha256: "a".repeat(64),
                export_kind: "full".into(),
                records_accepted: 6,
                records_rejected: 1,
            }),
        ),
        ev(T2, 1, person("N1", ANNA, "Anna Nowak")),
        ev(T2, 1, person("N2", PIOTR, "Piotr Nowak")),
        ev(T2, 1, person("J2", JAN, "Jan Kowalski")),
        ev(
            T2,
            1,
            account(
                "H1",
                &[("N1", HolderRole::Owner), ("N2", HolderRole::CoOwner)],
                None,
            ),
        ),
        ev(T2, 1, account("J2A", &[("J2", HolderRole::Owner)], None)),
        ev(T2, 1, liability("L2", "H1")),
    ];
    store.apply(&events).await.unwrap();
    (Arc::new(store), dir)
}

fn keys() -> Vec<PortalKey> {
    vec![
        PortalKey {
            name: "all".into(),
            key_sha256: gsko_config::sha256(b"k-all"),
            tenants: None,
            admin: false,
        },
        PortalKey {
            name: "t1".into(),
            key_sha256: gsko_config::sha256(b"k-t1"),
            tenants: Some(vec![Teryt::parse(T1).unwrap()]),
            admin: false,
        },
        PortalKey {
            name: "admin".into(),
            key_sha256: gsko_config::sha256(b"k-admin"),
            tenants: None,
            admin: true,
        },
    ]
}

async fn app() -> (axum::Router, tempfile::TempDir) {
    let (store, dir) = populated().await;
    let tenants: BTreeMap<Teryt, String> = [(T1, "Bolesławiec"), (T2, "Gromadka")]
        .into_iter()
        .map(|(t, n)| (Teryt::parse(t).unwrap(), n.to_owned()))
        .collect();
    let mut state = AppState::new(store, keys(), tenants, Registry::new());
    state.today = || NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
    (router(state, 4096), dir)
}

async fn call(
    app: &axum::Router,
    path: &str,
    key: Option<&str>,
    pesel: Option<&str>,
) -> (StatusCode, String, Vec<u8>) {
    let mut r = Request::get(path);
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    if let Some(p) = pesel {
        r = r.header("x-resident-pesel", p);
    }
    let resp = app
        .clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, ct, body)
}

/// Validates `body` against the schema the document gives for (path, status).
fn check(doc: &Value, path: &str, status: StatusCode, ct: &str, body: &[u8]) {
    let op = &doc["paths"][path]["get"];
    assert!(op.is_object(), "{path} is not documented");
    let mut resp = op["responses"][status.as_str()].clone();
    assert!(
        resp.is_object(),
        "{path} answered {status}, which the document does not list"
    );
    if let Some(r) = resp.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        resp = doc["components"]["responses"][name].clone();
    }
    let media = ct.split(';').next().unwrap().trim();
    let schema = &resp["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "{path} {status}: content type {media} is not documented"
    );
    if media != "application/json" {
        return;
    }
    // Resolve `#/components/...` references against the whole document.
    let mut root = doc.clone();
    root.as_object_mut()
        .unwrap()
        .insert("allOf".into(), Value::Array(vec![schema.clone()]));
    let validator = jsonschema::validator_for(&root).expect("schema compiles");
    let instance: Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{path} {status}: not JSON ({e})"));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{path} {status}: response does not match the document: {errors:?}\n{instance}"
    );
}

/// (documented path, URL, API key, resident PESEL, expected status)
type Case = (
    String,
    String,
    Option<&'static str>,
    Option<&'static str>,
    u16,
);

#[test]
fn documented_paths_are_exactly_the_served_routes() {
    let documented: BTreeSet<String> = doc()["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let served: BTreeSet<String> = gsko_query::route_paths()
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn every_answer_matches_the_document() {
    let doc = doc();
    let (app, _dir) = app().await;
    let mut seen: BTreeSet<(String, u16)> = BTreeSet::new();
    let resident_paths = ["summary", "liabilities", "balance", "ledger", "due"];
    let mut cases: Vec<Case> = vec![
        ("/healthz".into(), "/healthz".into(), None, None, 200),
        ("/readyz".into(), "/readyz".into(), None, None, 200),
        ("/metrics".into(), "/metrics".into(), None, None, 200),
        (
            "/openapi.yaml".into(),
            "/openapi.yaml".into(),
            None,
            None,
            200,
        ),
        (
            "/v1/resident/summary".into(),
            "/v1/resident/summary".into(),
            Some("k-all"),
            Some(JAN),
            200,
        ),
        (
            "/v1/resident/summary".into(),
            "/v1/resident/summary".into(),
            None,
            Some(JAN),
            401,
        ),
        (
            "/v1/resident/summary".into(),
            "/v1/resident/summary".into(),
            Some("k-all"),
            Some("78031501237"),
            400,
        ),
    ];
    for p in resident_paths {
        let doc_path = format!("/v1/tenants/{{teryt}}/resident/{p}");
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T1}/resident/{p}"),
            Some("k-all"),
            Some(JAN),
            200,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T2}/resident/{p}"),
            Some("k-all"),
            Some(PIOTR),
            200,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T2}/resident/{p}"),
            Some("k-t1"),
            Some(ANNA),
            404,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T1}/resident/{p}"),
            Some("k-all"),
            Some(ANNA),
            404,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/1465017/resident/{p}"),
            Some("k-all"),
            Some(JAN),
            400,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T1}/resident/{p}"),
            Some("nope"),
            Some(JAN),
            401,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T1}/resident/{p}"),
            Some("k-all"),
            None,
            400,
        ));
    }
    let due = "/v1/tenants/{teryt}/resident/due".to_owned();
    cases.push((
        due.clone(),
        format!("/v1/tenants/{T1}/resident/due?date=2026-12-31&pay=10000"),
        Some("k-all"),
        Some(JAN),
        200,
    ));
    cases.push((
        due.clone(),
        format!("/v1/tenants/{T1}/resident/due?date=31.12.2026"),
        Some("k-all"),
        Some(JAN),
        400,
    ));
    cases.push((
        due.clone(),
        format!("/v1/tenants/{T1}/resident/due?pay=-5"),
        Some("k-all"),
        Some(JAN),
        400,
    ));
    cases.push((
        due.clone(),
        format!("/v1/tenants/{T1}/resident/due?amount=5"),
        Some("k-all"),
        Some(JAN),
        400,
    ));
    for p in ["rejected-records", "imports"] {
        let doc_path = format!("/v1/tenants/{{teryt}}/admin/{p}");
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T1}/admin/{p}"),
            Some("k-admin"),
            None,
            200,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T1}/admin/{p}"),
            Some("k-all"),
            None,
            403,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/{T1}/admin/{p}"),
            None,
            None,
            401,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/0000001/admin/{p}"),
            Some("k-admin"),
            None,
            404,
        ));
        cases.push((
            doc_path.clone(),
            format!("/v1/tenants/12/admin/{p}"),
            Some("k-admin"),
            None,
            400,
        ));
    }
    for (doc_path, url, key, pesel, want) in cases {
        let (status, ct, body) = call(&app, &url, key, pesel).await;
        assert_eq!(
            status.as_u16(),
            want,
            "{url}: {}",
            String::from_utf8_lossy(&body)
        );
        check(&doc, &doc_path, status, &ct, &body);
        seen.insert((doc_path, want));
    }
    // Every documented response other than 503 (database down) was produced at least once.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for code in item["get"]["responses"].as_object().unwrap().keys() {
            if code != "503" {
                assert!(
                    seen.contains(&(path.clone(), code.parse().unwrap())),
                    "{path} {code} is documented but never exercised"
                );
            }
        }
    }
}

#[tokio::test]
async fn co_owners_see_the_shared_account_and_the_next_installment() {
    let (app, _dir) = app().await;
    let (s, _, body) = call(
        &app,
        &format!("/v1/tenants/{T2}/resident/summary"),
        Some("k-all"),
        Some(PIOTR),
    )
    .await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["accounts"][0]["role"], "co_owner");
    assert_eq!(v["accounts"][0]["holders"].as_array().unwrap().len(), 2);
    assert_eq!(v["next_installment"]["due_date"], "2026-05-15");
    assert_eq!(v["next_installment"]["amount"], 25075);

    let (_, _, body) = call(&app, "/v1/resident/summary", Some("k-t1"), Some(JAN)).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    let tenants: Vec<&str> = v["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(
        tenants,
        vec![T1],
        "a key scoped to one tenant sees only that tenant"
    );
    let (_, _, body) = call(&app, "/v1/resident/summary", Some("k-all"), Some(JAN)).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["tenants"].as_array().unwrap().len(), 2);
    assert_eq!(v["tenants"][0]["totals"]["principal"], 75225);
}

#[tokio::test]
async fn due_shows_principal_and_interest_apart_and_how_a_payment_would_split() {
    let (app, _dir) = app().await;
    let (s, _, body) = call(
        &app,
        &format!("/v1/tenants/{T1}/resident/due?date=2026-12-31&pay=10000"),
        Some("k-all"),
        Some(JAN),
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["estimate"], true);
    let seqs: Vec<i64> = v["installments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3, 4], "installment 1 was paid");
    let i = &v["installments"];
    // 250.75 zl unpaid since 15 May 2026, 230 days at 11 %: 17.38 zl, rounded to 17 zl.
    assert_eq!(
        (i[0]["principal_left"].as_i64(), i[0]["interest"].as_i64()),
        (Some(25075), Some(1700))
    );
    // 107 days: 8.09 zl, not above the 8.70 zl threshold: no interest.
    assert_eq!(i[1]["interest"], 0);
    // 15 Nov 2026 is a Sunday: due on Monday the 16th.
    assert_eq!(i[2]["effective_due_date"], "2026-11-16");
    assert_eq!(v["totals"]["interest"], 1700);
    assert_eq!(v["totals"]["principal"], 75225);
    // 100 zl pays the oldest arrear, split between principal and interest in proportion.
    let p = &v["payment_preview"];
    let line = &p["lines"][0];
    assert_eq!(line["seq"], 2);
    let (pp, ip) = (
        line["principal_paid"].as_i64().unwrap(),
        line["interest_paid"].as_i64().unwrap(),
    );
    assert_eq!(pp + ip, 10000);
    assert_eq!(pp, 9365, "10000 x 25075 / 26775, to the grosz");
    assert_eq!(p["overpayment"], 0);
}
