//! Plugin discovery (being written).
