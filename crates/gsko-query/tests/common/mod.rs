//! Fixtures shared by the query service's tests: a populated embedded store, portal keys, and
//! the payment service against the gateway simulators on loopback.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::NaiveDate;
use gsko_config::PortalKey;
use gsko_model::*;
use gsko_payments::{Merchant, PaymentService, TenantPayments};
use gsko_payu::{PayuClient, PayuConfig};
use gsko_przelewy24::{P24Client, P24Config};
use gsko_query::{router, AppState, Registry};
use gsko_sim::payu::{self as payu_sim, PayuSim, PayuSimHandle};
use gsko_sim::przelewy24::{self as p24_sim, P24Sim, P24SimHandle};
use gsko_store::{NotificationAudit, NotificationOutcome, PaymentStore, SqliteStore, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub const T1: &str = "0201011";
pub const T2: &str = "0201032";
/// T1: account A1 (property 2026, installment 1 paid); T2: account J2A, no liabilities.
pub const JAN: &str = "78031501236";
/// T2: owner of H1 (liability L2), shared with Piotr.
pub const ANNA: &str = "81072204569";
/// T2: co-owner of H1.
pub const PIOTR: &str = "83110907816";
/// T1: account EA with an unpaid 2025 property liability (overdue, with interest), a dog fee,
/// a vehicle tax no merchant collects, and two payments (one received, one booked).
pub const EWA: &str = "90020312344";

pub const RETURN_URL: &str = "https://portal.example.pl/wynik";

/// The session key of every test app.
pub fn session_keys() -> gsko_login::SessionKeys {
    gsko_login::SessionKeys::new(vec![vec![42; 32]]).unwrap()
}

/// Resident login wired to `store`. The identity provider is never reached here (the login
/// itself is tested in gsko-login and the e2e tests); sessions are made by [`session_token`].
pub fn login_service(
    store: Arc<SqliteStore>,
    dir: &std::path::Path,
) -> Arc<gsko_login::LoginService> {
    let creds = gsko_sim::login::make_sp_credentials(dir).unwrap();
    let sp = gsko_login::ServiceProvider::new(
        gsko_login::SpSettings::new(
            "gsko.test",
            "http://gsko.test/login/acs",
            gsko_login::IdpEndpoints::under("symulator.login.gov.pl", "http://127.0.0.1:9"),
        ),
        gsko_login::Signer::from_pem(&creds.signing_cert_pem, &creds.signing_key_pem).unwrap(),
        gsko_login::DecryptionKey::from_pem(&creds.encryption_key_pem).unwrap(),
        gsko_login::certificates_from_pem(&creds.signing_cert_pem).unwrap(),
    )
    .unwrap();
    Arc::new(gsko_login::LoginService {
        sp,
        keys: session_keys(),
        store,
        policy: gsko_login::SessionPolicy {
            ttl: chrono::Duration::minutes(15),
            max: chrono::Duration::hours(8),
            login_timeout: chrono::Duration::minutes(10),
            return_origins: vec![],
        },
    })
}

/// A live session of `pesel`, as a login would have created it; its token.
pub async fn session_token(store: &SqliteStore, pesel: &str) -> String {
    use gsko_store::LoginStore;
    let now = chrono::Utc::now();
    let sid = format!("test-{}", uuid::Uuid::now_v7().simple());
    let s = gsko_store::SessionRecord {
        sid: sid.clone(),
        pesel: pesel.into(),
        given_name: "Test".into(),
        family_name: "Resident".into(),
        loa: "http://eidas.europa.eu/LoA/substantial".into(),
        name_id: pesel.into(),
        session_index: Some("idx".into()),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(15),
        max_until: now + chrono::Duration::hours(8),
        revoked_at: None,
    };
    store.session_create(&s).await.unwrap();
    session_keys().sign(&sid, s.expires_at)
}

pub fn d(s: &str) -> NaiveDate {
    NaiveDate::from_str(s).unwrap()
}

pub fn g(x: i64) -> Amount {
    Amount::from_grosze(x).unwrap()
}

pub fn teryt(t: &str) -> Teryt {
    Teryt::parse(t).unwrap()
}

pub fn ev(tenant: &str, version: i64, data: EventData) -> Event {
    Event::new("/test", teryt(tenant), version, data)
}

pub fn person(id: &str, pesel: &str, name: &str) -> EventData {
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

pub fn account(id: &str, holders: &[(&str, HolderRole)], vacc: Option<&str>) -> EventData {
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

/// A liability with one installment per due date, each of `each` grosze.
pub fn liability_of(
    id: &str,
    acc: &str,
    levy: LevyKind,
    year: i32,
    dues: &[&str],
    each: i64,
) -> EventData {
    EventData::LiabilityUpserted(Liability {
        liability_id: id.into(),
        account_id: acc.into(),
        levy,
        year,
        decision: Some(Decision {
            number: format!("FN.3120.1.{year}"),
            issued_on: NaiveDate::from_ymd_opt(year, 2, 10).unwrap(),
            delivered_on: Some(NaiveDate::from_ymd_opt(year, 2, 20).unwrap()),
        }),
        total: g(each * dues.len() as i64),
        installments: dues
            .iter()
            .enumerate()
            .map(|(i, due)| Installment {
                seq: i as u8 + 1,
                due_date: d(due),
                amount: g(each),
            })
            .collect(),
    })
}

/// Property tax 2026 in four installments of 250.75 zl.
pub fn liability(id: &str, acc: &str) -> EventData {
    liability_of(
        id,
        acc,
        LevyKind::Property,
        2026,
        &["2026-03-15", "2026-05-15", "2026-09-15", "2026-11-15"],
        25075,
    )
}

fn events() -> Vec<Event> {
    vec![
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
        // Ewa: arrears from 2025, a dog fee and a vehicle tax, and two payments.
        ev(T1, 1, person("E1", EWA, "Ewa Zielińska")),
        ev(T1, 1, account("EA", &[("E1", HolderRole::Owner)], None)),
        ev(
            T1,
            1,
            liability_of(
                "E-OLD",
                "EA",
                LevyKind::Property,
                2025,
                &["2025-03-17", "2025-05-15", "2025-09-15", "2025-11-17"],
                25075,
            ),
        ),
        ev(
            T1,
            1,
            liability_of("E-DOG", "EA", LevyKind::DogFee, 2026, &["2026-05-15"], 5000),
        ),
        ev(
            T1,
            1,
            liability_of(
                "E-CAR",
                "EA",
                LevyKind::Vehicle,
                2026,
                &["2026-05-15"],
                10000,
            ),
        ),
        ev(
            T1,
            1,
            EventData::PaymentSettled(Payment {
                payment_id: "bank-ewa-0001".into(),
                channel: PaymentChannel::BankTransfer,
                amount: g(3000),
                paid_on: d("2026-03-30"),
                received_on: d("2026-03-31"),
                items: vec![PaymentItem {
                    account_id: "EA".into(),
                    liability_id: None,
                    installment_seq: None,
                    amount: g(3000),
                }],
                external_ref: Some("BNK/2026/0331/17".into()),
                virtual_account: Some(Nrb::parse("61109010140000071219812874").unwrap()),
                title: Some("podatek".into()),
            }),
        ),
        ev(
            T1,
            1,
            EventData::PaymentSettled(Payment {
                payment_id: "p24-ewa0002".into(),
                channel: PaymentChannel::Przelewy24,
                amount: g(2000),
                paid_on: d("2026-03-10"),
                received_on: d("2026-03-10"),
                items: vec![PaymentItem {
                    account_id: "EA".into(),
                    liability_id: None,
                    installment_seq: None,
                    amount: g(2000),
                }],
                external_ref: Some("31337".into()),
                virtual_account: None,
                title: None,
            }),
        ),
        ev(
            T1,
            1,
            EventData::PaymentBooked(PaymentBooked {
                payment_id: "p24-ewa0002".into(),
                account_id: "EA".into(),
                posting_id: "PB-1".into(),
                amount: g(2000),
                booked_on: d("2026-03-12"),
            }),
        ),
        ev(
            T1,
            1,
            EventData::PaymentUnmatched(UnmatchedPayment {
                payment_id: "bank-x-0001".into(),
                channel: PaymentChannel::BankTransfer,
                amount: g(12345),
                paid_on: Some(d("2026-03-30")),
                reason: UnmatchedReason::UnknownVirtualAccount,
                detail: "no tax account has virtual account 83101010230000261395100000".into(),
                source: "wyciag-2026-03-31.sta:12".into(),
                external_ref: None,
                virtual_account: Some(Nrb::parse("83101010230000261395100000").unwrap()),
                title: Some("opłata".into()),
                raw: ":61:2603310331C123,45NTRFNONREF".into(),
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
        ev(
            T1,
            1,
            EventData::LetterReceived(letter("epuap-1", JAN, SignatureStatus::Valid)),
        ),
        ev(
            T1,
            1,
            EventData::LetterReceived(letter("epuap-2", JAN, SignatureStatus::Invalid)),
        ),
        ev(
            T1,
            1,
            EventData::CaseRegistered(CaseRegistered {
                letter_id: "epuap-2".into(),
                case_ref: "FN.3120.2.2026".parse().unwrap(),
                rpw: Some("RPW/7/2026".into()),
                registered_at: chrono::DateTime::parse_from_rfc3339("2026-11-21T08:00:00Z")
                    .unwrap()
                    .with_timezone(&chrono::Utc),
                ezd_case_id: None,
                title: None,
            }),
        ),
        // EZD registers epuap-1 in a case, moves the case under another znak (another unit
        // takes it over) and closes it; the changes arrive out of order.
        ev(
            T1,
            1,
            EventData::CaseRegistered(CaseRegistered {
                letter_id: "epuap-1".into(),
                case_ref: "FN.3120.1.2026".parse().unwrap(),
                rpw: Some("RPW/6/2026".into()),
                registered_at: instant("2026-11-20T10:00:00Z"),
                ezd_case_id: Some("ezd-case-1".into()),
                title: Some("Rozłożenie zaległości na raty".into()),
            }),
        ),
        ev(
            T1,
            3,
            case_changed(
                3,
                CaseStatus::ReRegistered,
                "OŚ.6131.2.2026",
                "2026-11-24T09:00:00Z",
            ),
        ),
        ev(
            T1,
            1,
            case_changed(
                1,
                CaseStatus::Registered,
                "FN.3120.1.2026",
                "2026-11-20T10:00:00Z",
            ),
        ),
        ev(
            T1,
            4,
            case_changed(
                4,
                CaseStatus::Closed,
                "OŚ.6131.2.2026",
                "2026-11-27T11:00:00Z",
            ),
        ),
        ev(
            T1,
            2,
            case_changed(
                2,
                CaseStatus::Assigned,
                "FN.3120.1.2026",
                "2026-11-21T12:00:00Z",
            ),
        ),
        ev(
            T1,
            1,
            EventData::DecisionDelivered(DecisionDelivered {
                decision_id: "ezd-1".into(),
                outcome: DeliveryOutcome::Delivered,
                channel: DeliveryChannel::Epuap,
                at: chrono::DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
                    .unwrap()
                    .with_timezone(&chrono::Utc),
                shipment_id: Some("5129934".into()),
                evidence: Some(DeliveryEvidence {
                    kind: EvidenceKind::Upd,
                    id: "UPD-1".into(),
                    code: None,
                    sha256: "b".repeat(64),
                }),
                reason: None,
                recipient_pesel: Some(Pesel::from_str(JAN).unwrap()),
                case_ref: Some("FN.3120.1.2026".parse().unwrap()),
                title: Some("Decyzja w sprawie raty".into()),
                in_reply_to: Some("epuap-1".into()),
            }),
        ),
    ]
}

pub fn instant(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A change of Jan's case `ezd-case-1` (registered from his letter epuap-1).
pub fn case_changed(seq: u32, status: CaseStatus, case_ref: &str, at: &str) -> EventData {
    EventData::CaseStatusChanged(CaseStatusChanged {
        case_ref: case_ref.parse().unwrap(),
        ezd_case_id: "ezd-case-1".into(),
        status,
        at: instant(at),
        seq,
        title: Some("Rozłożenie zaległości na raty".into()),
        source_status: None,
        due_on: Some(d("2026-12-20")),
    })
}

/// A letter signed by `signer`, pulled from the tenant's box.
pub fn letter(id: &str, signer: &str, status: SignatureStatus) -> Letter {
    let pesel = Pesel::from_str(signer).unwrap();
    Letter {
        letter_id: id.into(),
        channel: LetterChannel::Epuap,
        received_at: chrono::DateTime::parse_from_rfc3339("2026-11-20T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
        epuap_box: Some("/umboleslawiec/skrytka".into()),
        sender: LetterSender {
            kind: SenderKind::Person,
            name: "Jan Kowalski".into(),
            pesel: Some(pesel.clone()),
            nip: None,
            regon: None,
            epuap_login: Some("jkowalski".into()),
            reply_address: Some("/jkowalski/skrytka".into()),
            address: None,
            contacts: vec![],
        },
        addressee: Some("Urząd Miasta Bolesławiec".into()),
        title: format!("Wniosek {id}"),
        body_text: Some("Proszę o rozłożenie zaległości na raty.".into()),
        form: None,
        document: StoredFile {
            name: "Pismo_ogolne.xml".into(),
            mime_type: "application/xml".into(),
            size_bytes: 2048,
            sha256: "a".repeat(64),
            description: None,
        },
        attachments: vec![],
        signature: LetterSignature {
            status,
            form: Some(SignatureForm::PodpisZaufany),
            signer_pesel: Some(pesel),
            signer_name: Some("Jan Kowalski".into()),
            signed_at: None,
            problems: if status == SignatureStatus::Valid {
                vec![]
            } else {
                vec!["a reference digest does not match: the document was changed after it was signed".into()]
            },
        },
        test: false,
        upp_id: None,
        problems: vec![],
    }
}

pub async fn populated() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("v.sqlite"))
        .await
        .unwrap();
    store.apply(&events()).await.unwrap();
    (Arc::new(store), dir)
}

pub fn keys() -> Vec<PortalKey> {
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
            tenants: Some(vec![teryt(T1)]),
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

/// The service under test with its store and, when it has payments, the gateway simulators.
pub struct App {
    pub router: axum::Router,
    pub store: Arc<SqliteStore>,
    pub p24: Option<P24SimHandle>,
    pub payu: Option<PayuSimHandle>,
    pub _dir: tempfile::TempDir,
}

impl App {
    pub fn p24(&self) -> &P24SimHandle {
        self.p24.as_ref().expect("this app has payments")
    }

    pub fn payu(&self) -> &PayuSimHandle {
        self.payu.as_ref().expect("this app has payments")
    }
}

/// Both tenants take online payments: merchant `taxes` (property and agricultural tax, through
/// Przelewy24 or PayU) and merchant `fees` (the dog fee, PayU only); nobody collects the
/// vehicle tax online.
async fn payment_service(
    store: Arc<SqliteStore>,
) -> (Arc<PaymentService>, P24SimHandle, PayuSimHandle) {
    let p24 = P24Sim::start(p24_sim::SimConfig::new(
        51_001, 51_001, "api-key", "crc-key",
    ))
    .await
    .unwrap();
    let payu = PayuSim::start(payu_sim::SimConfig::new(
        "61001",
        "61001",
        "payu-secret",
        "second-key",
    ))
    .await
    .unwrap();
    let p24_client = || {
        let mut c = P24Config::new(p24.base_url.as_str(), 51_001, "api-key", "crc-key");
        c.timeout = Duration::from_secs(5);
        P24Client::new(c).unwrap()
    };
    let payu_client = || {
        let mut c = PayuConfig::new(
            payu.base_url.as_str(),
            "61001",
            "61001",
            "payu-secret",
            "second-key",
        );
        c.timeout = Duration::from_secs(5);
        PayuClient::new(c).unwrap()
    };
    let mut tenants = BTreeMap::new();
    for (t, name) in [(T1, "Bolesławiec"), (T2, "Gromadka")] {
        let merchants = BTreeMap::from([
            (
                "taxes".to_owned(),
                Merchant {
                    name: "taxes".into(),
                    levies: vec![LevyKind::Property, LevyKind::Agricultural],
                    przelewy24: Some(p24_client()),
                    payu: Some(payu_client()),
                },
            ),
            (
                "fees".to_owned(),
                Merchant {
                    name: "fees".into(),
                    levies: vec![LevyKind::DogFee],
                    przelewy24: None,
                    payu: Some(payu_client()),
                },
            ),
        ]);
        tenants.insert(
            teryt(t),
            TenantPayments {
                name: name.into(),
                return_url: RETURN_URL.into(),
                allowed_return_urls: vec!["https://portal.example.pl/".into()],
                merchants,
            },
        );
    }
    // Nothing here pays, so no gateway ever calls back: the notification endpoints are not
    // served.
    let service = Arc::new(PaymentService::new(
        store as Arc<dyn PaymentStore>,
        tenants,
        "http://127.0.0.1:9",
    ));
    (service, p24, payu)
}

/// The service over the populated store, today being 1 April 2026; with online payments
/// against the simulators when `payments`.
pub async fn app(payments: bool) -> App {
    app_with(payments, |s| s).await
}

/// As [`app`], with the state changed by `customize` before the router is built.
pub async fn app_with(payments: bool, customize: impl FnOnce(AppState) -> AppState) -> App {
    let (store, dir) = populated().await;
    let tenants: BTreeMap<Teryt, String> = [(T1, "Bolesławiec"), (T2, "Gromadka")]
        .into_iter()
        .map(|(t, n)| (teryt(t), n.to_owned()))
        .collect();
    let mut state = AppState::new(
        store.clone() as Arc<dyn Store>,
        keys(),
        tenants,
        Registry::new(),
    );
    state.today = || NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
    // One letter the EZD connector parked: EZD gave it a malformed znak sprawy.
    gsko_store::CaseWorkStore::park_registration(
        store.as_ref(),
        &teryt(T1),
        "epuap-9",
        "EZD returned a malformed znak sprawy: JRWA symbol must be 1 to 4 digits",
        Some("ezd-case-9"),
        Some("FN.31200.9.2026"),
        Some("RPW/9/2026"),
    )
    .await
    .unwrap();
    state = state.with_cases(store.clone() as Arc<dyn gsko_store::CaseWorkStore>);
    state = state.with_login(login_service(store.clone(), dir.path()), true);
    let (p24, payu) = if payments {
        let (service, p24, payu) = payment_service(store.clone()).await;
        // One notification in the audit, as the gateway endpoints would have written it.
        store
            .audit_notification(&NotificationAudit {
                tenant: teryt(T1),
                gateway: "przelewy24".into(),
                merchant: "taxes".into(),
                received_at: chrono::Utc::now(),
                session_id: Some("0123456789abcdef01234567".into()),
                outcome: NotificationOutcome::Rejected,
                reason: "bad_signature".into(),
                body_sha256: "b".repeat(64),
                remote_addr: Some("192.0.2.7:41234".into()),
            })
            .await
            .unwrap();
        state = state.with_payments(service);
        (Some(p24), Some(payu))
    } else {
        (None, None)
    };
    App {
        router: router(customize(state), 4096),
        store,
        p24,
        payu,
        _dir: dir,
    }
}

/// One request.
pub struct Req<'a> {
    pub method: &'a str,
    pub url: String,
    pub key: Option<&'a str>,
    pub pesel: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    /// Sent as is (so that a test can send malformed JSON).
    pub body: Option<String>,
}

impl<'a> Req<'a> {
    pub fn get(url: impl Into<String>, key: Option<&'a str>, pesel: Option<&'a str>) -> Self {
        Req {
            method: "GET",
            url: url.into(),
            key,
            pesel,
            idempotency_key: None,
            body: None,
        }
    }

    pub fn post(
        url: impl Into<String>,
        key: Option<&'a str>,
        pesel: Option<&'a str>,
        idempotency_key: Option<&'a str>,
        body: impl Into<String>,
    ) -> Self {
        Req {
            method: "POST",
            url: url.into(),
            key,
            pesel,
            idempotency_key,
            body: Some(body.into()),
        }
    }
}

/// Sends the request; answers (status, content type, body).
pub async fn send(router: &axum::Router, req: &Req<'_>) -> (StatusCode, String, Vec<u8>) {
    let mut r = Request::builder().method(req.method).uri(&req.url);
    if let Some(k) = req.key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    if let Some(p) = req.pesel {
        r = r.header("x-resident-pesel", p);
    }
    if let Some(k) = req.idempotency_key {
        r = r.header("idempotency-key", k);
    }
    let body = match &req.body {
        Some(b) => {
            r = r.header("content-type", "application/json");
            Body::from(b.clone())
        }
        None => Body::empty(),
    };
    let resp = router.clone().oneshot(r.body(body).unwrap()).await.unwrap();
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

/// Sends the request and parses the JSON answer.
pub async fn send_json(router: &axum::Router, req: &Req<'_>) -> (StatusCode, Value) {
    let (status, _, body) = send(router, req).await;
    let v = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{} {}: {status} is not JSON ({e}): {}",
            req.method,
            req.url,
            String::from_utf8_lossy(&body)
        )
    });
    (status, v)
}
