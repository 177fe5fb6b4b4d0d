//! The pages, rendered with maud from the view models. maud escapes every interpolated value, and
//! nothing here uses `PreEscaped` on data: a package name or alert field containing `<script>` is text.
//! No inline script or style (the Content-Security-Policy forbids both): charts are server-side SVG.

use maud::{DOCTYPE, Markup, html};

use super::views::*;

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Images,
    Runtime,
    Admission,
    None,
}

/// Per-request page context: the CSRF token for the sign-out form.
pub struct Ctx<'a> {
    pub csrf: &'a str,
}

fn when(ms: i64) -> String {
    if ms <= 0 {
        return "—".into();
    }
    // UTC, minute precision, without a date library: days since the epoch to a civil date.
    let secs = ms / 1000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn short(d: &str) -> String {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    h.chars().take(12).collect()
}

/// A path segment, percent-encoded (digests hold `:`, advisory ids are plain, but data is data).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn image_href(digest: &str) -> String {
    format!("/images/{}", seg(digest))
}

fn advisory_href(id: &str) -> String {
    format!("/advisories/{}", seg(id))
}

fn sev(s: &str) -> Markup {
    html! { span class={"sev sev-" (s)} { (s) } }
}

fn verdict(v: &str) -> Markup {
    let v = if v.is_empty() { "pending" } else { v };
    html! { span class={"v v-" (v)} data-verdict=(v) { (v) } }
}

fn layout(title: &str, nav: Nav, ctx: &Ctx, body: Markup) -> Markup {
    let item = |n: Nav, href: &str, label: &str| {
        html! { a href=(href) class=[(nav == n).then_some("on")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · moat" }
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { img src="/static/favicon.svg" alt=""; "moat" }
                    nav {
                        (item(Nav::Overview, "/", "Overview"))
                        (item(Nav::Images, "/images", "Images"))
                        (item(Nav::Runtime, "/runtime", "Runtime"))
                        (item(Nav::Admission, "/admission", "Admission"))
                    }
                    form method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The sign-in page (no session yet): a read-scope server token, with a login CSRF token.
pub fn login(csrf: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · moat" }
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                main.login {
                    div.card {
                        h1 { "Sign in to moat" }
                        p.muted { "Paste a server token with the read scope (" code { "moat server token create --scope read" } ")." }
                        @if let Some(e) = error { p.err #login-error { (e) } }
                        form method="post" action="/login" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="next" value=(next);
                            label for="token" { "Token" }
                            input #token type="password" name="token" autocomplete="off" required;
                            button type="submit" { "Sign in" }
                        }
                    }
                }
            }
        }
    }
}

/// Horizontal bars (SVG, no script): (label, value, css class of the bar).
fn bars(id: &str, rows: &[(String, i64, &str)]) -> Markup {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let h = 22 * rows.len().max(1) as i64;
    html! {
        svg.chart id=(id) viewBox={"0 0 400 " (h)} role="img" xmlns="http://www.w3.org/2000/svg" {
            @for (i, (label, v, class)) in rows.iter().enumerate() {
                @let y = i as i64 * 22;
                text x="0" y=(y + 15) { (label) }
                rect class=(class) x="120" y=(y + 4) height="14" width=(1 + v * 230 / max) fill=(fill(class)) {}
                text x=(126 + v * 230 / max) y=(y + 15) { (v) }
            }
        }
    }
}

fn fill(class: &str) -> &'static str {
    match class {
        "CRITICAL" => "#8b1a1a",
        "HIGH" => "#d9480f",
        "MEDIUM" => "#e0a800",
        "LOW" => "#2f9e44",
        "allow" => "#2f9e44",
        "block" => "#c92a2a",
        _ => "#868e96",
    }
}

/// The open-findings trend (SVG polyline over 30 days).
fn trend(points: &[(i64, i64)]) -> Markup {
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let w = 600i64;
    let h = 140i64;
    let step = if points.len() > 1 {
        w / (points.len() as i64 - 1)
    } else {
        w
    };
    let pts: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{},{}", i as i64 * step, h - 10 - v * (h - 30) / max))
        .collect();
    html! {
        svg.chart #trend viewBox={"-40 0 " (w + 60) " " (h + 20)} role="img" xmlns="http://www.w3.org/2000/svg" {
            line x1="0" y1=(h - 10) x2=(w) y2=(h - 10) stroke="#d8dee6" {}
            polyline points=(pts.join(" ")) fill="none" stroke="#0f6ea8" stroke-width="2" {}
            text x="-38" y="24" { (max) }
            text x="-38" y=(h - 10) { "0" }
            @if let (Some(a), Some(b)) = (points.first(), points.last()) {
                text x="0" y=(h + 8) { (when(a.0).get(..10).unwrap_or_default()) }
                text x=(w - 70) y=(h + 8) { (when(b.0).get(..10).unwrap_or_default()) }
                text x=(w - 70) y="14" data-open=(b.1) { "open now: " (b.1) }
            }
        }
    }
}

fn counts_cells(c: &SeverityCounts) -> Markup {
    html! {
        td.num data-sev="CRITICAL" { (c.get(5)) }
        td.num data-sev="HIGH" { (c.get(4)) }
        td.num data-sev="MEDIUM" { (c.get(3)) }
        td.num.hide-sm data-sev="LOW" { (c.get(2)) }
    }
}

fn alerts_table(rows: &[AlertRow]) -> Markup {
    html! {
        div.scroll { table.alerts {
            thead { tr { th { "Time" } th { "Priority" } th { "Rule" } th.hide-sm { "Namespace/pod" } th { "Output" } } }
            tbody {
                @for a in rows {
                    tr {
                        td { a href={"/runtime/alerts/" (seg(&a.id))} { (when(a.ts_ms)) } }
                        td { (a.priority) }
                        td.rule { (a.rule) }
                        td.hide-sm { (a.namespace) @if !a.pod.is_empty() { "/" (a.pod) } }
                        td.output { (a.output) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" .muted { "No runtime alerts." } } }
            }
        } }
    }
}

fn denials_table(rows: &[AdmissionRow]) -> Markup {
    html! {
        div.scroll { table.denials {
            thead { tr { th { "Time" } th { "Decision" } th { "Object" } th { "Reasons" } } }
            tbody {
                @for d in rows {
                    tr {
                        td { (when(d.ts_ms)) }
                        td { @if d.allowed { span.v.v-allow { "allowed" } } @else { span.v.v-block { "denied" } } }
                        td { (d.namespace) "/" (d.kind) "/" (d.name)
                            @for i in &d.images { br; code { (i) } } }
                        td { @for r in &d.reasons { div { (r) } } }
                    }
                }
                @if rows.is_empty() { tr { td colspan="4" .muted { "No admission decisions." } } }
            }
        } }
    }
}

pub fn overview(o: &Overview, stamp: &str, ctx: &Ctx) -> Markup {
    let verdict_rows: Vec<(String, i64, &str)> = ["block", "allow", "pending"]
        .iter()
        .map(|v| (v.to_string(), o.verdicts.get(*v).copied().unwrap_or(0), *v))
        .collect();
    let sev_rows: Vec<(String, i64, &str)> = [5usize, 4, 3, 2, 0]
        .iter()
        .map(|&i| {
            (
                format!("{} fixable", SEVERITIES[i]),
                o.fixable.get(i),
                SEVERITIES[i],
            )
        })
        .collect();
    let nofix_rows: Vec<(String, i64, &str)> = [5usize, 4, 3, 2, 0]
        .iter()
        .map(|&i| {
            (
                format!("{} no fix", SEVERITIES[i]),
                o.unfixable.get(i),
                SEVERITIES[i],
            )
        })
        .collect();
    layout(
        "Overview",
        Nav::Overview,
        ctx,
        html! {
            p #live .banner hidden data-stamp=(stamp) {}
            p.muted #portfolio-asof { "Verdicts, findings, trend and most urgent images as of " (when(o.computed_ms)) " (recomputed when older than 10 s)." }
            div.grid {
                section.card #verdicts {
                    h2 { "Images by verdict" }
                    div.stats {
                        div.stat { b #images-total { (o.images) } span { "images" } }
                        div.stat { b #images-block { (o.verdicts.get("block").copied().unwrap_or(0)) } span { "blocked" } }
                        div.stat { b #images-allow { (o.verdicts.get("allow").copied().unwrap_or(0)) } span { "allowed" } }
                        div.stat { b #images-pending { (o.verdicts.get("pending").copied().unwrap_or(0)) } span { "pending" } }
                    }
                    (bars("verdict-chart", &verdict_rows))
                }
                section.card #findings {
                    h2 { "Open findings by severity and fixability" }
                    div.stats {
                        div.stat { b #findings-total { (o.fixable.total() + o.unfixable.total()) } span { "open" } }
                        div.stat { b #findings-fixable { (o.fixable.total()) } span { "with a fix" } }
                    }
                    (bars("fixable-chart", &sev_rows))
                    (bars("nofix-chart", &nofix_rows))
                }
                section.card.wide #trend-card {
                    h2 { "Open findings, last 30 days" }
                    (trend(&o.trend))
                }
                section.card.wide #urgent {
                    h2 { "Most urgent images" }
                    p.muted { "Severity-weighted open findings × (1 + workloads running the image)." }
                    div.scroll { table {
                        thead { tr { th { "Image" } th.num { "C" } th.num { "H" } th.num { "M" } th.num.hide-sm { "L" } th.num { "Workloads" } th.num.hide-sm { "Score" } } }
                        tbody {
                            @for u in &o.urgent {
                                tr {
                                    td { a.image-link href=(image_href(&u.digest)) { (u.repository) ":" (u.tag) } br; code.muted { (short(&u.digest)) } }
                                    (counts_cells(&u.counts))
                                    td.num { (u.workloads) }
                                    td.num.hide-sm { (u.score) }
                                }
                            }
                            @if o.urgent.is_empty() { tr { td colspan="7" .muted { "No image has open findings." } } }
                        }
                    } }
                }
                section.card.wide #latest-alerts {
                    h2 { "Latest runtime alerts " span.muted { "(" (o.alert_count) " stored)" } }
                    (alerts_table(&o.alerts))
                    p { a href="/runtime" { "All runtime alerts →" } }
                }
                section.card #latest-denials {
                    h2 { "Latest admission denials " span.muted { "(" (o.denial_count) ")" } }
                    (denials_table(&o.denials))
                }
                section.card #delivery {
                    h2 { "Alert delivery" }
                    table {
                        thead { tr { th { "Rule" } th { "State" } th.num { "Alerts" } } }
                        tbody {
                            @for (e, s, n) in &o.delivery { tr { td { (e) } td { (s) } td.num { (n) } } }
                            @if o.delivery.is_empty() { tr { td colspan="3" .muted { "No alerts from alert rules yet." } } }
                        }
                    }
                }
            }
        },
    )
}

fn sort_link(q: &ImageQuery, key: &str, label: &str) -> Markup {
    let desc = if q.sort == key {
        !q.desc
    } else {
        key != "repository" && key != "tag"
    };
    let href = format!(
        "/images?q={}&verdict={}&sort={}&dir={}",
        seg(&q.q),
        seg(&q.verdict),
        key,
        if desc { "desc" } else { "asc" }
    );
    html! { a.sort href=(href) data-sort=(key) { (label) @if q.sort == key { @if q.desc { " ↓" } @else { " ↑" } } } }
}

pub fn images(l: &ImageList, ctx: &Ctx) -> Markup {
    let q = &l.query;
    let pages = ((l.total + q.per_page - 1) / q.per_page).max(1);
    let page_href = |p: i64| {
        format!(
            "/images?q={}&verdict={}&sort={}&dir={}&page={p}",
            seg(&q.q),
            seg(&q.verdict),
            seg(&q.sort),
            if q.desc { "desc" } else { "asc" }
        )
    };
    layout(
        "Images",
        Nav::Images,
        ctx,
        html! {
            form.filters method="get" action="/images" {
                label { "Search" input type="search" name="q" value=(q.q) placeholder="repository, tag or digest"; }
                label { "Verdict" select name="verdict" {
                    option value="" selected[q.verdict.is_empty()] { "any" }
                    @for v in ["block", "allow", "pending"] { option value=(v) selected[q.verdict == v] { (v) } }
                } }
                input type="hidden" name="sort" value=(q.sort);
                input type="hidden" name="dir" value=(if q.desc { "desc" } else { "asc" });
                button type="submit" { "Filter" }
            }
            p.muted #image-count { (l.total) " images" }
            div.card.scroll { table #images {
                thead { tr {
                    th { (sort_link(q, "repository", "Repository")) }
                    th { (sort_link(q, "tag", "Tag")) }
                    th.hide-sm { (sort_link(q, "digest", "Digest")) }
                    th.hide-sm { "OS" }
                    th.num.hide-sm { (sort_link(q, "packages", "Packages")) }
                    th.num { "C" } th.num { "H" } th.num { "M" } th.num.hide-sm { "L" }
                    th { (sort_link(q, "verdict", "Verdict")) }
                    th.hide-sm { "Signed" }
                    th.hide-sm { (sort_link(q, "scanned", "Last scanned")) }
                    th.hide-sm { "DB snapshot" }
                } }
                tbody {
                    @for r in &l.rows {
                        tr data-digest=(r.digest) {
                            td { a.image-link href=(image_href(&r.digest)) { (r.repository) } }
                            td { (r.tag) }
                            td.hide-sm { code { (short(&r.digest)) } }
                            td.hide-sm { (r.os) }
                            td.num.hide-sm { (r.packages) }
                            (counts_cells(&r.counts))
                            td { (verdict(&r.verdict)) }
                            td.hide-sm { (if r.signature.is_empty() { "—" } else { &r.signature }) }
                            td.hide-sm { (when(r.last_scanned_ms)) }
                            td.hide-sm { code { (short(&r.snapshot)) } }
                        }
                    }
                    @if l.rows.is_empty() { tr { td colspan="13" .muted { "No image matches." } } }
                }
            } }
            nav.pager {
                @if q.page > 1 { a #prev href=(page_href(q.page - 1)) { "← Previous" } }
                span #page { "Page " (q.page) " of " (pages) }
                @if q.page < pages { a #next href=(page_href(q.page + 1)) { "Next →" } }
            }
        },
    )
}

fn workloads_table(rows: &[WorkloadRow]) -> Markup {
    html! {
        div.scroll { table.workloads {
            thead { tr { th { "Namespace" } th { "Pod" } th { "Container" } th.hide-sm { "Workload" } th { "Seen by" } th.hide-sm { "Last seen" } } }
            tbody {
                @for w in rows {
                    tr { td { (w.namespace) } td { (w.pod) } td { (w.container) } td.hide-sm { (w.workload) } td { (w.source) } td.hide-sm { (when(w.last_seen_ms)) } }
                }
                @if rows.is_empty() { tr { td colspan="6" .muted { "No workload reported running it." } } }
            }
        } }
    }
}

pub fn image(d: &ImageDetail, ctx: &Ctx) -> Markup {
    let r = &d.row;
    let title = format!("{}:{}", r.repository, r.tag);
    layout(
        &title,
        Nav::Images,
        ctx,
        html! {
            div.grid {
                section.card #summary {
                    h2 { "Image" }
                    dl.kv {
                        dt { "Digest" } dd { code #digest { (r.digest) } }
                        dt { "Verdict" } dd { (verdict(&r.verdict)) }
                        dt { "OS / arch" } dd { (r.os) " " (d.arch) }
                        dt { "User" } dd { (if d.user.is_empty() { "(root)" } else { &d.user }) }
                        dt { "Signature" } dd #signature { (if r.signature.is_empty() { "not checked" } else { &r.signature }) }
                        dt { "Packages" } dd #package-count { (r.packages) }
                        dt { "Last scanned" } dd { (when(r.last_scanned_ms)) }
                        dt { "DB snapshot" } dd { code { (r.snapshot) } }
                    }
                }
                section.card #severity {
                    h2 { "Open findings" }
                    div.stats {
                        @for i in [5usize, 4, 3, 2] {
                            div.stat { b data-sev=(SEVERITIES[i]) { (r.counts.get(i)) } span { (SEVERITIES[i]) } }
                        }
                    }
                }
                section.card #labels {
                    h2 { "Labels" }
                    dl.kv {
                        @for (k, v) in &d.labels { dt { (k) } dd.label-value { (v) } }
                    }
                    @if d.labels.is_empty() { p.muted { "No labels." } }
                }
                section.card.wide #by-package {
                    h2 { "Findings by package, with the remediation plan" }
                    div.scroll { table {
                        thead { tr { th { "Package" } th { "Installed" } th { "Upgrade to" } th { "Findings" } } }
                        tbody {
                            @for p in &d.by_package {
                                tr.package data-package=(p.package) {
                                    td.pkg-name { (p.package) }
                                    td { code { (p.version) } }
                                    td.remediation {
                                        @if let Some(v) = &p.remediation { code { (v) } } @else { span.muted { "no fixed version" } }
                                        @if !p.left_open.is_empty() && p.remediation.is_some() { div.muted { "leaves open: " (p.left_open.join(", ")) } }
                                    }
                                    td { @for f in &p.findings {
                                        div { (sev(&f.severity)) " " a.advisory-link href=(advisory_href(&f.id)) { (f.id) }
                                            @if !f.aliases.is_empty() { span.muted { " (" (f.aliases.join(", ")) ")" } }
                                            " " span.muted { (f.title) } }
                                    } }
                                }
                            }
                            @if d.by_package.is_empty() { tr { td colspan="4" .muted { "No open vulnerability." } } }
                        }
                    } }
                }
                section.card.wide #checks {
                    h2 { "Configuration checks" }
                    table {
                        thead { tr { th { "Check" } th { "Severity" } th { "What" } th.hide-sm { "Fix" } } }
                        tbody {
                            @for c in &d.checks { tr { td { code { (c.id) } } td { (sev(&c.severity)) } td { (c.title) @if !c.message.is_empty() { div.muted { (c.message) } } } td.hide-sm { (c.fix) } } }
                            @if d.checks.is_empty() { tr { td colspan="4" .muted { "No configuration finding." } } }
                        }
                    }
                }
                section.card #verdict-history {
                    h2 { "Verdict history" }
                    table {
                        thead { tr { th { "When" } th { "Decision" } th { "Why" } } }
                        tbody {
                            @for v in &d.verdicts { tr { td { (when(v.decided_ms)) } td { (verdict(&v.decision)) } td { @for r in &v.reasons { div { (r) } } div.muted { (v.policy) } } } }
                            @if d.verdicts.is_empty() { tr { td colspan="3" .muted { "No verdict recorded." } } }
                        }
                    }
                }
                section.card #where {
                    h2 { "Where it runs" }
                    (workloads_table(&d.workloads))
                }
                section.card.wide #image-alerts {
                    h2 { "Runtime alerts in containers of this image" }
                    (alerts_table(&d.alerts))
                }
                section.card.wide #sbom {
                    details {
                        summary { h2 { "SBOM: " (d.packages.len()) " packages" } }
                        div.scroll { table {
                            thead { tr { th { "Name" } th { "Version" } th { "Type" } th.hide-sm { "purl" } } }
                            tbody { @for p in &d.packages { tr { td.sbom-name { (p.name) } td { (p.version) } td { (p.kind) } td.hide-sm { code { (p.purl) } } } } }
                        } }
                    }
                }
            }
        },
    )
}

pub fn advisory(a: &Advisory, ctx: &Ctx) -> Markup {
    layout(
        &a.id,
        Nav::None,
        ctx,
        html! {
            div.grid {
                section.card.wide #advisory {
                    h2 #advisory-title { (a.title) }
                    @if !a.details.is_empty() { p { (a.details) } }
                    dl.kv {
                        dt { "Aliases" } dd #aliases { (a.aliases.join(", ")) }
                        dt { "Fixed in" } dd #fixed { (a.fixed_versions.join(", ")) }
                        dt { "Severity" } dd { @for (src, v) in &a.severities { div { span.muted { (src) ": " } (v) } } }
                        @if !a.references.is_empty() {
                            dt { "References" } dd { @for r in a.references.iter().take(20) { div { code { (r) } } } }
                        }
                    }
                }
                section.card.wide #affected {
                    h2 { "Affected images " span.muted #affected-count { "(" (a.affected.len()) ")" } }
                    div.scroll { table {
                        thead { tr { th { "Image" } th { "Package" } th { "Installed" } th { "Fixed" } th { "Severity" } th.hide-sm { "Why it matched (explain)" } } }
                        tbody {
                            @for r in &a.affected {
                                tr {
                                    td { a.image-link href=(image_href(&r.digest)) { (r.repository) ":" (r.tag) } }
                                    td { (r.package) } td { code { (r.version) } } td { (r.fixed_versions.join(", ")) }
                                    td { (sev(&r.severity)) }
                                    td.hide-sm { div { (r.matched) } @if !r.why.is_empty() { div.muted { (r.why) } } }
                                }
                            }
                        }
                    } }
                }
                section.card.wide #affected-workloads {
                    h2 { "Affected workloads" }
                    div.scroll { table {
                        thead { tr { th { "Image" } th { "Namespace" } th { "Pod" } th { "Container" } th { "Seen by" } } }
                        tbody {
                            @for (d, w) in &a.workloads { tr { td { a href=(image_href(d)) { code { (short(d)) } } } td { (w.namespace) } td { (w.pod) } td { (w.container) } td { (w.source) } } }
                            @if a.workloads.is_empty() { tr { td colspan="5" .muted { "No workload reported running an affected image." } } }
                        }
                    } }
                }
            }
        },
    )
}

fn select(name: &str, label: &str, current: &str, options: &[String]) -> Markup {
    html! {
        label { (label) select name=(name) {
            option value="" selected[current.is_empty()] { "any" }
            @for o in options { option value=(o) selected[current == o] { (o) } }
        } }
    }
}

fn counted(id: &str, title: &str, rows: &[(String, i64)], empty: &str) -> Markup {
    html! {
        section.card id=(id) {
            h2 { (title) }
            table { tbody {
                @for (k, n) in rows { tr { td { code { (k) } } td.num { (n) } } }
                @if rows.is_empty() { tr { td.muted { (empty) } } }
            } }
        }
    }
}

pub fn runtime(rt: &Runtime, ctx: &Ctx) -> Markup {
    let q = &rt.query;
    let prios: Vec<String> = super::data::PRIORITIES
        .iter()
        .map(|s| s.to_string())
        .collect();
    layout(
        "Runtime",
        Nav::Runtime,
        ctx,
        html! {
            form.filters method="get" action="/runtime" {
                (select("priority", "Priority (and worse)", &q.priority, &prios))
                (select("rule", "Rule", &q.rule, &rt.rules))
                (select("namespace", "Namespace", &q.namespace, &rt.namespaces))
                label { "Pod" input name="pod" value=(q.pod); }
                label { "Image (digest or ref)" input name="image" value=(q.image); }
                label { "MITRE technique" input name="mitre" value=(q.mitre) placeholder="T1059"; }
                button type="submit" { "Filter" }
            }
            div.grid {
                (counted("container-threats", "Container runtime threats", &rt.container_threats, "None."))
                (counted("process-anomalies", "Anomalous process execution", &rt.process_anomalies, "None."))
                (counted("connections", "Network connections by remote address", &rt.connections, "No network alert."))
                section.card.wide #timeline {
                    h2 { "Timeline " span.muted #alert-count { "(" (rt.total) " alerts)" } }
                    (alerts_table(&rt.rows))
                }
            }
        },
    )
}

pub fn alert(a: &AlertDetail, ctx: &Ctx) -> Markup {
    let r = &a.row;
    layout(
        &r.rule,
        Nav::Runtime,
        ctx,
        html! {
            div.grid {
                section.card.wide #alert {
                    h2 { (r.priority) " · " (when(r.ts_ms)) }
                    p #alert-output { (r.output) }
                    dl.kv {
                        dt { "Command line" } dd { code #cmdline { (a.cmdline) } }
                        dt { "MITRE ATT&CK" } dd #mitre { (a.mitre.join(", ")) }
                        dt { "Tags" } dd { (a.tags.join(", ")) }
                        dt { "Host" } dd { (a.hostname) " (" (a.source) ")" }
                        dt { "Namespace / pod" } dd { (r.namespace) " / " (r.pod) }
                        dt { "Image" } dd {
                            @if !r.digest.is_empty() { a #alert-image href=(image_href(&r.digest)) { (if r.image.is_empty() { &r.digest } else { &r.image }) } }
                            @else { (r.image) }
                        }
                    }
                }
                section.card #process-tree {
                    h2 { "Process tree" }
                    ul.tree.root { @for (name, cmd) in a.tree.iter().rev() { li { b { (name) } " " code { (cmd) } } } }
                }
                section.card #container {
                    h2 { "Container" }
                    dl.kv { @for (k, v) in &a.container { dt { (k) } dd { (v) } } }
                    @if a.container.is_empty() { p.muted { "Host process (no container)." } }
                }
                section.card.wide #playbook {
                    h2 { "Response playbook" }
                    @if a.response.is_empty() { p.muted { "The rule gives no response guidance." } } @else { pre { (a.response) } }
                }
                section.card.wide #fields {
                    h2 { "Fields" }
                    dl.kv { @for (k, v) in &a.fields { dt { code { (k) } } dd { (v) } } }
                }
            }
        },
    )
}

pub fn admission(a: &Admission, ctx: &Ctx) -> Markup {
    let rule_rows: Vec<(String, i64, &str)> = a
        .by_rule
        .iter()
        .take(10)
        .map(|(r, n)| (r.clone(), *n, "block"))
        .collect();
    layout(
        "Admission",
        Nav::Admission,
        ctx,
        html! {
            div.grid {
                section.card #denials-by-rule {
                    h2 { "Denials by rule" }
                    (bars("rule-chart", &rule_rows))
                    table { tbody { @for (r, n) in &a.by_rule { tr { td.rule { (r) } td.num { (n) } } } } }
                }
                section.card #namespaces {
                    h2 { "Namespaces" }
                    table {
                        thead { tr { th { "Namespace" } th.num { "Allowed" } th.num { "Denied" } } }
                        tbody { @for (ns, ok, no) in &a.by_namespace { tr { td { (ns) } td.num { (ok) } td.num { (no) } } } }
                    }
                }
                section.card.wide #decisions {
                    h2 { "Recent decisions" }
                    (denials_table(&a.rows))
                }
            }
        },
    )
}

/// A page for "not found" and "store unavailable", inside the layout.
pub fn message(title: &str, text: &str, ctx: &Ctx) -> Markup {
    layout(title, Nav::None, ctx, html! { div.card { p { (text) } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_escaped_everywhere() {
        let evil = "<script>window.__xss=1</script><img src=x onerror=alert(1)>";
        let d = ImageDetail {
            row: ImageRow {
                repository: evil.into(),
                digest: "sha256:ab".into(),
                ..Default::default()
            },
            labels: [("org.x".to_string(), evil.to_string())].into(),
            packages: vec![PackageRow {
                name: evil.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let html = image(&d, &Ctx { csrf: "t" }).into_string();
        assert!(!html.contains("<script>window"), "{html}");
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"));
    }

    #[test]
    fn dates_are_utc_civil() {
        assert_eq!(when(0), "—");
        assert_eq!(when(1_700_000_000_000), "2023-11-14 22:13");
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(seg("sha256:ab/../x"), "sha256:ab%2F..%2Fx");
    }
}
