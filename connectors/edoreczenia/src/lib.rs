//! e-Doręczenia connector: the UA API (User Agent API) of an office's mailbox
//! (`/work/shared/specs/epuap-login-edoreczenia.md` §4).
//!
//! GSKO sends a decision to a resident who has an e-Doręczenia address (ADE) and follows it
//! until it is delivered, deemed delivered or fails, keeping the evidences.
//!
//! - [`TokenSource`] gets access tokens with OAuth2 `client_credentials` and a `private_key_jwt`
//!   client assertion (RFC 7523) signed with the key of the system certificate registered for
//!   the office's ADE; tokens are cached until 30 s before they expire.
//! - [`UaClient`] sends ([`UaClient::send`]), reads the state ([`UaClient::message`]), lists and
//!   downloads evidences, and finds a message sent earlier by GSKO's reference
//!   ([`UaClient::find_sent`]) so that a send whose answer was lost is never repeated blindly.
//! - [`Error`] tells refused (fix the request or config), unauthorized, unavailable
//!   (transient), uncertain (look before resending) and malformed answers apart.
//! - [`wire`] holds the JSON shapes, parsed case-insensitively (the API's key case drifts).
//!
//! Logs carry message ids, statuses and GSKO references, never names, PESELs, recipients'
//! addresses, subjects or message text.
//!
//! ```no_run
//! # async fn flow(config: gsko_edoreczenia::Config, msg: gsko_edoreczenia::Outgoing) -> Result<(), gsko_edoreczenia::Error> {
//! use gsko_edoreczenia::{Error, Outcome, UaClient};
//! let client = UaClient::new(config)?;
//! let id = match client.send(&msg).await {
//!     Ok(sent) => sent.message_id,
//!     Err(Error::Uncertain(_)) => match client.find_sent(&msg.reference).await? {
//!         Some(id) => id,                            // it went out: follow it
//!         None => client.send(&msg).await?.message_id, // it did not: sending again is safe
//!     },
//!     Err(e) => return Err(e),
//! };
//! if let Some(Outcome::Delivered | Outcome::DeemedDelivered) = client.message(&id).await?.outcome() {
//!     for evidence in client.evidences(&id).await? {
//!         let _document = client.download_evidence(&evidence).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod token;
pub mod wire;

pub use client::UaClient;
pub use config::{Config, RetryPolicy};
pub use error::Error;
pub use token::{AssertionClaims, TokenSource};
pub use wire::{
    file_hash, DeliveryStatus, Evidence, MessageState, Outcome, Outgoing, OutgoingFile, SentMessage,
};
