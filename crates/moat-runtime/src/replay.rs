//! Recorded events: JSON lines in the [`Event`] shape, one event per line (blank lines and lines
//! starting with `#` are ignored). Read with a bound on line length so a hostile file cannot exhaust
//! memory.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::event::Event;

/// Longest accepted line (1 MiB).
pub const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: not a moat event: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: line longer than {MAX_LINE} bytes")]
    TooLong { file: String, line: usize },
}

/// Calls `each` for every event of a recording, stopping at the first error.
pub fn for_each_event(path: &Path, each: impl FnMut(Event)) -> Result<usize, ReplayError> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| ReplayError::Read {
        file: file.clone(),
        source,
    })?;
    for_each_event_in(&file, f, each)
}

/// Like [`for_each_event`] on any reader (standard input); `file` names it in messages.
pub fn for_each_event_in(
    file: &str,
    r: impl Read,
    mut each: impl FnMut(Event),
) -> Result<usize, ReplayError> {
    let file = file.to_string();
    let mut r = BufReader::with_capacity(1 << 16, r);
    let mut buf = Vec::new();
    let mut line = 0;
    let mut n = 0;
    loop {
        buf.clear();
        line += 1;
        let got = (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| ReplayError::Read {
                file: file.clone(),
                source,
            })?;
        if got == 0 {
            break;
        }
        if buf.len() > MAX_LINE {
            return Err(ReplayError::TooLong { file, line });
        }
        let t = buf.trim_ascii();
        if t.is_empty() || t.starts_with(b"#") {
            continue;
        }
        let ev: Event = serde_json::from_slice(t).map_err(|e| ReplayError::Parse {
            file: file.clone(),
            line,
            message: e.to_string(),
        })?;
        each(ev);
        n += 1;
    }
    Ok(n)
}

/// Reads a whole recording.
pub fn read_events(path: &Path) -> Result<Vec<Event>, ReplayError> {
    let mut v = Vec::new();
    for_each_event(path, |e| v.push(e))?;
    Ok(v)
}

/// Reads a whole recording from any reader (standard input); `file` names it in messages.
pub fn read_events_in(file: &str, r: impl Read) -> Result<Vec<Event>, ReplayError> {
    let mut v = Vec::new();
    for_each_event_in(file, r, |e| v.push(e))?;
    Ok(v)
}
