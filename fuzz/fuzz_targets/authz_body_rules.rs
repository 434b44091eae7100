//! libFuzzer entry for [`plugin_registry::fuzzing::authz_body_rules`]; the
//! invariants are documented and checked there.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| plugin_registry::fuzzing::authz_body_rules(data));
