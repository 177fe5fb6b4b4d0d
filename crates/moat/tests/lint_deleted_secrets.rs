//! Issue 14: a secret file added in one layer and deleted (whiteout, opaque whiteout) or overwritten
//! in a later one is gone from the container's view but still in the image: anyone who pulls the
//! layers gets it. `moat lint` and `moat scan --scanners config` report it (MOAT-IMG-009), naming the
//! layer that adds it and the layer that deletes it, never the value. The OCI layout is written here.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

const KEY_BODY: &str = "MIIEpQIBAAKCAQEAmoatDELETEDkeyBODYdoNotPrint0123";
const ENV_VALUE: &str = "envDELETEDsecret42";
const AWS_SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYmoatGONE";
const NPM_TOKEN: &str = "npm_moatDELETEDtoken0123456789abcd";

enum E<'a> {
    Dir(&'a str),
    File(&'a str, u32, &'a [u8]),
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
        };
        b.append_data(&mut h, name, data).expect("tar entry");
    }
    b.into_inner().expect("tar")
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(&d[7..]), data).expect("blob");
    d
}

/// Writes a one-image OCI layout of `layers` (uncompressed); returns the layers' diff ids.
fn oci_layout(layout: &Path, layers: &[Vec<u8>]) -> Vec<String> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": "1000", "Healthcheck": {"Test": ["CMD", "true"]}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": (0..layers.len()).map(|i| serde_json::json!({"created_by": format!("RUN step{i}")})).collect::<Vec<_>>(),
    }))
    .expect("config");
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
    .expect("manifest");
    let md = put_blob(layout, &manifest);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len()}]}))
        .expect("index"),
    )
    .expect("index.json");
    diff_ids
}

/// Layer 0: a base. Layer 1: a key, an `.env`, an `.npmrc` with a token, AWS credentials.
/// Layer 2: `RUN rm` of the key (whiteout), an opaque whiteout of /app (the `.env` and `.npmrc`
/// go), and the AWS credentials overwritten with a file holding no secret. Layer 3: unrelated.
fn image(dir: &Path) -> (PathBuf, Vec<String>) {
    let key = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
    );
    let env = format!("DATABASE_PASSWORD={ENV_VALUE}\n");
    let npmrc = format!("//registry.npmjs.org/:_authToken={NPM_TOKEN}\n");
    let aws = format!(
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {AWS_SECRET}\n"
    );
    let base = layer(&[E::Dir("etc/"), E::File("etc/hostname", 0o644, b"x\n")]);
    let adds = layer(&[
        E::Dir("root/"),
        E::Dir("root/.ssh/"),
        E::File("root/.ssh/id_ed25519", 0o600, key.as_bytes()),
        E::Dir("root/.aws/"),
        E::File("root/.aws/credentials", 0o600, aws.as_bytes()),
        E::Dir("app/"),
        E::File("app/.env", 0o644, env.as_bytes()),
        E::File("app/.npmrc", 0o644, npmrc.as_bytes()),
    ]);
    let deletes = layer(&[
        E::Dir("root/"),
        E::Dir("root/.ssh/"),
        E::File("root/.ssh/.wh.id_ed25519", 0o600, b""),
        E::Dir("root/.aws/"),
        E::File(
            "root/.aws/credentials",
            0o600,
            b"[default]\nregion = eu-west-1\n",
        ),
        E::Dir("app/"),
        E::File("app/.wh..wh..opq", 0o644, b""),
        E::File("app/README", 0o644, b"app\n"),
    ]);
    let later = layer(&[E::File("etc/motd", 0o644, b"hi\n")]);
    let layout = dir.join("oci");
    let ids = oci_layout(&layout, &[base, adds, deletes, later]);
    (layout, ids)
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .env("MOAT_DB", "/nonexistent/moat-db")
        .env("MOAT_OFFLINE", "1")
        .output()
        .expect("run moat");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [KEY_BODY, ENV_VALUE, AWS_SECRET, NPM_TOKEN] {
        assert!(
            !text.contains(s),
            "{what} prints a secret value ({s}):\n{text}"
        );
    }
}

/// (file, layer, message) of each MOAT-IMG-009 finding of a JSON report.
fn secrets(report: &str) -> Vec<(String, String, String)> {
    let r: serde_json::Value = serde_json::from_str(report).expect("json report");
    let mut v: Vec<_> = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["id"] == "MOAT-IMG-009")
        .map(|f| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (
                s(&f["location"]["file"]),
                s(&f["location"]["layer"]),
                s(&f["message"]),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn secrets_deleted_or_overwritten_in_a_later_layer_are_still_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (layout, ids) = image(tmp.path());
    let target = format!("oci:{}", layout.display());
    let (code, out, err) = run(&["lint", "--format", "json", &target]);
    assert_eq!(code, Some(0), "{err}");
    let found = secrets(&out);
    let paths: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/app/.env",
            "/app/.npmrc",
            "/root/.aws/credentials",
            "/root/.ssh/id_ed25519"
        ],
        "{found:#?}"
    );
    let adds = format!("added in layer 1 ({})", ids[1]);
    for (path, layer, message) in &found {
        assert_eq!(layer, &ids[1], "{path}: the layer that carries it");
        let how = if path == "/root/.aws/credentials" {
            "overwritten"
        } else {
            "deleted"
        };
        let by = format!("{how} in layer 2 ({})", ids[2]);
        assert!(
            message.starts_with(&format!("{path} holds "))
                && message.contains(&adds)
                && message.contains(&by),
            "{message}"
        );
    }
    let msg = |p: &str| &found.iter().find(|f| f.0 == p).expect("finding").2;
    assert!(msg("/root/.ssh/id_ed25519").contains("an OpenSSH private key"));
    assert!(msg("/app/.npmrc").contains("//registry.npmjs.org/:_authToken"));
    assert_no_secret("lint json", &out);
    assert_no_secret("lint stderr", &err);
    let (code, table, err) = run(&["lint", "--format", "table", &target]);
    assert_eq!(code, Some(0), "{err}");
    assert!(table.contains("/root/.ssh/id_ed25519"), "{table}");
    assert_no_secret("lint table", &table);

    // `moat scan`'s config scanner walks the same layers: the same findings.
    let (code, out, err) = run(&["scan", "--scanners", "config", "--format", "json", &target]);
    assert!(matches!(code, Some(0) | Some(1)), "{err}");
    assert_eq!(secrets(&out), found);
    assert_no_secret("scan json", &out);
}
