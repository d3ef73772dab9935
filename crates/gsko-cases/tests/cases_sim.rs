//! The case service with the EZD RP adapter against the simulated EZD RP (crates/gsko-sim),
//! on the embedded bus and SQLite: registration (once, however often asked, through faults),
//! statuses into the timeline, decisions raised once, the pause on a configuration error.

use chrono::{Datelike, TimeZone, Utc};
use gsko_bus::{Bus, MemoryBus, Outgoing, Subscription, Topology};
use gsko_cases::{CaseService, PollSettings, Route, Routing, TenantCases};
use gsko_epuap::receiver::FileStore;
use gsko_ezd::ezdrp::{EzdRpClient, EzdRpConfig};
use gsko_model::{
    CaseStatus, DeliveryPreference, Event, EventData, Letter, LetterChannel, LetterSender,
    LetterSignature, Pesel, SenderKind, SignatureForm, SignatureStatus, StoredFile, Teryt,
};
use gsko_sim::ezd::{EzdSim, EzdSimConfig, Fault};
use gsko_store::{CaseWorkStore, RegistrationState, SqliteStore};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const JAN: &str = "44051401359";

struct World {
    sim: EzdSim,
    bus: Arc<MemoryBus>,
    store: Arc<SqliteStore>,
    service: Arc<CaseService>,
    files: FileStore,
    tenant: Teryt,
    _dir: tempfile::TempDir,
    events: Box<dyn Subscription>,
    stop: watch::Sender<bool>,
}

fn route(join: bool) -> Route {
    Route {
        form_namespace: None,
        title_contains: None,
        class_id: "wykaz-3120".into(),
        jrwa_symbol: "3120".into(),
        archival_category: "B5".into(),
        join_open_case: join,
        case_title: gsko_cases::DEFAULT_CASE_TITLE.into(),
    }
}

async fn world(join_open_case: bool, timeout: Duration) -> World {
    let sim = EzdSim::start(EzdSimConfig::demo()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("gsko.db")).await.unwrap());
    let bus = Arc::new(
        MemoryBus::open(
            None,
            Topology {
                retry_ladder: vec![Duration::from_millis(200), Duration::from_millis(400)],
                ..Topology::default()
            },
        )
        .await
        .unwrap(),
    );
    let c = sim.config();
    let mut cfg = EzdRpConfig::new(
        sim.base_url(),
        format!("{}/connect/token", sim.base_url()),
        c.web_host.clone(),
        c.podmiot_id.clone(),
        c.api_key_id.clone(),
        gsko_model::Secret::new(c.api_key.clone()),
        c.stanowisko_id.clone(),
    );
    cfg.timeout = timeout;
    let files = FileStore::new(dir.path().join("documents"));
    let tenant = Teryt::parse("0201011").unwrap();
    let mut tenants = HashMap::new();
    tenants.insert(
        tenant.clone(),
        TenantCases {
            port: Arc::new(EzdRpClient::new(cfg).unwrap()),
            routing: Routing {
                rules: vec![],
                default: Some(route(join_open_case)),
            },
            decision_prefixes: vec!["Decyzja".into()],
            delivery: DeliveryPreference::Auto,
            files: files.clone(),
        },
    );
    let service = Arc::new(CaseService::new(
        store.clone() as Arc<dyn CaseWorkStore>,
        tenants,
        PollSettings {
            interval: Duration::from_millis(200),
            batch: 50,
            overlap: Duration::from_secs(60),
            pause_probe: Duration::from_millis(100),
            max_wait: Duration::from_secs(5),
        },
    ));
    let events = bus
        .subscribe(gsko_bus::topology::PROJECTOR_QUEUE, 100)
        .await
        .unwrap();
    let (stop, _) = watch::channel(false);
    World {
        sim,
        bus,
        store,
        service,
        files,
        tenant,
        _dir: dir,
        events,
        stop,
    }
}

fn letter(w: &World, n: u32, signer: &str) -> Letter {
    let doc = format!("<Dokument><Tytul>Wniosek {n}</Tytul></Dokument>").into_bytes();
    let sha = w.files.put(&doc).unwrap();
    let att = format!("zalacznik {n}").into_bytes();
    let att_sha = w.files.put(&att).unwrap();
    let pesel: Pesel = signer.parse().unwrap();
    Letter {
        letter_id: format!("epuap-{n}"),
        channel: LetterChannel::Epuap,
        received_at: Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap(),
        epuap_box: Some("/ug_demo/skrytka".into()),
        sender: LetterSender {
            kind: SenderKind::Person,
            name: "Jan Kowalski".into(),
            pesel: Some(pesel.clone()),
            nip: None,
            regon: None,
            epuap_login: None,
            reply_address: Some("/jkowalski/skrytka".into()),
            address: None,
            contacts: vec![],
        },
        addressee: None,
        title: format!("Wniosek o zwrot nadpłaty {n}"),
        body_text: Some("Proszę o zwrot.".into()),
        form: None,
        document: StoredFile {
            name: "wniosek.xml".into(),
            mime_type: "application/xml".into(),
            size_bytes: doc.len() as u64,
            sha256: sha,
            description: None,
        },
        attachments: vec![StoredFile {
            name: format!("skan-{n}.pdf"),
            mime_type: "application/pdf".into(),
            size_bytes: att.len() as u64,
            sha256: att_sha,
            description: None,
        }],
        signature: LetterSignature {
            status: SignatureStatus::Valid,
            form: Some(SignatureForm::PodpisZaufany),
            signer_pesel: Some(pesel),
            signer_name: Some("Jan Kowalski".into()),
            signed_at: None,
            problems: vec![],
        },
        test: false,
        upp_id: None,
        problems: vec![],
    }
}

impl World {
    async fn register(&self, l: &Letter) -> Result<(), gsko_cases::CaseError> {
        let mut stop = self.stop.subscribe();
        self.service
            .register(self.bus.as_ref(), &self.tenant, l, &mut stop)
            .await
    }

    /// Every event published so far (acknowledged as read).
    async fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let batch = self
                .events
                .next_batch(100, Duration::from_millis(100), Duration::from_millis(10))
                .await
                .unwrap();
            if batch.is_empty() {
                return out;
            }
            for d in &batch {
                out.push(Event::from_json(&d.body).unwrap());
            }
            self.events.ack(batch).await.unwrap();
        }
    }

    async fn round(&self) -> gsko_cases::follow::RoundReport {
        let mut stop = self.stop.subscribe();
        let mut window = None;
        self.service
            .round(self.bus.as_ref(), &self.tenant, &mut window, &mut stop)
            .await
            .unwrap()
    }

    async fn delivery_commands(&self) -> Vec<Event> {
        let mut sub = self
            .bus
            .subscribe(gsko_bus::topology::DELIVERY_QUEUE, 100)
            .await
            .unwrap();
        let batch = sub
            .next_batch(100, Duration::from_millis(200), Duration::from_millis(20))
            .await
            .unwrap();
        let out = batch
            .iter()
            .map(|d| Event::from_json(&d.body).unwrap())
            .collect();
        sub.ack(batch).await.unwrap();
        out
    }
}

fn year() -> i32 {
    Utc::now().year()
}

#[tokio::test]
async fn a_letter_is_registered_once_however_often_it_is_asked() {
    let mut w = world(false, Duration::from_secs(5)).await;
    let l = letter(&w, 1, JAN);
    w.register(&l).await.unwrap();
    w.register(&l).await.unwrap();
    assert_eq!(w.sim.count_documents_named("epuap-1.xml"), 1);
    assert_eq!(w.sim.rpw_count(), 1);
    assert_eq!(w.sim.case_count(), 1);
    let cases = w.sim.cases();
    assert_eq!(cases[0].znak, format!("FN.3120.1.{}", 2026));
    let events = w.drain().await;
    let registered: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::CaseRegistered(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(
        registered.len(),
        1,
        "recorded registrations are not announced again"
    );
    assert_eq!(
        registered[0].case_ref.as_str(),
        format!("FN.3120.1.{}", 2026)
    );
    assert!(registered[0].rpw.as_deref().unwrap().starts_with("RPW/1/"));
    let rec = w
        .store
        .registration(&w.tenant, "epuap-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, RegistrationState::Registered);
    let _ = year();
}

#[tokio::test]
async fn a_second_letter_joins_the_residents_open_case_when_the_rule_says_so() {
    let w = world(true, Duration::from_secs(5)).await;
    w.register(&letter(&w, 1, JAN)).await.unwrap();
    w.register(&letter(&w, 2, JAN)).await.unwrap();
    assert_eq!(w.sim.case_count(), 1, "the open case was joined");
    assert_eq!(w.sim.rpw_count(), 2);
    let other = letter(&w, 3, "02070803628");
    w.register(&other).await.unwrap();
    assert_eq!(
        w.sim.case_count(),
        2,
        "another resident gets a case of their own"
    );
}

#[tokio::test]
async fn an_unanswered_call_is_looked_up_and_never_repeated() {
    // The simulator creates the task and answers too late: the client gives up (uncertain).
    let w = world(false, Duration::from_millis(500)).await;
    w.sim.inject(
        Fault::Delay(Duration::from_secs(2)),
        "/obiegi",
        Some("POST"),
        1,
    );
    let l = letter(&w, 1, JAN);
    w.register(&l).await.unwrap();
    assert_eq!(
        w.sim.count_documents_named("epuap-1.xml"),
        1,
        "not sent twice"
    );
    assert_eq!(w.sim.case_count(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_and_429_is_waited_out() {
    let w = world(false, Duration::from_secs(5)).await;
    w.sim.inject(
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        "/dokumenty/_search",
        Some("POST"),
        1,
    );
    let l = letter(&w, 1, JAN);
    let started = std::time::Instant::now();
    w.register(&l).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    // A 500 on a read is a retry through the ladder, not a parked letter.
    w.sim
        .inject(Fault::Status(500), "/dokumenty/_search", Some("POST"), 1);
    let l2 = letter(&w, 2, JAN);
    match w.register(&l2).await {
        Err(gsko_cases::CaseError::Retry(_)) => {}
        other => panic!("expected a retry, got {other:?}"),
    }
    w.register(&l2).await.unwrap();
    assert_eq!(w.sim.case_count(), 2);
}

#[tokio::test]
async fn a_malformed_znak_is_kept_for_an_admin_and_not_registered_again() {
    let w = world(false, Duration::from_secs(5)).await;
    w.sim.inject(Fault::MalformedZnak, "", None, 1);
    let l = letter(&w, 1, JAN);
    match w.register(&l).await {
        Err(gsko_cases::CaseError::Park(reason)) => {
            assert!(reason.contains("malformed znak sprawy"), "{reason}")
        }
        other => panic!("expected parking, got {other:?}"),
    }
    w.register(&l).await.unwrap();
    assert_eq!(w.sim.case_count(), 1);
    let parked = w.store.parked_registrations(&w.tenant, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert!(parked[0].problem.as_deref().unwrap().contains("znak"));
}

#[tokio::test]
async fn revoked_credentials_pause_the_connector_until_they_work_again() {
    let w = world(false, Duration::from_secs(5)).await;
    w.sim.revoke_credentials(true);
    let l = letter(&w, 1, JAN);
    let service = w.service.clone();
    let bus = w.bus.clone();
    let tenant = w.tenant.clone();
    let mut stop = w.stop.subscribe();
    let task =
        tokio::spawn(async move { service.register(bus.as_ref(), &tenant, &l, &mut stop).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(w.service.is_paused(&w.tenant));
    assert!(!task.is_finished(), "the command waits, it is not lost");
    w.sim.revoke_credentials(false);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!w.service.is_paused(&w.tenant));
    assert_eq!(w.sim.case_count(), 1);
}

#[tokio::test]
async fn statuses_become_a_timeline_and_a_decision_is_raised_once() {
    let mut w = world(false, Duration::from_secs(5)).await;
    let l = letter(&w, 1, JAN);
    w.register(&l).await.unwrap();
    let id = w.sim.cases()[0].id_sprawa.clone();
    w.drain().await;

    w.round().await;
    w.sim.set_case_status(&id, 11).unwrap();
    w.round().await;
    w.round().await;
    w.sim.set_case_status(&id, 3).unwrap();
    w.round().await;
    let statuses: Vec<(u32, CaseStatus)> = w
        .drain()
        .await
        .into_iter()
        .filter_map(|e| match e.data {
            EventData::CaseStatusChanged(c) => Some((c.seq, c.status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            (2, CaseStatus::InProgress),
            (3, CaseStatus::Assigned),
            (4, CaseStatus::Suspended)
        ]
    );

    // The addressee is the sender EZD recorded for the letter.
    let sender = w
        .store
        .watched_case(&w.tenant, &id)
        .await
        .unwrap()
        .unwrap()
        .sender_contact_id
        .expect("EZD's id of the sender");
    let pdf = gsko_sim::ezd::SMALL_PDF.to_vec();
    w.sim
        .add_outgoing(&id, &sender, "Decyzja FN.3120.1.2026.pdf", &pdf, true)
        .unwrap();
    w.sim
        .add_outgoing(&id, &sender, "Pismo przewodnie.pdf", b"x", true)
        .unwrap();
    // A decision in the same case for someone else (another resident's contact) is not theirs.
    w.register(&letter(&w, 2, "02070803628")).await.unwrap();
    let other_case = w.sim.cases()[1].id_sprawa.clone();
    let other = w
        .store
        .watched_case(&w.tenant, &other_case)
        .await
        .unwrap()
        .unwrap()
        .sender_contact_id
        .unwrap();
    assert_ne!(other, sender);
    w.sim
        .add_outgoing(&id, &other, "Decyzja dla kogoś.pdf", b"y", true)
        .unwrap();
    w.sim.set_case_status(&id, 4).unwrap();
    w.round().await;
    w.round().await;
    let commands: Vec<Event> = w
        .delivery_commands()
        .await
        .into_iter()
        .filter(|e| matches!(&e.data, EventData::DecisionDeliver(d) if d.in_reply_to.as_deref() == Some("epuap-1")))
        .collect();
    assert_eq!(commands.len(), 1, "one decision, raised once");
    let EventData::DecisionDeliver(d) = &commands[0].data else {
        panic!("not a decision.deliver");
    };
    assert_eq!(d.in_reply_to.as_deref(), Some("epuap-1"));
    assert_eq!(d.recipient.pesel.as_ref().map(|p| p.as_str()), Some(JAN));
    assert_eq!(w.files.get(&d.document.sha256).unwrap(), pdf);
    let closed = w.store.watched_case(&w.tenant, &id).await.unwrap().unwrap();
    assert!(!closed.open, "a closed case is no longer read");
    let _ = Outgoing::event;
}

#[tokio::test]
async fn a_webhook_starts_a_round_at_once_and_one_about_an_unknown_case_changes_nothing() {
    let mut w = world(false, Duration::from_secs(5)).await;
    // A long interval: only a hint can make the follower read the case again soon.
    let service = Arc::new(CaseService::new(
        w.store.clone() as Arc<dyn CaseWorkStore>,
        {
            let mut t = HashMap::new();
            let c = w.sim.config();
            let cfg = EzdRpConfig::new(
                w.sim.base_url(),
                format!("{}/connect/token", w.sim.base_url()),
                c.web_host.clone(),
                c.podmiot_id.clone(),
                c.api_key_id.clone(),
                gsko_model::Secret::new(c.api_key.clone()),
                c.stanowisko_id.clone(),
            );
            t.insert(
                w.tenant.clone(),
                TenantCases {
                    port: Arc::new(EzdRpClient::new(cfg).unwrap()),
                    routing: Routing {
                        rules: vec![],
                        default: Some(route(false)),
                    },
                    decision_prefixes: vec!["Decyzja".into()],
                    delivery: DeliveryPreference::Auto,
                    files: w.files.clone(),
                },
            );
            t
        },
        PollSettings {
            interval: Duration::from_secs(60),
            ..PollSettings::default()
        },
    ));
    let mut stop = w.stop.subscribe();
    service
        .register(w.bus.as_ref(), &w.tenant, &letter(&w, 1, JAN), &mut stop)
        .await
        .unwrap();
    let id = w.sim.cases()[0].id_sprawa.clone();
    let app = gsko_cases::hooks::routes(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let follower = tokio::spawn(
        service
            .clone()
            .follow(w.bus.clone() as Arc<dyn Bus>, w.stop.subscribe()),
    );
    // The first round runs at start.
    tokio::time::sleep(Duration::from_millis(800)).await;
    w.drain().await;

    let http = reqwest::Client::new();
    let hook = |teryt: &str| format!("http://{addr}/hooks/ezd/{teryt}");
    let unknown = http
        .post(hook("0201011"))
        .json(&serde_json::json!({"kluczZdarzenia": "ezdrp.v2.zadanie.zakonczono", "dane": {"idSprawa": "no-such-case"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 202);
    let foreign = http
        .post(hook("1465011"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404, "a tenant without EZD");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        w.drain().await.is_empty(),
        "a hint about an unknown case changes nothing"
    );

    w.sim.set_case_status(&id, 3).unwrap();
    let started = std::time::Instant::now();
    let known = http
        .post(hook("0201011"))
        .json(&serde_json::json!({"kluczZdarzenia": "ezdrp.v2.zadanie.zakonczono", "dane": {"idSprawa": id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(known.status(), 202);
    let mut seen = None;
    while started.elapsed() < Duration::from_secs(10) && seen.is_none() {
        seen = w.drain().await.into_iter().find_map(|e| match e.data {
            EventData::CaseStatusChanged(c) if c.status == CaseStatus::Suspended => Some(c),
            _ => None,
        });
    }
    assert!(
        seen.is_some(),
        "the hinted case was read long before the 60 s round"
    );
    w.stop.send(true).unwrap();
    follower.await.unwrap();
}
