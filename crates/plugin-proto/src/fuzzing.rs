//! Fuzz target bodies, shared by `fuzz/` and the corpus replay test.
