//! The EZD connector. GSKO needs four things from a municipality's document management system
//! (EZD): register a letter as an incoming item and put it in a case, read a case and its
//! status, list a case's outgoing documents, and fetch one. [`port::EzdPort`] is exactly that;
//! [`ezdrp::EzdRpClient`] implements it for EZD RP (NASK, Integrator API v2). Another product
//! (for instance one speaking CMIS 1.1) is a second implementation of the same trait; nothing
//! else in GSKO changes.
//!
//! The connector knows its external protocol and the normalized model, nothing else: the
//! service that consumes `letter.register` commands and follows cases (`gsko-cases`) holds the
//! state and talks to the bus.

pub mod ezdrp;
pub mod port;

pub use port::*;
