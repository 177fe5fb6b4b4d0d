//! Container attribution: the container id and runtime from a process's cgroup path, and the image
//! name, container name and privileged flag from the runtime's on-disk state where moat can read it
//! (podman/CRI-O `containers.json` and OCI `config.json`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::event::Container;

/// Parses `/proc/PID/cgroup` text: `(runtime, full id, kubernetes pod uid)` when the process is in a
/// container.
pub fn from_cgroup(text: &str) -> Option<(&'static str, String, Option<String>)> {
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        let pod = pod_uid(path);
        for seg in path.rsplit('/') {
            let seg = seg.strip_suffix(".scope").unwrap_or(seg);
            let (rt, id) = if let Some(id) = seg.strip_prefix("libpod-") {
                ("podman", id)
            } else if let Some(id) = seg.strip_prefix("docker-") {
                ("docker", id)
            } else if let Some(id) = seg.strip_prefix("crio-") {
                ("cri-o", id)
            } else if let Some(id) = seg.strip_prefix("cri-containerd-") {
                ("containerd", id)
            } else if is_hex64(seg) {
                // cgroupfs driver: /docker/<id>, /kubepods/.../<id>, /libpod_parent/libpod-<id>
                let rt = if path.contains("/docker/") {
                    "docker"
                } else if path.contains("kubepods") {
                    "containerd"
                } else {
                    "podman"
                };
                (rt, seg)
            } else {
                continue;
            };
            let id = id.strip_suffix("/container").unwrap_or(id);
            if is_hex64(id) {
                return Some((rt, id.to_string(), pod));
            }
        }
    }
    None
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `kubepods-besteffort-pod<uid>.slice` or `/kubepods/burstable/pod<uid>/`.
fn pod_uid(path: &str) -> Option<String> {
    let i = path.find("pod")?;
    let rest = &path[i..];
    for seg in rest.split('/') {
        let seg = seg.strip_suffix(".slice").unwrap_or(seg);
        let cand = seg.rsplit('-').next().unwrap_or(seg);
        if let Some(u) = cand.strip_prefix("pod") {
            let u = u.replace('_', "-");
            if u.len() == 36 && u.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Some(u);
            }
        }
    }
    None
}

/// Reads runtime state for image names; cached, refreshed when an id is not found.
#[derive(Default)]
pub struct Resolver {
    by_id: HashMap<String, Container>,
    roots: Vec<PathBuf>,
}

impl Resolver {
    pub fn new() -> Self {
        let mut roots = vec![
            PathBuf::from("/var/lib/containers/storage"),
            PathBuf::from("/run/containers/storage"),
        ];
        // A custom podman storage configuration names its graph root.
        if let Some(conf) = std::env::var_os("CONTAINERS_STORAGE_CONF")
            && let Ok(t) = read_bounded(Path::new(&conf), 1 << 20)
        {
            for l in t.lines() {
                if let Some(v) = l.trim().strip_prefix("graphroot")
                    && let Some(v) = v.trim().strip_prefix('=')
                {
                    roots.insert(0, PathBuf::from(v.trim().trim_matches('"')));
                }
            }
        }
        Resolver {
            by_id: HashMap::new(),
            roots,
        }
    }

    /// The container for a full id, with whatever the runtime's state tells.
    pub fn container(
        &mut self,
        runtime: &str,
        full_id: &str,
        pod_uid: Option<String>,
        graphroot: Option<PathBuf>,
    ) -> Container {
        if let Some(c) = self.by_id.get(full_id) {
            return c.clone();
        }
        let mut c = Container {
            id: full_id.chars().take(12).collect(),
            full_id: full_id.to_string(),
            runtime: runtime.to_string(),
            pod_uid,
            ..Default::default()
        };
        // Storage roots seen once (from a container's overlay upper dir) are tried for every container.
        if let Some(g) = graphroot
            && !self.roots.contains(&g)
        {
            self.roots.insert(0, g);
        }
        let roots = self.roots.clone();
        for root in roots {
            if read_storage(&root, full_id, &mut c) {
                break;
            }
        }
        if c.image.is_some() {
            self.by_id.insert(full_id.to_string(), c.clone());
        }
        c
    }
}

/// The storage root of an overlay upper dir (`ROOT/overlay/LAYER/diff` → `ROOT`).
pub fn graphroot_of(upperdir: &str) -> Option<PathBuf> {
    upperdir
        .rfind("/overlay/")
        .map(|i| PathBuf::from(&upperdir[..i]))
}

/// Splits `registry/repo:tag` (or `@digest`) into repository and tag.
pub fn split_image(image: &str) -> (String, Option<String>) {
    if let Some((repo, _)) = image.split_once('@') {
        return (repo.to_string(), None);
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), Some(tag.to_string())),
        _ => (image.to_string(), None),
    }
}

fn read_storage(root: &Path, id: &str, c: &mut Container) -> bool {
    let list = root.join("overlay-containers/containers.json");
    let Ok(text) = read_bounded(&list, 64 << 20) else {
        return false;
    };
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(&text)
    else {
        return false;
    };
    let Some(item) = items
        .iter()
        .find(|i| i.get("id").and_then(|v| v.as_str()) == Some(id))
    else {
        return false;
    };
    c.name = item
        .get("names")
        .and_then(|n| n.get(0))
        .and_then(|n| n.as_str())
        .map(str::to_string);
    if let Some(meta) = item.get("metadata").and_then(|m| m.as_str())
        && let Ok(m) = serde_json::from_str::<serde_json::Value>(meta)
        && let Some(img) = m.get("image-name").and_then(|v| v.as_str())
    {
        let (repo, tag) = split_image(img);
        c.image = Some(img.to_string());
        c.image_repository = Some(repo);
        c.image_tag = tag;
    }
    if let Some(created) = item.get("created").and_then(|v| v.as_str()) {
        c.start_ts = parse_rfc3339(created).unwrap_or(0);
    }
    // OCI spec: a privileged container has no masked paths and keeps CAP_SYS_ADMIN.
    let cfg = root
        .join("overlay-containers")
        .join(id)
        .join("userdata/config.json");
    if let Ok(t) = read_bounded(&cfg, 16 << 20)
        && let Ok(spec) = serde_json::from_str::<serde_json::Value>(&t)
    {
        let masked = spec
            .pointer("/linux/maskedPaths")
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty());
        let sys_admin = spec
            .pointer("/process/capabilities/bounding")
            .and_then(|v| v.as_array())
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some("CAP_SYS_ADMIN")));
        c.privileged = Some(!masked && sys_admin);
        if let Some(ms) = spec.pointer("/mounts").and_then(|v| v.as_array()) {
            let mounts = ms
                .iter()
                .take(4096)
                .filter_map(|m| {
                    let opts: Vec<&str> = m
                        .get("options")
                        .and_then(|o| o.as_array())
                        .map(|o| o.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default();
                    Some(crate::event::Mount {
                        source: m.get("source")?.as_str()?.to_string(),
                        dest: m.get("destination")?.as_str()?.to_string(),
                        mode: String::new(),
                        rdwr: !opts.contains(&"ro"),
                    })
                })
                .collect();
            c.mounts = Some(mounts);
        }
        if let Some(a) = spec.pointer("/annotations").and_then(|v| v.as_object()) {
            c.k8s_ns = a
                .get("io.kubernetes.pod.namespace")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            c.k8s_pod = a
                .get("io.kubernetes.pod.name")
                .and_then(|v| v.as_str())
                .map(str::to_string);
        }
    }
    true
}

fn read_bounded(p: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(p)?;
    let mut s = String::new();
    f.take(max).read_to_string(&mut s)?;
    Ok(s)
}

/// `2024-05-01T10:00:00.123456789Z` or with an offset → ns since the epoch (offset ignored).
fn parse_rfc3339(s: &str) -> Option<u64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let hms: String = time.chars().take(8).collect();
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs).ok().map(|s| s * 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_of_each_runtime() {
        let id = "a".repeat(64);
        let podman = format!("0::/machine.slice/libpod-{id}.scope/container\n");
        assert_eq!(from_cgroup(&podman).unwrap().0, "podman");
        let podman_cgroupfs =
            format!("1:name=systemd:/libpod_parent/libpod-{id}\n0::/libpod_parent/libpod-{id}\n");
        assert_eq!(from_cgroup(&podman_cgroupfs).unwrap().1, id);
        assert_eq!(
            from_cgroup(&format!("0::/system.slice/docker-{id}.scope"))
                .unwrap()
                .0,
            "docker"
        );
        assert_eq!(
            from_cgroup(&format!("0::/docker/{id}")).unwrap().0,
            "docker"
        );
        let k8s = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-{id}.scope"
        );
        let (rt, got, pod) = from_cgroup(&k8s).unwrap();
        assert_eq!((rt, got.as_str()), ("containerd", id.as_str()));
        assert_eq!(pod.as_deref(), Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"));
        assert_eq!(
            from_cgroup(&format!("0::/kubepods.slice/x/crio-{id}.scope"))
                .unwrap()
                .0,
            "cri-o"
        );
        assert!(from_cgroup("0::/user.slice/user-0.slice/session-1.scope\n").is_none());
        assert!(from_cgroup("garbage").is_none());
    }

    #[test]
    fn images_and_times() {
        assert_eq!(
            split_image("docker.io/library/debian:bookworm"),
            ("docker.io/library/debian".into(), Some("bookworm".into()))
        );
        assert_eq!(
            split_image("localhost:5000/app"),
            ("localhost:5000/app".into(), None)
        );
        assert_eq!(
            parse_rfc3339("1970-01-02T00:00:01.5Z"),
            Some(86_401_000_000_000)
        );
    }
}
