//! Alert rules (YAML, validated at start) and the targets alerts are delivered to: a generic JSON
//! webhook, a Slack-compatible webhook, CloudEvents 1.0 and Alertmanager v2.

pub mod delivery;
pub mod rules;
pub mod targets;
