//! Image checks through the binary (issue 14): secret files in a layer are findings naming the layer
//! and the path, never the secret; `ExposedPorts` 22/tcp is a finding; device nodes under a root file
//! system's /dev are not world-writable files. The image is an OCI layout written here byte by byte
//! (layers with a char device, keys, credentials files), so the test needs no engine and no network.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

fn moat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moat"))
}

// Secret values that must never appear in any output.
const KEY_BODY: &str = "MIIEpQIBAAKCAQEAmoatTESTkeyBODYdoNotPrint0123456789";
const ENV_VALUE: &str = "envSECRETvalue42";
const AWS_SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYmoatAWS";
const NPM_TOKEN: &str = "npm_moatNPMtoken0123456789abcdef";
const PYPI_TOKEN: &str = "pypi-AgEmoatPYPItoken0123456789";

enum E<'a> {
    Dir(&'a str),
    File(&'a str, u32, &'a [u8]),
    Char(&'a str, u32, u32, u32),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let (name, data): (&str, &[u8]) = match e {
            E::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                (n, &[])
            }
            E::File(n, mode, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(d.len() as u64);
                (n, d)
            }
            E::Char(n, mode, major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(*mode);
                h.set_size(0);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                (n, &[])
            }
        };
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&d[7..]), data).unwrap();
    d
}

/// Writes a one-image OCI layout; returns the layers' diff ids.
fn oci_layout(layout: &Path, layers: &[Vec<u8>], exposed: serde_json::Value) -> Vec<String> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": "1000", "ExposedPorts": exposed,
                   "Healthcheck": {"Test": ["CMD", "true"]}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": (0..layers.len()).map(|i| serde_json::json!({"created_by": format!("COPY step{i} /")})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let cd = put_blob(layout, &config);
    let descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                               "digest": put_blob(layout, l), "size": l.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = put_blob(layout, &manifest);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
        .unwrap(),
    )
    .unwrap();
    diff_ids
}

fn secret_image(dir: &Path) -> (PathBuf, Vec<String>) {
    let key = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
    );
    let sample_key =
        format!("-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----\n");
    let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
    let env = format!("# app settings\nDATABASE_PASSWORD={ENV_VALUE}\nLOG_LEVEL=info\n");
    let aws = format!(
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {AWS_SECRET}\n"
    );
    let npmrc = format!(
        "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={NPM_TOKEN}\n"
    );
    let npmrc_ref = "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n";
    let pypirc = format!(
        "[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = {PYPI_TOKEN}\n"
    );
    let base = layer(&[
        E::Dir("dev/"),
        E::Char("dev/null", 0o666, 1, 3),
        E::Char("dev/zero", 0o666, 1, 5),
        E::Char("dev/tty", 0o666, 5, 0),
        E::Dir("etc/"),
        E::File("etc/hostname", 0o644, b"x\n"),
        E::Dir("etc/ssl/"),
        E::File("etc/ssl/ca.pem", 0o644, cert.as_bytes()),
    ]);
    let app = layer(&[
        E::Dir("root/"),
        E::Dir("root/.ssh/"),
        E::File("root/.ssh/id_ed25519", 0o600, key.as_bytes()),
        E::Dir("root/.aws/"),
        E::File("root/.aws/credentials", 0o600, aws.as_bytes()),
        E::File("root/.pypirc", 0o600, pypirc.as_bytes()),
        E::Dir("app/"),
        E::File("app/.env", 0o644, env.as_bytes()),
        E::File("app/.env.example", 0o644, b"DATABASE_PASSWORD=changeme\n"),
        E::File("app/.npmrc", 0o644, npmrc.as_bytes()),
        E::Dir("app/web/"),
        E::File("app/web/.npmrc", 0o644, npmrc_ref.as_bytes()),
        E::Dir("usr/"),
        E::Dir("usr/lib/"),
        E::Dir("usr/lib/python3/"),
        E::Dir("usr/lib/python3/tests/"),
        E::File(
            "usr/lib/python3/tests/keycert.pem",
            0o644,
            sample_key.as_bytes(),
        ),
        E::File("app/world", 0o666, b"w\n"),
    ]);
    let layout = dir.join("oci");
    let ids = oci_layout(
        &layout,
        &[base, app],
        serde_json::json!({"22/tcp": {}, "8080/tcp": {}}),
    );
    (layout, ids)
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = moat().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [KEY_BODY, ENV_VALUE, AWS_SECRET, NPM_TOKEN, PYPI_TOKEN] {
        assert!(
            !text.contains(s),
            "{what} prints a secret value ({s}):\n{text}"
        );
    }
}

#[test]
fn secret_files_ssh_port_and_device_nodes_in_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, ids) = secret_image(tmp.path());
    let target = format!("oci:{}", layout.display());
    let (code, stdout, stderr) = run(&["lint", "--format", "json", &target]);
    assert_eq!(code, Some(0), "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let fs = r["findings"].as_array().unwrap();
    let secrets: Vec<(&str, &str, &str)> = fs
        .iter()
        .filter(|f| f["id"] == "MOAT-IMG-009")
        .map(|f| {
            (
                f["location"]["file"].as_str().unwrap_or(""),
                f["location"]["layer"].as_str().unwrap_or(""),
                f["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let paths: Vec<&str> = secrets.iter().map(|s| s.0).collect();
    // The certificate, the example .env, the .npmrc that only references ${NPM_TOKEN} and a
    // package's test key are not secrets of this image.
    assert_eq!(
        paths,
        [
            "/app/.env",
            "/app/.npmrc",
            "/root/.aws/credentials",
            "/root/.pypirc",
            "/root/.ssh/id_ed25519"
        ],
        "{secrets:#?}"
    );
    for (path, layer, message) in &secrets {
        assert_eq!(*layer, ids[1], "{path}: the layer that holds it");
        assert!(
            message.starts_with(&format!("{path} holds "))
                && message.ends_with(&format!("in layer 1 ({})", ids[1])),
            "{message}"
        );
    }
    let msg = |p: &str| secrets.iter().find(|s| s.0 == p).unwrap().2;
    assert!(msg("/root/.ssh/id_ed25519").contains("an OpenSSH private key"));
    assert!(msg("/app/.npmrc").contains("//registry.npmjs.org/:_authToken"));
    assert!(msg("/root/.pypirc").contains("[pypi] password"));
    assert!(msg("/root/.aws/credentials").contains("aws_secret_access_key"));
    assert!(msg("/app/.env").contains("DATABASE_PASSWORD"));
    let key = fs.iter().find(|f| f["id"] == "MOAT-IMG-009").unwrap();
    assert_eq!(key["severity"], "HIGH");
    assert!(
        key["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "CIS-DI-0010")
    );
    // ExposedPorts 22/tcp, not 8080/tcp.
    let ports: Vec<&str> = fs
        .iter()
        .filter(|f| f["id"] == "MOAT-IMG-010")
        .map(|f| f["location"]["field"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ports, ["config.ExposedPorts[22/tcp]"]);
    // /dev/null, /dev/zero, /dev/tty (0666 char devices) are not world-writable files; a 0666 file is.
    let ww: Vec<&str> = fs
        .iter()
        .filter(|f| f["id"] == "MOAT-IMG-006")
        .map(|f| f["location"]["file"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ww, ["/app/world"]);
    assert_no_secret("json", &stdout);
    for format in ["table", "sarif"] {
        let (code, out, err) = run(&["lint", "--format", format, &target]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("/root/.ssh/id_ed25519"), "{format}: {out}");
        assert_no_secret(format, &out);
        assert_no_secret(format, &err);
    }
    assert_no_secret("stderr", &stderr);
    // `moat scan` runs the same image checks in its config scanner: the same secret files, same layer.
    let (code, out, err) = run(&["scan", "--scanners", "config", "--format", "json", &target]);
    assert!(matches!(code, Some(0) | Some(1)), "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let scanned: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "MOAT-IMG-009")
        .map(|f| {
            (
                f["location"]["file"].as_str().unwrap_or(""),
                f["location"]["layer"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let linted: Vec<(&str, &str)> = secrets.iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(scanned, linted);
    assert_no_secret("scan", &out);
    assert_no_secret("scan stderr", &err);
}

/// The root file system of a container image unpacked on disk (debootstrap leaves /dev/null,
/// /dev/zero... as 0666 device nodes): `moat lint dir:` and `moat scan --scanners config dir:`
/// reported each one as a world-writable file. Device nodes need CAP_MKNOD; without it the test
/// uses FIFOs, which moat reads the same way (not a regular file).
#[test]
fn device_nodes_of_a_scanned_rootfs_are_not_world_writable_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    std::fs::create_dir_all(root.join("dev/pts")).unwrap();
    std::fs::create_dir_all(root.join("opt")).unwrap();
    std::fs::write(root.join("etc-hostname"), "x\n").unwrap();
    let special = |p: &Path, major: &str, minor: &str| {
        let made = Command::new("mknod")
            .args(["-m", "666"])
            .arg(p)
            .args(["c", major, minor])
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            let ok = Command::new("mkfifo")
                .args(["-m", "666"])
                .arg(p)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "neither mknod nor mkfifo could make {}", p.display());
        }
    };
    special(&root.join("dev/null"), "1", "3");
    special(&root.join("dev/zero"), "1", "5");
    special(&root.join("dev/random"), "1", "8");
    // A world-writable special file outside /dev is still reported, as is a world-writable file.
    let ok = Command::new("mkfifo")
        .args(["-m", "666"])
        .arg(root.join("opt/pipe"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mkfifo");
    let file = root.join("opt/open");
    std::fs::write(&file, "x").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let target = format!("dir:{}", root.display());
    let world_writable = |args: &[&str]| -> Vec<String> {
        let (code, stdout, stderr) = run(args);
        assert!(matches!(code, Some(0) | Some(1)), "{args:?}: {stderr}");
        let r: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}{stderr}"));
        let mut v: Vec<String> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == "MOAT-IMG-006")
            .map(|f| f["location"]["file"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    let want = ["/opt/open", "/opt/pipe"];
    assert_eq!(world_writable(&["lint", "--format", "json", &target]), want);
    assert_eq!(
        world_writable(&["scan", "--scanners", "config", "--format", "json", &target]),
        want
    );
}
