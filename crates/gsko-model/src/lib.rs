//! The normalized model every GSKO crate speaks: validated Polish identifiers, money in
//! integer grosze, and the CloudEvents 1.0 messages with their payloads. No I/O lives here.

pub mod cases;
pub mod event;
pub mod ids;
pub mod letters;
pub mod money;
pub mod payload;
pub mod secret;
pub mod xml;

pub use cases::{CaseRef, CaseRefError, CaseStatus, CaseStatusChanged, CASE_REF_MAX_LEN};
pub use event::{Event, EventData, EventError, MessageType, CONTENT_TYPE};
pub use ids::{AdeAddress, IdError, Nip, Nrb, Pesel, Regon, Teryt};
pub use letters::*;
pub use money::{Amount, AmountError};
pub use payload::*;
pub use secret::Secret;
