//! Errors of loading policies: always naming the file (document) and the field.

/// Why a policy set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{source_name}: not valid YAML/JSON: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {field}: {message}")]
    Invalid {
        source_name: String,
        field: String,
        message: String,
    },
}

impl PolicyError {
    pub(crate) fn invalid(
        source_name: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        PolicyError::Invalid {
            source_name: source_name.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}
