//! Letters in, decisions out: the payloads of `pl.gsko.letter.received.v1`,
//! `pl.gsko.letter.register.v1` (command), `pl.gsko.decision.deliver.v1` (command) and
//! `pl.gsko.decision.delivered.v1`.
//!
//! File contents (the original document, its attachments, a decision, a UPD) never travel in a
//! message: they are stored by their SHA-256 elsewhere and messages carry a [`StoredFile`]. The
//! texts of a letter (sender, title, body) are personal data: stored, never logged.

use crate::{Address, AdeAddress, CaseRef, ContactChannel, Nip, Pesel, Regon};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A file whose content is kept in GSKO's content store under its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredFile {
    /// File name as the sender gave it (`nazwaPliku`), e.g. `skan.pdf`.
    pub name: String,
    /// MIME type as declared (`format`, `typPliku`), e.g. `application/pdf`.
    pub mime_type: String,
    pub size_bytes: u64,
    /// SHA-256 of the content, lowercase hex: the key in the content store.
    pub sha256: String,
    /// What the sender said the file is (`OpisZalacznika`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// How a letter reached the municipality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LetterChannel {
    /// Pulled from the municipality's ePUAP box (WS-Pull).
    Epuap,
    /// Filed through GSKO's portal and handed straight to the EZD connector, without ePUAP.
    /// (A letter GSKO files into the ePUAP box comes back through the box as `epuap`.)
    GskoPortal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// osoba fizyczna (`typOsoby` F, `oso:Osoba`)
    Person,
    /// a company, institution or other organisation (`typOsoby` P, `inst:Instytucja`)
    Organisation,
}

/// Who sent a letter, as the document declares it (`str:Nadawcy`), completed from the ePUAP
/// envelope (`danePodmiotu`, `daneNadawcy`, `adresOdpowiedzi`). Who *signed* it is in
/// [`LetterSignature`]; the two may differ, which is then one of the signature's problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterSender {
    pub kind: SenderKind,
    /// Given name and surname of a person, full name of an organisation.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pesel: Option<Pesel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nip: Option<Nip>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regon: Option<Regon>,
    /// The sender's ePUAP user id (`daneNadawcy/uzytkownik`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epuap_login: Option<String>,
    /// The ePUAP box to answer to (`adresOdpowiedzi`), e.g. `/jkowalski/skrytka`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_address: Option<String>,
    /// Postal address as written in the document (`adr:Adres`), when it has a postal code and
    /// a town.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// E-mail addresses and phone numbers from the document (`adr:Kontakt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ContactChannel>,
}

/// Which CRD form (wzór) a document is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterForm {
    /// Namespace of the document's root element, which identifies the form, e.g.
    /// `http://crd.gov.pl/wzor/2013/12/12/1410/` ("Pismo ogólne do podmiotu publicznego").
    pub namespace: String,
    /// The document's own name for itself (`str:NazwaDokumentu`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The outcome of verifying a document's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureStatus {
    /// The signature verifies over the whole document and its signer is identified.
    Valid,
    /// A signature is there but does not verify (the document was changed after signing, a
    /// digest or the signature value does not match).
    Invalid,
    /// The document carries no signature.
    Absent,
    /// A signature is there but could not be checked (unknown algorithm or certificate
    /// chain, unreadable signature structure, an unparseable document).
    Unverifiable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureForm {
    /// Podpis zaufany (Profil Zaufany): XAdES by a system certificate, the person in
    /// `xades:ClaimedRole` (`PodpisZP` or `EPSignature`).
    PodpisZaufany,
    /// Qualified electronic signature: the person in the certificate.
    Qualified,
    /// Any other XAdES signature (e.g. podpis osobisty, a non-qualified certificate).
    Other,
}

/// A document's signature as GSKO verified it. A letter is kept and forwarded whatever this
/// says; `problems` say exactly what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterSignature {
    pub status: SignatureStatus,
    /// Absent when there is no signature or its form could not be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<SignatureForm>,
    /// The signer's PESEL from the signature (never from the declared sender); absent when
    /// the signature names none or it fails its checksum (which is then a problem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_pesel: Option<Pesel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_name: Option<String>,
    /// `xades:SigningTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<DateTime<Utc>>,
    /// What is wrong, one precise sentence each (e.g. "reference digest of URI \"\" does not
    /// match", "signed by a person other than the declared sender"). Empty when nothing is.
    /// A document with several signatures is described by its first; the others are reported
    /// here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A letter from a resident or organisation: the body of both `pl.gsko.letter.received.v1`
/// (the event: it arrived) and `pl.gsko.letter.register.v1` (the command to the tenant's EZD
/// connector: register it as an incoming item). The command carries the whole letter rather
/// than a reference, because a connector reads nothing but its messages (and the content store
/// by hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Letter {
    /// Stable id derived from the source document, the same however often it is pulled:
    /// `epuap-<ePUAP document id>`, or `sha256-<document digest>` when ePUAP gives no id and
    /// for letters filed through GSKO. Printable ASCII, no spaces, at most 128 characters.
    pub letter_id: String,
    pub channel: LetterChannel,
    /// When the letter was submitted (`dataNadania`) or, filed through GSKO, accepted.
    pub received_at: DateTime<Utc>,
    /// The municipality's ePUAP box it arrived in (`adresSkrytki`, e.g. `/ug_nowogrodziec/skrytka`);
    /// absent for letters that did not come through ePUAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epuap_box: Option<String>,
    pub sender: LetterSender,
    /// The addressee as the document names it (`str:Adresaci`), e.g. "Urząd Gminy Nowogrodziec".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee: Option<String>,
    /// `wnio:Tytul`; the document's file name when it has no readable title.
    pub title: String,
    /// The letter's text (`wnio:Informacje`), whole, however long; absent when the document
    /// could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    /// Absent when the document could not be parsed as XML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<LetterForm>,
    /// The document exactly as received (the signed bytes, never re-serialized).
    pub document: StoredFile,
    /// Attachments (`str:Zalacznik`) whose content is stored, in document order. One that could
    /// not be decoded or fetched (`kodowanie="URI"`), or was refused as too large, is not listed
    /// here but named in `problems`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<StoredFile>,
    pub signature: LetterSignature,
    /// ePUAP's test flag (`czyTestowe`): a test submission, not to be registered as a real one.
    pub test: bool,
    /// Id of the official receipt of submission (UPP, `identyfikatorUpp`), when one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upp_id: Option<String>,
    /// What is wrong with the document apart from its signature (not well-formed XML, a DOCTYPE
    /// refused, an attachment too large to store or undecodable, ...), one precise sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// `pl.gsko.case.registered.v1`: the tenant's EZD registered a letter as an incoming item
/// (RPW) and attached it to a case; the letter is then shown as registered, with its case
/// reference (znak sprawy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRegistered {
    /// The letter registered (`Letter::letter_id`).
    pub letter_id: String,
    /// Znak sprawy, e.g. `FN.3120.7.2026`.
    pub case_ref: CaseRef,
    /// The number of the incoming item in the register (RPW), e.g. `RPW/1234/2026`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpw: Option<String>,
    pub registered_at: DateTime<Utc>,
    /// EZD's own id of the case (EZD RP `idSprawa`), when the connector knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ezd_case_id: Option<String>,
    /// The case's title in EZD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The addressee of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRecipient {
    /// Given name and surname, or an organisation's name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pesel: Option<Pesel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nip: Option<Nip>,
    /// ePUAP box address, e.g. `/jkowalski/skrytka`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epuap_address: Option<String>,
    /// e-Doręczenia address; when present it wins under `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ade_address: Option<AdeAddress>,
}

/// Which channel the issuer wants a decision delivered through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryPreference {
    /// The connector chooses per tenant and recipient: e-Doręczenia when the recipient has an
    /// ADE address (given or found in the address base), else ePUAP.
    Auto,
    Epuap,
    EDoreczenia,
}

/// The channel a decision went (or failed to go) through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryChannel {
    /// WS-Doręczyciel `dorecz` with UPD.
    Epuap,
    /// e-Doręczenia UA API.
    EDoreczenia,
}

/// The command `pl.gsko.decision.deliver.v1`: deliver this decision to this recipient with an
/// official receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionDelivery {
    /// Stable id of the decision (the EZD document id or a digest); the connector delivers a
    /// `decision_id` only once. Printable ASCII, no spaces, at most 128 characters.
    pub decision_id: String,
    /// Znak sprawy, e.g. `FN.3120.1.2026`.
    pub case_ref: CaseRef,
    /// Subject line of the delivery, e.g. "Decyzja w sprawie wymiaru podatku od nieruchomości
    /// na 2026 r."
    pub title: String,
    pub recipient: DecisionRecipient,
    /// The signed decision, content in the content store.
    pub document: StoredFile,
    pub channel: DeliveryPreference,
    /// The day by which it should be delivered, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_by: Option<NaiveDate>,
    /// The letter this decision answers, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The recipient received it (signed the UPD, or an e-Doręczenia receipt evidence).
    Delivered,
    /// Not collected in time: deemed delivered by law (fikcja doręczenia).
    DeemedDelivered,
    /// Could not be delivered; `reason` says why.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// ePUAP's Urzędowe Poświadczenie Doręczenia (UPD XML, signed by ePUAP).
    Upd,
    /// An e-Doręczenia evidence (dowód), e.g. of receipt or of deemed delivery.
    AdeEvidence,
}

/// The official proof of a delivery, kept in the content store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryEvidence {
    pub kind: EvidenceKind,
    /// UPD `IdentyfikatorPoswiadczenia`, or the e-Doręczenia `evidenceId`.
    pub id: String,
    /// The e-Doręczenia evidence type as the API names it (`A.1`, `D.1`, `H.EPO`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// SHA-256 of the evidence document as stored, lowercase hex.
    pub sha256: String,
}

/// `pl.gsko.decision.delivered.v1`: how a delivery ended. A delivered or deemed-delivered
/// decision always has its evidence; a failed one always says why (and has evidence when the
/// channel issued one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DecisionDeliveredWire")]
pub struct DecisionDelivered {
    pub decision_id: String,
    pub outcome: DeliveryOutcome,
    pub channel: DeliveryChannel,
    /// When it was delivered, deemed delivered or given up.
    pub at: DateTime<Utc>,
    /// The channel's id of the shipment (ePUAP `identyfikatorZlecenia`, e-Doręczenia
    /// `messageId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<DeliveryEvidence>,
    /// Why it failed, for an admin; required when `outcome` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Copied from the `decision.deliver` command, so that the view can show the decision to
    /// its recipient without reading commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_pesel: Option<Pesel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_ref: Option<CaseRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The letter this decision answers (`letter_id`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionDeliveredWire {
    decision_id: String,
    outcome: DeliveryOutcome,
    channel: DeliveryChannel,
    at: DateTime<Utc>,
    #[serde(default)]
    shipment_id: Option<String>,
    #[serde(default)]
    evidence: Option<DeliveryEvidence>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    recipient_pesel: Option<Pesel>,
    #[serde(default)]
    case_ref: Option<CaseRef>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    in_reply_to: Option<String>,
}

impl TryFrom<DecisionDeliveredWire> for DecisionDelivered {
    type Error = &'static str;

    fn try_from(w: DecisionDeliveredWire) -> Result<Self, Self::Error> {
        match w.outcome {
            DeliveryOutcome::Failed if w.reason.is_none() => {
                return Err("a failed delivery needs `reason`")
            }
            DeliveryOutcome::Delivered | DeliveryOutcome::DeemedDelivered
                if w.evidence.is_none() =>
            {
                return Err("a delivered decision needs its `evidence`")
            }
            _ => {}
        }
        Ok(DecisionDelivered {
            decision_id: w.decision_id,
            outcome: w.outcome,
            channel: w.channel,
            at: w.at,
            shipment_id: w.shipment_id,
            evidence: w.evidence,
            reason: w.reason,
            recipient_pesel: w.recipient_pesel,
            case_ref: w.case_ref,
            title: w.title,
            in_reply_to: w.in_reply_to,
        })
    }
}
