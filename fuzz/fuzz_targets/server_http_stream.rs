//! libFuzzer entry for [`plugin_server::fuzzing::server_http_stream`]; the invariants are
//! documented and checked there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plugin_server::fuzzing::server_http_stream(data));
