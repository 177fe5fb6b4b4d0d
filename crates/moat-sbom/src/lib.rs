//! What is installed: catalogers find packages in an image's file view; the inventory is the SBOM.
//!
//! A cataloger declares the files it needs ([`Cataloger::wants`]); [`catalog`] reads each layer once,
//! collecting only those files, then hands each cataloger its files. OS catalogers live in `os/`,
//! language ecosystems in `lang/`, SBOM formats in `format/`: one file each.
#![forbid(unsafe_code)]

pub mod budget;
mod cataloger;
pub mod format;
pub mod lang;
pub mod os;

use std::collections::HashMap;
use std::sync::Mutex;

use moat_image::{FileMeta, FileView, Image, OpenOptions, Select, Target};
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
    /// A package database or release file whose links leave the image, loop, or dangle: reading
    /// anything else in its place would give a wrong inventory, so the SBOM stops.
    #[error("{path}: {why}")]
    Link { path: String, why: String },
    /// A budget of the run is spent (issue 17); the message names the file, the limit and the
    /// environment variable that raises it.
    #[error("{0}")]
    Budget(String),
}

/// The inventory of any target: images and trees are opened and catalogued; `sbom:FILE` documents
/// (CycloneDX, SPDX or moat inventory JSON; `sbom:-` from standard input) are read as they are.
pub fn sbom_of(target: &Target, opts: &OpenOptions) -> Result<Inventory, SbomError> {
    if let Target::Sbom(path) = target {
        let mut inv = if path.as_os_str() == "-" {
            format::read_sbom_from(std::io::stdin().lock(), "standard input")?
        } else {
            format::read_sbom(path)?
        };
        // A moat inventory keeps the target it describes; CycloneDX/SPDX documents are named by file.
        if inv.target.kind == "sbom" {
            inv.target.name = target.to_string();
        }
        return Ok(inv);
    }
    let image = Image::open(target, opts)?;
    catalog(&image)
}

/// Refuses package databases and release files reached through links that climb out of the image,
/// loop, or dangle (`var/lib/dpkg/status -> /etc/shadow` in an image without one). A database that is
/// simply absent, or a directory link inside the image, is fine. Nothing outside the image is ever
/// read either way: this only stops moat from reporting an inventory built on a hostile path.
pub fn check_links(view: &FileView) -> Result<(), SbomError> {
    let mut paths: Vec<String> = os::database_paths();
    // Files inside `status.d/` that are links.
    paths.extend(
        view.iter()
            .filter(|e| e.content.is_none() && os::is_database(&e.meta.path))
            .map(|e| e.meta.path.clone()),
    );
    paths.sort();
    paths.dedup();
    // A database hard-linked to a file that is not a package database and whose content is not in
    // the view (`var/lib/dpkg/status` -> `etc/passwd`) is refused like the same dangling symbolic
    // link, never silently read as nothing.
    for path in &paths {
        if let Some(e) = view.get(path)
            && let moat_image::EntryKind::Hardlink(t) = &e.meta.kind
            && !os::is_database(t)
            && view.get(t).and_then(|x| x.content.as_ref()).is_none()
        {
            return Err(SbomError::Link {
                path: path.clone(),
                why: format!(
                    "refusing to read the package database through a hard link to {t}, which is not a package database moat read (like a link that dangles)"
                ),
            });
        }
    }
    for path in &paths {
        let Err(err) = view.resolve_checked(path) else {
            continue;
        };
        let why = match &err {
            moat_image::ImageError::Invalid { what, why } => format!("{what}: {why}"),
            other => other.to_string(),
        };
        // Out of the image or a loop: always refused.
        let hostile = why.contains("climbs above the image root") || why.contains("(a loop)");
        // Otherwise the chain ends at nothing. That is only an error when the file itself is a link
        // (it dangles); a linked directory without this database (`var/lib/rpm ->
        // ../../usr/lib/sysimage/rpm` holding only rpmdb.sqlite) is just an absent database.
        let is_dir = format!("{path}/") == os::dpkg::STATUS_D;
        if hostile || (!is_dir && leaf_is_link(view, path)) {
            return Err(SbomError::Link {
                path: path.clone(),
                why: format!("refusing to read the package database through a link: {why}"),
            });
        }
    }
    Ok(())
}

/// Whether the last component of `path` (after its directories are resolved) is itself a link.
fn leaf_is_link(view: &FileView, path: &str) -> bool {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let Some(dir) = view.resolve_path(dir) else {
        return true;
    };
    let leaf = if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    };
    view.resolve_path(&leaf).as_deref() != Some(leaf.as_str())
}

/// Builds the inventory of an opened image or tree.
pub fn catalog(image: &Image) -> Result<Inventory, SbomError> {
    catalog_with(image, &|_| Select::Skip).map(|(inv, _)| inv)
}

/// Builds the inventory and, in the same single pass over the layers, keeps what `also` selects, so
/// a judge of the files (image-configuration checks) never makes the image be read a second time.
/// The returned view holds the catalogers' files and `also`'s.
pub fn catalog_with(
    image: &Image,
    also: &dyn Fn(&FileMeta) -> Select,
) -> Result<(Inventory, FileView), SbomError> {
    let cats = catalogers();
    // Which catalogers asked for each file's content: asked once, during the single pass over the
    // layers, so a cataloger with a budget (dpkg's copyright files) is never asked twice.
    let claims: Mutex<HashMap<String, Vec<usize>>> = Mutex::new(HashMap::new());
    let select = |m: &FileMeta| {
        let mut best = os::release::wants(m);
        if best == Select::Skip {
            best = also(m);
        }
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
    check_links(&view)?;
    let os = os::release::detect(&view);
    let budget = budget::RunBudget::default();
    let ctx = Context {
        os: os.clone(),
        view: &view,
        budget: &budget,
    };
    // A database too big to read was kept as metadata only (see the catalogers' `wants`): refused.
    for e in view.iter() {
        if let Some((limit, var)) = budget::database_file_limit(&e.meta.path)
            && os::is_database(&e.meta.path)
            && e.content.is_none()
            && e.meta.size > limit
        {
            return Err(SbomError::Budget(format!(
                "{}{}: limit exceeded: the package database is {} bytes, over the {limit} byte limit (raise it with {var})",
                e.layer
                    .as_deref()
                    .map(|l| format!("layer {l}: "))
                    .unwrap_or_default(),
                e.meta.path,
                e.meta.size
            )));
        }
    }
    let mut inv = Inventory {
        target: image.target_info(),
        os,
        ..Inventory::default()
    };
    if !image.info().layers.is_empty() || image.info().config_digest.is_some() {
        inv.image = Some(image.info().clone());
    }
    // A package database that is a link inside the image (checked above) is read where it leads, under
    // its own name, so the cataloger recognises it. Each link is charged again to the database budget
    // before its copy is made, and copies are made one at a time.
    let linked: Vec<&moat_image::FileEntry> = view
        .iter()
        .filter(|e| e.content.is_none() && os::is_database(&e.meta.path))
        .collect();
    for (i, c) in cats.iter().enumerate() {
        let claimed =
            |e: &&moat_image::FileEntry| claims.get(&e.meta.path).is_some_and(|v| v.contains(&i));
        let direct = view
            .iter()
            .filter(|e| e.content.is_some())
            .map(std::borrow::Cow::Borrowed);
        let through_links = linked.iter().copied().filter(claimed).filter_map(|e| {
            let target = view.resolve_checked(&e.meta.path).ok().flatten()?;
            let content = target.content.as_ref()?;
            let mut e = e.clone();
            e.content = Some(content.clone());
            Some(std::borrow::Cow::Owned(e))
        });
        for entry in direct.filter(|e| claimed(&e.as_ref())).chain(through_links) {
            let entry: &moat_image::FileEntry = &entry;
            if os::is_database(&entry.meta.path) {
                let n = entry.content.as_ref().map_or(0, |c| c.len() as u64);
                let named = match &entry.layer {
                    Some(l) => format!("{} (layer {l})", entry.meta.path),
                    None => entry.meta.path.clone(),
                };
                if let Err(e) = budget.db_bytes.charge(&named, n) {
                    return Err(SbomError::Budget(e.to_string()));
                }
            }
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
                Err(CatalogError::Budget(m)) => return Err(SbomError::Budget(m)),
                Err(e) => inv
                    .warnings
                    .push(format!("{} ({}): {e}", entry.meta.path, c.name())),
            }
        }
    }
    inv.normalize();
    Ok((inv, view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_image::{EntryKind, FileEntry};

    fn entry(path: &str, kind: EntryKind, content: Option<&[u8]>) -> FileEntry {
        FileEntry {
            meta: FileMeta {
                path: path.into(),
                kind,
                size: content.map_or(0, |c| c.len() as u64),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            layer_index: 0,
            layer: None,
            content: content.map(<[u8]>::to_vec),
        }
    }

    fn link(path: &str, to: &str) -> FileEntry {
        entry(path, EntryKind::Symlink(to.into()), None)
    }

    fn refused(view: &FileView) -> String {
        match check_links(view) {
            Err(e) => e.to_string(),
            Ok(()) => String::new(),
        }
    }

    #[test]
    fn hostile_database_links_are_refused_and_inside_links_are_read() {
        // A chain of directory links climbing out of the image.
        let mut v = FileView::new();
        v.insert(link("var/lib/dpkg", "../../hop"));
        v.insert(link("hop", "../../../../etc"));
        let e = refused(&v);
        assert!(e.contains("climbs above the image root"), "{e}");
        assert!(e.starts_with("var/lib/dpkg/status"), "{e}");

        // An absolute link to a file the image does not have (never the host's /etc/shadow).
        let mut v = FileView::new();
        v.insert(link("var/lib/dpkg/status", "/etc/shadow"));
        let e = refused(&v);
        assert!(e.contains("not in the image"), "{e}");

        // A loop on the apk database.
        let mut v = FileView::new();
        v.insert(link("lib/apk/db/installed", "installed2"));
        v.insert(link("lib/apk/db/installed2", "installed"));
        assert!(refused(&v).contains("loop"), "{}", refused(&v));

        // Legitimate: os-release through a link, an rpm directory link without `Packages`, a
        // status.d directory link, and absent databases.
        let mut v = FileView::new();
        v.insert(link("etc/os-release", "../usr/lib/os-release"));
        v.insert(entry(
            "usr/lib/os-release",
            EntryKind::File,
            Some(b"ID=debian\nVERSION_ID=\"12\"\n"),
        ));
        v.insert(link("var/lib/rpm", "../../usr/lib/sysimage/rpm"));
        v.insert(link("var/lib/dpkg/status.d", "/opt/status.d"));
        assert_eq!(refused(&v), "");

        // A status file that is a link inside the image is read where it leads.
        let status = b"Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\nArchitecture: amd64\n\n";
        v.insert(link("var/lib/dpkg/status", "/srv/dpkg-status"));
        v.insert(entry("srv/dpkg-status", EntryKind::File, Some(status)));
        assert_eq!(refused(&v), "");
        assert_eq!(
            os::release::detect(&v).map(|o| o.id),
            Some("debian".to_string())
        );
    }
}
