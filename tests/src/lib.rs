//! The fake-plugin kit (being written).
