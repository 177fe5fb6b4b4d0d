//! `moat key generate`, `moat sign`, `moat verify`: cosign-compatible key-based image signatures
//! (moat-sign does the work). Keys and signatures interoperate with cosign and containers/image.

use std::path::{Path, PathBuf};

use moat_model::{Finding, FindingKind, Location, Severity, TargetInfo};
use moat_report::{Report, Verdict};
use moat_sign::{ImageRef, RegistryOptions};

use crate::common::{InputError, OutputArgs};
use crate::outln;

/// The finding `moat verify` reports when no trusted signature covers the image.
pub const NOT_SIGNED_ID: &str = "MOAT-SIGN-001";

#[derive(clap::Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub cmd: KeySub,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeySub {
    /// Generate an ECDSA P-256 key pair: cosign.key (encrypted with $COSIGN_PASSWORD, empty allowed)
    /// and cosign.pub, in cosign's formats.
    Generate(GenerateArgs),
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Directory to write cosign.key and cosign.pub into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

/// Registry access shared by `sign` and `verify`.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry (a loopback test registry).
    #[arg(long = "insecure-registry")]
    pub insecure_registry: bool,
    /// Credentials file (Docker config.json format); default $REGISTRY_AUTH_FILE, $DOCKER_CONFIG or
    /// ~/.docker/config.json.
    #[arg(long = "authfile", value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

impl RegistryArgs {
    fn options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure: self.insecure_registry,
            auth_file: self.authfile.clone(),
            ..RegistryOptions::default()
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The private key: cosign.key (encrypted; password from $COSIGN_PASSWORD) or a PKCS#8 PEM.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The image: registry:HOST/REPO[:TAG|@DIGEST]. Its manifest digest is what gets signed.
    pub target: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyFormat {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// A trusted public key (cosign.pub); repeat for several: any one of them suffices.
    #[arg(long, value_name = "FILE", required = true)]
    pub key: Vec<PathBuf>,
    /// The image: registry:HOST/REPO[:TAG|@DIGEST].
    pub target: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: VerifyFormat,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn read_key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| InputError(format!("{}: cannot read key: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(InputError(format!("{}: not a regular file", path.display())).into());
    }
    if meta.len() > 64 << 10 {
        return Err(InputError(format!("{}: too large for a key file", path.display())).into());
    }
    std::fs::read(path)
        .map_err(|e| InputError(format!("{}: cannot read key: {e}", path.display())).into())
}

fn password() -> Vec<u8> {
    std::env::var_os("COSIGN_PASSWORD")
        .map(|p| p.into_encoded_bytes())
        .unwrap_or_default()
}

fn input(e: moat_sign::SignError) -> anyhow::Error {
    InputError(e.to_string()).into()
}

fn target_ref(target: &str) -> anyhow::Result<ImageRef> {
    if !target.starts_with("registry:") {
        return Err(InputError(format!(
            "{target}: signatures live in a registry: give registry:HOST/REPO[:TAG|@DIGEST]"
        ))
        .into());
    }
    ImageRef::parse(target).map_err(input)
}

pub fn run_key(a: KeyArgs) -> anyhow::Result<Verdict> {
    match a.cmd {
        KeySub::Generate(g) => generate(g),
    }
}

fn generate(g: GenerateArgs) -> anyhow::Result<Verdict> {
    std::fs::create_dir_all(&g.out)
        .map_err(|e| InputError(format!("{}: cannot create: {e}", g.out.display())))?;
    let key_path = g.out.join("cosign.key");
    let pub_path = g.out.join("cosign.pub");
    for p in [&key_path, &pub_path] {
        if !g.force && std::fs::symlink_metadata(p).is_ok() {
            return Err(InputError(format!(
                "{}: exists; refusing to overwrite (use --force)",
                p.display()
            ))
            .into());
        }
    }
    if std::env::var_os("COSIGN_PASSWORD").is_none() {
        eprintln!(
            "moat: COSIGN_PASSWORD is not set: cosign.key is encrypted with an empty password"
        );
    }
    let keys = moat_sign::generate(&password()).map_err(input)?;
    write_private(&key_path, keys.private_pem.as_bytes())?;
    // Replaced atomically through an exclusive temporary file: a link planted at the name is
    // replaced, never written through.
    moat_fsio::write_atomic(&pub_path, keys.public_pem.as_bytes(), 0o644)
        .map_err(|e| InputError(format!("cannot write: {e}")))?;
    outln!("Private key written to {}", key_path.display());
    outln!("Public key written to {}", pub_path.display());
    Ok(Verdict::Pass)
}

/// The private key file is created owner-only (0600), as cosign does.
/// The temporary file is created exclusively (`O_EXCL | O_NOFOLLOW`) with mode 0600 before any byte
/// is written, then renamed over the destination: the key is never readable by others, and a link
/// planted at the name is replaced, not followed.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    moat_fsio::write_atomic(path, bytes, 0o600)
        .map_err(|e| InputError(format!("cannot write: {e}")).into())
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    let r = target_ref(&a.target)?;
    let text = read_key_file(&a.key)?;
    let key = moat_sign::load_private_key(&text, &password(), &a.key.display().to_string())
        .map_err(input)?;
    let out = moat_sign::sign_image(&r, &key, &a.registry.options()).map_err(input)?;
    let sig_ref = format!("{}/{}:{}", r.host, r.repo, out.signature_tag);
    if out.added {
        outln!(
            "Signed {} ({}): signature pushed to {sig_ref} ({} signature(s) there)",
            a.target,
            out.manifest_digest,
            out.signatures
        );
    } else {
        outln!(
            "{} ({}) already carries this signature in {sig_ref}",
            a.target,
            out.manifest_digest
        );
    }
    Ok(Verdict::Pass)
}

pub fn run_verify(a: VerifyArgs) -> anyhow::Result<Verdict> {
    target_ref(&a.target)?;
    let mut keys = Vec::new();
    for path in &a.key {
        let text = read_key_file(path)?;
        keys.push(moat_sign::load_public_key(&text, &path.display().to_string()).map_err(input)?);
    }
    let verdict =
        moat_sign::verify_reference(&a.target, &keys, &a.registry.options()).map_err(input)?;
    let key_name = |i: usize| {
        a.key
            .get(i)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let mut findings = Vec::new();
    if !verdict.verified() {
        let mut f = Finding::new(
            NOT_SIGNED_ID,
            FindingKind::Policy,
            Severity::High,
            "image is not signed by the trusted key",
        );
        f.message = if verdict.checks.is_empty() {
            format!(
                "no signatures: {} has no {} manifest",
                verdict.reference, verdict.signature_tag
            )
        } else {
            format!(
                "none of the {} signature(s) in {} verifies with {}",
                verdict.checks.len(),
                verdict.signature_tag,
                a.key
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let reasons: Vec<String> = verdict
            .checks
            .iter()
            .map(|c| format!("{}: {}", c.layer, c.problem.as_deref().unwrap_or("?")))
            .collect();
        f.why = Some(if reasons.is_empty() {
            format!(
                "image manifest {} has no signature at all",
                verdict.manifest_digest
            )
        } else {
            format!(
                "image manifest {}; {}",
                verdict.manifest_digest,
                reasons.join("; ")
            )
        });
        f.fix = Some(format!(
            "sign the image with the trusted key: moat sign --key cosign.key {}",
            a.target
        ));
        f.location = Location {
            object: Some(verdict.reference.clone()),
            ..Location::default()
        };
        findings.push(f);
    }
    let text = match a.format {
        VerifyFormat::Json => {
            let mut report = Report::new(
                TargetInfo {
                    name: a.target.clone(),
                    kind: "registry".into(),
                },
                findings,
            );
            let m = &mut report.metadata;
            m.insert("manifest_digest".into(), verdict.manifest_digest.clone());
            m.insert("signature_tag".into(), verdict.signature_tag.clone());
            m.insert("signatures".into(), verdict.checks.len().to_string());
            let ok: Vec<&moat_sign::SignatureCheck> =
                verdict.checks.iter().filter(|c| c.verified).collect();
            m.insert("verified_signatures".into(), ok.len().to_string());
            let mut by: Vec<String> = ok.iter().filter_map(|c| c.key).map(key_name).collect();
            by.sort();
            by.dedup();
            if !by.is_empty() {
                m.insert("verified_by".into(), by.join(","));
            }
            m.insert(
                "trusted_keys".into(),
                (0..a.key.len()).map(key_name).collect::<Vec<_>>().join(","),
            );
            report.to_json()
        }
        VerifyFormat::Table => {
            let mut s = String::new();
            for c in &verdict.checks {
                if c.verified {
                    s.push_str(&format!(
                        "ok        {} signed by {} for {}\n",
                        c.layer,
                        c.key.map(key_name).unwrap_or_default(),
                        c.docker_reference.as_deref().unwrap_or("")
                    ));
                } else {
                    s.push_str(&format!(
                        "rejected  {}: {}\n",
                        c.layer,
                        c.problem.as_deref().unwrap_or("")
                    ));
                }
            }
            if let Some(f) = findings.first() {
                s.push_str(&format!("{} HIGH {}: {}\n", f.id, f.title, f.message));
            } else {
                s.push_str(&format!(
                    "Verified: {} ({}) is signed by a trusted key\n",
                    a.target, verdict.manifest_digest
                ));
            }
            s
        }
    };
    a.out.write(&text)?;
    Ok(if verdict.verified() {
        Verdict::Pass
    } else {
        Verdict::Fail
    })
}
