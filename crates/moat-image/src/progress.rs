//! Progress on stderr for long reads (pulling, streaming layers), only when stderr is a terminal.

use std::io::{IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    layers: usize,
}

impl Progress {
    pub(crate) fn new(wanted: bool, layers: usize) -> Progress {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Progress { bar, layers }
    }

    /// Counts the bytes of layer `index` as they are read.
    pub(crate) fn wrap(&self, r: Box<dyn Read>, index: usize, size: Option<u64>) -> Box<dyn Read> {
        match &self.bar {
            Some(bar) => {
                bar.reset();
                bar.set_length(size.unwrap_or(0));
                bar.set_message(format!("layer {}/{}", index + 1, self.layers));
                Box::new(bar.wrap_read(r))
            }
            None => r,
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Progress of a `dir:` walk, which has no layer sizes to count against: entries seen, the bytes of
/// the regular files among them, the bytes read (the files whose content a check wanted), and the
/// path being looked at. A spinner with these counts, only when stderr is a terminal.
pub(crate) struct WalkProgress {
    bar: Option<ProgressBar>,
    counts: WalkCounts,
}

/// What a walk has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WalkCounts {
    pub(crate) entries: u64,
    pub(crate) file_bytes: u64,
    pub(crate) read_bytes: u64,
}

/// The line shown beside the spinner: `12,345 files, 1.20 GiB (3.40 MiB read) usr/lib/x`; the path
/// is cut from the left to `width` characters, at a character boundary.
pub(crate) fn walk_line(c: WalkCounts, path: &str, width: usize) -> String {
    let mut line = format!(
        "{} files, {} ({} read)",
        indicatif::HumanCount(c.entries),
        indicatif::HumanBytes(c.file_bytes),
        indicatif::HumanBytes(c.read_bytes)
    );
    if !path.is_empty() && width > 0 {
        let n = path.chars().count();
        let shown: String = if n > width {
            let tail: String = path.chars().skip(n - width.saturating_sub(1)).collect();
            format!("…{tail}")
        } else {
            path.to_string()
        };
        line.push(' ');
        line.push_str(&shown);
    }
    line
}

/// Entries between redraws of the line (formatting one per file would cost more than the walk).
const WALK_REDRAW_EVERY: u64 = 64;

impl WalkProgress {
    pub(crate) fn new(wanted: bool, target: &str) -> WalkProgress {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner} reading {prefix}: {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(target.to_string());
            bar.set_message(walk_line(WalkCounts::default(), "", 0));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        WalkProgress {
            bar,
            counts: WalkCounts::default(),
        }
    }

    /// One entry seen (`size`: a regular file's length, else 0).
    pub(crate) fn entry(&mut self, path: &str, size: u64) {
        self.counts.entries += 1;
        self.counts.file_bytes = self.counts.file_bytes.saturating_add(size);
        if let Some(bar) = &self.bar
            && self.counts.entries % WALK_REDRAW_EVERY == 1
        {
            bar.set_message(walk_line(self.counts, path, 48));
        }
    }

    /// `n` bytes of a file's content read.
    pub(crate) fn read(&mut self, n: u64) {
        self.counts.read_bytes = self.counts.read_bytes.saturating_add(n);
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_line_counts_files_and_bytes_and_cuts_the_path_from_the_left() {
        let c = WalkCounts {
            entries: 12_345,
            file_bytes: 3 << 30,
            read_bytes: 1536,
        };
        assert_eq!(
            walk_line(c, "usr/lib/x", 48),
            "12,345 files, 3.00 GiB (1.50 KiB read) usr/lib/x"
        );
        assert_eq!(
            walk_line(c, "usr/share/zoneinfo/Ämerica", 8),
            "12,345 files, 3.00 GiB (1.50 KiB read) …Ämerica"
        );
        assert_eq!(
            walk_line(WalkCounts::default(), "", 48),
            "0 files, 0 B (0 B read)"
        );
    }

    #[test]
    fn no_bar_off_a_terminal_but_the_counts_still_add_up() {
        let mut p = WalkProgress::new(false, "dir:/x");
        assert!(p.bar.is_none());
        p.entry("a", 10);
        p.entry("b", 0);
        p.read(10);
        assert_eq!(
            p.counts,
            WalkCounts {
                entries: 2,
                file_bytes: 10,
                read_bytes: 10
            }
        );
        p.finish();
    }
}
