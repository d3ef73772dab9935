//! Simulator: payu (being written).
