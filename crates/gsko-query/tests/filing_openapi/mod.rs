//! The filing endpoints in the OpenAPI matrix: every documented status produced, against the
//! app with filing (see `filing_support`).

use super::*;
use crate::filing_support::*;

const FILINGS: &str = "/v1/tenants/{teryt}/resident/filings";
const FILING: &str = "/v1/tenants/{teryt}/resident/filings/{filing_id}";
const SIGNED: &str = "/filing/{teryt}/{filing_id}/signed";
const CANCELLED: &str = "/filing/{teryt}/{filing_id}/cancelled";

fn file<'a>(
    t: &str,
    key: Option<&'a str>,
    pesel: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    body: Value,
    want: u16,
) -> Case<'a> {
    let mut c = post(
        format!("/v1/tenants/{t}/resident/filings"),
        key,
        pesel,
        idempotency_key,
        body,
        want,
    );
    c.doc_path = FILINGS.into();
    c
}

pub(crate) async fn cases(run: &mut Run) {
    let f = filing_app().await;
    let with = std::mem::replace(&mut run.with, f.app);
    let k = Some("k-all");
    // Without filing configured (the plain app): 404.
    run.run(Case {
        without_payments: true,
        ..file(T1, k, Some(JAN), Some("filing-0000"), letter_json("x"), 404)
    })
    .await;
    let v = run
        .run(file(
            T1,
            k,
            Some(JAN),
            Some("filing-0001"),
            letter_json("Wniosek"),
            201,
        ))
        .await;
    let id = v["filing_id"].as_str().unwrap().to_owned();
    run.run(file(
        T1,
        k,
        Some(JAN),
        Some("filing-0001"),
        letter_json("Wniosek"),
        200,
    ))
    .await;
    run.run(file(
        T1,
        k,
        Some(JAN),
        Some("filing-0001"),
        letter_json("Inny"),
        409,
    ))
    .await;
    run.run(file(
        T1,
        k,
        Some(JAN),
        Some("filing-0002"),
        letter_json(" "),
        400,
    ))
    .await;
    run.run(file(
        T1,
        None,
        Some(JAN),
        Some("filing-0002"),
        letter_json("x"),
        401,
    ))
    .await;
    run.run(file(
        "0201048",
        k,
        Some(JAN),
        Some("filing-0002"),
        letter_json("x"),
        404,
    ))
    .await;
    run.run(file(
        T2,
        k,
        Some(JAN),
        Some("filing-0003"),
        letter_json("x"),
        502,
    ))
    .await;
    let url = format!("/v1/tenants/{T1}/resident/filings/{id}");
    for (pesel, want) in [(Some(JAN), 200), (Some(ANNA), 404), (None, 400)] {
        run.run(get(FILING, &url, k, pesel, want)).await;
    }
    run.run(get(FILING, &url, None, Some(JAN), 401)).await;
    f.pz.sign_as(&last_pz_id(&f.pz), &jan_at_pz()).unwrap();
    run.run(get(
        SIGNED,
        format!("/filing/{T1}/{id}/signed"),
        None,
        None,
        303,
    ))
    .await;
    run.run(get(
        SIGNED,
        format!("/filing/{T1}/nope/signed"),
        None,
        None,
        404,
    ))
    .await;
    run.run(get(
        CANCELLED,
        format!("/filing/{T1}/{id}/cancelled"),
        None,
        None,
        303,
    ))
    .await;
    run.run(get(
        CANCELLED,
        format!("/filing/{T2}/nope/cancelled"),
        None,
        None,
        404,
    ))
    .await;
    run.with = with;
}
