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
