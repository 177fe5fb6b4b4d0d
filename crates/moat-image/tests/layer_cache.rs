//! The layer cache: an image read with layers replayed from the cache gives exactly the view a full
//! read gives (paths, kinds, modes, layers, contents), whiteouts included, and only its new layers are
//! read. Uses the language test image (scripts/deps.d/40-lang-image.sh): `lang` is bookworm plus npm,
//! pip and binary layers; `lang-deleted` is `lang` plus a layer whiting out node_modules/minimist.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use moat_image::{
    FileMeta, FileView, Image, LayerCache, LayerCacheHandle, LayerChanges, OpenOptions, Select,
    Target,
};

#[derive(Default)]
struct Mem {
    map: Mutex<HashMap<String, String>>,
    hits: AtomicUsize,
    puts: AtomicUsize,
}

impl LayerCache for Mem {
    fn get(&self, key: &str) -> Option<LayerChanges> {
        // Through JSON, as a store keeps it.
        let s = self.map.lock().unwrap().get(key).cloned()?;
        self.hits.fetch_add(1, Ordering::SeqCst);
        Some(serde_json::from_str(&s).expect("stored changes"))
    }
    fn put(&self, key: &str, changes: &LayerChanges) {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.map
            .lock()
            .unwrap()
            .insert(key.to_string(), serde_json::to_string(changes).unwrap());
    }
}

fn select(m: &FileMeta) -> Select {
    let interesting = m.path.starts_with("srv/app/")
        || m.path.starts_with("var/lib/dpkg/")
        || m.path
            .starts_with("usr/local/lib/python3.11/site-packages/")
        || m.path.starts_with("etc/");
    if interesting && m.size < (256 << 10) {
        Select::Content
    } else if m.path.starts_with("usr/") {
        Select::Meta
    } else {
        Select::Skip
    }
}

fn flat(v: &FileView) -> Vec<String> {
    let mut out: Vec<String> = v
        .iter()
        .map(|e| {
            format!(
                "{} {:?} {:o} {} {} {:?} {:?}",
                e.meta.path,
                e.meta.kind,
                e.meta.mode,
                e.meta.size,
                e.layer_index,
                e.layer,
                e.content.as_ref().map(|c| c.len())
            )
        })
        .collect();
    out.sort();
    out
}

fn read(tag: &str, dir: &std::path::Path, cache: Option<LayerCacheHandle>) -> FileView {
    let t = Target::parse(&format!("oci:{}:{tag}", dir.display())).unwrap();
    let opts = OpenOptions {
        layer_cache: cache,
        ..OpenOptions::default()
    };
    Image::open(&t, &opts).unwrap().collect(&select).unwrap()
}

#[test]
fn replayed_layers_give_the_same_view_and_only_new_layers_are_read() {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let dir = std::env::var_os("MOAT_LANG_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/moat-fixtures/lang-image"))
        .join("oci");
    if !dir.join("index.json").is_file() {
        eprintln!(
            "SKIPPED: {} is missing (scripts/deps.d/40-lang-image.sh)",
            dir.display()
        );
        return;
    }
    let mem = Arc::new(Mem::default());
    let handle = LayerCacheHandle::new(mem.clone(), "test-selection");
    let full_lang = read("lang", &dir, None);
    let cached_lang = read("lang", &dir, Some(handle.clone()));
    let layers = mem.puts.load(Ordering::SeqCst);
    assert!(layers >= 3, "every layer recorded once verified ({layers})");
    assert_eq!(mem.hits.load(Ordering::SeqCst), 0);
    assert_eq!(flat(&full_lang), flat(&cached_lang));
    // `lang-deleted` shares every layer of `lang` and adds a whiteout layer: one layer read.
    let full = read("lang-deleted", &dir, None);
    let cached = read("lang-deleted", &dir, Some(handle.clone()));
    assert_eq!(mem.hits.load(Ordering::SeqCst), layers);
    assert_eq!(mem.puts.load(Ordering::SeqCst), layers + 1);
    assert_eq!(flat(&full), flat(&cached));
    assert!(
        full_lang
            .get("srv/app/node_modules/minimist/package.json")
            .is_some()
    );
    assert!(
        cached
            .get("srv/app/node_modules/minimist/package.json")
            .is_none(),
        "the whiteout applies over replayed layers"
    );
    for e in full.iter() {
        assert_eq!(
            cached.get(&e.meta.path).and_then(|c| c.content.as_deref()),
            e.content.as_deref(),
            "{}",
            e.meta.path
        );
    }
    // Every layer from the cache now: nothing read, same view.
    let again = read("lang-deleted", &dir, Some(handle));
    assert_eq!(mem.puts.load(Ordering::SeqCst), layers + 1);
    assert_eq!(flat(&full), flat(&again));
}
