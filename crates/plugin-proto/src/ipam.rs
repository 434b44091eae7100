//! Typed messages of the `ipam` subsystem (being written).
