//! The case service's records on both backends (SQLite in a temp file and a fresh Postgres
//! database, like tests/contract.rs): a letter is registered once and its case watched once,
//! a parked registration never overrides a registered one, status changes apply strictly in
//! sequence, and every lookup stays inside its tenant.
//!
//! `cargo test -p gsko-store --test case_work` (Postgres at `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

mod support;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use gsko_model::{CaseRef, CaseStatus, DecisionRecipient, Pesel, Teryt};
use gsko_store::{
    CaseWorkStore, PgStore, RegistrationRecord, RegistrationState, SqliteStore, WatchedCase,
};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use support::{at, pesel, teryt, PgTestDb};

type Store = Arc<dyn CaseWorkStore>;

async fn with_sqlite_file<F, Fut>(f: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("cases.db"))
        .await
        .unwrap_or_else(|e| panic!("SqliteStore::open: {e}"));
    f(Arc::new(store.clone())).await;
    store.close().await;
}

async fn with_pg<F, Fut>(f: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = PgTestDb::create().await;
    let store = PgStore::connect(&db.url, 4)
        .await
        .unwrap_or_else(|e| panic!("PgStore::connect: {e}"));
    let result = AssertUnwindSafe(f(Arc::new(store.clone())))
        .catch_unwind()
        .await;
    store.close().await;
    db.drop_db().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $( #[tokio::test] async fn $name() { super::with_sqlite_file(super::$name).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::with_pg(super::$name).await; } )*
        }
    };
}

on_both_backends!(
    recording_a_registration_twice_keeps_one_registration_and_one_watch,
    a_letter_registered_to_one_case_is_not_moved_to_another,
    parking_never_downgrades_a_registered_letter,
    a_status_change_applies_only_as_the_next_in_sequence,
    open_case_of_matches_resident_class_and_open_cases_only,
    cases_to_poll_takes_open_cases_never_polled_first_up_to_the_limit,
    a_raised_decision_keeps_its_first_sha,
    every_lookup_stays_inside_its_tenant,
);

const A: &str = "0201011";
const B: &str = "1465011";

fn znak(s: &str) -> CaseRef {
    CaseRef::parse(s).expect("valid znak sprawy in test")
}

fn recipient(p: &Pesel) -> DecisionRecipient {
    DecisionRecipient {
        name: "Jan Kowalski".to_owned(),
        pesel: Some(p.clone()),
        nip: None,
        epuap_address: Some("/jkowalski/domyslna".to_owned()),
        ade_address: None,
    }
}

/// A case opened by `letter` at `at(registered)`, status registered, seq 1.
fn case(
    tenant: &Teryt,
    id: &str,
    letter: &str,
    resident: &Pesel,
    znak_sprawy: &str,
    registered: i64,
) -> WatchedCase {
    let case_ref = znak(znak_sprawy);
    WatchedCase {
        tenant: tenant.clone(),
        ezd_case_id: id.to_owned(),
        jrwa_symbol: case_ref.jrwa_symbol().to_owned(),
        case_ref,
        letter_id: letter.to_owned(),
        resident_pesel: Some(resident.clone()),
        recipient: recipient(resident),
        sender_contact_id: Some("interesant-17".to_owned()),
        status: CaseStatus::Registered,
        seq: 1,
        open: true,
        registered_at: at(registered),
        last_polled_at: None,
    }
}

/// The registration of `letter` into `watch`'s case.
fn registration(letter: &str, watch: &WatchedCase, when: DateTime<Utc>) -> RegistrationRecord {
    RegistrationRecord {
        tenant: watch.tenant.clone(),
        letter_id: letter.to_owned(),
        state: RegistrationState::Registered,
        ezd_case_id: Some(watch.ezd_case_id.clone()),
        case_ref: Some(watch.case_ref.as_str().to_owned()),
        rpw: Some(format!("RPW/{letter}/2026")),
        problem: None,
        updated_at: when,
    }
}

/// Registers `letter` into `watch`'s case (watching it).
async fn register(s: &Store, letter: &str, watch: &WatchedCase, when: i64) {
    s.record_registration(&registration(letter, watch, at(when)), watch)
        .await
        .expect("record registration");
}

fn ids(cases: &[WatchedCase]) -> Vec<&str> {
    cases.iter().map(|c| c.ezd_case_id.as_str()).collect()
}

async fn recording_a_registration_twice_keeps_one_registration_and_one_watch(s: Store) {
    let t = teryt(A);
    let p = pesel(1);
    let mut watch = case(&t, "EZD-1", "L-1", &p, "FN.3120.1.2026", 10);
    // Nanoseconds are cut to the microseconds both backends keep.
    watch.registered_at += chrono::Duration::nanoseconds(1_234_567);
    let rec = registration("L-1", &watch, at(11));
    s.record_registration(&rec, &watch).await.unwrap();

    let stored = s.registration(&t, "L-1").await.unwrap().expect("recorded");
    assert_eq!(stored, rec);
    let mut expected = watch.clone();
    expected.registered_at = at(10) + chrono::Duration::microseconds(1_234);
    assert_eq!(s.watched_case(&t, "EZD-1").await.unwrap(), Some(expected));

    // The case moves on; a copy of the same registration changes neither row.
    assert!(s
        .record_status(&t, "EZD-1", &watch.case_ref, CaseStatus::Assigned, 2, true)
        .await
        .unwrap());
    let again = RegistrationRecord {
        updated_at: at(99),
        ..rec.clone()
    };
    s.record_registration(&again, &watch).await.unwrap();
    assert_eq!(s.registration(&t, "L-1").await.unwrap(), Some(rec.clone()));
    let polled = s.cases_to_poll(&t, 10).await.unwrap();
    assert_eq!(ids(&polled), ["EZD-1"]);
    assert_eq!((polled[0].status, polled[0].seq), (CaseStatus::Assigned, 2));

    // A second letter joining the same case registers, and the case stays watched once with
    // its status and seq.
    let joined = WatchedCase {
        letter_id: "L-2".to_owned(),
        registered_at: at(50),
        ..watch.clone()
    };
    register(&s, "L-2", &joined, 51).await;
    assert_eq!(
        s.registration(&t, "L-2").await.unwrap().map(|r| r.state),
        Some(RegistrationState::Registered)
    );
    let polled = s.cases_to_poll(&t, 10).await.unwrap();
    assert_eq!(ids(&polled), ["EZD-1"]);
    assert_eq!(
        (
            polled[0].letter_id.as_str(),
            polled[0].status,
            polled[0].seq
        ),
        ("L-1", CaseStatus::Assigned, 2)
    );

    // A record that asks to be parked is recorded as registered all the same; the znak is
    // the watched case's when the record has none.
    let w3 = case(&t, "EZD-3", "L-3", &p, "FN.3120.3.2026", 60);
    let odd = RegistrationRecord {
        state: RegistrationState::Parked,
        problem: Some("stale".to_owned()),
        case_ref: None,
        ezd_case_id: None,
        ..registration("L-3", &w3, at(61))
    };
    s.record_registration(&odd, &w3).await.unwrap();
    let stored = s.registration(&t, "L-3").await.unwrap().expect("recorded");
    assert_eq!(stored.state, RegistrationState::Registered);
    assert_eq!(stored.problem, None);
    assert_eq!(stored.ezd_case_id.as_deref(), Some("EZD-3"));
    assert_eq!(stored.case_ref.as_deref(), Some("FN.3120.3.2026"));
}

async fn a_letter_registered_to_one_case_is_not_moved_to_another(s: Store) {
    let t = teryt(A);
    let p = pesel(2);
    let first = case(&t, "EZD-1", "L-1", &p, "FN.3120.1.2026", 10);
    register(&s, "L-1", &first, 11).await;
    let before = s.registration(&t, "L-1").await.unwrap();

    let other = case(&t, "EZD-2", "L-1", &p, "FN.3120.2.2026", 20);
    let err = s
        .record_registration(&registration("L-1", &other, at(21)), &other)
        .await
        .expect_err("a letter registered to another case is refused");
    assert!(err.to_string().contains("another EZD case"), "{err}");
    assert_eq!(s.registration(&t, "L-1").await.unwrap(), before);
    // Nothing of the refused call was written: the other case is not watched.
    assert_eq!(s.watched_case(&t, "EZD-2").await.unwrap(), None);

    // A record naming another case than its watch is refused before anything is written.
    let mismatched = registration("L-9", &first, at(30));
    let err = s
        .record_registration(&mismatched, &other)
        .await
        .expect_err("record and watch disagree");
    assert!(!err.to_string().contains(p.as_str()), "{err}");
    assert_eq!(s.registration(&t, "L-9").await.unwrap(), None);
    assert_eq!(s.watched_case(&t, "EZD-2").await.unwrap(), None);
}

async fn parking_never_downgrades_a_registered_letter(s: Store) {
    let t = teryt(A);
    s.park_registration(
        &t,
        "L-1",
        "EZD returned a malformed znak sprawy",
        Some("EZD-1"),
        Some("FN-3120-1"),
        None,
    )
    .await
    .unwrap();
    let parked = s.parked_registrations(&t, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].state, RegistrationState::Parked);
    assert_eq!(parked[0].case_ref.as_deref(), Some("FN-3120-1"));
    assert_eq!(
        parked[0].problem.as_deref(),
        Some("EZD returned a malformed znak sprawy")
    );

    // Parking again replaces the reason and keeps what EZD returned before.
    s.park_registration(&t, "L-1", "EZD unavailable", None, None, Some("RPW/7/2026"))
        .await
        .unwrap();
    let again = s.registration(&t, "L-1").await.unwrap().expect("parked");
    assert_eq!(again.state, RegistrationState::Parked);
    assert_eq!(again.problem.as_deref(), Some("EZD unavailable"));
    assert_eq!(again.ezd_case_id.as_deref(), Some("EZD-1"));
    assert_eq!(again.case_ref.as_deref(), Some("FN-3120-1"));
    assert_eq!(again.rpw.as_deref(), Some("RPW/7/2026"));

    // An admin's retry registers it: the problem is gone and it is no longer listed.
    let watch = case(&t, "EZD-1", "L-1", &pesel(3), "FN.3120.1.2026", 10);
    register(&s, "L-1", &watch, 11).await;
    let registered = s.registration(&t, "L-1").await.unwrap().expect("stored");
    assert_eq!(registered.state, RegistrationState::Registered);
    assert_eq!(registered.problem, None);
    assert_eq!(registered.case_ref.as_deref(), Some("FN.3120.1.2026"));
    assert!(s.parked_registrations(&t, 10).await.unwrap().is_empty());

    // A late park (a stale copy of the command) does not undo the registration.
    s.park_registration(&t, "L-1", "late failure", None, Some("garbage"), None)
        .await
        .unwrap();
    assert_eq!(s.registration(&t, "L-1").await.unwrap(), Some(registered));
    assert!(s.parked_registrations(&t, 10).await.unwrap().is_empty());

    // The list is oldest first and honours the limit.
    for letter in ["L-2", "L-3", "L-4"] {
        s.park_registration(&t, letter, "EZD refused the letter", None, None, None)
            .await
            .unwrap();
        // Distinct instants, so "oldest first" is visible.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let listed = s.parked_registrations(&t, 2).await.unwrap();
    let letters: Vec<&str> = listed.iter().map(|r| r.letter_id.as_str()).collect();
    assert_eq!(letters, ["L-2", "L-3"]);
}

async fn a_status_change_applies_only_as_the_next_in_sequence(s: Store) {
    let t = teryt(A);
    let watch = case(&t, "EZD-1", "L-1", &pesel(4), "FN.3120.1.2026", 10);
    register(&s, "L-1", &watch, 11).await;
    let z = &watch.case_ref;

    assert!(s
        .record_status(&t, "EZD-1", z, CaseStatus::Assigned, 2, true)
        .await
        .unwrap());
    // A replay of the same change, a stale one and a gap change nothing.
    assert!(!s
        .record_status(&t, "EZD-1", z, CaseStatus::Assigned, 2, true)
        .await
        .unwrap());
    assert!(!s
        .record_status(&t, "EZD-1", z, CaseStatus::Registered, 1, true)
        .await
        .unwrap());
    assert!(!s
        .record_status(&t, "EZD-1", z, CaseStatus::Closed, 4, false)
        .await
        .unwrap());
    let now = s.watched_case(&t, "EZD-1").await.unwrap().expect("watched");
    assert_eq!(
        (now.status, now.seq, now.open),
        (CaseStatus::Assigned, 2, true)
    );

    // Re-registered under a new znak: the znak follows.
    let new_znak = znak("OŚ.6131.5.2026");
    assert!(s
        .record_status(&t, "EZD-1", &new_znak, CaseStatus::ReRegistered, 3, true)
        .await
        .unwrap());
    assert!(s
        .record_status(&t, "EZD-1", &new_znak, CaseStatus::Closed, 4, false)
        .await
        .unwrap());
    let now = s.watched_case(&t, "EZD-1").await.unwrap().expect("watched");
    assert_eq!(
        (now.case_ref.as_str(), now.status, now.seq, now.open),
        ("OŚ.6131.5.2026", CaseStatus::Closed, 4, false)
    );
    // The class it was opened in stays.
    assert_eq!(now.jrwa_symbol, "3120");

    // An unknown case is not created by a status change.
    assert!(!s
        .record_status(&t, "EZD-404", z, CaseStatus::Assigned, 1, true)
        .await
        .unwrap());
    assert_eq!(s.watched_case(&t, "EZD-404").await.unwrap(), None);
}

async fn open_case_of_matches_resident_class_and_open_cases_only(s: Store) {
    let t = teryt(A);
    let (p, other) = (pesel(5), pesel(6));
    let older = case(&t, "EZD-1", "L-1", &p, "FN.3120.1.2026", 10);
    let newer = case(&t, "EZD-2", "L-2", &p, "FN.3120.2.2026", 20);
    let other_class = case(&t, "EZD-3", "L-3", &p, "FN.3110.1.2026", 30);
    let other_resident = case(&t, "EZD-4", "L-4", &other, "FN.3120.3.2026", 40);
    for (letter, w) in [
        ("L-1", &older),
        ("L-2", &newer),
        ("L-3", &other_class),
        ("L-4", &other_resident),
    ] {
        register(&s, letter, w, 0).await;
    }

    let found = s.open_case_of(&t, &p, "3120").await.unwrap();
    assert_eq!(
        found,
        Some(newer.clone()),
        "the newest open case of the class"
    );
    assert_eq!(
        s.open_case_of(&t, &p, "3110")
            .await
            .unwrap()
            .map(|c| c.ezd_case_id),
        Some("EZD-3".to_owned())
    );
    assert_eq!(
        s.open_case_of(&t, &other, "3120")
            .await
            .unwrap()
            .map(|c| c.ezd_case_id),
        Some("EZD-4".to_owned())
    );
    assert_eq!(s.open_case_of(&t, &pesel(7), "3120").await.unwrap(), None);
    assert_eq!(s.open_case_of(&t, &p, "6131").await.unwrap(), None);

    // Once the newer case closes, the older open one is the resident's case; once both are
    // closed there is none.
    assert!(s
        .record_status(&t, "EZD-2", &newer.case_ref, CaseStatus::Closed, 2, false)
        .await
        .unwrap());
    assert_eq!(
        s.open_case_of(&t, &p, "3120")
            .await
            .unwrap()
            .map(|c| c.ezd_case_id),
        Some("EZD-1".to_owned())
    );
    assert!(s
        .record_status(&t, "EZD-1", &older.case_ref, CaseStatus::Archived, 2, false)
        .await
        .unwrap());
    assert_eq!(s.open_case_of(&t, &p, "3120").await.unwrap(), None);

    // A case watched without a resident is never anyone's.
    let anonymous = WatchedCase {
        resident_pesel: None,
        ..case(&t, "EZD-5", "L-5", &p, "FN.3120.9.2026", 50)
    };
    register(&s, "L-5", &anonymous, 51).await;
    assert_eq!(s.open_case_of(&t, &p, "3120").await.unwrap(), None);
    assert_eq!(
        s.watched_case(&t, "EZD-5").await.unwrap(),
        Some(anonymous),
        "a case without a resident round-trips"
    );
}

async fn cases_to_poll_takes_open_cases_never_polled_first_up_to_the_limit(s: Store) {
    let t = teryt(A);
    let p = pesel(8);
    for (n, id) in ["EZD-1", "EZD-2", "EZD-3", "EZD-4", "EZD-5"]
        .into_iter()
        .enumerate()
    {
        let n = n as i64 + 1;
        let w = case(
            &t,
            id,
            &format!("L-{n}"),
            &p,
            &format!("FN.3120.{n}.2026"),
            n * 10,
        );
        register(&s, &format!("L-{n}"), &w, n * 10).await;
    }
    s.mark_polled(&t, "EZD-1", at(300)).await.unwrap();
    s.mark_polled(&t, "EZD-2", at(100)).await.unwrap();
    s.mark_polled(&t, "EZD-4", at(200)).await.unwrap();
    // EZD-5 is closed: never polled again.
    let z5 = znak("FN.3120.5.2026");
    assert!(s
        .record_status(&t, "EZD-5", &z5, CaseStatus::Closed, 2, false)
        .await
        .unwrap());

    let all = s.cases_to_poll(&t, 10).await.unwrap();
    assert_eq!(ids(&all), ["EZD-3", "EZD-2", "EZD-4", "EZD-1"]);
    assert_eq!(all[0].last_polled_at, None);
    assert_eq!(all[1].last_polled_at, Some(at(100)));
    assert_eq!(
        ids(&s.cases_to_poll(&t, 2).await.unwrap()),
        ["EZD-3", "EZD-2"]
    );

    // Polling moves a case to the back of the queue.
    s.mark_polled(&t, "EZD-3", at(400)).await.unwrap();
    assert_eq!(
        ids(&s.cases_to_poll(&t, 10).await.unwrap()),
        ["EZD-2", "EZD-4", "EZD-1", "EZD-3"]
    );
    assert!(s.cases_to_poll(&t, 0).await.unwrap().is_empty());
}

async fn a_raised_decision_keeps_its_first_sha(s: Store) {
    let t = teryt(A);
    assert_eq!(s.decision_sha(&t, "DEC-1").await.unwrap(), None);
    let (first, second) = ("ab".repeat(32), "cd".repeat(32));
    s.record_decision(&t, "DEC-1", "EZD-1", &first)
        .await
        .unwrap();
    assert_eq!(
        s.decision_sha(&t, "DEC-1").await.unwrap(),
        Some(first.clone())
    );
    // Recorded again (a replay, or another document claiming the id): the first row stays.
    s.record_decision(&t, "DEC-1", "EZD-2", &second)
        .await
        .unwrap();
    assert_eq!(s.decision_sha(&t, "DEC-1").await.unwrap(), Some(first));
    assert_eq!(s.decision_sha(&t, "DEC-2").await.unwrap(), None);
}

async fn every_lookup_stays_inside_its_tenant(s: Store) {
    let (a, b) = (teryt(A), teryt(B));
    let p = pesel(9);
    let wa = case(&a, "EZD-1", "L-1", &p, "FN.3120.1.2026", 10);
    register(&s, "L-1", &wa, 11).await;
    s.park_registration(&a, "L-2", "EZD refused the letter", None, None, None)
        .await
        .unwrap();
    s.record_decision(&a, "DEC-1", "EZD-1", &"ab".repeat(32))
        .await
        .unwrap();

    assert_eq!(s.registration(&b, "L-1").await.unwrap(), None);
    assert_eq!(s.registration(&b, "L-2").await.unwrap(), None);
    assert!(s.parked_registrations(&b, 10).await.unwrap().is_empty());
    assert_eq!(s.watched_case(&b, "EZD-1").await.unwrap(), None);
    assert_eq!(s.open_case_of(&b, &p, "3120").await.unwrap(), None);
    assert!(s.cases_to_poll(&b, 10).await.unwrap().is_empty());
    assert_eq!(s.decision_sha(&b, "DEC-1").await.unwrap(), None);
    // Another tenant's writers cannot move tenant A's case.
    assert!(!s
        .record_status(&b, "EZD-1", &wa.case_ref, CaseStatus::Closed, 2, false)
        .await
        .unwrap());
    s.mark_polled(&b, "EZD-1", at(500)).await.unwrap();
    let still = s.watched_case(&a, "EZD-1").await.unwrap().expect("watched");
    assert_eq!(
        (still.status, still.open, still.last_polled_at),
        (CaseStatus::Registered, true, None)
    );

    // The same ids in tenant B are B's own rows, independent of A's.
    let wb = case(&b, "EZD-1", "L-1", &p, "FN.3120.8.2026", 20);
    register(&s, "L-1", &wb, 21).await;
    s.record_decision(&b, "DEC-1", "EZD-1", &"cd".repeat(32))
        .await
        .unwrap();
    assert_eq!(
        s.watched_case(&b, "EZD-1")
            .await
            .unwrap()
            .map(|c| c.case_ref),
        Some(znak("FN.3120.8.2026"))
    );
    assert_eq!(
        s.watched_case(&a, "EZD-1")
            .await
            .unwrap()
            .map(|c| c.case_ref),
        Some(znak("FN.3120.1.2026"))
    );
    assert_eq!(
        s.decision_sha(&a, "DEC-1").await.unwrap(),
        Some("ab".repeat(32))
    );
    assert_eq!(
        s.decision_sha(&b, "DEC-1").await.unwrap(),
        Some("cd".repeat(32))
    );
    assert_eq!(s.parked_registrations(&a, 10).await.unwrap().len(), 1);
}
