//! The delivery records on both backends (SQLite in memory and a fresh Postgres database, like
//! tests/contract.rs): a command is claimed once per tenant and decision, every state change is
//! guarded by the state it leaves, and a delivery ends once, its `decision.delivered` event in
//! the outbox of the same transaction.
//!
//! `cargo test -p gsko-store --test deliveries` (Postgres at DATABASE_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres).

mod support;

use chrono::Utc;
use gsko_model::*;
use gsko_store::{
    Claimed, DeliveryState, DeliveryStore, PaymentStore, PgStore, SqliteStore, StoreError,
};
use std::future::Future;
use std::sync::Arc;
use support::{teryt, PgTestDb};

trait TestStore: DeliveryStore + PaymentStore {}
impl<T: DeliveryStore + PaymentStore + ?Sized> TestStore for T {}

async fn on_both<F, Fut>(f: F)
where
    F: Fn(Arc<dyn TestStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = SqliteStore::open(":memory:").await.expect("SQLite opens");
    f(Arc::new(sqlite)).await;

    let db = PgTestDb::create().await;
    let pg = PgStore::connect(&db.url, 4)
        .await
        .expect("Postgres connects");
    let result =
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(f(Arc::new(pg.clone()))))
            .await;
    pg.close().await;
    db.drop_db().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn command(decision_id: &str) -> DecisionDelivery {
    DecisionDelivery {
        decision_id: decision_id.to_owned(),
        case_ref: "FN.3120.1.2026".parse().unwrap(),
        title: "Decyzja w sprawie wymiaru podatku od nieruchomości na 2026 r.".to_owned(),
        recipient: DecisionRecipient {
            name: "Jan Kowalski".to_owned(),
            pesel: Some(support::pesel(7)),
            nip: None,
            epuap_address: Some("/jkowalski/domyslna".to_owned()),
            ade_address: None,
        },
        document: StoredFile {
            name: "decyzja.xml".to_owned(),
            mime_type: "text/xml".to_owned(),
            size_bytes: 3,
            sha256: "ab".repeat(32),
            description: None,
        },
        channel: DeliveryPreference::Auto,
        deliver_by: None,
        in_reply_to: Some("epuap-123".to_owned()),
    }
}

fn delivered(
    tenant: &Teryt,
    decision_id: &str,
    outcome: DeliveryOutcome,
    shipment: Option<&str>,
) -> Event {
    let failed = outcome == DeliveryOutcome::Failed;
    Event::new(
        format!("/gsko/delivery/{tenant}"),
        tenant.clone(),
        1,
        EventData::DecisionDelivered(DecisionDelivered {
            decision_id: decision_id.to_owned(),
            outcome,
            channel: DeliveryChannel::Epuap,
            at: Utc::now(),
            shipment_id: shipment.map(str::to_owned),
            evidence: (!failed).then(|| DeliveryEvidence {
                kind: EvidenceKind::Upd,
                id: "UPD-1".to_owned(),
                code: None,
                sha256: "cd".repeat(32),
            }),
            reason: failed.then(|| "Nie ma skrytki".to_owned()),
            recipient_pesel: None,
            case_ref: None,
            title: None,
            in_reply_to: None,
        }),
    )
    .with_stable_id(&format!("delivered/{decision_id}"))
}

#[tokio::test]
async fn a_decision_is_claimed_once_per_tenant() {
    on_both(|s| async move {
        let (a, b) = (teryt("0201011"), teryt("1465011"));
        let cmd = command("DEC-1");
        let Claimed::New(first) = s.claim(&a, &cmd, DeliveryChannel::Epuap).await.unwrap() else {
            panic!("the first claim stores the command")
        };
        assert_eq!(first.state, DeliveryState::Pending);
        assert_eq!(first.command, cmd);
        assert_eq!(first.attempts, 0);

        // A second copy, even naming another channel, finds the stored record unchanged.
        let again = s
            .claim(&a, &cmd, DeliveryChannel::EDoreczenia)
            .await
            .unwrap();
        assert_eq!(again, Claimed::Existing(first.clone()));
        assert_eq!(s.by_decision(&a, "DEC-1").await.unwrap(), Some(first));

        // The same decision id in another tenant is another delivery.
        assert!(matches!(
            s.claim(&b, &cmd, DeliveryChannel::EDoreczenia).await.unwrap(),
            Claimed::New(r) if r.channel == DeliveryChannel::EDoreczenia
        ));
        assert_eq!(s.by_decision(&a, "DEC-2").await.unwrap(), None);
        assert_eq!(s.by_decision(&a, "DEC\0").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn every_step_moves_only_from_the_state_it_expects() {
    on_both(|s| async move {
        let t = teryt("0201011");
        s.claim(&t, &command("DEC-1"), DeliveryChannel::EDoreczenia)
            .await
            .unwrap();
        // Not sending yet: cannot be sent, parked or released.
        assert!(!s.mark_sent(&t, "DEC-1", Some("M-1")).await.unwrap());
        assert!(!s.mark_uncertain(&t, "DEC-1", "x").await.unwrap());
        assert!(!s.release(&t, "DEC-1", "x").await.unwrap());

        assert!(s.mark_sending(&t, "DEC-1").await.unwrap());
        assert!(!s.mark_sending(&t, "DEC-1").await.unwrap(), "only once");
        // The channel was unavailable: back to pending, the reason kept, the attempt counted.
        assert!(s.release(&t, "DEC-1", "UA API unavailable").await.unwrap());
        assert!(s.mark_sending(&t, "DEC-1").await.unwrap());
        assert!(s.mark_sent(&t, "DEC-1", Some("M-1")).await.unwrap());
        let r = s.by_decision(&t, "DEC-1").await.unwrap().unwrap();
        assert_eq!(r.state, DeliveryState::Sent);
        assert_eq!(r.shipment_id.as_deref(), Some("M-1"));
        assert_eq!(r.attempts, 2);
        assert_eq!(r.last_error.as_deref(), Some("UA API unavailable"));
        assert!(!s.mark_sending(&t, "DEC-1").await.unwrap());

        // In flight for its channel only.
        let flying = s.in_flight(DeliveryChannel::EDoreczenia, 10).await.unwrap();
        assert_eq!(flying.len(), 1);
        assert_eq!(flying[0].decision_id, "DEC-1");
        assert!(s
            .in_flight(DeliveryChannel::Epuap, 10)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn an_uncertain_send_is_parked_for_an_admin() {
    on_both(|s| async move {
        let t = teryt("0201011");
        for id in ["DEC-1", "DEC-2"] {
            s.claim(&t, &command(id), DeliveryChannel::Epuap)
                .await
                .unwrap();
            s.mark_sending(&t, id).await.unwrap();
        }
        assert!(s
            .mark_uncertain(&t, "DEC-1", "dorecz: answer lost")
            .await
            .unwrap());
        let parked = s.parked(&t).await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].decision_id, "DEC-1");
        assert_eq!(parked[0].state, DeliveryState::Uncertain);
        assert_eq!(parked[0].last_error.as_deref(), Some("dorecz: answer lost"));
        assert!(s.parked(&teryt("1465011")).await.unwrap().is_empty());
        // Not in flight: nobody polls or resends it.
        assert!(s
            .in_flight(DeliveryChannel::Epuap, 10)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_delivery_ends_once_with_its_event_in_the_outbox() {
    on_both(|s| async move {
        let t = teryt("0201011");
        s.claim(&t, &command("DEC-1"), DeliveryChannel::Epuap)
            .await
            .unwrap();
        s.mark_sending(&t, "DEC-1").await.unwrap();
        s.mark_uncertain(&t, "DEC-1", "lost").await.unwrap();
        // The UPD arrives for the parked shipment: it ends it.
        let ev = delivered(&t, "DEC-1", DeliveryOutcome::Delivered, Some("Z-9"));
        assert!(s.finish(&t, "DEC-1", &ev).await.unwrap());
        let r = s.by_decision(&t, "DEC-1").await.unwrap().unwrap();
        assert_eq!(r.state, DeliveryState::Delivered);
        assert_eq!(r.shipment_id.as_deref(), Some("Z-9"));
        assert!(r.finished_at.is_some());
        assert!(s.parked(&t).await.unwrap().is_empty());

        // Again (the UPD pulled twice): nothing changes, nothing is queued twice.
        let again = delivered(&t, "DEC-1", DeliveryOutcome::DeemedDelivered, None);
        assert!(!s.finish(&t, "DEC-1", &again).await.unwrap());
        assert!(!s.mark_sent(&t, "DEC-1", Some("x")).await.unwrap());
        let pending = s.outbox_pending(10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].event, ev);
        assert_eq!(
            s.by_decision(&t, "DEC-1").await.unwrap().unwrap().state,
            DeliveryState::Delivered
        );

        // An unknown decision ends nothing.
        let ghost = delivered(&t, "DEC-404", DeliveryOutcome::Delivered, None);
        assert!(!s.finish(&t, "DEC-404", &ghost).await.unwrap());
        assert_eq!(s.outbox_pending(10).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_failure_keeps_its_reason_and_a_wrong_event_is_refused() {
    on_both(|s| async move {
        let t = teryt("0201011");
        s.claim(&t, &command("DEC-1"), DeliveryChannel::Epuap)
            .await
            .unwrap();
        s.mark_sending(&t, "DEC-1").await.unwrap();

        // Another decision's event, or an event of another type, is a programming error.
        let other = delivered(&t, "DEC-2", DeliveryOutcome::Failed, None);
        assert!(matches!(
            s.finish(&t, "DEC-1", &other).await,
            Err(StoreError::Database(_))
        ));
        let wrong = Event::new(
            "/gsko/test",
            t.clone(),
            1,
            EventData::DecisionDeliver(command("DEC-1")),
        );
        assert!(matches!(
            s.finish(&t, "DEC-1", &wrong).await,
            Err(StoreError::Database(_))
        ));
        assert!(s.outbox_pending(10).await.unwrap().is_empty());

        let failed = delivered(&t, "DEC-1", DeliveryOutcome::Failed, None);
        assert!(s.finish(&t, "DEC-1", &failed).await.unwrap());
        let r = s.by_decision(&t, "DEC-1").await.unwrap().unwrap();
        assert_eq!(r.state, DeliveryState::Failed);
        assert_eq!(r.last_error.as_deref(), Some("Nie ma skrytki"));
        let pending = s.outbox_pending(10).await.unwrap();
        assert_eq!(pending.len(), 1);
        let EventData::DecisionDelivered(d) = &pending[0].event.data else {
            panic!("{:?}", pending[0].event)
        };
        assert_eq!(d.outcome, DeliveryOutcome::Failed);
    })
    .await;
}
