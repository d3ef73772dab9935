//! The decision delivery service: takes `pl.gsko.decision.deliver.v1` commands, delivers each
//! decision through WS-Doręczyciel `dorecz` (ePUAP, against a UPD) or through e-Doręczenia
//! (UA API), follows it to its end (delivered, deemed delivered, failed) and publishes
//! `pl.gsko.decision.delivered.v1` with the evidence kept in the content store.
//!
//! Commands arrive at least once and the service may stop at any point, so every effect goes
//! through the [`DeliveryStore`] record of the decision first:
//!
//! - the command is claimed (stored) before anything is sent; a second copy finds the record
//!   and continues where the first stopped, or does nothing when it has gone further;
//! - the record is `sending` before the channel is called and `sent` with the shipment id
//!   after. A send whose answer was lost, or a record found in `sending` after a crash, is never
//!   repeated blindly: ePUAP offers no way to look a `dorecz` up, so it is parked `uncertain`
//!   for an admin; e-Doręczenia is asked ([`UaClient::find_sent`]) for the message by the
//!   decision id GSKO put into it, and sent only when it is certainly not there;
//! - a channel that is unavailable (nothing reached it) puts the record back to `pending` and
//!   the command is retried by the bus later;
//! - the end of a delivery and its event are written in one transaction (the outbox), and the
//!   payment service's relay ([`gsko_payments::relay`]) publishes it.
//!
//! ePUAP deliveries end when their UPD arrives in the office's box: the WS-Pull receiver hands
//! every UPP/UPD to a [`ReceiptSink`], which this service is. e-Doręczenia deliveries are
//! polled ([`DeliveryService::poll_once`]).
//!
//! Logs carry tenants, decision ids, channels, shipment ids and states; never names, PESELs,
//! addresses or the texts the channels answered with a refusal (those go to the record and the
//! event, for an admin).

use chrono::{DateTime, NaiveDate, Utc};
use gsko_bus::{Bus, BusError, Delivery, Subscription};
use gsko_edoreczenia::{Outcome, Outgoing, OutgoingFile, UaClient};
use gsko_epuap::client::ClientError;
use gsko_epuap::receiver::{FileStore, ReceiptSink};
use gsko_epuap::send::{Dorecz, DoreczycielClient};
use gsko_epuap::upo::{Kind, Poswiadczenie};
use gsko_model::{
    DecisionDelivered, DecisionDelivery, DeliveryChannel, DeliveryEvidence, DeliveryOutcome,
    DeliveryPreference, Event, EventData, EvidenceKind, StoredFile, Teryt,
};
use gsko_store::{DeliveryRecord, DeliveryState, DeliveryStore, PaymentStore, StoreError};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// e-Doręczenia deliveries asked about per poll round.
const POLL_BATCH: u32 = 200;

/// Which channel a tenant tries first for a command that leaves the choice to GSKO (`auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preferred {
    /// e-Doręczenia when the recipient has an ADE address, else ePUAP (the law's order).
    #[default]
    Auto,
    /// ePUAP when the recipient has a box, else e-Doręczenia.
    Epuap,
    /// The same order as `Auto`, stated explicitly.
    EDoreczenia,
}

/// The channels of one tenant.
pub struct TenantDelivery {
    /// WS-Doręczyciel of the office, and the office's own box (`/podmiot/skrytka`) where the
    /// UPDs come back (`AdresOdpowiedzi`).
    pub epuap: Option<(DoreczycielClient, String)>,
    pub edoreczenia: Option<UaClient>,
    pub preferred: Preferred,
}

/// Why a command could not be handled now. [`DeliveryError::is_transient`] tells the bus
/// consumer to retry the command later rather than park it.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("tenant {0} has no decision delivery configured")]
    UnknownTenant(Teryt),
    #[error("decision {decision_id}: the document {sha256} cannot be read from the content store: {detail}")]
    Document {
        decision_id: String,
        sha256: String,
        detail: String,
    },
    /// Nothing reached the channel; the record is `pending` again.
    #[error("decision {decision_id}: {channel} unavailable, nothing was sent: {detail}")]
    Unavailable {
        decision_id: String,
        channel: &'static str,
        detail: String,
    },
    /// Another attempt (another consumer) started sending moments ago and has not recorded its
    /// answer; looking again later decides.
    #[error(
        "decision {decision_id}: a send started {seconds} s ago has not recorded its answer yet"
    )]
    InProgress { decision_id: String, seconds: i64 },
    /// The tenant's channel refuses GSKO itself (credentials, configuration): nothing was
    /// sent; an admin fixes the configuration and replays the command.
    #[error("decision {decision_id}: {channel} cannot be used as configured: {detail}")]
    Config {
        decision_id: String,
        channel: &'static str,
        detail: String,
    },
    /// Following a sent delivery failed (the channel or the content store); the next poll
    /// tries again.
    #[error("decision {decision_id}: following the delivery failed: {detail}")]
    Tracking { decision_id: String, detail: String },
    #[error("delivery store: {0}")]
    Store(#[from] StoreError),
}

impl DeliveryError {
    pub fn is_transient(&self) -> bool {
        match self {
            DeliveryError::Unavailable { .. }
            | DeliveryError::InProgress { .. }
            | DeliveryError::Tracking { .. } => true,
            DeliveryError::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// No channel can carry a command: the channel named in the failure, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoChannel {
    pub channel: DeliveryChannel,
    pub reason: String,
}

fn channel_name(c: DeliveryChannel) -> &'static str {
    match c {
        DeliveryChannel::Epuap => "ePUAP",
        DeliveryChannel::EDoreczenia => "e-Doręczenia",
    }
}

/// Whether `channel` can carry `cmd` for this tenant; the reason when not.
pub fn usable(
    t: &TenantDelivery,
    cmd: &DecisionDelivery,
    channel: DeliveryChannel,
) -> Result<(), String> {
    match channel {
        DeliveryChannel::Epuap if t.epuap.is_none() => {
            Err("the tenant has no ePUAP delivery (WS-Doręczyciel) configured".into())
        }
        DeliveryChannel::Epuap if cmd.recipient.epuap_address.is_none() => {
            Err("the recipient has no ePUAP box address".into())
        }
        DeliveryChannel::EDoreczenia if t.edoreczenia.is_none() => {
            Err("the tenant has no e-Doręczenia mailbox configured".into())
        }
        DeliveryChannel::EDoreczenia if cmd.recipient.ade_address.is_none() => {
            Err("the recipient has no e-Doręczenia (ADE) address".into())
        }
        _ => Ok(()),
    }
}

/// The channel for a command: the one it names, or under `auto` the first usable in the
/// tenant's order (by default an ADE address wins).
pub fn choose_channel(
    t: &TenantDelivery,
    cmd: &DecisionDelivery,
) -> Result<DeliveryChannel, NoChannel> {
    let order = match (cmd.channel, t.preferred) {
        (DeliveryPreference::Epuap, _) => vec![DeliveryChannel::Epuap],
        (DeliveryPreference::EDoreczenia, _) => vec![DeliveryChannel::EDoreczenia],
        (DeliveryPreference::Auto, Preferred::Epuap) => {
            vec![DeliveryChannel::Epuap, DeliveryChannel::EDoreczenia]
        }
        (DeliveryPreference::Auto, _) => {
            vec![DeliveryChannel::EDoreczenia, DeliveryChannel::Epuap]
        }
    };
    let mut reasons = Vec::new();
    for c in &order {
        match usable(t, cmd, *c) {
            Ok(()) => return Ok(*c),
            Err(r) => reasons.push(format!("{}: {r}", channel_name(*c))),
        }
    }
    // A failure still names a channel (the event needs one): the one the recipient is
    // reachable by, if any, else the first tried.
    let channel = if cmd.recipient.ade_address.is_some() && order.len() > 1 {
        DeliveryChannel::EDoreczenia
    } else {
        order[0]
    };
    Err(NoChannel {
        channel,
        reason: format!(
            "no channel can deliver this decision ({})",
            reasons.join("; ")
        ),
    })
}

/// What one consumer run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Commands handled (acknowledged).
    pub handled: u64,
    /// Commands sent back to the bus to be retried later.
    pub retried: u64,
    /// Commands parked for an admin.
    pub parked: u64,
}

/// Delivers decisions for every configured tenant.
pub struct DeliveryService {
    tenants: BTreeMap<Teryt, TenantDelivery>,
    files: FileStore,
    store: Arc<dyn DeliveryStore>,
    outbox: Arc<dyn PaymentStore>,
    wake: Arc<Notify>,
    poll_interval: Duration,
    sending_grace: chrono::Duration,
    /// A tenant's own content store, where it has one (the daemon keeps documents per tenant);
    /// others use `files`.
    tenant_files: BTreeMap<Teryt, FileStore>,
    /// Whether [`DeliveryService::run`] relays the outbox itself (not when the daemon's
    /// payment side already runs the one relay of the shared outbox).
    relay: bool,
}

impl DeliveryService {
    /// `store` keeps the delivery records and the outbox (one database); `files` is the content
    /// store the decisions are read from and the evidences written to.
    pub fn new<S>(store: Arc<S>, files: FileStore, tenants: BTreeMap<Teryt, TenantDelivery>) -> Self
    where
        S: DeliveryStore + PaymentStore + 'static,
    {
        DeliveryService {
            tenants,
            files,
            store: store.clone(),
            outbox: store,
            wake: Arc::new(Notify::new()),
            poll_interval: Duration::from_secs(60),
            sending_grace: chrono::Duration::minutes(2),
            tenant_files: BTreeMap::new(),
            relay: true,
        }
    }

    /// The same, from the two views of one database the daemon holds, with the outbox relayed
    /// by the daemon's own relay (woken through `wake`).
    pub fn from_parts(
        store: Arc<dyn DeliveryStore>,
        outbox: Arc<dyn PaymentStore>,
        wake: Arc<Notify>,
        files: FileStore,
        tenants: BTreeMap<Teryt, TenantDelivery>,
    ) -> Self {
        DeliveryService {
            tenants,
            files,
            store,
            outbox,
            wake,
            poll_interval: Duration::from_secs(60),
            sending_grace: chrono::Duration::minutes(2),
            tenant_files: BTreeMap::new(),
            relay: false,
        }
    }

    /// Per-tenant content stores (decisions read, evidences written there).
    pub fn with_tenant_files(mut self, files: BTreeMap<Teryt, FileStore>) -> Self {
        self.tenant_files = files;
        self
    }

    fn files_of(&self, tenant: &Teryt) -> &FileStore {
        self.tenant_files.get(tenant).unwrap_or(&self.files)
    }

    /// How often e-Doręczenia is asked about sent messages (default one minute).
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// How long a record may stay `sending` before a copy of the command takes it for the
    /// trace of a crash (default two minutes, longer than any send's timeout): within it the
    /// copy is retried later, so two consumers never send the same decision side by side.
    pub fn with_sending_grace(mut self, grace: Duration) -> Self {
        self.sending_grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        self
    }

    /// Notified whenever an event is queued in the outbox (wakes the relay).
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn store(&self) -> &Arc<dyn DeliveryStore> {
        &self.store
    }

    pub fn files(&self) -> &FileStore {
        &self.files
    }

    /// Handles one `decision.deliver` command; safe to call any number of times with the same
    /// command (see the crate docs). `Ok` once the command needs nothing more from the bus
    /// (it was sent, parked as uncertain, ended as failed, or had been handled before).
    pub async fn handle(
        &self,
        tenant: &Teryt,
        cmd: &DecisionDelivery,
    ) -> Result<(), DeliveryError> {
        let cfg = self
            .tenants
            .get(tenant)
            .ok_or_else(|| DeliveryError::UnknownTenant(tenant.clone()))?;
        let choice = choose_channel(cfg, cmd);
        let channel = match &choice {
            Ok(c) => *c,
            Err(n) => n.channel,
        };
        let claimed = self.store.claim(tenant, cmd, channel).await?;
        let is_new = matches!(claimed, gsko_store::Claimed::New(_));
        let rec = claimed.into_record();
        if !is_new {
            tracing::info!(%tenant, decision = %rec.decision_id, state = rec.state.as_str(), "decision.deliver seen before; continuing from its record");
        }
        match rec.state {
            DeliveryState::Pending => {}
            DeliveryState::Sending => return self.recover(tenant, cfg, &rec).await,
            _ => return Ok(()),
        }
        // The stored command and channel rule: a copy cannot change what is being delivered.
        if let Err(r) = usable(cfg, &rec.command, rec.channel) {
            let reason = match choose_channel(cfg, &rec.command) {
                Err(n) => n.reason,
                Ok(_) => format!("{}: {r}", channel_name(rec.channel)),
            };
            return self.fail(tenant, &rec, reason).await;
        }
        let content = self.document(&rec)?;
        if !self.store.mark_sending(tenant, &rec.decision_id).await? {
            // Another consumer took it between the claim and now; its record decides.
            tracing::info!(%tenant, decision = %rec.decision_id, "delivery taken by another attempt");
            return Ok(());
        }
        match rec.channel {
            DeliveryChannel::Epuap => self.send_epuap(tenant, cfg, &rec, content).await,
            DeliveryChannel::EDoreczenia => self.send_edoreczenia(tenant, cfg, &rec, content).await,
        }
    }

    /// A record found `sending`: a send may have gone out before a crash (or is going out now
    /// in another consumer).
    async fn recover(
        &self,
        tenant: &Teryt,
        cfg: &TenantDelivery,
        rec: &DeliveryRecord,
    ) -> Result<(), DeliveryError> {
        let age = Utc::now() - rec.updated_at;
        if age < self.sending_grace {
            return Err(DeliveryError::InProgress {
                decision_id: rec.decision_id.clone(),
                seconds: age.num_seconds(),
            });
        }
        let id = &rec.decision_id;
        match (rec.channel, &cfg.edoreczenia) {
            (DeliveryChannel::EDoreczenia, Some(client)) => match client.find_sent(id).await {
                Ok(Some(message_id)) => {
                    tracing::info!(%tenant, decision = %id, message_id = %message_id, "e-Doręczenia message found after an interrupted send");
                    self.store.mark_sent(tenant, id, Some(&message_id)).await?;
                    Ok(())
                }
                Ok(None) => {
                    tracing::info!(%tenant, decision = %id, "interrupted e-Doręczenia send did not go out; sending");
                    let content = self.document(rec)?;
                    self.send_edoreczenia(tenant, cfg, rec, content).await
                }
                Err(e) if e.is_transient() => Err(DeliveryError::Unavailable {
                    decision_id: id.clone(),
                    channel: "e-Doręczenia",
                    detail: format!("looking for an interrupted send: {e}"),
                }),
                Err(e) => {
                    self.park(
                        tenant,
                        id,
                        format!("interrupted e-Doręczenia send; the SENT listing could not tell whether it went out ({e}): check the mailbox"),
                    )
                    .await
                }
            },
            _ => {
                self.park(
                    tenant,
                    id,
                    format!(
                        "a {} send was interrupted (crash) before its answer was recorded; it may have gone out: check at the channel",
                        channel_name(rec.channel)
                    ),
                )
                .await
            }
        }
    }

    async fn send_epuap(
        &self,
        tenant: &Teryt,
        cfg: &TenantDelivery,
        rec: &DeliveryRecord,
        content: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        let id = &rec.decision_id;
        let cmd = &rec.command;
        let (Some((client, reply_box)), Some(recipient_box)) =
            (&cfg.epuap, &cmd.recipient.epuap_address)
        else {
            // `usable` was checked before; only a record left `sending` can get here.
            return self
                .park(
                    tenant,
                    id,
                    "ePUAP no longer configured or the recipient has no box".into(),
                )
                .await;
        };
        let d = Dorecz {
            recipient_box: recipient_box.clone(),
            reply_box: reply_box.clone(),
            file_name: cmd.document.name.clone(),
            mime_type: cmd.document.mime_type.clone(),
            content,
            deliver_by: cmd.deliver_by.map(deadline),
            document_id: id.clone(),
            case_id: cmd.case_ref.to_string(),
            dry_run: false,
        };
        match client.dorecz(&d).await {
            Ok(receipt) => {
                let shipment = receipt.order_id.or(receipt.document_id);
                self.store
                    .mark_sent(tenant, id, shipment.as_deref())
                    .await?;
                tracing::info!(%tenant, decision = %id, shipment = shipment.as_deref().unwrap_or(""), "decision handed to ePUAP (dorecz)");
                Ok(())
            }
            Err(e @ ClientError::Uncertain { .. }) => {
                self.park(tenant, id, format!("{e}; never resent: check at ePUAP"))
                    .await
            }
            Err(e @ ClientError::Unavailable { .. }) => {
                self.unavailable(tenant, id, "ePUAP", e.to_string()).await
            }
            Err(e @ ClientError::Refused { .. }) => {
                self.fail(tenant, rec, format!("ePUAP refused the delivery: {e}"))
                    .await
            }
            Err(e) => {
                self.store.release(tenant, id, &e.to_string()).await?;
                Err(DeliveryError::Config {
                    decision_id: id.clone(),
                    channel: "ePUAP",
                    detail: e.to_string(),
                })
            }
        }
    }

    async fn send_edoreczenia(
        &self,
        tenant: &Teryt,
        cfg: &TenantDelivery,
        rec: &DeliveryRecord,
        content: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        use gsko_edoreczenia::Error as E;
        let id = &rec.decision_id;
        let cmd = &rec.command;
        let (Some(client), Some(ade)) = (&cfg.edoreczenia, &cmd.recipient.ade_address) else {
            return self
                .park(
                    tenant,
                    id,
                    "e-Doręczenia no longer configured or the recipient has no ADE address".into(),
                )
                .await;
        };
        let msg = Outgoing {
            recipient: ade.clone(),
            subject: cmd.title.clone(),
            text_body: format!("{}\nZnak sprawy: {}", cmd.title, cmd.case_ref),
            attachments: vec![OutgoingFile {
                filename: cmd.document.name.clone(),
                content_type: cmd.document.mime_type.clone(),
                bytes: content,
                description: cmd.document.description.clone(),
            }],
            thread_id: None,
            case_id: Some(cmd.case_ref.to_string()),
            reference: id.clone(),
        };
        match client.send(&msg).await {
            Ok(sent) => {
                self.store
                    .mark_sent(tenant, id, Some(&sent.message_id))
                    .await?;
                tracing::info!(%tenant, decision = %id, shipment = %sent.message_id, "decision sent through e-Doręczenia");
                Ok(())
            }
            Err(e @ (E::Uncertain(_) | E::Malformed(_))) => {
                self.park(
                    tenant,
                    id,
                    format!("{e}; never resent blindly: the next copy of the command or an admin checks the SENT listing"),
                )
                .await
            }
            Err(e @ E::Unavailable(_)) => {
                self.unavailable(tenant, id, "e-Doręczenia", e.to_string())
                    .await
            }
            Err(e @ E::Refused { .. }) => {
                self.fail(tenant, rec, format!("e-Doręczenia refused the message: {e}"))
                    .await
            }
            Err(e @ (E::Unauthorized(_) | E::Config(_))) => {
                self.store.release(tenant, id, &e.to_string()).await?;
                Err(DeliveryError::Config {
                    decision_id: id.clone(),
                    channel: "e-Doręczenia",
                    detail: e.to_string(),
                })
            }
        }
    }

    async fn unavailable(
        &self,
        tenant: &Teryt,
        id: &str,
        channel: &'static str,
        detail: String,
    ) -> Result<(), DeliveryError> {
        self.store.release(tenant, id, &detail).await?;
        tracing::warn!(%tenant, decision = %id, channel, "channel unavailable; the command will be retried");
        Err(DeliveryError::Unavailable {
            decision_id: id.to_owned(),
            channel,
            detail,
        })
    }

    /// Parks a `sending` delivery as uncertain.
    async fn park(&self, tenant: &Teryt, id: &str, detail: String) -> Result<(), DeliveryError> {
        self.store.mark_uncertain(tenant, id, &detail).await?;
        tracing::warn!(%tenant, decision = %id, state = "uncertain", "delivery parked for an admin: it may or may not have been sent");
        Ok(())
    }

    /// Ends a delivery as failed with `reason`.
    async fn fail(
        &self,
        tenant: &Teryt,
        rec: &DeliveryRecord,
        reason: String,
    ) -> Result<(), DeliveryError> {
        let event = outcome_event(
            tenant,
            rec,
            Ended {
                outcome: DeliveryOutcome::Failed,
                at: Utc::now(),
                shipment_id: None,
                evidence: None,
                reason: Some(reason),
            },
        );
        self.end(tenant, rec, &event).await
    }

    async fn end(
        &self,
        tenant: &Teryt,
        rec: &DeliveryRecord,
        event: &Event,
    ) -> Result<(), DeliveryError> {
        if self.store.finish(tenant, &rec.decision_id, event).await? {
            let outcome = match &event.data {
                EventData::DecisionDelivered(d) => d.outcome,
                _ => DeliveryOutcome::Failed,
            };
            tracing::info!(%tenant, decision = %rec.decision_id, channel = channel_name(rec.channel), outcome = ?outcome, "delivery ended");
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The decision's document from the content store.
    fn document(&self, rec: &DeliveryRecord) -> Result<Vec<u8>, DeliveryError> {
        let doc = &rec.command.document;
        let err = |detail: String| DeliveryError::Document {
            decision_id: rec.decision_id.clone(),
            sha256: doc.sha256.clone(),
            detail,
        };
        let valid = doc.sha256.len() == 64
            && doc
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(err("not a lowercase hex SHA-256".into()));
        }
        self.files_of(&rec.tenant)
            .get(&doc.sha256)
            .map_err(|e| err(e.to_string()))
    }

    /// Asks e-Doręczenia about every sent message that has not ended; ends those that have,
    /// with their latest evidence stored. Returns how many ended. One message's failure is
    /// logged and left for the next round.
    pub async fn poll_once(&self) -> Result<usize, DeliveryError> {
        let flying = self
            .store
            .in_flight(DeliveryChannel::EDoreczenia, POLL_BATCH)
            .await?;
        let mut ended = 0;
        for rec in flying {
            let Some(client) = self
                .tenants
                .get(&rec.tenant)
                .and_then(|t| t.edoreczenia.as_ref())
            else {
                tracing::warn!(tenant = %rec.tenant, decision = %rec.decision_id, "sent through e-Doręczenia but the tenant has no mailbox configured now");
                continue;
            };
            match self.track(client, &rec).await {
                Ok(true) => ended += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(tenant = %rec.tenant, decision = %rec.decision_id, error = %e, "following an e-Doręczenia delivery failed; next round")
                }
            }
        }
        Ok(ended)
    }

    async fn track(&self, client: &UaClient, rec: &DeliveryRecord) -> Result<bool, DeliveryError> {
        let tracking = |detail: String| DeliveryError::Tracking {
            decision_id: rec.decision_id.clone(),
            detail,
        };
        let Some(message_id) = rec.shipment_id.as_deref() else {
            return Err(tracking("sent without a message id".into()));
        };
        let state = client
            .message(message_id)
            .await
            .map_err(|e| tracking(e.to_string()))?;
        let Some(outcome) = state.outcome() else {
            return Ok(false);
        };
        let evidences = client
            .evidences(message_id)
            .await
            .map_err(|e| tracking(e.to_string()))?;
        // The latest by its event (or creation) time; the API's order breaks ties.
        let latest = evidences
            .iter()
            .enumerate()
            .max_by_key(|(i, e)| (e.event_date.or(e.create_date), *i))
            .map(|(_, e)| e);
        let evidence = match latest {
            Some(e) => {
                let bytes = client
                    .download_evidence(e)
                    .await
                    .map_err(|err| tracking(err.to_string()))?;
                let sha256 = self.files_of(&rec.tenant).put(&bytes).map_err(|err| {
                    tracking(format!("storing evidence {}: {err}", e.evidence_id))
                })?;
                Some(DeliveryEvidence {
                    kind: EvidenceKind::AdeEvidence,
                    id: e.evidence_id.clone(),
                    code: Some(e.kind.clone()),
                    sha256,
                })
            }
            None => None,
        };
        let outcome = match outcome {
            Outcome::Delivered => DeliveryOutcome::Delivered,
            Outcome::DeemedDelivered => DeliveryOutcome::DeemedDelivered,
            Outcome::Failed => DeliveryOutcome::Failed,
        };
        if evidence.is_none() && outcome != DeliveryOutcome::Failed {
            // A delivered decision is announced with its proof; it comes with a later poll.
            return Ok(false);
        }
        let reason = (outcome == DeliveryOutcome::Failed).then(|| {
            let detail = latest
                .and_then(|e| e.reason_details.clone())
                .filter(|d| !d.trim().is_empty())
                .or_else(|| Some(state.status_text.clone()).filter(|t| !t.trim().is_empty()));
            match detail {
                Some(d) => format!("e-Doręczenia: {} ({d})", state.status),
                None => format!("e-Doręczenia: {}", state.status),
            }
        });
        let at = state
            .receipt_date
            .or(latest.and_then(|e| e.event_date))
            .or(state.event_date)
            .unwrap_or_else(Utc::now);
        let event = outcome_event(
            &rec.tenant,
            rec,
            Ended {
                outcome,
                at,
                shipment_id: Some(message_id.to_owned()),
                evidence,
                reason,
            },
        );
        self.end(&rec.tenant, rec, &event).await?;
        Ok(true)
    }

    /// A UPP/UPD pulled from a tenant's box: `Ok(true)` when it is the UPD of a decision this
    /// service handed to ePUAP (the delivery ends, or had ended already: the same UPD pulled
    /// again after a crash), `Ok(false)` for anything else.
    pub async fn take_receipt(
        &self,
        tenant: &Teryt,
        receipt: &Poswiadczenie,
        stored: &StoredFile,
    ) -> Result<bool, DeliveryError> {
        if receipt.kind != Kind::Upd {
            return Ok(false);
        }
        let Some(decision_id) = receipt.document_id.as_deref() else {
            return Ok(false);
        };
        let Some(rec) = self.store.by_decision(tenant, decision_id).await? else {
            return Ok(false);
        };
        if rec.channel != DeliveryChannel::Epuap || rec.state == DeliveryState::Pending {
            return Ok(false);
        }
        if rec.state.is_final() {
            tracing::info!(%tenant, decision = %decision_id, upd = %receipt.id, "UPD of a delivery already ended; taken again");
            return Ok(true);
        }
        let outcome = if is_substitute_delivery(receipt) {
            DeliveryOutcome::DeemedDelivered
        } else {
            DeliveryOutcome::Delivered
        };
        let at = receipt
            .delivered_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now);
        let event = outcome_event(
            tenant,
            &rec,
            Ended {
                outcome,
                at,
                shipment_id: rec.shipment_id.clone(),
                evidence: Some(DeliveryEvidence {
                    kind: EvidenceKind::Upd,
                    id: receipt.id.clone(),
                    code: None,
                    sha256: stored.sha256.clone(),
                }),
                reason: None,
            },
        );
        self.end(tenant, &rec, &event).await?;
        Ok(true)
    }

    /// Consumes [`gsko_bus::topology::DELIVERY_QUEUE`], polls e-Doręczenia and relays the
    /// outbox, until `shutdown` turns true (or its sender is dropped). Returns on a bus error
    /// of the consumer (the caller resubscribes); what was not acknowledged comes again and
    /// is handled idempotently.
    pub async fn run(
        self: Arc<Self>,
        bus: Arc<dyn Bus>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<RunStats, BusError> {
        let mut sub = bus
            .subscribe(gsko_bus::topology::DELIVERY_QUEUE, 20)
            .await?;
        let relay = tokio::spawn(if self.relay {
            futures::future::Either::Left(gsko_payments::relay::run(
                self.outbox.clone(),
                bus.clone(),
                self.wake.clone(),
                shutdown.clone(),
            ))
        } else {
            futures::future::Either::Right(async { 0 })
        });
        let poller = tokio::spawn(self.clone().poll_loop(shutdown.clone()));
        let result = self.consume(sub.as_mut(), shutdown).await;
        if result.is_err() {
            relay.abort();
            poller.abort();
        } else {
            // Both stop on the same shutdown signal.
            match relay.await {
                Ok(published) => tracing::info!(published, "delivery outbox relay stopped"),
                Err(e) => tracing::error!(error = %e, "delivery outbox relay task failed"),
            }
            if let Err(e) = poller.await {
                tracing::error!(error = %e, "e-Doręczenia poller task failed");
            }
        }
        result
    }

    async fn poll_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.poll_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(ended = n, "e-Doręczenia deliveries ended"),
                Err(e) => tracing::warn!(error = %e, "polling e-Doręczenia failed; next round"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll_interval) => {}
                r = shutdown.changed() => if r.is_err() { return },
            }
        }
    }

    async fn consume(
        &self,
        sub: &mut dyn Subscription,
        shutdown: watch::Receiver<bool>,
    ) -> Result<RunStats, BusError> {
        let mut stats = RunStats::default();
        loop {
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                return Ok(stats);
            }
            let batch = sub
                .next_batch(20, Duration::from_millis(500), Duration::from_millis(20))
                .await?;
            for d in batch {
                let message_id = d.message_id.clone().unwrap_or_default();
                match self.consume_one(&d).await {
                    Ok(()) => {
                        stats.handled += 1;
                        sub.ack(vec![d]).await?;
                    }
                    Err((true, reason)) => {
                        tracing::warn!(message_id = %message_id, reason = %reason, "decision.deliver retried later");
                        stats.retried += 1;
                        sub.retry(d, &reason).await?;
                    }
                    Err((false, reason)) => {
                        tracing::warn!(message_id = %message_id, reason = %reason, "decision.deliver parked");
                        stats.parked += 1;
                        sub.park(d, &reason).await?;
                    }
                }
            }
        }
    }

    /// `Err((transient, reason))` when the delivery cannot be acknowledged.
    async fn consume_one(&self, d: &Delivery) -> Result<(), (bool, String)> {
        let ev =
            Event::from_json(&d.body).map_err(|e| (false, format!("not a GSKO message: {e}")))?;
        let EventData::DecisionDeliver(cmd) = &ev.data else {
            return Err((
                false,
                format!(
                    "{} is not a delivery command (expected pl.gsko.decision.deliver.v1)",
                    ev.message_type().type_name()
                ),
            ));
        };
        self.handle(&ev.tenant, cmd)
            .await
            .map_err(|e| (e.is_transient(), e.to_string()))
    }
}

impl ReceiptSink for DeliveryService {
    fn receipt<'a>(
        &'a self,
        tenant: &'a Teryt,
        receipt: &'a Poswiadczenie,
        stored: &'a StoredFile,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        Box::pin(async move {
            self.take_receipt(tenant, receipt, stored)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// How a delivery ended.
struct Ended {
    outcome: DeliveryOutcome,
    at: DateTime<Utc>,
    shipment_id: Option<String>,
    evidence: Option<DeliveryEvidence>,
    reason: Option<String>,
}

/// The `decision.delivered` event; its id derives from the decision, so however often it is
/// built it is one message to its consumers.
fn outcome_event(tenant: &Teryt, rec: &DeliveryRecord, e: Ended) -> Event {
    let cmd = &rec.command;
    Event::new(
        format!("/gsko/delivery/{tenant}"),
        tenant.clone(),
        1,
        EventData::DecisionDelivered(DecisionDelivered {
            decision_id: rec.decision_id.clone(),
            outcome: e.outcome,
            channel: rec.channel,
            at: e.at,
            shipment_id: e.shipment_id.or_else(|| rec.shipment_id.clone()),
            evidence: e.evidence,
            reason: e.reason,
            recipient_pesel: cmd.recipient.pesel.clone(),
            case_ref: Some(cmd.case_ref.clone()),
            title: Some(cmd.title.clone()),
            in_reply_to: cmd.in_reply_to.clone(),
        }),
    )
    .with_stable_id(&format!("delivered/{}", rec.decision_id))
    .with_correlation(rec.decision_id.clone())
}

/// `TerminDoreczenia` of a deadline day: 21:59:59 UTC is still that day in Poland in winter
/// (22:59:59) and in summer (23:59:59).
fn deadline(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(21, 59, 59)
        .expect("21:59:59 is a valid time")
        .and_utc()
}

/// Whether a UPD records a substitute delivery (fikcja doręczenia): its
/// `InformacjaUzupelniajaca` "Sposób doręczenia" says "doręczenie zastępcze" (read without
/// case or Polish diacritics, since ePUAP's exact spelling is not documented).
fn is_substitute_delivery(upd: &Poswiadczenie) -> bool {
    upd.extra.iter().any(|(kind, value)| {
        fold(kind).contains("sposob doreczenia") && fold(value).contains("zastepcz")
    })
}

fn fold(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| match c {
            'ą' => 'a',
            'ć' => 'c',
            'ę' => 'e',
            'ł' => 'l',
            'ń' => 'n',
            'ó' => 'o',
            'ś' => 's',
            'ź' | 'ż' => 'z',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(extra: &[(&str, &str)]) -> Poswiadczenie {
        Poswiadczenie {
            kind: Kind::Upd,
            id: "UPD-1".into(),
            document_id: Some("DEC-1".into()),
            case_id: None,
            addressee: None,
            sender_or_issuer: None,
            delivered_at: None,
            created_at: None,
            extra: extra
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            signed: true,
        }
    }

    #[test]
    fn a_substitute_delivery_is_told_with_or_without_diacritics() {
        assert!(is_substitute_delivery(&upd(&[(
            "Sposob doreczenia",
            "doreczenie zastepcze"
        )])));
        assert!(is_substitute_delivery(&upd(&[(
            "Sposób doręczenia",
            "Doręczenie zastępcze"
        )])));
        assert!(!is_substitute_delivery(&upd(&[(
            "Sposob doreczenia",
            "odebrany"
        )])));
        assert!(!is_substitute_delivery(&upd(&[(
            "Skrot dokumentu",
            "zastepcze"
        )])));
        assert!(!is_substitute_delivery(&upd(&[])));
    }

    #[test]
    fn the_deadline_stays_on_its_day_in_polish_time() {
        let d = NaiveDate::from_ymd_opt(2026, 7, 1).expect("date");
        let t = deadline(d);
        assert_eq!(t.date_naive(), d);
        // Summer time is UTC+2: still 1 July in Warsaw.
        assert_eq!((t + chrono::Duration::hours(2)).date_naive(), d);
    }
}
