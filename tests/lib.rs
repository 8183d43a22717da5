//! The integration tests: one binary, one file per feature.

mod support;

mod actions;
mod agreement;
mod apex;
mod architecture;
mod automation;
mod backout;
mod board;
mod change;
mod editor;
mod errors;
mod faults;
mod hostile;
mod inputs;
mod journal;
mod plan;
mod resume;
mod schema;
mod secrets;
mod show;
mod signals;
mod testing;
mod trust;
mod validate;
mod windows;
