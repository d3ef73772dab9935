//! Resident login with Profil Zaufany through Węzeł Krajowy (login.gov.pl), SAML 2.0 as in
//! `shared/specs/epuap-login-edoreczenia.md` §3, and the resident sessions that follow it.
//!
//! - [`sp`]: the service provider — signed AuthnRequest (HTTP-POST binding, eIDAS extensions,
//!   requested LoA), the artifact resolved with a signed ArtifactResolve over SOAP, the answer's
//!   signatures verified against the pinned identity-provider certificates, the assertion
//!   decrypted ([`decrypt`]) and validated (issuer, audience, InResponseTo, recipient, time
//!   window, LoA); SOAP single logout.
//! - [`session`]: short-lived session tokens signed with HMAC-SHA256 under rotating keys.
//!
//! One-time use (of artifacts, assertions and AuthnRequests) and revocation need shared state;
//! they are the caller's, with `gsko_store::LoginStore`.

pub mod decrypt;
pub mod service;
pub mod session;
pub mod sp;
pub mod xmldsig;

pub use decrypt::DecryptionKey;
pub use service::{LoginService, Return, SessionError, SessionPolicy};
pub use session::{SessionKeys, TokenError};
pub use sp::{AuthnRequest, IdpEndpoints, ServiceProvider, SpSettings};
pub use xmldsig::{certificates_from_pem, Signer};

use chrono::{DateTime, Utc};
use gsko_model::Pesel;

/// eIDAS levels of assurance, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Loa {
    Low,
    Substantial,
    High,
}

impl Loa {
    pub fn uri(self) -> &'static str {
        match self {
            Loa::Low => "http://eidas.europa.eu/LoA/low",
            Loa::Substantial => "http://eidas.europa.eu/LoA/substantial",
            Loa::High => "http://eidas.europa.eu/LoA/high",
        }
    }

    pub fn from_uri(uri: &str) -> Option<Loa> {
        [Loa::Low, Loa::Substantial, Loa::High]
            .into_iter()
            .find(|l| l.uri() == uri)
    }

    /// From a configuration word: "low", "substantial" or "high".
    pub fn from_name(name: &str) -> Option<Loa> {
        match name {
            "low" => Some(Loa::Low),
            "substantial" => Some(Loa::Substantial),
            "high" => Some(Loa::High),
            _ => None,
        }
    }
}

/// Who logged in, as the verified assertion says. `Debug` leaves out personal data.
#[derive(Clone)]
pub struct Identity {
    pub pesel: Pesel,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: String,
    pub loa: Loa,
    /// The identity provider's NameID and SessionIndex (for single logout).
    pub name_id: String,
    pub session_index: Option<String>,
    /// The assertion's ID: used once only.
    pub assertion_id: String,
    /// The end of the assertion's validity (one-time-use markers are kept until then).
    pub valid_until: DateTime<Utc>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("loa", &self.loa)
            .field("assertion_id", &self.assertion_id)
            .finish_non_exhaustive()
    }
}

/// Why a login was refused. The texts name the check that failed (for the admin and the
/// audit), never the resident.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("login configuration: {0}")]
    Config(String),
    #[error("the identity provider could not be reached: {0}")]
    Transport(String),
    #[error("malformed SAML message: {0}")]
    Malformed(String),
    #[error("the {0} is not signed")]
    Unsigned(&'static str),
    #[error("the {0}'s signature does not verify (tampered, or not over this element)")]
    BadSignature(&'static str),
    #[error("the {0} is signed with a certificate this deployment does not trust")]
    UntrustedCertificate(&'static str),
    #[error("refused algorithm: {0}")]
    Algorithm(String),
    #[error("the assertion cannot be decrypted: {0}")]
    Decrypt(String),
    #[error("the {0} was issued by another identity provider")]
    Issuer(&'static str),
    #[error("the {0} does not answer this login's request")]
    InResponseTo(&'static str),
    #[error("the assertion is addressed to another consumer service")]
    Recipient,
    #[error("the assertion is for another service provider (audience)")]
    Audience,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion is not valid yet")]
    NotYetValid,
    #[error("the level of assurance is below what this service requires")]
    Loa,
    #[error("the assertion carries no valid PESEL as PersonIdentifier")]
    PersonIdentifier,
    #[error("the identity provider refused: {0}")]
    Status(String),
    #[error("the artifact is refused: {0}")]
    Artifact(String),
    #[error("this artifact or assertion was already used (replay)")]
    Replayed,
    #[error("unknown or expired login attempt (RelayState)")]
    UnknownLogin,
}

impl LoginError {
    /// A short, stable name of the failed check (for the audit's outcome and metrics).
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::Config(_) => "config",
            LoginError::Transport(_) => "idp_unreachable",
            LoginError::Malformed(_) => "malformed",
            LoginError::Unsigned(_) => "unsigned",
            LoginError::BadSignature(_) => "bad_signature",
            LoginError::UntrustedCertificate(_) => "untrusted_certificate",
            LoginError::Algorithm(_) => "refused_algorithm",
            LoginError::Decrypt(_) => "decrypt",
            LoginError::Issuer(_) => "issuer",
            LoginError::InResponseTo(_) => "in_response_to",
            LoginError::Recipient => "recipient",
            LoginError::Audience => "audience",
            LoginError::Expired => "expired",
            LoginError::NotYetValid => "not_yet_valid",
            LoginError::Loa => "loa",
            LoginError::PersonIdentifier => "person_identifier",
            LoginError::Status(_) => "idp_status",
            LoginError::Artifact(_) => "artifact",
            LoginError::Replayed => "replayed",
            LoginError::UnknownLogin => "unknown_login",
        }
    }
}
