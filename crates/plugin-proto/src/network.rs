//! Typed messages of the `network` subsystem (being written).
