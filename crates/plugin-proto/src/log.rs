//! Typed messages of the `log` subsystem (being written).
