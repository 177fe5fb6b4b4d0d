//! Secret files in an image's file system (`MOAT-IMG-009`, alias `CIS-DI-0010`): private keys, `.env`
//! files, cloud and registry credential files, `.npmrc`/`.pypirc` holding tokens.
//!
//! Two steps, so an image walk reads as little as possible: [`candidate`] decides from a path alone
//! whether a file may hold a secret (and its content is worth reading), [`confirm`] reads the content and
//! says what it holds. A candidate is only reported when its content confirms it (a `.pem` holding a
//! certificate, an `.npmrc` with only a registry URL or an `${NPM_TOKEN}` reference are not secrets), in
//! the spirit of dockle's CIS-DI-0010 file names, narrowed by content as Trivy's secret scanner does.
//!
//! The description [`confirm`] returns names the kind of secret and the keys that hold it
//! (`//registry.npmjs.org/:_authToken`, `aws_secret_access_key`), never a value.

/// Files larger than this are not read for secrets (no key or credentials file is this large).
pub const MAX_SECRET_FILE: u64 = 1 << 20;

/// What kind of secret file a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    PrivateKey,
    DotEnv,
    AwsCredentials,
    GcpCredentials,
    AzureCredentials,
    DockerConfig,
    KubeConfig,
    Npmrc,
    Pypirc,
    Netrc,
    GitCredentials,
    PipConf,
    Htpasswd,
}

/// Directories whose files are samples shipped by packages (test keys, example `.env`s), not the
/// image's own secrets, for the kinds found by extension or generic name. Trivy's built-in allow rules
/// skip the same kind of paths.
const SAMPLE_DIRS: &[&str] = &[
    "test",
    "tests",
    "testdata",
    "test_data",
    "__tests__",
    "fixtures",
    "example",
    "examples",
];

fn parent_is(path: &str, dir: &str) -> bool {
    let mut parts = path.rsplit('/');
    parts.next();
    parts.next() == Some(dir)
}

/// Whether the file at absolute `path` may be a secret file, and of which kind.
pub fn candidate(path: &str) -> Option<SecretKind> {
    let base = path.rsplit('/').next().unwrap_or(path);
    let low = base.to_ascii_lowercase();
    let sample = path
        .split('/')
        .any(|c| SAMPLE_DIRS.contains(&c.to_ascii_lowercase().as_str()))
        || path.starts_with("/usr/share/doc/");
    match low.as_str() {
        "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519" | "id_ecdsa_sk" | "id_ed25519_sk" => {
            return Some(SecretKind::PrivateKey);
        }
        ".npmrc" | "npmrc" => return Some(SecretKind::Npmrc),
        ".pypirc" => return Some(SecretKind::Pypirc),
        ".netrc" | "_netrc" => return Some(SecretKind::Netrc),
        ".git-credentials" => return Some(SecretKind::GitCredentials),
        ".dockercfg" => return Some(SecretKind::DockerConfig),
        ".htpasswd" => return Some(SecretKind::Htpasswd),
        "application_default_credentials.json" => return Some(SecretKind::GcpCredentials),
        _ => {}
    }
    if low == "credentials" && parent_is(path, ".aws") {
        return Some(SecretKind::AwsCredentials);
    }
    if low == "config.json" && parent_is(path, ".docker") {
        return Some(SecretKind::DockerConfig);
    }
    if (low == "config" && parent_is(path, ".kube")) || low == "kubeconfig" {
        return Some(SecretKind::KubeConfig);
    }
    if path.contains("/.config/gcloud/")
        && (matches!(
            low.as_str(),
            "credentials.db" | "access_tokens.db" | "adc.json"
        ))
    {
        return Some(SecretKind::GcpCredentials);
    }
    if path.contains("/.azure/")
        && matches!(
            low.as_str(),
            "accesstokens.json"
                | "msal_token_cache.json"
                | "msal_token_cache.bin"
                | "service_principal_entries.json"
        )
    {
        return Some(SecretKind::AzureCredentials);
    }
    if (low == "pip.conf" || low == "pip.ini") && !sample {
        return Some(SecretKind::PipConf);
    }
    if sample {
        return None;
    }
    if low == ".env"
        || (low.starts_with(".env.")
            && !["example", "sample", "template", "dist", "defaults"]
                .iter()
                .any(|s| low.ends_with(s)))
    {
        return Some(SecretKind::DotEnv);
    }
    if low.ends_with(".pem") || low.ends_with(".key") || low.ends_with(".p8") {
        return Some(SecretKind::PrivateKey);
    }
    if low == "credentials.json" || low == "credential.json" || low.ends_with("-sa.json") {
        return Some(SecretKind::GcpCredentials);
    }
    None
}

/// `key = value` / `key: value` / `key=value` lines of a text file, comments dropped; keys trimmed,
/// values trimmed of spaces and one pair of quotes.
fn assignments(text: &str, seps: &[char]) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| {
            let i = l.find(seps)?;
            let k = l[..i].trim().trim_start_matches("export ").trim();
            let v = l[i + 1..].trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// A value that is a literal secret, not empty and not a reference to a variable set elsewhere.
fn literal(v: &str) -> bool {
    !v.is_empty() && !v.starts_with("${") && !v.starts_with('$')
}

fn names(keys: &[String]) -> String {
    let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    keys.dedup();
    let shown = keys.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if keys.len() > 5 {
        format!("{shown} and {} more", keys.len() - 5)
    } else {
        shown
    }
}

/// What private key a PEM block's header announces (`RSA`, `OPENSSH`, `EC`, PKCS#8), or PuTTY's format.
fn private_key(text: &str) -> Option<String> {
    if text.contains("PuTTY-User-Key-File-") {
        return Some("a PuTTY private key".into());
    }
    let mut rest = text;
    while let Some(i) = rest.find("-----BEGIN ") {
        let after = &rest[i + "-----BEGIN ".len()..];
        let Some(end) = after.find("-----") else {
            break;
        };
        let label = &after[..end];
        if label == "PGP PRIVATE KEY BLOCK" {
            return Some("a PGP private key".into());
        }
        if let Some(kind) = label.strip_suffix("PRIVATE KEY") {
            let kind = kind.trim();
            return Some(match kind {
                "" => "a private key (PKCS#8)".to_string(),
                "ENCRYPTED" => "an encrypted private key (PKCS#8)".to_string(),
                "RSA" => "an RSA private key".to_string(),
                "EC" => "an EC private key".to_string(),
                "OPENSSH" => "an OpenSSH private key".to_string(),
                k => format!("a {k} private key"),
            });
        }
        rest = &after[end..];
    }
    None
}

fn contains_any(text: &str, needles: &[&str]) -> Option<String> {
    let found: Vec<String> = needles
        .iter()
        .filter(|n| text.contains(**n))
        .map(|n| n.to_string())
        .collect();
    (!found.is_empty()).then(|| names(&found))
}

/// What a candidate file of `kind` holds, from its content; `None` when it holds no secret.
/// The description never contains a secret value.
pub fn confirm(kind: SecretKind, content: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(content);
    let text = text.as_ref();
    match kind {
        SecretKind::PrivateKey => private_key(text),
        SecretKind::DotEnv => {
            let keys: Vec<String> = assignments(text, &['='])
                .into_iter()
                .filter(|(k, v)| !k.is_empty() && !k.contains(char::is_whitespace) && literal(v))
                .map(|(k, _)| k)
                .collect();
            (!keys.is_empty()).then(|| {
                format!(
                    "a .env file with {} variable(s) set: {}",
                    keys.len(),
                    names(&keys)
                )
            })
        }
        SecretKind::AwsCredentials => {
            let keys: Vec<String> = assignments(text, &['='])
                .into_iter()
                .filter(|(k, v)| {
                    let k = k.to_ascii_lowercase();
                    (k == "aws_secret_access_key" || k == "aws_session_token") && literal(v)
                })
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect();
            (!keys.is_empty()).then(|| format!("AWS credentials ({})", names(&keys)))
        }
        SecretKind::GcpCredentials => contains_any(
            text,
            &[
                "\"private_key\"",
                "\"refresh_token\"",
                "\"client_secret\"",
                "access_token",
            ],
        )
        .map(|k| format!("Google Cloud credentials ({k})")),
        SecretKind::AzureCredentials => contains_any(
            text,
            &[
                "accessToken",
                "refreshToken",
                "AccessToken",
                "RefreshToken",
                "client_secret",
                "secret",
            ],
        )
        .map(|k| format!("Azure CLI credentials ({k})")),
        SecretKind::DockerConfig => {
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            let auths = v.get("auths").unwrap_or(&v);
            let hosts: Vec<String> = auths
                .as_object()?
                .iter()
                .filter(|(_, e)| {
                    ["auth", "identitytoken", "password", "registrytoken"]
                        .iter()
                        .any(|k| e.get(*k).and_then(|s| s.as_str()).is_some_and(literal))
                })
                .map(|(h, _)| h.clone())
                .collect();
            (!hosts.is_empty()).then(|| format!("registry credentials for {}", names(&hosts)))
        }
        SecretKind::KubeConfig => {
            let keys: Vec<String> = assignments(text, &[':'])
                .into_iter()
                .map(|(k, v)| (k.trim_start_matches("- ").to_string(), v))
                .filter(|(k, v)| {
                    matches!(
                        k.as_str(),
                        "token" | "client-key-data" | "password" | "client-key"
                    ) && literal(v)
                        && !(k == "client-key" && v.starts_with('/'))
                })
                .map(|(k, _)| k)
                .collect();
            (!keys.is_empty()).then(|| format!("a kubeconfig with {}", names(&keys)))
        }
        SecretKind::Npmrc => {
            let keys: Vec<String> = assignments(text, &['='])
                .into_iter()
                .filter(|(k, v)| {
                    let field = k.rsplit(':').next().unwrap_or(k);
                    matches!(field, "_authToken" | "_auth" | "_password") && literal(v)
                })
                .map(|(k, _)| k)
                .collect();
            (!keys.is_empty()).then(|| format!("npm registry credentials ({})", names(&keys)))
        }
        SecretKind::Pypirc => {
            let mut section = String::new();
            let mut found = Vec::new();
            for l in text.lines().map(str::trim) {
                if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                    section = s.trim().to_string();
                    continue;
                }
                if let Some((k, v)) = l.split_once(['=', ':'])
                    && k.trim().eq_ignore_ascii_case("password")
                    && literal(v.trim())
                {
                    found.push(format!("[{section}] password"));
                }
            }
            (!found.is_empty()).then(|| format!("PyPI upload credentials ({})", names(&found)))
        }
        SecretKind::Netrc => {
            let words: Vec<&str> = text.split_whitespace().collect();
            let n = words
                .windows(2)
                .filter(|w| w[0] == "password" && literal(w[1]))
                .count();
            (n > 0).then(|| format!("a .netrc with {n} password(s)"))
        }
        SecretKind::GitCredentials | SecretKind::PipConf => {
            let n = text
                .split_whitespace()
                .filter(|w| url_with_password(w))
                .count();
            (n > 0).then(|| match kind {
                SecretKind::GitCredentials => format!("{n} stored Git credential(s)"),
                _ => format!("{n} package index URL(s) with a password"),
            })
        }
        SecretKind::Htpasswd => {
            let n = text
                .lines()
                .filter(|l| {
                    l.split_once(':')
                        .is_some_and(|(u, h)| !u.trim().is_empty() && h.trim().len() >= 8)
                })
                .count();
            (n > 0).then(|| format!("an htpasswd file with {n} password hash(es)"))
        }
    }
}

/// `scheme://user:password@host...` with a literal password.
fn url_with_password(w: &str) -> bool {
    let w = w.trim_start_matches(['=', '"', '\'']);
    let Some((_, rest)) = w.split_once("://") else {
        return false;
    };
    let Some((userinfo, _)) = rest.split_once('@') else {
        return false;
    };
    if userinfo.contains('/') {
        return false;
    }
    userinfo.split_once(':').is_some_and(|(_, p)| literal(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_by_path() {
        assert_eq!(candidate("/root/.ssh/id_rsa"), Some(SecretKind::PrivateKey));
        assert_eq!(candidate("/app/.env"), Some(SecretKind::DotEnv));
        assert_eq!(candidate("/app/.env.production"), Some(SecretKind::DotEnv));
        assert_eq!(candidate("/app/.env.example"), None);
        assert_eq!(
            candidate("/root/.aws/credentials"),
            Some(SecretKind::AwsCredentials)
        );
        assert_eq!(candidate("/etc/credentials"), None);
        assert_eq!(
            candidate("/home/u/.docker/config.json"),
            Some(SecretKind::DockerConfig)
        );
        assert_eq!(candidate("/app/config.json"), None);
        assert_eq!(
            candidate("/usr/lib/python3/dist-packages/x/tests/key.pem"),
            None
        );
        assert_eq!(candidate("/usr/local/etc/npmrc"), Some(SecretKind::Npmrc));
        assert_eq!(candidate("/usr/bin/env"), None);
    }

    #[test]
    fn content_confirms_and_never_shows_values() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(
            confirm(SecretKind::PrivateKey, key.as_bytes()).as_deref(),
            Some("an OpenSSH private key")
        );
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(confirm(SecretKind::PrivateKey, cert.as_bytes()), None);
        let npmrc = "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=npm_s3cr3tvalue\n";
        let d = confirm(SecretKind::Npmrc, npmrc.as_bytes()).unwrap();
        assert!(d.contains("//registry.npmjs.org/:_authToken"), "{d}");
        assert!(!d.contains("npm_s3cr3tvalue"), "{d}");
        assert_eq!(
            confirm(
                SecretKind::Npmrc,
                b"//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"
            ),
            None
        );
        let pypirc = "[distutils]\nindex-servers = pypi\n[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n";
        let d = confirm(SecretKind::Pypirc, pypirc.as_bytes()).unwrap();
        assert_eq!(d, "PyPI upload credentials ([pypi] password)");
        assert_eq!(
            confirm(SecretKind::Pypirc, b"[pypi]\nusername = me\n"),
            None
        );
        let aws = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
        let d = confirm(SecretKind::AwsCredentials, aws.as_bytes()).unwrap();
        assert!(
            d.contains("aws_secret_access_key") && !d.contains("wJalr"),
            "{d}"
        );
        let env = "# settings\nexport DB_PASSWORD='hunter2'\nEMPTY=\nREF=${X}\n";
        let d = confirm(SecretKind::DotEnv, env.as_bytes()).unwrap();
        assert_eq!(d, "a .env file with 1 variable(s) set: DB_PASSWORD");
        let docker = r#"{"auths":{"ghcr.io":{"auth":"dXNlcjpwYXNz"},"docker.io":{}}}"#;
        assert_eq!(
            confirm(SecretKind::DockerConfig, docker.as_bytes()).as_deref(),
            Some("registry credentials for ghcr.io")
        );
        assert_eq!(
            confirm(
                SecretKind::GitCredentials,
                b"https://user:ghp_abc@github.com\n"
            )
            .as_deref(),
            Some("1 stored Git credential(s)")
        );
        assert_eq!(
            confirm(
                SecretKind::PipConf,
                b"[global]\nindex-url = https://pypi.org/simple\n"
            ),
            None
        );
    }
}
