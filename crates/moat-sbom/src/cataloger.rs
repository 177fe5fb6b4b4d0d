use moat_image::{FileEntry, FileMeta, FileView, Select};
use moat_model::{OsRelease, Package};

/// What a cataloger may know besides its own file: the distribution, and the rest of the selected
/// files (a `go.sum` next to a `go.mod`, an rpm database's siblings).
pub struct Context<'a> {
    pub os: Option<OsRelease>,
    pub view: &'a FileView,
    /// The run's cumulative budgets.
    pub budget: &'a crate::budget::RunBudget,
}

/// Finds packages of one kind. Analyzers find, they never judge.
pub trait Cataloger: Send + Sync {
    /// A short stable name (`dpkg`, `apk`, `npm-lock`), used in warnings.
    fn name(&self) -> &'static str;
    /// Whether this cataloger needs an entry: decided from the path and size alone, so each layer is
    /// streamed once and only matching files are read into memory.
    fn wants(&self, meta: &FileMeta) -> Select;
    /// Extracts packages from one selected file. The caller fills in `path` and `layer` where the
    /// cataloger leaves them empty.
    fn catalog(&self, file: &FileEntry, ctx: &Context<'_>) -> Result<Vec<Package>, CatalogError>;
}

/// A package file that could not be read, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("{0}")]
    Invalid(String),
    #[error("file is larger than the {limit} byte limit for this format")]
    TooLarge { limit: u64 },
    /// A run budget (issue 17) is spent: the catalogue stops (it is not a per-file warning).
    #[error("limit exceeded: {0}")]
    Budget(String),
}
