//! Small helpers shared by the executor and the planner.

/// The refusal to replace a file whose content differs, and what to do about it.
pub fn different_content(path: &std::path::Path) -> String {
    format!("{} exists with different content; set `overwrite: true` to replace it", path.display())
}
