//! Keeps `schemas/openapi.yaml` equal to what the service does: the same paths and methods, and
//! every response the service gives — success and error alike — valid against the documented
//! schema for its method and status code; every documented status (but 503) is produced.

mod common;
mod filing_openapi;
mod filing_support;

use axum::http::StatusCode;
use common::*;
use gsko_query::OPENAPI_YAML;
use gsko_sim::przelewy24 as p24_sim;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn doc() -> Value {
    let y: serde_yaml::Value = serde_yaml::from_str(OPENAPI_YAML).expect("openapi.yaml parses");
    serde_json::to_value(y).unwrap()
}

async fn call(
    app: &axum::Router,
    path: &str,
    key: Option<&str>,
    pesel: Option<&str>,
) -> (StatusCode, String, Vec<u8>) {
    send(app, &Req::get(path, key, pesel)).await
}

/// Errors of `instance` against `schema`, with `#/components/...` references resolved against
/// the whole document.
fn schema_errors(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = doc.clone();
    root.as_object_mut()
        .unwrap()
        .insert("allOf".into(), Value::Array(vec![schema.clone()]));
    let validator = jsonschema::validator_for(&root).expect("schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

fn operation<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    op
}

/// Validates `body` against the schema the document gives for (path, method, status).
fn check(doc: &Value, path: &str, method: &str, status: StatusCode, ct: &str, body: &[u8]) {
    let op = operation(doc, path, method);
    let mut resp = op["responses"][status.as_str()].clone();
    assert!(
        resp.is_object(),
        "{method} {path} answered {status}, which the document does not list"
    );
    if let Some(r) = resp.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        resp = doc["components"]["responses"][name].clone();
    }
    let media = ct.split(';').next().unwrap().trim();
    let schema = &resp["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: content type {media} is not documented"
    );
    if media != "application/json" {
        return;
    }
    let instance: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{method} {path} {status}: not JSON ({e})"));
    let errors = schema_errors(doc, schema, &instance);
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: response does not match the document: {errors:?}\n{instance}"
    );
}

/// Validates a request body the service accepted against the documented request schema.
fn check_request(doc: &Value, path: &str, method: &str, body: &str) {
    let op = operation(doc, path, method);
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path}: no JSON request body documented"
    );
    let instance: Value = serde_json::from_str(body).unwrap();
    let errors = schema_errors(doc, schema, &instance);
    assert!(
        errors.is_empty(),
        "{method} {path}: an accepted request does not match the document: {errors:?}\n{instance}"
    );
}

/// The documented header parameters of an operation, by lower-case name.
fn documented_headers(doc: &Value, path: &str, method: &str) -> BTreeSet<String> {
    operation(doc, path, method)["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| match p.get("$ref").and_then(Value::as_str) {
            Some(r) => doc["components"]["parameters"][r.rsplit('/').next().unwrap()].clone(),
            None => p.clone(),
        })
        .filter(|p| p["in"] == "header")
        .map(|p| p["name"].as_str().unwrap().to_ascii_lowercase())
        .collect()
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn documented_paths_are_exactly_the_served_routes() {
    let doc = doc();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| METHODS.contains(&m.as_str()))
                .map(move |m| (path.clone(), m.to_ascii_uppercase()))
        })
        .collect();
    let documented_paths: BTreeSet<&str> = documented.iter().map(|(p, _)| p.as_str()).collect();
    let served_paths: BTreeSet<&str> = gsko_query::route_paths().into_iter().collect();
    assert_eq!(documented_paths, served_paths);
    // Which methods each route serves, as the router answers: 405 for a method it does not.
    let app = app(true).await;
    let mut served = BTreeSet::new();
    for path in gsko_query::route_paths() {
        let url = path
            .replace("{teryt}", T1)
            .replace("{basket_id}", "x")
            .replace("{case_ref}", "FN.3120.1.2026");
        for m in METHODS {
            let m = m.to_ascii_uppercase();
            let mut req = Req::get(url.as_str(), None, None);
            req.method = &m;
            let (status, _, _) = send(&app.router, &req).await;
            if status != StatusCode::METHOD_NOT_ALLOWED {
                served.insert((path.to_owned(), m.clone()));
            }
        }
    }
    assert_eq!(documented, served);
}

/// One request of the matrix, the documented path it exercises, and the status it must get.
struct Case<'a> {
    doc_path: String,
    req: Req<'a>,
    /// Against the deployment without online payments.
    without_payments: bool,
    want: u16,
}

fn get<'a>(
    doc_path: impl Into<String>,
    url: impl Into<String>,
    key: Option<&'a str>,
    pesel: Option<&'a str>,
    want: u16,
) -> Case<'a> {
    Case {
        doc_path: doc_path.into(),
        req: Req::get(url, key, pesel),
        without_payments: false,
        want,
    }
}

const ORDERS: &str = "/v1/tenants/{teryt}/resident/payment-orders";
const BASKET: &str = "/v1/tenants/{teryt}/resident/payment-orders/{basket_id}";

fn post<'a>(
    url: impl Into<String>,
    key: Option<&'a str>,
    pesel: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    body: Value,
    want: u16,
) -> Case<'a> {
    Case {
        doc_path: ORDERS.into(),
        req: Req::post(url, key, pesel, idempotency_key, body.to_string()),
        without_payments: false,
        want,
    }
}

struct Run {
    doc: Value,
    with: App,
    without: App,
    /// (documented path, method, status) produced so far.
    seen: BTreeSet<(String, String, u16)>,
}

impl Run {
    /// Sends the case, checks its status and that the answer matches the document; answers the
    /// JSON body (Null for other content).
    async fn run(&mut self, case: Case<'_>) -> Value {
        let app = if case.without_payments {
            &self.without
        } else {
            &self.with
        };
        let r = &case.req;
        let (status, ct, body) = send(&app.router, r).await;
        assert_eq!(
            status.as_u16(),
            case.want,
            "{} {}: {}",
            r.method,
            r.url,
            String::from_utf8_lossy(&body)
        );
        check(&self.doc, &case.doc_path, r.method, status, &ct, &body);
        let headers = documented_headers(&self.doc, &case.doc_path, r.method);
        if r.idempotency_key.is_some() {
            assert!(headers.contains("idempotency-key"), "{}", case.doc_path);
        }
        if r.pesel.is_some() {
            assert!(headers.contains("x-resident-pesel"), "{}", case.doc_path);
        }
        if let (true, Some(b)) = (status.is_success(), &r.body) {
            check_request(&self.doc, &case.doc_path, r.method, b);
        }
        self.seen
            .insert((case.doc_path.clone(), r.method.to_owned(), case.want));
        if ct.starts_with("application/json") {
            serde_json::from_slice(&body).unwrap()
        } else {
            Value::Null
        }
    }
}

#[tokio::test]
async fn every_answer_matches_the_document() {
    let mut run = Run {
        doc: doc(),
        with: app(true).await,
        without: app(false).await,
        seen: BTreeSet::new(),
    };
    let resident_paths = [
        "summary",
        "liabilities",
        "balance",
        "ledger",
        "due",
        "payments",
    ];
    let mut cases: Vec<Case> = vec![
        get("/healthz", "/healthz", None, None, 200),
        get("/readyz", "/readyz", None, None, 200),
        get("/metrics", "/metrics", None, None, 200),
        get("/openapi.yaml", "/openapi.yaml", None, None, 200),
        get(
            "/v1/resident/summary",
            "/v1/resident/summary",
            Some("k-all"),
            Some(JAN),
            200,
        ),
        get(
            "/v1/resident/summary",
            "/v1/resident/summary",
            None,
            Some(JAN),
            401,
        ),
        get(
            "/v1/resident/summary",
            "/v1/resident/summary",
            Some("k-all"),
            Some("78031501237"),
            400,
        ),
    ];
    for p in resident_paths {
        let doc_path = format!("/v1/tenants/{{teryt}}/resident/{p}");
        let url = |t: &str| format!("/v1/tenants/{t}/resident/{p}");
        cases.extend([
            get(&doc_path, url(T1), Some("k-all"), Some(JAN), 200),
            get(&doc_path, url(T1), Some("k-all"), Some(EWA), 200),
            get(&doc_path, url(T2), Some("k-all"), Some(PIOTR), 200),
            get(&doc_path, url(T2), Some("k-t1"), Some(ANNA), 404),
            get(&doc_path, url(T1), Some("k-all"), Some(ANNA), 404),
            get(&doc_path, url("1465017"), Some("k-all"), Some(JAN), 400),
            get(&doc_path, url(T1), Some("nope"), Some(JAN), 401),
            get(&doc_path, url(T1), Some("k-all"), None, 400),
        ]);
    }
    let due = "/v1/tenants/{teryt}/resident/due";
    let due_url = |q: &str| format!("/v1/tenants/{T1}/resident/due?{q}");
    cases.extend([
        get(
            due,
            due_url("date=2026-12-31&pay=10000"),
            Some("k-all"),
            Some(JAN),
            200,
        ),
        get(
            due,
            due_url("date=31.12.2026"),
            Some("k-all"),
            Some(JAN),
            400,
        ),
        get(due, due_url("pay=-5"), Some("k-all"), Some(JAN), 400),
        get(due, due_url("amount=5"), Some("k-all"), Some(JAN), 400),
    ]);
    // Letters and decisions: a resident without any gets an empty list, not 404.
    for p in ["letters", "decisions"] {
        let doc_path = format!("/v1/tenants/{{teryt}}/resident/{p}");
        let url = |t: &str| format!("/v1/tenants/{t}/resident/{p}");
        cases.extend([
            get(&doc_path, url(T1), Some("k-all"), Some(JAN), 200),
            get(&doc_path, url(T1), Some("k-all"), Some(ANNA), 200),
            get(&doc_path, url(T2), Some("k-t1"), Some(JAN), 404),
            get(&doc_path, url("1465017"), Some("k-all"), Some(JAN), 400),
            get(&doc_path, url(T1), Some("nope"), Some(JAN), 401),
            get(&doc_path, url(T1), Some("k-all"), None, 400),
        ]);
    }
    // Cases: a resident without any gets an empty list; one case by its znak, percent-encoded.
    let cases_url = |t: &str| format!("/v1/tenants/{t}/resident/cases");
    let case_url = |r: &str| format!("/v1/tenants/{T1}/resident/cases/{r}");
    cases.extend([
        get(CASES, cases_url(T1), Some("k-all"), Some(JAN), 200),
        get(CASES, cases_url(T1), Some("k-all"), Some(ANNA), 200),
        get(CASES, cases_url(T2), Some("k-t1"), Some(JAN), 404),
        get(CASES, cases_url("1465017"), Some("k-all"), Some(JAN), 400),
        get(CASES, cases_url(T1), Some("nope"), Some(JAN), 401),
        get(CASES, cases_url(T1), Some("k-all"), None, 400),
        get(CASE, case_url(MOVED), Some("k-all"), Some(JAN), 200),
        get(
            CASE,
            case_url("FN.3120.2025"),
            Some("k-all"),
            Some(JAN),
            400,
        ),
        get(CASE, case_url(MOVED), Some("k-all"), Some(ANNA), 404),
        get(CASE, case_url(MOVED), Some("nope"), Some(JAN), 401),
        get(CASE, case_url(MOVED), Some("k-all"), None, 400),
    ]);
    let admin_letters = "/v1/tenants/{teryt}/admin/letters";
    cases.extend([
        get(
            admin_letters,
            format!("/v1/tenants/{T1}/admin/letters?flagged=true"),
            Some("k-admin"),
            None,
            200,
        ),
        get(
            admin_letters,
            format!("/v1/tenants/{T1}/admin/letters?flagged=maybe"),
            Some("k-admin"),
            None,
            400,
        ),
    ]);
    for p in [
        "rejected-records",
        "imports",
        "unmatched-payments",
        "gateway-notifications",
        "letters",
        "ezd-registrations",
    ] {
        let doc_path = format!("/v1/tenants/{{teryt}}/admin/{p}");
        let url = |t: &str| format!("/v1/tenants/{t}/admin/{p}");
        cases.extend([
            get(&doc_path, url(T1), Some("k-admin"), None, 200),
            get(&doc_path, url(T1), Some("k-all"), None, 403),
            get(&doc_path, url(T1), None, None, 401),
            get(&doc_path, url("0000001"), Some("k-admin"), None, 404),
            get(&doc_path, url("12"), Some("k-admin"), None, 400),
        ]);
    }
    for case in cases {
        run.run(case).await;
    }

    // The admin lists have something in them, so their items were checked too.
    for (p, field) in [
        ("unmatched-payments", "payments"),
        ("gateway-notifications", "notifications"),
        ("ezd-registrations", "registrations"),
    ] {
        let v = run
            .run(get(
                format!("/v1/tenants/{{teryt}}/admin/{p}"),
                format!("/v1/tenants/{T1}/admin/{p}"),
                Some("k-admin"),
                None,
                200,
            ))
            .await;
        assert_eq!(v[field].as_array().unwrap().len(), 1, "{v}");
    }
    let v = run
        .run(get(
            "/v1/tenants/{teryt}/resident/letters",
            format!("/v1/tenants/{T1}/resident/letters"),
            Some("k-all"),
            Some(JAN),
            200,
        ))
        .await;
    let states: Vec<&str> = v["letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["answered", "registered"], "{v}");
    assert_eq!(v["letters"][1]["case"]["case_ref"], "FN.3120.2.2026");
    assert_eq!(v["letters"][0]["answer"]["decision_id"], "ezd-1");
    cases_of_jan(&mut run).await;
    session_cases(&mut run).await;
    let v = run
        .run(get(
            "/v1/tenants/{teryt}/admin/letters",
            format!("/v1/tenants/{T1}/admin/letters?flagged=true"),
            Some("k-admin"),
            None,
            200,
        ))
        .await;
    assert_eq!(
        v["letters"].as_array().unwrap().len(),
        1,
        "only the invalid one: {v}"
    );
    let v = run
        .run(get(
            "/v1/tenants/{teryt}/resident/payments",
            format!("/v1/tenants/{T1}/resident/payments"),
            Some("k-all"),
            Some(EWA),
            200,
        ))
        .await;
    assert_eq!(v["payments"].as_array().unwrap().len(), 2, "{v}");

    // Paying.
    let orders = format!("/v1/tenants/{T1}/resident/payment-orders");
    let l1 = |seq: u8| json!({"items": [{"liability_id": "L1", "installment": seq}], "gateway": "przelewy24", "email": "jan@example.pl"});
    let created = run
        .run(post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0001"),
            l1(2),
            201,
        ))
        .await;
    let basket_id = created["basket_id"].as_str().unwrap().to_owned();
    let again = run
        .run(post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0001"),
            l1(2),
            200,
        ))
        .await;
    assert_eq!(again["basket_id"], basket_id.as_str());
    let ewa = |items: Value, extra: Value| {
        let mut b = json!({"items": items, "email": "ewa@example.pl"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let mut cases = vec![
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0001"),
            l1(3),
            409,
        ),
        post(&orders, Some("k-all"), Some(JAN), None, l1(3), 400),
        post(&orders, Some("k-all"), Some(JAN), Some("short"), l1(3), 400),
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key with spaces"),
            l1(3),
            400,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0002"),
            json!({"items": [{"liability_id": "L1", "installment": 3}], "amount": 100}),
            400,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0002"),
            json!({"items": [{"liability_id": "L1", "installment": 3}, {"liability_id": "L1", "installment": 3}], "email": "jan@example.pl"}),
            400,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0002"),
            json!({"items": [{"liability_id": "L1", "installment": 3}], "gateway": "blik"}),
            400,
        ),
        post(
            &orders,
            Some("k-all"),
            None,
            Some("key-jan-0002"),
            l1(3),
            400,
        ),
        post(
            "/v1/tenants/12/resident/payment-orders",
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0002"),
            l1(3),
            400,
        ),
        post(&orders, None, Some(JAN), Some("key-jan-0002"), l1(3), 401),
        post(
            &orders,
            Some("k-all"),
            Some(ANNA),
            Some("key-ann-0001"),
            l1(3),
            404,
        ),
        post(
            format!("/v1/tenants/{T2}/resident/payment-orders"),
            Some("k-t1"),
            Some(PIOTR),
            Some("key-pio-0001"),
            json!({"items": [{"liability_id": "L2", "installment": 2}], "gateway": "payu"}),
            404,
        ),
        // 422: the request is well formed but cannot be paid.
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0003"),
            json!({"items": []}),
            422,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0003"),
            json!({"items": [{"liability_id": "L-NONE"}], "email": "jan@example.pl"}),
            422,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0003"),
            l1(1),
            422,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0003"),
            json!({"items": [{"liability_id": "L1", "installment": 3}]}),
            422,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(JAN),
            Some("key-jan-0003"),
            json!({"items": [{"liability_id": "L1", "installment": 3}], "gateway": "payu", "return_url": "https://evil.example.com/"}),
            422,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(EWA),
            Some("key-ewa-0001"),
            ewa(json!([{"liability_id": "E-CAR"}]), json!({})),
            422,
        ),
        post(
            &orders,
            Some("k-all"),
            Some(EWA),
            Some("key-ewa-0001"),
            ewa(
                json!([{"liability_id": "E-DOG"}]),
                json!({"gateway": "przelewy24"}),
            ),
            422,
        ),
    ];
    // Without online payments.
    let mut plain = post(
        &orders,
        Some("k-all"),
        Some(JAN),
        Some("key-jan-0004"),
        l1(3),
        404,
    );
    plain.without_payments = true;
    cases.push(plain);
    for case in cases {
        let want = case.want;
        let v = run.run(case).await;
        if want == 404 || want == 422 || want == 409 {
            assert!(v["error"].is_string(), "{v}");
        }
    }

    // The gateway fails: 502 with the stored basket; the same request again registers it.
    run.with
        .p24()
        .fail_next(p24_sim::SimEndpoint::Register, p24_sim::SimFailure::Http500);
    let old = ewa(
        json!([{"liability_id": "E-OLD", "installment": 1}]),
        json!({"gateway": "przelewy24", "return_url": "https://portal.example.pl/podatki/wynik"}),
    );
    let failed = run
        .run(post(
            &orders,
            Some("k-all"),
            Some(EWA),
            Some("key-ewa-0002"),
            old.clone(),
            502,
        ))
        .await;
    assert_eq!(failed["error"], "gateway_unavailable");
    assert_eq!(failed["basket"]["orders"][0]["status"], "created");
    let retried = run
        .run(post(
            &orders,
            Some("k-all"),
            Some(EWA),
            Some("key-ewa-0002"),
            old,
            200,
        ))
        .await;
    assert_eq!(retried["basket_id"], failed["basket"]["basket_id"]);
    assert_eq!(retried["orders"][0]["status"], "registered");

    // Reading a basket.
    let basket = format!("/v1/tenants/{T1}/resident/payment-orders/{basket_id}");
    let mut cases = vec![
        get(BASKET, &basket, Some("k-all"), Some(JAN), 200),
        get(BASKET, &basket, Some("k-all"), Some(EWA), 404),
        get(
            BASKET,
            format!("/v1/tenants/{T1}/resident/payment-orders/nope"),
            Some("k-all"),
            Some(JAN),
            404,
        ),
        get(BASKET, &basket, Some("k-all"), None, 400),
        get(BASKET, &basket, None, Some(JAN), 401),
    ];
    let mut plain = get(BASKET, &basket, Some("k-all"), Some(JAN), 404);
    plain.without_payments = true;
    cases.push(plain);
    let mut plain = get(
        "/v1/tenants/{teryt}/admin/gateway-notifications",
        format!("/v1/tenants/{T1}/admin/gateway-notifications"),
        Some("k-admin"),
        None,
        404,
    );
    plain.without_payments = true;
    cases.push(plain);
    for case in cases {
        run.run(case).await;
    }
    let v = run
        .run(get(BASKET, &basket, Some("k-all"), Some(JAN), 200))
        .await;
    assert_eq!(v["basket_id"], basket_id.as_str());
    assert_eq!(v["created"], false);

    filing_openapi::cases(&mut run).await;

    // Every `/v1/` operation refuses a client over its rate. The key's bucket holds one token
    // that takes over 16 minutes to come back: the first request takes it, the rest are
    // refused before anything else is looked at.
    run.without = app_with(false, |s| s.with_rate_limit(0.001, 1)).await;
    let (s, _, _) = send(
        &run.without.router,
        &Req::get("/v1/resident/summary", Some("k-all"), Some(JAN)),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let limited: Vec<(String, String)> = run.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/v1/"))
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| METHODS.contains(&m.as_str()))
                .map(|m| (p.clone(), m.to_ascii_uppercase()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(limited.len() > 20, "{limited:?}");
    for (path, method) in limited {
        let url = path
            .split('/')
            .map(|seg| match seg {
                "{teryt}" => T1,
                s if s.starts_with('{') => "x",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        let req = match method.as_str() {
            "GET" => Req::get(url, Some("k-all"), None),
            "POST" => Req::post(url, Some("k-all"), None, None, "{}"),
            other => panic!("{other} {path}: no 429 case for this method"),
        };
        run.run(Case {
            doc_path: path,
            req,
            without_payments: true,
            want: 429,
        })
        .await;
    }

    // Every documented response other than 503 (database down) was produced at least once.
    for (path, item) in run.doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let method = method.to_ascii_uppercase();
            for code in op["responses"].as_object().unwrap().keys() {
                if code != "503" {
                    assert!(
                        run.seen
                            .contains(&(path.clone(), method.clone(), code.parse().unwrap())),
                        "{method} {path} {code} is documented but never exercised"
                    );
                }
            }
        }
    }
}

const CASES: &str = "/v1/tenants/{teryt}/resident/cases";
const CASE: &str = "/v1/tenants/{teryt}/resident/cases/{case_ref}";
/// `OŚ.6131.2.2026`, percent-encoded: Jan's case after EZD moved it from `FN.3120.1.2026`.
const MOVED: &str = "O%C5%9A.6131.2.2026";

/// Jan's two cases (see the fixtures): epuap-2's, just registered, and epuap-1's, moved under
/// another znak and closed, with the decision that answered the letter.
/// The session operations: a resident's token, a portal key, none.
async fn session_cases(run: &mut Run) {
    const SESSION: &str = "/v1/session";
    const RENEW: &str = "/v1/session/renew";
    const EXCHANGE: &str = "/v1/session/exchange";
    let token = session_token(&run.with.store, JAN).await;
    let renewable = session_token(&run.with.store, JAN).await;
    let case = |path: &str, method: &'static str, key: Option<&str>, body: Option<String>, want| {
        let mut req = Req::get(path.to_owned(), None, None);
        req.method = method;
        req.body = body;
        (path.to_owned(), req, key.map(str::to_owned), want)
    };
    // A one-time code, as the ACS would have issued it for a portal.
    let code = "one-time-code-1";
    gsko_store::LoginStore::login_code_create(
        run.with.store.as_ref(),
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(code.as_bytes())),
        token.split('.').nth(2).unwrap(),
        chrono::Utc::now() + chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    let cases = vec![
        case(SESSION, "GET", Some(&token), None, 200),
        case(SESSION, "GET", Some("k-all"), None, 403),
        case(SESSION, "GET", None, None, 401),
        case(SESSION, "GET", Some("gs1.0000.forged.1.AAAA"), None, 401),
        case(RENEW, "POST", Some(&renewable), None, 200),
        case(RENEW, "POST", Some(&renewable), None, 401),
        case(RENEW, "POST", Some("k-all"), None, 403),
        case(
            EXCHANGE,
            "POST",
            Some("k-all"),
            Some(format!(r#"{{"code":"{code}"}}"#)),
            200,
        ),
        case(
            EXCHANGE,
            "POST",
            Some("k-all"),
            Some(format!(r#"{{"code":"{code}"}}"#)),
            404,
        ),
        case(
            EXCHANGE,
            "POST",
            Some("k-all"),
            Some(r#"{"kod":1}"#.into()),
            400,
        ),
        case(
            EXCHANGE,
            "POST",
            Some(&token),
            Some(r#"{"code":"x"}"#.into()),
            403,
        ),
        case(EXCHANGE, "POST", None, Some(r#"{"code":"x"}"#.into()), 401),
    ];
    for (path, mut req, key, want) in cases {
        req.key = key.as_deref();
        let body = run
            .run(Case {
                doc_path: path.clone(),
                req,
                without_payments: false,
                want,
            })
            .await;
        if want == 200 && path == SESSION {
            assert_eq!(
                body["tenants"],
                serde_json::json!([T1, T2]),
                "Jan has data in both tenants"
            );
        }
    }
}

async fn cases_of_jan(run: &mut Run) {
    let case_url = |r: &str| format!("/v1/tenants/{T1}/resident/cases/{r}");
    let k = Some("k-all");
    let v = run
        .run(get(
            CASES,
            format!("/v1/tenants/{T1}/resident/cases"),
            k,
            Some(JAN),
            200,
        ))
        .await;
    let refs: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case_ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        ["FN.3120.2.2026", "OŚ.6131.2.2026"],
        "newest first: {v}"
    );
    let fresh = &v["cases"][0];
    assert_eq!(fresh["status"], "registered");
    assert_eq!(
        fresh["timeline"],
        json!([{"seq": 0, "status": "registered", "at": "2026-11-21T08:00:00Z"}])
    );
    assert_eq!(fresh["letters"][0]["letter_id"], "epuap-2");
    assert_eq!(fresh["decisions"], json!([]));
    let moved = &v["cases"][1];
    assert_eq!(
        moved["status"], "closed",
        "the highest seq, whatever the order: {moved}"
    );
    assert_eq!(moved["ezd_case_id"], "ezd-case-1");
    assert_eq!(moved["due_on"], "2026-12-20");
    let timeline: Vec<(i64, &str)> = moved["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["seq"].as_i64().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        timeline,
        [
            (1, "registered"),
            (2, "assigned"),
            (3, "re_registered"),
            (4, "closed")
        ]
    );
    assert_eq!(
        moved["letters"],
        json!([{"letter_id": "epuap-1", "title": "Wniosek epuap-1", "received_at": "2026-11-20T09:00:00Z"}])
    );
    assert_eq!(moved["decisions"][0]["decision_id"], "ezd-1");

    // One case, by the znak it has now (percent-encoded) or the one the letter got.
    for r in [MOVED, "FN.3120.1.2026"] {
        let one = run.run(get(CASE, case_url(r), k, Some(JAN), 200)).await;
        assert_eq!(&one, moved, "{r}");
    }
    // A malformed znak: the message names the part that is wrong.
    let bad = run
        .run(get(CASE, case_url("FN.31200.1.2026"), k, Some(JAN), 400))
        .await;
    assert_eq!(bad["message"], "JRWA symbol must be 1 to 4 digits", "{bad}");
    // A case nobody has and a case of someone else's answer alike.
    let unknown = run
        .run(get(CASE, case_url("FN.3120.7.2026"), k, Some(JAN), 404))
        .await;
    let someone_elses = run
        .run(get(CASE, case_url(MOVED), k, Some(ANNA), 404))
        .await;
    assert_eq!(unknown, someone_elses);
    let none = run
        .run(get(
            CASES,
            format!("/v1/tenants/{T1}/resident/cases"),
            k,
            Some(ANNA),
            200,
        ))
        .await;
    assert_eq!(none["cases"], json!([]), "Anna signed no letter here");
}

#[tokio::test]
async fn co_owners_see_the_shared_account_and_the_next_installment() {
    let a = app(false).await;
    let app = &a.router;
    let (s, _, body) = call(
        app,
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

    let (_, _, body) = call(app, "/v1/resident/summary", Some("k-t1"), Some(JAN)).await;
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
    let (_, _, body) = call(app, "/v1/resident/summary", Some("k-all"), Some(JAN)).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["tenants"].as_array().unwrap().len(), 2);
    assert_eq!(v["tenants"][0]["totals"]["principal"], 75225);
}

#[tokio::test]
async fn due_shows_principal_and_interest_apart_and_how_a_payment_would_split() {
    let a = app(false).await;
    let app = &a.router;
    let (s, _, body) = call(
        app,
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
