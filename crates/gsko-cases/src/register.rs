//! `letter.register`: a letter into the tenant's EZD and into a case.

use crate::{CaseError, CaseService};
use chrono::{Datelike, Utc};
use gsko_bus::{Bus, Outgoing, Subscription};
use gsko_ezd::{
    CaseTarget, DeliveredVia, EzdError, FileContent, IncomingLetter, Lookup, NewCase, Registration,
    SenderContact,
};
use gsko_model::{
    CaseRef, CaseRegistered, CaseStatus, CaseStatusChanged, DecisionRecipient, Event, EventData,
    Letter, LetterChannel, SenderKind, Teryt,
};
use gsko_store::{RegistrationRecord, RegistrationState, WatchedCase};
use std::time::Duration;
use tokio::sync::watch;

/// What the consumer counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConsumeStats {
    pub handled: u64,
    pub retried: u64,
    pub parked: u64,
}

impl CaseService {
    /// Consumes `letter.register` until shutdown.
    pub async fn consume(
        &self,
        bus: &dyn Bus,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<ConsumeStats, gsko_bus::BusError> {
        let mut sub: Box<dyn Subscription> = bus
            .subscribe(gsko_bus::topology::REGISTER_QUEUE, 10)
            .await?;
        let mut stats = ConsumeStats::default();
        loop {
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                return Ok(stats);
            }
            let batch = sub
                .next_batch(10, Duration::from_millis(500), Duration::from_millis(20))
                .await?;
            for d in batch {
                let message_id = d.message_id.clone().unwrap_or_default();
                let outcome = match Event::from_json(&d.body) {
                    Err(e) => Err(CaseError::Park(format!("not a GSKO message: {e}"))),
                    Ok(ev) => match &ev.data {
                        EventData::LetterRegister(letter) => {
                            self.register(bus, &ev.tenant, letter, &mut shutdown).await
                        }
                        other => Err(CaseError::Park(format!(
                            "{} is not a registration command (expected pl.gsko.letter.register.v1)",
                            other.message_type().type_name()
                        ))),
                    },
                };
                match outcome {
                    Ok(()) => {
                        stats.handled += 1;
                        sub.ack(vec![d]).await?;
                    }
                    Err(CaseError::Retry(reason)) => {
                        tracing::warn!(%message_id, %reason, "letter.register retried later");
                        stats.retried += 1;
                        sub.retry(d, &reason).await?;
                    }
                    Err(CaseError::Park(reason)) => {
                        tracing::warn!(%message_id, %reason, "letter.register parked for an admin");
                        stats.parked += 1;
                        sub.park(d, &reason).await?;
                    }
                    // Not acknowledged: the broker gives it to the next consumer.
                    Err(CaseError::Shutdown) => return Ok(stats),
                }
            }
        }
    }

    /// Registers one letter; safe to call any number of times for the same letter. `Ok` once
    /// the command needs nothing more (registered and announced, parked in the store for an
    /// admin, or a test submission).
    pub async fn register(
        &self,
        bus: &dyn Bus,
        tenant: &Teryt,
        letter: &Letter,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), CaseError> {
        let cfg = self.tenant(tenant)?;
        let span = tracing::info_span!("register", %tenant, letter = %letter.letter_id);
        let _g = span.enter();
        if letter.test {
            tracing::info!("test submission: not registered");
            return Ok(());
        }
        // Announced before recorded: a recorded registration needs nothing more.
        match self.store.registration(tenant, &letter.letter_id).await? {
            Some(r) if r.state == RegistrationState::Registered => return Ok(()),
            Some(r) if r.state == RegistrationState::Parked => {
                tracing::info!("registration was parked for an admin before; left there");
                return Ok(());
            }
            _ => {}
        }
        let route = cfg.routing.choose(letter).ok_or_else(|| {
            CaseError::Park(
                "no routing rule of the tenant matches the letter and there is no default"
                    .to_owned(),
            )
        })?;
        let item = self.incoming(cfg, letter)?;
        let signer = letter
            .signature
            .signer_pesel
            .clone()
            .or_else(|| letter.sender.pesel.clone());
        let target = match (&signer, route.join_open_case) {
            (Some(pesel), true) => match self
                .store
                .open_case_of(tenant, pesel, &route.jrwa_symbol)
                .await?
            {
                Some(open) => CaseTarget::Existing {
                    ezd_case_id: open.ezd_case_id,
                },
                None => CaseTarget::New(new_case(route, letter)),
            },
            _ => CaseTarget::New(new_case(route, letter)),
        };

        let mut waited = Duration::ZERO;
        let registration = loop {
            match cfg.port.register(&item, &target).await {
                Ok(r) => break r,
                Err(e @ EzdError::Config(_)) => {
                    self.pause_until_accepted(tenant, &e, shutdown).await?;
                }
                Err(EzdError::RateLimited { retry_after }) => {
                    waited += retry_after;
                    if waited > self.poll.max_wait {
                        return Err(CaseError::Retry(format!(
                            "EZD asks to slow down (Retry-After {}s)",
                            retry_after.as_secs()
                        )));
                    }
                    if !crate::sleep_or_stop(retry_after, shutdown).await {
                        return Err(CaseError::Shutdown);
                    }
                }
                Err(e @ EzdError::Transient(_)) => return Err(CaseError::Retry(e.to_string())),
                Err(e @ EzdError::Uncertain { .. }) => {
                    match self.after_uncertain(cfg, tenant, letter, &e).await? {
                        Some(r) => break r,
                        // Partial: what took effect is known, so continuing is safe.
                        None => continue,
                    }
                }
                Err(e @ (EzdError::Refused { .. } | EzdError::Protocol { .. })) => {
                    let reason = format!("EZD did not register the letter: {e}");
                    self.store
                        .park_registration(tenant, &letter.letter_id, &reason, None, None, None)
                        .await?;
                    return Err(CaseError::Park(reason));
                }
            }
        };
        self.announce(bus, tenant, letter, route, signer, registration)
            .await
    }

    /// After a call whose outcome is unknown: what does EZD show? Registered → done; partial
    /// → continue (`None`); no trace, or EZD cannot tell → parked for an admin, never repeated.
    async fn after_uncertain(
        &self,
        cfg: &crate::TenantCases,
        tenant: &Teryt,
        letter: &Letter,
        error: &EzdError,
    ) -> Result<Option<Registration>, CaseError> {
        let lookup = cfg.port.find_incoming(&letter.letter_id).await;
        let reason = match lookup {
            Ok(Lookup::Registered(r)) => return Ok(Some(r)),
            Ok(Lookup::Partial { detail }) => {
                tracing::info!(%detail, "uncertain call took effect in part; continuing from there");
                return Ok(None);
            }
            Ok(Lookup::Absent) => format!(
                "{error}; EZD shows no trace of the letter, so it was not sent again: check EZD and re-send the command if it is not there"
            ),
            Err(e) => format!("{error}; looking the letter up failed too ({e}): check EZD before re-sending"),
        };
        self.store
            .park_registration(tenant, &letter.letter_id, &reason, None, None, None)
            .await?;
        Err(CaseError::Park(reason))
    }

    async fn announce(
        &self,
        bus: &dyn Bus,
        tenant: &Teryt,
        letter: &Letter,
        route: &crate::Route,
        signer: Option<gsko_model::Pesel>,
        reg: Registration,
    ) -> Result<(), CaseError> {
        let case_ref = match CaseRef::parse(&reg.case_ref) {
            Ok(c) => c,
            Err(e) => {
                // Registered in EZD (nothing is repeated), but GSKO cannot show or match the
                // case: kept for an admin with what EZD returned.
                let reason = format!("EZD returned a malformed znak sprawy: {e}");
                self.store
                    .park_registration(
                        tenant,
                        &letter.letter_id,
                        &reason,
                        Some(&reg.ezd_case_id),
                        Some(&reg.case_ref),
                        reg.rpw.as_deref(),
                    )
                    .await?;
                return Err(CaseError::Park(reason));
            }
        };
        let registered = CaseRegistered {
            letter_id: letter.letter_id.clone(),
            case_ref: case_ref.clone(),
            rpw: reg.rpw.clone(),
            registered_at: reg.registered_at,
            ezd_case_id: Some(reg.ezd_case_id.clone()),
            title: reg.case_title.clone(),
        };
        let mut events = vec![Event::new(
            source(tenant),
            tenant.clone(),
            1,
            EventData::CaseRegistered(registered),
        )
        .with_stable_id(&letter.letter_id)
        .with_correlation(letter.letter_id.clone())];
        let known = self.store.watched_case(tenant, &reg.ezd_case_id).await?;
        if known.is_none() {
            events.push(status_event(
                tenant,
                &CaseStatusChanged {
                    case_ref: case_ref.clone(),
                    ezd_case_id: reg.ezd_case_id.clone(),
                    status: CaseStatus::Registered,
                    at: reg.registered_at,
                    seq: 1,
                    title: reg.case_title.clone(),
                    source_status: None,
                    due_on: None,
                },
                Some(&letter.letter_id),
            ));
        }
        let batch: Vec<Outgoing> = events.iter().map(Outgoing::event).collect();
        bus.publish(&batch).await?;
        let now = Utc::now();
        let watch = WatchedCase {
            tenant: tenant.clone(),
            ezd_case_id: reg.ezd_case_id.clone(),
            case_ref: case_ref.clone(),
            letter_id: letter.letter_id.clone(),
            resident_pesel: signer.clone(),
            recipient: recipient(letter, signer),
            sender_contact_id: reg.sender_contact_id.clone(),
            jrwa_symbol: route.jrwa_symbol.clone(),
            status: CaseStatus::Registered,
            seq: 1,
            open: true,
            registered_at: reg.registered_at,
            last_polled_at: None,
        };
        let record = RegistrationRecord {
            tenant: tenant.clone(),
            letter_id: letter.letter_id.clone(),
            state: RegistrationState::Registered,
            ezd_case_id: Some(reg.ezd_case_id.clone()),
            case_ref: Some(case_ref.to_string()),
            rpw: reg.rpw.clone(),
            problem: None,
            updated_at: now,
        };
        self.store.record_registration(&record, &watch).await?;
        tracing::info!(case = %case_ref, rpw = reg.rpw.as_deref().unwrap_or("-"), "letter registered in EZD");
        Ok(())
    }

    fn incoming(
        &self,
        cfg: &crate::TenantCases,
        letter: &Letter,
    ) -> Result<IncomingLetter, CaseError> {
        let read = |f: &gsko_model::StoredFile| -> Result<FileContent, CaseError> {
            let bytes = cfg.files.get(&f.sha256).map_err(|e| {
                CaseError::Park(format!(
                    "file {} ({}) of the letter is not in the content store: {e}",
                    f.name, f.sha256
                ))
            })?;
            Ok(FileContent {
                name: f.name.clone(),
                mime_type: f.mime_type.clone(),
                bytes,
            })
        };
        let mut document = read(&letter.document)?;
        document.name = format!("{}.xml", safe_name(&letter.letter_id));
        let attachments = letter
            .attachments
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        let s = &letter.sender;
        let (given_name, surname, organisation) = match s.kind {
            SenderKind::Person => {
                let mut parts = s.name.rsplitn(2, ' ');
                let surname = parts.next().map(str::to_owned);
                let given = parts.next().map(str::to_owned);
                (given, surname, None)
            }
            SenderKind::Organisation => (None, None, Some(s.name.clone())),
        };
        Ok(IncomingLetter {
            letter_id: letter.letter_id.clone(),
            title: letter.title.clone(),
            received_at: letter.received_at,
            delivered_via: match letter.channel {
                LetterChannel::Epuap => DeliveredVia::Epuap,
                LetterChannel::GskoPortal => DeliveredVia::Portal,
            },
            sender: SenderContact {
                organisation,
                given_name,
                surname,
                pesel: s.pesel.as_ref().map(|p| p.as_str().to_owned()),
                nip: s.nip.as_ref().map(|n| n.as_str().to_owned()),
                email: s
                    .contacts
                    .iter()
                    .find(|c| c.kind == gsko_model::ContactKind::Email)
                    .map(|c| c.value.clone()),
                epuap_address: s.reply_address.clone(),
            },
            document,
            attachments,
        })
    }
}

/// The letter id as a file name: EZD shows it, and `find_incoming` finds the letter by it.
pub fn safe_name(letter_id: &str) -> String {
    letter_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn new_case(route: &crate::Route, letter: &Letter) -> NewCase {
    NewCase {
        class_id: route.class_id.clone(),
        archival_category: route.archival_category.clone(),
        title: route.title_for(letter),
        year: letter.received_at.year(),
    }
}

/// Who a decision in this case goes to: the letter's signer (or declared sender), answered
/// through their ePUAP box unless the delivery service finds an e-Doręczenia address.
fn recipient(letter: &Letter, signer: Option<gsko_model::Pesel>) -> DecisionRecipient {
    DecisionRecipient {
        name: letter
            .signature
            .signer_name
            .clone()
            .unwrap_or_else(|| letter.sender.name.clone()),
        pesel: signer,
        nip: letter.sender.nip.clone(),
        epuap_address: letter.sender.reply_address.clone(),
        ade_address: None,
    }
}

pub(crate) fn source(tenant: &Teryt) -> String {
    format!("/gsko/ezd/{tenant}")
}

/// `case.status-changed`; the id derives from the case and the timeline number.
pub(crate) fn status_event(
    tenant: &Teryt,
    change: &CaseStatusChanged,
    correlation: Option<&str>,
) -> Event {
    let e = Event::new(
        source(tenant),
        tenant.clone(),
        i64::from(change.seq),
        EventData::CaseStatusChanged(change.clone()),
    )
    .with_stable_id(&format!("{}/{}", change.ezd_case_id, change.seq));
    match correlation {
        Some(c) => e.with_correlation(c.to_owned()),
        None => e,
    }
}
