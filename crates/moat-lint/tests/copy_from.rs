//! DL3022 on `COPY --from=<image reference>` (issue 14: moat did not fire where hadolint does). The
//! expectations below were read from the hadolint 2.15.1 binary (`../shared/scripts/peers.sh`), which
//! `hadolint_differential.rs` also runs over the same snippets (tests/probes.txt): `--from` is fine when
//! it names an earlier stage alias exactly as written, an earlier stage index, or contains `:` (an image
//! with a tag or digest, or a registry with a port); an untagged image reference fires.

use moat_lint::Config;

fn dl3022_lines(text: &str) -> Vec<(u32, String)> {
    moat_lint::lint_dockerfile("Dockerfile", text.as_bytes(), &Config::default())
        .expect("parses")
        .into_iter()
        .filter(|f| f.id == "DL3022")
        .map(|f| (f.location.line.unwrap_or(0), f.message))
        .collect()
}

#[test]
fn untagged_image_references_fire() {
    let text = "FROM alpine:3.19\n\
        COPY --from=nginx /etc/nginx/nginx.conf /etc/\n\
        COPY --from=docker.io/library/nginx /a /b\n\
        COPY --from=gcr.io/distroless/static /c /d\n\
        COPY --from=nginx:1.25 /e /f\n\
        COPY --from=nginx@sha256:0123456789012345678901234567890123456789012345678901234567890123 /g /h\n\
        COPY --from=localhost:5000/img /i /j\n\
        COPY --link --from=busybox /k /l\n";
    let got = dl3022_lines(text);
    let lines: Vec<u32> = got.iter().map(|g| g.0).collect();
    assert_eq!(lines, [2, 3, 4, 8], "{got:#?}");
    assert_eq!(
        got[2].1,
        "COPY --from=gcr.io/distroless/static names no earlier stage, so it is pulled as the image gcr.io/distroless/static:latest; pin it with a tag or digest, or define it as a stage (FROM ... AS)"
    );
}

#[test]
fn stages_indices_variables_and_quotes() {
    let text = "ARG X=foo\n\
        FROM alpine:3.19 AS build\n\
        FROM alpine:3.19\n\
        COPY --from=build /a /a\n\
        COPY --from=0 /b /b\n\
        COPY --from=1 /c /c\n\
        COPY --from=2 /d /d\n\
        COPY --from=$X /e /e\n\
        COPY --from=Build /f /f\n\
        COPY --from=\"build\" /g /g\n";
    let lines: Vec<u32> = dl3022_lines(text).into_iter().map(|g| g.0).collect();
    // An index beyond the current stage, a variable, another case, a quoted alias: as hadolint.
    assert_eq!(lines, [7, 8, 9, 10]);
    // An alias defined after the COPY is not an earlier stage.
    let later = "FROM scratch\nCOPY --from=build foo .\nFROM node:20 AS build\nRUN baz\n";
    assert_eq!(dl3022_lines(later).len(), 1);
}
