use std::path::Path;

/// Everything that can be wrong with a target. Each variant names the file, layer, blob or answer.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("target form not supported yet: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Target(String),
    #[error("{what}: limit exceeded: {why}")]
    Limit { what: String, why: String },
}

impl ImageError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
