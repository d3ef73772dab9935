//! The audit trail of the query service: every request under `/v1/` that reads or acts on a
//! municipality's or a resident's data — allowed or denied — is written to the hash-chained
//! audit log (`gsko_store::AuditStore`) before its answer leaves: who (the portal key, later the
//! resident's session), whose data (the resident's PESEL), what (method and route), when, from
//! where, and how it ended (the status code). An answer whose audit entry could not be written
//! is replaced by a 503: data is never served unaudited.
//!
//! Entries are written by one task in batches (one transaction, one chain step per entry), so
//! a busy service costs one database round trip per batch rather than per request. The PESEL
//! goes to the audit table only; the ordinary logs never see it.

use crate::login::{AuditNote, Principal};
use crate::{AppState, RESIDENT_HEADER};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gsko_model::Pesel;
use gsko_store::{AuditEntry, AuditStore};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Pending = (AuditEntry, oneshot::Sender<Result<(), String>>);

/// Hands entries to the writer task; cheap to clone.
#[derive(Clone)]
pub struct AuditTrail {
    tx: mpsc::Sender<Pending>,
}

/// The most entries one transaction writes.
const BATCH: usize = 256;

impl AuditTrail {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Arc<dyn AuditStore>) -> AuditTrail {
        let (tx, mut rx) = mpsc::channel::<Pending>(4 * BATCH);
        tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let entries: Vec<AuditEntry> = batch.iter().map(|(e, _)| e.clone()).collect();
                let result = store
                    .audit_append(&entries)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, entries = entries.len(), "audit log write failed; the answers are withheld");
                }
                for (_, reply) in batch.drain(..) {
                    if reply.send(result.clone()).is_err() {
                        // The request is gone (the client hung up): nothing to tell it.
                        continue;
                    }
                }
            }
        });
        AuditTrail { tx }
    }

    /// Writes one entry; returns once it is durable (or why not).
    pub async fn record(&self, entry: AuditEntry) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send((entry, reply))
            .await
            .map_err(|_| "audit writer stopped".to_owned())?;
        done.await.map_err(|_| "audit writer stopped".to_owned())?
    }
}

/// Whether a route reads or acts on tenant or resident data (everything under `/v1/`), or
/// logs a resident in or out.
fn audited(path: &str) -> bool {
    path.starts_with("/v1/") || matches!(path, "/login/acs" | "/logout")
}

/// Where the request came from: the first `X-Forwarded-For` address when a proxy in front says
/// so, else the peer's address.
fn remote(req: &Request) -> Option<String> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 64);
    forwarded.or_else(|| {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string())
    })
}

/// The caller as the audit names it (see [`Principal::actor`]).
fn actor(state: &AppState, req: &Request) -> String {
    req.extensions()
        .get::<Principal>()
        .map_or_else(|| "anonymous".into(), |p| p.actor(state))
}

/// Whose data: a logged-in resident's own; else the well-formed PESEL a portal named (a
/// malformed header names nobody).
fn subject(req: &Request) -> Option<String> {
    if let Some(Principal::Resident(s)) = req.extensions().get::<Principal>() {
        return Some(s.pesel.clone());
    }
    req.headers()
        .get(RESIDENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Pesel::from_str(v).ok())
        .map(|p| p.as_str().to_owned())
}

/// The tenant named in the path (`/v1/tenants/{teryt}/…`), as written (it may be invalid:
/// the attempt is recorded all the same).
pub(crate) fn tenant_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    let t = rest.split('/').next()?;
    (!t.is_empty() && t.len() <= 16).then(|| t.to_owned())
}

pub(crate) async fn audit_requests(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(trail) = state.audit.clone() else {
        return next.run(req).await;
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(route) = route.filter(|r| audited(r)) else {
        return next.run(req).await;
    };
    let entry_base = AuditEntry {
        at: chrono::Utc::now(),
        actor: actor(&state, &req),
        tenant: tenant_of(req.uri().path()),
        resident_pesel: subject(&req),
        action: format!("{} {route}", req.method()),
        outcome: String::new(),
        remote: remote(&req),
    };
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let entry = match response.extensions().get::<AuditNote>() {
        Some(note) => AuditEntry {
            actor: note.actor.clone().unwrap_or(entry_base.actor.clone()),
            resident_pesel: note.pesel.clone().or(entry_base.resident_pesel.clone()),
            outcome: match note.detail {
                Some(d) => format!("{status} {d}"),
                None => status,
            },
            ..entry_base
        },
        None => AuditEntry {
            outcome: status,
            ..entry_base
        },
    };
    match trail.record(entry).await {
        Ok(()) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": "unavailable",
                "message": "the access could not be recorded in the audit log; try again later",
            })),
        )
            .into_response(),
    }
}
