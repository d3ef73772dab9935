//! Transport for the Integrator API: the API-key token, the headers every call carries, limits
//! on answers, and the classification of every failure into [`EzdError`].

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_LENGTH, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::wire::{problem_text, TokenAnswer};
use super::EzdRpConfig;
use crate::port::{EzdError, FileContent};

/// Largest JSON answer read from the API; anything bigger is not an answer we can use.
pub(super) const MAX_JSON_BYTES: u64 = 8 * 1024 * 1024;
/// A cached token is dropped this long before EZD says it expires, so that it does not expire
/// on the way.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// Path of the Integrator API under the server root.
const API_PREFIX: [&str; 3] = ["ezdrp", "integrator", "v2"];
/// `Retry-After` bounds and the wait assumed when EZD says nothing.
const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);
const RETRY_AFTER_DEFAULT: Duration = Duration::from_secs(60);

/// Whether a call can change anything in EZD. A read whose answer is lost is simply repeated
/// later; a write whose answer is lost has an unknown outcome. Searches are POSTs that read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    Read,
    Write,
}

/// What a call sends.
pub(super) enum Body<'a> {
    None,
    Json(&'a Value),
    /// One file in the multipart field `file` (the name every single-file upload uses).
    File(&'a FileContent),
}

/// A successful (2xx) answer.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    /// The answer as `T`; an unreadable one is a protocol error of `operation`.
    pub fn json<T: DeserializeOwned>(&self, operation: &str) -> Result<T, EzdError> {
        if self.body.is_empty() {
            return Err(EzdError::Protocol {
                operation: operation.to_owned(),
                detail: format!("HTTP {} with an empty body", self.status.as_u16()),
            });
        }
        serde_json::from_slice(&self.body).map_err(|e| EzdError::Protocol {
            operation: operation.to_owned(),
            detail: format!("HTTP {} answer does not parse: {e}", self.status.as_u16()),
        })
    }
}

struct CachedToken {
    value: String,
    valid_until: Instant,
}

pub(super) struct Transport {
    http: reqwest::Client,
    api_root: Url,
    token_url: Url,
    client_id: String,
    podmiot_id: String,
    api_key_id: String,
    api_key: gsko_model::Secret,
    stanowisko_id: String,
    timeout: Duration,
    token: Mutex<Option<CachedToken>>,
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

impl Transport {
    pub fn new(cfg: &EzdRpConfig, api_root: Url) -> Result<Self, EzdError> {
        let token_url = parse_http_url("token_url", &cfg.token_url)?;
        for (key, value) in [
            ("web_host", &cfg.web_host),
            ("podmiot_id", &cfg.podmiot_id),
            ("api_key_id", &cfg.api_key_id),
            ("stanowisko_id", &cfg.stanowisko_id),
        ] {
            if value.trim().is_empty() {
                return Err(EzdError::Config(format!("EZD RP setting {key} is empty")));
            }
        }
        if cfg.api_key.expose().is_empty() {
            return Err(EzdError::Config("EZD RP setting api_key is empty".into()));
        }
        if cfg.timeout.is_zero() {
            return Err(EzdError::Config("EZD RP setting timeout is zero".into()));
        }
        // Redirects are never followed: an API call must not carry the token elsewhere, and a
        // file link that redirects would escape the allowed origins.
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| EzdError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            api_root,
            token_url,
            client_id: client_id(cfg.web_host.trim()),
            podmiot_id: cfg.podmiot_id.trim().to_owned(),
            api_key_id: cfg.api_key_id.trim().to_owned(),
            api_key: cfg.api_key.clone(),
            stanowisko_id: cfg.stanowisko_id.trim().to_owned(),
            timeout: cfg.timeout,
            token: Mutex::new(None),
        })
    }

    pub fn stanowisko_id(&self) -> &str {
        &self.stanowisko_id
    }

    /// Forgets the cached token, so that the next call asks for a new one.
    pub async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// A valid token, from the cache or freshly issued.
    pub async fn token(&self) -> Result<String, EzdError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.valid_until {
                return Ok(token.value.clone());
            }
        }
        let (value, lifetime) = self.request_token().await?;
        *cached = Some(CachedToken {
            value: value.clone(),
            valid_until: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        });
        Ok(value)
    }

    /// Drops the cached token if it is still `used` (a concurrent call may have renewed it).
    async fn drop_token(&self, used: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == used) {
            *cached = None;
        }
    }

    /// `POST {token_url}` with the API-key grant (NASK "klucz API" scheme).
    async fn request_token(&self) -> Result<(String, Duration), EzdError> {
        let rt = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
        let akh = STANDARD.encode(Sha256::digest(
            format!("{rt}{}", self.api_key.expose()).as_bytes(),
        ));
        let form = [
            ("grant_type", "api_credentials"),
            ("client_id", self.client_id.as_str()),
            ("scope", "api.ezdrp.gov.pl"),
            ("pid", self.podmiot_id.as_str()),
            ("aki", self.api_key_id.as_str()),
            ("rt", rt.as_str()),
            ("akh", akh.as_str()),
        ];
        const OP: &str = "POST token";
        let response = self
            .http
            .post(self.token_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                EzdError::Transient(format!(
                    "EZD token endpoint: {}",
                    describe(&e, self.timeout)
                ))
            })?;
        let status = response.status();
        let retry_after = retry_after_header(&response);
        let body = read_capped(response, MAX_JSON_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge => EzdError::Protocol {
                    operation: OP.into(),
                    detail: "answer larger than the 8 MiB limit".into(),
                },
                ReadError::Transport(e) => EzdError::Transient(format!(
                    "EZD token endpoint: {}",
                    describe(&e, self.timeout)
                )),
            })?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(EzdError::RateLimited {
                retry_after: retry_after_duration(retry_after.as_deref(), Utc::now()),
            });
        }
        if status.is_server_error() {
            return Err(EzdError::Transient(format!(
                "EZD token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            // OAuth's `error` code says why (invalid_client, invalid_grant, ...); it never
            // echoes the key.
            let reason = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "no reason given".into());
            return Err(EzdError::Config(format!(
                "the token endpoint refused the API key (HTTP {}: {reason}); check podmiot_id, api_key_id, api_key and web_host",
                status.as_u16()
            )));
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| EzdError::Protocol {
                operation: OP.into(),
                detail: format!("token answer does not parse: {e}"),
            })?;
        answer.into_token().map_err(|detail| EzdError::Protocol {
            operation: OP.into(),
            detail,
        })
    }

    /// `{api_url}/ezdrp/integrator/v2/<segments>?<query>`; every segment is percent-encoded,
    /// EZD ids being opaque strings.
    pub fn api_url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.api_root.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(API_PREFIX).extend(segments);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// One authenticated API call. A 401 (nothing was done) is repeated once with a new token.
    pub async fn call(
        &self,
        method: Method,
        operation: &str,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body<'_>,
        effect: Effect,
    ) -> Result<Answer, EzdError> {
        let url = self.api_url(segments, query);
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&token)
                .header("SID", &self.stanowisko_id);
            request = match &body {
                Body::None => request,
                Body::Json(value) => request.json(value),
                Body::File(file) => request.multipart(file_form(file)),
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => return Err(self.transport_error(operation, effect, &e)),
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                self.drop_token(&token).await;
                if !renewed {
                    renewed = true;
                    tracing::info!(operation, "EZD RP answered 401, renewing the token once");
                    continue;
                }
                return Err(EzdError::Config(format!(
                    "{operation} answered 401 even with a freshly issued token"
                )));
            }
            if status == StatusCode::FORBIDDEN {
                return Err(EzdError::Config(format!(
                    "{operation} answered 403: the technical user or its position (SID) lacks a permission"
                )));
            }
            let retry_after = retry_after_header(&response);
            let body = match read_capped(response, MAX_JSON_BYTES).await {
                Ok(body) => body,
                Err(ReadError::TooLarge) => {
                    return Err(EzdError::Protocol {
                        operation: operation.to_owned(),
                        detail: format!(
                            "HTTP {} answer larger than the 8 MiB limit",
                            status.as_u16()
                        ),
                    })
                }
                Err(ReadError::Transport(e)) if status.is_success() || status.is_server_error() => {
                    return Err(self.transport_error(operation, effect, &e))
                }
                // The status alone classifies a refusal whose body got lost.
                Err(ReadError::Transport(_)) => Vec::new(),
            };
            return classify(operation, effect, status, retry_after.as_deref(), body);
        }
    }

    /// A GET that answers JSON.
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: &str,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, EzdError> {
        self.call(
            Method::GET,
            operation,
            segments,
            query,
            Body::None,
            Effect::Read,
        )
        .await?
        .json(operation)
    }

    /// Downloads a file link: no token, no SID, no redirects, at most `cap` bytes.
    pub async fn download(&self, operation: &str, url: Url, cap: u64) -> Result<Vec<u8>, EzdError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport_error(operation, Effect::Read, &e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(EzdError::Refused {
                operation: operation.to_owned(),
                detail: format!(
                    "the file link answered HTTP {} (a redirect, which is not followed)",
                    status.as_u16()
                ),
            });
        }
        if status.is_success() {
            let announced = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if announced.is_some_and(|n| n > cap) {
                return Err(too_large(operation, cap));
            }
        }
        let retry_after = retry_after_header(&response);
        let body = match read_capped(response, cap).await {
            Ok(body) => body,
            Err(ReadError::TooLarge) if status.is_success() => {
                return Err(too_large(operation, cap))
            }
            Err(ReadError::TooLarge) => Vec::new(),
            Err(ReadError::Transport(e)) => {
                return Err(self.transport_error(operation, Effect::Read, &e))
            }
        };
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            // The link itself is refused (expired, say): not a credentials problem of the
            // connector, which sends no credentials there.
            return Err(EzdError::Refused {
                operation: operation.to_owned(),
                detail: format!("the file link answered HTTP {}", status.as_u16()),
            });
        }
        Ok(classify(
            operation,
            Effect::Read,
            status,
            retry_after.as_deref(),
            body,
        )?
        .body)
    }

    fn transport_error(&self, operation: &str, effect: Effect, e: &reqwest::Error) -> EzdError {
        let detail = describe(e, self.timeout);
        if e.is_connect() {
            // The connection was never made, so the request never left.
            return EzdError::Transient(format!("{operation}: {detail}"));
        }
        match effect {
            Effect::Read => EzdError::Transient(format!("{operation}: {detail}")),
            Effect::Write => EzdError::Uncertain {
                operation: operation.to_owned(),
                detail: format!("{detail} after the request was sent"),
            },
        }
    }
}

fn too_large(operation: &str, cap: u64) -> EzdError {
    EzdError::Refused {
        operation: operation.to_owned(),
        detail: format!("the file is larger than the {cap}-byte download limit"),
    }
}

/// Maps a status other than 401/403 to the answer or the error class.
fn classify(
    operation: &str,
    effect: Effect,
    status: StatusCode,
    retry_after: Option<&str>,
    body: Vec<u8>,
) -> Result<Answer, EzdError> {
    if status.is_success() {
        return Ok(Answer { status, body });
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(EzdError::RateLimited {
            retry_after: retry_after_duration(retry_after, Utc::now()),
        });
    }
    let detail = format!("HTTP {}: {}", status.as_u16(), problem_text(&body));
    if status.is_server_error() {
        return Err(match effect {
            Effect::Read => EzdError::Transient(format!("{operation}: {detail}")),
            Effect::Write => EzdError::Uncertain {
                operation: operation.to_owned(),
                detail,
            },
        });
    }
    if status.is_client_error() {
        return Err(EzdError::Refused {
            operation: operation.to_owned(),
            detail,
        });
    }
    // 1xx/3xx: nothing the API is documented to send.
    Err(EzdError::Protocol {
        operation: operation.to_owned(),
        detail: format!("unexpected HTTP {}", status.as_u16()),
    })
}

/// Whether EZD refused a call with 409 Conflict (the text is built by [`classify`]).
pub(super) fn is_conflict(e: &EzdError) -> bool {
    matches!(e, EzdError::Refused { detail, .. } if detail.starts_with("HTTP 409:"))
}

/// `api_` + Base64(SHA-256(web host)): how EZD RP names an API client.
fn client_id(web_host: &str) -> String {
    format!(
        "api_{}",
        STANDARD.encode(Sha256::digest(web_host.as_bytes()))
    )
}

pub(super) fn parse_http_url(key: &str, value: &str) -> Result<Url, EzdError> {
    let url = Url::parse(value.trim())
        .map_err(|e| EzdError::Config(format!("EZD RP setting {key} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host().is_none() {
        return Err(EzdError::Config(format!(
            "EZD RP setting {key} must be an http(s) URL with a host"
        )));
    }
    Ok(url)
}

/// The multipart form of a single-file upload. A MIME type reqwest cannot parse is sent as
/// `application/octet-stream` rather than failing the upload.
fn file_form(file: &FileContent) -> Form {
    let mime = if Part::bytes(Vec::new()).mime_str(&file.mime_type).is_ok() {
        file.mime_type.as_str()
    } else {
        "application/octet-stream"
    };
    let part = Part::bytes(file.bytes.clone()).file_name(file.name.clone());
    let part = match part.mime_str(mime) {
        Ok(part) => part,
        Err(_) => Part::bytes(file.bytes.clone()).file_name(file.name.clone()),
    };
    Form::new().part("file", part)
}

fn retry_after_header(response: &Response) -> Option<String> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` in seconds or as an HTTP date, clamped to [1 s, 1 h]; 60 s when absent or
/// unreadable.
pub(super) fn retry_after_duration(value: Option<&str>, now: DateTime<Utc>) -> Duration {
    let Some(value) = value.map(str::trim) else {
        return RETRY_AFTER_DEFAULT;
    };
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(at) = DateTime::parse_from_rfc2822(value) {
        let secs = (at.with_timezone(&Utc) - now).num_seconds().max(0);
        Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    } else {
        RETRY_AFTER_DEFAULT
    };
    wait.clamp(RETRY_AFTER_MIN, RETRY_AFTER_MAX)
}

async fn read_capped(mut response: Response, cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error in a few words, with its cause (reqwest's own text says little) and
/// without the URL.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    let mut text = if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_body() || e.is_decode() {
        "connection lost while reading the answer".to_owned()
    } else {
        "connection failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_dates_and_clamps() {
        let now = DateTime::parse_from_rfc3339("2026-10-03T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            retry_after_duration(Some("17"), now),
            Duration::from_secs(17)
        );
        assert_eq!(retry_after_duration(Some("0"), now), Duration::from_secs(1));
        assert_eq!(
            retry_after_duration(Some("999999"), now),
            Duration::from_secs(3600)
        );
        assert_eq!(
            retry_after_duration(Some("Sat, 03 Oct 2026 12:02:00 GMT"), now),
            Duration::from_secs(120)
        );
        assert_eq!(retry_after_duration(None, now), Duration::from_secs(60));
        assert_eq!(
            retry_after_duration(Some("soon"), now),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn client_id_is_base64_of_sha256_of_the_web_host() {
        // python3 -c 'import hashlib,base64; print("api_"+base64.b64encode(hashlib.sha256(b"web.x.gov.pl").digest()).decode())'
        assert_eq!(
            client_id("web.x.gov.pl"),
            "api_c/UanVvWhwXi/J4hbZzVOVXr/v2xXggbvv8RYOb5yGU="
        );
    }
}
