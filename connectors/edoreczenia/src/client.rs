//! Calls to the UA API of the office's mailbox.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;

use crate::config::{Config, RetryPolicy};
use crate::error::Error;
use crate::token::{describe, snippet, TokenSource};
use crate::wire::{
    error_detail, message_body, parse_evidences, parse_listing, parse_sent, parse_state, Evidence,
    MessageState, Outgoing, SentMessage,
};

/// A `Retry-After` longer than this is not waited out inside a call: the error goes back to the
/// caller, whose own schedule (the bus retry ladder) handles long pauses.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// `limit` of one page of the SENT listing (the API's maximum).
const PAGE: usize = 100;
/// Bound on the pages `find_sent` reads (100 000 messages).
const MAX_PAGES: usize = 1000;

/// Client of one mailbox: sends messages, follows their status and evidence.
///
/// Safe calls (GETs) are retried on transient failures with jittered exponential backoff.
/// `send` is retried only when the connection could not be made, i.e. when the message
/// provably did not reach the server; when its answer is lost it returns
/// [`Error::Uncertain`] and the caller must look for it with [`UaClient::find_sent`].
/// Any call answered 401 is repeated once with a freshly issued token.
#[derive(Debug)]
pub struct UaClient {
    http: reqwest::Client,
    config: Config,
    base: Url,
    tokens: TokenSource,
    retry: RetryPolicy,
}

/// Why an authorized call did not produce a response.
enum CallError {
    /// No request went out, or the token endpoint/API refused access.
    Api(Error),
    /// The transport failed; whether the request reached the server depends on the error.
    Transport(reqwest::Error),
}

impl UaClient {
    /// Builds the HTTP client (timeouts, TLS client certificate) and the token source.
    pub fn new(config: Config) -> Result<Self, Error> {
        let base = Url::parse(config.api_url.trim_end_matches('/'))
            .map_err(|e| Error::Config(format!("api_url is not a URL: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config("api_url must be an http(s) URL".into()));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)));
        if !config.certificate_pem.trim().is_empty() {
            let pem = format!(
                "{}\n{}",
                config.certificate_pem.trim(),
                config.private_key_pem.trim()
            );
            let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| {
                Error::Config(format!(
                    "certificate_pem/private_key_pem unusable for TLS: {e}"
                ))
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let tokens = TokenSource::new(&config, http.clone())?;
        Ok(Self {
            http,
            config,
            base,
            tokens,
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry schedule of safe calls (tests use short delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The token source, e.g. to check the credentials at start-up with `tokens().token()`.
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// Sends `msg` from the office's mailbox (`POST /{ade}/messages`).
    ///
    /// Never resends once the request may have reached the server: a timeout, a broken
    /// connection, a gateway error (502/504) or a 2xx answer without a readable id give
    /// [`Error::Uncertain`]; then call [`UaClient::find_sent`] with `msg.reference`.
    pub async fn send(&self, msg: &Outgoing) -> Result<SentMessage, Error> {
        let url = self.url(&["messages"], &[]);
        let body = message_body(&self.config.ade, msg);
        let mut attempt = 1;
        let response = loop {
            let call = self
                .authorized(|token| self.http.post(url.clone()).bearer_auth(token).json(&body))
                .await;
            match call {
                Ok(response) => break response,
                Err(CallError::Api(e)) => return Err(e),
                Err(CallError::Transport(e)) if e.is_connect() => {
                    if attempt >= self.retry.max_attempts {
                        return Err(Error::Unavailable(format!(
                            "send: cannot connect to the UA API after {attempt} attempt(s)"
                        )));
                    }
                    tracing::warn!(attempt, "e-Doręczenia send: cannot connect, retrying");
                    tokio::time::sleep(self.retry.delay_after(attempt)).await;
                    attempt += 1;
                }
                Err(CallError::Transport(e)) => {
                    tracing::warn!(reference = %msg.reference, "e-Doręczenia send: answer lost");
                    return Err(Error::Uncertain(format!(
                        "send: {} after the request was sent",
                        describe(&e)
                    )));
                }
            }
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) if status.is_success() || is_gateway(status) => {
                return Err(Error::Uncertain(format!(
                    "send: HTTP {} but {}",
                    status.as_u16(),
                    describe(&e)
                )))
            }
            Err(_) => Default::default(),
        };
        if is_gateway(status) {
            tracing::warn!(reference = %msg.reference, status = status.as_u16(), "e-Doręczenia send: gateway error");
            return Err(Error::Uncertain(format!(
                "send: gateway answered HTTP {} (the API may have accepted the message)",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(status_error("send", status, &bytes));
        }
        let sent = serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| Error::Malformed(format!("send answer is not JSON: {e}")))
            .and_then(|answer| parse_sent(&answer))
            .map_err(|e| {
                Error::Uncertain(format!(
                    "send: HTTP {} (accepted) but no message id: {e}",
                    status.as_u16()
                ))
            })?;
        tracing::info!(
            reference = %msg.reference,
            message_id = %sent.message_id,
            status = sent.status.as_deref().unwrap_or(""),
            "e-Doręczenia message sent"
        );
        Ok(sent)
    }

    /// Status and dates of a sent message (`GET /{ade}/messages/{id}?format=metadata`).
    pub async fn message(&self, id: &str) -> Result<MessageState, Error> {
        let url = self.url(&["messages", id], &[("format", "metadata")]);
        let answer = self.get_json(url, "message").await?;
        let state = parse_state(&answer)?;
        tracing::debug!(message_id = %id, status = %state.status, "e-Doręczenia message state");
        Ok(state)
    }

    /// The evidences of a message (`GET /{ade}/messages/{id}/evidences`).
    pub async fn evidences(&self, id: &str) -> Result<Vec<Evidence>, Error> {
        let url = self.url(&["messages", id, "evidences"], &[]);
        let answer = self.get_json(url, "evidences").await?;
        let evidences = parse_evidences(&answer)?;
        tracing::debug!(message_id = %id, count = evidences.len(), "e-Doręczenia evidences");
        Ok(evidences)
    }

    /// The evidence document. `externalData` is fetched only when it points at the UA API's
    /// own host (the access token must not go anywhere else); otherwise
    /// `GET /{ade}/messages/evidences/{evidenceId}`.
    pub async fn download_evidence(&self, evidence: &Evidence) -> Result<Vec<u8>, Error> {
        let url = evidence
            .external_data
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
            .filter(|u| same_origin(u, &self.base))
            .unwrap_or_else(|| self.url(&["messages", "evidences", &evidence.evidence_id], &[]));
        let bytes = self.get(url, "evidence download").await?;
        tracing::debug!(evidence_id = %evidence.evidence_id, size = bytes.len(), "e-Doręczenia evidence downloaded");
        Ok(bytes)
    }

    /// The id of the sent message whose `additionalData.gskoReference` is `reference`, read
    /// from the SENT listing page by page. Use it after [`Error::Uncertain`] (or a crash
    /// between sending and recording the answer) to learn whether the message went out.
    pub async fn find_sent(&self, reference: &str) -> Result<Option<String>, Error> {
        let limit = PAGE.to_string();
        let mut offset = 0usize;
        let mut previous_first: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let offset_text = offset.to_string();
            let url = self.url(
                &["messages"],
                &[
                    ("label", "SENT"),
                    ("limit", &limit),
                    ("offset", &offset_text),
                    ("format", "metadata"),
                ],
            );
            let answer = self.get_json(url, "sent listing").await?;
            let (items, total) = parse_listing(&answer)?;
            if let Some((id, _)) = items.iter().find(|(_, r)| r.as_deref() == Some(reference)) {
                tracing::info!(%reference, message_id = %id, "e-Doręczenia sent message found");
                return Ok(Some(id.clone()));
            }
            let first = items.first().map(|(id, _)| id.clone());
            if first.is_some() && first == previous_first {
                return Err(Error::Malformed(
                    "SENT listing ignores offset (the same page twice)".into(),
                ));
            }
            offset += items.len();
            let done = items.is_empty() || total.map_or(items.len() < PAGE, |t| offset as u64 >= t);
            if done {
                tracing::info!(%reference, scanned = offset, "e-Doręczenia sent message not found");
                return Ok(None);
            }
            previous_first = first;
        }
        Err(Error::Malformed(format!(
            "SENT listing did not end after {MAX_PAGES} pages"
        )))
    }

    /// `{api_url}/{ade}/{segments…}?{query}`, each segment percent-encoded.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("api_url checked in new() to be a base URL")
            .pop_if_empty()
            .push(self.config.ade.as_str())
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends the request built by `build` with a token; on 401 drops the token and tries once
    /// more with a fresh one.
    async fn authorized<F>(&self, build: F) -> Result<Response, CallError>
    where
        F: Fn(&str) -> RequestBuilder,
    {
        let token = self.tokens.token().await.map_err(CallError::Api)?;
        let response = build(&token).send().await.map_err(CallError::Transport)?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        tracing::info!("e-Doręczenia API refused the access token; getting a new one");
        self.tokens.invalidate(&token).await;
        let token = self.tokens.token().await.map_err(CallError::Api)?;
        let response = build(&token).send().await.map_err(CallError::Transport)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let body = response.bytes().await.unwrap_or_default();
            let detail = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| error_detail(&v))
                .unwrap_or_else(|| snippet(&body));
            return Err(CallError::Api(Error::Unauthorized(format!(
                "UA API refused a freshly issued token of {} (HTTP 401): {detail}",
                self.config.client_id()
            ))));
        }
        Ok(response)
    }

    async fn get_json(&self, url: Url, what: &str) -> Result<Value, Error> {
        let bytes = self.get(url, what).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Malformed(format!("{what}: answer is not JSON: {e}")))
    }

    /// GET with retries of transient failures.
    async fn get(&self, url: Url, what: &str) -> Result<Vec<u8>, Error> {
        let mut attempt = 1;
        loop {
            let (error, retry_after) = match self.get_once(&url, what).await {
                Ok(bytes) => return Ok(bytes),
                Err(failure) => failure,
            };
            if !error.is_transient() || attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = match retry_after {
                Some(d) if d > MAX_RETRY_AFTER => return Err(error),
                Some(d) => d,
                None => self.retry.delay_after(attempt),
            };
            tracing::warn!(attempt, what, %error, delay_ms = delay.as_millis() as u64, "e-Doręczenia call failed, retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn get_once(&self, url: &Url, what: &str) -> Result<Vec<u8>, (Error, Option<Duration>)> {
        let response = match self
            .authorized(|token| self.http.get(url.clone()).bearer_auth(token))
            .await
        {
            Ok(response) => response,
            Err(CallError::Api(e)) => return Err((e, None)),
            Err(CallError::Transport(e)) => {
                return Err((
                    Error::Unavailable(format!("{what}: {}", describe(&e))),
                    None,
                ))
            }
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        let bytes = response.bytes().await.map_err(|e| {
            (
                Error::Unavailable(format!("{what}: {}", describe(&e))),
                None,
            )
        })?;
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err((status_error(what, status, &bytes), retry_after))
        }
    }
}

/// 502/504: a gateway lost the backend's answer; a POST may have been processed.
fn is_gateway(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502 | 504)
}

/// The error for a non-2xx answer (other than a 401 already handled).
fn status_error(what: &str, status: StatusCode, body: &[u8]) -> Error {
    let code = status.as_u16();
    if status.is_server_error() || code == 429 {
        return Error::Unavailable(format!("{what}: HTTP {code}"));
    }
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| error_detail(&v))
        .unwrap_or_else(|| snippet(body));
    if code == 401 {
        return Error::Unauthorized(format!("{what}: HTTP 401: {detail}"));
    }
    Error::Refused {
        status: code,
        detail: format!("{what}: {detail}"),
    }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Same scheme, host and port.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        let refused = status_error(
            "send",
            StatusCode::BAD_REQUEST,
            br#"[{"error":"invalid_request","error_description":"Brak tematu"}]"#,
        );
        assert!(
            matches!(&refused, Error::Refused { status: 400, detail } if detail.contains("Brak tematu")),
            "{refused:?}"
        );
        assert!(status_error("x", StatusCode::TOO_MANY_REQUESTS, b"").is_transient());
        assert!(status_error("x", StatusCode::SERVICE_UNAVAILABLE, b"").is_transient());
        assert!(matches!(
            status_error("x", StatusCode::NOT_FOUND, b"<html>"),
            Error::Refused { status: 404, .. }
        ));
    }

    #[test]
    fn origin_check_keeps_the_token_at_home() {
        let api = Url::parse("https://uaapi-int-ow.poczta-polska.pl/api/v1").expect("url");
        let home =
            Url::parse("https://uaapi-int-ow.poczta-polska.pl/api/v1/x/evidences/1").expect("url");
        let away = Url::parse("http://poczta-polska.pl/edor/x/evidences/qerds/1").expect("url");
        let other_port = Url::parse("https://uaapi-int-ow.poczta-polska.pl:8443/x").expect("url");
        assert!(same_origin(&home, &api));
        assert!(!same_origin(&away, &api));
        assert!(!same_origin(&other_port, &api));
    }
}
