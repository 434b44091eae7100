//! Typed messages of the `authz` subsystem (being written).
