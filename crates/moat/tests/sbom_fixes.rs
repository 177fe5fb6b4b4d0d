//! `moat sbom` fixes: package databases reached through hostile links exit 2 (and never read the host),
//! `--fail-on` is accepted, moat's own JSON inventory reads back as `sbom:FILE`, and `sbom:-` reads
//! standard input. Images are built by the test (tar crate → docker-archive).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

fn moat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .output()
        .expect("run moat")
}

fn moat_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn moat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("moat output")
}

/// A layer entry: a file with content, or a symbolic link.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Link(&'a str, &'a str),
}

/// A one-layer docker archive holding `entries`, with a correct diff id.
fn docker_archive(dir: &Path, name: &str, entries: &[E]) -> PathBuf {
    let mut layer = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        match e {
            E::File(path, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                layer.append_data(&mut h, path, *data).expect("file");
            }
            E::Link(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                layer.append_link(&mut h, path, target).expect("symlink");
            }
        }
    }
    let layer = layer.into_inner().expect("layer tar");
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{digest}"]}}}}"#
    );
    let manifest = br#"[{"Config":"config.json","RepoTags":["x:1"],"Layers":["l.tar"]}]"#;
    let mut archive = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("manifest.json", &manifest[..]),
        ("config.json", config.as_bytes()),
        ("l.tar", &layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        archive.append_data(&mut h, path, data).expect("entry");
    }
    let out = dir.join(format!("{name}.tar"));
    std::fs::write(&out, archive.into_inner().expect("archive")).expect("write archive");
    out
}

const OS_RELEASE: &[u8] = b"ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";
const STATUS: &[u8] = b"Package: inimage\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n\n\
Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\n";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_exit_2(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(
        o.stdout.is_empty(),
        "nothing on stdout: {:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    for n in needles {
        assert!(err.contains(n), "message {err:?} does not mention {n:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

fn names(json: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(json).expect("json inventory");
    v["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            format!(
                "{}@{}",
                p["name"].as_str().unwrap_or(""),
                p["version"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn hostile_database_links_exit_2_and_absolute_links_stay_in_the_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A chain of directory links that climbs out of the image.
    let chain = docker_archive(
        dir.path(),
        "chain",
        &[
            E::File("etc/os-release", OS_RELEASE),
            E::Link("var/lib/dpkg", "../../hop"),
            E::Link("hop", "../../../../etc"),
        ],
    );
    let o = moat(&[
        "sbom",
        "-f",
        "json",
        &format!("docker-archive:{}", chain.display()),
    ]);
    assert_exit_2(&o, &["var/lib/dpkg/status", "climbs above the image root"]);

    // An absolute link to /etc/shadow: the image's own (absent) etc/shadow, never the host's.
    let shadow = docker_archive(
        dir.path(),
        "shadow",
        &[
            E::File("etc/os-release", OS_RELEASE),
            E::Link("var/lib/dpkg/status", "/etc/shadow"),
        ],
    );
    let o = moat(&[
        "sbom",
        "-f",
        "json",
        &format!("docker-archive:{}", shadow.display()),
    ]);
    assert_exit_2(
        &o,
        &["var/lib/dpkg/status", "/etc/shadow", "not in the image"],
    );

    // The os-release file through an escaping link.
    let release = docker_archive(
        dir.path(),
        "release",
        &[E::Link("etc/os-release", "../../../../../etc/os-release")],
    );
    let o = moat(&[
        "sbom",
        "-f",
        "json",
        &format!("docker-archive:{}", release.display()),
    ]);
    assert_exit_2(&o, &["etc/os-release", "climbs above the image root"]);

    // An absolute link to a status file the image has is read from the image.
    let inside = docker_archive(
        dir.path(),
        "inside",
        &[
            E::Link("etc/os-release", "../usr/lib/os-release"),
            E::File("usr/lib/os-release", OS_RELEASE),
            E::Link("var/lib/dpkg/status", "/srv/dpkg/status"),
            E::File("srv/dpkg/status", STATUS),
        ],
    );
    let o = moat(&[
        "sbom",
        "-f",
        "json",
        &format!("docker-archive:{}", inside.display()),
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        names(&o.stdout),
        vec!["inimage@1.0-1", "zlib1g@1:1.2.13.dfsg-1"]
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["os"]["id"], "debian");
    assert_eq!(
        v["packages"][0]["purl"],
        "pkg:deb/debian/inimage@1.0-1?arch=amd64&distro=debian-12"
    );
}

#[test]
fn fail_on_is_accepted_and_never_fails_an_sbom() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = docker_archive(
        dir.path(),
        "img",
        &[
            E::File("etc/os-release", OS_RELEASE),
            E::File("var/lib/dpkg/status", STATUS),
        ],
    );
    let target = format!("docker-archive:{}", img.display());
    for sev in ["low", "high", "critical"] {
        let o = moat(&["sbom", "--fail-on", sev, "-f", "json", &target]);
        assert_eq!(o.status.code(), Some(0), "--fail-on {sev}: {}", stderr(&o));
        assert_eq!(names(&o.stdout).len(), 2);
    }
    let o = moat(&["sbom", "--fail-on", "bogus", &target]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown severity is a usage error"
    );
}

#[test]
fn own_json_inventory_reads_back_exactly_from_a_file_and_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = docker_archive(
        dir.path(),
        "img",
        &[
            E::File("etc/os-release", OS_RELEASE),
            E::File("var/lib/dpkg/status", STATUS),
        ],
    );
    let inv = dir.path().join("inv.json");
    let o = moat(&[
        "sbom",
        "-f",
        "json",
        "-o",
        &inv.display().to_string(),
        &format!("docker-archive:{}", img.display()),
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let original = std::fs::read(&inv).expect("inventory written");
    assert_eq!(names(&original).len(), 2);

    // sbom:FILE: the same bytes back.
    let o = moat(&["sbom", "-f", "json", &format!("sbom:{}", inv.display())]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&original)
    );

    // sbom:- reads standard input.
    let o = moat_stdin(&["sbom", "-f", "json", "sbom:-"], &original);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&original)
    );

    // A CycloneDX document on standard input too.
    let cdx = moat(&[
        "sbom",
        "-f",
        "cyclonedx",
        &format!("docker-archive:{}", img.display()),
    ]);
    assert_eq!(cdx.status.code(), Some(0));
    let o = moat_stdin(&["sbom", "-f", "json", "sbom:-"], &cdx.stdout);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(names(&o.stdout), names(&original));

    // Garbage on standard input is an input error naming it.
    let o = moat_stdin(&["sbom", "sbom:-"], b"{\"a\":1}");
    assert_exit_2(&o, &["standard input", "neither"]);
}
