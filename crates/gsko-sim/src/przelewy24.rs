//! Simulator: przelewy24 (being written).
