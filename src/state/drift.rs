//! How a runbook renders now against how it rendered when it was reviewed (a saved plan) or when
//! its run began (the journal): step by step, each step as its rendered action and details.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::format::mask::MASK;

/// A step as rendered: what a reviewer reads and what a later rendering is compared with.
/// Secrets are masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepText {
    /// Journal id (`<include id>.<step id>` inside an include).
    pub id: String,
    pub title: String,
    /// The rendered action, or `None` when it cannot be rendered before the run.
    pub action: Option<String>,
    /// How it runs and is checked, and the full texts it writes or shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl StepText {
    /// Its rendering, line by line, as compared: a secret shown as asked at run time compares
    /// equal to a masked one (a plan may be made without the secrets the run has).
    fn lines(&self) -> Vec<String> {
        let mut out = vec![self.action.clone().unwrap_or_else(|| "(rendered only at run time)".into())];
        out.extend(self.details.iter().cloned());
        out.iter().map(|l| unmask_later(l)).collect()
    }
}

/// `<secret NAME: asked at run time>` as `****` (and unquoted when it was a word of its own,
/// quoted for its spaces).
fn unmask_later(text: &str) -> String {
    let unquoted = unquote_asked_later(text);
    let text = unquoted.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<secret ") {
        let Some(len) = rest[start..].find(": asked at run time>") else { break };
        out.push_str(&rest[..start]);
        out.push_str(MASK);
        rest = &rest[start + len + ": asked at run time>".len()..];
    }
    out.push_str(rest);
    out
}

/// `"<secret NAME: asked at run time>"`, a quoted word of its own, without its quotes.
fn unquote_asked_later(text: &str) -> String {
    static QUOTED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#""(<secret [^>"]*: asked at run time>)""#).expect("a valid pattern")
    });
    QUOTED.replace_all(text, "$1").into_owned()
}

/// One difference between a rendering as reviewed and as it renders now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A file the runbook loads changed, is no longer loaded, or is loaded anew.
    File(String),
    /// An input's value differs (secrets by name only).
    Input(String),
    /// A step renders differently: the lines only the review had, and only now has.
    Changed {
        position: usize,
        id: String,
        reviewed: Vec<String>,
        now: Vec<String>,
    },
    Added {
        position: usize,
        id: String,
        now: Vec<String>,
    },
    Removed {
        position: usize,
        id: String,
        reviewed: Vec<String>,
    },
    Moved {
        id: String,
        from: usize,
        to: usize,
    },
}

impl Difference {
    pub fn is_step(&self) -> bool {
        !matches!(self, Difference::File(_) | Difference::Input(_))
    }
}

/// Step-by-step differences between two renderings.
pub fn steps(reviewed: &[StepText], now: &[StepText]) -> Vec<Difference> {
    let mut out = Vec::new();
    let kept = in_order(reviewed, now);
    for (i, r) in reviewed.iter().enumerate() {
        let Some(j) = now.iter().position(|n| n.id == r.id) else {
            out.push(Difference::Removed { position: i + 1, id: r.id.clone(), reviewed: r.lines() });
            continue;
        };
        let n = &now[j];
        if !kept.contains(&r.id.as_str()) {
            out.push(Difference::Moved { id: r.id.clone(), from: i + 1, to: j + 1 });
        }
        let (was, is) = (r.lines(), n.lines());
        let gone: Vec<String> = was.iter().filter(|l| !is.contains(l)).cloned().collect();
        let new: Vec<String> = is.iter().filter(|l| !was.contains(l)).cloned().collect();
        if !gone.is_empty() || !new.is_empty() || was != is {
            let (gone, new) = if gone.is_empty() && new.is_empty() { (was, is) } else { (gone, new) };
            out.push(Difference::Changed { position: j + 1, id: r.id.clone(), reviewed: gone, now: new });
        } else if unmask_later(&r.title) != unmask_later(&n.title) {
            out.push(Difference::Changed {
                position: j + 1,
                id: r.id.clone(),
                reviewed: vec![format!("title: {}", r.title)],
                now: vec![format!("title: {}", n.title)],
            });
        }
    }
    for (j, n) in now.iter().enumerate() {
        if !reviewed.iter().any(|r| r.id == n.id) {
            out.push(Difference::Added { position: j + 1, id: n.id.clone(), now: n.lines() });
        }
    }
    out
}

/// The ids both renderings have that keep their order (the longest common subsequence): the
/// others moved. Removing or adding a step moves nothing.
fn in_order<'a>(reviewed: &'a [StepText], now: &[StepText]) -> Vec<&'a str> {
    let a: Vec<&str> = reviewed.iter().map(|s| s.id.as_str()).filter(|id| now.iter().any(|n| n.id == *id)).collect();
    let b: Vec<&str> = now.iter().map(|s| s.id.as_str()).filter(|id| a.contains(id)).collect();
    // lengths[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lengths = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i][j] =
                if a[i] == b[j] { lengths[i + 1][j + 1] + 1 } else { lengths[i + 1][j].max(lengths[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if lengths[i + 1][j] >= lengths[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The differences as an indented list, `then` naming the earlier rendering ("reviewed",
/// "at the start").
pub fn render(differences: &[Difference], then: &str) -> String {
    let mut out = String::new();
    let width = then.len() + 1;
    let block = |out: &mut String, label: &str, lines: &[String]| {
        for (i, line) in lines.iter().enumerate() {
            let mut parts = line.split('\n');
            let label = if i == 0 { label } else { "" };
            let _ = writeln!(out, "      {label:<width$}  {}", parts.next().unwrap_or(""));
            for more in parts {
                let _ = writeln!(out, "      {:<width$}  | {more}", "");
            }
        }
    };
    for d in differences {
        match d {
            Difference::File(what) | Difference::Input(what) => {
                let _ = writeln!(out, "  - {what}");
            }
            Difference::Changed { position, id, reviewed, now } => {
                let _ = writeln!(out, "  - step {position} ({id}) renders differently:");
                block(&mut out, &format!("{then}:"), reviewed);
                block(&mut out, "now:", now);
            }
            Difference::Added { position, id, now } => {
                let _ = writeln!(out, "  - step {position} ({id}) is new:");
                block(&mut out, "now:", now);
            }
            Difference::Removed { position, id, reviewed } => {
                let _ = writeln!(out, "  - step {position} ({id}) is gone:");
                block(&mut out, &format!("{then}:"), reviewed);
            }
            Difference::Moved { id, from, to } => {
                let _ = writeln!(out, "  - step `{id}` moved from position {from} to {to}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, action: &str, details: &[&str]) -> StepText {
        StepText {
            id: id.into(),
            title: id.into(),
            action: Some(action.into()),
            details: details.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn the_same_rendering_has_no_differences() {
        let a = [step("a", "mkdir x", &["timeout: 5s"]), step("b", "log: hi", &[])];
        assert!(steps(&a, &a).is_empty());
    }

    #[test]
    fn a_secret_asked_at_run_time_compares_equal_to_a_masked_one() {
        let reviewed = [step("a", "exec tool -p <secret password: asked at run time> x", &[])];
        let now = [step("a", "exec tool -p **** x", &[])];
        assert!(steps(&reviewed, &now).is_empty());
        assert_eq!(unmask_later("<secret a: asked at run time>-<secret b: asked at run time>"), "****-****");
        assert_eq!(unmask_later("<secret x"), "<secret x");
        assert_eq!(
            unmask_later("-p \"<secret a: asked at run time>\" \"x <secret a: asked at run time>\""),
            "-p **** \"x ****\""
        );
    }

    #[test]
    fn only_the_lines_that_differ_are_shown() {
        let reviewed = [step("a", "exec tool", &["expect: contains \"OK\"", "timeout: 5s"])];
        let now = [step("a", "exec tool", &["expect: contains \"Done\"", "timeout: 5s"])];
        let d = steps(&reviewed, &now);
        assert_eq!(
            d,
            [Difference::Changed {
                position: 1,
                id: "a".into(),
                reviewed: vec!["expect: contains \"OK\"".into()],
                now: vec!["expect: contains \"Done\"".into()],
            }]
        );
        assert_eq!(
            render(&d, "reviewed"),
            "  - step 1 (a) renders differently:\n      reviewed:  expect: contains \"OK\"\n      now:       expect: contains \"Done\"\n"
        );
    }

    #[test]
    fn added_removed_and_moved_steps() {
        let reviewed = [step("a", "mkdir a", &[]), step("b", "mkdir b", &[]), step("c", "mkdir c", &[])];
        let now = [step("b", "mkdir b", &[]), step("a", "mkdir a", &[]), step("d", "write d\ncontent", &[])];
        let d = steps(&reviewed, &now);
        assert_eq!(
            render(&d, "reviewed"),
            [
                "  - step `a` moved from position 1 to 2\n",
                "  - step 3 (c) is gone:\n",
                "      reviewed:  mkdir c\n",
                "  - step 3 (d) is new:\n",
                "      now:       write d\n",
                "                 | content\n",
            ]
            .concat()
        );
    }

    #[test]
    fn a_title_change_alone_is_a_difference() {
        let reviewed = [step("a", "mkdir a", &[])];
        let mut now = reviewed.clone();
        now[0].title = "Make a".into();
        assert!(matches!(&steps(&reviewed, &now)[..], [Difference::Changed { .. }]));
    }
}
