//! The width tables are drawn at: `COLUMNS` when set (as shells export it and as users override
//! it), else the terminal's width (`TIOCGWINSZ` on standard output, then standard error), else 160
//! columns (a file or a pipe: wide enough for a CI log). JSON and SARIF never depend on it.

/// The default width when nothing says otherwise.
pub const DEFAULT_WIDTH: u16 = 160;
/// Narrower than this, a table is unreadable whatever is done: it is drawn at this width.
pub const MIN_WIDTH: u16 = 40;

fn ioctl_width(fd: libc::c_int) -> Option<u16> {
    // SAFETY: `isatty` and `ioctl(TIOCGWINSZ)` only read the descriptor's state into the
    // zero-initialised `winsize` we own; no memory is shared with the kernel past the call.
    unsafe {
        if libc::isatty(fd) != 1 {
            return None;
        }
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            Some(ws.ws_col)
        } else {
            None
        }
    }
}

/// The width from `COLUMNS` (when it is a number), else the terminal, else [`DEFAULT_WIDTH`].
pub fn table_width() -> u16 {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<u16>().ok())
        .filter(|&w| w > 0);
    from_env
        .or_else(|| ioctl_width(libc::STDOUT_FILENO))
        .or_else(|| ioctl_width(libc::STDERR_FILENO))
        .unwrap_or(DEFAULT_WIDTH)
        .max(MIN_WIDTH)
}

/// Breaks words longer than `max` that are paths after a `/`, so a path wraps at its separators
/// rather than anywhere.
pub fn break_paths(cell: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, line) in cell.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut first = true;
        for word in line.split(' ') {
            if !first {
                out.push(' ');
            }
            first = false;
            if word.chars().count() <= max || !word.contains('/') {
                out.push_str(word);
                continue;
            }
            let mut run = 0;
            for part in word.split_inclusive('/') {
                let n = part.chars().count();
                if run > 0 && run + n > max {
                    out.push('\n');
                    run = 0;
                }
                out.push_str(part);
                run += n;
            }
        }
    }
    out
}

/// Gives every column at least its longest word, so cells wrap between words, when the table can
/// still fit `width` that way. When it cannot, the columns in `cut_first` (paths, long titles) lose
/// that guarantee first, one by one; a terminal too narrow even then gets words cut, but never a
/// table wider than the terminal.
pub fn fit_columns(
    t: &mut comfy_table::Table,
    header: &[&str],
    rows: &[Vec<String>],
    width: u16,
    cut_first: &[usize],
) {
    use comfy_table::{ColumnConstraint, Width};
    let longest = |s: &str| {
        s.split_whitespace()
            .map(|w| w.chars().count())
            .max()
            .unwrap_or(0)
    };
    let mut mins: Vec<usize> = header.iter().map(|h| longest(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(m) = mins.get_mut(i) {
                *m = (*m).max(longest(c));
            }
        }
    }
    // Two spaces of padding and one border per column, plus the closing border; a column left free
    // still needs a few characters.
    let need = |free: &[usize]| -> usize {
        mins.iter()
            .enumerate()
            .map(|(i, m)| if free.contains(&i) { 15 } else { m + 3 })
            .sum::<usize>()
            + 1
    };
    let mut free: Vec<usize> = Vec::new();
    let mut candidates = cut_first.iter();
    while need(&free) > width as usize {
        match candidates.next() {
            Some(&c) => free.push(c),
            None => return,
        }
    }
    let constraints: Vec<ColumnConstraint> = mins
        .iter()
        .enumerate()
        .map(|(i, &m)| {
            if free.contains(&i) {
                ColumnConstraint::LowerBoundary(Width::Fixed(14))
            } else {
                // The boundary counts the padding too.
                ColumnConstraint::LowerBoundary(Width::Fixed((m + 2).min(u16::MAX as usize) as u16))
            }
        })
        .collect();
    t.set_constraints(constraints);
}
