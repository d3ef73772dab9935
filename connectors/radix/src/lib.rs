//! RADIX connector.
