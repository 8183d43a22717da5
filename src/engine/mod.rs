//! The engine: a checked runbook walked step by step (`walk`) over a scope (`scope`), each step
//! rendered (`render`), then its effect predicted over the plan's overlay (`plan`) or carried out
//! over the disk and journaled (`runner`). Each action's effect is written once (`actions`), over
//! a filesystem view (`fs`), so a plan and a run decide alike.

pub mod actions;
pub mod events;
pub mod fs;
pub mod plan;
pub mod render;
pub mod rollback;
pub mod runner;
pub mod scope;
pub mod undo;
pub mod walk;
