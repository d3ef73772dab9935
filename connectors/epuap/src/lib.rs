//! ePUAP connector (`gsko-epuap`): the SOAP 1.1 web services of ePUAP (ESP) and the
//! WS-Security layer they need.

//!
//! - [`wssec`]: SOAP envelopes signed and verified as ePUAP wants them (spec §1.7);
//! - [`pull`]: the WS-Pull messages (spec §1.4–§1.6), and [`client`] that sends them signed,
//!   with timeouts and bounded retries;
//! - [`send`]: documents sent from the office — WS-Skrytka `nadaj` (UPP) and
//!   WS-Doręczyciel `dorecz` (UPD), never repeated when ePUAP may already have them;
//! - [`signing`]: the Profil Zaufany signing service tpSigning5 (hand a document over, fetch
//!   it signed);
//! - [`upo`]: UPP and UPD receipts read;
//! - [`receiver`]: one box pulled end to end — stored, published, then confirmed;
//! - [`compose`]: the "Pismo ogólne" a resident files through GSKO, written;
//! - [`document`]: CRD documents ("Pismo ogólne" in full, other forms generically), read
//!   without ever losing a letter: what is wrong is recorded on it;
//! - [`xades`]: the letter's XAdES signature verified and its signer identified (podpis
//!   zaufany or qualified).

pub mod client;
pub mod compose;
pub mod document;
pub mod pull;
pub mod receiver;
pub mod send;
pub mod signing;
pub mod upo;
pub mod wssec;
pub mod xades;
