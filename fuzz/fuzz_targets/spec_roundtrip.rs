//! libFuzzer entry for [`plugin_proto::fuzzing::spec_roundtrip`]; the
//! invariants are documented and checked there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plugin_proto::fuzzing::spec_roundtrip(data));
