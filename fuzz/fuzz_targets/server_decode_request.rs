//! libFuzzer entry for [`plugin_server::fuzzing::server_decode_request`]; the invariants are
//! documented and checked there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plugin_server::fuzzing::server_decode_request(data));
