//! The login flow with its shared state: the AuthnRequest remembered under its RelayState,
//! the artifact and the assertion used once, the session created, renewed, revoked, and the
//! one-time code a portal backend exchanges for a bearer token.

use crate::session::{SessionKeys, TokenError};
use crate::sp::ServiceProvider;
use crate::{Identity, LoginError};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use gsko_store::{LoginStore, PendingLogin, SessionRecord, StoreError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// How long sessions live and where a login may return to.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// A session's lifetime without renewal.
    pub ttl: Duration,
    /// The most a login lasts, renewals included.
    pub max: Duration,
    /// How long the resident has to complete the login at the identity provider.
    pub login_timeout: Duration,
    /// Origins (scheme://host[:port]) of portals a login may return to with a one-time code.
    pub return_origins: Vec<String>,
}

/// Where a completed login sends the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Return {
    /// A path of GSKO itself: the session goes into a cookie.
    Local(String),
    /// A portal page: it gets a one-time code in `gsko_code` to exchange for a token.
    Portal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the session has ended (logged out, renewed or revoked)")]
    Ended,
    #[error("the session reached its longest lifetime; log in again")]
    TooOld,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct LoginService {
    pub sp: ServiceProvider,
    pub keys: SessionKeys,
    pub store: Arc<dyn LoginStore>,
    pub policy: SessionPolicy,
}

/// A fresh random identifier (128 bits, URL-safe).
fn random_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn store_err(e: StoreError) -> LoginError {
    LoginError::Transport(format!("login store: {e}"))
}

impl LoginService {
    /// Where `return_to` may lead: a local absolute path, or a page on an allowed portal origin.
    pub fn check_return(&self, return_to: &str) -> Option<Return> {
        if return_to.is_empty() {
            return Some(Return::Local("/v1/session".into()));
        }
        if return_to.starts_with('/') && !return_to.starts_with("//") && !return_to.contains('\\') {
            return Some(Return::Local(return_to.to_owned()));
        }
        let origin_end = return_to.find("://").map(|i| i + 3).and_then(|start| {
            return_to[start..]
                .find(['/', '?', '#'])
                .map(|j| start + j)
                .or(Some(return_to.len()))
        })?;
        let origin = &return_to[..origin_end];
        self.policy
            .return_origins
            .iter()
            .any(|o| o.trim_end_matches('/') == origin)
            .then(|| Return::Portal(return_to.to_owned()))
    }

    /// Starts a login: the page that takes the browser to the identity provider.
    pub async fn begin(&self, return_to: &str, now: DateTime<Utc>) -> Result<String, LoginError> {
        if self.check_return(return_to).is_none() {
            return Err(LoginError::Config(
                "return_to is neither a GSKO path nor an allowed portal origin".into(),
            ));
        }
        let request = self.sp.authn_request(now)?;
        let relay_state = random_id();
        self.store
            .login_begin(&PendingLogin {
                relay_state: relay_state.clone(),
                request_id: request.id.clone(),
                return_to: return_to.to_owned(),
                created_at: now,
                expires_at: now + self.policy.login_timeout,
            })
            .await
            .map_err(store_err)?;
        Ok(self.sp.post_form(&request, &relay_state))
    }

    /// Completes a login from the artifact the identity provider sent to the ACS: each
    /// AuthnRequest is answered once, each artifact and each assertion is used once.
    pub async fn complete(
        &self,
        artifact: &str,
        relay_state: &str,
        now: DateTime<Utc>,
    ) -> Result<(SessionRecord, Return), LoginError> {
        let artifact = artifact.trim();
        crate::sp::check_artifact(artifact, &self.sp.settings().idp_entity_id)?;
        if !self
            .store
            .login_mark_used(&format!("artifact:{artifact}"), now + Duration::hours(1))
            .await
            .map_err(store_err)?
        {
            return Err(LoginError::Replayed);
        }
        let pending = self
            .store
            .login_take(relay_state)
            .await
            .map_err(store_err)?
            .filter(|p| p.expires_at > now)
            .ok_or(LoginError::UnknownLogin)?;
        let identity = self.sp.resolve(artifact, &pending.request_id, now).await?;
        if !self
            .store
            .login_mark_used(
                &format!("assertion:{}", identity.assertion_id),
                identity.valid_until.max(now) + Duration::hours(1),
            )
            .await
            .map_err(store_err)?
        {
            return Err(LoginError::Replayed);
        }
        let session = self.new_session(&identity, now);
        self.store
            .session_create(&session)
            .await
            .map_err(store_err)?;
        let back = self
            .check_return(&pending.return_to)
            .unwrap_or(Return::Local("/v1/session".into()));
        Ok((session, back))
    }

    fn new_session(&self, id: &Identity, now: DateTime<Utc>) -> SessionRecord {
        let max_until = now + self.policy.max;
        SessionRecord {
            sid: random_id(),
            pesel: id.pesel.as_str().to_owned(),
            given_name: id.given_name.clone(),
            family_name: id.family_name.clone(),
            loa: id.loa.uri().to_owned(),
            name_id: id.name_id.clone(),
            session_index: id.session_index.clone(),
            created_at: now,
            expires_at: (now + self.policy.ttl).min(max_until),
            max_until,
            revoked_at: None,
        }
    }

    /// The token for a session (what the cookie or the bearer header carries).
    pub fn token(&self, s: &SessionRecord) -> String {
        self.keys.sign(&s.sid, s.expires_at)
    }

    /// The live session a token names.
    pub async fn authenticate(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<SessionRecord, SessionError> {
        let claims = self.keys.verify(token, now)?;
        let s = self
            .store
            .session(&claims.sid)
            .await?
            .ok_or(SessionError::Ended)?;
        if !s.is_live(now) {
            return Err(SessionError::Ended);
        }
        Ok(s)
    }

    /// Renews a live session: a new session id and token, the old one ended, the lifetime
    /// extended up to the login's longest.
    pub async fn renew(
        &self,
        current: &SessionRecord,
        now: DateTime<Utc>,
    ) -> Result<SessionRecord, SessionError> {
        if now >= current.max_until {
            return Err(SessionError::TooOld);
        }
        let next = SessionRecord {
            sid: random_id(),
            created_at: now,
            expires_at: (now + self.policy.ttl).min(current.max_until),
            revoked_at: None,
            ..current.clone()
        };
        if !self.store.session_rotate(&current.sid, &next, now).await? {
            return Err(SessionError::Ended);
        }
        Ok(next)
    }

    /// Ends the session here, then at the identity provider (best effort: the local session is
    /// over whatever the provider answers).
    pub async fn logout(&self, s: &SessionRecord, now: DateTime<Utc>) -> Result<(), SessionError> {
        self.store.session_revoke(&s.sid, now).await?;
        if let Err(e) = self
            .sp
            .logout(&s.name_id, s.session_index.as_deref(), now)
            .await
        {
            tracing::warn!(error = %e, "single logout at the identity provider failed; the GSKO session is ended");
        }
        Ok(())
    }

    /// A one-time code (valid one minute) standing for `s`, for a portal backend.
    pub async fn issue_code(
        &self,
        s: &SessionRecord,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let code = random_id();
        self.store
            .login_code_create(&sha256_hex(&code), &s.sid, now + Duration::minutes(1))
            .await?;
        Ok(code)
    }

    /// Exchanges a one-time code for its live session.
    pub async fn exchange(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let Some(sid) = self.store.login_code_take(&sha256_hex(code), now).await? else {
            return Ok(None);
        };
        Ok(self.store.session(&sid).await?.filter(|s| s.is_live(now)))
    }
}
