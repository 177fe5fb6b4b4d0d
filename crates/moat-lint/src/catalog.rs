//! Every rule moat lint knows: id, aliases, severity, a one-line title, why it matters and how to fix it.
//!
//! Severity mapping for hadolint's levels (documented in `moat lint --list-rules`): error → HIGH,
//! warning → MEDIUM, info → LOW, style → INFO. `.hadolint.yaml` `override` sections use the same mapping.

use moat_model::Severity;
use serde::Serialize;

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleScope {
    Dockerfile,
    Image,
}

/// One rule's metadata, the single place a rule is described: its id, the ids other tools give the same
/// check, severity, title, why it matters, how to fix it, and where it is documented upstream. Every
/// rule is a `static` in [`ids`] (`ids::DL3008`, `ids::MOAT_IMG_009`), and the checks name the rule they
/// raise by that reference, so a misspelt id does not compile; [`RULES`] lists them all for the
/// catalog (`moat lint --list-rules`) and the pragma/config lookups by id.
#[derive(Debug, Clone, Serialize)]
pub struct RuleMeta {
    pub id: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub aliases: &'static [&'static str],
    pub severity: Severity,
    /// hadolint's level for DL rules (`error`, `warning`, `info`, `style`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hadolint_level: Option<&'static str>,
    pub scope: RuleScope,
    pub title: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
    /// Where the rule is documented upstream (hadolint's wiki page of a DL rule, dockle's checkpoint
    /// of a CIS-DI alias), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_url: Option<&'static str>,
}

/// The name the rule had before it was a unit; kept for callers.
pub type RuleInfo = RuleMeta;

/// Rules are the same rule when their ids are.
impl PartialEq for RuleMeta {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for RuleMeta {}
impl PartialOrd for RuleMeta {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for RuleMeta {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(other.id)
    }
}

/// dockle's documentation of its CIS-DI checkpoints, the upstream page of moat rules with a CIS alias.
const DOCKLE_CHECKPOINTS: &str = "https://github.com/goodwithtech/dockle/blob/master/CHECKPOINT.md";

/// The upstream documentation page of a moat rule from its aliases.
const fn moat_doc(aliases: &[&str]) -> Option<&'static str> {
    if aliases.is_empty() {
        None
    } else {
        Some(DOCKLE_CHECKPOINTS)
    }
}

/// hadolint level → moat severity.
pub fn severity_of_level(level: &str) -> Option<Severity> {
    match level.to_ascii_lowercase().as_str() {
        "error" => Some(Severity::High),
        "warning" => Some(Severity::Medium),
        "info" => Some(Severity::Low),
        "style" => Some(Severity::Info),
        _ => None,
    }
}

macro_rules! dl {
    ($id:literal, $lvl:literal, $title:literal, $why:literal, $fix:literal) => {
        RuleMeta {
            id: $id,
            aliases: &[],
            severity: match $lvl.as_bytes()[0] {
                b'e' => Severity::High,
                b'w' => Severity::Medium,
                b'i' => Severity::Low,
                _ => Severity::Info,
            },
            hadolint_level: Some($lvl),
            scope: RuleScope::Dockerfile,
            title: $title,
            why: $why,
            fix: $fix,
            doc_url: Some(concat!("https://github.com/hadolint/hadolint/wiki/", $id)),
        }
    };
}

macro_rules! moat {
    ($id:literal, [$($al:literal),*], $sev:expr, $scope:expr, $title:literal, $why:literal, $fix:literal) => {
        RuleMeta { id: $id, aliases: &[$($al),*], severity: $sev, hadolint_level: None, scope: $scope, title: $title, why: $why, fix: $fix, doc_url: moat_doc(&[$($al),*]) }
    };
}

/// Defines every rule as a `static` in [`ids`] and lists them, in order, in [`RULES`].
macro_rules! table {
    ($($name:ident: $def:expr),* $(,)?) => {
        /// Every rule, one `static` each, named by its id (`-` written `_`).
        pub mod ids {
            use super::*;
            $(pub static $name: RuleMeta = $def;)*
        }
        /// The rule table, in id order.
        pub static RULES: &[&RuleMeta] = &[$(&ids::$name),*];
    };
}

table! {
    DL3000: dl!(
        "DL3000",
        "error",
        "WORKDIR path is not absolute",
        "A relative WORKDIR depends on whatever the previous working directory was, so the image layout changes silently when a base image changes.",
        "Give WORKDIR an absolute path such as /app."
    ),
    DL3001: dl!(
        "DL3001",
        "info",
        "Command that makes no sense inside a container",
        "Interactive or system-management commands (ssh, vim, shutdown, service, ps, free, top, kill, mount, ifconfig) do nothing useful in an image build and hint at a VM-style image.",
        "Remove the command; manage processes from the container runtime instead."
    ),
    DL3002: dl!(
        "DL3002",
        "warning",
        "Last USER is root",
        "A container whose last USER is root runs its process with full privileges inside the container, so any compromise starts as root.",
        "End the final stage with USER set to an unprivileged user (create it with useradd/adduser)."
    ),
    DL3003: dl!(
        "DL3003",
        "warning",
        "cd used instead of WORKDIR",
        "A cd inside RUN only lasts for that RUN; later instructions do not see it, which leads to files in unexpected places.",
        "Use WORKDIR to change directory."
    ),
    DL3004: dl!(
        "DL3004",
        "error",
        "sudo used in RUN",
        "sudo is meant for interactive privilege elevation: it needs a TTY and configuration, and keeping it in the image gives any process an elevation path.",
        "Run the step as root with USER root (and switch back), or use gosu/su-exec for runtime privilege drops; do not install sudo."
    ),
    DL3006: dl!(
        "DL3006",
        "warning",
        "Base image has no tag",
        "An untagged FROM means latest: the base changes without notice, builds are not reproducible and new vulnerabilities arrive silently.",
        "Tag the base image explicitly (e.g. debian:12.5-slim), ideally also pin its digest."
    ),
    DL3007: dl!(
        "DL3007",
        "warning",
        "Base image uses the latest tag",
        "latest moves with every upstream release, so the same Dockerfile builds different images over time.",
        "Pin a specific release tag, ideally with its digest."
    ),
    DL3008: dl!(
        "DL3008",
        "warning",
        "apt-get install without pinned versions",
        "Unpinned packages make builds non-reproducible and can pull in new, untested versions.",
        "Pin versions: apt-get install <package>=<version>."
    ),
    DL3009: dl!(
        "DL3009",
        "info",
        "apt lists not deleted after apt-get update",
        "The package lists stay in the layer, adding tens of megabytes and stale metadata.",
        "End the same RUN with rm -rf /var/lib/apt/lists/*, or use a BuildKit cache mount for /var/lib/apt and /var/cache/apt."
    ),
    DL3010: dl!(
        "DL3010",
        "info",
        "Archive copied and then extracted",
        "Copying an archive and extracting it in a later RUN leaves the archive in a layer.",
        "Use ADD for local archives (it extracts them), or extract in the same step that fetches them."
    ),
    DL3011: dl!(
        "DL3011",
        "error",
        "EXPOSE port outside 0-65535",
        "A port outside the valid range cannot be used and usually means a typo.",
        "Use a port between 0 and 65535."
    ),
    DL3012: dl!(
        "DL3012",
        "error",
        "Multiple HEALTHCHECK instructions in a stage",
        "Only the last HEALTHCHECK counts; earlier ones are dead code that misleads readers.",
        "Keep one HEALTHCHECK per stage."
    ),
    DL3013: dl!(
        "DL3013",
        "warning",
        "pip install without pinned versions",
        "Unpinned Python packages make builds non-reproducible and can pull in compromised releases.",
        "Pin versions (pip install <package>==<version>) or install from a requirements file with pinned versions."
    ),
    DL3014: dl!(
        "DL3014",
        "warning",
        "apt-get install without -y",
        "Without -y apt-get waits for confirmation, which fails or hangs non-interactive builds.",
        "Add -y (or --yes / -qq) to apt-get install."
    ),
    DL3015: dl!(
        "DL3015",
        "info",
        "apt-get install without --no-install-recommends",
        "Recommended packages add size and attack surface the image usually does not need.",
        "Add --no-install-recommends to apt-get install."
    ),
    DL3016: dl!(
        "DL3016",
        "warning",
        "npm install without pinned versions",
        "Unpinned npm packages make builds non-reproducible and expose the build to malicious new releases.",
        "Pin versions: npm install <package>@<version>."
    ),
    DL3018: dl!(
        "DL3018",
        "warning",
        "apk add without pinned versions",
        "Unpinned Alpine packages make builds non-reproducible.",
        "Pin versions: apk add <package>=<version>."
    ),
    DL3019: dl!(
        "DL3019",
        "info",
        "apk add without --no-cache",
        "The apk index cache stays in the layer.",
        "Use apk add --no-cache, or a BuildKit cache mount for /var/cache/apk."
    ),
    DL3020: dl!(
        "DL3020",
        "error",
        "ADD used for files and folders",
        "ADD has implicit behaviour (archive extraction, remote URLs); for plain files COPY is explicit and predictable.",
        "Use COPY for files and folders; keep ADD only for archives you want extracted."
    ),
    DL3021: dl!(
        "DL3021",
        "error",
        "COPY with several sources needs a destination ending with /",
        "With more than one source the destination must be a directory; without the trailing slash the build fails.",
        "End the destination with /."
    ),
    DL3022: dl!(
        "DL3022",
        "warning",
        "COPY --from does not name a previous stage",
        "COPY --from with a name no earlier stage has pulls an image from a registry instead of a build stage: often a typo, and an untagged image (nginx, gcr.io/distroless/static) is whatever :latest is at build time.",
        "Reference a stage defined earlier with FROM ... AS <name>, or an image with a tag or digest (name:tag, name@sha256:...)."
    ),
    DL3023: dl!(
        "DL3023",
        "error",
        "COPY --from references its own stage",
        "A stage cannot copy from itself; the build fails.",
        "Copy from a different, earlier stage."
    ),
    DL3024: dl!(
        "DL3024",
        "error",
        "Duplicate stage name",
        "Two stages with the same name make COPY --from and FROM references ambiguous.",
        "Give every stage a unique name."
    ),
    DL3025: dl!(
        "DL3025",
        "warning",
        "CMD/ENTRYPOINT in shell form",
        "Shell form wraps the process in /bin/sh -c, so it does not receive signals (no graceful shutdown) and runs an extra shell.",
        "Use the JSON (exec) form: CMD [\"executable\", \"arg\"]."
    ),
    DL3026: dl!(
        "DL3026",
        "error",
        "Base image from a registry that is not trusted",
        "Images from arbitrary registries bypass the organisation's vetting of base images.",
        "Use images from the registries listed in trustedRegistries."
    ),
    DL3027: dl!(
        "DL3027",
        "warning",
        "apt used instead of apt-get",
        "apt is meant for interactive use; its command line interface is not stable for scripts.",
        "Use apt-get or apt-cache."
    ),
    DL3028: dl!(
        "DL3028",
        "warning",
        "gem install without pinned versions",
        "Unpinned gems make builds non-reproducible.",
        "Pin versions: gem install <gem>:<version> or -v <version>."
    ),
    DL3029: dl!(
        "DL3029",
        "warning",
        "FROM uses --platform",
        "A hard-coded platform makes the Dockerfile build the wrong architecture on multi-platform builds.",
        "Drop --platform or use a build argument such as $BUILDPLATFORM."
    ),
    DL3030: dl!(
        "DL3030",
        "warning",
        "yum install without -y",
        "Without -y yum waits for confirmation.",
        "Add -y to yum install."
    ),
    DL3032: dl!(
        "DL3032",
        "warning",
        "yum clean all missing after yum install",
        "The yum cache stays in the layer.",
        "End the RUN with yum clean all."
    ),
    DL3033: dl!(
        "DL3033",
        "warning",
        "yum install without pinned versions",
        "Unpinned packages make builds non-reproducible.",
        "Pin versions: yum install <package>-<version>."
    ),
    DL3034: dl!(
        "DL3034",
        "warning",
        "zypper command without non-interactive switch",
        "Without -n/-y zypper waits for confirmation.",
        "Add -y (or --non-interactive) to zypper."
    ),
    DL3035: dl!(
        "DL3035",
        "warning",
        "zypper dist-upgrade used",
        "A distribution upgrade inside a build changes the base unpredictably.",
        "Use a newer base image instead of zypper dist-upgrade."
    ),
    DL3036: dl!(
        "DL3036",
        "warning",
        "zypper clean missing after zypper use",
        "The zypper cache stays in the layer.",
        "End the RUN with zypper clean."
    ),
    DL3037: dl!(
        "DL3037",
        "warning",
        "zypper install without pinned versions",
        "Unpinned packages make builds non-reproducible.",
        "Pin versions: zypper install <package>=<version>."
    ),
    DL3038: dl!(
        "DL3038",
        "warning",
        "dnf install without -y",
        "Without -y dnf waits for confirmation.",
        "Add -y to dnf install."
    ),
    DL3040: dl!(
        "DL3040",
        "warning",
        "dnf clean all missing after dnf install",
        "The dnf cache stays in the layer.",
        "End the RUN with dnf clean all, or use a cache mount."
    ),
    DL3041: dl!(
        "DL3041",
        "warning",
        "dnf install without pinned versions",
        "Unpinned packages make builds non-reproducible.",
        "Pin versions: dnf install <package>-<version>."
    ),
    DL3042: dl!(
        "DL3042",
        "warning",
        "pip install without --no-cache-dir",
        "pip's download cache stays in the layer.",
        "Add --no-cache-dir, set PIP_NO_CACHE_DIR=1, or use a cache mount."
    ),
    DL3043: dl!(
        "DL3043",
        "error",
        "ONBUILD triggers ONBUILD, FROM or MAINTAINER",
        "These instructions are not allowed as ONBUILD triggers; the downstream build fails.",
        "Remove the instruction from ONBUILD."
    ),
    DL3044: dl!(
        "DL3044",
        "error",
        "ENV refers to a variable defined in the same ENV",
        "Variables defined in an ENV are not visible until the next instruction, so the reference expands to the old (often empty) value.",
        "Split the ENV into two instructions."
    ),
    DL3045: dl!(
        "DL3045",
        "warning",
        "COPY to a relative destination without WORKDIR",
        "A relative destination depends on the base image's working directory.",
        "Set WORKDIR first or use an absolute destination."
    ),
    DL3046: dl!(
        "DL3046",
        "warning",
        "useradd with a high UID without -l",
        "useradd writes a sparse lastlog entry sized by the UID; without -l a high UID bloats the image.",
        "Add -l (--no-log-init) to useradd."
    ),
    DL3047: dl!(
        "DL3047",
        "info",
        "wget without --progress",
        "wget's default progress bar floods build logs.",
        "Use wget --progress=dot:giga, -q or -nv."
    ),
    DL3048: dl!(
        "DL3048",
        "style",
        "Invalid label key",
        "Label keys must be lower-case alphanumerics separated by single dots or dashes, and must not use reserved namespaces.",
        "Rename the label key (e.g. org.example.version)."
    ),
    DL3049: dl!(
        "DL3049",
        "info",
        "Label required by the label schema is missing",
        "The organisation's label schema requires this label for provenance and ownership.",
        "Add the label to every stage (or to the stage the others build on)."
    ),
    DL3050: dl!(
        "DL3050",
        "info",
        "Label not in the label schema (strict labels)",
        "With strict-labels, labels outside the schema are typos or unreviewed metadata.",
        "Remove the label or add it to label-schema."
    ),
    DL3051: dl!(
        "DL3051",
        "warning",
        "Label is empty",
        "An empty required label carries no information.",
        "Give the label a value."
    ),
    DL3052: dl!(
        "DL3052",
        "warning",
        "Label is not a valid URL",
        "The schema types this label as a URL; tools reading it will fail.",
        "Use an absolute URL such as https://example.org/repo."
    ),
    DL3053: dl!(
        "DL3053",
        "warning",
        "Label is not an RFC 3339 time",
        "The schema types this label as a timestamp.",
        "Use RFC 3339, e.g. 2024-01-31T12:00:00Z."
    ),
    DL3055: dl!(
        "DL3055",
        "warning",
        "Label is not a git hash",
        "The schema types this label as a git commit hash.",
        "Use the full 40-character (or 7-character short) commit hash."
    ),
    DL3056: dl!(
        "DL3056",
        "warning",
        "Label is not a semantic version",
        "The schema types this label as a semantic version.",
        "Use MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]."
    ),
    DL3058: dl!(
        "DL3058",
        "warning",
        "Label is not an email address",
        "The schema types this label as an email address.",
        "Use a valid address such as team@example.org."
    ),
    DL3057: dl!(
        "DL3057",
        "info",
        "No HEALTHCHECK in the final image",
        "Without a HEALTHCHECK the runtime cannot tell a hung service from a healthy one, so it is never restarted.",
        "Add HEALTHCHECK CMD [...] to the final stage (or HEALTHCHECK NONE to state it deliberately)."
    ),
    DL3059: dl!(
        "DL3059",
        "info",
        "Multiple consecutive RUN instructions",
        "Each RUN adds a layer; consecutive simple RUNs can be merged.",
        "Combine consecutive RUN instructions with &&."
    ),
    DL3060: dl!(
        "DL3060",
        "info",
        "yarn cache clean missing after yarn install",
        "The yarn cache stays in the layer.",
        "Run yarn cache clean in the same RUN, or use a cache mount."
    ),
    DL3061: dl!(
        "DL3061",
        "error",
        "Dockerfile does not begin with FROM or ARG",
        "Instructions before the first FROM are invalid (except ARG); the build fails.",
        "Start the Dockerfile with FROM (ARG may precede it)."
    ),
    DL3062: dl!(
        "DL3062",
        "warning",
        "go install/get/run without a pinned version",
        "Installing @latest or an unversioned module fetches whatever is newest.",
        "Pin the module version: go install <module>@<version>."
    ),
    DL3063: dl!(
        "DL3063",
        "warning",
        "Stage name is a reserved word",
        "Stage names like context or scratch collide with BuildKit's own names.",
        "Rename the stage."
    ),
    DL3064: dl!(
        "DL3064",
        "warning",
        "Sensitive data in ARG or ENV",
        "ARG and ENV values are stored in the image config and history, readable by anyone who can pull the image.",
        "Pass secrets with RUN --mount=type=secret instead of ARG/ENV."
    ),
    DL3065: dl!(
        "DL3065",
        "warning",
        "FROM --platform=$TARGETPLATFORM is redundant",
        "The target platform is already the default.",
        "Remove --platform=$TARGETPLATFORM."
    ),
    DL3066: dl!(
        "DL3066",
        "info",
        "USER is not numeric",
        "A user name may not resolve on the host or in Kubernetes runAsNonRoot checks, which need a numeric UID.",
        "Use a numeric UID (and GID): USER 10001:10001."
    ),
    DL3067: dl!(
        "DL3067",
        "warning",
        "COPY --from copies a whole filesystem",
        "Copying / from another stage to / duplicates the entire filesystem and defeats multi-stage builds.",
        "Copy only the files the final image needs."
    ),
    DL4000: dl!(
        "DL4000",
        "error",
        "MAINTAINER is deprecated",
        "MAINTAINER is deprecated in favour of labels.",
        "Use LABEL org.opencontainers.image.authors=\"...\"."
    ),
    DL4001: dl!(
        "DL4001",
        "warning",
        "Both wget and curl used",
        "Two download tools add size and attack surface for the same job.",
        "Use one of wget or curl throughout."
    ),
    DL4003: dl!(
        "DL4003",
        "warning",
        "Multiple CMD instructions in a stage",
        "Only the last CMD takes effect.",
        "Keep one CMD per stage."
    ),
    DL4004: dl!(
        "DL4004",
        "error",
        "Multiple ENTRYPOINT instructions in a stage",
        "Only the last ENTRYPOINT takes effect.",
        "Keep one ENTRYPOINT per stage."
    ),
    DL4005: dl!(
        "DL4005",
        "warning",
        "/bin/sh replaced with ln instead of SHELL",
        "Replacing /bin/sh changes every later RUN behind the reader's back.",
        "Use the SHELL instruction."
    ),
    DL4006: dl!(
        "DL4006",
        "warning",
        "RUN with a pipe but without pipefail",
        "Without pipefail a failing command before | is ignored (curl fails, sh runs nothing, the build passes).",
        "Set SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"] before the RUN."
    ),
    MOAT_DF_001: moat!(
        "MOAT-DF-001",
        ["CIS-DI-0001"],
        Severity::High,
        RuleScope::Dockerfile,
        "Final stage runs as root",
        "The final stage has no USER, or its last USER is root/0, so the container's process runs as root; a compromise then owns the whole container and gets closer to the host.",
        "Create an unprivileged user and end the final stage with USER <uid>:<gid> (numeric)."
    ),
    MOAT_DF_002: moat!(
        "MOAT-DF-002",
        [],
        Severity::High,
        RuleScope::Dockerfile,
        "World-writable permissions set",
        "chmod 777 / a+w / o+w (or COPY --chmod=777) lets any process or user in the container modify the files, including replacing binaries.",
        "Grant the minimum: owner write only (e.g. 755 for directories, 644 for files) and chown to the user that needs it."
    ),
    MOAT_DF_003: moat!(
        "MOAT-DF-003",
        ["CIS-DI-0010"],
        Severity::High,
        RuleScope::Dockerfile,
        "Secret in ENV or ARG",
        "ENV values and ARG values used in a stage are recorded in the image config or history; anyone who can pull the image can read them.",
        "Use BuildKit secrets (RUN --mount=type=secret,id=...) or inject secrets at runtime."
    ),
    MOAT_DF_004: moat!(
        "MOAT-DF-004",
        ["CIS-DI-0010"],
        Severity::High,
        RuleScope::Dockerfile,
        "Secret file copied into the image",
        "Keys, .env files and credential files copied into a layer stay in the image even if deleted later.",
        "Exclude them with .dockerignore and use RUN --mount=type=secret for build-time credentials."
    ),
    MOAT_DF_005: moat!(
        "MOAT-DF-005",
        [],
        Severity::High,
        RuleScope::Dockerfile,
        "Remote script piped into a shell",
        "curl|sh runs whatever the server returns at build time, unverified: a compromised or spoofed server owns the build.",
        "Download to a file, verify its checksum or signature, then run it."
    ),
    MOAT_DF_006: moat!(
        "MOAT-DF-006",
        ["CIS-DI-0009"],
        Severity::Medium,
        RuleScope::Dockerfile,
        "ADD fetches a remote URL",
        "ADD <url> downloads without verification (unless --checksum is given) and the content can change between builds.",
        "Use ADD --checksum=sha256:..., or download with curl and verify the checksum in the same RUN."
    ),
    MOAT_DF_007: moat!(
        "MOAT-DF-007",
        [],
        Severity::Medium,
        RuleScope::Dockerfile,
        "Network or debugging tool left in the final image",
        "curl, wget, netcat, nmap, gdb, strace and similar tools help an attacker download payloads, pivot or inspect processes once inside.",
        "Install such tools only in a build stage, or remove them in the same RUN when the image does not need them at runtime."
    ),
    MOAT_DF_008: moat!(
        "MOAT-DF-008",
        [],
        Severity::Medium,
        RuleScope::Dockerfile,
        "Build toolchain in a single-stage image",
        "Compilers and build tools (gcc, make, build-essential, go, cargo...) in the runtime image add size and let an attacker build tools in place.",
        "Use a multi-stage build: compile in a builder stage and copy only the artifacts into a minimal final stage."
    ),
    MOAT_DF_009: moat!(
        "MOAT-DF-009",
        [],
        Severity::Info,
        RuleScope::Dockerfile,
        "Base image not pinned by digest",
        "A tag can be moved to different content at any time; only a digest identifies the exact base image.",
        "Pin the base as name:tag@sha256:<digest> and update it deliberately (e.g. with Renovate/Dependabot)."
    ),
    MOAT_DF_010: moat!(
        "MOAT-DF-010",
        [],
        Severity::Medium,
        RuleScope::Dockerfile,
        "SSH port 22 exposed",
        "Running sshd in a container adds a remote login surface and key management; containers are entered with exec, not SSH.",
        "Remove EXPOSE 22 and the SSH server; use the runtime's exec for debugging."
    ),
    MOAT_DF_011: moat!(
        "MOAT-DF-011",
        [],
        Severity::High,
        RuleScope::Dockerfile,
        "RUN with insecure security mode",
        "RUN --security=insecure runs the step with full privileges, like a privileged container.",
        "Remove --security=insecure."
    ),
    MOAT_IMG_001: moat!(
        "MOAT-IMG-001",
        ["CIS-DI-0001"],
        Severity::High,
        RuleScope::Image,
        "Image runs as root",
        "The image config has no User or User is root/0, so containers run as root unless the runtime overrides it.",
        "Rebuild with USER <uid> in the final stage."
    ),
    MOAT_IMG_002: moat!(
        "MOAT-IMG-002",
        ["CIS-DI-0006"],
        Severity::Low,
        RuleScope::Image,
        "Image has no HEALTHCHECK",
        "The runtime cannot detect a hung service.",
        "Add a HEALTHCHECK to the final stage."
    ),
    MOAT_IMG_003: moat!(
        "MOAT-IMG-003",
        ["CIS-DI-0010"],
        Severity::High,
        RuleScope::Image,
        "Secret in image environment",
        "Env values in the image config are readable by anyone who can pull the image.",
        "Inject secrets at runtime; never bake them into Env."
    ),
    MOAT_IMG_004: moat!(
        "MOAT-IMG-004",
        ["CIS-DI-0010"],
        Severity::High,
        RuleScope::Image,
        "Secret in image history",
        "Build arguments and commands recorded in history (created_by) are readable by anyone who can pull the image.",
        "Use BuildKit secret mounts; rebuild without passing secrets as build arguments."
    ),
    MOAT_IMG_005: moat!(
        "MOAT-IMG-005",
        ["CIS-DI-0008"],
        Severity::Medium,
        RuleScope::Image,
        "setuid/setgid file in image",
        "setuid/setgid binaries are the classic privilege-escalation path inside a container.",
        "Remove the setuid/setgid bits (chmod u-s,g-s) of binaries the image does not need."
    ),
    MOAT_IMG_006: moat!(
        "MOAT-IMG-006",
        [],
        Severity::Medium,
        RuleScope::Image,
        "World-writable file outside /tmp",
        "World-writable files can be modified by any process in the container.",
        "Remove write permission for others (chmod o-w)."
    ),
    MOAT_IMG_007: moat!(
        "MOAT-IMG-007",
        ["CIS-DI-0009"],
        Severity::Low,
        RuleScope::Image,
        "ADD used in image history",
        "ADD has implicit remote download and extraction behaviour; COPY is explicit.",
        "Use COPY for local files."
    ),
    MOAT_IMG_008: moat!(
        "MOAT-IMG-008",
        [],
        Severity::Low,
        RuleScope::Image,
        "Package manager cache left in image",
        "Package indexes and caches (apt lists, apk cache, pip/npm caches) add size and stale metadata.",
        "Clean caches in the same RUN that installs, or use cache mounts."
    ),
    MOAT_IMG_009: moat!(
        "MOAT-IMG-009",
        ["CIS-DI-0010"],
        Severity::High,
        RuleScope::Image,
        "Secret file in image",
        "A private key, .env file, cloud or registry credentials file, or an .npmrc/.pypirc with a token in a layer is readable by anyone who can pull the image, and stays in that layer even when a later layer deletes it.",
        "Remove the file from the build context (.dockerignore), pass build-time credentials with RUN --mount=type=secret, inject runtime secrets from a secret store, and rotate the exposed secret."
    ),
    MOAT_IMG_010: moat!(
        "MOAT-IMG-010",
        [],
        Severity::Medium,
        RuleScope::Image,
        "SSH port 22 exposed",
        "ExposedPorts 22/tcp in the image config means the image is built to run an SSH server: a remote login surface and keys to manage; containers are entered with exec, not SSH.",
        "Remove EXPOSE 22 and the SSH server from the image; use the runtime's exec for debugging."
    ),
}

/// Looks a rule up by id or alias (case-insensitive).
pub fn rule(id: &str) -> Option<&'static RuleMeta> {
    RULES
        .iter()
        .copied()
        .find(|r| r.id.eq_ignore_ascii_case(id))
        .or_else(|| {
            RULES
                .iter()
                .copied()
                .find(|r| r.aliases.iter().any(|a| a.eq_ignore_ascii_case(id)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_of_rule_units() {
        // Ids are unique and in order; each static is the rule its name says.
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids.len(), sorted.len(), "duplicate ids");
        assert_eq!(ids::DL3022.id, "DL3022");
        assert_eq!(ids::MOAT_IMG_009.id, "MOAT-IMG-009");
        assert!(std::ptr::eq(rule("dl3022").unwrap(), &ids::DL3022));
        assert!(std::ptr::eq(
            rule("CIS-DI-0008").unwrap(),
            &ids::MOAT_IMG_005
        ));
        // Every DL rule links to hadolint's page; a moat rule with a CIS alias to dockle's checkpoints.
        for r in RULES {
            if r.id.starts_with("DL") {
                assert_eq!(
                    r.doc_url.unwrap(),
                    format!("https://github.com/hadolint/hadolint/wiki/{}", r.id)
                );
                assert!(r.hadolint_level.is_some(), "{}", r.id);
            } else {
                assert_eq!(r.doc_url.is_some(), !r.aliases.is_empty(), "{}", r.id);
            }
            assert!(!r.title.is_empty() && !r.why.is_empty() && !r.fix.is_empty());
        }
        let json = serde_json::to_value(RULES).unwrap();
        assert_eq!(
            json[0]["doc_url"],
            "https://github.com/hadolint/hadolint/wiki/DL3000"
        );
    }

    #[test]
    fn findings_carry_the_rule_metadata() {
        let f = crate::lint_dockerfile(
            "D",
            b"FROM a:1\nCOPY --from=nginx /a /b\n",
            &Default::default(),
        )
        .unwrap();
        let f = f.iter().find(|f| f.id == "DL3022").unwrap();
        assert_eq!(f.title, ids::DL3022.title);
        assert_eq!(f.severity, ids::DL3022.severity);
        assert_eq!(
            f.references,
            ["https://github.com/hadolint/hadolint/wiki/DL3022"]
        );
    }
}
