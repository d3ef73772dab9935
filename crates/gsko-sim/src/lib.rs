//! Simulators of the external systems GSKO talks to.
//!
//! A simulator is a second, independent implementation of an external system's protocol: it
//! shares no parsing, signing or message code with the connector it exercises, so a test
//! between the two fails when the connector misreads the protocol (ARCHITECTURE.md,
//! "Simulators"). That is why this crate writes XML by hand and computes check digits itself
//! instead of calling `gsko-model`'s validators; the tests use the model only to cross-check.
//!
//! - [`radix`]: deterministic RADIX exports (format v1) for any number of taxpayers.
//! - [`ledger`]: a RADIX ledger that books GSKO's payment files and answers with an export.
//! - [`epuap`]: ePUAP ESP WS-Pull (boxes, pull semantics, digest check, WS-Security checked
//!   with xmlsec1) and a generator of CRD letters.
//! - [`epuap_send`]: ePUAP WS-Skrytka `nadaj` (delivery into a box, signed UPP) and
//!   WS-Doręczyciel `dorecz` (signed documents only; a signed UPD arrives in the reply box).
//! - [`xades`]: enveloped XAdES-BES signatures (Profil Zaufany `PodpisZP`/`EPSignature`
//!   claims) made with xmlsec1, and the simulated COI and ePUAP certificates.
//! - [`edoreczenia`]: e-Doręczenia token endpoint (private_key_jwt verified by hand) and UA API
//!   (send, status, evidences), with ADE check digits and SHA3-512 attachment hashes.
//! - [`pz`]: Profil Zaufany tpSigning5 (addDocumentToSigning/getSignedDocument with
//!   WS-Security checked by xmlsec1, a signing page, XAdES signatures with `EPSignature`).
//! - [`login`]: login.gov.pl (Węzeł Krajowy) SAML 2.0 IdP: signed AuthnRequest (HTTP-POST), a
//!   login page of residents, HTTP-Artifact, ArtifactResolve answered with an ECDH-ES/AES-GCM
//!   encrypted, xmlsec1-signed assertion, SOAP single logout, and faults for the SP's tests.
//! - [`municipalities`]: five real gminy for the demo.
//! - [`identifiers`]: PESEL, NIP, REGON and NRB with correct check digits.
//!
//! The demo's resident who owns property in two gminy is the same [`DemoResident`] in two
//! specs; a couple is two residents sharing an `account_key`:
//!
//! ```
//! use gsko_sim::{write_export, DemoResident, RadixExportSpec};
//! let spec = RadixExportSpec {
//!     extra_residents: vec![
//!         DemoResident::owner("02270803624", "Anna Nowak", "nowak-dom"),
//!         DemoResident::co_owner("44051401359", "Jan Nowak", "nowak-dom"),
//!     ],
//!     ..RadixExportSpec::new("0201043", 100, 1, 2026)
//! };
//! let mut xml = Vec::new();
//! let summary = write_export(&spec, &mut xml)?;
//! assert_eq!(summary.taxpayers, 102);
//! assert!(String::from_utf8(xml).unwrap().contains(r#"<holder taxpayer="TD0002" role="co_owner"/>"#));
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod bank;
pub mod date;
pub mod edoreczenia;
pub mod epuap;
pub mod epuap_send;
pub mod ezd;
pub mod identifiers;
pub mod ledger;
pub mod login;
pub mod municipalities;
mod names;
pub mod payu;
pub mod przelewy24;
pub mod pz;
pub mod radix;
mod tools;
pub mod xades;
mod xml;

pub use date::SimDate;
pub use municipalities::{Municipality, MUNICIPALITIES};
pub use radix::{
    generate_to_dir, write_export, DemoResident, ExportKind, GeneratedSummary, HolderRole,
    RadixExportSpec, SimAddress,
};
