//! Access tokens: OAuth2 `client_credentials` with `private_key_jwt` (RFC 7523), spec §4.3.
//!
//! The office proves possession of its registered key by signing a short-lived assertion; there
//! is no client secret. Tokens are cached until shortly before they expire so that following
//! hundreds of deliveries does not mean hundreds of token requests.

use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::config::Config;
use crate::error::Error;

/// A token is dropped this long before the `expires_in` the server gave, so that a call never
/// starts with a token that expires on the way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Lifetime of a client assertion (spec §4.3: exp = now + 5 min).
const ASSERTION_LIFETIME_SECS: i64 = 300;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Claims of the client assertion (RFC 7523 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// `<ADE>.SYSTEM.<system name>`.
    pub iss: String,
    /// Same as `iss`.
    pub sub: String,
    pub aud: String,
    /// Random (UUID v4): Keycloak refuses a replayed assertion.
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

struct Cached {
    token: String,
    valid_until: Instant,
}

/// Gets and caches access tokens for one mailbox.
pub struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    login_hint: String,
    client_id: String,
    audience: String,
    key: EncodingKey,
    /// DER of the certificate, base64 (standard alphabet) as `x5c` wants it.
    x5c: Option<String>,
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenSource {
    /// Reads the key and certificate from `config`; fails with [`Error::Config`] when they are
    /// not usable PEM.
    pub fn new(config: &Config, http: reqwest::Client) -> Result<Self, Error> {
        let key = EncodingKey::from_rsa_pem(config.private_key_pem.as_bytes()).map_err(|e| {
            Error::Config(format!(
                "private_key_pem is not an RSA private key in PEM: {e}"
            ))
        })?;
        let x5c = if config.certificate_pem.trim().is_empty() {
            None
        } else {
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode(certificate_der(&config.certificate_pem)?),
            )
        };
        Ok(Self {
            http,
            token_url: config.token_url.clone(),
            login_hint: config.ade.as_str().to_owned(),
            client_id: config.client_id(),
            audience: config.audience().to_owned(),
            key,
            x5c,
            cache: Mutex::new(None),
        })
    }

    /// The claims of an assertion made at `now` (seconds since the epoch) with id `jti`.
    pub fn claims(&self, now: i64, jti: String) -> AssertionClaims {
        AssertionClaims {
            iss: self.client_id.clone(),
            sub: self.client_id.clone(),
            aud: self.audience.clone(),
            jti,
            iat: now,
            nbf: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        }
    }

    /// A fresh signed client assertion (compact JWS, RS256, `typ: JWT`, `x5c`).
    pub fn assertion(&self) -> Result<String, Error> {
        let claims = self.claims(
            chrono::Utc::now().timestamp(),
            uuid::Uuid::new_v4().to_string(),
        );
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.x5c = self.x5c.clone().map(|c| vec![c]);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Error::Config(format!("cannot sign the client assertion: {e}")))
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    pub async fn token(&self) -> Result<String, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            if Instant::now() < cached.valid_until {
                return Ok(cached.token.clone());
            }
        }
        let (token, lifetime) = self.fetch().await?;
        *cache = Some(Cached {
            token: token.clone(),
            valid_until: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN),
        });
        Ok(token)
    }

    /// Forgets `token` after the API refused it (401), unless another call already replaced it.
    pub async fn invalidate(&self, token: &str) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.token == token) {
            *cache = None;
        }
    }

    async fn fetch(&self) -> Result<(String, Duration), Error> {
        let assertion = self.assertion()?;
        let answer = self
            .http
            .post(&self.token_url)
            .query(&[("login_hint", self.login_hint.as_str())])
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("token endpoint: {}", describe(&e))))?;
        let status = answer.status();
        let body = answer
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(format!("token endpoint: {}", describe(&e))))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Error::Unavailable(format!("token endpoint: HTTP {status}")));
        }
        if !status.is_success() {
            let reason = match serde_json::from_slice::<TokenError>(&body) {
                Ok(TokenError {
                    error,
                    error_description,
                }) if error.is_some() || error_description.is_some() => format!(
                    "{}: {}",
                    error.as_deref().unwrap_or("error"),
                    error_description.as_deref().unwrap_or("(no description)")
                ),
                _ => format!("no OAuth2 error in the answer: {}", snippet(&body)),
            };
            tracing::warn!(status = status.as_u16(), %reason, "e-Doręczenia token refused");
            return Err(Error::Unauthorized(format!(
                "token endpoint refused the client assertion of {} (HTTP {}): {reason}",
                self.client_id,
                status.as_u16()
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            Error::Malformed(format!(
                "token endpoint: no access_token in the answer: {e}"
            ))
        })?;
        // Keycloak always sends expires_in; without it, assume a minute rather than forever.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60));
        tracing::debug!(expires_in = lifetime.as_secs(), "e-Doręczenia token issued");
        Ok((answer.access_token, lifetime))
    }
}

/// The DER bytes of the first certificate in a PEM text.
fn certificate_der(pem: &str) -> Result<Vec<u8>, Error> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem
        .find(BEGIN)
        .ok_or_else(|| Error::Config("certificate_pem has no BEGIN CERTIFICATE block".into()))?
        + BEGIN.len();
    let len = pem[start..]
        .find(END)
        .ok_or_else(|| Error::Config("certificate_pem has no END CERTIFICATE line".into()))?;
    let b64: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| Error::Config(format!("certificate_pem is not valid base64: {e}")))
}

/// A transport error in words, without the URL (it holds the ADE).
pub(crate) fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the answer"
    } else {
        "transport error"
    }
}

/// The start of an unexpected body, for an error message (bounded: a proxy's HTML page).
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_der_reads_the_block() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(certificate_der(pem).expect("valid"), vec![0, 1, 2, 3]);
        assert!(matches!(
            certificate_der("-----BEGIN PRIVATE KEY-----"),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn snippet_is_bounded() {
        let long = "ą".repeat(500);
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), 201);
    }
}
