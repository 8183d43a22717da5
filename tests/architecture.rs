//! The architecture stays as ARCHITECTURE.md draws it: every import between the modules of
//! `src/` goes down the layers (`cli` → `engine` → `state` → `compile` → `format` → `os`), no
//! two modules import each other (directly or around a circle), and no command imports another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LAYERS: &[&str] = &["os", "format", "compile", "state", "engine", "cli"];

/// Every module of `src/` (by path, `engine::actions::files`) and its source.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(&path, &[prefix, &[name]].concat(), out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !(prefix.is_empty() && (name == "lib" || name == "main"))
            {
                let module = if name == "mod" { prefix.to_vec() } else { [prefix, &[name]].concat() };
                out.insert(module.join("::"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&crate::support::crate_path("src"), &[], &mut out);
    out
}

/// The paths a `use` tree names: `a::{b, c::{d, e}}` gives `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else { return vec![tree.to_owned()] };
    let (head, inner) = (&tree[..open], &tree[open + 1..tree.rfind('}').unwrap()]);
    let (mut items, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            items.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    items.push(current);
    items.iter().filter(|i| !i.is_empty()).flat_map(|i| expand(&format!("{head}{i}"))).collect()
}

/// Which modules each module imports (by `use` or by a `crate::` path written in its code).
/// A path that names no module panics: the analysis must see every import to vouch for them.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let (graph, unresolved) = analyse(modules);
    assert!(unresolved.is_empty(), "`crate::` paths that name no module of src/: {unresolved:?}");
    graph
}

/// The import graph, and the `crate::` paths (with the module they are in) that name no module.
fn analyse(modules: &BTreeMap<String, String>) -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let comment = regex::Regex::new(r"//[^\n]*").unwrap();
    let uses = regex::Regex::new(r"(?s)\buse\s+(crate::[^;]+);").unwrap();
    let inline = regex::Regex::new(r"crate::[a-z_]+(?:::[a-zA-Z_]+)*").unwrap();
    let resolve = |path: &str| -> Option<String> {
        let mut parts: Vec<&str> = path.trim_start_matches("crate::").split("::").collect();
        while !parts.is_empty() {
            let candidate = parts.join("::");
            if modules.contains_key(&candidate) {
                return Some(candidate);
            }
            parts.pop();
        }
        None
    };
    let mut graph = BTreeMap::new();
    let mut unresolved = Vec::new();
    for (module, source) in modules {
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let text = comment.replace_all(source, "");
        let text = text.replace("super::", &format!("crate::{parent}::"));
        let mut targets = BTreeSet::new();
        let mut found = |path: &str| {
            let path: String = path.split_whitespace().collect();
            let path = path.split(" as ").next().unwrap_or(&path).replace("::self", "");
            match resolve(&path) {
                Some(t) if t != *module && !t.starts_with(&format!("{module}::")) => {
                    targets.insert(t);
                }
                Some(_) => {}
                None => unresolved.push(format!("{path} (in {module})")),
            }
        };
        for u in uses.captures_iter(&text) {
            expand(&u[1].split_whitespace().collect::<String>()).iter().for_each(|p| found(p));
        }
        for m in inline.find_iter(&uses.replace_all(&text, "")) {
            found(m.as_str());
        }
        graph.insert(module.clone(), targets);
    }
    (graph, unresolved)
}

fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap();
    LAYERS.iter().position(|l| *l == top).unwrap_or_else(|| panic!("module `{module}` is in no layer"))
}

#[test]
fn imports_only_go_down_the_layers() {
    let graph = imports(&modules());
    assert!(graph.len() > 30, "only {} modules found", graph.len());
    let up: Vec<String> = graph
        .iter()
        .flat_map(|(from, to)| to.iter().filter(|t| layer(t) > layer(from)).map(move |t| format!("{from} → {t}")))
        .collect();
    assert!(up.is_empty(), "imports running up the layers:\n{}", up.join("\n"));
}

#[test]
fn no_two_modules_import_each_other() {
    let graph = imports(&modules());
    // A module that can reach itself is on a circle.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].iter().collect();
        while let Some(m) = stack.pop() {
            assert_ne!(m, start, "`{start}` is on an import circle");
            if seen.insert(m) {
                stack.extend(graph.get(m).into_iter().flatten());
            }
        }
    }
}

#[test]
fn commands_never_import_each_other() {
    let graph = imports(&modules());
    for (from, to) in graph.iter().filter(|(m, _)| m.starts_with("cli::commands::")) {
        let other: Vec<&String> = to.iter().filter(|t| t.starts_with("cli::commands::")).collect();
        assert!(other.is_empty(), "`{from}` imports {other:?}; shared pieces belong in `cli::session` or below");
    }
}

/// The analysis sees what it must: a `use` tree, a `super::` path and a written-out path.
#[test]
fn the_analysis_reads_every_kind_of_import() {
    let mut modules = BTreeMap::new();
    for m in ["os::a", "os::b", "format::c", "format::d", "cli::e"] {
        modules.insert(m.to_string(), String::new());
    }
    modules.insert(
        "format::x".into(),
        "use crate::{os::{a, b}, format::c};\nfn f() { super::d::g(); crate::cli::e::h(); }\n// crate::os::zzz\n"
            .into(),
    );
    let graph = imports(&modules);
    let found: Vec<&str> = graph["format::x"].iter().map(String::as_str).collect();
    assert_eq!(found, ["cli::e", "format::c", "format::d", "os::a", "os::b"]);
}

/// A `crate::` path the analysis cannot place (a module renamed, a path it misreads) fails the
/// analysis instead of passing unseen.
#[test]
fn a_path_that_names_no_module_fails_the_analysis() {
    let mut modules = BTreeMap::new();
    modules.insert("os::a".to_string(), String::new());
    modules.insert("format::x".to_string(), "use crate::os::a;\nfn f() { crate::nowhere::g(); }\n".to_string());
    let (_, unresolved) = analyse(&modules);
    assert_eq!(unresolved, ["crate::nowhere::g (in format::x)"]);
    assert!(std::panic::catch_unwind(|| imports(&modules)).is_err());
}
