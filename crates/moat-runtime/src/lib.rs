//! moat runtime protection: a detection engine for Falco's rule language ([`rules`]), the event model
//! it evaluates ([`event`]), and the sensors that produce events on a live host ([`sensor`]) and the
//! sinks alerts go to ([`alert`]).

pub mod event;
pub mod rules;

pub use event::Event;
pub use rules::{Alert, Engine, Loader, Priority};
pub mod alert;
pub mod k8s_webhook;
pub mod replay;
pub mod sensor;
pub mod spool;
