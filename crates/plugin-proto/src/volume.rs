//! Typed messages of the `volume` subsystem (being written).
