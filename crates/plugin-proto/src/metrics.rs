//! Typed messages of the `metrics` subsystem (being written).
