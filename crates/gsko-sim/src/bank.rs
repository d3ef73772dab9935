//! Simulator: bank (being written).
