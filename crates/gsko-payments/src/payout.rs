//! Gateway payouts on the bank statement, reconciled against the gateway's own report of what
//! the payout settles (spec §1.8, §2.7, §4.5 point 2).
//!
//! A gateway does not pay each resident's payment into the municipality's account on its own:
//! Przelewy24 collects them and pays them out in numbered batches, so one credit on the MT940
//! statement is the net sum of a batch. The payments themselves were settled one by one from
//! the gateways' notifications ([`crate::notify`]); this step checks that the money for exactly
//! those payments arrived. [`reconcile_payouts`] takes the payouts that
//! [`crate::statement::import_statement`] found
//! ([`crate::statement::StatementReport::payouts`]) and, per payout:
//!
//! | payout | outcome | queued |
//! |---|---|---|
//! | P24, every transaction of the batch is a `paid` GSKO order of the same P24 account, with the same P24 `orderId` and amount, and the report's net total equals the payout | [`PayoutOutcome::Matched`] (with the payment ids it settles) | nothing |
//! | P24, anything else (a session GSKO does not know, an order not `paid`, another `orderId` or amount, a refund of an unknown session, a net total that differs) | [`PayoutOutcome::Mismatch`] naming every difference | one `payment.unmatched`, reason `payout_mismatch` |
//! | P24, no merchant account of the tenant knows the batch, or the report cannot be fetched after the client's bounded retries, or the reference is no batch id, or the tenant has no P24 account | [`PayoutOutcome::Unresolved`] | one `payment.unmatched`, reason `payout_mismatch` |
//! | PayU | [`PayoutOutcome::Unresolved`] ([`UnresolvedReason::PayuNotSupported`]) | one `payment.unmatched`, reason `payout_mismatch`, for reconciliation by hand |
//! | the store fails | [`PayoutOutcome::Unresolved`] ([`UnresolvedReason::Store`]) | nothing (it cannot be); logged as an error |
//!
//! # Why an unavailable report is queued for an admin, not retried later
//!
//! A statement file is imported once ([`crate::statement::run_inbox`] moves it to
//! `processed/` and does not hand it out again), so there is no "next run" that would try the
//! payout again. The P24 client already retries a failed `report/batch/details` call with
//! backoff ([`gsko_przelewy24::RetryPolicy`]); when that is exhausted, the payout goes to an
//! admin as `payment.unmatched` with the error in its detail. The unmatched entry's id is
//! stable ([`payout_id`]), so reconciling the same payout again (a re-imported file, a manual
//! rerun) does not list it twice.
//!
//! # Finding the batch id (what the spec knows and what it does not)
//!
//! The spec (§1.8) documents `GET /api/v1/report/batch/details?batch={batchId}` and that a
//! transaction's `batchId` names its payout, but **not** what P24 writes into the title of the
//! payout transfer (§6: neither gateway's payout title is documented). This module relies on
//! the bank connector's gateway rule ([`gsko_bank::IdentifyRules`], default
//! [`gsko_bank::identify::P24_TITLE`]): a credit from PayPro/Przelewy24 whose title holds
//! "batch / paczka / wypłata (nr) DIGITS" is a payout and DIGITS, the rule's `reference` group,
//! is the batch id. [`PayoutLine::reference`] is exactly that group, so the batch id is the
//! whole reference read as an integer; a reference that is not one (a rule configured for
//! another title format) leaves the payout [`UnresolvedReason::NoBatchId`]. Adjust the rule,
//! not this module, once real P24 payout titles are seen.
//!
//! # Which merchant account
//!
//! A tenant may have several P24 accounts (one per merchant: taxes, waste fee). The batch id
//! does not say whose it is, so every merchant account with a P24 client is asked in turn (in
//! name order) until one answers with a report that lists anything; a 404 or an empty report
//! means "not ours". Orders are then expected to belong to that P24 account (the same P24
//! `merchantId`, whichever merchant name GSKO gave it).
//!
//! # What is compared
//!
//! - Per transaction (`sessionId` = GSKO's order): the order exists, is a Przelewy24 order of the
//!   same P24 account, is `paid`, its stored P24 `orderId` equals the report's, its amount
//!   equals the report's `amount` (what the payer paid), the report's `status`, when given, is
//!   1 or 2 (paid), and the session appears once.
//! - Refunds listed in the batch: their session must be a P24 order GSKO knows (refunds are
//!   started by an admin, see [`crate::notify`]); they lower the net total.
//! - The payout's amount against [`gsko_przelewy24::BatchReport::net_settled`]: settled
//!   amounts (after commission; the amount when a transaction has none) minus refunds. A
//!   report with more pages than the first (`pageInformation`) is read only as far as its first
//!   page, so its total differs and the payout is a mismatch rather than a wrong match.
//!
//! [`PayoutReconciliation::settled_payments`] lists the payment ids (`p24-<sessionId>`) of the
//! batch's transactions that matched: all of them for a matched payout, the good ones for a
//! mismatch.
//!
//! # PayU
//!
//! PayU pays out per statement (`GET /api/v2_1/reports/{reportId}`, spec §2.7), a zip whose
//! content format was not found, and the PayU connector does not implement it. A PayU payout is
//! therefore [`UnresolvedReason::PayuNotSupported`] and is queued as `payment.unmatched` so an
//! admin reconciles it by hand against PayU's merchant panel.
//!
//! # Privacy
//!
//! Logs carry the tenant, gateway, batch id, counts and the outcome, never amounts, session
//! ids or names. The unmatched entry's detail (and [`MismatchReason`]'s `Display`) does name
//! sessions and amounts, for the admin: store it, do not log it.

use crate::statement::PayoutLine;
use crate::{gateway_payment_id, GatewayKind, PaymentService};
use gsko_bank::Gateway;
use gsko_model::{
    Amount, Event, EventData, PaymentChannel, Teryt, UnmatchedPayment, UnmatchedReason,
};
use gsko_przelewy24::{BatchReport, P24Client, P24Error};
use gsko_store::{OrderStatus, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt;

/// What became of one payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayoutReconciliation {
    pub gateway: Gateway,
    /// The payout reference from the statement: for Przelewy24 the batch id.
    pub batch: String,
    pub payout_amount: Amount,
    /// `file:line` of the payout on the statement.
    pub source: String,
    /// The payout's stable id ([`payout_id`]), the payment id of its unmatched entry.
    pub payout_id: String,
    /// The merchant account whose gateway report lists the payout, once found.
    pub merchant: Option<String>,
    /// Transactions in the gateway's report (0 when there is none).
    pub transactions: usize,
    /// Payment ids (`p24-<sessionId>`) of the report's transactions that match GSKO's paid
    /// orders.
    pub settled_payments: Vec<String>,
    pub outcome: PayoutOutcome,
    /// Whether a `payment.unmatched` entry was queued for an admin.
    pub unmatched_queued: bool,
}

/// The verdict on one payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PayoutOutcome {
    /// The payout is exactly the report's net total and every payment in it is GSKO's.
    Matched,
    /// The report was read and something differs.
    Mismatch { reasons: Vec<MismatchReason> },
    /// The payout could not be checked.
    Unresolved { reason: UnresolvedReason },
}

impl PayoutOutcome {
    /// `matched`, `mismatch` or `unresolved` (for logs and metrics).
    pub fn label(&self) -> &'static str {
        match self {
            PayoutOutcome::Matched => "matched",
            PayoutOutcome::Mismatch { .. } => "mismatch",
            PayoutOutcome::Unresolved { .. } => "unresolved",
        }
    }
}

/// One difference between the payout, the gateway's report and GSKO's orders. `Display` names
/// sessions and amounts: for the admin, not for logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum MismatchReason {
    /// The report's net total is not the payout's amount (`report` is `None` when an item of the
    /// report has no amount).
    TotalDiffers { payout: Amount, report: Option<i64> },
    /// A transaction without a `sessionId`.
    MissingSession { order_id: Option<i64> },
    /// The same session twice in one batch.
    DuplicateSession { session_id: String },
    /// GSKO has no order with this session id.
    UnknownSession {
        session_id: String,
        order_id: Option<i64>,
        amount: Option<i64>,
    },
    /// The order is not a Przelewy24 order of the P24 account that paid the batch out.
    OtherAccount {
        session_id: String,
        gateway: String,
        merchant: String,
    },
    /// The order is not `paid` in GSKO.
    NotPaid {
        session_id: String,
        status: OrderStatus,
    },
    /// P24 reports the transaction as not paid (status 0) or returned (3).
    GatewayStatus { session_id: String, status: i64 },
    /// The P24 `orderId` differs from the one that paid the order.
    OrderIdDiffers {
        session_id: String,
        expected: Option<String>,
        reported: Option<i64>,
    },
    /// The paid amount differs from the order's.
    AmountDiffers {
        session_id: String,
        expected: Amount,
        reported: Option<i64>,
    },
    /// A refund in the batch for a session GSKO does not know as a P24 order.
    UnknownRefund {
        session_id: Option<String>,
        amount: Option<i64>,
    },
}

fn grosze(g: Option<i64>) -> String {
    match g {
        Some(g) if g < 0 => format!("-{}", Amount::from_grosze(-g).unwrap_or(Amount::ZERO)),
        Some(g) => format!("{}", Amount::from_grosze(g).unwrap_or(Amount::ZERO)),
        None => "none".into(),
    }
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into())
}

impl fmt::Display for MismatchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MismatchReason as M;
        match self {
            M::TotalDiffers { payout, report } => write!(
                f,
                "the payout is {payout} zł but the report's net total is {} zł",
                grosze(*report)
            ),
            M::MissingSession { order_id } => {
                write!(f, "orderId {}: the report gives no sessionId", opt(order_id))
            }
            M::DuplicateSession { session_id } => {
                write!(f, "session {session_id}: listed more than once")
            }
            M::UnknownSession {
                session_id,
                order_id,
                amount,
            } => write!(
                f,
                "session {session_id} (orderId {}, {} zł): no such order in GSKO",
                opt(order_id),
                grosze(*amount)
            ),
            M::OtherAccount {
                session_id,
                gateway,
                merchant,
            } => write!(
                f,
                "session {session_id}: GSKO's order is a {gateway} order of merchant account {merchant}, not of the P24 account that paid the batch"
            ),
            M::NotPaid { session_id, status } => write!(
                f,
                "session {session_id}: GSKO's order is {}, not paid",
                status.as_str()
            ),
            M::GatewayStatus { session_id, status } => write!(
                f,
                "session {session_id}: P24 reports status {status} (not paid)"
            ),
            M::OrderIdDiffers {
                session_id,
                expected,
                reported,
            } => write!(
                f,
                "session {session_id}: P24 orderId {} in the report, {} in GSKO",
                opt(reported),
                opt(expected)
            ),
            M::AmountDiffers {
                session_id,
                expected,
                reported,
            } => write!(
                f,
                "session {session_id}: {} zł in the report, {expected} zł in GSKO",
                grosze(*reported)
            ),
            M::UnknownRefund { session_id, amount } => write!(
                f,
                "refund of {} zł for session {}: no such P24 order in GSKO",
                grosze(*amount),
                opt(session_id)
            ),
        }
    }
}

/// Why a payout could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum UnresolvedReason {
    /// PayU statements are not implemented (spec §2.7): reconcile by hand.
    PayuNotSupported,
    /// The tenant has no merchant account with a Przelewy24 client.
    NotConfigured,
    /// The payout reference is not a P24 batch id.
    NoBatchId { reference: String },
    /// No merchant account's report knows the batch.
    UnknownBatch { merchants: Vec<String> },
    /// The report could not be fetched (after the client's retries). `error` carries no
    /// personal data.
    ReportUnavailable { merchant: String, error: String },
    /// GSKO's store failed; nothing could be queued.
    Store { error: String },
}

impl UnresolvedReason {
    /// A short code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            UnresolvedReason::PayuNotSupported => "payu_not_supported",
            UnresolvedReason::NotConfigured => "not_configured",
            UnresolvedReason::NoBatchId { .. } => "no_batch_id",
            UnresolvedReason::UnknownBatch { .. } => "unknown_batch",
            UnresolvedReason::ReportUnavailable { .. } => "report_unavailable",
            UnresolvedReason::Store { .. } => "store_failed",
        }
    }
}

impl fmt::Display for UnresolvedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnresolvedReason::PayuNotSupported => f.write_str(
                "PayU payout statements are not supported by GSKO (their format is not documented); reconcile this payout by hand against PayU's merchant panel",
            ),
            UnresolvedReason::NotConfigured => {
                f.write_str("the tenant has no Przelewy24 merchant account configured in GSKO")
            }
            UnresolvedReason::NoBatchId { reference } => write!(
                f,
                "the payout reference {reference:?} is not a Przelewy24 batch id"
            ),
            UnresolvedReason::UnknownBatch { merchants } => write!(
                f,
                "no Przelewy24 account of the tenant knows this batch (asked: {})",
                merchants.join(", ")
            ),
            UnresolvedReason::ReportUnavailable { merchant, error } => write!(
                f,
                "the Przelewy24 batch report could not be fetched for merchant account {merchant}: {error}"
            ),
            UnresolvedReason::Store { error } => write!(f, "GSKO's store failed: {error}"),
        }
    }
}

/// The stable id of a payout: `payout-` + 24 hex digits of SHA-256 over its gateway,
/// reference, value date, amount and `file:line` (31 characters, like the other payment ids
/// short enough for a 35-character reference). The same payout read again from the same file
/// gets the same id.
pub fn payout_id(payout: &PayoutLine) -> String {
    let mut h = Sha256::new();
    h.update(b"gsko-payout/");
    h.update(gateway_name(payout.gateway).as_bytes());
    h.update(b"/");
    h.update(payout.reference.as_bytes());
    h.update(b"/");
    h.update(payout.value_date.to_string().as_bytes());
    h.update(b"/");
    h.update(payout.amount.grosze().to_string().as_bytes());
    h.update(b"/");
    h.update(payout.source.as_bytes());
    let hex = hex::encode(h.finalize());
    format!("payout-{}", &hex[..24])
}

fn gateway_name(g: Gateway) -> &'static str {
    match g {
        Gateway::Przelewy24 => "przelewy24",
        Gateway::PayU => "payu",
    }
}

fn gateway_label(g: Gateway) -> &'static str {
    match g {
        Gateway::Przelewy24 => "Przelewy24",
        Gateway::PayU => "PayU",
    }
}

/// Reconciles the payouts of one statement of `tenant` (see the module docs). One result per
/// payout, in order. Never fails as a whole: a payout that cannot be checked is
/// [`PayoutOutcome::Unresolved`].
pub async fn reconcile_payouts(
    service: &PaymentService,
    tenant: &Teryt,
    payouts: &[PayoutLine],
) -> Vec<PayoutReconciliation> {
    let mut results = Vec::with_capacity(payouts.len());
    for payout in payouts {
        let r = reconcile_one(service, tenant, payout).await;
        match &r.outcome {
            PayoutOutcome::Unresolved {
                reason: reason @ UnresolvedReason::Store { .. },
            } => {
                tracing::error!(tenant = %tenant, gateway = gateway_name(r.gateway), batch = %r.batch, reason = reason.code(), "gateway payout not reconciled: the store failed");
            }
            PayoutOutcome::Unresolved { reason } => {
                tracing::warn!(tenant = %tenant, gateway = gateway_name(r.gateway), batch = %r.batch, reason = reason.code(), queued = r.unmatched_queued, "gateway payout not reconciled; left to an admin");
            }
            PayoutOutcome::Mismatch { reasons } => {
                tracing::warn!(tenant = %tenant, gateway = gateway_name(r.gateway), batch = %r.batch, transactions = r.transactions, matched = r.settled_payments.len(), differences = reasons.len(), queued = r.unmatched_queued, "gateway payout does not match its report; left to an admin");
            }
            PayoutOutcome::Matched => {
                tracing::info!(tenant = %tenant, gateway = gateway_name(r.gateway), batch = %r.batch, transactions = r.transactions, matched = r.settled_payments.len(), "gateway payout matched");
            }
        }
        results.push(r);
    }
    results
}

async fn reconcile_one(
    service: &PaymentService,
    tenant: &Teryt,
    payout: &PayoutLine,
) -> PayoutReconciliation {
    let mut r = PayoutReconciliation {
        gateway: payout.gateway,
        batch: payout.reference.clone(),
        payout_amount: payout.amount,
        source: payout.source.clone(),
        payout_id: payout_id(payout),
        merchant: None,
        transactions: 0,
        settled_payments: Vec::new(),
        outcome: PayoutOutcome::Matched,
        unmatched_queued: false,
    };
    let outcome = match payout.gateway {
        Gateway::PayU => PayoutOutcome::Unresolved {
            reason: UnresolvedReason::PayuNotSupported,
        },
        Gateway::Przelewy24 => p24(service, tenant, payout, &mut r).await,
    };
    r.outcome = outcome;
    let detail = match &r.outcome {
        PayoutOutcome::Matched => return r,
        PayoutOutcome::Unresolved {
            reason: UnresolvedReason::Store { .. },
        } => return r,
        PayoutOutcome::Unresolved { reason } => format!(
            "{} payout {} of {} zł ({}) could not be reconciled: {reason}.",
            gateway_label(payout.gateway),
            payout.reference,
            payout.amount,
            payout.source
        ),
        PayoutOutcome::Mismatch { reasons } => {
            let list: Vec<String> = reasons.iter().map(|m| m.to_string()).collect();
            format!(
                "{} payout batch {} of {} zł ({}) does not match the batch report of merchant account {}: {}.",
                gateway_label(payout.gateway),
                payout.reference,
                payout.amount,
                payout.source,
                r.merchant.as_deref().unwrap_or("?"),
                list.join("; ")
            )
        }
    };
    match queue_unmatched(service, tenant, payout, &r.payout_id, detail).await {
        Ok(()) => r.unmatched_queued = true,
        Err(e) => {
            r.outcome = PayoutOutcome::Unresolved {
                reason: UnresolvedReason::Store {
                    error: e.to_string(),
                },
            }
        }
    }
    r
}

/// The P24 account identity of a merchant (two merchant names may share one P24 account).
fn p24_account(client: &P24Client) -> i64 {
    client.config().merchant_id
}

async fn p24(
    service: &PaymentService,
    tenant: &Teryt,
    payout: &PayoutLine,
    r: &mut PayoutReconciliation,
) -> PayoutOutcome {
    let unresolved = |reason| PayoutOutcome::Unresolved { reason };
    let Ok(batch) = payout.reference.trim().parse::<i64>() else {
        return unresolved(UnresolvedReason::NoBatchId {
            reference: payout.reference.clone(),
        });
    };
    let clients: Vec<(&str, &P24Client)> = service
        .tenant(tenant)
        .map(|t| {
            t.merchants
                .values()
                .filter_map(|m| m.przelewy24.as_ref().map(|c| (m.name.as_str(), c)))
                .collect()
        })
        .unwrap_or_default();
    if clients.is_empty() {
        return unresolved(UnresolvedReason::NotConfigured);
    }
    // Ask each P24 account once (merchant names sharing one account share its batches).
    let mut asked_accounts = HashSet::new();
    let mut asked = Vec::new();
    let mut failure: Option<(String, P24Error)> = None;
    let mut found: Option<(&str, &P24Client, BatchReport)> = None;
    for (name, client) in &clients {
        if !asked_accounts.insert(p24_account(client)) {
            continue;
        }
        asked.push((*name).to_owned());
        match client.batch_details(batch).await {
            Ok(report) if report.transactions.is_empty() && report.refunds.is_empty() => {}
            Ok(report) => {
                found = Some((name, client, report));
                break;
            }
            Err(P24Error::NotFound(_)) => {}
            Err(e) => {
                failure.get_or_insert(((*name).to_owned(), e));
            }
        }
    }
    let Some((merchant, client, report)) = found else {
        return match failure {
            Some((merchant, e)) => unresolved(UnresolvedReason::ReportUnavailable {
                merchant,
                error: e.to_string(),
            }),
            None => unresolved(UnresolvedReason::UnknownBatch { merchants: asked }),
        };
    };
    r.merchant = Some(merchant.to_owned());
    r.transactions = report.transactions.len();
    let account = p24_account(client);
    let same_account = |order_merchant: &str| {
        clients
            .iter()
            .any(|(n, c)| *n == order_merchant && p24_account(c) == account)
    };

    let mut reasons = Vec::new();
    let mut seen = HashSet::new();
    for t in &report.transactions {
        let Some(session) = t.session_id.as_deref() else {
            reasons.push(MismatchReason::MissingSession {
                order_id: t.order_id,
            });
            continue;
        };
        if !seen.insert(session) {
            reasons.push(MismatchReason::DuplicateSession {
                session_id: session.to_owned(),
            });
            continue;
        }
        let before = reasons.len();
        if let Some(status) = t.status.filter(|s| !matches!(s, 1 | 2)) {
            reasons.push(MismatchReason::GatewayStatus {
                session_id: session.to_owned(),
                status,
            });
        }
        let order = match service.store().order(tenant, session).await {
            Ok(o) => o,
            Err(e) => return store_failed(&e),
        };
        let Some(order) = order else {
            reasons.push(MismatchReason::UnknownSession {
                session_id: session.to_owned(),
                order_id: t.order_id,
                amount: t.amount,
            });
            continue;
        };
        if order.gateway != GatewayKind::Przelewy24.as_str() || !same_account(&order.merchant) {
            reasons.push(MismatchReason::OtherAccount {
                session_id: session.to_owned(),
                gateway: order.gateway.clone(),
                merchant: order.merchant.clone(),
            });
        }
        if order.status != OrderStatus::Paid {
            reasons.push(MismatchReason::NotPaid {
                session_id: session.to_owned(),
                status: order.status,
            });
        }
        let stored_order_id = order
            .gateway_ref
            .as_deref()
            .and_then(|g| g.parse::<i64>().ok());
        if order.status == OrderStatus::Paid
            && (stored_order_id.is_none() || stored_order_id != t.order_id)
        {
            reasons.push(MismatchReason::OrderIdDiffers {
                session_id: session.to_owned(),
                expected: order.gateway_ref.clone(),
                reported: t.order_id,
            });
        }
        if t.amount != Some(order.amount.grosze()) {
            reasons.push(MismatchReason::AmountDiffers {
                session_id: session.to_owned(),
                expected: order.amount,
                reported: t.amount,
            });
        }
        if reasons.len() == before {
            r.settled_payments
                .push(gateway_payment_id(GatewayKind::Przelewy24, session));
        }
    }
    for refund in &report.refunds {
        let known = match refund.session_id.as_deref() {
            Some(s) => match service.store().order(tenant, s).await {
                Ok(o) => o.is_some_and(|o| o.gateway == GatewayKind::Przelewy24.as_str()),
                Err(e) => return store_failed(&e),
            },
            None => false,
        };
        if !known {
            reasons.push(MismatchReason::UnknownRefund {
                session_id: refund.session_id.clone(),
                amount: refund.amount,
            });
        }
    }
    let net = report.net_settled();
    if net != Some(payout.amount.grosze()) {
        reasons.push(MismatchReason::TotalDiffers {
            payout: payout.amount,
            report: net,
        });
    }
    if reasons.is_empty() {
        PayoutOutcome::Matched
    } else {
        PayoutOutcome::Mismatch { reasons }
    }
}

fn store_failed(e: &StoreError) -> PayoutOutcome {
    PayoutOutcome::Unresolved {
        reason: UnresolvedReason::Store {
            error: e.to_string(),
        },
    }
}

/// Queues the payout as `payment.unmatched` (reason `payout_mismatch`) and wakes the relay.
async fn queue_unmatched(
    service: &PaymentService,
    tenant: &Teryt,
    payout: &PayoutLine,
    id: &str,
    detail: String,
) -> Result<(), StoreError> {
    let channel = match payout.gateway {
        Gateway::Przelewy24 => PaymentChannel::Przelewy24,
        Gateway::PayU => PaymentChannel::Payu,
    };
    let data = UnmatchedPayment {
        payment_id: id.to_owned(),
        channel,
        amount: payout.amount,
        paid_on: Some(payout.value_date),
        reason: UnmatchedReason::PayoutMismatch,
        detail,
        source: payout.source.clone(),
        external_ref: Some(payout.reference.clone()),
        virtual_account: None,
        title: None,
        raw: serde_json::to_string(payout).unwrap_or_default(),
    };
    let event = Event::new(
        format!("/gsko/payments/{tenant}"),
        tenant.clone(),
        1,
        EventData::PaymentUnmatched(data),
    )
    .with_stable_id(id)
    .with_correlation(id.to_owned());
    service.store().enqueue(&[event]).await?;
    service.outbox_wake().notify_one();
    Ok(())
}
