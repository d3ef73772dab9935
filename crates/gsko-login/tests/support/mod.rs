//! A login.gov.pl simulator and a GSKO service provider set up for each other, and a
//! "browser" that walks the HTTP-POST and artifact bindings between them.

#![allow(dead_code)]

use chrono::{Duration, Utc};
use gsko_login::{
    certificates_from_pem, DecryptionKey, IdpEndpoints, LoginService, ServiceProvider, SessionKeys,
    SessionPolicy, Signer, SpSettings,
};
use gsko_sim::login::{make_sp_credentials, LoginSim, LoginSimConfig, SimIdentity, SpCredentials};
use gsko_store::SqliteStore;
use std::sync::Arc;

pub const SP_ENTITY: &str = "gsko.test.gmina.example";
pub const ACS: &str = "http://gsko.test/login/acs";
pub const ANNA: &str = "02270803624";
pub const JAN: &str = "44051401359";

pub struct World {
    pub _dir: tempfile::TempDir,
    pub sim: LoginSim,
    pub creds: SpCredentials,
    pub login: LoginService,
    pub http: reqwest::Client,
}

pub fn settings(sim: &LoginSim) -> SpSettings {
    SpSettings::new(
        SP_ENTITY,
        ACS,
        IdpEndpoints::under(sim.entity_id(), sim.base_url()),
    )
}

pub fn service_provider(sim: &LoginSim, creds: &SpCredentials) -> ServiceProvider {
    ServiceProvider::new(
        settings(sim),
        Signer::from_pem(&creds.signing_cert_pem, &creds.signing_key_pem).unwrap(),
        DecryptionKey::from_pem(&creds.encryption_key_pem).unwrap(),
        certificates_from_pem(sim.idp_certificate_pem()).unwrap(),
    )
    .unwrap()
}

pub async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let creds = make_sp_credentials(dir.path()).unwrap();
    let sim = LoginSim::start(
        LoginSimConfig::new(
            SP_ENTITY,
            ACS,
            &creds.signing_cert_pem,
            &creds.encryption_cert_pem,
        )
        .with_resident(SimIdentity::new(ANNA, "Anna", "Nowak", "2002-07-08"))
        .with_resident(SimIdentity::new(JAN, "Jan", "Nowak", "1944-05-14")),
    )
    .unwrap();
    let store = Arc::new(
        SqliteStore::open(dir.path().join("login.db"))
            .await
            .unwrap(),
    );
    let login = LoginService {
        sp: service_provider(&sim, &creds),
        keys: SessionKeys::new(vec![vec![7; 32]]).unwrap(),
        store,
        policy: SessionPolicy {
            ttl: Duration::minutes(15),
            max: Duration::hours(8),
            login_timeout: Duration::minutes(10),
            return_origins: vec!["https://portal.gmina.example".into()],
        },
    };
    World {
        _dir: dir,
        sim,
        creds,
        login,
        http: reqwest::Client::new(),
    }
}

/// The value of `<input type="hidden" name="{name}" value="...">` in a page.
pub fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(
        page[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\""),
    )
}

/// Posts a login page's form to the identity provider, chooses `pesel` there, and returns
/// the (SAMLart, RelayState) the provider sends back to the ACS.
pub async fn at_idp(
    http: &reqwest::Client,
    sim: &LoginSim,
    form: &str,
    pesel: &str,
) -> (String, String) {
    let page = http
        .post(sim.sso_url())
        .form(&[
            (
                "SAMLRequest",
                hidden(form, "SAMLRequest").expect("SAMLRequest"),
            ),
            (
                "RelayState",
                hidden(form, "RelayState").expect("RelayState"),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the IdP accepts the AuthnRequest");
    let page = page.text().await.unwrap();
    let pending = hidden(&page, "pending").expect("the login page lists residents");
    let back = http
        .post(format!("{}/login/choose", sim.base_url()))
        .form(&[("pending", pending.as_str()), ("pesel", pesel)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (
        hidden(&back, "SAMLart").expect("SAMLart"),
        hidden(&back, "RelayState").expect("RelayState"),
    )
}

pub fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}
