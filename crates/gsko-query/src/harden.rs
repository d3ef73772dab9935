//! The hardening of the HTTP surface: security headers on every answer, and a token-bucket
//! rate limit per client on `/v1/`.
//!
//! A client is a known portal key (by the SHA-256 of its token, never the token) or, without a
//! key GSKO knows, the caller's address: a caller inventing tokens gets no fresh bucket per
//! token.

use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::time::Instant;

/// Whether a path is the API proper (resident and tenant data) or the login, which costs a
/// round trip to login.gov.pl.
fn api(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/login") || path == "/logout"
}

/// Adds the security headers. Every answer is JSON, plain text or a 303 redirect — no page is
/// ever rendered — so the strictest content policy fits all of them; the login's form page
/// sets its own, allowing exactly its one script.
pub(crate) async fn security_headers(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let v1 = api(req.uri().path());
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    if v1 {
        // Personal data: no browser or proxy may keep a copy.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

/// Requests between two prunings of idle buckets.
const PRUNE_EVERY: u64 = 10_000;
/// A full bucket untouched this long is forgotten (it would be recreated full anyway).
const IDLE_SECS: f64 = 60.0;

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Buckets {
    by_client: HashMap<String, Bucket>,
    since_prune: u64,
}

/// Token buckets per client: `per_second` tokens flow in, at most `burst` are kept, each
/// request takes one.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// `None` when `per_second` is 0 (or not a positive finite number): no limit.
    pub fn new(per_second: f64, burst: u32) -> Option<RateLimiter> {
        (per_second.is_finite() && per_second > 0.0).then(|| RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(Buckets {
                by_client: HashMap::new(),
                since_prune: 0,
            }),
        })
    }

    /// Takes a token for `client`, or says in how many whole seconds (at least 1) one will be
    /// there.
    pub fn take(&self, client: &str, now: Instant) -> Result<(), u64> {
        // A poisoned lock only means another request panicked mid-update: the counts are
        // still usable.
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        b.since_prune += 1;
        if b.since_prune >= PRUNE_EVERY {
            b.since_prune = 0;
            let (rate, burst) = (self.per_second, self.burst);
            b.by_client.retain(|_, k| {
                let idle = now.saturating_duration_since(k.last).as_secs_f64();
                !(idle > IDLE_SECS && k.tokens + idle * rate >= burst)
            });
        }
        let bucket = b.by_client.entry(client.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err((wait.ceil() as u64).max(1))
        }
    }

    /// Clients with a bucket (for tests of the pruning).
    pub fn clients(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .by_client
            .len()
    }
}

/// The client a request is counted against: `key:<sha256>` for a known portal key, else
/// `session:<id>` for a resident's session, `addr:<ip>` (the peer, else the first
/// `X-Forwarded-For`), else `unknown`.
fn client(state: &AppState, req: &Request) -> String {
    match req.extensions().get::<crate::login::Principal>() {
        Some(crate::login::Principal::Portal(i)) => {
            let hex: String = state.keys[*i]
                .key_sha256
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            return format!("key:{hex}");
        }
        Some(crate::login::Principal::Resident(s)) => return format!("session:{}", s.sid),
        _ => {}
    }
    // The peer's IP without its port: each connection has a new port.
    if let Some(c) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        return format!("addr:{}", c.0.ip());
    }
    req.headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map_or_else(|| "unknown".to_owned(), |a| format!("addr:{a}"))
}

/// Refuses a `/v1/` request over its client's rate with 429 and `Retry-After`.
pub(crate) async fn rate_limit(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(limiter) = state.rate_limit.as_deref() else {
        return next.run(req).await;
    };
    if !api(req.uri().path()) {
        return next.run(req).await;
    }
    match limiter.take(&client(&state, &req), Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(retry_after) => ApiError::RateLimited { retry_after }.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_refills_at_the_rate_and_says_when() {
        let l = RateLimiter::new(2.0, 2).unwrap();
        let t0 = Instant::now();
        assert_eq!(l.take("a", t0), Ok(()));
        assert_eq!(l.take("a", t0), Ok(()));
        assert_eq!(l.take("a", t0), Err(1));
        assert_eq!(l.take("b", t0), Ok(()));
        assert_eq!(l.take("a", t0 + Duration::from_millis(500)), Ok(()));
        let slow = RateLimiter::new(0.1, 1).unwrap();
        assert_eq!(slow.take("a", t0), Ok(()));
        assert_eq!(slow.take("a", t0), Err(10));
    }

    #[test]
    fn idle_full_buckets_are_pruned() {
        let l = RateLimiter::new(1.0, 1).unwrap();
        let t0 = Instant::now();
        for i in 0..100 {
            assert_eq!(l.take(&format!("c{i}"), t0), Ok(()));
        }
        // One busy client, a request a second, from two minutes on.
        for i in 0..PRUNE_EVERY {
            let at = t0 + Duration::from_secs(120 + i);
            assert_eq!(l.take("busy", at), Ok(()));
        }
        assert_eq!(l.clients(), 1);
    }

    #[test]
    fn zero_disables() {
        assert!(RateLimiter::new(0.0, 10).is_none());
    }
}
