//! libFuzzer entry for [`plugin_proto::fuzzing::log_frames`]; the invariants are
//! documented and checked there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plugin_proto::fuzzing::log_frames(data));
