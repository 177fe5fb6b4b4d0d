//! moat server.
pub mod alerts;
pub mod pipeline;
pub mod registry;
