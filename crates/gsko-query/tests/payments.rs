//! Paying through the query service, as a portal sees it: against the gateway simulators on
//! loopback, with the embedded store; today is 1 April 2026.
//!
//! `cargo test -p gsko-query --test payments`

mod common;

use axum::http::StatusCode;
use common::*;
use gsko_sim::przelewy24 as p24_sim;
use serde_json::{json, Value};

fn orders_url(t: &str) -> String {
    format!("/v1/tenants/{t}/resident/payment-orders")
}

fn basket_url(t: &str, basket: &Value) -> String {
    format!(
        "/v1/tenants/{t}/resident/payment-orders/{}",
        basket["basket_id"].as_str().unwrap()
    )
}

async fn pay(
    app: &App,
    t: &str,
    key: &str,
    pesel: &str,
    idempotency_key: &str,
    body: Value,
) -> (StatusCode, Value) {
    send_json(
        &app.router,
        &Req::post(
            orders_url(t),
            Some(key),
            Some(pesel),
            Some(idempotency_key),
            body.to_string(),
        ),
    )
    .await
}

/// `/due` today, as (liability, seq) → (principal_left, interest).
async fn due(app: &App, t: &str, pesel: &str) -> Vec<(String, i64, i64, i64)> {
    let (s, v) = send_json(
        &app.router,
        &Req::get(
            format!("/v1/tenants/{t}/resident/due"),
            Some("k-all"),
            Some(pesel),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["installments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["liability_id"].as_str().unwrap().to_owned(),
                i["seq"].as_i64().unwrap(),
                i["principal_left"].as_i64().unwrap(),
                i["interest"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn amount_due(due: &[(String, i64, i64, i64)], liability: &str, seq: i64) -> i64 {
    let (_, _, principal, interest) = due
        .iter()
        .find(|(l, s, _, _)| l == liability && *s == seq)
        .unwrap_or_else(|| panic!("{liability}/{seq} is not due: {due:?}"));
    principal + interest
}

#[tokio::test]
async fn a_basket_answers_a_gateway_redirect_for_what_due_shows_with_interest_up_to_today() {
    let app = app(true).await;
    let due = due(&app, T1, EWA).await;
    // The 2025 installments are overdue: interest is part of what is due.
    let interest: i64 = due
        .iter()
        .filter(|(l, s, _, _)| l == "E-OLD" && *s <= 2)
        .map(|d| d.3)
        .sum();
    assert!(interest > 0, "{due:?}");

    let (s, basket) = pay(
        &app,
        T1,
        "k-all",
        EWA,
        "ewa-basket-0001",
        json!({
            "items": [
                {"liability_id": "E-OLD", "installment": 1},
                {"liability_id": "E-OLD", "installment": 2},
            ],
            "gateway": "przelewy24",
            "email": "ewa@example.pl",
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{basket}");
    assert_eq!(basket["created"], true);
    assert_eq!(basket["ready"], true);
    let orders = basket["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{basket}");
    let order = &orders[0];
    assert_eq!(order["status"], "registered");
    assert_eq!(order["gateway"], "przelewy24");
    let redirect = order["redirect_url"].as_str().unwrap();
    assert!(
        redirect.starts_with(&app.p24().base_url),
        "{redirect} is not at the simulator {}",
        app.p24().base_url
    );
    // Each item is the principal left plus the interest up to today, as /due shows them.
    for item in order["items"].as_array().unwrap() {
        let seq = item["installment_seq"].as_i64().unwrap();
        assert_eq!(item["liability_id"], "E-OLD");
        assert_eq!(
            item["amount"].as_i64().unwrap(),
            amount_due(&due, "E-OLD", seq),
            "{item}"
        );
    }
    let expected = amount_due(&due, "E-OLD", 1) + amount_due(&due, "E-OLD", 2);
    assert_eq!(order["amount"].as_i64().unwrap(), expected);
    assert_eq!(basket["total"].as_i64().unwrap(), expected);
    // The gateway was asked for that amount, once.
    let txs = app
        .p24()
        .transactions_for_session(order["order_id"].as_str().unwrap());
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].amount, expected);
}

#[tokio::test]
async fn taxes_and_fees_become_one_order_per_merchant_account_each_with_its_redirect() {
    let app = app(true).await;
    let due = due(&app, T1, EWA).await;
    let (s, basket) = pay(
        &app,
        T1,
        "k-all",
        EWA,
        "ewa-basket-0002",
        json!({
            "items": [{"liability_id": "E-OLD", "installment": 3}, {"liability_id": "E-DOG"}],
            "gateway": "payu",
            "customer_ip": "192.0.2.1",
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{basket}");
    let mut orders: Vec<(String, i64)> = basket["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert!(o["redirect_url"]
                .as_str()
                .unwrap()
                .starts_with(&app.payu().base_url));
            (
                o["merchant"].as_str().unwrap().to_owned(),
                o["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    orders.sort();
    assert_eq!(
        orders,
        vec![
            ("fees".to_owned(), amount_due(&due, "E-DOG", 1)),
            ("taxes".to_owned(), amount_due(&due, "E-OLD", 3)),
        ]
    );
}

#[tokio::test]
async fn the_same_key_twice_gives_the_same_basket_and_the_gateway_one_order() {
    let app = app(true).await;
    let body = json!({
        "items": [{"liability_id": "L1", "installment": 2}],
        "gateway": "przelewy24",
        "email": "jan@example.pl",
    });
    let (s1, first) = pay(&app, T1, "k-all", JAN, "jan-basket-0001", body.clone()).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    let (s2, second) = pay(&app, T1, "k-all", JAN, "jan-basket-0001", body).await;
    assert_eq!(s2, StatusCode::OK, "{second}");
    assert_eq!(second["created"], false);
    assert_eq!(second["basket_id"], first["basket_id"]);
    assert_eq!(second["orders"], first["orders"]);
    let order_id = first["orders"][0]["order_id"].as_str().unwrap();
    assert_eq!(app.p24().transactions_for_session(order_id).len(), 1);
    assert_eq!(app.p24().calls(p24_sim::SimEndpoint::Register), 1);
    // Reading it back gives the same basket.
    let (s, read) = send_json(
        &app.router,
        &Req::get(basket_url(T1, &first), Some("k-all"), Some(JAN)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{read}");
    assert_eq!(read["orders"], first["orders"]);
    // The same key for something else is refused, and creates nothing.
    let (s, v) = pay(
        &app,
        T1,
        "k-all",
        JAN,
        "jan-basket-0001",
        json!({"items": [{"liability_id": "L1", "installment": 3}], "email": "jan@example.pl"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"], "idempotency_key_reused");
    assert_eq!(app.p24().transactions().len(), 1);
}

#[tokio::test]
async fn a_gateway_failure_answers_502_with_the_basket_and_the_retry_registers_it_once() {
    let app = app(true).await;
    let body = json!({
        "items": [{"liability_id": "L1", "installment": 2}],
        "gateway": "przelewy24",
        "email": "jan@example.pl",
    });
    app.p24()
        .fail_next(p24_sim::SimEndpoint::Register, p24_sim::SimFailure::Http500);
    let (s, failed) = pay(&app, T1, "k-all", JAN, "jan-basket-0002", body.clone()).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{failed}");
    assert_eq!(failed["error"], "gateway_unavailable");
    let order = &failed["basket"]["orders"][0];
    assert_eq!(order["status"], "created");
    assert!(order.get("redirect_url").is_none(), "{order}");
    let order_id = order["order_id"].as_str().unwrap();
    assert!(app.p24().transactions_for_session(order_id).is_empty());
    let (s, retried) = pay(&app, T1, "k-all", JAN, "jan-basket-0002", body).await;
    assert_eq!(s, StatusCode::OK, "{retried}");
    assert_eq!(retried["basket_id"], failed["basket"]["basket_id"]);
    assert_eq!(retried["orders"][0]["order_id"], order_id);
    assert_eq!(retried["orders"][0]["status"], "registered");
    assert_eq!(app.p24().transactions_for_session(order_id).len(), 1);
}

#[tokio::test]
async fn a_co_owner_pays_the_shared_installment_and_only_they_see_the_basket() {
    let app = app(true).await;
    let (s, basket) = pay(
        &app,
        T2,
        "k-all",
        PIOTR,
        "piotr-basket-0001",
        json!({"items": [{"liability_id": "L2", "installment": 2}], "gateway": "payu"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{basket}");
    assert_eq!(basket["orders"][0]["items"][0]["account_id"], "H1");
    assert_eq!(basket["orders"][0]["amount"], 25075);
    let url = basket_url(T2, &basket);
    let (s, _) = send_json(&app.router, &Req::get(&url, Some("k-all"), Some(PIOTR))).await;
    assert_eq!(s, StatusCode::OK);
    // Not the other holder of the account, not another resident, not another tenant's key.
    for (key, pesel) in [("k-all", ANNA), ("k-all", JAN), ("k-t1", PIOTR)] {
        let (s, v) = send_json(&app.router, &Req::get(&url, Some(key), Some(pesel))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{key} {pesel}: {v}");
        assert_eq!(v["error"], "not_found");
    }
}

#[tokio::test]
async fn another_residents_liability_is_unprocessable() {
    let app = app(true).await;
    // Jan has an account in T2, but L2 is Anna's and Piotr's.
    let (s, v) = pay(
        &app,
        T2,
        "k-all",
        JAN,
        "jan-basket-0003",
        json!({"items": [{"liability_id": "L2", "installment": 2}], "gateway": "payu"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"], "unprocessable");
    // Ewa's arrears are not Jan's to pay through his basket either.
    let (s, v) = pay(
        &app,
        T1,
        "k-all",
        JAN,
        "jan-basket-0004",
        json!({"items": [{"liability_id": "E-OLD"}], "gateway": "payu"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // No gateway was asked for anything.
    assert_eq!(app.payu().token_requests(), 0);
    assert!(app.p24().transactions().is_empty());
}

#[tokio::test]
async fn a_key_of_another_tenant_gets_404() {
    let app = app(true).await;
    let (s, v) = pay(
        &app,
        T2,
        "k-t1",
        PIOTR,
        "piotr-basket-0002",
        json!({"items": [{"liability_id": "L2", "installment": 2}], "gateway": "payu"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"], "not_found");
    let (s, _) = send_json(
        &app.router,
        &Req::get(
            format!("/v1/tenants/{T2}/resident/payments"),
            Some("k-t1"),
            Some(PIOTR),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_installment_is_never_in_a_basket_twice() {
    let app = app(true).await;
    // The whole liability, and one of its installments again.
    let (s, v) = pay(
        &app,
        T1,
        "k-all",
        JAN,
        "jan-basket-0005",
        json!({
            "items": [{"liability_id": "L1"}, {"liability_id": "L1", "installment": 3}],
            "gateway": "payu",
        }),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "invalid_request");
    // The whole liability alone is every installment still due: 2, 3 and 4.
    let (s, v) = pay(
        &app,
        T1,
        "k-all",
        JAN,
        "jan-basket-0006",
        json!({"items": [{"liability_id": "L1"}], "gateway": "payu"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let seqs: Vec<i64> = v["orders"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["installment_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    assert_eq!(v["total"], 3 * 25075);
}

#[tokio::test]
async fn payments_say_whether_the_ledger_booked_them() {
    let app = app(true).await;
    let (s, v) = send_json(
        &app.router,
        &Req::get(
            format!("/v1/tenants/{T1}/resident/payments"),
            Some("k-all"),
            Some(EWA),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rows: Vec<(&str, &str, i64)> = v["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["payment"]["payment_id"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
                p["booked_amount"].as_i64().unwrap(),
            )
        })
        .collect();
    // Newest first.
    assert_eq!(
        rows,
        vec![
            ("bank-ewa-0001", "received", 0),
            ("p24-ewa0002", "booked", 2000)
        ]
    );
    // Another resident sees none of them.
    let (_, v) = send_json(
        &app.router,
        &Req::get(
            format!("/v1/tenants/{T1}/resident/payments"),
            Some("k-all"),
            Some(JAN),
        ),
    )
    .await;
    assert_eq!(v["payments"], json!([]));
}

#[tokio::test]
async fn without_online_payments_the_portal_is_told_so() {
    let app = app(false).await;
    let (s, v) = pay(
        &app,
        T1,
        "k-all",
        JAN,
        "jan-basket-0007",
        json!({"items": [{"liability_id": "L1", "installment": 2}], "gateway": "payu"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"], "payments_not_configured");
}
