//! Simulators of the external systems.
