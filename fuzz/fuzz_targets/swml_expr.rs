#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::swml_expr(data));
