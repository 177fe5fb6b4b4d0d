#![no_main]
//! dpkg status, apk installed and rpm databases (sqlite, ndb, bdb) from arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = moat_sbom::os::dpkg::packages(&text, true, None, None);
    let _ = moat_sbom::os::apk::packages(&text, None);
    let _ = moat_sbom::os::rpm::headers(data);
});
