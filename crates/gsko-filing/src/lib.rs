//! Filing a letter through GSKO: what happens between "the resident wrote a letter in the
//! portal" and "the letter is in the municipality's box (or EZD)".
//!
//! 1. [`FilingService::file`]: the request is checked strictly, the CRD "Pismo ogólne" is
//!    built ([`gsko_epuap::compose`]) and kept by hash, the filing is stored (`created`, under
//!    the portal's idempotency key) and only then handed to the PZ signing service
//!    (tpSigning5); the answer is the URL the resident signs at (`awaiting_signature`). The
//!    same key again answers the same filing (and retries PZ if it had failed).
//! 2. PZ sends the resident's browser back to `/filing/{teryt}/{id}/signed` (or `…/cancelled`):
//!    [`FilingService::signed`] fetches the signed document and accepts it only when it is a
//!    valid podpis zaufany over the whole document, made by the resident who filed (their
//!    PESEL, compared through the one-way reference stored with the filing), and when its
//!    title, body and attachments are those GSKO built. It is kept by hash (`signed`) and
//!    submitted: `nadaj` to the tenant's filing box, the UPP kept (`submitted`), or — mode
//!    `ezd` — `letter.received` and `letter.register` queued in the outbox with the state
//!    change. A `nadaj` whose outcome is unknown ends `uncertain` and is never sent again.
//!
//! Nothing here logs personal data; filing ids are random (128 bits), because the browser
//! callbacks carry no other credential.

use base64::Engine as _;
use chrono::Utc;
use gsko_config::{Config, FilingMode};
use gsko_epuap::client::{ClientError, RetryPolicy};
use gsko_epuap::compose::{self, ComposeAttachment, PismoOgolne, PostalAddress, Sender};
use gsko_epuap::document::{self, ParsedDocument};
use gsko_epuap::pull::PulledDocument;
use gsko_epuap::receiver::FileStore;
use gsko_epuap::send::{Nadaj, SkrytkaClient};
use gsko_epuap::signing::{document_id_from_url, TpSigningClient};
use gsko_epuap::wssec::SigningIdentity;
use gsko_epuap::xades::{verify_document, XadesTrust};
use gsko_model::{
    Event, EventData, LetterChannel, Pesel, SignatureForm, SignatureStatus, StoredFile, Teryt,
};
use gsko_store::{
    FilingOutcome, FilingRecord, FilingRoute, FilingStatus, FilingStore, FilingUpdate, NewFiling,
    StoreError,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

/// Limits of a filed letter (a portal form, not a document archive).
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_BODY_CHARS: usize = 50_000;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_ATTACHMENTS: usize = 10;
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_TOTAL_ATTACHMENT_BYTES: usize = 20 * 1024 * 1024;
pub const MAX_FILE_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_RETURN_URL_CHARS: usize = 2000;

/// One tenant's filing settings and clients.
#[derive(Clone)]
pub struct FilingTenant {
    /// The office as the letter addresses it (the tenant's name).
    pub office_name: String,
    /// `wnio:MiejscowoscDokumentu`: the place the letter is written to (the office's town).
    pub place: String,
    pub mode: FilingMode,
    /// `/<podmiot>/<box>`: where `nadaj` puts the letter (and where answers go).
    pub filing_box: String,
    pub skrytka: Option<SkrytkaClient>,
    pub signing: TpSigningClient,
    pub files: FileStore,
    pub trust: XadesTrust,
    /// URL prefixes the resident may be sent back to.
    pub allowed_return_urls: Vec<String>,
}

/// Why a filing could not be made or continued.
#[derive(Debug, thiserror::Error)]
pub enum FilingError {
    #[error("filing letters is not configured for this tenant")]
    NotConfigured,
    /// The request is not acceptable; `field` names the JSON field.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the idempotency key was already used for a different letter ({filing_id})")]
    KeyReused { filing_id: String },
    /// The filing is stored; PZ did not take the document. The same request with the same
    /// key tries again.
    #[error("the Profil Zaufany signing service did not take the letter: {0}")]
    SigningUnavailable(String),
    #[error("no such filing")]
    NotFound,
    #[error("keeping a document: {0}")]
    Files(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> FilingError {
    FilingError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The resident's postal address, as the portal sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilingAddress {
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub building: Option<String>,
    #[serde(default)]
    pub flat: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub town: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilingSender {
    pub first_name: String,
    pub surname: String,
    #[serde(default)]
    pub address: Option<FilingAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilingAttachment {
    pub name: String,
    pub mime_type: String,
    pub content_base64: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// The letter as the portal sends it (the JSON body of the query service's endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterForm {
    pub title: String,
    pub body: String,
    /// `RodzajWnioskuRozszerzony/@rodzaj`; default "wniosek".
    #[serde(default)]
    pub kind: Option<String>,
    pub sender: FilingSender,
    #[serde(default)]
    pub attachments: Vec<FilingAttachment>,
    pub return_url: String,
}

/// A resident's request to file a letter.
#[derive(Debug, Clone)]
pub struct FilingRequest {
    pub tenant: Teryt,
    /// The portal's name from configuration.
    pub client: String,
    pub idempotency_key: String,
    /// The resident as the portal authenticated them; the letter must be signed by them.
    pub pesel: Pesel,
    pub letter: LetterForm,
}

/// A filing as the portal sees it (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilingView {
    pub filing_id: String,
    pub tenant: String,
    pub status: FilingStatus,
    /// False when the same idempotency key was sent before and this is the stored filing.
    pub created: bool,
    pub title: String,
    /// `epuap` or `ezd`.
    pub route: FilingRoute,
    /// Where to send the resident to sign; present while it makes sense.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_url: Option<String>,
    /// The official receipt of submission (UPP) ePUAP issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upp_id: Option<String>,
    /// SHA-256 of the signed document (once signed), else of the document given to sign.
    pub document_sha256: String,
    pub signed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub letter_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl FilingView {
    pub fn of(r: &FilingRecord, created: bool) -> FilingView {
        FilingView {
            filing_id: r.filing_id.clone(),
            tenant: r.tenant.to_string(),
            status: r.status,
            created,
            title: r.title.clone(),
            route: r.route,
            sign_url: r
                .sign_url
                .clone()
                .filter(|_| r.status == FilingStatus::AwaitingSignature),
            upp_id: r.upp_id.clone(),
            document_sha256: r
                .signed_sha256
                .clone()
                .unwrap_or_else(|| r.unsigned_sha256.clone()),
            signed: r.signed_sha256.is_some(),
            letter_id: r.letter_id.clone(),
            detail: r.status_detail.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The filing service, shared by the query service's endpoints.
pub struct FilingService {
    store: Arc<dyn FilingStore>,
    tenants: BTreeMap<Teryt, FilingTenant>,
    /// Base URL the resident's browser reaches GSKO at (the PZ callbacks are built from it).
    public_url: String,
    /// Wakes the outbox relay when something was queued.
    outbox_wake: Arc<tokio::sync::Notify>,
}

impl FilingService {
    pub fn new(
        store: Arc<dyn FilingStore>,
        tenants: BTreeMap<Teryt, FilingTenant>,
        public_url: impl Into<String>,
    ) -> Self {
        FilingService {
            store,
            tenants,
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Every tenant whose `[epuap]` section names `tp_signing_url` (and, for `filing =
    /// "epuap"`, `skrytka_url`).
    pub fn from_config(
        store: Arc<dyn FilingStore>,
        cfg: &Config,
        public_url: impl Into<String>,
    ) -> Result<Self, String> {
        let mut tenants = BTreeMap::new();
        for (teryt, (file, t)) in &cfg.tenants {
            let Some(e) = &t.epuap else { continue };
            let Some(tp_url) = &e.tp_signing_url else {
                continue;
            };
            let at = |key: &str| format!("{}: epuap.{key}", file.display());
            let cert = e
                .certificate
                .resolve()
                .map_err(|r| format!("{}: {r}", at("certificate")))?;
            let key = e
                .private_key
                .resolve()
                .map_err(|r| format!("{}: {r}", at("private_key")))?;
            let identity = Arc::new(
                SigningIdentity::from_pem(cert.expose(), key.expose())
                    .map_err(|r| format!("{}: {r}", at("certificate")))?,
            );
            let trust = match &e.pz_certificates {
                Some(pz) => {
                    let pem = pz
                        .resolve()
                        .map_err(|r| format!("{}: {r}", at("pz_certificates")))?;
                    XadesTrust::with_pz_certificates_pem(pem.expose())
                        .map_err(|r| format!("{}: {r}", at("pz_certificates")))?
                }
                None => XadesTrust::default(),
            };
            let documents = match &e.documents {
                Some(d) => cfg.resolve_path(d),
                None => {
                    cfg.resolve_path(&std::path::PathBuf::from("documents").join(teryt.as_str()))
                }
            };
            let signing =
                TpSigningClient::new(tp_url.clone(), identity.clone(), RetryPolicy::default())
                    .map_err(|r| format!("{}: {r}", at("tp_signing_url")))?;
            let skrytka = match (&e.skrytka_url, e.filing) {
                (Some(u), _) => Some(
                    SkrytkaClient::new(
                        u.clone(),
                        identity.clone(),
                        e.podmiot.clone(),
                        RetryPolicy::default(),
                    )
                    .map_err(|r| format!("{}: {r}", at("skrytka_url")))?,
                ),
                (None, FilingMode::Epuap) => {
                    return Err(format!(
                        "{}: needed for filing = \"epuap\"",
                        at("skrytka_url")
                    ))
                }
                (None, FilingMode::Ezd) => None,
            };
            let filing_box = e
                .filing_box_address()
                .ok_or_else(|| format!("{}: no box to file to", at("boxes")))?;
            tenants.insert(
                teryt.clone(),
                FilingTenant {
                    office_name: t.name.clone(),
                    place: t.name.clone(),
                    mode: e.filing,
                    filing_box,
                    skrytka,
                    signing,
                    files: FileStore::new(documents),
                    trust,
                    allowed_return_urls: e.allowed_return_urls.clone(),
                },
            );
        }
        Ok(FilingService::new(store, tenants, public_url))
    }

    pub fn store(&self) -> &Arc<dyn FilingStore> {
        &self.store
    }

    /// Wakes this relay instead of the service's own notifier (the daemon runs one relay for
    /// the database's outbox).
    pub fn with_outbox_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.outbox_wake = wake;
        self
    }

    pub fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.outbox_wake.clone()
    }

    /// The tenants residents can file letters in.
    pub fn tenants(&self) -> impl Iterator<Item = &Teryt> {
        self.tenants.keys()
    }

    pub fn tenant(&self, t: &Teryt) -> Option<&FilingTenant> {
        self.tenants.get(t)
    }

    /// Where PZ sends the resident after signing.
    pub fn signed_url(&self, tenant: &Teryt, filing_id: &str) -> String {
        format!("{}/filing/{tenant}/{filing_id}/signed", self.public_url)
    }

    /// Where PZ sends the resident after cancelling.
    pub fn cancelled_url(&self, tenant: &Teryt, filing_id: &str) -> String {
        format!("{}/filing/{tenant}/{filing_id}/cancelled", self.public_url)
    }

    /// Stores the letter, then hands it to PZ; see the crate documentation.
    pub async fn file(&self, req: FilingRequest) -> Result<FilingView, FilingError> {
        let tenant = self
            .tenants
            .get(&req.tenant)
            .ok_or(FilingError::NotConfigured)?;
        let checked = check(&req.letter, tenant)?;
        let request_hash = request_hash(&req, &checked);
        let resident = resident_ref(&req.tenant, &req.pesel);
        let document = compose::pismo_ogolne(&PismoOgolne {
            addressee: tenant.office_name.clone(),
            sender: Sender {
                first_name: checked.first_name.clone(),
                surname: checked.surname.clone(),
                pesel: Some(req.pesel.as_str().to_owned()),
                address: checked.address.clone(),
            },
            place: tenant.place.clone(),
            date: Utc::now().date_naive(),
            title: checked.title.clone(),
            kind: checked.kind.clone(),
            paragraphs: checked.paragraphs.clone(),
            attachments: checked.attachments.clone(),
        });
        // Kept before the filing refers to it (content-addressed: a repeated request that
        // finds its filing stored leaves at most an unreferenced copy).
        let unsigned_sha256 = tenant.files.put(&document)?;
        let new = NewFiling {
            tenant: req.tenant.clone(),
            filing_id: new_id(),
            client: req.client.clone(),
            idempotency_key: req.idempotency_key.clone(),
            request_hash,
            resident_ref: resident,
            route: route_of(tenant.mode),
            title: checked.title.clone(),
            return_url: checked.return_url.clone(),
            unsigned_sha256,
        };
        let record = match self.store.create_filing(&new).await? {
            FilingOutcome::Created(r) => {
                tracing::info!(tenant = %req.tenant, filing = %r.filing_id, "letter filed, handing it to PZ");
                return self.hand_to_pz(tenant, r, true).await;
            }
            FilingOutcome::Existing(r) => r,
            FilingOutcome::KeyReused { filing_id } => {
                return Err(FilingError::KeyReused { filing_id })
            }
        };
        self.hand_to_pz(tenant, record, false).await
    }

    /// Hands a `created` filing's document to PZ; any other filing is answered as it stands.
    async fn hand_to_pz(
        &self,
        tenant: &FilingTenant,
        r: FilingRecord,
        created: bool,
    ) -> Result<FilingView, FilingError> {
        if r.status != FilingStatus::Created {
            return Ok(FilingView::of(&r, created));
        }
        let document = tenant.files.get(&r.unsigned_sha256)?;
        let answer = tenant
            .signing
            .add_document(
                &document,
                &self.signed_url(&r.tenant, &r.filing_id),
                &self.cancelled_url(&r.tenant, &r.filing_id),
                &r.title,
            )
            .await;
        let (update, failure) = match answer {
            Ok(url) if document_id_from_url(&url).is_some() => {
                let mut u = FilingUpdate::to(FilingStatus::AwaitingSignature);
                u.sign_url = Some(url.trim().to_owned());
                (u, None)
            }
            Ok(_) => {
                let why = "PZ answered a signing address that is not an absolute http(s) URL";
                (
                    FilingUpdate::to(FilingStatus::Created).detail(why),
                    Some(why.to_owned()),
                )
            }
            Err(e) => {
                tracing::warn!(tenant = %r.tenant, filing = %r.filing_id, error = %e, "PZ did not take the letter");
                (
                    FilingUpdate::to(FilingStatus::Created).detail(format!("tpSigning5: {e}")),
                    Some(e.to_string()),
                )
            }
        };
        let moved = self
            .store
            .update_filing(
                &r.tenant,
                &r.filing_id,
                &[FilingStatus::Created],
                &update,
                &[],
            )
            .await?;
        if let Some(why) = failure {
            return Err(FilingError::SigningUnavailable(why));
        }
        match moved {
            Some(m) => Ok(FilingView::of(&m, created)),
            // Another request moved it meanwhile: answer it as it stands now.
            None => self
                .store
                .filing(&r.tenant, &r.filing_id)
                .await?
                .map(|m| FilingView::of(&m, created))
                .ok_or(FilingError::NotFound),
        }
    }

    /// The filing, shown only to the resident who filed it.
    pub async fn filing(
        &self,
        tenant: &Teryt,
        filing_id: &str,
        pesel: &Pesel,
    ) -> Result<Option<FilingView>, FilingError> {
        Ok(self
            .store
            .filing(tenant, filing_id)
            .await?
            .filter(|r| r.resident_ref == resident_ref(tenant, pesel))
            .map(|r| FilingView::of(&r, false)))
    }

    /// The resident came back from PZ having signed: fetch, verify, keep, submit. Returns the
    /// filing as it then stands; repeating it is harmless.
    pub async fn signed(
        &self,
        tenant_id: &Teryt,
        filing_id: &str,
    ) -> Result<FilingRecord, FilingError> {
        let tenant = self.tenants.get(tenant_id).ok_or(FilingError::NotFound)?;
        let r = self
            .store
            .filing(tenant_id, filing_id)
            .await?
            .ok_or(FilingError::NotFound)?;
        let r = match r.status {
            FilingStatus::AwaitingSignature => self.take_signed(tenant, r).await?,
            _ => r,
        };
        match r.status {
            FilingStatus::Signed => self.submit(tenant, r).await,
            _ => Ok(r),
        }
    }

    /// The resident cancelled at PZ.
    pub async fn cancelled(
        &self,
        tenant: &Teryt,
        filing_id: &str,
    ) -> Result<FilingRecord, FilingError> {
        if !self.tenants.contains_key(tenant) {
            return Err(FilingError::NotFound);
        }
        let moved = self
            .store
            .update_filing(
                tenant,
                filing_id,
                &[FilingStatus::Created, FilingStatus::AwaitingSignature],
                &FilingUpdate::to(FilingStatus::Cancelled)
                    .detail("cancelled by the resident at Profil Zaufany"),
                &[],
            )
            .await?;
        match moved {
            Some(r) => Ok(r),
            None => self
                .store
                .filing(tenant, filing_id)
                .await?
                .ok_or(FilingError::NotFound),
        }
    }

    /// `awaiting_signature` → `signed` (verified and kept) or `failed`; unchanged while PZ has
    /// no signed document to give.
    async fn take_signed(
        &self,
        tenant: &FilingTenant,
        r: FilingRecord,
    ) -> Result<FilingRecord, FilingError> {
        let Some(id) = r.sign_url.as_deref().and_then(document_id_from_url) else {
            return Ok(r);
        };
        let signed = match tenant.signing.signed_document(&id).await {
            Ok(Some(doc)) => doc,
            Ok(None) => return Ok(r),
            Err(e) => {
                // Not signed yet, cancelled there, or PZ unavailable: the filing waits (the
                // resident may come back; `cancelled` ends it).
                tracing::info!(tenant = %r.tenant, filing = %r.filing_id, error = %e, "PZ gave no signed document");
                return Ok(r);
            }
        };
        let unsigned = tenant.files.get(&r.unsigned_sha256)?;
        let update = match check_signed(&r, &unsigned, &signed, &tenant.trust) {
            Ok(()) => {
                let sha = tenant.files.put(&signed)?;
                let mut u = FilingUpdate::to(FilingStatus::Signed);
                u.signed_sha256 = Some(sha);
                u
            }
            Err(reason) => {
                tracing::warn!(tenant = %r.tenant, filing = %r.filing_id, reason = %reason, "signed letter refused");
                FilingUpdate::to(FilingStatus::Failed).detail(reason)
            }
        };
        self.moved(&r, &[FilingStatus::AwaitingSignature], &update, &[])
            .await
    }

    /// `signed` → `submitted` (or `uncertain`, `failed`; back to `signed` when ePUAP
    /// certainly did not take it).
    async fn submit(
        &self,
        tenant: &FilingTenant,
        r: FilingRecord,
    ) -> Result<FilingRecord, FilingError> {
        let signed_sha = r.signed_sha256.clone().ok_or_else(|| StoreError::Corrupt {
            table: "filings",
            key: r.filing_id.clone(),
            reason: "signed without the signed document's hash".into(),
        })?;
        let signed = tenant.files.get(&signed_sha)?;
        match (r.route, &tenant.skrytka) {
            (FilingRoute::Ezd, _) => {
                let (letter_id, events) = ezd_events(tenant, &r, &signed, &signed_sha)?;
                let mut u = FilingUpdate::to(FilingStatus::Submitted);
                u.letter_id = Some(letter_id);
                let moved = self.moved(&r, &[FilingStatus::Signed], &u, &events).await?;
                self.outbox_wake.notify_one();
                Ok(moved)
            }
            (FilingRoute::Epuap, None) => {
                let u = FilingUpdate::to(FilingStatus::Signed)
                    .detail("WS-Skrytka is not configured (epuap.skrytka_url)");
                self.moved(&r, &[FilingStatus::Signed], &u, &[]).await
            }
            (FilingRoute::Epuap, Some(skrytka)) => {
                // Claimed first: only the request that moved it to `submitting` sends it.
                let claimed = self
                    .store
                    .update_filing(
                        &r.tenant,
                        &r.filing_id,
                        &[FilingStatus::Signed],
                        &FilingUpdate::to(FilingStatus::Submitting),
                        &[],
                    )
                    .await?;
                let Some(r) = claimed else {
                    return self
                        .store
                        .filing(&r.tenant, &r.filing_id)
                        .await?
                        .ok_or(FilingError::NotFound);
                };
                let answer = skrytka
                    .nadaj(&Nadaj {
                        target_box: tenant.filing_box.clone(),
                        reply_box: tenant.filing_box.clone(),
                        file_name: format!("pismo-{}.xml", r.filing_id),
                        mime_type: "text/xml".into(),
                        content: signed,
                        dry_run: false,
                        extra: None,
                    })
                    .await;
                let update = match answer {
                    Ok(receipt) => {
                        let mut u = FilingUpdate::to(FilingStatus::Submitted);
                        if let Some(upp) = &receipt.upp {
                            u.upp_sha256 = Some(tenant.files.put(upp)?);
                        }
                        u.upp_id = receipt.upp_id.clone();
                        u.epuap_document_id =
                            Some(receipt.document_id.clone()).filter(|d| !d.is_empty());
                        if receipt.upp_id.is_none() {
                            u.status_detail =
                                Some("ePUAP took the letter but issued no UPP id".into());
                        }
                        tracing::info!(tenant = %r.tenant, filing = %r.filing_id, "letter submitted to ePUAP");
                        u
                    }
                    Err(e @ ClientError::Uncertain { .. }) => {
                        tracing::warn!(tenant = %r.tenant, filing = %r.filing_id, error = %e, "nadaj outcome unknown; left for an admin");
                        FilingUpdate::to(FilingStatus::Uncertain).detail(format!("nadaj: {e}"))
                    }
                    Err(e @ ClientError::Unavailable { .. }) => {
                        tracing::warn!(tenant = %r.tenant, filing = %r.filing_id, error = %e, "ePUAP unavailable; the next callback submits again");
                        FilingUpdate::to(FilingStatus::Signed).detail(format!("nadaj: {e}"))
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %r.tenant, filing = %r.filing_id, error = %e, "ePUAP refused the letter");
                        FilingUpdate::to(FilingStatus::Failed).detail(format!("nadaj: {e}"))
                    }
                };
                self.moved(&r, &[FilingStatus::Submitting], &update, &[])
                    .await
            }
        }
    }

    /// Applies a change; when another request changed the filing first, its current state.
    async fn moved(
        &self,
        r: &FilingRecord,
        from: &[FilingStatus],
        update: &FilingUpdate,
        outbox: &[Event],
    ) -> Result<FilingRecord, FilingError> {
        match self
            .store
            .update_filing(&r.tenant, &r.filing_id, from, update, outbox)
            .await?
        {
            Some(m) => Ok(m),
            None => self
                .store
                .filing(&r.tenant, &r.filing_id)
                .await?
                .ok_or(FilingError::NotFound),
        }
    }

    /// Where the resident's browser goes after a callback: the filing's return URL with
    /// `filing` and `status` added.
    pub fn return_to(r: &FilingRecord) -> String {
        let sep = if r.return_url.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}filing={}&status={}",
            r.return_url,
            r.filing_id,
            r.status.as_str()
        )
    }
}

fn route_of(mode: FilingMode) -> FilingRoute {
    match mode {
        FilingMode::Epuap => FilingRoute::Epuap,
        FilingMode::Ezd => FilingRoute::Ezd,
    }
}

/// The request, checked and normalized.
struct Checked {
    title: String,
    kind: String,
    paragraphs: Vec<String>,
    first_name: String,
    surname: String,
    address: Option<PostalAddress>,
    attachments: Vec<ComposeAttachment>,
    return_url: String,
}

fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

fn line(field: &str, value: &str, max: usize, required: bool) -> Result<String, FilingError> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(invalid(field, format!("longer than {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters or line breaks"));
    }
    Ok(v.to_owned())
}

fn check(l: &LetterForm, tenant: &FilingTenant) -> Result<Checked, FilingError> {
    let title = line("title", &l.title, MAX_TITLE_CHARS, true)?;
    if l.body.chars().count() > MAX_BODY_CHARS {
        return Err(invalid(
            "body",
            format!("longer than {MAX_BODY_CHARS} characters"),
        ));
    }
    if has_control(&l.body) {
        return Err(invalid("body", "contains control characters"));
    }
    let paragraphs = compose::paragraphs(&l.body);
    if paragraphs.is_empty() {
        return Err(invalid("body", "must not be empty"));
    }
    let kind = match &l.kind {
        Some(k) => line("kind", k, 100, true)?,
        None => "wniosek".to_owned(),
    };
    let first_name = line(
        "sender.first_name",
        &l.sender.first_name,
        MAX_NAME_CHARS,
        true,
    )?;
    let surname = line("sender.surname", &l.sender.surname, MAX_NAME_CHARS, true)?;
    let address = match &l.sender.address {
        None => None,
        Some(a) => {
            let part = |name: &str, v: &Option<String>| -> Result<Option<String>, FilingError> {
                match v {
                    None => Ok(None),
                    Some(v) => Ok(Some(line(
                        &format!("sender.address.{name}"),
                        v,
                        MAX_NAME_CHARS,
                        false,
                    )?)
                    .filter(|v| !v.is_empty())),
                }
            };
            Some(PostalAddress {
                street: part("street", &a.street)?,
                building: part("building", &a.building)?,
                flat: part("flat", &a.flat)?,
                postal_code: part("postal_code", &a.postal_code)?,
                town: part("town", &a.town)?,
            })
        }
    };
    if l.attachments.len() > MAX_ATTACHMENTS {
        return Err(invalid(
            "attachments",
            format!("at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    let mut attachments = Vec::new();
    let mut total = 0usize;
    for (i, a) in l.attachments.iter().enumerate() {
        let at = |f: &str| format!("attachments[{i}].{f}");
        let name = line(&at("name"), &a.name, MAX_FILE_NAME_CHARS, true)?;
        if name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(invalid(at("name"), "must be a file name, not a path"));
        }
        if attachments
            .iter()
            .any(|x: &ComposeAttachment| x.name == name)
        {
            return Err(invalid(at("name"), "another attachment has the same name"));
        }
        let mime = a.mime_type.trim();
        if !is_mime(mime) {
            return Err(invalid(
                at("mime_type"),
                "is not a MIME type (type/subtype)",
            ));
        }
        // Refuse an oversized one before decoding it.
        if a.content_base64.len() / 4 * 3 > MAX_ATTACHMENT_BYTES + 3 {
            return Err(invalid(
                at("content_base64"),
                format!("larger than {MAX_ATTACHMENT_BYTES} bytes"),
            ));
        }
        let content = base64::engine::general_purpose::STANDARD
            .decode(a.content_base64.trim())
            .map_err(|e| invalid(at("content_base64"), format!("not base64 ({e})")))?;
        if content.is_empty() {
            return Err(invalid(at("content_base64"), "the attachment is empty"));
        }
        if content.len() > MAX_ATTACHMENT_BYTES {
            return Err(invalid(
                at("content_base64"),
                format!("larger than {MAX_ATTACHMENT_BYTES} bytes"),
            ));
        }
        total += content.len();
        if total > MAX_TOTAL_ATTACHMENT_BYTES {
            return Err(invalid(
                "attachments",
                format!("together larger than {MAX_TOTAL_ATTACHMENT_BYTES} bytes"),
            ));
        }
        let description = match &a.description {
            Some(d) => Some(line(&at("description"), d, MAX_DESCRIPTION_CHARS, false)?)
                .filter(|d| !d.is_empty()),
            None => None,
        };
        attachments.push(ComposeAttachment {
            name,
            mime_type: mime.to_owned(),
            content,
            description,
        });
    }
    let return_url = l.return_url.trim();
    if return_url.len() > MAX_RETURN_URL_CHARS
        || !(return_url.starts_with("https://") || return_url.starts_with("http://"))
        || return_url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("return_url", "is not an absolute http(s) URL"));
    }
    if !tenant
        .allowed_return_urls
        .iter()
        .any(|p| return_url.starts_with(p.as_str()))
    {
        return Err(invalid(
            "return_url",
            "is not one of the tenant's allowed return addresses",
        ));
    }
    Ok(Checked {
        title,
        kind,
        paragraphs,
        first_name,
        surname,
        address,
        attachments,
        return_url: return_url.to_owned(),
    })
}

fn is_mime(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 127
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match s.split_once('/') {
        Some((a, b)) => token(a) && token(b),
        None => false,
    }
}

/// Identifies what was asked: the same key with the same letter is the same filing.
fn request_hash(req: &FilingRequest, c: &Checked) -> String {
    let attachments: Vec<_> = c
        .attachments
        .iter()
        .map(|a| {
            serde_json::json!([
                a.name,
                a.mime_type,
                hex::encode(Sha256::digest(&a.content)),
                a.description
            ])
        })
        .collect();
    let address = c
        .address
        .as_ref()
        .map(|a| serde_json::json!([a.street, a.building, a.flat, a.postal_code, a.town]));
    let canonical = serde_json::json!({
        "resident": resident_ref(&req.tenant, &req.pesel),
        "title": c.title,
        "kind": c.kind,
        "body": c.paragraphs,
        "sender": [c.first_name, c.surname, address],
        "attachments": attachments,
        "return_url": c.return_url,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// A one-way reference to the resident: a filing is shown only to them, and the signer's
/// PESEL is compared with it, without storing the PESEL.
pub fn resident_ref(tenant: &Teryt, pesel: &Pesel) -> String {
    let mut h = Sha256::new();
    h.update(b"gsko-filing-resident/");
    h.update(tenant.as_str().as_bytes());
    h.update(b"/");
    h.update(pesel.as_str().as_bytes());
    hex::encode(h.finalize())
}

/// 128 bits of randomness, hex.
fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Accepts the signed document only as the filer's podpis zaufany over the letter GSKO built.
/// The reason given names what is wrong, without personal data.
pub fn check_signed(
    r: &FilingRecord,
    unsigned: &[u8],
    signed: &[u8],
    trust: &XadesTrust,
) -> Result<(), String> {
    let report = verify_document(signed, trust);
    if report.status() != SignatureStatus::Valid {
        return Err(format!(
            "the signature is not valid ({:?}): {}",
            report.status(),
            report.problems.join("; ")
        ));
    }
    if report.form != Some(SignatureForm::PodpisZaufany) {
        return Err("the letter is not signed with a podpis zaufany".into());
    }
    let signer = report
        .signer_pesel
        .as_deref()
        .and_then(|p| Pesel::from_str(p).ok())
        .ok_or("the signature names no valid PESEL")?;
    if resident_ref(&r.tenant, &signer) != r.resident_ref {
        return Err("signed by a person other than the resident who filed the letter".into());
    }
    let parse =
        |x: &[u8]| document::parse(x, MAX_TOTAL_ATTACHMENT_BYTES).map_err(|e| e.to_string());
    let want = parse(unsigned).map_err(|e| format!("the filed document cannot be read: {e}"))?;
    let got = parse(signed).map_err(|e| format!("the signed document cannot be read: {e}"))?;
    let same = |a: &ParsedDocument, b: &ParsedDocument| {
        a.form_namespace == b.form_namespace
            && a.title == b.title
            && a.body == b.body
            && a.senders == b.senders
            && a.addressees == b.addressees
            && a.attachments.len() == b.attachments.len()
            && a.attachments
                .iter()
                .zip(&b.attachments)
                .all(|(x, y)| x.name == y.name && x.sha256 == y.sha256)
    };
    if !same(&want, &got) {
        return Err("the signed document differs from the letter that was filed".into());
    }
    Ok(())
}

/// The letter for EZD (channel `gsko_portal`) and its two messages, ids stable per document.
fn ezd_events(
    tenant: &FilingTenant,
    r: &FilingRecord,
    signed: &[u8],
    signed_sha: &str,
) -> Result<(String, Vec<Event>), FilingError> {
    let parsed = document::parse(signed, MAX_TOTAL_ATTACHMENT_BYTES);
    let mut attachments = Vec::new();
    if let Ok(p) = &parsed {
        for a in &p.attachments {
            if let Some(content) = &a.content {
                attachments.push(StoredFile {
                    name: a.name.clone(),
                    mime_type: a
                        .mime_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    size_bytes: content.len() as u64,
                    sha256: tenant.files.put(content)?,
                    description: a.description.clone(),
                });
            }
        }
    }
    let pulled = PulledDocument {
        file_name: format!("pismo-{}.xml", r.filing_id),
        mime_type: Some("text/xml".into()),
        content: signed.to_vec(),
        sent_at: Some(r.updated_at.to_rfc3339()),
        box_address: None,
        reply_address: None,
        test: false,
        sender_login: None,
        sender_system: None,
        subject_id: None,
        subject_kind: None,
        subject_first_name: None,
        subject_surname: None,
        subject_pesel: None,
        subject_nip: None,
        subject_consent: None,
        epuap_document_id: None,
    };
    let verified = verify_document(signed, &tenant.trust);
    let mut letter =
        gsko_epuap::receiver::letter_from(&pulled, signed_sha, parsed, attachments, verified);
    letter.channel = LetterChannel::GskoPortal;
    letter.letter_id = format!("sha256-{signed_sha}");
    let source = format!("/gsko/filing/{}", r.tenant);
    let key = format!("{}/{}", letter.letter_id, signed_sha);
    let received = Event::new(
        source.clone(),
        r.tenant.clone(),
        1,
        EventData::LetterReceived(letter.clone()),
    )
    .with_stable_id(&key)
    .with_correlation(letter.letter_id.clone());
    let register = Event::new(
        source,
        r.tenant.clone(),
        1,
        EventData::LetterRegister(letter.clone()),
    )
    .with_stable_id(&format!("register/{key}"))
    .with_correlation(letter.letter_id.clone());
    Ok((letter.letter_id, vec![received, register]))
}
