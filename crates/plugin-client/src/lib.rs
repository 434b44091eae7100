//! Plugin client (being written).
