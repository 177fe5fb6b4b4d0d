//! hadolint-compatible rules: same ids, same meaning, same edge cases (checked against hadolint's own
//! test cases in `tests/hadolint_cases.rs`).

use crate::catalog::RuleMeta;
use crate::catalog::ids::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Hit, Model, drop_quotes, path_words, referenced_vars};
use crate::config::Config;
use crate::dockerfile::{BaseImage, Instruction, exec_form, key_values, words};
use crate::shell::{self, Command, Script};

mod run;

const ARCHIVE_EXTS: &[&str] = &[
    ".tar", ".Z", ".bz2", ".gz", ".lz", ".lzma", ".tZ", ".tb2", ".tbz", ".tbz2", ".tgz", ".tlz",
    ".tpz", ".txz", ".xz",
];

fn is_archive(p: &str) -> bool {
    let p = drop_quotes(p);
    ARCHIVE_EXTS.iter().any(|e| p.ends_with(e))
}

fn is_http_url(p: &str) -> bool {
    let p = drop_quotes(p);
    p.starts_with("https://") || p.starts_with("http://")
}

fn basename(p: &str) -> &str {
    let p = drop_quotes(p);
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

/// Non-flag arguments, dropping the value after each of `value_flags` when the value is a separate
/// argument (`-t stable`, not `-t=stable`).
fn args_dropping<'c>(cmd: &'c Command, value_flags: &[&str]) -> Vec<&'c str> {
    let flags = cmd.flags();
    let flag_idx: BTreeSet<usize> = flags.iter().map(|(_, i)| *i).collect();
    let mut drop = BTreeSet::new();
    for (n, i) in &flags {
        if value_flags.contains(&n.as_str()) && !cmd.args[*i].contains('=') {
            drop.insert(i + 1);
        }
    }
    cmd.args
        .iter()
        .enumerate()
        .filter(|(i, _)| !flag_idx.contains(i) && !drop.contains(i))
        .map(|(_, a)| a.as_str())
        .collect()
}

/// Arguments after the first occurrence of `word`, with repeated `word`s dropped (hadolint's
/// stripInstallPrefix).
fn after<'c>(args: Vec<&'c str>, word: &str) -> Vec<&'c str> {
    let mut it = args.into_iter().skip_while(|a| *a != word).peekable();
    while it.peek() == Some(&word) {
        it.next();
    }
    it.collect()
}

fn first_index(s: &Script, f: impl Fn(&Command) -> bool) -> Option<usize> {
    s.commands.iter().position(f)
}

/// True when an install exists and no clean-up follows the first install.
fn missing_cleanup(
    s: &Script,
    install: impl Fn(&Command) -> bool,
    clean: impl Fn(&Command) -> bool,
) -> bool {
    match first_index(s, install) {
        None => false,
        Some(i) => match first_index(s, clean) {
            Some(c) => i >= c,
            None => true,
        },
    }
}

fn has_cache_mount(ins: &Instruction, prefix: &str) -> bool {
    ins.onbuild
        .as_deref()
        .unwrap_or(ins)
        .mounts()
        .iter()
        .any(|m| (m.kind == "cache" || m.kind == "tmpfs") && m.target.starts_with(prefix))
}

fn is_pip_install(c: &Command) -> bool {
    // hadolint compares command names as written: `/usr/local/bin/pip` is not `pip`.
    let n = c.name.as_str();
    if n.starts_with("pip") && !n.starts_with("pipenv") {
        return c.has_arg("install");
    }
    if n.starts_with("python") {
        return c
            .args
            .windows(3)
            .any(|w| w[0] == "-m" && w[1] == "pip" && w[2] == "install");
    }
    false
}

/// Package words that reference a declared variable count as pinned (hadolint treats a version held
/// in an ARG, or in an ENV of the stage, as a pin).
/// A package word with each reference to a declared variable (an `ARG` anywhere before, an `ENV` of
/// the stage) replaced by a version-like `1`: `git-core-${version}` counts as pinned when `version` is
/// declared, `git${version}` does not. Undeclared references stay as `${VAR}`.
fn with_declared_vars(m: &Model, idx: usize, simplified: &str, raw: &str) -> String {
    if !raw.contains('$') {
        return simplified.to_string();
    }
    let unq: String = raw
        .chars()
        .filter(|c| *c != '"' && *c != '\'' && *c != '\\')
        .collect();
    let b = unq.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let ch = unq[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let braced = b.get(i + 1) == Some(&b'{');
        let start = if braced { i + 2 } else { i + 1 };
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        let name = &unq[start..j];
        let mut end = j;
        if braced {
            end = unq[j..].find('}').map(|k| j + k + 1).unwrap_or(b.len());
        }
        out.push_str(if !name.is_empty() && m.var_declared(idx, name) {
            "1"
        } else {
            "${VAR}"
        });
        i = end.max(i + 1);
    }
    out
}

fn rpm_version_fixed(p: &str) -> bool {
    let parts: Vec<&str> = p.split('-').collect();
    if parts.len() <= 1 {
        return false;
    }
    if p.ends_with(".rpm") {
        return true;
    }
    let rest = &parts[1..];
    rest.iter().all(|x| {
        x.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".~^_:+".contains(c))
    }) && rest
        .iter()
        .any(|x| x.starts_with(|c: char| c.is_ascii_digit()))
}

/// Packages of `<pm> [module] install ...` with their raw words, for yum/dnf pinning rules.
fn rpm_install_packages<'c>(c: &'c Command, names: &[&str]) -> Vec<(&'c str, &'c str)> {
    if !names.contains(&c.name.as_str()) || !c.has_arg("install") {
        return Vec::new();
    }
    let flag_idx: BTreeSet<usize> = c.flags().iter().map(|(_, i)| *i).collect();
    c.args
        .iter()
        .zip(c.raw_args.iter())
        .enumerate()
        .filter(|(i, (a, _))| !flag_idx.contains(i) && *a != "install" && *a != "module")
        .map(|(_, (a, r))| (a.as_str(), r.as_str()))
        .collect()
}

fn stage_logic_fires(m: &Model, hits_by_stage: &[(usize, Option<usize>)]) -> Vec<usize> {
    // hadolint reports a stage's leftovers only when the stage is the last one, or is used as the base
    // of a later stage.
    let last = m.stages.last().map(|s| &s.base);
    let from_images: BTreeSet<String> = m.stages.iter().map(|s| s.base.image.clone()).collect();
    let mut out = Vec::new();
    for (idx, stage) in hits_by_stage {
        let base: BaseImage = match stage {
            Some(s) => m.stages[*s].base.clone(),
            None => BaseImage {
                image: "scratch".into(),
                ..Default::default()
            },
        };
        let is_last = match last {
            Some(l) => *l == base,
            None => true,
        };
        let reused = base.alias.as_ref().is_some_and(|a| from_images.contains(a));
        if is_last || reused {
            out.push(*idx);
        }
    }
    out
}

pub fn check(m: &Model, cfg: &Config, out: &mut Vec<Hit>) {
    let ins = m.ins();
    let esc = m.df.escape;

    // hadolint keys stage state by stage name (alias, else image name) and a new stage starts from the
    // state of the stage its image names: two `FROM debian:12` share it. DL3042 reads its ENV this way.
    let mut pip_env: Vec<bool> = Vec::with_capacity(ins.len());
    {
        let mut by_key: BTreeMap<Option<String>, bool> = BTreeMap::new();
        let mut cur: Option<String> = None;
        for i in ins {
            if i.is("FROM") {
                let b = BaseImage::parse(i);
                let key = b.alias.clone().unwrap_or_else(|| b.image.clone());
                let inherited = by_key.get(&Some(b.image.clone())).copied().unwrap_or(false);
                by_key.insert(Some(key.clone()), inherited);
                cur = Some(key);
            } else if i.is("ENV")
                && key_values(&i.args, esc)
                    .iter()
                    .any(|(k, v)| k == "PIP_NO_CACHE_DIR" && truthy(v))
            {
                by_key.insert(cur.clone(), true);
            }
            pip_env.push(by_key.get(&cur).copied().unwrap_or(false));
        }
    }

    // ---- Per-RUN shell rules -------------------------------------------------------------------
    let mut dl3009 = Vec::new();
    let mut dl3060 = Vec::new();
    for r in &m.runs {
        let s = &r.script;
        let i = r.ins;
        let cmds = &s.commands;
        let x = run::Run {
            m,
            r,
            i,
            s,
            cmds,
            pip_env: &pip_env,
        };
        for rule in run::RULES {
            rule(&x, out);
        }
        // DL3009 (stage-aware for RUN, reported after the loop; always for ONBUILD RUN)
        {
            let update = cmds.iter().any(|c| {
                (c.name == "apt-get" || c.name == "apt" || c.name == "aptitude")
                    && c.has_arg("update")
            });
            let cleanup = cmds
                .iter()
                .any(|c| c.is_with("rm", &["-rf", "/var/lib/apt/lists/*"]));
            let cached = has_cache_mount(i, "/var/lib/apt/lists")
                || (has_cache_mount(i, "/var/lib/apt") && has_cache_mount(i, "/var/cache/apt"));
            if update && !cleanup && !cached {
                if r.onbuild {
                    out.push(m.hit(&DL3009, i, "Delete the apt-get lists after installing something: rm -rf /var/lib/apt/lists/*"));
                } else {
                    dl3009.push((r.index, m.stage_of[r.index]));
                }
            }
        }
        // DL3060 (stage-aware for RUN; always for ONBUILD RUN)
        {
            let yarn_cached =
                i.onbuild.as_deref().unwrap_or(i).mounts().iter().any(|mt| {
                    (mt.kind == "cache" || mt.kind == "tmpfs") && mt.target.contains("yarn")
                });
            if !yarn_cached
                && missing_cleanup(
                    s,
                    |c| c.is_with("yarn", &["install"]),
                    |c| c.name == "yarn" && c.has_arg("cache") && c.has_arg("clean"),
                )
            {
                if r.onbuild {
                    out.push(m.hit(&DL3060, i, "yarn cache clean missing after yarn install"));
                } else {
                    dl3060.push((r.index, m.stage_of[r.index]));
                }
            }
        }
    }
    for idx in stage_logic_fires(m, &dl3009) {
        out.push(m.hit(
            &DL3009,
            &ins[idx],
            "Delete the apt-get lists after installing something: rm -rf /var/lib/apt/lists/*",
        ));
    }
    for idx in stage_logic_fires(m, &dl3060) {
        out.push(m.hit(
            &DL3060,
            &ins[idx],
            "yarn cache clean missing after yarn install",
        ));
    }

    // ---- Instruction rules -----------------------------------------------------------------------
    let mut seen_from = false;
    // Stage names seen so far, as written and ASCII-lower-cased: rules look a name up in one step
    // (a scan of every earlier stage per FROM or COPY is quadratic in the stage count).
    let mut aliases: HashSet<String> = HashSet::new();
    let mut aliases_lower: HashSet<String> = HashSet::new();
    let mut per_stage_count: BTreeMap<(Option<usize>, &str), usize> = BTreeMap::new();
    // Archives copied in this stage and not yet extracted, by base name.
    let mut archives: HashMap<String, Vec<usize>> = HashMap::new();
    let mut extracted: BTreeSet<usize> = BTreeSet::new();
    let mut consecutive: Option<(Vec<crate::dockerfile::Flag>, usize)> = None;
    let mut pipefail = false;
    let mut tools_seen: (bool, bool) = (false, false);
    // DL3045 state: stage key → workdir set.
    let mut wd_current: Option<String> = None;
    let mut wd_map: BTreeMap<Option<String>, bool> = BTreeMap::new();
    let mut last_user: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    // Names any ENV or ARG has defined so far (DL3044 accepts references to them).
    let mut declared_so_far: BTreeSet<String> = BTreeSet::new();
    for (idx, i) in ins.iter().enumerate() {
        let stage = m.stage_of[idx];
        // DL3061
        if !seen_from && !i.is("FROM") && !i.is("ARG") {
            out.push(m.hit(
                &DL3061,
                i,
                "Invalid instruction order: a Dockerfile must begin with FROM, ARG or a comment",
            ));
        }
        // DL3059 bookkeeping
        if i.is("RUN") {
            let n = m.run_at(idx).map(|r| r.script.commands.len()).unwrap_or(0);
            match &consecutive {
                Some((fl, prev)) if *fl == i.flags && n <= 1 && *prev <= 1 => {
                    out.push(m.hit(
                        &DL3059,
                        i,
                        "Multiple consecutive RUN instructions: consider consolidation",
                    ));
                }
                _ => {}
            }
            consecutive = Some((i.flags.clone(), n));
        } else {
            consecutive = None;
        }
        match i.keyword.as_str() {
            "FROM" => {
                seen_from = true;
                let b = BaseImage::parse(i);
                pipefail = false;
                tools_seen = (false, false);
                archives.clear();
                // hadolint forgets extractions seen before a FROM too.
                extracted.clear();
                // DL3006 / DL3007
                let is_alias = aliases.contains(&b.image);
                if !hadolint_tagged(i.args.split_whitespace().next().unwrap_or(""))
                    && b.digest.is_none()
                    && b.image != "scratch"
                    && !is_alias
                    && !b.image.contains('$')
                    && !b.image.is_empty()
                {
                    out.push(m.hit(
                        &DL3006,
                        i,
                        format!(
                            "Always tag the version of an image explicitly ({})",
                            b.image
                        ),
                    ));
                }
                if b.tag.as_deref() == Some("latest") && b.digest.is_none() {
                    out.push(m.hit(&DL3007, i, "Using latest is prone to errors if the image ever updates: pin a release tag"));
                }
                // DL3024
                if let Some(a) = &b.alias {
                    if aliases.contains(a) {
                        out.push(m.hit(
                            &DL3024,
                            i,
                            format!("FROM aliases (stage names) must be unique: {a}"),
                        ));
                    }
                    // DL3063
                    if ["context", "scratch"].contains(&a.as_str()) {
                        out.push(m.hit(&DL3063, i, format!("Stage name {a} is a reserved word")));
                    }
                }
                // DL3026
                if !cfg.trusted_registries.is_empty()
                    && b.image != "scratch"
                    && !is_alias
                    && !registry_trusted(&b, &cfg.trusted_registries)
                {
                    out.push(m.hit(
                        &DL3026,
                        i,
                        format!(
                            "Use only an allowed registry in the FROM image ({})",
                            b.image
                        ),
                    ));
                }
                // DL3029 / DL3065
                if let Some(p) = &b.platform {
                    // Only the build's own platform variables are accepted (as hadolint).
                    if !p.contains("BUILDPLATFORM") && !p.contains("TARGETPLATFORM") {
                        out.push(m.hit(&DL3029, i, "Do not use --platform with FROM"));
                    }
                    let raw = i.flag("platform").map(|f| f.raw.as_str()).unwrap_or("");
                    if raw == "$TARGETPLATFORM" || raw == "${TARGETPLATFORM}" {
                        out.push(m.hit(
                            &DL3065,
                            i,
                            "FROM --platform=$TARGETPLATFORM is redundant: it is the default",
                        ));
                    }
                }
                // DL3045 stage bookkeeping
                let key = b.alias.clone().unwrap_or_else(|| b.image.clone());
                let parent = wd_map.get(&Some(b.image.clone())).copied().unwrap_or(false);
                wd_map.insert(Some(key.clone()), parent);
                wd_current = Some(key);
                if let Some(a) = b.alias {
                    aliases_lower.insert(a.to_ascii_lowercase());
                    aliases.insert(a);
                }
            }
            "WORKDIR" => {
                let p = drop_quotes(i.args.trim());
                let drive = p.len() >= 2
                    && p.as_bytes()[0].is_ascii_alphabetic()
                    && p.as_bytes()[1] == b':';
                let abs = p.starts_with('/') || p.starts_with('$') || drive;
                if !abs {
                    out.push(m.hit(&DL3000, i, format!("Use absolute WORKDIR ({p})")));
                }
                wd_map.insert(wd_current.clone(), true);
            }
            "USER" => {
                // hadolint reads USER as written (quotes included).
                let u = i.args.split_whitespace().next().unwrap_or("").to_string();
                if let Some(s) = stage {
                    last_user.insert(s, (idx, u.clone()));
                } else {
                    last_user.insert(usize::MAX, (idx, u.clone()));
                }
                let user = u.split(':').next().unwrap_or("");
                // A user held in a build argument is the builder's choice (hadolint exempts ARGs, not ENVs).
                let from_arg = {
                    let refs = referenced_vars(user);
                    !refs.is_empty() && refs.iter().all(|v| m.arg_declared(idx, v))
                };
                if !user.is_empty() && !from_arg && !user.chars().all(|c| c.is_ascii_digit()) {
                    out.push(m.hit(
                        &DL3066,
                        i,
                        format!(
                            "Non-numeric user-id {user} may not be resolvable by the host system"
                        ),
                    ));
                }
            }
            "EXPOSE" => {
                for w in words(&i.args, esc) {
                    let port = w.split('/').next().unwrap_or("");
                    if port.contains('$') {
                        continue;
                    }
                    let bad = port
                        .split('-')
                        .any(|p| p.parse::<u64>().is_ok_and(|n| n > 65535));
                    if bad {
                        out.push(m.hit(
                            &DL3011,
                            i,
                            format!("Valid UNIX ports range from 0 to 65535 ({w})"),
                        ));
                    }
                }
            }
            "HEALTHCHECK" | "CMD" | "ENTRYPOINT" => {
                let kw = i.keyword.as_str();
                let c = per_stage_count
                    .entry((
                        stage,
                        if kw == "HEALTHCHECK" {
                            "HEALTHCHECK"
                        } else if kw == "CMD" {
                            "CMD"
                        } else {
                            "ENTRYPOINT"
                        },
                    ))
                    .or_default();
                *c += 1;
                if *c > 1 {
                    let rule = match kw {
                        "HEALTHCHECK" => &DL3012,
                        "CMD" => &DL4003,
                        _ => &DL4004,
                    };
                    out.push(m.hit(rule, i, format!("Multiple {kw} instructions in one stage: only the last one takes effect")));
                }
                let body = if kw == "HEALTHCHECK" {
                    let a = i.args.trim();
                    if a.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("CMD")) {
                        Some(a.get(3..).unwrap_or("").trim())
                    } else {
                        None
                    }
                } else {
                    Some(i.args.trim())
                };
                if let Some(b) = body
                    && !b.is_empty()
                    && exec_form(b).is_none()
                {
                    out.push(m.hit(
                        &DL3025,
                        i,
                        format!("Use JSON (exec) notation for {kw} arguments"),
                    ));
                }
            }
            "COPY" | "ADD" => {
                let ws = path_words(&i.args);
                let from = i.flag_value("from");
                if i.is("COPY") && i.heredocs.is_empty() {
                    // DL3021
                    if ws.len() > 2
                        && !drop_quotes(ws.last().map(String::as_str).unwrap_or("")).ends_with('/')
                    {
                        out.push(m.hit(&DL3021, i, "COPY with more than 2 arguments requires the last argument to end with /"));
                    }
                    if let Some(f) = from {
                        // DL3022
                        let raw = i.flag("from").map(|fl| fl.raw.as_str()).unwrap_or(f);
                        if let Some(msg) = dl3022(raw, f, &aliases, stage) {
                            out.push(m.hit(&DL3022, i, msg));
                        }
                        // DL3023
                        if let Some(s) = stage
                            && m.stages[s].base.alias.as_deref().is_some_and(|a| a == f)
                        {
                            out.push(m.hit(
                                &DL3023,
                                i,
                                format!("COPY --from={f} cannot reference its own FROM alias"),
                            ));
                        }
                        // DL3067
                        if ws.len() >= 2
                            && ws[..ws.len() - 1].iter().any(|s| drop_quotes(s) == "/")
                            && drop_quotes(&ws[ws.len() - 1]) == "/"
                        {
                            out.push(m.hit(
                                &DL3067,
                                i,
                                "Do not copy an entire filesystem from another stage",
                            ));
                        }
                    }
                    // DL3045
                    if let Some(dest) = ws.last() {
                        let d = drop_quotes(dest);
                        let wd = wd_map.get(&wd_current).copied().unwrap_or(false);
                        if ws.len() >= 2
                            && !wd
                            && !(d.starts_with('/') || d.starts_with('$') || is_windows_abs(d))
                        {
                            out.push(m.hit(
                                &DL3045,
                                i,
                                format!("COPY to a relative destination ({d}) without WORKDIR set"),
                            ));
                        }
                    }
                    // DL3010 bookkeeping
                    if from.is_none() && ws.len() >= 2 {
                        let target = &ws[ws.len() - 1];
                        if is_archive(target) {
                            archives
                                .entry(basename(target).to_string())
                                .or_default()
                                .push(idx);
                        } else {
                            for s in &ws[..ws.len() - 1] {
                                if is_archive(s) {
                                    archives
                                        .entry(basename(s).to_string())
                                        .or_default()
                                        .push(idx);
                                }
                            }
                        }
                    }
                }
                if i.is("ADD")
                    && i.heredocs.is_empty()
                    && ws.len() >= 2
                    && ws[..ws.len() - 1]
                        .iter()
                        .any(|s| !(is_archive(s) || is_http_url(s)))
                {
                    out.push(m.hit(&DL3020, i, "Use COPY instead of ADD for files and folders"));
                }
            }
            "RUN" => {
                if let Some(r) = m.run_at(idx) {
                    // DL3010: extraction of a previously copied archive.
                    for c in &r.script.commands {
                        let tar_x = c.name == "tar"
                            && c.args.iter().any(|a| {
                                a == "--extract"
                                    || a == "--get"
                                    || (a.starts_with('-')
                                        && !a.starts_with("--")
                                        && a.contains('x'))
                            });
                        let unz = [
                            "unzip",
                            "gunzip",
                            "bunzip2",
                            "unlzma",
                            "unxz",
                            "zgz",
                            "uncompress",
                            "zcat",
                            "gzcat",
                        ]
                        .contains(&c.name.as_str());
                        if tar_x || unz {
                            // An archive extracted once is reported once: taking it out of the map
                            // keeps repeated extractions of one name linear.
                            for name in c.args_no_flags().into_iter().map(basename) {
                                if let Some(copies) = archives.remove(name) {
                                    extracted.extend(copies);
                                }
                            }
                        }
                    }
                    // DL4006
                    if !pipefail && r.script.has_pipes {
                        out.push(m.hit(
                            &DL4006,
                            i,
                            "Set the SHELL option -o pipefail before RUN with a pipe in it",
                        ));
                    }
                    // DL4001
                    let w = r.script.commands.iter().any(|c| c.name == "wget");
                    let cu = r.script.commands.iter().any(|c| c.name == "curl");
                    if (w && (cu || tools_seen.1)) || (cu && tools_seen.0) {
                        out.push(m.hit(&DL4001, i, "Either use wget or curl, but not both"));
                    }
                    tools_seen.0 |= w;
                    tools_seen.1 |= cu;
                }
            }
            "SHELL" => {
                let joined = exec_form(&i.args)
                    .map(|v| v.join(" "))
                    .unwrap_or_else(|| i.args.clone());
                if ["pwsh", "powershell", "cmd"]
                    .iter()
                    .any(|p| joined.starts_with(p))
                {
                    pipefail = true;
                } else {
                    let s = shell::parse(&joined);
                    pipefail = s.commands.iter().any(|c| {
                        ["bash", "zsh", "ash"].contains(&c.basename())
                            && c.has_flag("o")
                            && c.has_arg("pipefail")
                    });
                }
            }
            "ENV" => {
                let pairs = key_values(&i.args, esc);
                // DL3044: a value refers to a name another pair of the same ENV defines.
                let defined_before = &declared_so_far;
                let raw_pairs = raw_env_values(&i.args);
                // How many pairs of this ENV define each name (one ENV may hold thousands).
                let mut defines: HashMap<&str, usize> = HashMap::new();
                for (k, _) in &pairs {
                    *defines.entry(k.as_str()).or_default() += 1;
                }
                for (n, (k, _)) in pairs.iter().enumerate() {
                    let raw = raw_pairs.get(n).map(String::as_str).unwrap_or("");
                    // Names defined before this ENV (by any ENV or ARG, in any stage) are fine.
                    let others = |v: &String| {
                        let own = usize::from(k == v);
                        defines.get(v.as_str()).is_some_and(|&c| c > own)
                            && !defined_before.contains(v)
                    };
                    if plain_refs(raw).iter().any(others) {
                        out.push(m.hit(&DL3044, i, format!("Do not refer to an environment variable within the same ENV statement where it is defined ({k})")));
                        break;
                    }
                }
                declared_so_far.extend(pairs.iter().map(|(k, _)| k.clone()));
                if pairs.iter().any(|(k, _)| sensitive_name(k)) {
                    out.push(m.hit(
                        &DL3064,
                        i,
                        "Potentially sensitive data should not be used in ARG or ENV",
                    ));
                }
            }
            "ARG" => {
                let names: Vec<String> = words(&i.args, esc)
                    .iter()
                    .map(|w| w.split('=').next().unwrap_or("").to_string())
                    .collect();
                if names.iter().any(|n| sensitive_name(n)) {
                    out.push(m.hit(
                        &DL3064,
                        i,
                        "Potentially sensitive data should not be used in ARG or ENV",
                    ));
                }
                declared_so_far.extend(names);
            }
            "LABEL" => {
                for (k, _) in key_values(&i.args, esc) {
                    if !valid_label_key(&k) {
                        out.push(m.hit(&DL3048, i, format!("Invalid label key {k:?}")));
                        break;
                    }
                }
            }
            "MAINTAINER" => out.push(m.hit(
                &DL4000,
                i,
                "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors",
            )),
            "ONBUILD" => {
                if let Some(inner) = i.onbuild.as_deref()
                    && ["ONBUILD", "FROM", "MAINTAINER"].contains(&inner.keyword.as_str())
                {
                    out.push(m.hit(
                        &DL3043,
                        i,
                        format!("{} cannot be triggered from within ONBUILD", inner.keyword),
                    ));
                }
            }
            _ => {}
        }
        // DL3026 for RUN --mount=from=<image>
        if i.is("RUN") && !cfg.trusted_registries.is_empty() {
            for mt in i.mounts() {
                if let Some(f) = &mt.from {
                    if aliases_lower.contains(&f.to_ascii_lowercase()) {
                        continue;
                    }
                    let fake = Instruction {
                        args: f.clone(),
                        ..i.clone()
                    };
                    let b = BaseImage::parse(&fake);
                    if !registry_trusted(&b, &cfg.trusted_registries) {
                        out.push(m.hit(
                            &DL3026,
                            i,
                            format!("Use only an allowed registry in RUN --mount from ({f})"),
                        ));
                    }
                }
            }
        }
    }
    for e in extracted {
        out.push(m.hit(
            &DL3010,
            &ins[e],
            "Use ADD for extracting archives into an image",
        ));
    }
    // DL3002: the last USER of a stage is root.
    for (_, (idx, u)) in last_user {
        let user = u.split(':').next().unwrap_or("");
        if user == "root" || user == "0" {
            out.push(m.hit(&DL3002, &ins[idx], "Last USER should not be root"));
        }
    }
    // DL3057: no HEALTHCHECK in the final stage or the stages it builds on.
    if let Some(f) = m.final_stage() {
        let has = m
            .chain(f)
            .into_iter()
            .any(|s| m.stage_instructions(s).any(|(_, i)| i.is("HEALTHCHECK")));
        if !has {
            out.push(m.hit(
                &DL3057,
                &ins[m.stages[f].from],
                "HEALTHCHECK instruction missing",
            ));
        }
    }
}

/// DL3022 as hadolint 2.15 decides it: `COPY --from=X` is fine when X (as written) is a stage alias
/// defined before, a stage index no larger than the current stage, or contains `:` (an image
/// reference with a tag or digest, e.g. `nginx:1.25`, `nginx@sha256:…`, `localhost:5000/img`).
/// Everything else fires, including an image reference without tag or digest
/// (`gcr.io/distroless/static`, `nginx`): BuildKit pulls it as `:latest`, which is what the rule warns
/// about, and a variable (`$X`), which names no stage hadolint can see. Returns the message.
fn dl3022(
    raw: &str,
    value: &str,
    aliases: &HashSet<String>,
    stage: Option<usize>,
) -> Option<String> {
    if aliases.contains(raw) {
        return None;
    }
    if raw
        .parse::<usize>()
        .is_ok_and(|n| stage.is_some_and(|s| n <= s))
    {
        return None;
    }
    if drop_quotes(value).contains(':') {
        return None;
    }
    let v = drop_quotes(value);
    Some(if v.contains('$') {
        format!(
            "COPY --from={raw} should reference a previously defined FROM alias: a variable names no stage the linter can check"
        )
    } else if v.contains(['/', '.', '@']) {
        format!(
            "COPY --from={raw} names no earlier stage, so it is pulled as the image {v}:latest; pin it with a tag or digest, or define it as a stage (FROM ... AS)"
        )
    } else {
        format!(
            "COPY --from={raw} should reference a previously defined FROM alias (no earlier stage is named {v}; otherwise it is pulled as the image {v}:latest)"
        )
    })
}

fn is_windows_abs(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

fn pip_version_fixed(p: &str) -> bool {
    const VCS: &[&str] = &[
        "git+file",
        "git+https",
        "git+ssh",
        "git+http",
        "git+git",
        "git",
        "hg+file",
        "hg+http",
        "hg+https",
        "hg+ssh",
        "hg+static-http",
        "svn",
        "svn+svn",
        "svn+http",
        "svn+https",
        "svn+ssh",
        "bzr+http",
        "bzr+https",
        "bzr+ssh",
        "bzr+sftp",
        "bzr+ftp",
        "bzr+lp",
    ];
    let vcs = VCS.iter().any(|s| p.starts_with(s));
    ["==", ">=", "<=", ">", "<", "!=", "~=", "==="]
        .iter()
        .any(|s| p.contains(s))
        || (vcs && p.contains('@'))
        || p.ends_with(".whl")
        || p.ends_with(".tar.gz")
        || (!vcs && p.contains('/'))
}

fn npm_version_fixed(p: &str) -> bool {
    if ["git://", "git+ssh://", "git+http://", "git+https://"]
        .iter()
        .any(|g| p.starts_with(g))
    {
        return p.contains('#');
    }
    if [".tar", ".tar.gz", ".tgz"].iter().any(|s| p.ends_with(s)) {
        return true;
    }
    if ["/", "./", "../", "~/"].iter().any(|s| p.starts_with(s)) {
        return true;
    }
    let rest = if p.starts_with('@') {
        p.trim_start_matches(|c: char| c > '/')
    } else {
        p
    };
    rest.contains('@')
}

fn apt_assume_yes(c: &Command) -> bool {
    if c.has_any_flag(&["y", "yes", "assume-yes", "force-yes"]) {
        return true;
    }
    let mut quiet = 0u32;
    for a in &c.args {
        if a == "--quiet" {
            quiet += 1;
        } else if let Some(v) = a.strip_prefix("--quiet=").or_else(|| a.strip_prefix("-q=")) {
            quiet += v.parse::<u32>().unwrap_or(1);
        } else if a.starts_with('-') && !a.starts_with("--") && !a.contains('=') {
            quiet += a.chars().filter(|&ch| ch == 'q').count() as u32;
        }
    }
    quiet >= 2
}

fn uid_of(c: &Command) -> Option<&str> {
    // hadolint only reads the separate short form `-u UID`.
    let n = c.args.iter().position(|a| a == "-u")?;
    c.args.get(n + 1).map(String::as_str)
}

fn truthy(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "off" | "no" | "false"
    )
}

fn go_unpinned(c: &Command) -> bool {
    if c.name != "go" {
        return false;
    }
    let a = c.args_no_flags();
    let Some(sub) = a.first() else { return false };
    let pkgs: Vec<&str> = match *sub {
        "install" | "get" => a[1..].to_vec(),
        "run" => a.get(1).map(|p| vec![*p]).unwrap_or_default(),
        _ => return false,
    };
    pkgs.iter().any(|p| {
        if p.starts_with('.') || p.starts_with('/') || p.starts_with('$') {
            return false;
        }
        match p.rsplit_once('@') {
            Some((_, v)) => v == "latest" || v.is_empty(),
            None => true,
        }
    })
}

fn registry_trusted(b: &BaseImage, trusted: &[String]) -> bool {
    if b.image.contains('$') {
        return true;
    }
    let reg = b.registry().unwrap_or("docker.io");
    trusted.iter().any(|t| {
        if t == "*" {
            return true;
        }
        if let Some(suffix) = t.strip_prefix("*.") {
            return reg.ends_with(&format!(".{suffix}"));
        }
        reg == t
    })
}

fn sensitive_name(name: &str) -> bool {
    const KNOWN: &[&str] = &[
        "ACCESS_TOKEN",
        "APPLICATION_KEY",
        "APP_SECRET",
        "AUTH_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "BITTREX_API_KEY",
        "BITTREX_API_SECRET",
        "CF_PASSWORD",
        "CF_USERNAME",
        "CIRCLE_TOKEN",
        "CI_DEPLOY_PASSWORD",
        "CI_DEPLOY_USER",
        "DOCKERHUB_PASSWORD",
        "DOCKER_EMAIL",
        "DOCKER_PASSWORD",
        "DOCKER_USERNAME",
        "FACEBOOK_ACCESS_TOKEN",
        "FACEBOOK_APP_ID",
        "FACEBOOK_APP_SECRET",
        "FIREBASE_API_TOKEN",
        "FIREBASE_TOKEN",
        "FOSSA_API_KEY",
        "GH_ENTERPRISE_TOKEN",
        "GH_TOKEN",
        "GITHUB_ENTERPRISE_TOKEN",
        "GITHUB_TOKEN",
        "HEROKU_API_KEY",
        "HEROKU_API_USER",
        "NPM_AUTH_TOKEN",
        "NPM_TOKEN",
        "OKTA_AUTHN_GROUPID",
        "OKTA_CLIENT_ORGURL",
        "OKTA_CLIENT_TOKEN",
        "OKTA_OAUTH2_CLIENTID",
        "OKTA_OAUTH2_CLIENTSECRET",
        "OPENAI_API_KEY",
        "OS_PASSWORD",
        "OS_USERNAME",
        "POSTGRES_PASSWORD",
        "SLACK_TOKEN",
        "STRIPE_API_KEY",
        "STRIPE_DEVICE_NAME",
        "TRAVIS_OS_NAME",
        "TRAVIS_SECURE_ENV_VARS",
        "TRAVIS_SUDO",
        "VAULT_CLIENT_KEY",
        "VAULT_TOKEN",
    ];
    let up = name.to_ascii_uppercase();
    let low = name.to_ascii_lowercase();
    KNOWN.contains(&up.as_str())
        || [
            "api_key",
            "client_key",
            "password",
            "private",
            "secret",
            "token",
            "username",
        ]
        .iter()
        .any(|s| low.contains(s))
}

fn valid_label_key(k: &str) -> bool {
    let reserved = ["com.docker.", "io.docker.", "org.dockerproject."]
        .iter()
        .any(|p| k.starts_with(p));
    let chars_ok = k
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' || c == '_');
    let starts = k.starts_with(|c: char| c.is_ascii_lowercase());
    let ends = k.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let consecutive = k.contains("..") || k.contains("--");
    !k.is_empty() && !reserved && chars_ok && starts && ends && !consecutive
}

/// The raw (unexpanded, quote-stripped) values of `ENV` pairs, parallel to `key_values`.
fn raw_env_values(args: &str) -> Vec<String> {
    let ws = words(args, '\u{0}');
    if ws.first().is_some_and(|w| !w.contains('=')) {
        return vec![ws[1..].join(" ")];
    }
    ws.into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        })
        .collect()
}

fn is_url(v: &str) -> bool {
    let Some((scheme, rest)) = v.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    scheme_ok && !host.is_empty() && !v.contains(char::is_whitespace)
}

fn is_rfc3339(v: &str) -> bool {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
    {
        return false;
    }
    if !matches!(b[10], b'T' | b't' | b' ')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            b.len() == i + 6 && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

fn is_semver(v: &str) -> bool {
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    let num_ok = |n: &str| {
        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
    };
    nums.len() == 3
        && nums.iter().all(|n| num_ok(n))
        && pre.is_none_or(|p| {
            !p.is_empty()
                && p.split('.').all(|x| {
                    !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        })
}

/// DL3049–DL3053, DL3055, DL3056, DL3058: labels required and typed by `label-schema`; DL3050 with
/// `strict-labels`. Silent without a schema, like hadolint.
pub fn check_labels(m: &Model, cfg: &Config, out: &mut Vec<Hit>) {
    if cfg.label_schema.is_empty() {
        return;
    }
    let ins = m.ins();
    let esc = m.df.escape;
    for (idx, i) in ins.iter().enumerate() {
        if !i.is("LABEL") {
            continue;
        }
        for (k, v) in key_values(&i.args, esc) {
            let Some(ty) = cfg.label_schema.get(&k) else {
                if cfg.strict_labels {
                    out.push(m.hit(
                        &DL3050,
                        i,
                        format!("Superfluous label {k} is not in the label schema"),
                    ));
                }
                continue;
            };
            if v.is_empty() {
                out.push(m.hit(&DL3051, i, format!("Label {k} is empty")));
                continue;
            }
            if v.contains('$') {
                continue;
            }
            let (rule, ok): (Option<&'static RuleMeta>, bool) =
                match ty.to_ascii_lowercase().as_str() {
                    "url" => (Some(&DL3052), is_url(&v)),
                    "rfc3339" => (Some(&DL3053), is_rfc3339(&v)),
                    "hash" => (
                        Some(&DL3055),
                        (v.len() == 40 || v.len() == 7) && v.chars().all(|c| c.is_ascii_hexdigit()),
                    ),
                    "semver" => (Some(&DL3056), is_semver(&v)),
                    "email" => (
                        Some(&DL3058),
                        v.split_once('@').is_some_and(|(l, d)| {
                            !l.is_empty()
                                && !d.is_empty()
                                && !d.contains('@')
                                && !v.contains(char::is_whitespace)
                        }),
                    ),
                    _ => (None, true),
                };
            if let Some(rule) = rule
                && !ok
            {
                out.push(m.hit(rule, i, format!("Label {k} is not a valid {ty}: {v:?}")));
            }
        }
        let _ = idx;
    }
    // DL3049: each stage (with what it inherits) must define every schema label.
    // Stages that only feed `COPY --from` are build stages: they need no labels.
    let copied_from: BTreeSet<String> = ins
        .iter()
        .filter(|i| i.is("COPY"))
        .filter_map(|i| i.flag_value("from").map(str::to_string))
        .collect();
    for s in 0..m.stages.len() {
        if m.stages[s]
            .base
            .alias
            .as_ref()
            .is_some_and(|a| copied_from.contains(a))
            || copied_from.contains(&s.to_string())
        {
            continue;
        }
        let mut have: BTreeSet<String> = BTreeSet::new();
        for st in m.chain(s) {
            for (_, i) in m.stage_instructions(st) {
                if i.is("LABEL") {
                    have.extend(key_values(&i.args, esc).into_iter().map(|(k, _)| k));
                }
            }
        }
        for k in cfg.label_schema.keys() {
            if !have.contains(k) {
                out.push(m.hit(
                    &DL3049,
                    &ins[m.stages[s].from],
                    format!("Label {k} is missing"),
                ));
            }
        }
    }
}

/// `$NAME` and `${NAME}` references (not `${NAME:-default}` and other expansions), as DL3044 counts them.
fn plain_refs(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let braced = b.get(i + 1) == Some(&b'{');
        let start = if braced { i + 2 } else { i + 1 };
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j > start && (!braced || b.get(j) == Some(&b'}')) {
            out.push(s[start..j].to_string());
        }
        i = j.max(i + 1);
    }
    out
}

/// Whether an image reference has a tag the way hadolint parses it: a registry is only recognised when
/// the first path component contains a dot, so `localhost:5000/app` reads as image `localhost` with tag
/// `5000/app`.
fn hadolint_tagged(reference: &str) -> bool {
    let r = reference.split('@').next().unwrap_or(reference);
    let rest = match r.split_once('/') {
        Some((first, rest)) if first.contains('.') => rest,
        _ => r,
    };
    rest.contains(':')
}
