//! The payment service: what happens between "the resident chose what to pay" and "the ledger
//! booked it".
//!
//! - [`PaymentService::initiate`]: a basket becomes one order per merchant account (taxes and
//!   the waste fee often go to different accounts). Orders are stored before any gateway is
//!   called and keyed by the client's idempotency key, so a retried request never creates a
//!   second order; an order the gateway did not take stays `created` and is registered again
//!   on the next attempt.
//! - [`notify`]: the gateways' notification endpoints. Every notification is checked (P24
//!   `sign`, PayU `OpenPayu-Signature` over the raw bytes, amount and currency against the
//!   stored order), audited whatever its fate, and — for P24 — confirmed with the mandatory
//!   `transaction/verify` before anything is settled.
//! - Settlement writes `payment.settled` and the `payment.book` command into the outbox in the
//!   same transaction that marks the order paid; [`relay`] publishes the outbox.
//! - [`statement`]: bank statements (MT940) matched to tax accounts by virtual account.
//!
//! The service stands on the store and the gateway connectors; the query service calls
//! `initiate`, the daemon mounts [`notify::routes`] and runs [`relay::run`].

use chrono::Utc;
use gsko_config::{Config, TenantConfig};
use gsko_model::{
    Amount, Event, EventData, LevyKind, Payment, PaymentChannel, PaymentItem, Pesel, Teryt,
};
use gsko_payu::{PayuClient, PayuConfig};
use gsko_przelewy24::{P24Client, P24Config};
use gsko_store::{
    BasketOutcome, BasketRecord, NewBasket, NewOrder, OrderRecord, OrderStatus, PaymentStore,
    StoreError,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub mod notify;
pub mod payout;
pub mod relay;
pub mod statement;

/// A payment gateway GSKO speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayKind {
    Przelewy24,
    Payu,
}

impl GatewayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Przelewy24 => "przelewy24",
            GatewayKind::Payu => "payu",
        }
    }

    pub fn parse(s: &str) -> Option<GatewayKind> {
        match s {
            "przelewy24" => Some(GatewayKind::Przelewy24),
            "payu" => Some(GatewayKind::Payu),
            _ => None,
        }
    }

    pub fn channel(self) -> PaymentChannel {
        match self {
            GatewayKind::Przelewy24 => PaymentChannel::Przelewy24,
            GatewayKind::Payu => PaymentChannel::Payu,
        }
    }

    /// Prefix of the payment ids of this gateway's payments (`p24-<sessionId>`).
    fn payment_prefix(self) -> &'static str {
        match self {
            GatewayKind::Przelewy24 => "p24-",
            GatewayKind::Payu => "payu-",
        }
    }
}

/// One merchant account of a tenant and the gateway clients registered for it.
#[derive(Clone)]
pub struct Merchant {
    pub name: String,
    pub levies: Vec<LevyKind>,
    pub przelewy24: Option<P24Client>,
    pub payu: Option<PayuClient>,
}

impl Merchant {
    fn gateways(&self) -> Vec<GatewayKind> {
        let mut g = Vec::new();
        if self.przelewy24.is_some() {
            g.push(GatewayKind::Przelewy24);
        }
        if self.payu.is_some() {
            g.push(GatewayKind::Payu);
        }
        g
    }
}

/// A tenant's payment settings.
#[derive(Clone)]
pub struct TenantPayments {
    pub name: String,
    pub return_url: String,
    pub allowed_return_urls: Vec<String>,
    pub merchants: BTreeMap<String, Merchant>,
}

impl TenantPayments {
    fn merchant_for(&self, levy: LevyKind) -> Option<&Merchant> {
        self.merchants.values().find(|m| m.levies.contains(&levy))
    }
}

/// Why a basket could not be turned into orders.
#[derive(Debug, thiserror::Error)]
pub enum InitiateError {
    #[error("online payments are not configured for this tenant")]
    NotConfigured,
    #[error("the basket is empty")]
    EmptyBasket,
    #[error("no merchant account of this tenant collects {levy} (liability {liability_id})")]
    NoMerchant { levy: String, liability_id: String },
    #[error("merchant account {merchant} does not take payments through {gateway}")]
    GatewayNotOffered { merchant: String, gateway: String },
    #[error("return_url is not one of the tenant's allowed return addresses")]
    ReturnUrlNotAllowed,
    #[error("a payer e-mail address is needed for {gateway}")]
    EmailRequired { gateway: String },
    #[error("the idempotency key was already used for a different basket ({basket_id})")]
    KeyReused { basket_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One thing the resident pays for, resolved by the query service against the view: which
/// account and levy it belongs to and how much is due for it today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasketLine {
    pub account_id: String,
    pub levy: LevyKind,
    pub liability_id: String,
    pub installment_seq: Option<u8>,
    pub amount: Amount,
    /// Short text for the gateway's order line (no personal data): e.g. "property 2026 / 2".
    pub label: String,
}

/// A resident's request to pay, as the query service hands it over.
#[derive(Debug, Clone)]
pub struct BasketRequest {
    pub tenant: Teryt,
    /// The portal's name from configuration.
    pub client: String,
    pub idempotency_key: String,
    pub pesel: Pesel,
    /// What the portal asked for, as it asked: (liability, installment or `None` for the whole
    /// liability). The idempotency key is tied to this, not to today's amounts.
    pub requested: Vec<(String, Option<u8>)>,
    pub lines: Vec<BasketLine>,
    pub gateway: Option<GatewayKind>,
    pub return_url: Option<String>,
    /// Payer's e-mail (P24 requires one); personal data, never logged.
    pub email: Option<String>,
    /// Payer's IP as the portal saw it (PayU requires one).
    pub customer_ip: Option<String>,
}

/// One order of a basket, as the portal sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    pub order_id: String,
    pub merchant: String,
    pub gateway: String,
    pub amount: Amount,
    pub status: OrderStatus,
    /// Where to send the resident to pay; present once the gateway accepted the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// Why the order is not payable yet (e.g. the gateway did not answer), when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub items: Vec<PaymentItem>,
}

impl From<&OrderRecord> for OrderView {
    fn from(o: &OrderRecord) -> Self {
        OrderView {
            order_id: o.session_id.clone(),
            merchant: o.merchant.clone(),
            gateway: o.gateway.clone(),
            amount: o.amount,
            status: o.status,
            redirect_url: o.redirect_url.clone(),
            detail: o.status_detail.clone(),
            items: o.items.clone(),
        }
    }
}

/// A basket and its orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BasketView {
    pub basket_id: String,
    pub tenant: String,
    pub created_at: chrono::DateTime<Utc>,
    /// False when the same idempotency key was sent before and this is the stored basket.
    pub created: bool,
    /// True when every order that is still open has a redirect URL.
    pub ready: bool,
    pub total: Amount,
    pub orders: Vec<OrderView>,
}

impl BasketView {
    fn from_record(b: &BasketRecord, created: bool) -> BasketView {
        let total = b.orders.iter().map(|o| o.amount.grosze()).sum::<i64>();
        BasketView {
            basket_id: b.basket_id.clone(),
            tenant: b.tenant.to_string(),
            created_at: b.created_at,
            created,
            ready: b.orders.iter().all(|o| o.status != OrderStatus::Created),
            total: Amount::from_grosze(total).unwrap_or(Amount::ZERO),
            orders: b.orders.iter().map(OrderView::from).collect(),
        }
    }
}

/// The payment service shared by the query service (initiation) and the notification
/// endpoints.
pub struct PaymentService {
    store: Arc<dyn PaymentStore>,
    tenants: BTreeMap<Teryt, TenantPayments>,
    /// Base URL the gateways reach GSKO at (notification URLs are built from it).
    public_url: String,
    /// Wakes the outbox relay when something was queued.
    outbox_wake: Arc<tokio::sync::Notify>,
}

impl PaymentService {
    pub fn new(
        store: Arc<dyn PaymentStore>,
        tenants: BTreeMap<Teryt, TenantPayments>,
        public_url: impl Into<String>,
    ) -> Self {
        PaymentService {
            store,
            tenants,
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Builds the gateway clients of every tenant that has a `[payments]` section.
    pub fn from_config(
        store: Arc<dyn PaymentStore>,
        cfg: &Config,
        public_url: impl Into<String>,
    ) -> Result<Self, String> {
        let mut tenants = BTreeMap::new();
        for (teryt, (file, t)) in &cfg.tenants {
            if let Some(p) = tenant_payments(t).map_err(|e| format!("{}: {e}", file.display()))? {
                tenants.insert(teryt.clone(), p);
            }
        }
        Ok(PaymentService::new(store, tenants, public_url))
    }

    pub fn store(&self) -> &Arc<dyn PaymentStore> {
        &self.store
    }

    pub fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.outbox_wake.clone()
    }

    pub fn tenant(&self, t: &Teryt) -> Option<&TenantPayments> {
        self.tenants.get(t)
    }

    pub fn tenants(&self) -> impl Iterator<Item = &Teryt> {
        self.tenants.keys()
    }

    /// The URL P24 posts status notifications of this merchant to.
    pub fn p24_status_url(&self, tenant: &Teryt, merchant: &str) -> String {
        format!(
            "{}/gateway/przelewy24/{tenant}/{merchant}/status",
            self.public_url
        )
    }

    /// The URL PayU posts notifications of this merchant to.
    pub fn payu_notify_url(&self, tenant: &Teryt, merchant: &str) -> String {
        format!(
            "{}/gateway/payu/{tenant}/{merchant}/notify",
            self.public_url
        )
    }

    /// Turns a basket into orders (stored first), then registers each order that is not yet
    /// registered with its gateway. Calling it again with the same idempotency key returns the
    /// same basket and retries only the orders the gateway has not taken.
    pub async fn initiate(&self, req: BasketRequest) -> Result<BasketView, InitiateError> {
        let tenant = self
            .tenants
            .get(&req.tenant)
            .ok_or(InitiateError::NotConfigured)?;
        if req.lines.is_empty() {
            return Err(InitiateError::EmptyBasket);
        }
        let return_url = return_url(tenant, &req)?;
        // One order per merchant account, lines in the order the resident listed them.
        let mut groups: BTreeMap<String, (GatewayKind, Vec<&BasketLine>)> = BTreeMap::new();
        for line in &req.lines {
            let merchant =
                tenant
                    .merchant_for(line.levy)
                    .ok_or_else(|| InitiateError::NoMerchant {
                        levy: line.levy.as_str().to_owned(),
                        liability_id: line.liability_id.clone(),
                    })?;
            let offered = merchant.gateways();
            let gateway = match req.gateway {
                Some(g) if offered.contains(&g) => g,
                Some(g) => {
                    return Err(InitiateError::GatewayNotOffered {
                        merchant: merchant.name.clone(),
                        gateway: g.as_str().to_owned(),
                    })
                }
                None => offered[0],
            };
            if gateway == GatewayKind::Przelewy24 && req.email.is_none() {
                return Err(InitiateError::EmailRequired {
                    gateway: gateway.as_str().to_owned(),
                });
            }
            groups
                .entry(merchant.name.clone())
                .or_insert((gateway, Vec::new()))
                .1
                .push(line);
        }
        let basket_id = new_id();
        let orders = groups
            .into_iter()
            .map(|(merchant, (gateway, lines))| {
                let total: i64 = lines.iter().map(|l| l.amount.grosze()).sum();
                let labels: Vec<&str> = lines.iter().map(|l| l.label.as_str()).collect();
                NewOrder {
                    session_id: new_id(),
                    merchant,
                    gateway: gateway.as_str().to_owned(),
                    amount: Amount::from_grosze(total).unwrap_or(Amount::ZERO),
                    description: truncate(&format!("{}: {}", tenant.name, labels.join(", ")), 200),
                    items: lines
                        .iter()
                        .map(|l| PaymentItem {
                            account_id: l.account_id.clone(),
                            liability_id: Some(l.liability_id.clone()),
                            installment_seq: l.installment_seq,
                            amount: l.amount,
                        })
                        .collect(),
                }
            })
            .collect();
        let basket = NewBasket {
            tenant: req.tenant.clone(),
            basket_id: basket_id.clone(),
            client: req.client.clone(),
            idempotency_key: req.idempotency_key.clone(),
            request_hash: request_hash(&req, &return_url),
            resident_ref: resident_ref(&req.tenant, &req.pesel),
            orders,
        };
        let (record, created) = match self.store.create_basket(&basket).await? {
            BasketOutcome::Created(b) => (b, true),
            BasketOutcome::Existing(b) => (b, false),
            BasketOutcome::KeyReused { basket_id } => {
                return Err(InitiateError::KeyReused { basket_id })
            }
        };
        self.register_pending(tenant, &req, return_url, record, created)
            .await
    }

    /// The basket this client already stored under the request's idempotency key, brought up
    /// to date (orders the gateway did not take are registered again), or `None` when the key
    /// is new. Asked before the amounts are worked out, so a retry after the resident paid
    /// still gets its basket instead of "nothing is due". `KeyReused` when the key was used
    /// for another request.
    pub async fn existing(&self, req: &BasketRequest) -> Result<Option<BasketView>, InitiateError> {
        let tenant = self
            .tenants
            .get(&req.tenant)
            .ok_or(InitiateError::NotConfigured)?;
        let return_url = return_url(tenant, req)?;
        let Some(record) = self
            .store
            .basket_by_key(&req.tenant, &req.client, &req.idempotency_key)
            .await?
        else {
            return Ok(None);
        };
        if record.request_hash != request_hash(req, &return_url) {
            return Err(InitiateError::KeyReused {
                basket_id: record.basket_id,
            });
        }
        self.register_pending(tenant, req, return_url, record, false)
            .await
            .map(Some)
    }

    /// Registers the basket's orders the gateway has not taken yet and answers the basket as
    /// it then stands.
    async fn register_pending(
        &self,
        tenant: &TenantPayments,
        req: &BasketRequest,
        return_url: String,
        record: BasketRecord,
        created: bool,
    ) -> Result<BasketView, InitiateError> {
        let ctx = RegisterContext {
            email: req.email.clone(),
            customer_ip: req.customer_ip.clone(),
            return_url,
        };
        for order in record
            .orders
            .iter()
            .filter(|o| o.status == OrderStatus::Created)
        {
            self.register(&req.tenant, tenant, order, &ctx).await?;
        }
        let now = self
            .store
            .basket(&req.tenant, &record.basket_id)
            .await?
            .unwrap_or(record);
        Ok(BasketView::from_record(&now, created))
    }

    /// The basket, when it exists and was made by this resident.
    pub async fn basket(
        &self,
        tenant: &Teryt,
        basket_id: &str,
        pesel: &Pesel,
    ) -> Result<Option<BasketView>, StoreError> {
        Ok(self
            .store
            .basket(tenant, basket_id)
            .await?
            .filter(|b| b.resident_ref == resident_ref(tenant, pesel))
            .map(|b| BasketView::from_record(&b, false)))
    }

    /// Registers one stored order with its gateway and records the outcome. Gateway failures
    /// are recorded on the order (which stays `created`), not returned: the basket answer
    /// shows them per order.
    async fn register(
        &self,
        teryt: &Teryt,
        tenant: &TenantPayments,
        order: &OrderRecord,
        ctx: &RegisterContext,
    ) -> Result<(), StoreError> {
        let Some(merchant) = tenant.merchants.get(&order.merchant) else {
            self.store
                .update_order(
                    teryt,
                    &order.session_id,
                    OrderStatus::Created,
                    None,
                    None,
                    Some("the merchant account is no longer configured"),
                )
                .await?;
            return Ok(());
        };
        let outcome = match GatewayKind::parse(&order.gateway) {
            Some(GatewayKind::Przelewy24) => match &merchant.przelewy24 {
                Some(client) => self.register_p24(teryt, client, order, ctx).await,
                None => Registration::Failed("Przelewy24 is no longer configured".into()),
            },
            Some(GatewayKind::Payu) => match &merchant.payu {
                Some(client) => self.register_payu(teryt, client, order, ctx).await,
                None => Registration::Failed("PayU is no longer configured".into()),
            },
            None => Registration::Failed("unknown gateway".into()),
        };
        match outcome {
            Registration::Registered {
                gateway_ref,
                redirect,
            } => {
                tracing::info!(tenant = %teryt, order = %order.session_id, gateway = %order.gateway, "order registered");
                self.store
                    .update_order(
                        teryt,
                        &order.session_id,
                        OrderStatus::Registered,
                        Some(&gateway_ref),
                        Some(&redirect),
                        None,
                    )
                    .await?;
            }
            Registration::Failed(detail) => {
                tracing::warn!(tenant = %teryt, order = %order.session_id, gateway = %order.gateway, %detail, "order not registered; it stays pending");
                self.store
                    .update_order(
                        teryt,
                        &order.session_id,
                        OrderStatus::Created,
                        None,
                        None,
                        Some(&detail),
                    )
                    .await?;
            }
            Registration::Lost(detail) => {
                tracing::warn!(tenant = %teryt, order = %order.session_id, gateway = %order.gateway, %detail, "order registration answer lost");
                self.store
                    .close_order(
                        teryt,
                        &order.session_id,
                        OrderStatus::Canceled,
                        &detail,
                        &[],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn register_p24(
        &self,
        teryt: &Teryt,
        client: &P24Client,
        order: &OrderRecord,
        ctx: &RegisterContext,
    ) -> Registration {
        let Some(email) = &ctx.email else {
            return Registration::Failed("a payer e-mail address is needed".into());
        };
        let mut r = gsko_przelewy24::RegisterOrder::new(
            order.session_id.clone(),
            order.amount.grosze(),
            order.description.clone(),
            email.clone(),
            ctx.return_url.clone(),
        );
        r.url_status = Some(self.p24_status_url(teryt, &order.merchant));
        match client.register(&r).await {
            Ok(reg) => Registration::Registered {
                gateway_ref: reg.token,
                redirect: reg.redirect_url,
            },
            Err(gsko_przelewy24::P24Error::SessionAlreadyRegistered { .. }) => Registration::Lost(
                "Przelewy24 took this order but its answer was lost; start a new payment".into(),
            ),
            Err(e) => Registration::Failed(format!("Przelewy24: {e}")),
        }
    }

    async fn register_payu(
        &self,
        teryt: &Teryt,
        client: &PayuClient,
        order: &OrderRecord,
        ctx: &RegisterContext,
    ) -> Registration {
        let o = gsko_payu::Order {
            ext_order_id: order.session_id.clone(),
            total_amount: order.amount.grosze().unsigned_abs(),
            currency: "PLN".into(),
            description: order.description.clone(),
            customer_ip: ctx
                .customer_ip
                .clone()
                .unwrap_or_else(|| "127.0.0.1".into()),
            notify_url: Some(self.payu_notify_url(teryt, &order.merchant)),
            continue_url: Some(ctx.return_url.clone()),
            buyer: ctx.email.as_ref().map(|e| gsko_payu::Buyer {
                email: Some(e.clone()),
                language: Some("pl".into()),
                ..Default::default()
            }),
            products: order
                .items
                .iter()
                .map(|i| gsko_payu::Product {
                    name: match (&i.liability_id, i.installment_seq) {
                        (Some(l), Some(s)) => format!("{l} / {s}"),
                        (Some(l), None) => l.clone(),
                        _ => i.account_id.clone(),
                    },
                    unit_price: i.amount.grosze().unsigned_abs(),
                    quantity: 1,
                })
                .collect(),
        };
        match client.create_order(&o).await {
            Ok(created) => Registration::Registered {
                gateway_ref: created.order_id,
                redirect: created.redirect_uri,
            },
            Err(gsko_payu::PayuError::OrderNotUnique { .. }) => Registration::Lost(
                "PayU took this order but its answer was lost; start a new payment".into(),
            ),
            Err(e) => Registration::Failed(format!("PayU: {e}")),
        }
    }

    /// `payment.settled` and `payment.book` for a payment, with ids derived from the payment id
    /// so a repeated settlement is recognisable downstream.
    pub fn settlement_messages(tenant: &Teryt, payment: &Payment) -> Vec<Event> {
        let source = format!("/gsko/payments/{tenant}");
        [
            EventData::PaymentSettled(payment.clone()),
            EventData::PaymentBook(payment.clone()),
        ]
        .into_iter()
        .map(|data| {
            Event::new(source.clone(), tenant.clone(), 1, data)
                .with_stable_id(&payment.payment_id)
                .with_correlation(payment.payment_id.clone())
        })
        .collect()
    }
}

/// The return address the request may use: the tenant's default or one of its allowed ones.
fn return_url(tenant: &TenantPayments, req: &BasketRequest) -> Result<String, InitiateError> {
    match &req.return_url {
        None => Ok(tenant.return_url.clone()),
        Some(u) if *u == tenant.return_url => Ok(u.clone()),
        Some(u)
            if tenant
                .allowed_return_urls
                .iter()
                .any(|prefix| u.starts_with(prefix.as_str())) =>
        {
            Ok(u.clone())
        }
        Some(_) => Err(InitiateError::ReturnUrlNotAllowed),
    }
}

struct RegisterContext {
    email: Option<String>,
    customer_ip: Option<String>,
    return_url: String,
}

enum Registration {
    Registered {
        gateway_ref: String,
        redirect: String,
    },
    /// Not taken (yet): the order stays `created` and the next attempt registers it again.
    Failed(String),
    /// The gateway holds the order but its answer (and the redirect) was lost; it cannot be
    /// registered again under the same id.
    Lost(String),
}

/// 24 hex characters of randomness: short enough for a payment id in a 35-character bank
/// title field (`payu-` + 24), unique enough per tenant (96 bits).
fn new_id() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode(bytes)
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// Identifies what was asked (not what it costs today): the same key sent again tomorrow,
/// when interest has grown or the installment has been paid, is still the same request.
fn request_hash(req: &BasketRequest, return_url: &str) -> String {
    let mut requested = req.requested.clone();
    requested.sort();
    let canonical = serde_json::json!({
        "resident": resident_ref(&req.tenant, &req.pesel),
        "requested": requested,
        "gateway": req.gateway.map(|g| g.as_str()),
        "return_url": return_url,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// A one-way reference to the resident, so that a basket can be shown only to the resident
/// who made it without storing the PESEL beside payment data.
fn resident_ref(tenant: &Teryt, pesel: &Pesel) -> String {
    let mut h = Sha256::new();
    h.update(b"gsko-basket-resident/");
    h.update(tenant.as_str().as_bytes());
    h.update(b"/");
    h.update(pesel.as_str().as_bytes());
    hex::encode(h.finalize())
}

/// The payment settings of one tenant file, with gateway clients built and secrets resolved.
pub fn tenant_payments(t: &TenantConfig) -> Result<Option<TenantPayments>, String> {
    let Some(p) = &t.payments else {
        return Ok(None);
    };
    let mut merchants = BTreeMap::new();
    for (name, m) in &p.merchants {
        let levies = m
            .levy_kinds()
            .map_err(|e| format!("payments.merchants.{name}.levies: {e}"))?;
        let przelewy24 = match &m.przelewy24 {
            Some(c) => {
                let key = |k: &str| format!("payments.merchants.{name}.przelewy24.{k}");
                let mut config = P24Config::new(
                    c.url.clone(),
                    c.merchant_id,
                    c.api_key
                        .resolve()
                        .map_err(|e| format!("{}: {e}", key("api_key")))?,
                    c.crc
                        .resolve()
                        .map_err(|e| format!("{}: {e}", key("crc")))?,
                );
                config.pos_id = c.pos_id.unwrap_or(c.merchant_id);
                config.timeout = Duration::from_secs(c.timeout_secs.max(1));
                Some(P24Client::new(config).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let payu = match &m.payu {
            Some(c) => {
                let key = |k: &str| format!("payments.merchants.{name}.payu.{k}");
                let mut config = PayuConfig::new(
                    c.url.clone(),
                    c.pos_id.clone(),
                    c.client_id.clone().unwrap_or_else(|| c.pos_id.clone()),
                    c.client_secret
                        .resolve()
                        .map_err(|e| format!("{}: {e}", key("client_secret")))?,
                    c.second_key
                        .resolve()
                        .map_err(|e| format!("{}: {e}", key("second_key")))?,
                );
                config.timeout = Duration::from_secs(c.timeout_secs.max(1));
                Some(PayuClient::new(config).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        merchants.insert(
            name.clone(),
            Merchant {
                name: name.clone(),
                levies,
                przelewy24,
                payu,
            },
        );
    }
    Ok(Some(TenantPayments {
        name: t.name.clone(),
        return_url: p.return_url.clone(),
        allowed_return_urls: p.allowed_return_urls.clone(),
        merchants,
    }))
}

/// The payment id of a gateway order.
pub fn gateway_payment_id(gateway: GatewayKind, session_id: &str) -> String {
    format!("{}{session_id}", gateway.payment_prefix())
}
