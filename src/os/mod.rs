//! The operating-system layer: everything that differs between Windows and Unix lives here,
//! `cfg(unix)` and `cfg(windows)` side by side, so the rest of the code never asks which system
//! it runs on.

pub mod agent;
pub mod args;
pub mod console;
pub mod fs;
pub mod hooks;
pub mod path;
pub mod process;
pub mod signals;
pub mod sys;
