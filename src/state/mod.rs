//! What outlives a process: the journal of each run, the run lock, and the outcomes they record.

pub mod approvals;
pub mod changes;
pub mod drift;
pub mod evidence;
pub mod journal;
pub mod lock;
pub mod outcome;
pub mod saved_plan;
pub mod undo;
