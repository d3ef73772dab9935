//! Paying: the resident's basket becomes gateway orders (through the payment service), and the
//! payments GSKO saw settle are listed with how far the ledger has booked them.

use crate::{authenticate, due, resident, tenant, ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gsko_model::Teryt;
use gsko_payments::{BasketLine, BasketRequest, BasketView, GatewayKind, InitiateError};
use gsko_store::PaymentView;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemRequest {
    liability_id: String,
    /// One installment; without it, everything still due on the liability.
    #[serde(default)]
    installment: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentOrderRequest {
    items: Vec<ItemRequest>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    return_url: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    customer_ip: Option<String>,
}

/// The answer when some order could not be registered with its gateway: the basket is stored
/// (nothing was charged); sending the same request with the same key again retries.
#[derive(Debug, Serialize)]
struct GatewayFailure {
    error: &'static str,
    message: &'static str,
    basket: BasketView,
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let v = headers
        .get(IDEMPOTENCY_HEADER)
        .ok_or_else(|| ApiError::BadRequest("missing Idempotency-Key header".into()))?;
    let s = v
        .to_str()
        .ok()
        .filter(|s| (8..=100).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Idempotency-Key must be 8 to 100 printable ASCII characters".into(),
            )
        })?;
    Ok(s.to_owned())
}

fn service(s: &AppState) -> Result<&gsko_payments::PaymentService, ApiError> {
    s.payments.as_deref().ok_or(ApiError::PaymentsNotConfigured)
}

pub(crate) async fn create_payment_order(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&s, &headers)?;
    let t = tenant(&s, &caller, &raw)?;
    let pesel = resident(&caller, &headers)?;
    let key = idempotency_key(&headers)?;
    let req: PaymentOrderRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
    let svc = service(&s)?;
    if svc.tenant(&t).is_none() {
        return Err(ApiError::PaymentsNotConfigured);
    }
    if req.items.is_empty() {
        return Err(ApiError::Unprocessable("items: the basket is empty".into()));
    }
    let gateway = match req.gateway.as_deref() {
        None => None,
        Some(g) => Some(GatewayKind::parse(g).ok_or_else(|| {
            ApiError::BadRequest(format!("gateway {g:?} is not one of przelewy24, payu"))
        })?),
    };
    let v = s
        .store
        .resident_view(&t, &pesel)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut request = BasketRequest {
        tenant: t.clone(),
        client: caller.client(),
        idempotency_key: key,
        pesel,
        requested: req
            .items
            .iter()
            .map(|i| (i.liability_id.clone(), i.installment))
            .collect(),
        lines: Vec::new(),
        gateway,
        return_url: req.return_url,
        email: req.email,
        customer_ip: req.customer_ip,
    };
    // A key seen before answers its basket, even when nothing is due any more because the
    // resident has paid it meanwhile.
    let answer = match svc.existing(&request).await.map_err(initiate_error)? {
        Some(existing) => existing,
        None => {
            request.lines = basket_lines(&s, &v, &req.items)?;
            svc.initiate(request).await.map_err(initiate_error)?
        }
    };
    if !answer.ready {
        return Ok((
            StatusCode::BAD_GATEWAY,
            Json(GatewayFailure {
                error: "gateway_unavailable",
                message: "the payment gateway did not take every order; nothing was charged for those. Send the same request with the same Idempotency-Key again to retry.",
                basket: answer,
            }),
        )
            .into_response());
    }
    let status = if answer.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)).into_response())
}

/// Resolves the requested items against the view and what is due today (principal left plus
/// interest on arrears up to today, the same estimate `/due` shows).
fn basket_lines(
    s: &AppState,
    v: &gsko_store::ResidentView,
    items: &[ItemRequest],
) -> Result<Vec<BasketLine>, ApiError> {
    let today = (s.today)();
    let due = due::compute(v, today, None, &s.rates)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let mut seen = BTreeSet::new();
    // Installments already in the basket: a whole liability and one of its installments listed
    // apart must not put that installment in the basket (and charge it) twice.
    let mut covered = BTreeSet::new();
    let mut lines = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert((item.liability_id.clone(), item.installment)) {
            return Err(ApiError::BadRequest(format!(
                "items[{i}]: the same liability and installment are listed twice"
            )));
        }
        let known = v
            .accounts
            .iter()
            .flat_map(|a| a.liabilities.iter())
            .any(|l| l.liability_id == item.liability_id);
        if !known {
            return Err(ApiError::Unprocessable(format!(
                "items[{i}]: no liability {:?} among the resident's accounts",
                item.liability_id
            )));
        }
        let matching: Vec<&due::DueInstallment> = due
            .installments
            .iter()
            .filter(|d| d.liability_id == item.liability_id)
            .filter(|d| item.installment.is_none_or(|seq| d.seq == seq))
            .collect();
        if matching.is_empty() {
            return Err(ApiError::Unprocessable(format!(
                "items[{i}]: nothing is due on liability {:?}{}",
                item.liability_id,
                item.installment
                    .map(|s| format!(" installment {s}"))
                    .unwrap_or_default()
            )));
        }
        for d in matching {
            if !covered.insert((d.liability_id.clone(), d.seq)) {
                return Err(ApiError::BadRequest(format!(
                    "items[{i}]: installment {} of liability {:?} is already in the basket",
                    d.seq, d.liability_id
                )));
            }
            lines.push(BasketLine {
                account_id: d.account_id.clone(),
                levy: d.levy,
                liability_id: d.liability_id.clone(),
                installment_seq: Some(d.seq),
                amount: d.total,
                label: format!("{} {} rata {}", d.levy.as_str(), d.year, d.seq),
            });
        }
    }
    Ok(lines)
}

fn initiate_error(e: InitiateError) -> ApiError {
    match e {
        InitiateError::NotConfigured => ApiError::PaymentsNotConfigured,
        InitiateError::KeyReused { .. } => ApiError::Conflict(e.to_string()),
        InitiateError::Store(e) => e.into(),
        other => ApiError::Unprocessable(other.to_string()),
    }
}

pub(crate) async fn payment_order(
    State(s): State<AppState>,
    Path((raw, basket_id)): Path<(String, String)>,
    headers: crate::Authed,
) -> Result<Json<BasketView>, ApiError> {
    let caller = authenticate(&s, &headers)?;
    let t = tenant(&s, &caller, &raw)?;
    let pesel = resident(&caller, &headers)?;
    let svc = service(&s)?;
    svc.basket(&t, &basket_id, &pesel)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

#[derive(Debug, Serialize)]
pub struct Payments {
    pub tenant: String,
    /// Newest first. `status` says whether the ledger has booked each one yet: until it does,
    /// the balance from the ledger does not include it.
    pub payments: Vec<PaymentView>,
}

pub(crate) async fn payments(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
) -> Result<Json<Payments>, ApiError> {
    let (t, v) = crate::view(&s, &headers, &raw).await?;
    Ok(Json(Payments {
        tenant: t.to_string(),
        payments: v.payments,
    }))
}

#[derive(Debug, Serialize)]
pub struct UnmatchedPayments {
    pub tenant: String,
    pub payments: Vec<gsko_store::UnmatchedPaymentRow>,
}

pub(crate) async fn unmatched_payments(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
) -> Result<Json<UnmatchedPayments>, ApiError> {
    let t: Teryt = crate::admin_tenant(&s, &headers, &raw)?;
    let payments = s.store.unmatched_payments(&t, 1000).await?;
    Ok(Json(UnmatchedPayments {
        tenant: t.to_string(),
        payments,
    }))
}

#[derive(Debug, Serialize)]
pub struct GatewayNotifications {
    pub tenant: String,
    pub notifications: Vec<gsko_store::NotificationAudit>,
}

pub(crate) async fn gateway_notifications(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: crate::Authed,
) -> Result<Json<GatewayNotifications>, ApiError> {
    let t: Teryt = crate::admin_tenant(&s, &headers, &raw)?;
    let svc = service(&s)?;
    let notifications = svc.store().notifications(&t, 1000).await?;
    Ok(Json(GatewayNotifications {
        tenant: t.to_string(),
        notifications,
    }))
}
