//! The store contract: one suite, run against SQLite (in memory and in a WAL file) and against
//! Postgres (a fresh database per test on `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! `cargo test -p gsko-store --test contract`

mod support;

use gsko_model::{EventData, HolderRole, ImportCompleted, RejectedRecord};
use gsko_store::{ApplyOutcome, Store, StoreError};
use std::sync::Arc;
use support::*;

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $( #[tokio::test] async fn $name() { super::with_sqlite_memory(super::scenarios::$name).await; } )*
        }
        mod sqlite_file {
            $( #[tokio::test] async fn $name() { super::with_sqlite_file(super::scenarios::$name).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::with_pg(super::scenarios::$name).await; } )*
        }
    };
}

contract_tests!(
    full_view_of_one_resident,
    unknown_resident_has_no_view,
    duplicate_delivery_changes_nothing,
    older_version_is_ignored_and_reordering_ends_at_newer,
    replacing_an_account_replaces_its_holders,
    co_owner_sees_the_shared_account_with_both_names,
    tenants_are_isolated,
    batch_with_the_same_key_twice_keeps_the_highest_version,
    rejected_records_and_imports_are_stored_once_newest_first,
    records_arriving_before_their_account_and_taxpayer,
    empty_batch_and_ping,
    a_refused_event_fails_the_whole_batch,
);

const A: &str = "1465011";
const B: &str = "1432034";

fn taxpayer_name(data: &EventData) -> &str {
    match data {
        EventData::TaxpayerUpserted(t) => &t.name,
        _ => unreachable!(),
    }
}

mod scenarios {
    use super::*;
    use gsko_store::TableCounts;

    pub async fn full_view_of_one_resident(store: Arc<dyn Store>) {
        let t = teryt(A);
        let p = pesel(1);
        let events = vec![
            ev(&t, 1, taxpayer("T-1", Some(&p), "Jan Kowalski")),
            ev(&t, 1, account("K-1", &[("T-1", HolderRole::Owner)])),
            ev(&t, 1, liability("L-2", "K-1", 2026, 40_000)),
            ev(&t, 1, liability("L-9", "K-1", 2025, 38_000)),
            ev(&t, 1, liability("L-1", "K-1", 2026, 1_000)),
            ev(&t, 1, posting("P-2", "K-1", date(2026, 5, 15), 10_000)),
            ev(&t, 1, posting("P-1", "K-1", date(2026, 3, 15), 10_000)),
            ev(&t, 1, posting("P-0", "K-1", date(2026, 5, 15), 500)),
            ev(&t, 1, balance("K-1", 21_000)),
        ];
        let outcome = store.apply(&events).await.unwrap();
        assert_eq!(
            outcome,
            ApplyOutcome {
                applied: 9,
                ignored: 0
            }
        );

        let view = store
            .resident_view(&t, &p)
            .await
            .unwrap()
            .expect("resident is known");
        assert_eq!(view.tenant, A);
        assert_eq!(view.taxpayers.len(), 1);
        assert_eq!(
            EventData::TaxpayerUpserted(view.taxpayers[0].clone()),
            events[0].data,
            "taxpayer round-trips"
        );
        assert_eq!(view.accounts.len(), 1);
        let acc = &view.accounts[0];
        assert_eq!(
            EventData::TaxAccountUpserted(acc.account.clone()),
            events[1].data,
            "account round-trips"
        );
        assert_eq!(acc.holder_names, vec!["Jan Kowalski"]);
        let liabilities: Vec<&str> = acc
            .liabilities
            .iter()
            .map(|l| l.liability_id.as_str())
            .collect();
        assert_eq!(liabilities, vec!["L-9", "L-1", "L-2"], "by year, then id");
        assert_eq!(
            EventData::LiabilityUpserted(acc.liabilities[2].clone()),
            events[2].data,
            "installments round-trip"
        );
        let postings: Vec<&str> = acc.postings.iter().map(|p| p.posting_id.as_str()).collect();
        assert_eq!(postings, vec!["P-1", "P-0", "P-2"], "oldest first");
        assert_eq!(
            acc.balance.as_ref().map(|b| b.principal.grosze()),
            Some(21_000)
        );

        assert_eq!(
            store.counts(&t).await.unwrap(),
            TableCounts {
                taxpayers: 1,
                accounts: 1,
                liabilities: 3,
                postings: 3,
                balances: 1,
                rejected_records: 0
            }
        );
        assert_eq!(
            store.counts(&teryt(B)).await.unwrap(),
            TableCounts::default()
        );
    }

    pub async fn unknown_resident_has_no_view(store: Arc<dyn Store>) {
        let t = teryt(A);
        store
            .apply(&[ev(&t, 1, taxpayer("T-1", Some(&pesel(1)), "Jan Kowalski"))])
            .await
            .unwrap();
        assert_eq!(store.resident_view(&t, &pesel(2)).await.unwrap(), None);
        assert_eq!(
            store.resident_view(&teryt(B), &pesel(1)).await.unwrap(),
            None
        );
        // A taxpayer without accounts still has a (nearly empty) view.
        let view = store.resident_view(&t, &pesel(1)).await.unwrap().unwrap();
        assert!(view.accounts.is_empty());
    }

    pub async fn duplicate_delivery_changes_nothing(store: Arc<dyn Store>) {
        let t = teryt(A);
        let p = pesel(1);
        let events = vec![
            ev(&t, 3, taxpayer("T-1", Some(&p), "Jan Kowalski")),
            ev(&t, 3, account("K-1", &[("T-1", HolderRole::Owner)])),
            ev(&t, 3, liability("L-1", "K-1", 2026, 40_000)),
            ev(&t, 3, posting("P-1", "K-1", date(2026, 3, 15), 10_000)),
            ev(&t, 3, balance("K-1", 30_000)),
            ev(&t, 1, rejected("aa11", 7)),
            ev(&t, 1, import("aa11aa11aa11")),
        ];
        assert_eq!(
            store.apply(&events).await.unwrap(),
            ApplyOutcome {
                applied: 7,
                ignored: 0
            }
        );
        let before = (
            store.resident_view(&t, &p).await.unwrap(),
            store.counts(&t).await.unwrap(),
        );
        assert_eq!(
            store.apply(&events).await.unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 7
            }
        );
        // Same records, same version, different content: still ignored (equal is not newer).
        let renamed = vec![ev(&t, 3, taxpayer("T-1", Some(&p), "Someone Else"))];
        assert_eq!(
            store.apply(&renamed).await.unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 1
            }
        );
        let after = (
            store.resident_view(&t, &p).await.unwrap(),
            store.counts(&t).await.unwrap(),
        );
        assert_eq!(before, after);
    }

    pub async fn older_version_is_ignored_and_reordering_ends_at_newer(store: Arc<dyn Store>) {
        let t = teryt(A);
        let p = pesel(1);
        let setup = [ev(&t, 1, account("K-1", &[("T-1", HolderRole::Owner)]))];
        store.apply(&setup).await.unwrap();

        // Newer first, older second.
        let v2 = ev(&t, 2, taxpayer("T-1", Some(&p), "Jan Kowalski"));
        let v1 = ev(&t, 1, taxpayer("T-1", Some(&p), "Jan Kowalsky (typo)"));
        assert_eq!(
            store.apply(std::slice::from_ref(&v2)).await.unwrap(),
            ApplyOutcome {
                applied: 1,
                ignored: 0
            }
        );
        assert_eq!(
            store.apply(std::slice::from_ref(&v1)).await.unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 1
            }
        );
        let view = store.resident_view(&t, &p).await.unwrap().unwrap();
        assert_eq!(view.taxpayers[0].name, "Jan Kowalski");

        // Older first, newer second, for a liability.
        store
            .apply(&[ev(&t, 5, liability("L-1", "K-1", 2026, 40_000))])
            .await
            .unwrap();
        store
            .apply(&[ev(&t, 7, liability("L-1", "K-1", 2026, 42_000))])
            .await
            .unwrap();
        store
            .apply(&[ev(&t, 6, liability("L-1", "K-1", 2026, 41_000))])
            .await
            .unwrap();
        let view = store.resident_view(&t, &p).await.unwrap().unwrap();
        assert_eq!(view.accounts[0].liabilities.len(), 1);
        assert_eq!(view.accounts[0].liabilities[0].total.grosze(), 42_000);

        // Balances and postings follow the same rule.
        store
            .apply(&[
                ev(&t, 9, balance("K-1", 900)),
                ev(&t, 9, posting("P-1", "K-1", date(2026, 3, 1), 900)),
            ])
            .await
            .unwrap();
        let out = store
            .apply(&[
                ev(&t, 8, balance("K-1", 800)),
                ev(&t, 8, posting("P-1", "K-1", date(2026, 3, 1), 800)),
            ])
            .await
            .unwrap();
        assert_eq!(
            out,
            ApplyOutcome {
                applied: 0,
                ignored: 2
            }
        );
        let view = store.resident_view(&t, &p).await.unwrap().unwrap();
        assert_eq!(
            view.accounts[0]
                .balance
                .as_ref()
                .unwrap()
                .principal
                .grosze(),
            900
        );
        assert_eq!(view.accounts[0].postings[0].amount.grosze(), 900);
    }

    pub async fn replacing_an_account_replaces_its_holders(store: Arc<dyn Store>) {
        let t = teryt(A);
        let (p1, p2) = (pesel(1), pesel(2));
        store
            .apply(&[
                ev(&t, 1, taxpayer("T-1", Some(&p1), "Jan Kowalski")),
                ev(&t, 1, taxpayer("T-2", Some(&p2), "Anna Kowalska")),
                ev(
                    &t,
                    1,
                    account(
                        "K-1",
                        &[("T-1", HolderRole::Owner), ("T-2", HolderRole::CoOwner)],
                    ),
                ),
            ])
            .await
            .unwrap();
        assert_eq!(
            store
                .resident_view(&t, &p2)
                .await
                .unwrap()
                .unwrap()
                .accounts
                .len(),
            1
        );

        // Version 2: Anna is no longer a holder.
        store
            .apply(&[ev(&t, 2, account("K-1", &[("T-1", HolderRole::Owner)]))])
            .await
            .unwrap();
        assert!(store
            .resident_view(&t, &p2)
            .await
            .unwrap()
            .unwrap()
            .accounts
            .is_empty());
        let jan = store.resident_view(&t, &p1).await.unwrap().unwrap();
        assert_eq!(jan.accounts[0].holder_names, vec!["Jan Kowalski"]);

        // A late redelivery of version 1 must not bring her back.
        let late = [ev(
            &t,
            1,
            account(
                "K-1",
                &[("T-1", HolderRole::Owner), ("T-2", HolderRole::CoOwner)],
            ),
        )];
        assert_eq!(
            store.apply(&late).await.unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 1
            }
        );
        assert!(store
            .resident_view(&t, &p2)
            .await
            .unwrap()
            .unwrap()
            .accounts
            .is_empty());

        // Version 3 moves the account to Anna alone.
        store
            .apply(&[ev(&t, 3, account("K-1", &[("T-2", HolderRole::Owner)]))])
            .await
            .unwrap();
        assert!(store
            .resident_view(&t, &p1)
            .await
            .unwrap()
            .unwrap()
            .accounts
            .is_empty());
        assert_eq!(
            store
                .resident_view(&t, &p2)
                .await
                .unwrap()
                .unwrap()
                .accounts[0]
                .holder_names,
            vec!["Anna Kowalska"]
        );
    }

    pub async fn co_owner_sees_the_shared_account_with_both_names(store: Arc<dyn Store>) {
        let t = teryt(A);
        let (p1, p2) = (pesel(1), pesel(2));
        store
            .apply(&[
                ev(&t, 1, taxpayer("T-1", Some(&p1), "Jan Kowalski")),
                ev(&t, 1, taxpayer("T-2", Some(&p2), "Anna Kowalska")),
                ev(
                    &t,
                    1,
                    account(
                        "K-SHARED",
                        &[("T-1", HolderRole::Owner), ("T-2", HolderRole::CoOwner)],
                    ),
                ),
                ev(&t, 1, account("K-JAN", &[("T-1", HolderRole::Owner)])),
                ev(&t, 1, liability("L-1", "K-SHARED", 2026, 50_000)),
                ev(&t, 1, liability("L-2", "K-JAN", 2026, 7_000)),
            ])
            .await
            .unwrap();
        let anna = store.resident_view(&t, &p2).await.unwrap().unwrap();
        assert_eq!(anna.accounts.len(), 1, "Anna sees only the shared account");
        assert_eq!(anna.accounts[0].account.account_id, "K-SHARED");
        assert_eq!(
            anna.accounts[0].holder_names,
            vec!["Jan Kowalski", "Anna Kowalska"]
        );
        assert_eq!(anna.accounts[0].liabilities[0].liability_id, "L-1");
        assert_eq!(anna.taxpayers.len(), 1, "only her own taxpayer record");
        let jan = store.resident_view(&t, &p1).await.unwrap().unwrap();
        let ids: Vec<&str> = jan
            .accounts
            .iter()
            .map(|a| a.account.account_id.as_str())
            .collect();
        assert_eq!(ids, vec!["K-JAN", "K-SHARED"]);
    }

    pub async fn tenants_are_isolated(store: Arc<dyn Store>) {
        let (a, b) = (teryt(A), teryt(B));
        let p = pesel(1);
        // The same source keys in both tenants: different municipalities, different records.
        store
            .apply(&[
                ev(&a, 1, taxpayer("T-1", Some(&p), "Jan Kowalski (A)")),
                ev(&a, 1, account("K-1", &[("T-1", HolderRole::Owner)])),
                ev(&a, 1, liability("L-1", "K-1", 2026, 100)),
                ev(&b, 1, taxpayer("T-1", Some(&p), "Jan Kowalski (B)")),
                ev(&b, 1, account("K-1", &[("T-1", HolderRole::Owner)])),
                ev(&b, 1, account("K-2", &[("T-1", HolderRole::Owner)])),
                ev(&b, 1, liability("L-1", "K-1", 2026, 200)),
                ev(&b, 1, rejected("bb22", 1)),
            ])
            .await
            .unwrap();
        let va = store.resident_view(&a, &p).await.unwrap().unwrap();
        assert_eq!(va.tenant, A);
        assert_eq!(va.taxpayers[0].name, "Jan Kowalski (A)");
        assert_eq!(va.accounts.len(), 1);
        assert_eq!(va.accounts[0].holder_names, vec!["Jan Kowalski (A)"]);
        assert_eq!(va.accounts[0].liabilities[0].total.grosze(), 100);
        let vb = store.resident_view(&b, &p).await.unwrap().unwrap();
        assert_eq!(vb.accounts.len(), 2);

        // A newer version in B does not touch A.
        store
            .apply(&[ev(&b, 2, liability("L-1", "K-1", 2026, 999))])
            .await
            .unwrap();
        let va = store.resident_view(&a, &p).await.unwrap().unwrap();
        assert_eq!(va.accounts[0].liabilities[0].total.grosze(), 100);

        assert_eq!(
            store
                .resident_tenants(&p, &[a.clone(), b.clone()])
                .await
                .unwrap(),
            vec![b.clone(), a.clone()]
        );
        assert_eq!(
            store
                .resident_tenants(&p, std::slice::from_ref(&a))
                .await
                .unwrap(),
            vec![a.clone()]
        );
        assert_eq!(store.resident_tenants(&p, &[]).await.unwrap(), vec![]);
        assert_eq!(
            store
                .resident_tenants(&p, &[teryt("0201011")])
                .await
                .unwrap(),
            vec![]
        );
        assert_eq!(
            store
                .resident_tenants(&pesel(2), &[a.clone(), b.clone()])
                .await
                .unwrap(),
            vec![]
        );
        assert!(store.rejected_records(&a, 10).await.unwrap().is_empty());
        assert_eq!(store.rejected_records(&b, 10).await.unwrap().len(), 1);
        assert_eq!(store.counts(&a).await.unwrap().accounts, 1);
        assert_eq!(store.counts(&b).await.unwrap().accounts, 2);
    }

    pub async fn batch_with_the_same_key_twice_keeps_the_highest_version(store: Arc<dyn Store>) {
        let t = teryt(A);
        let (p1, p2) = (pesel(1), pesel(2));
        let batch = vec![
            ev(&t, 1, taxpayer("T-1", Some(&p1), "v1")),
            ev(&t, 3, taxpayer("T-1", Some(&p1), "v3")),
            ev(&t, 2, taxpayer("T-1", Some(&p1), "v2")),
            ev(&t, 3, taxpayer("T-1", Some(&p1), "v3 again, later")),
            ev(&t, 1, taxpayer("T-2", Some(&p2), "Anna")),
            ev(
                &t,
                4,
                account(
                    "K-1",
                    &[("T-1", HolderRole::Owner), ("T-2", HolderRole::CoOwner)],
                ),
            ),
            ev(&t, 5, account("K-1", &[("T-1", HolderRole::Owner)])),
            ev(&t, 1, rejected("cc33", 4)),
            ev(&t, 1, rejected("cc33", 4)),
        ];
        assert_eq!(
            store.apply(&batch).await.unwrap(),
            ApplyOutcome {
                applied: 4,
                ignored: 5
            }
        );
        let view = store.resident_view(&t, &p1).await.unwrap().unwrap();
        assert_eq!(view.taxpayers[0].name, "v3");
        assert_eq!(view.accounts[0].holder_names, vec!["v3"]);
        assert!(store
            .resident_view(&t, &p2)
            .await
            .unwrap()
            .unwrap()
            .accounts
            .is_empty());
        assert_eq!(store.counts(&t).await.unwrap().rejected_records, 1);
        assert_eq!(taxpayer_name(&batch[1].data), "v3");
    }

    pub async fn rejected_records_and_imports_are_stored_once_newest_first(store: Arc<dyn Store>) {
        let t = teryt(A);
        let mut events = Vec::new();
        for (i, line) in [10u64, 20, 30].iter().enumerate() {
            let mut e = ev(&t, 1, rejected("dd44", *line));
            e.time = at(i as i64);
            events.push(e);
        }
        let mut first_import = ev(&t, 1, import("0123456789abcdef"));
        first_import.time = at(100);
        let mut second_import = ev(&t, 1, import("fedcba9876543210"));
        second_import.time = at(200);
        events.push(first_import);
        events.push(second_import);
        assert_eq!(
            store.apply(&events).await.unwrap(),
            ApplyOutcome {
                applied: 5,
                ignored: 0
            }
        );
        // Redelivery, even with a later time stamp, is stored once and keeps the first time.
        let mut again = events.clone();
        for e in &mut again {
            e.time = at(1000);
        }
        assert_eq!(
            store.apply(&again).await.unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 5
            }
        );

        let rows = store.rejected_records(&t, 10).await.unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.record.line).collect();
        assert_eq!(lines, vec![30, 20, 10], "newest first");
        assert_eq!(rows[0].received_at, at(2));
        let expected: RejectedRecord = match &events[2].data {
            EventData::RecordRejected(r) => r.clone(),
            _ => unreachable!(),
        };
        assert_eq!(rows[0].record, expected, "the raw record is kept as it was");
        assert_eq!(
            store.rejected_records(&t, 2).await.unwrap().len(),
            2,
            "limit"
        );

        let imports = store.imports(&t, 10).await.unwrap();
        let shas: Vec<&str> = imports
            .iter()
            .map(|i| i.import.file_sha256.as_str())
            .collect();
        assert_eq!(shas, vec!["fedcba9876543210", "0123456789abcdef"]);
        assert_eq!(imports[0].completed_at, at(200));
        let expected: ImportCompleted = match &events[4].data {
            EventData::ImportCompleted(i) => i.clone(),
            _ => unreachable!(),
        };
        assert_eq!(imports[0].import, expected);
        assert_eq!(store.imports(&t, 1).await.unwrap().len(), 1, "limit");
        assert!(store.imports(&teryt(B), 10).await.unwrap().is_empty());
        assert_eq!(store.counts(&t).await.unwrap().rejected_records, 3);
    }

    pub async fn records_arriving_before_their_account_and_taxpayer(store: Arc<dyn Store>) {
        let t = teryt(A);
        let p = pesel(1);
        store
            .apply(&[ev(&t, 1, posting("P-1", "K-1", date(2026, 3, 15), 100))])
            .await
            .unwrap();
        store
            .apply(&[ev(
                &t,
                1,
                account(
                    "K-1",
                    &[("T-1", HolderRole::Owner), ("T-2", HolderRole::CoOwner)],
                ),
            )])
            .await
            .unwrap();
        assert_eq!(
            store.resident_view(&t, &p).await.unwrap(),
            None,
            "no taxpayer yet"
        );
        store
            .apply(&[ev(&t, 1, taxpayer("T-1", Some(&p), "Jan Kowalski"))])
            .await
            .unwrap();
        let view = store.resident_view(&t, &p).await.unwrap().unwrap();
        assert_eq!(view.accounts.len(), 1);
        assert_eq!(
            view.accounts[0].holder_names,
            vec!["Jan Kowalski"],
            "T-2 is not known yet"
        );
        assert_eq!(view.accounts[0].postings.len(), 1);
        assert_eq!(view.accounts[0].balance, None);
    }

    /// A NUL character cannot be stored by Postgres; both backends refuse it the same way,
    /// permanently, and the batch writes nothing (the projector then parks that event alone).
    pub async fn a_refused_event_fails_the_whole_batch(store: Arc<dyn Store>) {
        let t = teryt(A);
        let good = ev(&t, 1, taxpayer("T-1", Some(&pesel(1)), "Jan Kowalski"));
        let bad = ev(&t, 1, taxpayer("T-2", Some(&pesel(2)), "Anna\0Kowalska"));
        let err = store.apply(&[good.clone(), bad]).await.unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert!(!err.to_string().contains("Anna"), "{err}");
        assert_eq!(store.counts(&t).await.unwrap(), TableCounts::default());
        // A backslash sequence that merely looks like the escape is fine.
        let lookalike = ev(
            &t,
            1,
            taxpayer("T-3", Some(&pesel(3)), "Anna \\u0000 Kowalska"),
        );
        assert_eq!(store.apply(&[good, lookalike]).await.unwrap().applied, 2);
    }

    pub async fn empty_batch_and_ping(store: Arc<dyn Store>) {
        store.ping().await.unwrap();
        assert_eq!(store.apply(&[]).await.unwrap(), ApplyOutcome::default());
    }
}

// ---- backend-specific checks ------------------------------------------------------------

/// A row that no longer decodes into its model type is reported as corrupt, naming the table
/// and key but not quoting the stored value.
#[tokio::test]
async fn sqlite_corrupt_row_is_reported() {
    let store = gsko_store::SqliteStore::open(":memory:").await.unwrap();
    let t = teryt(A);
    let p = pesel(1);
    store
        .apply(&[ev(&t, 1, taxpayer("T-1", Some(&p), "Jan Kowalski"))])
        .await
        .unwrap();
    sqlx::query(
        "UPDATE taxpayers SET payload = '{\"taxpayer_id\": \"T-1\", \"name\": \"Jan Kowalski\"}'",
    )
    .execute(store.pool())
    .await
    .unwrap();
    match store.resident_view(&t, &p).await {
        Err(StoreError::Corrupt {
            table: "taxpayers",
            key,
            reason,
        }) => {
            assert_eq!(key, "T-1");
            assert!(!reason.contains("Kowalski"));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_corrupt_row_is_reported() {
    let db = PgTestDb::create().await;
    let store = gsko_store::PgStore::connect(&db.url, 2).await.unwrap();
    let t = teryt(A);
    let p = pesel(1);
    store
        .apply(&[ev(&t, 1, account("K-1", &[("T-1", HolderRole::Owner)]))])
        .await
        .unwrap();
    store
        .apply(&[ev(&t, 1, taxpayer("T-1", Some(&p), "Jan Kowalski"))])
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET payload = jsonb_set(payload, '{levy}', '\"castle_tax\"')")
        .execute(store.pool())
        .await
        .unwrap();
    let result = store.resident_view(&t, &p).await;
    store.close().await;
    db.drop_db().await;
    match result {
        Err(StoreError::Corrupt {
            table: "accounts",
            key,
            ..
        }) => assert_eq!(key, "K-1"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// An unreachable server is a transient error (the projector waits and retries), and its
/// message does not echo the URL (which may hold a password).
#[tokio::test]
async fn postgres_down_is_unavailable() {
    let started = std::time::Instant::now();
    let err = gsko_store::PgStore::connect("postgres://gsko:secret@127.0.0.1:1/gsko", 1)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// The error of a permanent failure does not quote the data that failed.
#[tokio::test]
async fn sqlite_out_of_range_line_is_a_permanent_error() {
    let store = gsko_store::SqliteStore::open(":memory:").await.unwrap();
    let t = teryt(A);
    let err = store
        .apply(&[ev(&t, 1, rejected("ee55", u64::MAX))])
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(store.counts(&t).await.unwrap().rejected_records, 0);
}
