//! The push pipeline: scan jobs (pull through moat's engine, match against the server's database),
//! what a finished scan stores, and the gate policy that turns a scan into a verdict.

pub mod gate;
pub mod layers;
pub mod record;
pub mod scan;
pub mod settings;
