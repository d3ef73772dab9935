//! ePUAP connector (`gsko-epuap`): the SOAP 1.1 web services of ePUAP (ESP) and the
//! WS-Security layer they need.

//!
//! - [`wssec`]: SOAP envelopes signed and verified as ePUAP wants them (spec §1.7);
//! - [`pull`]: the WS-Pull messages (spec §1.4–§1.6), and [`client`] that sends them signed,
//!   with timeouts and bounded retries;
//! - [`receiver`]: one box pulled end to end — stored, published, then confirmed;
//! - [`document`]: CRD documents ("Pismo ogólne" in full, other forms generically), read
//!   without ever losing a letter: what is wrong is recorded on it.

pub mod client;
pub mod document;
pub mod pull;
pub mod receiver;
pub mod wssec;
