//! Resident login (`[login]`): the SAML service provider for login.gov.pl and sessions, built
//! from the configuration.

use anyhow::{anyhow, Context, Result};
use gsko_config::{Config, LoginConfig};
use gsko_login::{
    certificates_from_pem, DecryptionKey, IdpEndpoints, Loa, LoginService, ServiceProvider,
    SessionKeys, SessionPolicy, Signer, SpSettings,
};
use gsko_store::LoginStore;
use std::sync::Arc;

fn read(cfg: &Config, path: &std::path::Path, what: &str) -> Result<String> {
    let p = cfg.resolve_path(path);
    std::fs::read_to_string(&p).with_context(|| format!("login.{what}: reading {}", p.display()))
}

/// The SP's settings as configured (the ACS defaults to the public URL's `/login/acs`).
pub fn settings(cfg: &Config, l: &LoginConfig) -> SpSettings {
    let acs = l
        .acs_url
        .clone()
        .unwrap_or_else(|| format!("{}/login/acs", crate::payments::public_url(cfg)));
    let idp = IdpEndpoints {
        entity_id: l.idp_entity_id.clone(),
        sso_url: l.sso_url.clone(),
        artifact_resolution_url: l.artifact_resolution_url.clone(),
        logout_url: l.logout_url.clone(),
    };
    SpSettings {
        provider_name: l.provider_name.clone(),
        sp_type: l.sp_type.clone(),
        loa: Loa::from_name(&l.loa).unwrap_or(Loa::Substantial),
        clock_skew: chrono::Duration::seconds(i64::from(l.clock_skew_seconds)),
        ..SpSettings::new(&l.entity_id, &acs, idp)
    }
}

pub fn service(cfg: &Config, store: Arc<dyn LoginStore>) -> Result<Option<Arc<LoginService>>> {
    let Some(l) = &cfg.main.login else {
        return Ok(None);
    };
    let signing_key = l
        .signing_key
        .resolve()
        .map_err(|e| anyhow!("login.signing_key: {e}"))?;
    let signer = Signer::from_pem(
        &read(cfg, &l.signing_certificate, "signing_certificate")?,
        signing_key.expose(),
    )
    .context("login.signing_key / signing_certificate")?;
    let encryption_key = l
        .encryption_key
        .resolve()
        .map_err(|e| anyhow!("login.encryption_key: {e}"))?;
    let decryption =
        DecryptionKey::from_pem(encryption_key.expose()).context("login.encryption_key")?;
    let idp = certificates_from_pem(&read(cfg, &l.idp_certificates, "idp_certificates")?)
        .context("login.idp_certificates")?;
    let sp = ServiceProvider::new(settings(cfg, l), signer, decryption, idp).context("login")?;
    let secrets = l
        .session_keys
        .iter()
        .map(|k| k.resolve().map(|s| s.expose().as_bytes().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("login.session_keys: {e}"))?;
    let keys = SessionKeys::new(secrets).map_err(|e| anyhow!("login.session_keys: {e}"))?;
    Ok(Some(Arc::new(LoginService {
        sp,
        keys,
        store,
        policy: SessionPolicy {
            ttl: chrono::Duration::minutes(i64::from(l.session_minutes)),
            max: chrono::Duration::hours(i64::from(l.session_max_hours)),
            login_timeout: chrono::Duration::minutes(15),
            return_origins: l.return_origins.clone(),
        },
    })))
}

/// Deletes expired login state every 10 minutes (pending logins, one-time markers, codes,
/// sessions past their longest lifetime) until shutdown.
pub fn spawn_pruning(store: Arc<dyn LoginStore>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            match store.login_prune(chrono::Utc::now()).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "expired login state pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning login state failed; retried later"),
            }
        }
    });
}
