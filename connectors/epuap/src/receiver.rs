//! The WS-Pull receiver of one box: `pobierzNastepny` → store the document and its attachments
//! durably (content-addressed files) → publish `letter.received` and wait for the broker's
//! confirm → only then `potwierdzOdebranie` with the document's digest.
//!
//! A crash at any point loses no letter: until the confirm, ePUAP keeps the document at the
//! head of the box and the next run takes it again. It publishes none twice in effect: the
//! letter id and the event id derive from the document (ePUAP's document id, or its SHA-256,
//! and the content hash), so a document taken again after a crash produces the same event,
//! which consumers recognise. A document that arrives damaged (its digest then does not match
//! and ePUAP refuses the confirm) is taken again on the next run; the corrected copy has another
//! content hash and therefore its own event.
//!
//! Each letter's XAdES signature is verified ([`crate::xades`]) and its signer compared with
//! the declared sender; whatever is wrong is written on the letter, which goes on regardless.
//! With the event goes the command `letter.register` to the tenant's EZD connector (not for
//! ePUAP test submissions), published in the same confirmed batch.

use crate::client::{ClientError, PullClient};
use crate::document::{parse, DocumentError, ParsedDocument, PartyKind};
use crate::pull::PulledDocument;
use gsko_bus::{Bus, BusError, Outgoing};
use gsko_model::{
    ContactChannel, ContactKind, Event, EventData, Letter, LetterChannel, LetterForm, LetterSender,
    LetterSignature, Nip, Pesel, Regon, SenderKind, StoredFile, Teryt,
};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

/// Files kept by the SHA-256 of their content (`<root>/<first two hex>/<sha256>`), written
/// atomically and synced before anything refers to them.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore { root: root.into() }
    }

    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(sha256)
    }

    /// Stores `bytes` (once: an existing file with that hash is the same content) and returns
    /// the SHA-256 in hex.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.path_of(&sha);
        if path.exists() {
            return Ok(sha);
        }
        let dir = path.parent().expect("a file under the root");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{sha}.{}", std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(sha)
    }

    pub fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path_of(sha256))
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveReport {
    /// Letters published and confirmed (removed from the box).
    pub received: u64,
    /// Letters published but not confirmed (the box keeps them; the next run takes them again).
    pub unconfirmed: u64,
    /// UPP/UPD receipts taken by the [`ReceiptSink`] and confirmed.
    pub receipts: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("storing a document: {0}")]
    Store(#[from] std::io::Error),
    #[error("publishing letter.received: {0}")]
    Bus(#[from] BusError),
    /// The sink could not record a receipt (it stays in the box for the next run).
    #[error("recording a UPP/UPD receipt: {0}")]
    Receipt(String),
}

/// Where the official receipts pulled from a box go: a UPD (a decision GSKO delivered was
/// collected) or a UPP (a document GSKO sent was submitted) arrives in the office's own box,
/// like a letter. The receiver stores it and asks the sink; only when the sink has taken it
/// (recorded durably, `Ok(true)`) is it confirmed at ePUAP. `Ok(false)`: not one of GSKO's
/// (e.g. a receipt for something the EZD sent itself) — it is then forwarded as a letter, so
/// nothing is lost.
pub trait ReceiptSink: Send + Sync {
    fn receipt<'a>(
        &'a self,
        tenant: &'a Teryt,
        receipt: &'a crate::upo::Poswiadczenie,
        stored: &'a StoredFile,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 'a>>;
}

/// One box of one tenant.
pub struct Receiver {
    pub tenant: Teryt,
    pub client: PullClient,
    pub files: FileStore,
    pub max_attachment_bytes: usize,
    /// Which certificates make a podpis zaufany.
    pub signatures: crate::xades::XadesTrust,
    /// Takes the UPD/UPP receipts; without one they are forwarded as letters.
    pub receipts: Option<std::sync::Arc<dyn ReceiptSink>>,
}

impl Receiver {
    /// Takes every document waiting in the box, one at a time, in the order ePUAP gives them.
    /// Stops at the first document whose confirm ePUAP refuses (it stays at the head).
    pub async fn run_once(&self, bus: &dyn Bus) -> Result<ReceiveReport, ReceiverError> {
        let mut report = ReceiveReport::default();
        while let Some(doc) = self.client.next().await? {
            if self.take_receipt(&doc).await? {
                match self.client.confirm(&doc.digest()).await {
                    Ok(()) => report.receipts += 1,
                    Err(e) => {
                        report.unconfirmed += 1;
                        tracing::warn!(tenant = %self.tenant, error = %e, "receipt taken but not confirmed; the box keeps it for the next run");
                        break;
                    }
                }
                continue;
            }
            let letter = self.store(&doc)?;
            let event = letter_event(&self.tenant, &letter);
            let mut batch = vec![Outgoing::event(&event)];
            if !letter.test {
                batch.push(Outgoing::event(&register_command(&self.tenant, &letter)));
            }
            bus.publish(&batch).await?;
            match self.client.confirm(&doc.digest()).await {
                Ok(()) => {
                    report.received += 1;
                    tracing::info!(tenant = %self.tenant, letter = %letter.letter_id, event = %event.id, "letter received");
                }
                Err(e) => {
                    report.unconfirmed += 1;
                    tracing::warn!(tenant = %self.tenant, letter = %letter.letter_id, error = %e, "letter published but not confirmed; the box keeps it for the next run");
                    break;
                }
            }
        }
        Ok(report)
    }

    /// A UPP/UPD handed to the sink: stored, then `true` when the sink took it.
    async fn take_receipt(&self, doc: &PulledDocument) -> Result<bool, ReceiverError> {
        let Some(sink) = &self.receipts else {
            return Ok(false);
        };
        if !crate::upo::is_upo(&doc.content) {
            return Ok(false);
        }
        let receipt = match crate::upo::read(&doc.content) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(tenant = %self.tenant, error = %e, "an unreadable UPP/UPD is forwarded as a letter");
                return Ok(false);
            }
        };
        let sha = self.files.put(&doc.content)?;
        let stored = StoredFile {
            name: doc.file_name.clone(),
            mime_type: doc.mime_type.clone().unwrap_or_else(|| "text/xml".into()),
            size_bytes: doc.content.len() as u64,
            sha256: sha,
            description: None,
        };
        sink.receipt(&self.tenant, &receipt, &stored)
            .await
            .map_err(ReceiverError::Receipt)
    }

    /// Stores the document and its attachments, and reads it into a letter.
    fn store(&self, doc: &PulledDocument) -> Result<Letter, std::io::Error> {
        let sha = self.files.put(&doc.content)?;
        let parsed = parse(&doc.content, self.max_attachment_bytes);
        let mut attachments = Vec::new();
        if let Ok(p) = &parsed {
            for a in &p.attachments {
                if let Some(content) = &a.content {
                    let sha = self.files.put(content)?;
                    attachments.push(StoredFile {
                        name: a.name.clone(),
                        mime_type: a
                            .mime_type
                            .clone()
                            .unwrap_or_else(|| "application/octet-stream".into()),
                        size_bytes: content.len() as u64,
                        sha256: sha,
                        description: a.description.clone(),
                    });
                }
            }
        }
        let signature = crate::xades::verify_document(&doc.content, &self.signatures);
        Ok(letter_from(doc, &sha, parsed, attachments, signature))
    }
}

/// The `letter.received` event of a letter; its id derives from the letter and the content.
pub fn letter_event(tenant: &Teryt, letter: &Letter) -> Event {
    Event::new(
        format!("/gsko/epuap/{tenant}"),
        tenant.clone(),
        1,
        EventData::LetterReceived(letter.clone()),
    )
    .with_stable_id(&format!("{}/{}", letter.letter_id, letter.document.sha256))
    .with_correlation(letter.letter_id.clone())
}

/// The command `letter.register` for a received letter: the tenant's EZD connector registers
/// it. Its id derives from the letter, like the event's.
pub fn register_command(tenant: &Teryt, letter: &Letter) -> Event {
    Event::new(
        format!("/gsko/epuap/{tenant}"),
        tenant.clone(),
        1,
        EventData::LetterRegister(letter.clone()),
    )
    .with_stable_id(&format!(
        "register/{}/{}",
        letter.letter_id, letter.document.sha256
    ))
    .with_correlation(letter.letter_id.clone())
}

/// The normalized letter: what the document says, completed from the ePUAP envelope, with
/// every problem named.
pub fn letter_from(
    doc: &PulledDocument,
    sha256: &str,
    parsed: Result<ParsedDocument, DocumentError>,
    attachments: Vec<StoredFile>,
    verified: crate::xades::SignatureReport,
) -> Letter {
    let mut problems = Vec::new();
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("the document cannot be read: {e}"));
            ParsedDocument::default()
        }
    };
    problems.extend(
        parsed
            .problems
            .iter()
            .filter(|p| !p.what.contains("not signed"))
            .map(|p| format!("{}: {}", p.at, p.what)),
    );
    let party = parsed.senders.first();
    let kind = match (party.and_then(|p| p.kind), doc.subject_kind.as_deref()) {
        (Some(PartyKind::Institution), _) | (None, Some("P")) => SenderKind::Organisation,
        _ => SenderKind::Person,
    };
    let name = party
        .map(|p| p.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| {
            let n = [doc.subject_first_name.clone(), doc.subject_surname.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!n.is_empty()).then_some(n)
        })
        .unwrap_or_else(|| "(nadawca nieznany)".into());
    let pesel_text = party
        .and_then(|p| p.pesel.clone())
        .or_else(|| doc.subject_pesel.clone());
    let pesel = pesel_text.and_then(|t| match Pesel::from_str(&t) {
        Ok(p) => Some(p),
        Err(e) => {
            problems.push(format!("sender PESEL: {e}"));
            None
        }
    });
    let nip = party
        .and_then(|p| p.nip.clone())
        .or_else(|| doc.subject_nip.clone())
        .and_then(|t| match Nip::from_str(&t) {
            Ok(n) => Some(n),
            Err(e) => {
                problems.push(format!("sender NIP: {e}"));
                None
            }
        });
    let regon = party
        .and_then(|p| p.regon.clone())
        .and_then(|t| Regon::from_str(&t).ok());
    let contacts = party
        .and_then(|p| p.email.clone())
        .map(|e| {
            vec![ContactChannel {
                kind: ContactKind::Email,
                value: e,
            }]
        })
        .unwrap_or_default();
    let signature = signature_of(verified, pesel.as_ref());
    let letter_id = match &doc.epuap_document_id {
        Some(id) if id.len() <= 100 && id.bytes().all(|b| b.is_ascii_graphic()) => {
            format!("epuap-{id}")
        }
        _ => format!("sha256-{sha256}"),
    };
    let received_at = doc
        .sent_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(chrono::Utc::now);
    Letter {
        letter_id,
        channel: LetterChannel::Epuap,
        received_at,
        epuap_box: doc.box_address.clone(),
        sender: LetterSender {
            kind,
            name,
            pesel,
            nip,
            regon,
            epuap_login: doc.sender_login.clone(),
            reply_address: doc.reply_address.clone(),
            address: None,
            contacts,
        },
        addressee: parsed.addressees.first().map(|a| a.name.clone()),
        title: parsed
            .title
            .clone()
            .unwrap_or_else(|| doc.file_name.clone()),
        body_text: (!parsed.body.is_empty()).then(|| parsed.body.clone()),
        form: (!parsed.form_namespace.is_empty()).then(|| LetterForm {
            namespace: parsed.form_namespace.clone(),
            name: parsed.form_name.clone(),
        }),
        document: StoredFile {
            name: doc.file_name.clone(),
            mime_type: doc
                .mime_type
                .clone()
                .unwrap_or_else(|| "application/xml".into()),
            size_bytes: doc.content.len() as u64,
            sha256: sha256.to_owned(),
            description: None,
        },
        attachments,
        signature,
        test: doc.test,
        upp_id: None,
        problems,
    }
}

/// The letter's signature as the model has it; the signer is compared with the declared
/// sender (a mismatch is the signature's problem, without the PESELs in the text).
fn signature_of(
    verified: crate::xades::SignatureReport,
    declared: Option<&Pesel>,
) -> LetterSignature {
    let mut sig_problems = verified.problems.clone();
    let signer_pesel = verified
        .signer_pesel
        .as_deref()
        .and_then(|p| match Pesel::from_str(p) {
            Ok(p) => Some(p),
            Err(e) => {
                sig_problems.push(format!(
                    "the signer's PESEL in the signature is not valid: {e}"
                ));
                None
            }
        });
    if let (Some(signer), Some(declared)) = (&signer_pesel, declared) {
        if signer != declared {
            sig_problems.push(
                "signed by a person other than the declared sender (the PESEL in the signature differs from the sender's in the letter)".into(),
            );
        }
    }
    LetterSignature {
        status: verified.status(),
        form: verified.form,
        signer_pesel,
        signer_name: verified.signer_name,
        signed_at: verified.signed_at,
        problems: sig_problems,
    }
}
