//! `moat admission certs`: a CA and a serving certificate for the webhook's Service, so the
//! ValidatingWebhookConfiguration's `caBundle` can be filled in without another tool.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use time::OffsetDateTime;

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

/// Longest validity accepted, so the end date always fits a certificate's time fields.
pub const MAX_YEARS: i32 = 100;

/// Validity window: from an hour ago (clients whose clocks lag a little still accept a freshly
/// generated certificate) to the same instant `years` calendar years from now.
fn validity(years: i32) -> Result<(OffsetDateTime, OffsetDateTime), AdmissionError> {
    if !(1..=MAX_YEARS).contains(&years) {
        return Err(AdmissionError::Config(format!(
            "--years must be between 1 and {MAX_YEARS}, not {years}"
        )));
    }
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(err)?;
    let not_before = now - time::Duration::hours(1);
    let year = now.year() + years;
    // Feb 29 has no twin in a common year: end on Feb 28 then.
    let not_after = now
        .replace_year(year)
        .or_else(|_| now.replace_day(28).and_then(|d| d.replace_year(year)))
        .map_err(err)?;
    Ok((not_before, not_after))
}

/// Generates a CA and a serving certificate for `names` (DNS names or IP addresses, e.g.
/// `moat-admission.moat-system.svc`, `127.0.0.1`), valid from now for `years` (1..=[`MAX_YEARS`]).
pub fn generate(names: &[String], years: i32) -> Result<CertBundle, AdmissionError> {
    if names.is_empty() {
        return Err(AdmissionError::Config(
            "a serving certificate needs at least one DNS name or IP".into(),
        ));
    }
    let (not_before, not_after) = validity(years)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "moat admission webhook CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
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
    leaf.not_before = not_before;
    leaf.not_after = not_after;
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
    // Each file goes through an exclusive temporary file created with its final mode (the key 0600
    // before a byte is written) and is renamed into place: a link planted at a name is replaced,
    // never written through.
    let put = |name: &str, text: &str, mode: u32| {
        moat_fsio::write_atomic(&dir.join(name), text.as_bytes(), mode)
            .map_err(|e| AdmissionError::Config(format!("cannot write: {e}")))
    };
    put("ca.crt", &bundle.ca_cert_pem, 0o644)?;
    put("tls.crt", &bundle.cert_pem, 0o644)?;
    put("tls.key", &bundle.key_pem, 0o600)?;
    Ok(())
}
