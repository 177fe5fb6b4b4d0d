//! deploy/: both kustomize overlays render (`kubectl kustomize`), every object is read by moat's strict
//! Kubernetes loader, and `moat lint --profile pss-restricted` finds nothing at HIGH or above outside the
//! runtime sensor's DaemonSet, whose exceptions are documented in deploy/base/sensor/sensor.yaml.

use std::path::Path;
use std::process::Command;

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn kubectl_kustomize(overlay: &Path) -> Option<String> {
    let out = match Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            // kubectl comes from Debian's kubernetes-client (scripts/deps.d/80-deploy.sh); CI must have it.
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "kubectl missing in CI: {e}"
            );
            eprintln!("SKIPPED: kubectl is missing: {e}");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        overlay.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("utf-8 manifests"))
}

#[test]
fn overlays_render_and_lint_clean_but_for_the_sensor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/overlays");
    for overlay in ["sqlite-single", "postgres-ha"] {
        let Some(rendered) = kubectl_kustomize(&root.join(overlay)) else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &rendered).expect("write rendered");
        let kinds: Vec<&str> = rendered
            .lines()
            .filter_map(|l| l.strip_prefix("kind: "))
            .collect();
        for want in [
            "Deployment",
            "DaemonSet",
            "Service",
            "NetworkPolicy",
            "ValidatingWebhookConfiguration",
            "ConfigMap",
        ] {
            assert!(kinds.contains(&want), "{overlay}: no {want} rendered");
        }
        let out = Command::new(MOAT)
            .args(["lint", "--profile", "pss-restricted", "-f", "json"])
            .arg(&file)
            .output()
            .expect("run moat");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{overlay}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
        let findings = report["findings"].as_array().expect("findings");
        for f in findings {
            let object = f["location"]["object"].as_str().unwrap_or("");
            let sev = f["severity"].as_str().unwrap_or("");
            if object != "DaemonSet/moat-sensor/moat-sensor" {
                assert!(
                    !matches!(sev, "HIGH" | "CRITICAL" | "MEDIUM"),
                    "{overlay}: {sev} {} on {object}: {}",
                    f["id"],
                    f["message"]
                );
            }
        }
        // The sensor is least-privilege eBPF: never privileged, only the documented capabilities.
        assert!(
            !rendered.contains("privileged: true"),
            "{overlay}: a privileged container"
        );
        for f in findings
            .iter()
            .filter(|f| f["id"] == "capabilities_restricted")
        {
            let msg = f["message"].as_str().unwrap_or("");
            assert!(
                ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"]
                    .iter()
                    .any(|c| msg.contains(&format!("\"{c}\""))),
                "{overlay}: undocumented capability: {msg}"
            );
        }
    }
}
