//! The engine: a checked runbook rendered step by step over a scope, then either predicted (the
//! plan, over an overlay of the filesystem) or carried out (the run, over the disk, journaled).

pub mod actions;
pub mod effects;
pub mod overlay;
pub mod plan;
pub mod render;
pub mod runner;
pub mod scope;
