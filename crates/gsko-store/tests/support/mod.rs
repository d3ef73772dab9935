//! Shared by the contract tests and the benchmark: valid identifiers, event builders and the
//! per-test databases.
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use futures::FutureExt;
use gsko_model::*;
use gsko_store::{PaymentStore, PgStore, SqliteStore, Store};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub const SOURCE: &str = "/gsko/test";

/// Both interfaces of a backend: the contract tests run every scenario on each of them.
pub trait TestStore: Store + PaymentStore {}
impl<T: Store + PaymentStore + ?Sized> TestStore for T {}

pub fn teryt(s: &str) -> Teryt {
    Teryt::parse(s).expect("valid TERYT in test")
}

/// A valid PESEL for a person born on 1 Jan 1950 + `n` days (staying in the 1900s, whose
/// months need no century offset), with a serial derived from `n`.
pub fn pesel(n: u32) -> Pesel {
    let born =
        NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + chrono::Days::new(u64::from(n % 18000));
    let (y, m, d) = (
        born.format("%y").to_string(),
        born.format("%m").to_string(),
        born.format("%d").to_string(),
    );
    let serial = format!("{:04}", n % 10000);
    let base = format!("{y}{m}{d}{serial}");
    let w = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = base
        .bytes()
        .zip(w)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = (10 - sum % 10) % 10;
    Pesel::parse(&format!("{base}{check}")).expect("generated PESEL is valid")
}

/// A valid NRB with the bank's sort code 10901014 and the account number from `n`.
pub fn nrb(n: u64) -> Nrb {
    let bban = format!("10901014{n:016}");
    let digits = format!("{bban}252100");
    let rem = digits
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
    Nrb::parse(&format!("{:02}{bban}", 98 - rem)).expect("generated NRB is valid")
}

pub fn grosze(g: i64) -> Amount {
    Amount::from_grosze(g).expect("non-negative amount in test")
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date in test")
}

pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + secs, 0)
        .single()
        .expect("valid instant")
}

pub fn ev(tenant: &Teryt, version: i64, data: EventData) -> Event {
    Event::new(SOURCE, tenant.clone(), version, data)
}

pub fn taxpayer(id: &str, pesel: Option<&Pesel>, name: &str) -> EventData {
    EventData::TaxpayerUpserted(Taxpayer {
        taxpayer_id: id.to_owned(),
        kind: TaxpayerKind::Natural,
        pesel: pesel.cloned(),
        nip: None,
        regon: None,
        name: name.to_owned(),
        address: Some(Address {
            street: Some("ul. Lipowa".to_owned()),
            building: Some("7".to_owned()),
            unit: None,
            postal_code: "05-500".to_owned(),
            city: "Piaseczno".to_owned(),
            simc: None,
            country: "PL".to_owned(),
        }),
        contacts: vec![ContactChannel {
            kind: ContactKind::Email,
            value: format!("{id}@example.org"),
        }],
    })
}

pub fn account(id: &str, holders: &[(&str, HolderRole)]) -> EventData {
    EventData::TaxAccountUpserted(TaxAccount {
        account_id: id.to_owned(),
        levy: LevyKind::Property,
        holders: holders
            .iter()
            .map(|(t, r)| AccountHolder {
                taxpayer_id: (*t).to_owned(),
                role: *r,
            })
            .collect(),
        virtual_account: Some(nrb(id.bytes().map(u64::from).sum())),
    })
}

pub fn liability(id: &str, account: &str, year: i32, total: i64) -> EventData {
    let quarter = total / 4;
    EventData::LiabilityUpserted(Liability {
        liability_id: id.to_owned(),
        account_id: account.to_owned(),
        levy: LevyKind::Property,
        year,
        decision: Some(Decision {
            number: format!("FN.3120.{year}.{id}"),
            issued_on: date(year, 2, 1),
            delivered_on: None,
        }),
        total: grosze(total),
        installments: [(3, 15), (5, 15), (9, 15), (11, 15)]
            .iter()
            .enumerate()
            .map(|(i, (m, d))| Installment {
                seq: (i + 1) as u8,
                due_date: date(year, *m, *d),
                amount: grosze(if i == 0 { total - 3 * quarter } else { quarter }),
            })
            .collect(),
    })
}

pub fn posting(id: &str, account: &str, value_date: NaiveDate, amount: i64) -> EventData {
    EventData::PostingRecorded(LedgerPosting {
        posting_id: id.to_owned(),
        account_id: account.to_owned(),
        kind: PostingKind::Payment,
        value_date,
        amount: grosze(amount),
        liability_id: None,
        installment_seq: Some(1),
        description: Some("wpłata".to_owned()),
    })
}

pub fn balance(account: &str, principal: i64) -> EventData {
    EventData::BalanceReported(Balance {
        account_id: account.to_owned(),
        as_of: date(2026, 6, 30),
        principal: grosze(principal),
        interest: grosze(123),
        costs: grosze(0),
        overpayment: grosze(0),
    })
}

pub fn rejected(sha: &str, line: u64) -> EventData {
    EventData::RecordRejected(RejectedRecord {
        file: "radix-export.xml".to_owned(),
        file_sha256: sha.to_owned(),
        line,
        record_type: "taxpayer".to_owned(),
        record_id: Some(format!("T-{line}")),
        field: Some("pesel".to_owned()),
        reason: "PESEL checksum does not match".to_owned(),
        raw: format!("<taxpayer id=\"T-{line}\" pesel=\"44051401358\"/>"),
    })
}

pub fn import(sha: &str) -> EventData {
    EventData::ImportCompleted(ImportCompleted {
        file: format!("radix-{}.xml", &sha[..8]),
        file_sha256: sha.to_owned(),
        export_kind: "full".to_owned(),
        records_accepted: 100,
        records_rejected: 2,
    })
}

/// A payment settled on `paid_on`, one item per (account, grosze).
pub fn payment(id: &str, paid_on: NaiveDate, items: &[(&str, i64)]) -> Payment {
    Payment {
        payment_id: id.to_owned(),
        channel: PaymentChannel::Przelewy24,
        amount: grosze(items.iter().map(|(_, g)| g).sum()),
        paid_on,
        received_on: paid_on,
        items: items
            .iter()
            .map(|(account, g)| PaymentItem {
                account_id: (*account).to_owned(),
                liability_id: None,
                installment_seq: None,
                amount: grosze(*g),
            })
            .collect(),
        external_ref: Some(format!("ext-{id}")),
        virtual_account: None,
        title: Some("Podatek od nieruchomości".to_owned()),
    }
}

pub fn settled(id: &str, paid_on: NaiveDate, items: &[(&str, i64)]) -> EventData {
    EventData::PaymentSettled(payment(id, paid_on, items))
}

pub fn booked(
    payment: &str,
    posting: &str,
    account: &str,
    amount: i64,
    on: NaiveDate,
) -> EventData {
    EventData::PaymentBooked(PaymentBooked {
        payment_id: payment.to_owned(),
        account_id: account.to_owned(),
        posting_id: posting.to_owned(),
        amount: grosze(amount),
        booked_on: on,
    })
}

pub fn unmatched(id: &str, reason: UnmatchedReason) -> EventData {
    EventData::PaymentUnmatched(UnmatchedPayment {
        payment_id: id.to_owned(),
        channel: PaymentChannel::BankTransfer,
        amount: grosze(12_345),
        paid_on: Some(date(2026, 3, 14)),
        reason,
        detail: "no tax account has this virtual account".to_owned(),
        source: format!("mt940-2026-03-14.sta:{id}"),
        external_ref: None,
        virtual_account: Some(nrb(77)),
        title: Some("podatek".to_owned()),
        raw: ":61:2603140314C123,45NTRF".to_owned(),
    })
}

// ---- databases --------------------------------------------------------------------------

/// The Postgres server the tests create their databases on.
pub fn pg_server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let host_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// A fresh, empty Postgres database for one test; dropped afterwards.
pub struct PgTestDb {
    admin: sqlx::PgPool,
    pub name: String,
    pub url: String,
}

impl PgTestDb {
    pub async fn create() -> PgTestDb {
        let server = pg_server_url();
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(3))
            .connect(&server)
            .await
            .unwrap_or_else(|e| {
                panic!("Postgres is not reachable at {server} ({e}). Start it, or point DATABASE_URL at a server where this user may create databases.")
            });
        let name = format!("gsko_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} on {server}: {e}"));
        let url = with_database(&server, &name);
        PgTestDb { admin, name, url }
    }

    pub async fn drop_db(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = sqlx::query(&sql).execute(&self.admin).await {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
        self.admin.close().await;
    }
}

/// Runs `f` against a store on a fresh Postgres database, dropping it even when `f` panics.
pub async fn with_pg<F, Fut>(f: F)
where
    F: FnOnce(Arc<dyn TestStore>) -> Fut,
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

pub async fn with_sqlite_memory<F, Fut>(f: F)
where
    F: FnOnce(Arc<dyn TestStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = SqliteStore::open(":memory:")
        .await
        .unwrap_or_else(|e| panic!("SqliteStore::open: {e}"));
    f(Arc::new(store)).await;
}

pub async fn with_sqlite_file<F, Fut>(f: F)
where
    F: FnOnce(Arc<dyn TestStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("view.db"))
        .await
        .unwrap_or_else(|e| panic!("SqliteStore::open: {e}"));
    f(Arc::new(store.clone())).await;
    store.close().await;
}
