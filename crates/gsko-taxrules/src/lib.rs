//! Local-tax rules: interest on arrears and allocation of payments. No I/O.
