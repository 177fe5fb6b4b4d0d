//! Agreement with hadolint's own test cases (`../shared/data/dockerfile/hadolint-cases.json`): for every
//! DL rule moat implements, each default-configuration case must fire (or not) as hadolint's does.
//! Prints per-rule and total agreement; asserts at least 98 %.

use std::collections::BTreeMap;

use moat_lint::{Config, RULES};

fn shared(rel: &str) -> String {
    match std::env::var("MOAT_SHARED") {
        Ok(s) => format!("{s}/{rel}"),
        Err(_) => format!("{}/../../../shared/{rel}", env!("CARGO_MANIFEST_DIR")),
    }
}

/// hadolint's test configurations (Haskell record syntax) mapped to a moat `Config`: `allowedRegistries`
/// → trustedRegistries, `labelSchema` → label-schema, `strictLabels`. Others are skipped.
fn map_config(expr: &str) -> Option<Config> {
    let e = expr.trim();
    if e == "def" {
        return Some(Config::default());
    }
    let quoted = |s: &str| -> Vec<String> {
        s.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let mut cfg = Config::default();
    if let Some(rest) = e.strip_prefix("def { allowedRegistries = [") {
        cfg.trusted_registries = quoted(rest.split(']').next()?);
        return Some(cfg);
    }
    if let Some(rest) = e.strip_prefix("def { labelSchema = Map.fromList [") {
        for entry in rest.split('(').skip(1) {
            let name = quoted(entry).into_iter().next()?;
            let ty = entry
                .split(')')
                .next()?
                .split(',')
                .nth(1)?
                .trim()
                .trim_start_matches("Rule.");
            let ty = match ty {
                "RawText" => "text",
                "Url" => "url",
                "Rfc3339" => "rfc3339",
                "GitHash" => "hash",
                "SemVer" => "semver",
                "Email" => "email",
                "Spdx" => "spdx",
                _ => return None,
            };
            cfg.label_schema.insert(name, ty.to_string());
        }
        cfg.strict_labels = e.contains("strictLabels = True");
        return Some(cfg);
    }
    None
}

#[test]
fn hadolint_cases_agree() {
    let path = shared("data/dockerfile/hadolint-cases.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("SKIPPED: {path} missing (../shared not beside the checkout)");
        return;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).expect("cases are JSON");
    let rules = doc["rules"].as_object().expect("rules object");
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for r in RULES.iter().filter(|r| r.id.starts_with("DL")) {
        let Some(cases) = rules.get(r.id).and_then(|c| c.as_array()) else {
            continue;
        };
        for c in cases {
            if c["onbuild"].as_bool().unwrap_or(false) {
                continue;
            }
            // Non-default configurations are mapped where moat has the setting.
            let Some(cfg) = map_config(c["config"].as_str().unwrap_or("def")) else {
                continue;
            };
            let mut df = c["dockerfile"].as_str().unwrap_or("").to_string();
            df.push('\n');
            let should = c["should_fail"].as_bool().unwrap_or(false);
            let fired = match moat_lint::lint_dockerfile("Dockerfile", df.as_bytes(), &cfg) {
                Ok(fs) => fs.iter().any(|f| f.id == r.id),
                Err(_) => false,
            };
            let e = per.entry(r.id.to_string()).or_default();
            e.1 += 1;
            if fired == should {
                e.0 += 1;
            } else {
                misses.push(format!(
                    "{} should_fail={should}: {:?}\n{df}",
                    r.id,
                    c["test"].as_str().unwrap_or("")
                ));
            }
        }
    }
    let (ok, tot) = per.values().fold((0, 0), |a, v| (a.0 + v.0, a.1 + v.1));
    for (id, (o, t)) in &per {
        println!("{id}: {o}/{t} = {:.3}", *o as f64 / *t as f64);
    }
    for m in &misses {
        println!("DISAGREE {m}");
    }
    let rate = ok as f64 / tot.max(1) as f64;
    println!(
        "TOTAL: {ok}/{tot} = {rate:.4} over {} rules with cases",
        per.len()
    );
    assert!(tot > 250, "too few cases evaluated: {tot}");
    assert!(rate >= 0.98, "agreement {rate:.4} < 0.98");
}
