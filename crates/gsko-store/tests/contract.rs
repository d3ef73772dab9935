//! The store contract: one suite, run against SQLite (in memory and in a WAL file) and against
//! Postgres (a fresh database per test on `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! `cargo test -p gsko-store --test contract`

mod support;

use gsko_model::{
    AccountHolder, Event, EventData, HolderRole, ImportCompleted, LevyKind, PaymentItem,
    RejectedRecord, TaxAccount, Teryt, UnmatchedReason,
};
use gsko_store::{
    ApplyOutcome, BasketOutcome, BasketRecord, BookingStatus, NewBasket, NewOrder,
    NotificationAudit, NotificationOutcome, OrderStatus, PaymentStore, Store, StoreError,
};
use std::sync::Arc;
use support::*;

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $( #[tokio::test] async fn $name() { super::with_sqlite_memory(|s| super::scenarios_all::$name(s)).await; } )*
        }
        mod sqlite_file {
            $( #[tokio::test] async fn $name() { super::with_sqlite_file(|s| super::scenarios_all::$name(s)).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::with_pg(|s| super::scenarios_all::$name(s)).await; } )*
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
    payments_in_the_view_from_received_to_booked,
    payment_events_are_stored_once_and_book_commands_ignored,
    unmatched_payments_are_stored_once_newest_first,
    baskets_are_idempotent_per_client_and_key,
    a_basket_is_stored_whole_or_not_at_all,
    concurrent_double_submit_stores_one_basket,
    orders_stop_changing_once_final,
    a_payment_settles_once,
    outbox_is_pending_in_order_until_published,
    notifications_are_audited_newest_first,
    virtual_account_names_the_account,
    nul_characters_are_refused_alike,
    letters_are_shown_to_their_signer_and_answered_by_decisions,
    case_changes_out_of_order_and_twice_keep_the_highest_seq_and_one_entry_each,
    a_case_is_shown_to_its_letters_signer_only,
    a_decision_under_the_cases_znak_is_shown_in_the_case,
    a_re_registered_case_still_links_by_its_ezd_id,
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
        assert!(view.payments.is_empty());

        assert_eq!(
            store.counts(&t).await.unwrap(),
            TableCounts {
                taxpayers: 1,
                accounts: 1,
                liabilities: 3,
                postings: 3,
                balances: 1,
                rejected_records: 0,
                payments: 0,
                unmatched_payments: 0,
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

    // ---- payments ---------------------------------------------------------------------------

    fn statuses(view: &gsko_store::ResidentView) -> Vec<(&str, BookingStatus, i64)> {
        view.payments
            .iter()
            .map(|p| {
                (
                    p.payment.payment_id.as_str(),
                    p.status,
                    p.booked_amount.grosze(),
                )
            })
            .collect()
    }

    pub async fn payments_in_the_view_from_received_to_booked(store: Arc<dyn TestStore>) {
        let (a, b) = (teryt(A), teryt(B));
        let (jan, anna, other) = (pesel(1), pesel(2), pesel(3));
        store
            .apply(&[
                ev(&a, 1, taxpayer("T-1", Some(&jan), "Jan Kowalski")),
                ev(&a, 1, taxpayer("T-2", Some(&anna), "Anna Kowalska")),
                ev(&a, 1, taxpayer("T-3", Some(&other), "Piotr Nowak")),
                ev(
                    &a,
                    1,
                    account(
                        "K-SHARED",
                        &[("T-1", HolderRole::Owner), ("T-2", HolderRole::CoOwner)],
                    ),
                ),
                ev(&a, 1, account("K-JAN", &[("T-1", HolderRole::Owner)])),
                ev(&a, 1, account("K-OTHER", &[("T-3", HolderRole::Owner)])),
                // Tenant B: the same resident and account ids, another municipality.
                ev(&b, 1, taxpayer("T-1", Some(&jan), "Jan Kowalski")),
                ev(&b, 1, account("K-JAN", &[("T-1", HolderRole::Owner)])),
            ])
            .await
            .unwrap();
        let out = store
            .apply(&[
                ev(
                    &a,
                    1,
                    settled(
                        "PAY-1",
                        date(2026, 3, 10),
                        &[("K-SHARED", 10_000), ("K-JAN", 5_000)],
                    ),
                ),
                ev(
                    &a,
                    1,
                    settled("PAY-2", date(2026, 5, 1), &[("K-JAN", 2_000)]),
                ),
                ev(&a, 1, settled("PAY-0", date(2026, 5, 1), &[("K-JAN", 100)])),
                ev(
                    &a,
                    1,
                    settled("PAY-X", date(2026, 6, 1), &[("K-OTHER", 700)]),
                ),
                ev(&b, 1, settled("PAY-B", date(2026, 4, 1), &[("K-JAN", 300)])),
            ])
            .await
            .unwrap();
        assert_eq!(
            out,
            ApplyOutcome {
                applied: 5,
                ignored: 0
            }
        );

        let view = store.resident_view(&a, &jan).await.unwrap().unwrap();
        assert_eq!(
            statuses(&view),
            vec![
                ("PAY-0", BookingStatus::Received, 0),
                ("PAY-2", BookingStatus::Received, 0),
                ("PAY-1", BookingStatus::Received, 0),
            ],
            "newest paid_on first, then by id; another resident's and tenant's payments absent"
        );
        assert_eq!(
            view.payments[2].payment,
            payment(
                "PAY-1",
                date(2026, 3, 10),
                &[("K-SHARED", 10_000), ("K-JAN", 5_000)]
            ),
            "the payment round-trips"
        );
        assert!(view.payments[2].bookings.is_empty());
        let anna_view = store.resident_view(&a, &anna).await.unwrap().unwrap();
        assert_eq!(
            statuses(&anna_view),
            vec![("PAY-1", BookingStatus::Received, 0)],
            "the co-owner sees the payment to the shared account"
        );
        let other_view = store.resident_view(&a, &other).await.unwrap().unwrap();
        assert_eq!(
            statuses(&other_view),
            vec![("PAY-X", BookingStatus::Received, 0)]
        );
        let in_b = store.resident_view(&b, &jan).await.unwrap().unwrap();
        assert_eq!(statuses(&in_b), vec![("PAY-B", BookingStatus::Received, 0)]);

        // The ledger books one item, then the other (reported out of date order).
        store
            .apply(&[ev(
                &a,
                1,
                booked("PAY-1", "POST-2", "K-JAN", 5_000, date(2026, 3, 20)),
            )])
            .await
            .unwrap();
        let view = store.resident_view(&a, &jan).await.unwrap().unwrap();
        assert_eq!(
            view.payments[2].status,
            BookingStatus::PartiallyBooked,
            "5000 of 15000 booked"
        );
        assert_eq!(view.payments[2].booked_amount.grosze(), 5_000);
        assert_eq!(
            statuses(&view)[..2],
            [
                ("PAY-0", BookingStatus::Received, 0),
                ("PAY-2", BookingStatus::Received, 0)
            ]
        );
        store
            .apply(&[ev(
                &a,
                1,
                booked("PAY-1", "POST-1", "K-SHARED", 10_000, date(2026, 3, 12)),
            )])
            .await
            .unwrap();
        for resident in [&jan, &anna] {
            let view = store.resident_view(&a, resident).await.unwrap().unwrap();
            let pay1 = view
                .payments
                .iter()
                .find(|p| p.payment.payment_id == "PAY-1")
                .unwrap();
            assert_eq!(pay1.status, BookingStatus::Booked);
            assert_eq!(pay1.booked_amount.grosze(), 15_000);
            let postings: Vec<&str> = pay1
                .bookings
                .iter()
                .map(|b| b.posting_id.as_str())
                .collect();
            assert_eq!(postings, vec!["POST-1", "POST-2"], "oldest booking first");
            assert_eq!(pay1.bookings[0].account_id, "K-SHARED");
        }

        // A booking may arrive before the settlement it books.
        store
            .apply(&[ev(
                &a,
                1,
                booked("PAY-3", "POST-3", "K-JAN", 900, date(2026, 7, 2)),
            )])
            .await
            .unwrap();
        assert_eq!(
            store
                .resident_view(&a, &jan)
                .await
                .unwrap()
                .unwrap()
                .payments
                .len(),
            3,
            "a booking alone shows no payment"
        );
        store
            .apply(&[ev(
                &a,
                1,
                settled("PAY-3", date(2026, 7, 1), &[("K-JAN", 900)]),
            )])
            .await
            .unwrap();
        let view = store.resident_view(&a, &jan).await.unwrap().unwrap();
        assert_eq!(statuses(&view)[0], ("PAY-3", BookingStatus::Booked, 900));

        let counts = store.counts(&a).await.unwrap();
        assert_eq!((counts.payments, counts.unmatched_payments), (5, 0));
        assert_eq!(store.counts(&b).await.unwrap().payments, 1);
    }

    pub async fn payment_events_are_stored_once_and_book_commands_ignored(
        store: Arc<dyn TestStore>,
    ) {
        let t = teryt(A);
        let (p1, p2) = (pesel(1), pesel(2));
        store
            .apply(&[
                ev(&t, 1, taxpayer("T-1", Some(&p1), "Jan Kowalski")),
                ev(&t, 1, taxpayer("T-2", Some(&p2), "Anna Kowalska")),
                ev(&t, 1, account("K-1", &[("T-1", HolderRole::Owner)])),
                ev(&t, 1, account("K-2", &[("T-2", HolderRole::Owner)])),
                ev(&t, 1, settled("PAY-1", date(2026, 3, 1), &[("K-1", 1_000)])),
            ])
            .await
            .unwrap();
        // The same payment id again, even with a higher version and other content: the first
        // settlement stays.
        let again = [ev(&t, 9, settled("PAY-1", date(2026, 3, 2), &[("K-2", 5)]))];
        assert_eq!(
            store.apply(&again).await.unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 1
            }
        );
        let batch = vec![
            ev(&t, 1, settled("PAY-2", date(2026, 4, 1), &[("K-1", 2_000)])),
            ev(&t, 2, settled("PAY-2", date(2026, 4, 2), &[("K-2", 7)])),
            ev(
                &t,
                1,
                booked("PAY-2", "POST-1", "K-1", 2_000, date(2026, 4, 3)),
            ),
            ev(&t, 1, booked("PAY-2", "POST-1", "K-1", 1, date(2026, 4, 9))),
            ev(&t, 1, unmatched("U-1", UnmatchedReason::Unidentified)),
            ev(&t, 1, unmatched("U-1", UnmatchedReason::Duplicate)),
            ev(
                &t,
                1,
                EventData::PaymentBook(payment("PAY-3", date(2026, 4, 1), &[("K-1", 3_000)])),
            ),
        ];
        assert_eq!(
            store.apply(&batch).await.unwrap(),
            ApplyOutcome {
                applied: 3,
                ignored: 4
            }
        );
        assert_eq!(
            store.apply(&batch).await.unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 7
            },
            "redelivery"
        );
        assert_eq!(
            store
                .apply(&[ev(
                    &t,
                    1,
                    EventData::PaymentBook(payment("PAY-4", date(2026, 4, 1), &[("K-1", 1)]))
                )])
                .await
                .unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 1
            },
            "a book command alone"
        );

        let jan = store.resident_view(&t, &p1).await.unwrap().unwrap();
        assert_eq!(
            statuses(&jan),
            vec![
                ("PAY-2", BookingStatus::Booked, 2_000),
                ("PAY-1", BookingStatus::Received, 0)
            ],
            "first settlement and first booking kept; the book command is not a payment"
        );
        assert_eq!(jan.payments[0].payment.paid_on, date(2026, 4, 1));
        assert_eq!(jan.payments[0].bookings[0].booked_on, date(2026, 4, 3));
        assert!(
            store
                .resident_view(&t, &p2)
                .await
                .unwrap()
                .unwrap()
                .payments
                .is_empty(),
            "the items of the ignored copies were not stored"
        );
        let unmatched = store.unmatched_payments(&t, 10).await.unwrap();
        assert_eq!(unmatched.len(), 1);
        assert_eq!(unmatched[0].payment.reason, UnmatchedReason::Unidentified);
        let counts = store.counts(&t).await.unwrap();
        assert_eq!((counts.payments, counts.unmatched_payments), (2, 1));
    }

    pub async fn unmatched_payments_are_stored_once_newest_first(store: Arc<dyn TestStore>) {
        let t = teryt(A);
        let mut events = Vec::new();
        for (id, secs) in [("U-1", 10), ("U-3", 30), ("U-2", 20), ("U-0", 20)] {
            let mut e = ev(&t, 1, unmatched(id, UnmatchedReason::UnknownVirtualAccount));
            e.time = at(secs);
            events.push(e);
        }
        assert_eq!(store.apply(&events).await.unwrap().applied, 4);
        let mut again = events.clone();
        for e in &mut again {
            e.time = at(1000);
        }
        assert_eq!(
            store.apply(&again).await.unwrap(),
            ApplyOutcome {
                applied: 0,
                ignored: 4
            }
        );
        let rows = store.unmatched_payments(&t, 10).await.unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.payment.payment_id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["U-3", "U-0", "U-2", "U-1"],
            "newest first, then by id"
        );
        assert_eq!(
            rows[0].received_at,
            at(30),
            "the first delivery's time stays"
        );
        let expected = match &events[0].data {
            EventData::PaymentUnmatched(u) => u.clone(),
            _ => unreachable!(),
        };
        assert_eq!(rows[3].payment, expected, "the record round-trips");
        assert_eq!(store.unmatched_payments(&t, 2).await.unwrap().len(), 2);
        assert!(store
            .unmatched_payments(&teryt(B), 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.counts(&t).await.unwrap().unmatched_payments, 4);
    }

    fn new_basket(t: &Teryt, id: &str, key: &str, hash: &str, sessions: &[&str]) -> NewBasket {
        NewBasket {
            tenant: t.clone(),
            basket_id: id.to_owned(),
            client: "portal".to_owned(),
            idempotency_key: key.to_owned(),
            request_hash: hash.to_owned(),
            resident_ref: "rr-0001".to_owned(),
            orders: sessions
                .iter()
                .enumerate()
                .map(|(i, s)| NewOrder {
                    session_id: (*s).to_owned(),
                    merchant: if i == 0 { "taxes" } else { "waste" }.to_owned(),
                    gateway: "przelewy24".to_owned(),
                    amount: grosze(1_000 * (i as i64 + 1)),
                    description: format!("Podatek {s}"),
                    items: vec![PaymentItem {
                        account_id: format!("K-{i}"),
                        liability_id: Some("L-1".to_owned()),
                        installment_seq: Some(2),
                        amount: grosze(1_000 * (i as i64 + 1)),
                    }],
                })
                .collect(),
        }
    }

    fn created(outcome: BasketOutcome) -> BasketRecord {
        match outcome {
            BasketOutcome::Created(b) => b,
            other => panic!("expected Created, got {other:?}"),
        }
    }

    pub async fn baskets_are_idempotent_per_client_and_key(store: Arc<dyn TestStore>) {
        let t = teryt(A);
        let before = chrono::Utc::now() - chrono::Duration::seconds(1);
        let request = new_basket(&t, "B-1", "key-1", "hash-1", &["S-2", "S-1"]);
        let record = created(store.create_basket(&request).await.unwrap());
        assert_eq!(record.basket_id, "B-1");
        assert_eq!(record.tenant, t);
        assert_eq!(
            (
                record.client.as_str(),
                record.idempotency_key.as_str(),
                record.request_hash.as_str(),
                record.resident_ref.as_str()
            ),
            ("portal", "key-1", "hash-1", "rr-0001")
        );
        assert!(record.created_at > before && record.created_at <= chrono::Utc::now());
        let sessions: Vec<&str> = record
            .orders
            .iter()
            .map(|o| o.session_id.as_str())
            .collect();
        assert_eq!(
            sessions,
            vec!["S-2", "S-1"],
            "in the order they were created"
        );
        for (o, want) in record.orders.iter().zip(&request.orders) {
            assert_eq!(
                (&o.merchant, &o.gateway, o.amount, &o.description, &o.items),
                (
                    &want.merchant,
                    &want.gateway,
                    want.amount,
                    &want.description,
                    &want.items
                )
            );
            assert_eq!(o.status, OrderStatus::Created);
            assert_eq!(o.basket_id, "B-1");
            assert_eq!(
                (&o.gateway_ref, &o.redirect_url, &o.status_detail),
                (&None, &None, &None)
            );
            assert_eq!(o.created_at, o.updated_at);
        }
        assert_eq!(
            store.basket(&t, "B-1").await.unwrap().as_ref(),
            Some(&record),
            "what create returned is what is stored"
        );
        assert_eq!(
            store.order(&t, "S-1").await.unwrap().as_ref(),
            Some(&record.orders[1])
        );
        // Found by the client's key too (a retry is answered before amounts are recomputed),
        // but not by another client's or in another tenant.
        assert_eq!(
            store
                .basket_by_key(&t, "portal", "key-1")
                .await
                .unwrap()
                .as_ref(),
            Some(&record)
        );
        assert_eq!(
            store
                .basket_by_key(&t, "other-portal", "key-1")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .basket_by_key(&teryt(B), "portal", "key-1")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store.basket_by_key(&t, "portal", "key-2").await.unwrap(),
            None
        );

        // The same request again (a retry with a freshly generated basket id): the stored one,
        // as it stands now.
        assert!(store
            .update_order(
                &t,
                "S-2",
                OrderStatus::Registered,
                Some("tok-2"),
                Some("https://gw/2"),
                None
            )
            .await
            .unwrap());
        let retry = new_basket(&t, "B-1-retry", "key-1", "hash-1", &["S-2b", "S-1b"]);
        match store.create_basket(&retry).await.unwrap() {
            BasketOutcome::Existing(b) => {
                assert_eq!(b.basket_id, "B-1");
                assert_eq!(b.orders[0].status, OrderStatus::Registered);
                assert_eq!(b.orders[0].redirect_url.as_deref(), Some("https://gw/2"));
                assert_eq!(Some(b), store.basket(&t, "B-1").await.unwrap());
            }
            other => panic!("expected Existing, got {other:?}"),
        }
        // The very same request again, basket id included.
        match store.create_basket(&request).await.unwrap() {
            BasketOutcome::Existing(b) => assert_eq!(b.basket_id, "B-1"),
            other => panic!("expected Existing, got {other:?}"),
        }
        let mut same_id_other_request = request.clone();
        same_id_other_request.request_hash = "hash-x".to_owned();
        assert_eq!(
            store.create_basket(&same_id_other_request).await.unwrap(),
            BasketOutcome::KeyReused {
                basket_id: "B-1".to_owned()
            }
        );
        // The same key with another request.
        let reused = new_basket(&t, "B-2", "key-1", "hash-2", &["S-9"]);
        assert_eq!(
            store.create_basket(&reused).await.unwrap(),
            BasketOutcome::KeyReused {
                basket_id: "B-1".to_owned()
            }
        );
        for (basket, session) in [("B-1-retry", "S-2b"), ("B-2", "S-9")] {
            assert_eq!(
                store.basket(&t, basket).await.unwrap(),
                None,
                "nothing written"
            );
            assert_eq!(store.order(&t, session).await.unwrap(), None);
        }

        // Keys are per client and per tenant.
        let mut other_client = new_basket(&t, "B-3", "key-1", "hash-3", &["S-3"]);
        other_client.client = "other-portal".to_owned();
        assert_eq!(
            created(store.create_basket(&other_client).await.unwrap()).basket_id,
            "B-3"
        );
        let other_tenant = new_basket(&teryt(B), "B-1", "key-1", "hash-1", &["S-1"]);
        let in_b = created(store.create_basket(&other_tenant).await.unwrap());
        assert_eq!(in_b.tenant, teryt(B));
        assert_eq!(store.basket(&teryt(B), "B-1").await.unwrap(), Some(in_b));
        assert_eq!(store.basket(&t, "B-404").await.unwrap(), None);
        assert_eq!(store.order(&teryt(B), "S-2").await.unwrap(), None);
    }

    pub async fn a_basket_is_stored_whole_or_not_at_all(store: Arc<dyn TestStore>) {
        let t = teryt(A);
        created(
            store
                .create_basket(&new_basket(&t, "B-1", "key-1", "h", &["S-1"]))
                .await
                .unwrap(),
        );
        // The second order's session id is taken: nothing of this basket may stay.
        let clash = new_basket(&t, "B-2", "key-2", "h", &["S-2", "S-1"]);
        let err = store.create_basket(&clash).await.unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert_eq!(store.basket(&t, "B-2").await.unwrap(), None);
        assert_eq!(store.order(&t, "S-2").await.unwrap(), None);
        assert_eq!(
            store.order(&t, "S-1").await.unwrap().unwrap().basket_id,
            "B-1",
            "the other basket's order is untouched"
        );
        // The key was not used up.
        let fixed = new_basket(&t, "B-2", "key-2", "h", &["S-2", "S-3"]);
        assert_eq!(
            created(store.create_basket(&fixed).await.unwrap())
                .orders
                .len(),
            2
        );
    }

    pub async fn concurrent_double_submit_stores_one_basket(store: Arc<dyn TestStore>) {
        let t = teryt(A);
        for round in 0..5 {
            let key = format!("key-{round}");
            let first = new_basket(
                &t,
                &format!("B-{round}-a"),
                &key,
                "h",
                &[&format!("S-{round}-a")],
            );
            let second = new_basket(
                &t,
                &format!("B-{round}-b"),
                &key,
                "h",
                &[&format!("S-{round}-b")],
            );
            let (x, y) = tokio::join!(store.create_basket(&first), store.create_basket(&second));
            let (winner, other) = match (x.unwrap(), y.unwrap()) {
                (BasketOutcome::Created(w), BasketOutcome::Existing(e))
                | (BasketOutcome::Existing(e), BasketOutcome::Created(w)) => (w, e),
                other => panic!("expected one Created and one Existing, got {other:?}"),
            };
            assert_eq!(winner, other, "the loser is given the winner's basket");
            let loser_id = if winner.basket_id == first.basket_id {
                &second.basket_id
            } else {
                &first.basket_id
            };
            assert_eq!(store.basket(&t, loser_id).await.unwrap(), None);
        }
    }

    pub async fn orders_stop_changing_once_final(store: Arc<dyn TestStore>) {
        let t = teryt(A);
        created(
            store
                .create_basket(&new_basket(&t, "B-1", "k", "h", &["S-1", "S-2"]))
                .await
                .unwrap(),
        );
        assert!(store
            .update_order(
                &t,
                "S-1",
                OrderStatus::Registered,
                Some("tok"),
                Some("https://gw/1"),
                None
            )
            .await
            .unwrap());
        let o = store.order(&t, "S-1").await.unwrap().unwrap();
        assert_eq!(o.status, OrderStatus::Registered);
        assert_eq!(
            (
                o.gateway_ref.as_deref(),
                o.redirect_url.as_deref(),
                o.status_detail
            ),
            (Some("tok"), Some("https://gw/1"), None)
        );
        assert!(o.updated_at >= o.created_at);
        // A failed gateway call puts the other order back to `created` with the detail.
        assert!(store
            .update_order(
                &t,
                "S-2",
                OrderStatus::Created,
                None,
                None,
                Some("gateway timeout")
            )
            .await
            .unwrap());
        assert_eq!(
            store
                .order(&t, "S-2")
                .await
                .unwrap()
                .unwrap()
                .status_detail
                .as_deref(),
            Some("gateway timeout")
        );
        assert!(!store
            .update_order(&t, "S-404", OrderStatus::Registered, None, None, None)
            .await
            .unwrap());
        assert!(
            !store
                .update_order(&teryt(B), "S-1", OrderStatus::Registered, None, None, None)
                .await
                .unwrap(),
            "another tenant's order"
        );
        assert!(
            store
                .update_order(&t, "S-1", OrderStatus::Paid, None, None, None)
                .await
                .is_err(),
            "paid comes only from settle"
        );
        assert!(store
            .close_order(&t, "S-1", OrderStatus::Registered, "x", &[])
            .await
            .is_err());

        let note =
            ev(&t, 1, unmatched("S-1", UnmatchedReason::AmountMismatch)).with_stable_id("S-1");
        assert!(store
            .close_order(
                &t,
                "S-1",
                OrderStatus::Disputed,
                "amount differs",
                std::slice::from_ref(&note)
            )
            .await
            .unwrap());
        let closed = store.order(&t, "S-1").await.unwrap().unwrap();
        assert_eq!(closed.status, OrderStatus::Disputed);
        assert_eq!(closed.status_detail.as_deref(), Some("amount differs"));
        assert_eq!(closed.gateway_ref.as_deref(), Some("tok"));
        let pending = store.outbox_pending(10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].event, note);

        // Final: neither updated nor closed again, and no message queued.
        assert!(!store
            .update_order(&t, "S-1", OrderStatus::Registered, Some("tok2"), None, None)
            .await
            .unwrap());
        assert!(!store
            .close_order(
                &t,
                "S-1",
                OrderStatus::Canceled,
                "late",
                std::slice::from_ref(&note)
            )
            .await
            .unwrap());
        assert_eq!(store.order(&t, "S-1").await.unwrap().unwrap(), closed);
        assert_eq!(store.outbox_pending(10).await.unwrap().len(), 1);
        assert!(!store
            .close_order(
                &t,
                "S-404",
                OrderStatus::Canceled,
                "x",
                std::slice::from_ref(&note)
            )
            .await
            .unwrap());
        assert_eq!(store.outbox_pending(10).await.unwrap().len(), 1);

        assert!(store
            .close_order(&t, "S-2", OrderStatus::Canceled, "expired", &[])
            .await
            .unwrap());
        assert_eq!(
            store.order(&t, "S-2").await.unwrap().unwrap().status,
            OrderStatus::Canceled
        );
        assert!(!store
            .update_order(&t, "S-2", OrderStatus::Created, None, None, None)
            .await
            .unwrap());
    }

    pub async fn a_payment_settles_once(store: Arc<dyn TestStore>) {
        let t = teryt(A);
        created(
            store
                .create_basket(&new_basket(&t, "B-1", "k", "h", &["S-1", "S-2"]))
                .await
                .unwrap(),
        );
        store
            .update_order(
                &t,
                "S-1",
                OrderStatus::Registered,
                Some("tok"),
                Some("u"),
                None,
            )
            .await
            .unwrap();
        let p = payment("p24-1", date(2026, 3, 1), &[("K-0", 1_000)]);
        let messages = [
            ev(&t, 1, EventData::PaymentSettled(p.clone())).with_stable_id("p24-1"),
            ev(&t, 1, EventData::PaymentBook(p.clone())).with_stable_id("p24-1"),
        ];
        assert!(store
            .settle(&t, "p24-1", Some("S-1"), &messages)
            .await
            .unwrap());
        assert_eq!(
            store.order(&t, "S-1").await.unwrap().unwrap().status,
            OrderStatus::Paid
        );
        assert_eq!(
            store.order(&t, "S-2").await.unwrap().unwrap().status,
            OrderStatus::Created,
            "only the named order"
        );
        let pending = store.outbox_pending(10).await.unwrap();
        let events: Vec<&Event> = pending.iter().map(|m| &m.event).collect();
        assert_eq!(events, vec![&messages[0], &messages[1]]);

        // The same payment again (a replayed notification): nothing written.
        assert!(!store
            .settle(&t, "p24-1", Some("S-2"), &messages)
            .await
            .unwrap());
        assert!(!store.settle(&t, "p24-1", None, &messages).await.unwrap());
        assert_eq!(store.outbox_pending(10).await.unwrap().len(), 2);
        assert_eq!(
            store.order(&t, "S-2").await.unwrap().unwrap().status,
            OrderStatus::Created
        );
        // Paid is final: the order refuses updates and closing.
        assert!(!store
            .update_order(&t, "S-1", OrderStatus::Registered, None, None, None)
            .await
            .unwrap());
        assert!(!store
            .close_order(&t, "S-1", OrderStatus::Canceled, "x", &[])
            .await
            .unwrap());

        // A cancelled order paid after all: the settlement goes through, the order stays final.
        store
            .close_order(&t, "S-2", OrderStatus::Canceled, "expired", &[])
            .await
            .unwrap();
        let late = [ev(
            &t,
            1,
            EventData::PaymentSettled(payment("p24-2", date(2026, 3, 2), &[("K-1", 5)])),
        )];
        assert!(store.settle(&t, "p24-2", Some("S-2"), &late).await.unwrap());
        assert_eq!(
            store.order(&t, "S-2").await.unwrap().unwrap().status,
            OrderStatus::Canceled
        );
        // Without an order (a bank transfer), and the same id in another tenant.
        assert!(store.settle(&t, "bank-1", None, &[]).await.unwrap());
        assert!(store.settle(&teryt(B), "p24-1", None, &late).await.unwrap());
        assert_eq!(store.outbox_pending(10).await.unwrap().len(), 4);
    }

    pub async fn outbox_is_pending_in_order_until_published(store: Arc<dyn TestStore>) {
        let (a, b) = (teryt(A), teryt(B));
        assert!(store.outbox_pending(10).await.unwrap().is_empty());
        store.enqueue(&[]).await.unwrap();
        let msgs: Vec<Event> = (0..4)
            .map(|i| {
                let t = if i == 2 { &b } else { &a };
                ev(
                    t,
                    1,
                    unmatched(&format!("U-{i}"), UnmatchedReason::Unidentified),
                )
                .with_correlation(format!("corr-{i}"))
            })
            .collect();
        store.enqueue(&msgs[..3]).await.unwrap();
        store.enqueue(&msgs[3..]).await.unwrap();
        let pending = store.outbox_pending(10).await.unwrap();
        let got: Vec<&Event> = pending.iter().map(|m| &m.event).collect();
        assert_eq!(
            got,
            msgs.iter().collect::<Vec<_>>(),
            "oldest first, all tenants, intact"
        );
        assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
        let first_two = store.outbox_pending(2).await.unwrap();
        assert_eq!(first_two, pending[..2].to_vec());

        store
            .outbox_published(&[pending[0].seq, pending[2].seq, 999_999])
            .await
            .unwrap();
        store.outbox_published(&[]).await.unwrap();
        let rest = store.outbox_pending(10).await.unwrap();
        assert_eq!(rest, vec![pending[1].clone(), pending[3].clone()]);
        // Publishing twice is harmless; a new message comes after the older pending ones.
        store.outbox_published(&[pending[0].seq]).await.unwrap();
        let newer = ev(&a, 1, unmatched("U-9", UnmatchedReason::Duplicate));
        store.enqueue(std::slice::from_ref(&newer)).await.unwrap();
        let rest = store.outbox_pending(10).await.unwrap();
        assert_eq!(rest.len(), 3);
        assert_eq!(rest[2].event, newer);
        assert!(rest[2].seq > pending[3].seq);
        let all: Vec<i64> = rest.iter().map(|m| m.seq).collect();
        store.outbox_published(&all).await.unwrap();
        assert!(store.outbox_pending(10).await.unwrap().is_empty());
    }

    fn audit(
        t: &Teryt,
        secs: i64,
        outcome: NotificationOutcome,
        reason: &str,
    ) -> NotificationAudit {
        NotificationAudit {
            tenant: t.clone(),
            gateway: "przelewy24".to_owned(),
            merchant: "taxes".to_owned(),
            received_at: at(secs),
            session_id: (outcome != NotificationOutcome::Rejected).then(|| format!("S-{secs}")),
            outcome,
            reason: reason.to_owned(),
            body_sha256: format!("{secs:064}"),
            remote_addr: Some("192.0.2.7".to_owned()),
        }
    }

    pub async fn notifications_are_audited_newest_first(store: Arc<dyn TestStore>) {
        let (a, b) = (teryt(A), teryt(B));
        let rows = [
            audit(&a, 1, NotificationOutcome::Accepted, "ok"),
            audit(&a, 3, NotificationOutcome::Rejected, "bad_signature"),
            audit(&a, 2, NotificationOutcome::Deferred, "verify_failed"),
            audit(&b, 5, NotificationOutcome::Replayed, "already_paid"),
            // Same instant as an earlier row: the later appended comes first.
            audit(&a, 2, NotificationOutcome::Replayed, "already_paid"),
        ];
        for r in &rows {
            store.audit_notification(r).await.unwrap();
        }
        // The same notification twice is two audit rows: the audit is append-only.
        store.audit_notification(&rows[0]).await.unwrap();
        assert_eq!(
            store.notifications(&a, 10).await.unwrap(),
            vec![
                rows[1].clone(),
                rows[4].clone(),
                rows[2].clone(),
                rows[0].clone(),
                rows[0].clone()
            ]
        );
        assert_eq!(
            store.notifications(&a, 2).await.unwrap(),
            vec![rows[1].clone(), rows[4].clone()]
        );
        assert_eq!(
            store.notifications(&b, 10).await.unwrap(),
            vec![rows[3].clone()]
        );
        assert!(store
            .notifications(&teryt("0201011"), 10)
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn virtual_account_names_the_account(store: Arc<dyn TestStore>) {
        let (a, b) = (teryt(A), teryt(B));
        let with_nrb = |id: &str, n: u64| {
            EventData::TaxAccountUpserted(TaxAccount {
                account_id: id.to_owned(),
                levy: LevyKind::Property,
                holders: vec![AccountHolder {
                    taxpayer_id: "T-1".to_owned(),
                    role: HolderRole::Owner,
                }],
                virtual_account: Some(nrb(n)),
            })
        };
        store
            .apply(&[
                ev(&a, 1, with_nrb("K-1", 11)),
                ev(&a, 1, with_nrb("K-2", 22)),
                ev(&b, 1, with_nrb("K-B", 33)),
            ])
            .await
            .unwrap();
        assert_eq!(
            store
                .account_by_virtual_account(&a, &nrb(11))
                .await
                .unwrap()
                .as_deref(),
            Some("K-1")
        );
        assert_eq!(
            store
                .account_by_virtual_account(&a, &nrb(22))
                .await
                .unwrap()
                .as_deref(),
            Some("K-2")
        );
        assert_eq!(
            store
                .account_by_virtual_account(&a, &nrb(33))
                .await
                .unwrap(),
            None,
            "another tenant's"
        );
        assert_eq!(
            store
                .account_by_virtual_account(&b, &nrb(11))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .account_by_virtual_account(&a, &nrb(44))
                .await
                .unwrap(),
            None
        );
        // A newer version of the account moves it to another virtual account.
        store
            .apply(&[ev(&a, 2, with_nrb("K-1", 44))])
            .await
            .unwrap();
        assert_eq!(
            store
                .account_by_virtual_account(&a, &nrb(11))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .account_by_virtual_account(&a, &nrb(44))
                .await
                .unwrap()
                .as_deref(),
            Some("K-1")
        );
    }

    /// Postgres cannot store NUL in text; both backends refuse it, permanently, and a lookup of
    /// such a key (a forged notification's session id) finds nothing instead of failing.
    pub async fn nul_characters_are_refused_alike(store: Arc<dyn TestStore>) {
        let t = teryt(A);
        let mut bad = new_basket(&t, "B-1", "k", "h", &["S-1"]);
        bad.orders[0].description = "Podatek\0".to_owned();
        let err = store.create_basket(&bad).await.unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert_eq!(store.basket(&t, "B-1").await.unwrap(), None);
        let mut bad_item = new_basket(&t, "B-1", "k", "h", &["S-1"]);
        bad_item.orders[0].items[0].account_id = "K\0".to_owned();
        assert!(store.create_basket(&bad_item).await.is_err());
        created(
            store
                .create_basket(&new_basket(&t, "B-1", "k", "h", &["S-1"]))
                .await
                .unwrap(),
        );
        assert_eq!(store.order(&t, "S-1\0").await.unwrap(), None);
        assert_eq!(store.basket(&t, "B-1\0").await.unwrap(), None);
        assert!(!store
            .update_order(&t, "S-1\0", OrderStatus::Registered, None, None, None)
            .await
            .unwrap());
        assert!(store
            .update_order(&t, "S-1", OrderStatus::Registered, None, None, Some("a\0b"))
            .await
            .is_err());
        assert!(!store
            .close_order(&t, "S-1\0", OrderStatus::Canceled, "x", &[])
            .await
            .unwrap());
        assert!(store
            .close_order(&t, "S-1", OrderStatus::Canceled, "x\0", &[])
            .await
            .is_err());
        assert!(store.settle(&t, "p24\0", None, &[]).await.is_err());
        let mut forged = audit(&t, 1, NotificationOutcome::Rejected, "bad_signature");
        forged.session_id = Some("S-1\0".to_owned());
        assert!(store.audit_notification(&forged).await.is_err());
        assert!(store.notifications(&t, 10).await.unwrap().is_empty());
        assert_eq!(
            store.order(&t, "S-1").await.unwrap().unwrap().status,
            OrderStatus::Created,
            "nothing changed"
        );
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

/// An outbox row that no longer decodes stops the relay with `Corrupt`, naming its `seq`.
#[tokio::test]
async fn sqlite_corrupt_outbox_row_is_reported() {
    let store = gsko_store::SqliteStore::open(":memory:").await.unwrap();
    let t = teryt(A);
    store
        .enqueue(&[ev(&t, 1, unmatched("U-1", UnmatchedReason::Unidentified))])
        .await
        .unwrap();
    let seq = store.outbox_pending(1).await.unwrap()[0].seq;
    sqlx::query("UPDATE outbox SET body = '{\"specversion\": \"1.0\"}'")
        .execute(store.pool())
        .await
        .unwrap();
    match store.outbox_pending(10).await {
        Err(StoreError::Corrupt {
            table: "outbox",
            key,
            ..
        }) => assert_eq!(key, seq.to_string()),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_corrupt_outbox_row_is_reported() {
    let db = PgTestDb::create().await;
    let store = gsko_store::PgStore::connect(&db.url, 2).await.unwrap();
    let t = teryt(A);
    store
        .enqueue(&[ev(&t, 1, unmatched("U-1", UnmatchedReason::Unidentified))])
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET body = 'not json'")
        .execute(store.pool())
        .await
        .unwrap();
    let result = store.outbox_pending(10).await;
    store.close().await;
    db.drop_db().await;
    assert!(
        matches!(
            result,
            Err(StoreError::Corrupt {
                table: "outbox",
                ..
            })
        ),
        "{result:?}"
    );
}

mod letter_scenarios_support {
    use chrono::TimeZone;
    use gsko_model::{
        DecisionDelivered, DeliveryChannel, DeliveryEvidence, DeliveryOutcome, EvidenceKind,
        Letter, LetterChannel, LetterSender, LetterSignature, Pesel, SenderKind, SignatureForm,
        SignatureStatus, StoredFile,
    };

    pub fn letter(id: &str, signer: Option<&Pesel>, status: SignatureStatus, day: u32) -> Letter {
        Letter {
            letter_id: id.into(),
            channel: LetterChannel::Epuap,
            received_at: chrono::Utc
                .with_ymd_and_hms(2026, 11, day, 9, 0, 0)
                .unwrap(),
            epuap_box: Some("/umboleslawiec/skrytka".into()),
            sender: LetterSender {
                kind: SenderKind::Person,
                name: "Jan Kowalski".into(),
                pesel: signer.cloned(),
                nip: None,
                regon: None,
                epuap_login: None,
                reply_address: Some("/jkowalski/skrytka".into()),
                address: None,
                contacts: vec![],
            },
            addressee: Some("Urząd Miasta Bolesławiec".into()),
            title: format!("Pismo {id}"),
            body_text: Some("Treść".into()),
            form: None,
            document: StoredFile {
                name: "Pismo_ogolne.xml".into(),
                mime_type: "application/xml".into(),
                size_bytes: 10,
                sha256: "a".repeat(64),
                description: None,
            },
            attachments: vec![],
            signature: LetterSignature {
                status,
                form: signer.map(|_| SignatureForm::PodpisZaufany),
                signer_pesel: signer.cloned(),
                signer_name: None,
                signed_at: None,
                problems: vec![],
            },
            test: false,
            upp_id: None,
            problems: vec![],
        }
    }

    pub fn delivered(id: &str, to: &Pesel, in_reply_to: Option<&str>) -> DecisionDelivered {
        DecisionDelivered {
            decision_id: id.into(),
            outcome: DeliveryOutcome::Delivered,
            channel: DeliveryChannel::Epuap,
            at: chrono::Utc
                .with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
                .unwrap(),
            shipment_id: Some("Z-1".into()),
            evidence: Some(DeliveryEvidence {
                kind: EvidenceKind::Upd,
                id: "UPD-1".into(),
                code: None,
                sha256: "b".repeat(64),
            }),
            reason: None,
            recipient_pesel: Some(to.clone()),
            case_ref: Some("FN.3120.1.2026".parse().unwrap()),
            title: Some("Decyzja".into()),
            in_reply_to: in_reply_to.map(str::to_owned),
        }
    }
}

mod scenarios_letters {
    use super::letter_scenarios_support::*;
    use super::*;
    use gsko_model::SignatureStatus;

    pub async fn letters_are_shown_to_their_signer_and_answered_by_decisions(
        store: Arc<dyn Store>,
    ) {
        let (t, other_tenant) = (teryt(A), teryt(B));
        let (jan, anna) = (pesel(1), pesel(2));
        let events = vec![
            ev(
                &t,
                1,
                EventData::LetterReceived(letter(
                    "epuap-1",
                    Some(&jan),
                    SignatureStatus::Valid,
                    20,
                )),
            ),
            ev(
                &t,
                1,
                EventData::LetterReceived(letter(
                    "epuap-2",
                    Some(&jan),
                    SignatureStatus::Invalid,
                    21,
                )),
            ),
            ev(
                &t,
                1,
                EventData::LetterReceived(letter(
                    "epuap-3",
                    Some(&anna),
                    SignatureStatus::Valid,
                    22,
                )),
            ),
            ev(
                &t,
                1,
                EventData::LetterReceived(letter("epuap-4", None, SignatureStatus::Absent, 23)),
            ),
            // The command that goes with each letter is not part of the view.
            ev(
                &t,
                1,
                EventData::LetterRegister(letter(
                    "epuap-1",
                    Some(&jan),
                    SignatureStatus::Valid,
                    20,
                )),
            ),
            ev(
                &other_tenant,
                1,
                EventData::LetterReceived(letter(
                    "epuap-9",
                    Some(&jan),
                    SignatureStatus::Valid,
                    24,
                )),
            ),
        ];
        let outcome = store.apply(&events).await.unwrap();
        assert_eq!(
            outcome,
            ApplyOutcome {
                applied: 5,
                ignored: 1
            }
        );
        // Seen twice (a redelivery): nothing changes.
        let again = store.apply(&events).await.unwrap();
        assert_eq!(again.applied, 0);

        let jans = store.resident_letters(&t, &jan).await.unwrap();
        let ids: Vec<&str> = jans.iter().map(|l| l.letter.letter_id.as_str()).collect();
        assert_eq!(
            ids,
            ["epuap-2", "epuap-1"],
            "own letters only, newest first, this tenant only"
        );
        assert_eq!(
            jans[1].letter,
            letter("epuap-1", Some(&jan), SignatureStatus::Valid, 20),
            "round-trips"
        );
        assert!(jans
            .iter()
            .all(|l| l.state == gsko_store::LetterState::Received && l.answer.is_none()));
        assert_eq!(
            store
                .resident_letters(&other_tenant, &jan)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store
            .resident_letters(&t, &pesel(3))
            .await
            .unwrap()
            .is_empty());

        // A decision answering epuap-1 makes it answered and is the recipient's decision.
        let d = delivered("ezd-1", &jan, Some("epuap-1"));
        store
            .apply(&[ev(&t, 1, EventData::DecisionDelivered(d.clone()))])
            .await
            .unwrap();
        let again = store
            .apply(&[ev(&t, 1, EventData::DecisionDelivered(d.clone()))])
            .await
            .unwrap();
        assert_eq!(again.applied, 0, "a delivery's end is stored once");
        let jans = store.resident_letters(&t, &jan).await.unwrap();
        assert_eq!(jans[1].state, gsko_store::LetterState::Answered);
        assert_eq!(jans[1].answer.as_ref(), Some(&d));
        assert_eq!(jans[0].state, gsko_store::LetterState::Received);
        // EZD registers epuap-2: it shows as registered with its case, once.
        let case = gsko_model::CaseRegistered {
            letter_id: "epuap-2".into(),
            case_ref: "FN.3120.2.2026".parse().unwrap(),
            rpw: Some("RPW/7/2026".into()),
            registered_at: at(1_700_000_000),
            ezd_case_id: None,
            title: None,
        };
        let registered = ev(&t, 1, EventData::CaseRegistered(case.clone()));
        assert_eq!(
            store
                .apply(std::slice::from_ref(&registered))
                .await
                .unwrap()
                .applied,
            1
        );
        assert_eq!(store.apply(&[registered]).await.unwrap().applied, 0);
        let jans = store.resident_letters(&t, &jan).await.unwrap();
        assert_eq!(jans[0].letter.letter_id, "epuap-2");
        assert_eq!(jans[0].state, gsko_store::LetterState::Registered);
        assert_eq!(jans[0].case.as_ref(), Some(&case));
        assert_eq!(jans[1].state, gsko_store::LetterState::Answered);
        assert_eq!(store.resident_decisions(&t, &jan).await.unwrap(), vec![d]);
        assert!(store
            .resident_decisions(&t, &anna)
            .await
            .unwrap()
            .is_empty());

        // The admin list: all, or only those with something wrong (invalid, unsigned).
        let all = store.letters(&t, false, 100).await.unwrap();
        assert_eq!(all.len(), 4);
        let flagged: Vec<String> = store
            .letters(&t, true, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.letter_id)
            .collect();
        assert_eq!(flagged, ["epuap-4", "epuap-2"]);
    }
}

mod scenarios_cases {
    use super::letter_scenarios_support::*;
    use super::*;
    use gsko_model::{CaseRegistered, CaseStatus, CaseStatusChanged, Pesel, SignatureStatus};
    use gsko_store::TimelineEntry;

    fn znak(s: &str) -> gsko_model::CaseRef {
        s.parse().unwrap()
    }

    fn signed(t: &Teryt, id: &str, by: &Pesel, day: u32) -> Event {
        ev(
            t,
            1,
            EventData::LetterReceived(letter(id, Some(by), SignatureStatus::Valid, day)),
        )
    }

    fn registered(t: &Teryt, letter: &str, case_ref: &str, ezd: Option<&str>, secs: i64) -> Event {
        ev(
            t,
            1,
            EventData::CaseRegistered(CaseRegistered {
                letter_id: letter.into(),
                case_ref: znak(case_ref),
                rpw: None,
                registered_at: at(secs),
                ezd_case_id: ezd.map(str::to_owned),
                title: Some("Wniosek o raty".into()),
            }),
        )
    }

    fn change(ezd: &str, case_ref: &str, seq: u32, status: CaseStatus) -> CaseStatusChanged {
        CaseStatusChanged {
            case_ref: znak(case_ref),
            ezd_case_id: ezd.into(),
            status,
            at: at(1000 * i64::from(seq)),
            seq,
            title: None,
            source_status: None,
            due_on: None,
        }
    }

    fn changed(t: &Teryt, c: CaseStatusChanged) -> Event {
        ev(t, i64::from(c.seq), EventData::CaseStatusChanged(c))
    }

    fn entries(timeline: &[TimelineEntry]) -> Vec<(u32, CaseStatus)> {
        timeline.iter().map(|e| (e.seq, e.status)).collect()
    }

    pub async fn case_changes_out_of_order_and_twice_keep_the_highest_seq_and_one_entry_each(
        store: Arc<dyn Store>,
    ) {
        let t = teryt(A);
        let jan = pesel(1);
        let r = "FN.3120.7.2026";
        store
            .apply(&[
                signed(&t, "epuap-1", &jan, 20),
                registered(&t, "epuap-1", r, Some("E-7"), 0),
            ])
            .await
            .unwrap();
        let mut suspended = change("E-7", r, 3, CaseStatus::Suspended);
        suspended.due_on = Some(date(2026, 12, 31));
        suspended.title = Some("Rozłożenie zaległości na raty".into());
        let first = changed(&t, change("E-7", r, 1, CaseStatus::Registered));
        let second = changed(&t, change("E-7", r, 2, CaseStatus::Assigned));
        let third = changed(&t, suspended);
        // The newest first, then the oldest, then the middle one twice in one batch beside a
        // redelivery of the newest: each change counts once.
        let applied = |o: ApplyOutcome| (o.applied, o.ignored);
        assert_eq!(
            applied(store.apply(std::slice::from_ref(&third)).await.unwrap()),
            (1, 0)
        );
        assert_eq!(
            applied(store.apply(std::slice::from_ref(&first)).await.unwrap()),
            (1, 0)
        );
        assert_eq!(
            applied(
                store
                    .apply(&[second.clone(), second.clone(), third.clone()])
                    .await
                    .unwrap()
            ),
            (1, 2)
        );
        assert_eq!(
            applied(store.apply(&[first, second, third]).await.unwrap()),
            (0, 3),
            "a replay changes nothing"
        );

        let cases = store.resident_cases(&t, &jan).await.unwrap();
        assert_eq!(cases.len(), 1, "{cases:?}");
        let c = &cases[0];
        assert_eq!(c.status, CaseStatus::Suspended, "the highest seq wins");
        assert_eq!(c.case_ref, znak(r));
        assert_eq!(c.ezd_case_id.as_deref(), Some("E-7"));
        assert_eq!(c.due_on, Some(date(2026, 12, 31)));
        assert_eq!(c.title.as_deref(), Some("Rozłożenie zaległości na raty"));
        assert_eq!(c.registered_at, at(0));
        assert_eq!(
            entries(&c.timeline),
            [
                (1, CaseStatus::Registered),
                (2, CaseStatus::Assigned),
                (3, CaseStatus::Suspended)
            ],
            "one entry per seq, oldest first, EZD's own registration instead of GSKO's"
        );
        assert_eq!(c.timeline[1].at, at(2000));
        assert_eq!(
            store
                .resident_case(&t, &jan, &znak(r))
                .await
                .unwrap()
                .as_ref(),
            Some(c)
        );

        // A later change replaces the status; an older one arriving after it does not.
        store
            .apply(&[changed(&t, change("E-7", r, 5, CaseStatus::Closed))])
            .await
            .unwrap();
        store
            .apply(&[changed(&t, change("E-7", r, 4, CaseStatus::Resumed))])
            .await
            .unwrap();
        let c = store
            .resident_case(&t, &jan, &znak(r))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.status, CaseStatus::Closed);
        assert_eq!(c.timeline.len(), 5);
        assert_eq!(c.timeline[3].status, CaseStatus::Resumed);
        assert_eq!(c.due_on, None, "the latest change has no deadline");
    }

    pub async fn a_case_is_shown_to_its_letters_signer_only(store: Arc<dyn Store>) {
        let (t, other_tenant) = (teryt(A), teryt(B));
        let (jan, anna, nobody) = (pesel(1), pesel(2), pesel(3));
        store
            .apply(&[
                signed(&t, "epuap-1", &jan, 20),
                signed(&t, "epuap-2", &jan, 21),
                signed(&t, "epuap-3", &anna, 22),
                // Registrations that name no EZD id link by the znak.
                registered(&t, "epuap-1", "FN.3120.8.2026", None, 100),
                registered(&t, "epuap-2", "OŚ.6131.2.2026", None, 200),
                registered(&t, "epuap-3", "FN.3120.9.2026", Some("E-9"), 300),
                // Another tenant's case with Jan's znak is not this tenant's.
                signed(&other_tenant, "epuap-1", &jan, 20),
            ])
            .await
            .unwrap();
        let jans = store.resident_cases(&t, &jan).await.unwrap();
        let refs: Vec<&str> = jans.iter().map(|c| c.case_ref.as_str()).collect();
        assert_eq!(refs, ["OŚ.6131.2.2026", "FN.3120.8.2026"], "newest first");
        let c = &jans[1];
        assert_eq!(c.status, CaseStatus::Registered, "no change reported yet");
        assert_eq!(c.ezd_case_id, None);
        assert_eq!(
            c.timeline,
            [TimelineEntry {
                seq: 0,
                status: CaseStatus::Registered,
                at: at(100)
            }]
        );
        assert_eq!(c.letters.len(), 1);
        assert_eq!(c.letters[0].letter_id, "epuap-1");
        assert_eq!(c.letters[0].title, "Pismo epuap-1");

        // Nobody else sees them, and asking for one answers as for a case that does not exist.
        assert!(store.resident_cases(&t, &nobody).await.unwrap().is_empty());
        assert!(store
            .resident_cases(&other_tenant, &jan)
            .await
            .unwrap()
            .is_empty());
        let annas = store.resident_cases(&t, &anna).await.unwrap();
        assert_eq!(annas.len(), 1);
        assert_eq!(annas[0].case_ref, znak("FN.3120.9.2026"));
        for (who, r) in [
            (&anna, "FN.3120.8.2026"),
            (&nobody, "FN.3120.8.2026"),
            (&jan, "FN.3120.9.2026"),
            (&jan, "FN.3120.99.2026"),
        ] {
            assert_eq!(
                store.resident_case(&t, who, &znak(r)).await.unwrap(),
                None,
                "{r}"
            );
        }
        assert_eq!(
            store
                .resident_case(&other_tenant, &jan, &znak("FN.3120.8.2026"))
                .await
                .unwrap(),
            None
        );

        // EZD reports a change of Jan's case under its znak: it links to his letter, and the
        // registration GSKO saw stays first in the timeline.
        store
            .apply(&[changed(
                &t,
                change("E-8", "FN.3120.8.2026", 2, CaseStatus::InProgress),
            )])
            .await
            .unwrap();
        let c = store
            .resident_case(&t, &jan, &znak("FN.3120.8.2026"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.status, CaseStatus::InProgress);
        assert_eq!(c.ezd_case_id.as_deref(), Some("E-8"));
        assert_eq!(
            entries(&c.timeline),
            [(0, CaseStatus::Registered), (2, CaseStatus::InProgress)]
        );
        assert_eq!(
            store
                .resident_case(&t, &anna, &znak("FN.3120.8.2026"))
                .await
                .unwrap(),
            None
        );
    }

    pub async fn a_decision_under_the_cases_znak_is_shown_in_the_case(store: Arc<dyn Store>) {
        let t = teryt(A);
        let (jan, anna) = (pesel(1), pesel(2));
        let r = "FN.3120.9.2026";
        let decision = |id: &str, to: &Pesel, case_ref: &str| {
            let mut d = delivered(id, to, None);
            d.case_ref = Some(znak(case_ref));
            d
        };
        let in_case = decision("ezd-9", &jan, r);
        let elsewhere = decision("ezd-10", &jan, "FN.3120.10.2026");
        let annas = decision("ezd-11", &anna, r);
        store
            .apply(&[
                signed(&t, "epuap-1", &jan, 20),
                registered(&t, "epuap-1", r, Some("E-9"), 0),
                changed(&t, change("E-9", r, 1, CaseStatus::Registered)),
                changed(&t, change("E-9", r, 2, CaseStatus::Closed)),
                ev(&t, 1, EventData::DecisionDelivered(in_case.clone())),
                ev(&t, 1, EventData::DecisionDelivered(elsewhere)),
                ev(&t, 1, EventData::DecisionDelivered(annas)),
            ])
            .await
            .unwrap();
        let c = store
            .resident_case(&t, &jan, &znak(r))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.decisions, [in_case], "only Jan's decision in this case");
        assert_eq!(c.status, CaseStatus::Closed);
        assert_eq!(store.resident_cases(&t, &jan).await.unwrap(), [c]);
    }

    pub async fn a_re_registered_case_still_links_by_its_ezd_id(store: Arc<dyn Store>) {
        let t = teryt(A);
        let jan = pesel(1);
        let (old, new) = ("FN.3120.10.2026", "OŚ.6131.2.2026");
        store
            .apply(&[
                signed(&t, "epuap-1", &jan, 20),
                registered(&t, "epuap-1", old, Some("E-10"), 0),
                changed(&t, change("E-10", old, 1, CaseStatus::Registered)),
            ])
            .await
            .unwrap();
        // EZD moves the case under another znak; a later letter goes to it under the new one,
        // and a decision is delivered under it.
        let mut d = delivered("ezd-12", &jan, None);
        d.case_ref = Some(znak(new));
        store
            .apply(&[
                changed(&t, change("E-10", new, 2, CaseStatus::ReRegistered)),
                signed(&t, "epuap-2", &jan, 25),
                registered(&t, "epuap-2", new, Some("E-10"), 5000),
                ev(&t, 1, EventData::DecisionDelivered(d.clone())),
            ])
            .await
            .unwrap();
        let cases = store.resident_cases(&t, &jan).await.unwrap();
        assert_eq!(cases.len(), 1, "one case under both znaki: {cases:?}");
        let c = &cases[0];
        assert_eq!(c.case_ref, znak(new));
        assert_eq!(c.status, CaseStatus::ReRegistered);
        assert_eq!(c.registered_at, at(0), "the first registration");
        let letters: Vec<&str> = c.letters.iter().map(|l| l.letter_id.as_str()).collect();
        assert_eq!(letters, ["epuap-1", "epuap-2"]);
        assert_eq!(c.decisions, [d]);
        assert_eq!(
            entries(&c.timeline),
            [(1, CaseStatus::Registered), (2, CaseStatus::ReRegistered)]
        );
        // Found by the znak it has now and by the one the resident's first letter got.
        for r in [new, old] {
            assert_eq!(
                store
                    .resident_case(&t, &jan, &znak(r))
                    .await
                    .unwrap()
                    .as_ref(),
                Some(c),
                "{r}"
            );
        }
    }
}

mod scenarios_all {
    pub use super::scenarios::*;
    pub use super::scenarios_cases::*;
    pub use super::scenarios_letters::*;
}
