//! moat's own Dockerfile rules: what the container-security workshop asks for and hadolint misses.

use super::{Hit, Model, drop_quotes, path_words, referenced_vars};
use crate::catalog::ids::*;
use crate::dockerfile::{BaseImage, Instruction, key_values, words};
use crate::shell::Command;

const SHELLS: &[&str] = &["sh", "bash", "zsh", "ash", "dash", "ksh"];
const NET_DEBUG_TOOLS: &[&str] = &[
    "curl",
    "wget",
    "netcat",
    "netcat-openbsd",
    "netcat-traditional",
    "nc",
    "ncat",
    "nmap",
    "gdb",
    "strace",
    "ltrace",
    "tcpdump",
    "telnet",
    "socat",
];
const TOOLCHAINS: &[&str] = &[
    "gcc",
    "g++",
    "make",
    "cmake",
    "clang",
    "build-essential",
    "build-base",
    "golang",
    "golang-go",
    "go",
    "rustc",
    "cargo",
    "maven",
    "gradle",
    "default-jdk",
    "gcc-c++",
];
const TOOLCHAIN_IMAGES: &[&str] = &["golang", "rust", "maven", "gradle", "gcc", "buildpack-deps"];

/// Package names installed by a package-manager command (`apt-get install`, `apk add`, `yum/dnf install`,
/// `zypper install`), version pins stripped.
pub fn installed_packages(c: &Command) -> Vec<String> {
    let verb: &[&str] = match c.name.as_str() {
        "apt-get" | "apt" | "aptitude" => &["install"],
        "apk" => &["add"],
        "yum" | "dnf" | "microdnf" | "tdnf" => &["install"],
        "zypper" => &["install", "in"],
        _ => return Vec::new(),
    };
    if !c.has_any_arg(verb) {
        return Vec::new();
    }
    c.args_no_flags_dropping(&["t", "virtual", "repository", "X", "target-release"])
        .into_iter()
        .skip_while(|a| !verb.contains(a))
        .skip(1)
        .map(|p| {
            p.split(['=', '<', '>', '~'])
                .next()
                .unwrap_or(p)
                .to_string()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Packages removed (`apt-get purge/remove`, `apk del`, `yum/dnf remove`).
fn removed_packages(c: &Command) -> Vec<String> {
    let verb: &[&str] = match c.name.as_str() {
        "apt-get" | "apt" => &["purge", "remove", "autoremove"],
        "apk" => &["del"],
        "yum" | "dnf" | "microdnf" => &["remove", "erase"],
        _ => return Vec::new(),
    };
    if !c.has_any_arg(verb) {
        return Vec::new();
    }
    c.args_no_flags()
        .into_iter()
        .filter(|a| !verb.contains(a))
        .map(str::to_string)
        .collect()
}

fn is_root(user: &str) -> bool {
    let u = user.split(':').next().unwrap_or("").trim();
    u == "root" || u == "0"
}

/// A literal that looks like a real credential, independent of its variable name.
fn secret_value(v: &str) -> Option<&'static str> {
    let v = v.trim();
    let b = v.as_bytes();
    let upper_alnum = |s: &[u8]| {
        s.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    if b.len() >= 20 && (v.starts_with("AKIA") || v.starts_with("ASIA")) && upper_alnum(&b[..20]) {
        return Some("an AWS access key id");
    }
    for (p, what) in [
        ("ghp_", "a GitHub token"),
        ("gho_", "a GitHub token"),
        ("ghs_", "a GitHub token"),
        ("github_pat_", "a GitHub token"),
        ("glpat-", "a GitLab token"),
        ("xoxb-", "a Slack token"),
        ("xoxp-", "a Slack token"),
        ("sk_live_", "a Stripe key"),
        ("npm_", "an npm token"),
    ] {
        if v.starts_with(p) && v.len() >= p.len() + 16 {
            return Some(what);
        }
    }
    if v.contains("-----BEGIN") && v.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if v.starts_with("eyJ") && v.matches('.').count() == 2 && v.len() > 40 {
        return Some("a JSON Web Token");
    }
    None
}

fn secret_name(name: &str) -> bool {
    let low = name.to_ascii_lowercase();
    if low.ends_with("_file")
        || low.ends_with("_path")
        || low.ends_with("_url")
        || low.ends_with("_dir")
    {
        return false;
    }
    [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "access_key",
        "client_secret",
        "credentials",
    ]
    .iter()
    .any(|s| low.contains(s))
}

fn secret_file(path: &str) -> Option<&'static str> {
    let p = drop_quotes(path).trim_end_matches('/');
    let base = p.rsplit(['/', '\\']).next().unwrap_or(p);
    let low = base.to_ascii_lowercase();
    if ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"].contains(&low.as_str()) {
        return Some("an SSH private key");
    }
    if low == ".env"
        || (low.starts_with(".env.")
            && !["example", "sample", "template", "dist"]
                .iter()
                .any(|s| low.ends_with(s)))
    {
        return Some("a .env file");
    }
    if low.ends_with(".pem")
        || low.ends_with(".key")
        || low.ends_with(".p12")
        || low.ends_with(".pfx")
        || low.ends_with(".jks")
    {
        return Some("a key or certificate store");
    }
    if [
        ".npmrc",
        ".pypirc",
        ".netrc",
        ".git-credentials",
        ".dockercfg",
        ".htpasswd",
        "kubeconfig",
        ".kube",
    ]
    .contains(&low.as_str())
    {
        return Some("a credentials file");
    }
    if low == "credentials" && p.contains(".aws") {
        return Some("AWS credentials");
    }
    None
}

/// World-writable chmod modes: octal with the others-write bit (not the sticky /tmp idiom), or
/// symbolic `a+w`/`o+w`/`+w`-style grants.
fn world_writable_mode(m: &str) -> bool {
    if !m.is_empty() && m.chars().all(|c| c.is_ascii_digit() && c < '8') {
        let sticky = m.len() == 4 && (m.as_bytes()[0] - b'0') & 1 == 1;
        let others = m.as_bytes()[m.len() - 1] - b'0';
        return others & 2 != 0 && !sticky;
    }
    m.split(',').any(|clause| {
        let Some(pos) = clause.find(['+', '=']) else {
            return false;
        };
        let who = &clause[..pos];
        let perms = &clause[pos + 1..];
        (who.contains('a') || who.contains('o') || who.is_empty()) && perms.contains('w')
    })
}

fn stage_name(m: &Model, s: usize) -> String {
    let st = &m.stages[s];
    st.base
        .alias
        .clone()
        .unwrap_or_else(|| format!("stage {}", s + 1))
}

pub fn check(m: &Model, out: &mut Vec<Hit>) {
    let ins = m.ins();
    let esc = m.df.escape;
    // Stage names, ASCII-lower-cased: one lookup per FROM, not a scan of every stage.
    let aliases: std::collections::HashSet<String> = m
        .stages
        .iter()
        .filter_map(|s| s.base.alias.as_deref().map(str::to_ascii_lowercase))
        .collect();
    for (idx, i) in ins.iter().enumerate() {
        let i: &Instruction = i;
        match i.keyword.as_str() {
            "FROM" => {
                let b = BaseImage::parse(i);
                let local = aliases.contains(&b.image.to_ascii_lowercase());
                if b.digest.is_none()
                    && b.image != "scratch"
                    && !local
                    && !b.image.contains('$')
                    && !b.image.is_empty()
                {
                    out.push(m.hit(
                        &MOAT_DF_009,
                        i,
                        format!(
                            "Base image {} is not pinned by digest",
                            i.args.split_whitespace().next().unwrap_or("")
                        ),
                    ));
                }
            }
            "EXPOSE" => {
                for w in words(&i.args, esc) {
                    // `22` or `22/tcp`, as MOAT-IMG-010 reads ExposedPorts; `22/udp` is not SSH.
                    let (port, proto) = w.split_once('/').unwrap_or((w.as_str(), "tcp"));
                    if port == "22" && proto.eq_ignore_ascii_case("tcp") {
                        out.push(m.hit(&MOAT_DF_010, i, "Port 22 (SSH) is exposed"));
                    }
                }
            }
            "ENV" | "ARG" => {
                let pairs: Vec<(String, Option<String>)> = if i.is("ENV") {
                    key_values(&i.args, esc)
                        .into_iter()
                        .map(|(k, v)| (k, Some(v)))
                        .collect()
                } else {
                    words(&i.args, esc)
                        .into_iter()
                        .map(|w| match w.split_once('=') {
                            Some((k, v)) => (k.to_string(), Some(v.to_string())),
                            None => (w, None),
                        })
                        .collect()
                };
                for (k, v) in pairs {
                    let literal = v
                        .as_deref()
                        .filter(|v| !v.is_empty() && referenced_vars(v).is_empty());
                    if let Some(what) = v.as_deref().and_then(secret_value) {
                        out.push(m.hit(
                            &MOAT_DF_003,
                            i,
                            format!("{} {k} holds what looks like {what}", i.keyword),
                        ));
                    } else if secret_name(&k) && (literal.is_some() || i.is("ARG")) {
                        let how = if i.is("ARG") {
                            "its build-time value is recorded in the image history"
                        } else {
                            "its value is stored in the image config"
                        };
                        out.push(m.hit(
                            &MOAT_DF_003,
                            i,
                            format!("{} {k} looks like a secret: {how}", i.keyword),
                        ));
                    }
                }
            }
            "COPY" | "ADD" => {
                let ws = path_words(&i.args);
                if i.heredocs.is_empty() && ws.len() >= 2 {
                    for src in &ws[..ws.len() - 1] {
                        if let Some(what) = secret_file(src) {
                            out.push(m.hit(
                                &MOAT_DF_004,
                                i,
                                format!(
                                    "{} copies {} ({what}) into the image",
                                    i.keyword,
                                    drop_quotes(src)
                                ),
                            ));
                        }
                        let s = drop_quotes(src);
                        if i.is("ADD")
                            && (s.starts_with("http://")
                                || s.starts_with("https://")
                                || s.starts_with("git@"))
                            && i.flag("checksum").is_none()
                        {
                            out.push(m.hit(
                                &MOAT_DF_006,
                                i,
                                format!("ADD fetches {s} without a checksum"),
                            ));
                        }
                    }
                }
                if let Some(mode) = i.flag_value("chmod")
                    && world_writable_mode(mode)
                {
                    out.push(m.hit(
                        &MOAT_DF_002,
                        i,
                        format!("{} --chmod={mode} makes files world-writable", i.keyword),
                    ));
                }
            }
            "RUN"
                if i.flag_value("security")
                    .is_some_and(|v| v.eq_ignore_ascii_case("insecure")) =>
            {
                out.push(m.hit(
                    &MOAT_DF_011,
                    i,
                    "RUN --security=insecure runs with full privileges",
                ));
            }
            _ => {}
        }
        let _ = idx;
    }
    for r in &m.runs {
        let cmds: Vec<Command> = r.script.commands.iter().map(Command::unwrapped).collect();
        for c in &cmds {
            if c.basename() == "chmod"
                && let Some(mode) = c
                    .args
                    .iter()
                    .find(|a| !a.starts_with('-') || a.starts_with("-w") || a.starts_with("-r"))
                    .filter(|a| world_writable_mode(a))
            {
                out.push(m.hit(
                    &MOAT_DF_002,
                    r.ins,
                    format!("chmod {mode} makes files world-writable"),
                ));
                break;
            }
        }
        for p in &r.script.pipelines {
            let names: Vec<&str> = p.iter().map(|&k| cmds[k].basename()).collect();
            if let Some(dl) = names.iter().position(|n| *n == "curl" || *n == "wget") {
                let runner = names[dl + 1..].iter().find(|n| {
                    SHELLS.contains(n)
                        || n.starts_with("python")
                        || **n == "perl"
                        || **n == "ruby"
                        || **n == "sudo"
                });
                if let Some(runner) = runner {
                    out.push(m.hit(
                        &MOAT_DF_005,
                        r.ins,
                        format!("{} output is piped into {runner}", names[dl]),
                    ));
                }
            }
        }
    }
    // Final-stage rules.
    let Some(fin) = m.final_stage() else { return };
    let chain = m.chain(fin);
    // MOAT-DF-001: final stage runs as root.
    let mut last_user: Option<(usize, String)> = None;
    for s in &chain {
        if let Some((idx, ins_u)) = m
            .stage_instructions(*s)
            .filter(|(_, i)| i.is("USER"))
            .last()
        {
            last_user = Some((idx, words(&ins_u.args, esc).join(" ")));
            break;
        }
    }
    let fin_from = &ins[m.stages[fin].from];
    let base_root_by_default = {
        let root_base = &m.stages[*chain.last().unwrap_or(&fin)].base;
        !(root_base
            .tag
            .as_deref()
            .is_some_and(|t| t.contains("nonroot"))
            || root_base.image.contains("nonroot"))
    };
    match &last_user {
        Some((idx, u)) if is_root(u) => out.push(m.hit(&MOAT_DF_001, &ins[*idx], format!("The final stage ({}) runs as {u}", stage_name(m, fin)))),
        None if base_root_by_default => out.push(m.hit(
            &MOAT_DF_001,
            fin_from,
            format!("The final stage ({}) has no USER instruction: it runs as root unless the base image sets a user", stage_name(m, fin)),
        )),
        _ => {}
    }
    // MOAT-DF-007 / MOAT-DF-008: what the final image keeps installed.
    let mut installed: Vec<(String, usize, Option<String>)> = Vec::new();
    let mut removed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut runtime_text = String::new();
    for s in chain.iter().rev() {
        for (idx, i) in m.stage_instructions(*s) {
            if matches!(i.keyword.as_str(), "CMD" | "ENTRYPOINT" | "HEALTHCHECK") {
                runtime_text.push_str(&i.args);
                runtime_text.push(' ');
            }
            if let Some(r) = m.run_at(idx) {
                for c in r.script.commands.iter().map(Command::unwrapped) {
                    // `apk add --virtual .deps ...` / `apk del .deps`: the group name removes them all.
                    let group = if c.name == "apk" {
                        c.args.iter().enumerate().find_map(|(k, a)| {
                            if a == "--virtual" || a == "-t" {
                                c.args.get(k + 1).cloned()
                            } else {
                                a.strip_prefix("--virtual=").map(str::to_string)
                            }
                        })
                    } else {
                        None
                    };
                    for p in installed_packages(&c) {
                        if Some(&p) != group.as_ref() {
                            installed.push((p, idx, group.clone()));
                        }
                    }
                    removed.extend(removed_packages(&c));
                }
            }
        }
    }
    let kept = |p: &str, g: &Option<String>| {
        !(removed.contains(p) || g.as_ref().is_some_and(|g| removed.contains(g)))
    };
    // The words the image runs, split once (not once per installed package).
    let runtime_words: std::collections::HashSet<&str> = runtime_text
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .collect();
    let mut tools: Vec<(&str, usize)> = Vec::new();
    for (p, idx, g) in &installed {
        if NET_DEBUG_TOOLS.contains(&p.as_str())
            && kept(p, g)
            && !runtime_words.contains(p.as_str())
        {
            tools.push((p.as_str(), *idx));
        }
    }
    let mut by_ins: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
    for (p, idx) in tools {
        by_ins.entry(idx).or_default().push(p);
    }
    for (idx, ps) in by_ins {
        out.push(m.hit(
            &MOAT_DF_007,
            &ins[idx],
            format!("{} installed in the final image", ps.join(", ")),
        ));
    }
    if m.stages.len() == 1 {
        let mut by_ins: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
        for (p, idx, g) in &installed {
            if (TOOLCHAINS.contains(&p.as_str()) || (p.contains("jdk") && !p.contains("jre")))
                && kept(p, g)
            {
                by_ins.entry(*idx).or_default().push(p.as_str());
            }
        }
        for (idx, ps) in by_ins {
            out.push(m.hit(
                &MOAT_DF_008,
                &ins[idx],
                format!(
                    "{} installed in a single-stage build: the final image keeps the toolchain",
                    ps.join(", ")
                ),
            ));
        }
        let b = &m.stages[0].base;
        let name = b.image.rsplit('/').next().unwrap_or(&b.image);
        if TOOLCHAIN_IMAGES.contains(&name)
            && !b
                .tag
                .as_deref()
                .is_some_and(|t| t.contains("slim") && name != "golang")
        {
            out.push(m.hit(&MOAT_DF_008, fin_from, format!("The only stage is based on the {name} build image: the final image keeps the toolchain")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_secret_shapes() {
        assert!(world_writable_mode("777"));
        assert!(world_writable_mode("0666"));
        assert!(world_writable_mode("a+w"));
        assert!(world_writable_mode("o+rwx"));
        assert!(world_writable_mode("+w"));
        assert!(!world_writable_mode("1777"));
        assert!(!world_writable_mode("755"));
        assert!(!world_writable_mode("a-w"));
        assert!(!world_writable_mode("u+x"));
        assert_eq!(
            secret_value("AKIAIOSFODNN7EXAMPLE"),
            Some("an AWS access key id")
        );
        assert!(secret_value("hello").is_none());
        assert!(secret_name("DB_PASSWORD") && !secret_name("DB_PASSWORD_FILE"));
        assert!(secret_file("./keys/id_rsa").is_some() && secret_file(".env.example").is_none());
    }
}
