//! Documents for people: a title, facts, an alert, and tables whose rows carry a tone (the
//! colour of a verdict or an outcome), written as Markdown for tickets (GitHub, GitLab, Jira) or
//! as one self-contained HTML page (inline style, no external files, works offline).

use std::fmt::Write as _;

/// A row's tone: the colour of its verdict or outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// Would change / done.
    Change,
    /// Unchanged.
    Same,
    /// Skipped, not run.
    Quiet,
    /// Decided at run time, unfinished.
    Later,
    /// Would fail / failed.
    Bad,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Plain => "plain",
            Tone::Change => "change",
            Tone::Same => "same",
            Tone::Quiet => "quiet",
            Tone::Later => "later",
            Tone::Bad => "bad",
        }
    }
}

/// A table cell: text (where `quoted` spans are code), or code (paths, commands), with an
/// optional line of text and lines of code below.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    pub code: bool,
    /// A line of text below (a step's title under its id).
    pub sub: Option<String>,
    /// Code shown below the text, each its own line (a detail may span several).
    pub notes: Vec<String>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), ..Cell::default() }
    }

    pub fn code(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), code: true, ..Cell::default() }
    }

    pub fn with_notes(mut self, notes: Vec<String>) -> Cell {
        self.notes = notes;
        self
    }

    pub fn with_sub(mut self, sub: Option<String>) -> Cell {
        self.sub = sub;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub tone: Tone,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub heading: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub title: String,
    /// One line under the title (the summary).
    pub lead: String,
    /// Label and value, in order.
    pub facts: Vec<(String, Cell)>,
    /// What the reader must not miss (a predicted failure, where a run stopped).
    pub alert: Option<(Tone, String)>,
    pub tables: Vec<Table>,
    /// Last lines (provenance).
    pub footer: Vec<(String, Cell)>,
}

// ---- Markdown ----

/// Text in a Markdown table cell: nothing it holds is taken as markup or HTML.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split('\n').enumerate() {
        if line.0 > 0 {
            out.push_str("<br>");
        }
        for c in line.1.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '|' => out.push_str("\\|"),
                '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '\r' => {}
                c => out.push(c),
            }
        }
    }
    out
}

/// Code in a Markdown table cell: each line its own code span (a span cannot hold a break).
fn md_code(s: &str) -> String {
    s.split('\n')
        .map(|line| {
            if line.trim().is_empty() {
                return "&nbsp;".to_string();
            }
            let line = line.replace('|', "\\|").replace('\r', "");
            // A fence longer than any run of backticks inside.
            let longest = line.split(|c| c != '`').map(str::len).max().unwrap_or(0);
            let fence = "`".repeat(longest + 1);
            let pad = if line.starts_with('`') || line.ends_with('`') { " " } else { "" };
            format!("{fence}{pad}{line}{pad}{fence}")
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Text whose `quoted` spans are code (when the backticks pair up).
fn spans(s: &str) -> Vec<(bool, &str)> {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return vec![(false, s)];
    }
    parts.into_iter().enumerate().filter(|(_, p)| !p.is_empty()).map(|(i, p)| (i % 2 == 1, p)).collect()
}

fn md_inline(s: &str) -> String {
    spans(s).into_iter().map(|(code, p)| if code { md_code(p) } else { md_text(p) }).collect()
}

fn md_cell(cell: &Cell) -> String {
    let mut out = if cell.code { md_code(&cell.text) } else { md_inline(&cell.text) };
    for line in cell.sub.iter().map(|s| md_inline(s)).chain(cell.notes.iter().map(|n| md_code(n))) {
        if !out.is_empty() {
            out.push_str("<br>");
        }
        out.push_str(&line);
    }
    out
}

pub fn markdown(page: &Page) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", md_text(&page.title));
    let _ = writeln!(out, "{}\n", md_text(&page.lead));
    for (label, value) in &page.facts {
        let _ = writeln!(out, "- **{}:** {}", md_text(label), md_cell(value));
    }
    if !page.facts.is_empty() {
        out.push('\n');
    }
    if let Some((_, alert)) = &page.alert {
        let _ = writeln!(out, "> **{}**\n", md_inline(alert));
    }
    for table in &page.tables {
        let _ = writeln!(out, "## {}\n", md_text(&table.heading));
        let _ = writeln!(out, "| {} |", table.columns.join(" | "));
        let _ = writeln!(out, "|{}", table.columns.iter().map(|_| "---|").collect::<String>());
        for row in &table.rows {
            let cells: Vec<String> = row.cells.iter().map(md_cell).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push('\n');
    }
    for (label, value) in &page.footer {
        let _ = writeln!(out, "- {}: {}", md_text(label), md_cell(value));
    }
    out
}

// ---- HTML ----

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_inline(s: &str) -> String {
    spans(s).into_iter().map(|(code, p)| if code { format!("<code>{}</code>", esc(p)) } else { esc(p) }).collect()
}

fn html_cell(cell: &Cell) -> String {
    let mut out = if cell.code { format!("<code>{}</code>", esc(&cell.text)) } else { html_inline(&cell.text) };
    if let Some(sub) = &cell.sub {
        let _ = write!(out, "<div class=\"sub\">{}</div>", html_inline(sub));
    }
    for note in &cell.notes {
        let _ = write!(out, "<pre class=\"note\">{}</pre>", esc(note));
    }
    out
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; }
.lead { font-size: 1.1em; color: #444; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dt { font-weight: 600; }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #d0d7de; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font: 13px/1.4 ui-monospace, 'Cascadia Mono', Consolas, monospace; white-space: pre-wrap; word-break: break-all; }
pre { margin: .3em 0 0; }
pre.note { color: #555; }
.sub { color: #555; font-size: .92em; }
tr.change td.tone { background: #fff5d6; }
tr.same td.tone { background: #e6f4ea; }
tr.quiet td.tone { background: #f0f0f0; color: #555; }
tr.later td.tone { background: #e3ecfa; }
tr.bad td.tone { background: #fde2e1; font-weight: 600; }
tr.bad { outline: 2px solid #d1242f; }
.alert { border-left: 4px solid #d1242f; background: #fde2e1; padding: .6em 1em; font-weight: 600; }
.alert.later { border-color: #0969da; background: #e3ecfa; }
footer { margin-top: 2em; color: #555; font-size: .9em; }
";

/// One page, style inline: it opens from an attachment, offline.
pub fn html(page: &Page) -> String {
    let mut out = String::new();
    // Well-formed as XML too, so that any parser reads it.
    let _ = writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />");
    let _ = writeln!(out, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />");
    let _ = writeln!(out, "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>", esc(&page.title));
    let _ = writeln!(out, "<h1>{}</h1>\n<p class=\"lead\">{}</p>", esc(&page.title), esc(&page.lead));
    if !page.facts.is_empty() {
        let _ = writeln!(out, "<dl>");
        for (label, value) in &page.facts {
            let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(label), html_cell(value));
        }
        let _ = writeln!(out, "</dl>");
    }
    if let Some((tone, alert)) = &page.alert {
        let _ = writeln!(out, "<p class=\"alert {}\">{}</p>", tone.class(), html_inline(alert));
    }
    for table in &page.tables {
        let _ = writeln!(out, "<h2>{}</h2>\n<table>\n<thead><tr>", esc(&table.heading));
        for c in &table.columns {
            let _ = write!(out, "<th>{}</th>", esc(c));
        }
        let _ = writeln!(out, "</tr></thead>\n<tbody>");
        // The column that carries the verdict or outcome is coloured.
        let toned = table.columns.iter().position(|c| matches!(*c, "Verdict" | "Outcome"));
        for row in &table.rows {
            let _ = write!(out, "<tr class=\"{}\">", row.tone.class());
            for (i, cell) in row.cells.iter().enumerate() {
                let class = if Some(i) == toned { " class=\"tone\"" } else { "" };
                let _ = write!(out, "<td{class}>{}</td>", html_cell(cell));
            }
            let _ = writeln!(out, "</tr>");
        }
        let _ = writeln!(out, "</tbody>\n</table>");
    }
    if !page.footer.is_empty() {
        let _ = writeln!(out, "<footer>");
        for (label, value) in &page.footer {
            let _ = writeln!(out, "<div>{}: {}</div>", esc(label), html_cell(value));
        }
        let _ = writeln!(out, "</footer>");
    }
    let _ = writeln!(out, "</body>\n</html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_hold_no_markup() {
        assert_eq!(
            md_text("a|b <secret x: asked at run time> *c*"),
            "a\\|b &lt;secret x: asked at run time&gt; \\*c\\*"
        );
        assert_eq!(md_text("one\ntwo"), "one<br>two");
        assert_eq!(md_code("cp a|b"), "`cp a\\|b`");
        assert_eq!(md_code("say `hi`"), "`` say `hi` ``");
        assert_eq!(md_code("one\n\ntwo"), "`one`<br>&nbsp;<br>`two`");
        assert_eq!(md_inline("needs `steps.a` | b"), "needs `steps.a` \\| b");
        assert_eq!(md_inline("odd ` tick"), "odd \\` tick");
    }

    #[test]
    fn html_escapes_everything() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
