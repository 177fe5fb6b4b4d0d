//! moat's own JSON inventory: the [`Inventory`] model as is, so every field moat knows survives.

use moat_model::Inventory;

/// Pretty JSON of the normalised inventory, ending with a newline.
pub fn to_string(inv: &Inventory) -> String {
    let mut inv = inv.clone();
    inv.normalize();
    let mut s = serde_json::to_string_pretty(&inv).unwrap_or_default();
    s.push('\n');
    s
}
