//! `cargo xtask`: the project's developer tasks (placeholder entry point
//! replaced below).
fn main() {}
