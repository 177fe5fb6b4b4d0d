//! What is installed: catalogers find packages in an image's file view; the inventory is the SBOM.
//!
//! A cataloger declares the files it needs ([`Cataloger::wants`]); [`catalog`] reads each layer once,
//! collecting only those files, then hands each cataloger its files. OS catalogers live in `os/`,
//! language ecosystems in `lang/`, SBOM formats in `format/`: one file each.

mod cataloger;
pub mod format;
pub mod lang;
pub mod os;

use std::collections::HashMap;
use std::sync::Mutex;

use moat_image::{FileMeta, Image, OpenOptions, Select, Target};
use moat_model::Inventory;

pub use cataloger::{CatalogError, Cataloger, Context};

/// Every cataloger moat runs, OS first.
pub fn catalogers() -> Vec<Box<dyn Cataloger>> {
    let mut all = os::catalogers();
    all.extend(lang::catalogers());
    all
}

/// Errors that stop an SBOM: the image cannot be read. A single unparseable package file does not
/// stop it; it becomes a warning in the inventory naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error(transparent)]
    Image(#[from] moat_image::ImageError),
    #[error(transparent)]
    Sbom(#[from] format::ReadError),
}

/// The inventory of any target: images and trees are opened and catalogued; `sbom:FILE` documents
/// (CycloneDX or SPDX JSON) are read as they are.
pub fn sbom_of(target: &Target, opts: &OpenOptions) -> Result<Inventory, SbomError> {
    if let Target::Sbom(path) = target {
        let mut inv = format::read_sbom(path)?;
        inv.target.name = target.to_string();
        return Ok(inv);
    }
    let image = Image::open(target, opts)?;
    catalog(&image)
}

/// Builds the inventory of an opened image or tree.
pub fn catalog(image: &Image) -> Result<Inventory, SbomError> {
    let cats = catalogers();
    // Which catalogers asked for each file's content: asked once, during the single pass over the
    // layers, so a cataloger with a budget (dpkg's copyright files) is never asked twice.
    let claims: Mutex<HashMap<String, Vec<usize>>> = Mutex::new(HashMap::new());
    let select = |m: &FileMeta| {
        let mut best = os::release::wants(m);
        let mut claimants = Vec::new();
        for (i, c) in cats.iter().enumerate() {
            match c.wants(m) {
                Select::Content => {
                    best = Select::Content;
                    claimants.push(i);
                }
                Select::Meta if best == Select::Skip => best = Select::Meta,
                Select::Meta | Select::Skip => {}
            }
        }
        if !claimants.is_empty()
            && let Ok(mut g) = claims.lock()
        {
            g.insert(m.path.clone(), claimants);
        }
        best
    };
    let view = image.collect(&select)?;
    let claims = claims.into_inner().unwrap_or_default();
    let os = os::release::detect(&view);
    let ctx = Context { os: os.clone(), view: &view };
    let mut inv = Inventory { target: image.target_info(), os, ..Inventory::default() };
    if !image.info().layers.is_empty() || image.info().config_digest.is_some() {
        inv.image = Some(image.info().clone());
    }
    for (i, c) in cats.iter().enumerate() {
        let claimed = |e: &&moat_image::FileEntry| claims.get(&e.meta.path).is_some_and(|v| v.contains(&i));
        for entry in view.iter().filter(|e| e.content.is_some()).filter(claimed) {
            match c.catalog(entry, &ctx) {
                Ok(mut pkgs) => {
                    for p in &mut pkgs {
                        if p.path.is_none() {
                            p.path = Some(entry.meta.path.clone());
                        }
                        if p.layer.is_none() {
                            p.layer = entry.layer.clone();
                        }
                    }
                    inv.packages.extend(pkgs)
                }
                Err(e) => inv.warnings.push(format!("{} ({}): {e}", entry.meta.path, c.name())),
            }
        }
    }
    inv.normalize();
    Ok(inv)
}
