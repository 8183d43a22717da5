//! JUnit XML reports, so CI systems show each step of a run or a plan as a test case.
//! Every text passes through the masker; the file is written atomically.

use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::runner::{Finished, StepReport};
use crate::format::mask::Masker;
use crate::state::journal::{RunSummary, StepState};
use crate::state::outcome::Outcome;
use crate::state::saved_plan::{PlannedStep, Verdict};

/// One test case: a step.
#[derive(Clone)]
pub struct Case {
    pub name: String,
    pub title: String,
    pub time: Duration,
    pub result: CaseResult,
    pub output: Option<String>,
}

#[derive(Clone)]
pub enum CaseResult {
    Passed,
    Skipped(String),
    Failed(String),
}

impl From<&StepReport> for Case {
    fn from(r: &StepReport) -> Case {
        Case {
            name: r.id.clone(),
            title: r.title.clone(),
            time: r.duration,
            result: match r.outcome {
                Outcome::Failed => CaseResult::Failed(r.error.clone().unwrap_or_else(|| "failed".into())),
                Outcome::Skipped => CaseResult::Skipped(r.note.clone().unwrap_or_else(|| "`when` was false".into())),
                Outcome::Done | Outcome::Unchanged => CaseResult::Passed,
            },
            output: match (&r.note, r.outcome) {
                (Some(note), Outcome::Done | Outcome::Unchanged) => Some(note.clone()),
                _ => r.output.clone(),
            },
        }
    }
}

/// A run's test cases: every step of the runbook, in order; those the run did not reach are
/// skipped, saying where it stopped.
pub fn run_cases(finished: &Finished) -> Vec<Case> {
    let stop = finished.stopped_at();
    let mut cases: Vec<Case> = finished
        .all
        .iter()
        .map(|(id, title)| match finished.steps.iter().find(|s| s.id == *id) {
            Some(report) => Case::from(report),
            None => Case {
                name: id.clone(),
                title: title.clone(),
                time: Duration::ZERO,
                result: CaseResult::Skipped(match stop {
                    Some(at) => format!("not run: the run stopped at {at}"),
                    None => "not run".into(),
                }),
                output: None,
            },
        })
        .collect();
    // A step the run reached that its first rendering did not list (an include whose steps
    // could not be told before the run).
    for report in &finished.steps {
        if !finished.all.iter().any(|(id, _)| *id == report.id) {
            cases.push(Case::from(report));
        }
    }
    cases
}

/// A journaled run's test cases (for its evidence): every step it knew of, in order, with the
/// outcome the journal records; those it did not reach are skipped.
pub fn journal_cases(run: &RunSummary) -> Vec<Case> {
    let mut ids: Vec<(String, String)> = run.rendered.iter().map(|s| (s.id.clone(), s.title.clone())).collect();
    for id in run.step_states.keys() {
        if !ids.iter().any(|(i, _)| i == id) {
            ids.push((id.clone(), id.clone()));
        }
    }
    let stop = run.stopped_at().map(|(id, _)| id.to_owned());
    ids.into_iter()
        .map(|(id, title)| {
            let (time, result, output) = match run.step_states.get(&id) {
                Some(StepState::Finished { outcome, data, error, duration_ms, .. }) => {
                    let result = match outcome {
                        Outcome::Failed => CaseResult::Failed(error.clone().unwrap_or_else(|| "failed".into())),
                        Outcome::Skipped => CaseResult::Skipped("`when` was false".into()),
                        Outcome::Done | Outcome::Unchanged => CaseResult::Passed,
                    };
                    let text = data.text(crate::format::model::Stream::Any);
                    (Duration::from_millis(*duration_ms), result, (!text.is_empty()).then_some(text))
                }
                Some(StepState::MarkedDone) => {
                    (Duration::ZERO, CaseResult::Passed, Some("marked done by hand (--mark-done)".into()))
                }
                Some(StepState::Started { .. } | StepState::Interrupted) => {
                    (Duration::ZERO, CaseResult::Failed("interrupted: it did not finish".into()), None)
                }
                None => {
                    let why = match &stop {
                        Some(at) => format!("not run: the run stopped at {at}"),
                        None => "not run".into(),
                    };
                    (Duration::ZERO, CaseResult::Skipped(why), None)
                }
            };
            Case { name: id, title, time, result, output }
        })
        .collect()
}

impl From<&PlannedStep> for Case {
    fn from(p: &PlannedStep) -> Case {
        Case {
            name: p.id.clone(),
            title: p.title.clone(),
            time: Duration::ZERO,
            result: match &p.verdict {
                Verdict::WouldFail(why) => CaseResult::Failed(format!("would fail: {why}")),
                Verdict::Skipped => CaseResult::Skipped("would be skipped".into()),
                Verdict::DecidedAtRunTime(why) => CaseResult::Skipped(format!("decided at run time: {why}")),
                Verdict::WouldChange | Verdict::Unchanged => CaseResult::Passed,
            },
            output: p.action.clone(),
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows only these control characters.
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The report as XML text.
pub fn render(suite: &str, cases: &[Case], masker: &Masker) -> String {
    render_suites(&[(suite.to_owned(), cases.to_vec())], masker)
}

/// Several test suites in one report (`runbook test`: one per test file).
pub fn render_suites(suites: &[(String, Vec<Case>)], masker: &Masker) -> String {
    let m = |s: &str| escape(&masker.mask(s));
    let all = || suites.iter().flat_map(|(_, cases)| cases.iter());
    let count = |cases: &mut dyn Iterator<Item = &Case>, failed: bool| {
        cases
            .filter(|c| {
                if failed {
                    matches!(c.result, CaseResult::Failed(_))
                } else {
                    matches!(c.result, CaseResult::Skipped(_))
                }
            })
            .count()
    };
    let time = |cases: &mut dyn Iterator<Item = &Case>| -> f64 { cases.map(|c| c.time.as_secs_f64()).sum() };
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"runbook\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        all().count(),
        count(&mut all(), true),
        count(&mut all(), false),
        time(&mut all())
    );
    for (suite, cases) in suites {
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            m(suite),
            cases.len(),
            count(&mut cases.iter(), true),
            count(&mut cases.iter(), false),
            time(&mut cases.iter())
        );
        // What made the report, as `runbook --version` says it.
        let _ = writeln!(
            x,
            "    <properties>\n      <property name=\"runbook.version\" value=\"{}\"/>\n    </properties>",
            escape(crate::format::version::LONG)
        );
        for c in cases {
            let _ = write!(
                x,
                "    <testcase classname=\"{}\" name=\"{}: {}\" time=\"{:.3}\"",
                m(suite),
                m(&c.name),
                m(&c.title),
                c.time.as_secs_f64()
            );
            let body = match &c.result {
                CaseResult::Passed => String::new(),
                CaseResult::Skipped(why) => format!("      <skipped message=\"{}\"/>\n", m(why)),
                CaseResult::Failed(why) => {
                    let first = why.lines().next().unwrap_or("failed");
                    format!("      <failure message=\"{}\" type=\"step failed\">{}</failure>\n", m(first), m(why))
                }
            };
            let out =
                c.output.as_deref().map(|o| format!("      <system-out>{}</system-out>\n", m(o))).unwrap_or_default();
            if body.is_empty() && out.is_empty() {
                x.push_str("/>\n");
            } else {
                let _ = write!(x, ">\n{body}{out}    </testcase>\n");
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_masks() {
        let cases = vec![Case {
            name: "a".into(),
            title: "x < y & \"z\"".into(),
            time: Duration::from_millis(1500),
            result: CaseResult::Failed("pw hunter2 wrong\nmore".into()),
            output: Some("bell \u{7} hunter2".into()),
        }];
        let xml = render("suite", &cases, &Masker::new(["hunter2"]));
        assert!(xml.contains("name=\"a: x &lt; y &amp; &quot;z&quot;\" time=\"1.500\""), "{xml}");
        assert!(
            xml.contains("<failure message=\"pw **** wrong\" type=\"step failed\">pw **** wrong\nmore</failure>"),
            "{xml}"
        );
        assert!(xml.contains("<system-out>bell \u{FFFD} ****</system-out>"), "{xml}");
        assert!(!xml.contains("hunter2"));
    }
}
