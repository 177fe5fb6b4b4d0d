//! SBOMs of the language test image: CycloneDX 1.6 and SPDX 2.3 documents with npm, PyPI and Go
//! packages validate against the official schemas, and reading them back (`moat scan sbom:FILE`)
//! gives the same language purls.

use std::collections::BTreeSet;
use std::path::PathBuf;

use moat_image::{OpenOptions, Target};
use moat_sbom::format::{self, Format, WriteOptions};
use serde_json::Value;

fn shared() -> PathBuf {
    std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

fn load(p: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn validate(v: &jsonschema::Validator, doc: &str, what: &str) {
    let value: Value = serde_json::from_str(doc).unwrap();
    let errors: Vec<String> = v
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path))
        .take(10)
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}",
        errors.join("\n")
    );
}

#[test]
fn lang_image_sboms_validate_and_read_back() {
    let root = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/moat-fixtures/lang-image/rootfs");
    let schemas = shared().join("data/schemas");
    if !root.join("srv/app/node_modules").is_dir() || !schemas.is_dir() {
        eprintln!(
            "SKIPPED: language test image (scripts/deps.d/40-lang-image.sh) or ../shared/data/schemas missing"
        );
        return;
    }
    let inv = moat_sbom::sbom_of(&Target::Dir(root), &OpenOptions::default()).unwrap();
    let lang: BTreeSet<String> = inv
        .packages
        .iter()
        .filter(|p| !p.kind.is_os())
        .map(|p| p.purl.to_string())
        .collect();
    assert!(lang.len() > 190, "{} language packages", lang.len());

    let cdx_dir = schemas.join("cyclonedx");
    let mut opts = jsonschema::options().should_validate_formats(true);
    for (uri, file) in [
        (
            "http://cyclonedx.org/schema/spdx.schema.json",
            "spdx.schema.json",
        ),
        (
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            "jsf-0.82.schema.json",
        ),
    ] {
        opts = opts.with_resource(
            uri,
            jsonschema::Resource::from_contents(load(cdx_dir.join(file))).unwrap(),
        );
    }
    let cdx_schema = opts
        .build(&load(cdx_dir.join("bom-1.6.schema.json")))
        .unwrap();
    let spdx_schema = jsonschema::options()
        .should_validate_formats(true)
        .build(&load(schemas.join("spdx/spdx-2.3/spdx-schema.json")))
        .unwrap();

    for (format, schema, name) in [
        (Format::CycloneDx, &cdx_schema, "CycloneDX"),
        (Format::Spdx, &spdx_schema, "SPDX"),
    ] {
        let doc = format::write(&inv, format, &WriteOptions::default());
        validate(schema, &doc, name);
        let back = format::read_sbom_str(&doc, name).unwrap();
        let back_lang: BTreeSet<String> = back
            .packages
            .iter()
            .filter(|p| !p.kind.is_os())
            .map(|p| p.purl.to_string())
            .collect();
        assert_eq!(back_lang, lang, "{name} read back");
        eprintln!(
            "{name}: valid, {} language purls read back",
            back_lang.len()
        );
    }
}
