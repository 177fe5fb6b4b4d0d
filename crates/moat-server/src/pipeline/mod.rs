//! The push pipeline: the gate policy that turns a scan into a verdict.

pub mod gate;
