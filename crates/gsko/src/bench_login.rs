//! `gsko bench login`: resident logins per second, measured, not asserted.
//!
//! 1. Whole logins over HTTP on loopback, as a browser makes them: `GET /login` on GSKO's
//!    query service (served in-process as the daemon serves it, store in PostgreSQL) → the
//!    AuthnRequest posted to the simulated login.gov.pl → a resident chosen → the artifact
//!    posted to `/login/acs`, which resolves it over SOAP, decrypts and validates the
//!    assertion and creates the session (303 with the cookie). C logins in flight at a time.
//!    The simulator signs with the xmlsec1 command (three signatures per login, each a
//!    process), so this figure is bounded by the simulator, not by GSKO.
//! 2. GSKO's share alone: one ArtifactResponse fetched once, then validated again and again
//!    (two signatures verified, ECDH-ES + ConcatKDF + AES-KW + AES-GCM, the assertion's
//!    signature and checks) — what `/login/acs` costs GSKO apart from the round trip.

use crate::bench::{fresh_database_named, peak_rss_kb, percentiles, tempfile_dir};
use anyhow::{bail, Context, Result};
use gsko_login::{
    certificates_from_pem, DecryptionKey, IdpEndpoints, LoginService, ServiceProvider, SessionKeys,
    SessionPolicy, Signer, SpSettings,
};
use gsko_sim::login::{make_sp_credentials, LoginSim, LoginSimConfig, SimIdentity};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct LoginBenchOptions {
    pub logins: usize,
    pub concurrency: usize,
    pub validations: usize,
    pub database_url: String,
}

const SP_ENTITY: &str = "gsko-bench.gmina.example";
const RESIDENTS: [(&str, &str, &str); 3] = [
    ("78031501236", "Jan", "Kowalski"),
    ("81072204569", "Anna", "Nowak"),
    ("83110907816", "Piotr", "Nowak"),
];

fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].replace("&amp;", "&"))
}

fn settings(sim: &LoginSim, acs: &str) -> SpSettings {
    SpSettings::new(
        SP_ENTITY,
        acs,
        IdpEndpoints::under(sim.entity_id(), sim.base_url()),
    )
}

/// One login as a browser makes it; the time from `GET /login` to the session cookie.
async fn one_login(http: &reqwest::Client, gsko: &str, sim: &str, pesel: &str) -> Result<Duration> {
    let t0 = Instant::now();
    let form = http
        .get(format!("{gsko}/login"))
        .send()
        .await?
        .text()
        .await?;
    let page = http
        .post(format!("{sim}/login/SingleSignOnService"))
        .form(&[
            (
                "SAMLRequest",
                hidden(&form, "SAMLRequest").context("SAMLRequest")?,
            ),
            (
                "RelayState",
                hidden(&form, "RelayState").context("RelayState")?,
            ),
        ])
        .send()
        .await?
        .text()
        .await?;
    let pending = hidden(&page, "pending").context("the simulator's login page")?;
    let back = http
        .post(format!("{sim}/login/choose"))
        .form(&[("pending", pending.as_str()), ("pesel", pesel)])
        .send()
        .await?
        .text()
        .await?;
    let acs = http
        .post(format!("{gsko}/login/acs"))
        .form(&[
            ("SAMLart", hidden(&back, "SAMLart").context("SAMLart")?),
            (
                "RelayState",
                hidden(&back, "RelayState").context("RelayState")?,
            ),
        ])
        .send()
        .await?;
    if acs.status() != reqwest::StatusCode::SEE_OTHER
        || !acs.headers().contains_key(reqwest::header::SET_COOKIE)
    {
        bail!("login refused: HTTP {}", acs.status());
    }
    Ok(t0.elapsed())
}

pub async fn run(o: LoginBenchOptions) -> Result<()> {
    let dir = tempfile_dir()?.join("login");
    std::fs::create_dir_all(&dir)?;
    let creds = make_sp_credentials(&dir).context("making SP keys with openssl")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gsko = format!("http://{}", listener.local_addr()?);
    let acs = format!("{gsko}/login/acs");
    let mut sim_cfg = LoginSimConfig::new(
        SP_ENTITY,
        &acs,
        &creds.signing_cert_pem,
        &creds.encryption_cert_pem,
    );
    for (pesel, given, family) in RESIDENTS {
        sim_cfg = sim_cfg.with_resident(SimIdentity::new(pesel, given, family, "1980-01-01"));
    }
    let sim = LoginSim::start(sim_cfg).context("starting the login.gov.pl simulator")?;
    let sp = || -> Result<ServiceProvider> {
        Ok(ServiceProvider::new(
            settings(&sim, &acs),
            Signer::from_pem(&creds.signing_cert_pem, &creds.signing_key_pem)?,
            DecryptionKey::from_pem(&creds.encryption_key_pem)?,
            certificates_from_pem(sim.idp_certificate_pem())?,
        )?)
    };

    let url = fresh_database_named(&o.database_url, "gsko_bench_login").await?;
    let store = Arc::new(gsko_store::PgStore::connect(&url, 16).await?);
    let login = Arc::new(LoginService {
        sp: sp()?,
        keys: SessionKeys::new(vec![vec![3; 32]]).map_err(anyhow::Error::msg)?,
        store: store.clone(),
        policy: SessionPolicy {
            ttl: chrono::Duration::minutes(15),
            max: chrono::Duration::hours(8),
            login_timeout: chrono::Duration::minutes(10),
            return_origins: vec![],
        },
    });
    let state = gsko_query::AppState::new(
        store.clone(),
        Vec::new(),
        BTreeMap::new(),
        gsko_query::Registry::new(),
    )
    .with_audit(store.clone())
    .with_rate_limit(0.0, 0)
    .with_login(login, false);
    let app = gsko_query::router(state, 64 * 1024);
    tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "bench server stopped");
        }
    });

    // 1. Whole logins.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(o.concurrency)
        .build()?;
    let sim_url = sim.base_url().to_owned();
    one_login(&http, &gsko, &sim_url, RESIDENTS[0].0)
        .await
        .context("warm-up login")?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency.max(1) {
        let (http, gsko, sim_url, next) =
            (http.clone(), gsko.clone(), sim_url.clone(), next.clone());
        let total = o.logins;
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                times.push(one_login(&http, &gsko, &sim_url, RESIDENTS[i % 3].0).await?);
            }
            anyhow::Ok(times)
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await??);
    }
    let wall = t0.elapsed();
    let whole = percentiles(&mut times).context("no logins")?;

    // 2. GSKO's share: one answer validated repeatedly.
    let sp = sp()?;
    let now = chrono::Utc::now();
    let request = sp.authn_request(now)?;
    let form = sp.post_form(&request, "bench");
    let page = http
        .post(sim.sso_url())
        .form(&[
            (
                "SAMLRequest",
                hidden(&form, "SAMLRequest").context("SAMLRequest")?,
            ),
            ("RelayState", "bench".into()),
        ])
        .send()
        .await?
        .text()
        .await?;
    let pending = hidden(&page, "pending").context("login page")?;
    let back = http
        .post(format!("{}/login/choose", sim.base_url()))
        .form(&[("pending", pending.as_str()), ("pesel", RESIDENTS[0].0)])
        .send()
        .await?
        .text()
        .await?;
    let artifact = hidden(&back, "SAMLart").context("SAMLart")?;
    let (resolve_id, envelope) = sp.artifact_resolve(&artifact, now)?;
    let answer = http
        .post(sim.artifact_resolution_url())
        .header("content-type", "text/xml")
        .body(envelope)
        .send()
        .await?
        .text()
        .await?;
    sp.validate_artifact_response(&answer, &resolve_id, &request.id, now)
        .context("the captured answer does not validate")?;
    let t1 = Instant::now();
    let mut each = Vec::with_capacity(o.validations);
    for _ in 0..o.validations {
        let s = Instant::now();
        sp.validate_artifact_response(&answer, &resolve_id, &request.id, now)?;
        each.push(s.elapsed());
    }
    let validate_wall = t1.elapsed();
    let share = percentiles(&mut each).context("no validations")?;

    println!();
    println!("| what | count | in flight | per second | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| whole login over HTTP (GSKO + simulated login.gov.pl, PostgreSQL) | {} | {} | {:.1} | {:.1} ms | {:.1} ms | {:.1} ms |",
        o.logins,
        o.concurrency,
        o.logins as f64 / wall.as_secs_f64(),
        whole.p50.as_secs_f64() * 1e3,
        whole.p99.as_secs_f64() * 1e3,
        whole.max.as_secs_f64() * 1e3,
    );
    println!(
        "| GSKO's share: ArtifactResponse validated (2 signatures, decrypt, assertion) | {} | 1 | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |",
        o.validations,
        o.validations as f64 / validate_wall.as_secs_f64(),
        share.p50.as_secs_f64() * 1e3,
        share.p99.as_secs_f64() * 1e3,
        share.max.as_secs_f64() * 1e3,
    );
    println!(
        "\nPeak RSS of this process (GSKO, simulator and load together): {} MB",
        peak_rss_kb() / 1024
    );
    Ok(())
}
