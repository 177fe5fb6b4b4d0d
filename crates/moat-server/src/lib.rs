//! moat server: the security center. One store (SQLite by default, PostgreSQL for many replicas) for
//! scans, SBOMs, verdicts, alerts and jobs; pipelines, alert rules and the dashboard compose it.
pub mod alerts;
pub mod pipeline;
pub mod registry;
pub mod store;
