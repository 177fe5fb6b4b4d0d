//! The `DL` rules judged on one `RUN`'s shell script, one function each (`dl3008` is DL3008), in
//! the order [`RULES`] runs them. Rules that need every `RUN` of a stage (DL3009, DL3060) stay in
//! `dl::check`, which calls these for each `RUN` and `ONBUILD RUN`.

use super::*;
use crate::rules::RunScript;

/// What a per-`RUN` rule reads: the model, the `RUN`, its parsed script and commands, and
/// whether `PIP_NO_CACHE_DIR` is set for each instruction (DL3042).
pub(super) struct Run<'a> {
    pub m: &'a Model<'a>,
    pub r: &'a RunScript<'a>,
    pub i: &'a Instruction,
    pub s: &'a Script,
    pub cmds: &'a [Command],
    pub pip_env: &'a [bool],
}

/// A per-`RUN` rule.
pub(super) type RunRule = fn(&Run<'_>, &mut Vec<Hit>);

/// Every per-`RUN` rule, in id order.
pub(super) const RULES: &[RunRule] = &[
    dl3001, dl3003, dl3004, dl3008, dl3013, dl3014, dl3015, dl3016, dl3018, dl3019, dl3027, dl3028,
    dl3030, dl3032, dl3033, dl3034, dl3035, dl3036, dl3037, dl3038, dl3040, dl3041, dl3042, dl3046,
    dl3047, dl3062, dl4005,
];

/// DL3001: Command that makes no sense inside a container.
pub(super) fn dl3001(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        [
            "free", "kill", "mount", "ps", "service", "shutdown", "ssh", "top", "vim",
        ]
        .contains(&c.name.as_str())
    }) {
        out.push(m.hit(&DL3001, i, "Command makes no sense inside a container (ssh, vim, shutdown, service, ps, free, top, kill, mount, ifconfig)"));
    }
}

/// DL3003: cd used instead of WORKDIR.
pub(super) fn dl3003(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, r, i, cmds, .. } = *x;
    if !r.onbuild && cmds.iter().any(|c| c.name == "cd") {
        out.push(m.hit(&DL3003, i, "Use WORKDIR to switch to a directory"));
    }
}

/// DL3004: sudo used in RUN.
pub(super) fn dl3004(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| c.name == "sudo") {
        out.push(m.hit(&DL3004, i, "Do not use sudo: it leads to unpredictable behaviour; use a tool like gosu to drop privileges"));
    }
}

/// DL3008: apt-get install without pinned versions.
pub(super) fn dl3008(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    let unpinned_apt: Vec<&str> = cmds
        .iter()
        .filter(|c| c.is_with("apt-get", &["install"]))
        .flat_map(|c| args_dropping(c, &["t", "target-release"]))
        .filter(|a| *a != "install")
        .filter(|p| !(p.contains('=') || p.contains('/') || p.ends_with(".deb")))
        .collect();
    if !unpinned_apt.is_empty() {
        out.push(m.hit(
            &DL3008,
            i,
            format!(
                "Pin versions in apt-get install ({})",
                unpinned_apt.join(", ")
            ),
        ));
    }
}

/// DL3013: pip install without pinned versions.
pub(super) fn dl3013(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    let pip_unpinned = cmds.iter().any(|c| {
        if !is_pip_install(c) {
            return false;
        }
        if c.has_flag("constraint") || c.has_flag("c") {
            return false;
        }
        if c.args
            .iter()
            .any(|a| a == "--requirement" || a == "-r" || a == ".")
        {
            return false;
        }
        let pkgs = after(
            args_dropping(
                c,
                &[
                    "abi",
                    "b",
                    "build",
                    "e",
                    "editable",
                    "extra-index-url",
                    "f",
                    "find-links",
                    "i",
                    "index-url",
                    "implementation",
                    "no-binary",
                    "only-binary",
                    "platform",
                    "prefix",
                    "progress-bar",
                    "proxy",
                    "python-version",
                    "root",
                    "root-user-action",
                    "src",
                    "t",
                    "target",
                    "trusted-host",
                    "upgrade-strategy",
                    "python",
                    "cert",
                    "client-cert",
                    "cache-dir",
                    "log",
                    "timeout",
                    "retries",
                    "exists-action",
                    "global-option",
                    "config-settings",
                    "C",
                ],
            ),
            "install",
        );
        !pkgs.iter().all(|p| pip_version_fixed(p))
    });
    if pip_unpinned {
        out.push(m.hit(&DL3013, i, "Pin versions in pip: pip install <package>==<version> or pip install -r <requirements file>"));
    }
}

/// DL3014: apt-get install without -y.
pub(super) fn dl3014(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds
        .iter()
        .any(|c| c.is_with("apt-get", &["install"]) && !apt_assume_yes(c))
    {
        out.push(m.hit(
            &DL3014,
            i,
            "Use the -y switch: apt-get install -y <package>",
        ));
    }
}

/// DL3015: apt-get install without --no-install-recommends.
pub(super) fn dl3015(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        c.is_with("apt-get", &["install"])
            && !c.has_flag("no-install-recommends")
            && !c
                .args
                .iter()
                .any(|a| a.contains("APT::Install-Recommends=false"))
    }) {
        out.push(m.hit(
            &DL3015,
            i,
            "Avoid additional packages by specifying --no-install-recommends",
        ));
    }
}

/// DL3016: npm install without pinned versions.
pub(super) fn dl3016(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        c.is_with("npm", &["install"]) && {
            let a = args_dropping(
                c,
                &[
                    "loglevel",
                    "registry",
                    "prefix",
                    "cache",
                    "userconfig",
                    "globalconfig",
                    "tag",
                    "workspace",
                    "w",
                    "omit",
                    "include",
                    "install-strategy",
                    "scope",
                ],
            );
            a.first() == Some(&"install")
                && !after(a, "install").iter().all(|p| npm_version_fixed(p))
        }
    }) {
        out.push(m.hit(
            &DL3016,
            i,
            "Pin versions in npm: npm install <package>@<version>",
        ));
    }
}

/// DL3018: apk add without pinned versions.
pub(super) fn dl3018(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    let apk_unpinned = cmds
        .iter()
        .filter(|c| c.is_with("apk", &["add"]))
        .flat_map(|c| args_dropping(c, &["t", "virtual", "repository", "X"]))
        .filter(|a| *a != "add")
        .any(|p| !(["=", "~", "<", ">"].iter().any(|s| p.contains(s)) || p.ends_with(".apk")));
    if apk_unpinned {
        out.push(m.hit(
            &DL3018,
            i,
            "Pin versions in apk add: apk add <package>=<version>",
        ));
    }
}

/// DL3019: apk add without --no-cache.
pub(super) fn dl3019(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if !has_cache_mount(i, "/var/cache/apk")
        && cmds
            .iter()
            .any(|c| c.is_with("apk", &["add"]) && !c.has_flag("no-cache"))
    {
        out.push(m.hit(&DL3019, i, "Use the --no-cache switch with apk add"));
    }
}

/// DL3027: apt used instead of apt-get.
pub(super) fn dl3027(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| c.name == "apt") {
        out.push(m.hit(
            &DL3027,
            i,
            "Do not use apt: it is meant for interactive use; use apt-get or apt-cache",
        ));
    }
}

/// DL3028: gem install without pinned versions.
pub(super) fn dl3028(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        c.is_with("gem", &["install", "i"])
            && !c.has_arg("-v")
            && !c.has_arg("--version")
            && !c.args.iter().any(|a| a.starts_with("--version="))
            && {
                let all_flags: Vec<String> = c.flags().into_iter().map(|f| f.0).collect();
                let fl: Vec<&str> = all_flags.iter().map(String::as_str).collect();
                args_dropping(c, &fl)
                    .into_iter()
                    .filter(|a| *a != "install" && *a != "i" && *a != "--")
                    .any(|g| !g.contains(':'))
            }
    }) {
        out.push(m.hit(
            &DL3028,
            i,
            "Pin versions in gem install: gem install <gem>:<version>",
        ));
    }
}

/// DL3030: yum install without -y.
pub(super) fn dl3030(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        c.is_with("yum", &["install", "groupinstall", "localinstall"])
            && !c.has_any_flag(&["y", "assumeyes"])
    }) {
        out.push(m.hit(&DL3030, i, "Use the -y switch: yum install -y <package>"));
    }
}

/// DL3032: yum clean all missing after yum install.
pub(super) fn dl3032(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, s, .. } = *x;
    if missing_cleanup(
        s,
        |c| c.is_with("yum", &["install"]),
        // As hadolint: any `rm -rf` (or removal of the yum cache) counts as the clean-up.
        |c| c.is_with("yum", &["clean", "all"]) || c.is_with("rm", &["-rf", "/var/cache/yum/*"]),
    ) {
        out.push(m.hit(&DL3032, i, "yum clean all missing after yum install"));
    }
}

/// DL3033: yum install without pinned versions.
pub(super) fn dl3033(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, r, i, cmds, .. } = *x;
    let yum_bad = cmds.iter().any(|c| {
        let module = c.name == "yum" && c.has_arg("module");
        rpm_install_packages(c, &["yum"])
            .into_iter()
            .any(|(p, raw)| {
                // Declared variables stand for a version (hadolint's reading).
                let p = &with_declared_vars(m, r.index, p, raw);
                let fixed = if module {
                    p.contains(':')
                } else {
                    rpm_version_fixed(p)
                };
                !fixed
            })
    });
    if yum_bad {
        out.push(m.hit(
            &DL3033,
            i,
            "Specify versions with yum install -y <package>-<version>",
        ));
    }
}

/// DL3034: zypper command without non-interactive switch.
pub(super) fn dl3034(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        c.is_with(
            "zypper",
            &[
                "install",
                "in",
                "remove",
                "rm",
                "source-install",
                "si",
                "patch",
            ],
        ) && !c.has_any_flag(&["n", "non-interactive", "y", "no-confirm"])
    }) {
        out.push(m.hit(
            &DL3034,
            i,
            "Non-interactive switch missing from zypper: zypper install -y",
        ));
    }
}

/// DL3035: zypper dist-upgrade used.
pub(super) fn dl3035(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds
        .iter()
        .any(|c| c.is_with("zypper", &["dist-upgrade", "dup"]))
    {
        out.push(m.hit(&DL3035, i, "Do not use zypper dist-upgrade"));
    }
}

/// DL3036: zypper clean missing after zypper use.
pub(super) fn dl3036(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, s, .. } = *x;
    if !has_cache_mount(i, "/var/cache/zypp")
        && missing_cleanup(
            s,
            |c| c.is_with("zypper", &["install", "in"]),
            |c| c.is_with("zypper", &["clean", "cc"]),
        )
    {
        out.push(m.hit(&DL3036, i, "zypper clean missing after zypper install"));
    }
}

/// DL3037: zypper install without pinned versions.
pub(super) fn dl3037(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds
        .iter()
        .filter(|c| c.is_with("zypper", &["install", "in"]))
        .flat_map(|c| c.args_no_flags())
        .filter(|a| *a != "install" && *a != "in")
        .any(|p| !(p.contains('=') || p.contains('<') || p.contains('>') || p.ends_with(".rpm")))
    {
        out.push(m.hit(
            &DL3037,
            i,
            "Specify versions with zypper install -y <package>=<version>",
        ));
    }
}

/// DL3038: dnf install without -y.
pub(super) fn dl3038(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        (c.name == "dnf" || c.name == "microdnf")
            && c.has_any_arg(&[
                "install",
                "in",
                "groupinstall",
                "localinstall",
                "reinstall",
                "rei",
            ])
            && !c.has_any_flag(&["y", "assumeyes"])
    }) {
        out.push(m.hit(&DL3038, i, "Use the -y switch: dnf install -y <package>"));
    }
}

/// DL3040: dnf clean all missing after dnf install.
pub(super) fn dl3040(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, s, .. } = *x;
    // hadolint accepts only a cache mount of dnf5's cache directory.
    let dnf_cached = has_cache_mount(i, "/var/cache/libdnf5");
    if !dnf_cached
        && ["dnf", "microdnf"].iter().any(|pm| {
            missing_cleanup(
                s,
                |c| {
                    c.name == *pm
                        && c.has_any_arg(&[
                            "install",
                            "in",
                            "upgrade",
                            "up",
                            "reinstall",
                            "rei",
                            "groupinstall",
                            "localinstall",
                            "update",
                            "upgrade-minimal",
                            "up-min",
                        ])
                },
                |c| {
                    c.is_with(pm, &["clean", "all"])
                        || c.is_with("rm", &["-rf", "/var/cache/yum/*"])
                },
            )
        })
    {
        out.push(m.hit(&DL3040, i, "dnf clean all missing after dnf install"));
    }
}

/// DL3041: dnf install without pinned versions.
pub(super) fn dl3041(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, r, i, cmds, .. } = *x;
    let dnf_bad = cmds.iter().any(|c| {
        if (c.name == "dnf" || c.name == "microdnf") && c.has_arg("group") {
            return false;
        }
        let module = (c.name == "dnf" || c.name == "microdnf") && c.has_arg("module");
        rpm_install_packages(c, &["dnf", "microdnf"])
            .into_iter()
            .any(|(p, raw)| {
                // Declared variables stand for a version (hadolint's reading).
                let p = &with_declared_vars(m, r.index, p, raw);
                let fixed = if module {
                    p.contains(':')
                } else {
                    rpm_version_fixed(p)
                };
                !fixed
            })
    });
    if dnf_bad {
        out.push(m.hit(
            &DL3041,
            i,
            "Specify versions with dnf install -y <package>-<version>",
        ));
    }
}

/// DL3042: pip install without --no-cache-dir.
pub(super) fn dl3042(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run {
        m,
        r,
        i,
        cmds,
        pip_env,
        ..
    } = *x;
    if !has_cache_mount(i, "/root/.cache/pip") && cmds.iter().any(is_pip_install) {
        let env_truthy = pip_env[r.index].then_some(true);
        // A PIP_NO_CACHE_DIR set anywhere in the RUN (assignment prefix or export) applies to
        // the whole RUN, as hadolint reads it; else the ENV in scope.
        let mut in_run: Option<bool> = None;
        for c in cmds {
            if let Some((_, v)) = c.env.iter().rev().find(|(k, _)| k == "PIP_NO_CACHE_DIR") {
                in_run = Some(truthy(v));
            }
            if c.name == "export" {
                for a in &c.args {
                    if let Some(v) = a.strip_prefix("PIP_NO_CACHE_DIR=") {
                        in_run = Some(truthy(v));
                    }
                }
            }
        }
        let disabled = in_run.or(env_truthy).unwrap_or(false);
        let fire = !disabled
            && cmds.iter().any(|c| {
                is_pip_install(c) && c.basename() != "pipx" && !c.has_flag("no-cache-dir")
            });
        if fire {
            out.push(m.hit(
                &DL3042,
                i,
                "Avoid the pip cache: pip install --no-cache-dir <package>",
            ));
        }
    }
}

/// DL3046: useradd with a high UID without -l.
pub(super) fn dl3046(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        c.name == "useradd"
            && !c.has_any_flag(&["l", "no-log-init"])
            && uid_of(c).is_some_and(|u| u.len() > 5)
    }) {
        out.push(m.hit(
            &DL3046,
            i,
            "useradd without -l and a high UID creates an excessively large image",
        ));
    }
}

/// DL3047: wget without --progress.
pub(super) fn dl3047(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| {
        c.name == "wget"
            && !c.has_flag("progress")
            && !c.has_any_flag(&[
                "q",
                "quiet",
                "o",
                "output-file",
                "a",
                "append-output",
                "no-verbose",
            ])
            && !c.has_arg("-nv")
    }) {
        out.push(m.hit(
            &DL3047,
            i,
            "wget without --progress bloats build logs: use wget --progress=dot:giga, -q or -nv",
        ));
    }
}

/// DL3062: go install/get/run without a pinned version.
pub(super) fn dl3062(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    // (hadolint lets the whole RUN pass when it also `go run`s a local package)
    let local_go_run = cmds.iter().any(|c| {
        c.name == "go" && {
            let a = c.args_no_flags();
            a.first() == Some(&"run")
                && a.get(1)
                    .is_some_and(|p| p.starts_with('.') || p.starts_with('/'))
        }
    });
    if !local_go_run && cmds.iter().any(go_unpinned) {
        out.push(m.hit(
            &DL3062,
            i,
            "Pin versions in go install: go install <module>@<version>",
        ));
    }
}

/// DL4005: /bin/sh replaced with ln instead of SHELL.
pub(super) fn dl4005(x: &Run<'_>, out: &mut Vec<Hit>) {
    let Run { m, i, cmds, .. } = *x;
    if cmds.iter().any(|c| c.name == "ln" && c.has_arg("/bin/sh")) {
        out.push(m.hit(&DL4005, i, "Use SHELL to change the default shell"));
    }
}
