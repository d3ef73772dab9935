//! The query service with letter filing: tenant T1 against the simulated PZ signing service
//! and ePUAP (filing into the office's box), tenant T2 against a signing service that does not
//! answer. Shared by the filing tests and the OpenAPI matrix.
#![allow(dead_code)]

use crate::common::*;
use gsko_config::FilingMode;
use gsko_epuap::client::RetryPolicy;
use gsko_epuap::receiver::FileStore;
use gsko_epuap::send::SkrytkaClient;
use gsko_epuap::signing::TpSigningClient;
use gsko_epuap::wssec::SigningIdentity;
use gsko_epuap::xades::XadesTrust;
use gsko_filing::{FilingService, FilingTenant};
use gsko_model::Teryt;
use gsko_query::{router, AppState, Registry};
use gsko_sim::epuap::{EpuapSim, EpuapSimConfig, EpuapSimHandle};
use gsko_sim::pz::{PzPerson, PzSim, PzSimConfig, PzSimHandle};
use gsko_sim::xades::SimCertificate;
use gsko_store::{FilingStore, Store};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const PORTAL_RETURN: &str = "https://portal.example.pl/pisma";

pub fn jan_at_pz() -> PzPerson {
    PzPerson {
        first_name: "Jan".into(),
        surname: "Kowalski".into(),
        pesel: JAN.into(),
        date_of_birth: "1978-03-15".into(),
    }
}

pub struct FilingApp {
    pub app: App,
    pub pz: PzSimHandle,
    pub epuap: EpuapSimHandle,
    _docs: tempfile::TempDir,
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 1,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    }
}

pub async fn filing_app() -> FilingApp {
    let mut app = app(false).await;
    let cert = SimCertificate::generate("UM Boleslawiec system").expect("openssl");
    let identity = Arc::new(SigningIdentity::from_pem(&cert.cert_pem, &cert.key_pem).unwrap());
    let pz = PzSim::start(
        PzSimConfig::new()
            .with_certificate(cert.cert_der.clone())
            .with_person(jan_at_pz()),
    )
    .await
    .unwrap();
    let epuap = EpuapSim::start(
        EpuapSimConfig::new()
            .with_box("umboleslawiec", "skrytka")
            .with_certificate("umboleslawiec", cert.cert_der.clone()),
    )
    .await
    .unwrap();
    let docs = tempfile::tempdir().unwrap();
    let tenant = |signing_url: String| FilingTenant {
        office_name: "Urząd Miasta Bolesławiec".into(),
        place: "Bolesławiec".into(),
        mode: FilingMode::Epuap,
        filing_box: "/umboleslawiec/skrytka".into(),
        skrytka: Some(
            SkrytkaClient::new(
                epuap.skrytka_url(),
                identity.clone(),
                "umboleslawiec",
                retry(),
            )
            .unwrap(),
        ),
        signing: TpSigningClient::new(signing_url, identity.clone(), retry()).unwrap(),
        files: FileStore::new(docs.path()),
        trust: XadesTrust {
            pz_signers: Some(vec![pz.signing_certificate_der()]),
            allow_sha1: false,
        },
        allowed_return_urls: vec!["https://portal.example.pl/".into()],
    };
    let tenants = BTreeMap::from([
        (teryt(T1), tenant(pz.tp_signing_url())),
        // Nothing listens there: PZ "does not answer".
        (
            teryt(T2),
            tenant("http://127.0.0.1:9/ep-services/tpSigning5".into()),
        ),
    ]);
    let service = FilingService::new(
        app.store.clone() as Arc<dyn FilingStore>,
        tenants,
        "https://gsko.example.pl",
    );
    let names: BTreeMap<Teryt, String> = [(T1, "Bolesławiec"), (T2, "Gromadka")]
        .into_iter()
        .map(|(t, n)| (teryt(t), n.to_owned()))
        .collect();
    let mut state = AppState::new(
        app.store.clone() as Arc<dyn Store>,
        keys(),
        names,
        Registry::new(),
    );
    state.filing = Some(Arc::new(service));
    app.router = router(state, 1 << 20);
    FilingApp {
        app,
        pz,
        epuap,
        _docs: docs,
    }
}

/// A letter as a portal sends it.
pub fn letter_json(title: &str) -> Value {
    json!({
        "title": title,
        "body": "Proszę o rozłożenie zaległości na raty.\n\nZ poważaniem",
        "sender": {"first_name": "Jan", "surname": "Kowalski",
                   "address": {"street": "ul. Lipowa", "building": "7", "town": "Bolesławiec"}},
        "attachments": [{"name": "wniosek.pdf", "mime_type": "application/pdf",
                         "content_base64": "JVBERi0xLjQgdGVzdA==", "description": "Skan"}],
        "return_url": PORTAL_RETURN,
    })
}

/// The simulator's id of the newest document handed over.
pub fn last_pz_id(pz: &PzSimHandle) -> String {
    pz.documents().last().expect("a document at PZ").id.clone()
}
