//! A table of packages for people at a terminal.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use moat_model::Inventory;

pub fn to_table(inv: &Inventory) -> String {
    let mut inv = inv.clone();
    inv.normalize();
    let mut out = format!("{} ({})", inv.target.name, inv.target.kind);
    if let Some(os) = &inv.os {
        let name = os
            .pretty_name
            .clone()
            .unwrap_or_else(|| format!("{} {}", os.id, os.version_id.as_deref().unwrap_or("")));
        out.push_str(&format!(" — {}", name.trim()));
    }
    out.push('\n');
    if inv.packages.is_empty() {
        out.push_str("No packages found.\n");
    } else {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(160)
            .set_header(vec![
                "Type", "Name", "Version", "Arch", "Source", "Licences",
            ]);
        for p in &inv.packages {
            let source = match &p.source {
                Some(s) if s.name != p.name || s.version != p.version => {
                    format!("{} {}", s.name, s.version)
                }
                _ => String::new(),
            };
            t.add_row(vec![
                p.kind.as_str().to_string(),
                p.name.clone(),
                p.version.clone(),
                p.arch.clone().unwrap_or_default(),
                source,
                p.licenses.join(", "),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    out.push_str(&format!("Total: {} packages\n", inv.packages.len()));
    for w in &inv.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}
