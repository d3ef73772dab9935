//! The gateways' notification endpoints.
//!
//! - `POST /gateway/przelewy24/{teryt}/{merchant}/status` (P24 `urlStatus`, spec §1.6–1.7)
//! - `POST /gateway/payu/{teryt}/{merchant}/notify` (PayU `notifyUrl`, spec §2.5)
//!
//! Nothing in a notification is believed before its signature is checked with the merchant's
//! key; then the amount and currency are compared with the order GSKO stored before calling
//! the gateway. Answers follow the gateways: 200 stops their retries (a settled payment, a
//! replay of one, a status GSKO has no use for), anything else makes them try again later
//! (a refused notification, or a P24 `verify` call that failed). Every notification, whatever
//! its fate, gets a row in the audit (`gateway_notifications`); the ordinary log gets the
//! outcome and reason, never amounts or payer data.

use crate::{gateway_payment_id, GatewayKind, PaymentService};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use gsko_model::{Event, EventData, Payment, Teryt, UnmatchedPayment, UnmatchedReason};
use gsko_store::{NotificationAudit, NotificationOutcome, OrderRecord, OrderStatus, StoreError};
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::sync::Arc;

/// The routes, to be merged into the daemon's HTTP server (outside the portal API: gateways
/// authenticate by signature, not by portal key).
pub fn routes(service: Arc<PaymentService>) -> Router {
    Router::new()
        .route(
            "/gateway/przelewy24/{teryt}/{merchant}/status",
            post(p24_status),
        )
        .route("/gateway/payu/{teryt}/{merchant}/notify", post(payu_notify))
        .with_state(service)
}

/// The answer to a gateway and what the audit says about it.
struct Verdict {
    status: StatusCode,
    outcome: NotificationOutcome,
    reason: String,
}

impl Verdict {
    fn new(status: StatusCode, outcome: NotificationOutcome, reason: impl Into<String>) -> Self {
        Verdict {
            status,
            outcome,
            reason: reason.into(),
        }
    }
    fn accepted(reason: &str) -> Self {
        Verdict::new(StatusCode::OK, NotificationOutcome::Accepted, reason)
    }
    fn replayed(reason: &str) -> Self {
        Verdict::new(StatusCode::OK, NotificationOutcome::Replayed, reason)
    }
    fn rejected(reason: &str) -> Self {
        Verdict::new(
            StatusCode::BAD_REQUEST,
            NotificationOutcome::Rejected,
            reason,
        )
    }
    fn deferred(reason: &str) -> Self {
        Verdict::new(
            StatusCode::SERVICE_UNAVAILABLE,
            NotificationOutcome::Deferred,
            reason,
        )
    }
}

fn remote_addr(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(',').next().unwrap_or(s).trim().to_owned())
}

/// One notification being handled: where it came in and its raw bytes.
struct Incoming<'a> {
    service: &'a PaymentService,
    tenant: &'a Teryt,
    gateway: GatewayKind,
    merchant: &'a str,
    body: &'a [u8],
    headers: &'a HeaderMap,
}

/// Writes the audit row and the log line, and answers the gateway.
async fn finish(n: &Incoming<'_>, session_id: Option<String>, verdict: Verdict) -> StatusCode {
    let (service, tenant, gateway, merchant, body, headers) = (
        n.service, n.tenant, n.gateway, n.merchant, n.body, n.headers,
    );
    let row = NotificationAudit {
        tenant: tenant.clone(),
        gateway: gateway.as_str().to_owned(),
        merchant: merchant.to_owned(),
        received_at: Utc::now(),
        session_id: session_id.clone(),
        outcome: verdict.outcome,
        reason: verdict.reason.clone(),
        body_sha256: hex::encode(Sha256::digest(body)),
        remote_addr: remote_addr(headers),
    };
    let audited = service.store.audit_notification(&row).await;
    let session = session_id.as_deref().unwrap_or("-");
    match verdict.outcome {
        NotificationOutcome::Accepted | NotificationOutcome::Replayed => {
            tracing::info!(tenant = %tenant, gateway = gateway.as_str(), merchant, session, outcome = verdict.outcome.as_str(), reason = %verdict.reason, "gateway notification")
        }
        _ => {
            tracing::warn!(tenant = %tenant, gateway = gateway.as_str(), merchant, session, outcome = verdict.outcome.as_str(), reason = %verdict.reason, "gateway notification not accepted")
        }
    }
    if let Err(e) = audited {
        // Without its audit row the notification is not handled: the gateway will resend.
        tracing::error!(tenant = %tenant, error = %e, "cannot write the notification audit");
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    verdict.status
}

fn store_failure(e: &StoreError) -> Verdict {
    tracing::error!(error = %e, "store error while handling a notification");
    Verdict::deferred("store_unavailable")
}

/// An order that a genuine notification contradicts: ended as `disputed` and listed for an
/// admin as an unmatched payment, never settled.
async fn dispute(
    n: &Incoming<'_>,
    order: &OrderRecord,
    reason: UnmatchedReason,
    detail: String,
) -> Result<(), StoreError> {
    let (service, tenant, body) = (n.service, n.tenant, n.body);
    let channel = n.gateway.channel();
    let unmatched = UnmatchedPayment {
        payment_id: gateway_payment_id(n.gateway, &order.session_id),
        channel,
        amount: order.amount,
        paid_on: None,
        reason,
        detail: detail.clone(),
        source: format!(
            "{} notification, order {}",
            channel.as_str(),
            order.session_id
        ),
        external_ref: None,
        virtual_account: None,
        title: Some(order.description.clone()),
        raw: String::from_utf8_lossy(body).into_owned(),
    };
    let event = Event::new(
        format!("/gsko/payments/{tenant}"),
        tenant.clone(),
        1,
        EventData::PaymentUnmatched(unmatched),
    )
    .with_stable_id(&format!("dispute/{}", order.session_id));
    service
        .store
        .close_order(
            tenant,
            &order.session_id,
            OrderStatus::Disputed,
            &detail,
            &[event],
        )
        .await?;
    service.outbox_wake.notify_one();
    Ok(())
}

/// Settles a verified order: the order becomes `paid` and the settlement messages are queued,
/// in one transaction. Returns false when the payment was already settled.
async fn settle(
    service: &PaymentService,
    tenant: &Teryt,
    gateway: GatewayKind,
    order: &OrderRecord,
    external_ref: String,
    paid_at: chrono::DateTime<Utc>,
) -> Result<bool, StoreError> {
    let payment = Payment {
        payment_id: gateway_payment_id(gateway, &order.session_id),
        channel: gateway.channel(),
        amount: order.amount,
        paid_on: gsko_taxrules::warsaw_date(paid_at),
        received_on: gsko_taxrules::warsaw_date(Utc::now()),
        items: order.items.clone(),
        external_ref: Some(external_ref),
        virtual_account: None,
        title: Some(order.description.clone()),
    };
    let messages = PaymentService::settlement_messages(tenant, &payment);
    let settled = service
        .store
        .settle(
            tenant,
            &payment.payment_id,
            Some(&order.session_id),
            &messages,
        )
        .await?;
    if settled {
        service.outbox_wake.notify_one();
    }
    Ok(settled)
}

async fn p24_status(
    State(service): State<Arc<PaymentService>>,
    Path((teryt, merchant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some((tenant, m)) = merchant_of(&service, &teryt, &merchant) else {
        return StatusCode::NOT_FOUND;
    };
    let Some(client) = m.przelewy24 else {
        return StatusCode::NOT_FOUND;
    };
    let n = Incoming {
        service: &service,
        tenant: &tenant,
        gateway: GatewayKind::Przelewy24,
        merchant: &merchant,
        body: &body,
        headers: &headers,
    };
    let (session, verdict) = p24_handle(&n, &client).await;
    finish(&n, session, verdict).await
}

/// The tenant and its merchant account named in a notification URL.
fn merchant_of(
    service: &PaymentService,
    teryt: &str,
    merchant: &str,
) -> Option<(Teryt, crate::Merchant)> {
    let tenant = Teryt::from_str(teryt).ok()?;
    let m = service.tenant(&tenant)?.merchants.get(merchant)?.clone();
    Some((tenant, m))
}

async fn p24_handle(
    n: &Incoming<'_>,
    client: &gsko_przelewy24::P24Client,
) -> (Option<String>, Verdict) {
    let (service, tenant, merchant, body) = (n.service, n.tenant, n.merchant, n.body);
    use gsko_przelewy24::{NotificationError as E, StoredOrder, UnverifiedNotification};
    let session = match UnverifiedNotification::parse(body) {
        Ok(n) => n.session_id().to_owned(),
        Err(_) => return (None, Verdict::rejected("malformed")),
    };
    let order = match service.store.order(tenant, &session).await {
        Ok(o) => o.filter(|o| o.gateway == "przelewy24" && o.merchant == merchant),
        Err(e) => return (Some(session), store_failure(&e)),
    };
    let stored = order.as_ref().map(|o| StoredOrder {
        session_id: o.session_id.clone(),
        amount: o.amount.grosze(),
        currency: "PLN".into(),
        verified_order_id: if o.status == OrderStatus::Paid {
            o.gateway_ref.as_deref().and_then(|r| r.parse().ok())
        } else {
            None
        },
    });
    let verified = client.verify_notification_with(body, |_| stored);
    let session = Some(session);
    let verified = match verified {
        Ok(v) => v,
        Err(E::Replayed { .. }) => return (session, Verdict::replayed("already_settled")),
        Err(E::BadSign) => return (session, Verdict::rejected("bad_signature")),
        Err(E::UnknownSession) => return (session, Verdict::rejected("unknown_session")),
        Err(E::WrongMerchant) | Err(E::WrongPos) => {
            return (session, Verdict::rejected("wrong_merchant"))
        }
        Err(E::Malformed(_)) => return (session, Verdict::rejected("malformed")),
        Err(e @ (E::AmountMismatch { .. } | E::CurrencyMismatch | E::OrderConflict { .. })) => {
            let order = order.expect("a mismatch is only reported for a stored order");
            let (reason, code) = match e {
                E::OrderConflict { .. } => (UnmatchedReason::Duplicate, "order_conflict"),
                E::CurrencyMismatch => (UnmatchedReason::AmountMismatch, "currency_mismatch"),
                _ => (UnmatchedReason::AmountMismatch, "amount_mismatch"),
            };
            let detail = format!("Przelewy24 notification: {e}");
            return match dispute(n, &order, reason, detail).await {
                Ok(()) => (session, Verdict::rejected(code)),
                Err(e) => (session, store_failure(&e)),
            };
        }
    };
    let order = order.expect("a verified notification has a stored order");
    if order.status == OrderStatus::Disputed {
        return (session, Verdict::rejected("order_disputed"));
    }
    // The mandatory verify call: until P24 hears it, the money is the payer's advance
    // payment, not the municipality's.
    if let Err(e) = client.verify(&verified.verify_request()).await {
        tracing::warn!(tenant = %tenant, order = %order.session_id, error = %e, "transaction/verify failed");
        return (session, Verdict::deferred("verify_failed"));
    }
    let order_id = verified.order_id.to_string();
    // Remember which P24 transaction paid this order, so a later notification for another
    // transaction on the same session is caught as a conflict.
    if let Err(e) = service
        .store
        .update_order(
            tenant,
            &order.session_id,
            OrderStatus::Registered,
            Some(&order_id),
            order.redirect_url.as_deref(),
            None,
        )
        .await
    {
        return (session, store_failure(&e));
    }
    match settle(
        service,
        tenant,
        GatewayKind::Przelewy24,
        &order,
        order_id,
        Utc::now(),
    )
    .await
    {
        Ok(true) => (session, Verdict::accepted("settled")),
        Ok(false) => (session, Verdict::replayed("already_settled")),
        Err(e) => (session, store_failure(&e)),
    }
}

async fn payu_notify(
    State(service): State<Arc<PaymentService>>,
    Path((teryt, merchant)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some((tenant, m)) = merchant_of(&service, &teryt, &merchant) else {
        return StatusCode::NOT_FOUND;
    };
    let Some(client) = m.payu else {
        return StatusCode::NOT_FOUND;
    };
    let n = Incoming {
        service: &service,
        tenant: &tenant,
        gateway: GatewayKind::Payu,
        merchant: &merchant,
        body: &body,
        headers: &headers,
    };
    let (session, verdict) = payu_handle(&n, &client).await;
    finish(&n, session, verdict).await
}

async fn payu_handle(
    n: &Incoming<'_>,
    client: &gsko_payu::PayuClient,
) -> (Option<String>, Verdict) {
    let (service, tenant, merchant, headers, body) =
        (n.service, n.tenant, n.merchant, n.headers, n.body);
    use gsko_payu::{
        NotificationError as E, OrderStatus as PayuStatus, StoredOrder, VerifiedNotification,
    };
    let Some(signature) = headers
        .get("openpayu-signature")
        .or_else(|| headers.get("x-openpayu-signature"))
        .and_then(|v| v.to_str().ok())
    else {
        return (None, Verdict::rejected("missing_signature"));
    };
    // The extOrderId only to find the stored order; it is trusted once the signature is.
    let claimed = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["order"]["extOrderId"].as_str().map(str::to_owned));
    let order = match &claimed {
        Some(ext) => match service.store.order(tenant, ext).await {
            Ok(o) => o.filter(|o| o.gateway == "payu" && o.merchant == merchant),
            Err(e) => return (claimed.clone(), store_failure(&e)),
        },
        None => None,
    };
    let stored = order.as_ref().map(|o| StoredOrder {
        ext_order_id: o.session_id.clone(),
        order_id: o.gateway_ref.clone(),
        total_amount: o.amount.grosze().unsigned_abs(),
        currency: "PLN".into(),
        last_status: match o.status {
            OrderStatus::Paid => Some(PayuStatus::Completed),
            OrderStatus::Canceled => Some(PayuStatus::Canceled),
            _ => None,
        },
    });
    let session = claimed.clone();
    let verified = match client.verify_notification_with(body, signature, |_| stored) {
        Ok(v) => v,
        Err(e) if e.acknowledge() => return (session, Verdict::replayed("already_applied")),
        Err(E::BadSignature) => return (session, Verdict::rejected("bad_signature")),
        Err(E::DowngradedAlgorithm { .. }) => {
            return (session, Verdict::rejected("downgraded_algorithm"))
        }
        Err(E::MalformedHeader(_))
        | Err(E::UnknownAlgorithm(_))
        | Err(E::UnsupportedContent(_)) => {
            return (session, Verdict::rejected("malformed_signature"))
        }
        Err(E::MalformedBody(_)) => return (session, Verdict::rejected("malformed")),
        Err(E::UnknownOrder { .. }) => return (session, Verdict::rejected("unknown_session")),
        Err(
            e @ (E::AmountMismatch { .. } | E::CurrencyMismatch { .. } | E::OrderIdMismatch { .. }),
        ) => {
            let Some(order) = order else {
                return (session, Verdict::rejected("unknown_session"));
            };
            let (reason, code) = match e {
                E::OrderIdMismatch { .. } => (UnmatchedReason::Duplicate, "order_conflict"),
                E::CurrencyMismatch { .. } => {
                    (UnmatchedReason::AmountMismatch, "currency_mismatch")
                }
                _ => (UnmatchedReason::AmountMismatch, "amount_mismatch"),
            };
            let detail = format!("PayU notification: {e}");
            return match dispute(n, &order, reason, detail).await {
                Ok(()) => (session, Verdict::rejected(code)),
                Err(e) => (session, store_failure(&e)),
            };
        }
        Err(_) => return (session, Verdict::rejected("refused")),
    };
    let n = match verified {
        VerifiedNotification::Order(n) => n,
        // Refunds are started by an admin; their completion is audited here.
        VerifiedNotification::Refund(_) => return (session, Verdict::accepted("refund_status")),
    };
    let Some(order) = order else {
        return (session, Verdict::rejected("unknown_session"));
    };
    match n.status {
        PayuStatus::Completed => {
            let paid_at = n
                .receipt_time()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(Utc::now);
            match settle(
                service,
                tenant,
                GatewayKind::Payu,
                &order,
                n.order_id.clone(),
                paid_at,
            )
            .await
            {
                Ok(true) => (session, Verdict::accepted("settled")),
                Ok(false) => (session, Verdict::replayed("already_settled")),
                Err(e) => (session, store_failure(&e)),
            }
        }
        PayuStatus::Canceled => {
            match service
                .store
                .close_order(
                    tenant,
                    &order.session_id,
                    OrderStatus::Canceled,
                    "canceled at PayU",
                    &[],
                )
                .await
            {
                Ok(_) => (session, Verdict::accepted("canceled")),
                Err(e) => (session, store_failure(&e)),
            }
        }
        PayuStatus::WaitingForConfirmation => {
            // A POS without automatic collection: the payment is authorized and waits for the
            // merchant; GSKO takes it (PayU then notifies COMPLETED).
            match client.capture(&n.order_id).await {
                Ok(()) => (session, Verdict::accepted("captured")),
                Err(e) => {
                    tracing::warn!(tenant = %tenant, order = %order.session_id, error = %e, "PayU capture failed");
                    (session, Verdict::deferred("capture_failed"))
                }
            }
        }
        _ => (session, Verdict::accepted("status_noted")),
    }
}
