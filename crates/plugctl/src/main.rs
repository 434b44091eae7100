//! `plugctl`: the operator command line for Docker v1 plugins. All of it
//! lives in the library (see its documentation, or `plugctl --help`).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    plugctl::main()
}
