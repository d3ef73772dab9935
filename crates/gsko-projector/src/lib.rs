//! The projector.
