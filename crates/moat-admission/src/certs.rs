//! `moat admission certs`: a CA and a serving certificate for the webhook's Service, so the
//! ValidatingWebhookConfiguration's `caBundle` can be filled in without another tool.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::AdmissionError;

/// PEM-encoded CA certificate, serving certificate and serving key.
#[derive(Debug, Clone)]
pub struct CertBundle {
    pub ca_cert_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

fn err(e: impl std::fmt::Display) -> AdmissionError {
    AdmissionError::Config(format!("cannot generate certificates: {e}"))
}

/// The current year, for validity periods (Jan 1 of this year to Jan 1 `years` later).
fn this_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + (secs / 31_556_952) as i32
}

/// Generates a CA and a serving certificate for `names` (DNS names or IP addresses, e.g.
/// `moat-admission.moat-system.svc`, `127.0.0.1`), valid for `years`.
pub fn generate(names: &[String], years: i32) -> Result<CertBundle, AdmissionError> {
    if names.is_empty() {
        return Err(AdmissionError::Config(
            "a serving certificate needs at least one DNS name or IP".into(),
        ));
    }
    let y = this_year();
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "moat admission webhook CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = rcgen::date_time_ymd(y, 1, 1);
    ca.not_after = rcgen::date_time_ymd(y + years.max(1), 1, 1);
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;

    let mut leaf = CertificateParams::new(names.to_vec()).map_err(err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, names[0].clone());
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_before = rcgen::date_time_ymd(y, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(y + years.max(1), 1, 1);
    let leaf_key = KeyPair::generate().map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;
    Ok(CertBundle {
        ca_cert_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `dir`.
pub fn write(bundle: &CertBundle, dir: &Path) -> Result<(), AdmissionError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| AdmissionError::Config(format!("cannot create {}: {e}", dir.display())))?;
    let put = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text)
            .map_err(|e| AdmissionError::Config(format!("cannot write {}: {e}", p.display())))
    };
    put("ca.crt", &bundle.ca_cert_pem)?;
    put("tls.crt", &bundle.cert_pem)?;
    put("tls.key", &bundle.key_pem)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("tls.key");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| AdmissionError::Config(format!("cannot restrict {}: {e}", p.display())))?;
    }
    Ok(())
}
