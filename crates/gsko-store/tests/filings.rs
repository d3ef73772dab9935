//! The filing records on both backends: a filing is stored once per idempotency key, moves only
//! from the states a change may leave, and queues its bus messages with the change that sends
//! them (or not at all).
//!
//! `cargo test -p gsko-store --test filings` (Postgres at `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

mod support;

use gsko_store::{
    FilingOutcome, FilingRoute, FilingStatus, FilingStore, FilingUpdate, NewFiling, PaymentStore,
    PgStore, SqliteStore,
};
use std::sync::Arc;
use support::*;

trait Both: FilingStore + PaymentStore {}
impl<T: FilingStore + PaymentStore> Both for T {}

fn new_filing(id: &str, key: &str, hash: &str) -> NewFiling {
    NewFiling {
        tenant: teryt("0201011"),
        filing_id: id.into(),
        client: "portal".into(),
        idempotency_key: key.into(),
        request_hash: hash.into(),
        resident_ref: "ref-1".into(),
        route: FilingRoute::Epuap,
        title: "Wniosek o zwrot nadpłaty".into(),
        return_url: "https://portal.example.pl/pisma".into(),
        unsigned_sha256: "aa".repeat(32),
    }
}

async fn scenario(s: Arc<dyn Both>) {
    let t = teryt("0201011");
    // Stored once per key; the same key with the same request is the same filing.
    let created = match s
        .create_filing(&new_filing("f1", "key-1", "h1"))
        .await
        .unwrap()
    {
        FilingOutcome::Created(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(created.status, FilingStatus::Created);
    assert_eq!(created.sign_url, None);
    match s
        .create_filing(&new_filing("f2", "key-1", "h1"))
        .await
        .unwrap()
    {
        FilingOutcome::Existing(r) => assert_eq!(r, created),
        other => panic!("{other:?}"),
    }
    match s
        .create_filing(&new_filing("f3", "key-1", "h2"))
        .await
        .unwrap()
    {
        FilingOutcome::KeyReused { filing_id } => assert_eq!(filing_id, "f1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.filing(&t, "f2").await.unwrap(), None);
    // Another tenant does not see it.
    assert_eq!(s.filing(&teryt("0201032"), "f1").await.unwrap(), None);

    // A move from a state the filing is not in writes nothing.
    let mut to_submitted = FilingUpdate::to(FilingStatus::Submitted);
    to_submitted.upp_id = Some("UPP-1".into());
    assert_eq!(
        s.update_filing(&t, "f1", &[FilingStatus::Signed], &to_submitted, &[])
            .await
            .unwrap(),
        None
    );
    let mut awaiting = FilingUpdate::to(FilingStatus::AwaitingSignature);
    awaiting.sign_url = Some("https://pz.example/podpisz/1".into());
    let r = s
        .update_filing(&t, "f1", &[FilingStatus::Created], &awaiting, &[])
        .await
        .unwrap()
        .expect("moved");
    assert_eq!(r.status, FilingStatus::AwaitingSignature);
    assert_eq!(r.sign_url.as_deref(), Some("https://pz.example/podpisz/1"));
    assert!(r.updated_at >= r.created_at);

    // Fields not named in a change are kept; the detail is replaced.
    let mut signed = FilingUpdate::to(FilingStatus::Signed).detail("nadaj: timeout");
    signed.signed_sha256 = Some("bb".repeat(32));
    let event = ev(&t, 1, taxpayer("T1", None, "x"));
    let r = s
        .update_filing(
            &t,
            "f1",
            &[FilingStatus::Created, FilingStatus::AwaitingSignature],
            &signed,
            std::slice::from_ref(&event),
        )
        .await
        .unwrap()
        .expect("moved");
    assert_eq!(r.sign_url.as_deref(), Some("https://pz.example/podpisz/1"));
    assert_eq!(r.signed_sha256, Some("bb".repeat(32)));
    assert_eq!(r.status_detail.as_deref(), Some("nadaj: timeout"));
    let pending = s.outbox_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event.id, event.id);

    // A refused move queues nothing.
    assert_eq!(
        s.update_filing(
            &t,
            "f1",
            &[FilingStatus::Created],
            &to_submitted,
            std::slice::from_ref(&event)
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(s.outbox_pending(10).await.unwrap().len(), 1);

    let r = s
        .update_filing(&t, "f1", &[FilingStatus::Signed], &to_submitted, &[])
        .await
        .unwrap()
        .expect("moved");
    assert_eq!(
        (r.status, r.upp_id.as_deref(), r.status_detail.as_deref()),
        (FilingStatus::Submitted, Some("UPP-1"), None)
    );
    assert_eq!(s.filing(&t, "f1").await.unwrap(), Some(r.clone()));
    assert_eq!(
        s.filings_in(&t, FilingStatus::Submitted, 10).await.unwrap(),
        vec![r]
    );
    assert!(s
        .filings_in(&t, FilingStatus::Uncertain, 10)
        .await
        .unwrap()
        .is_empty());

    // Text with a NUL is refused (Postgres cannot store it) on both backends.
    let mut bad = new_filing("f9", "key-9", "h9");
    bad.title = "a\0b".into();
    assert!(s.create_filing(&bad).await.is_err());
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("f.db")).await.unwrap();
    scenario(Arc::new(store.clone())).await;
    store.close().await;
}

#[tokio::test]
async fn postgres() {
    let db = PgTestDb::create().await;
    let store = PgStore::connect(&db.url, 4).await.unwrap();
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(scenario(
        Arc::new(store.clone()),
    )))
    .await;
    store.close().await;
    db.drop_db().await;
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
