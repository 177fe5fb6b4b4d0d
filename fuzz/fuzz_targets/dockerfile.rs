#![no_main]
//! Dockerfile and shell parsing: never a panic, a stack overflow or a runaway.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(df) = moat_lint::dockerfile::parse("Dockerfile", data) {
        for i in &df.instructions {
            let _ = moat_lint::shell::parse(&i.args);
        }
    }
});
