//! The client's modules, and the provider's, form layers: no module reaches, directly or
//! through others, back into one that depends on it, so one command's path reads top-down
//! (ARCHITECTURE.md). Read from the sources (test modules aside), so a new `use` that closes a
//! cycle fails here rather than in review.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The names a line of code uses after `prefix` (`crate::`, `super::`), as module names; a
/// `prefix{a, b::c}` group names each of its first segments.
fn named_after<'a>(line: &'a str, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
    let word = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect()
    };
    line.match_indices(prefix).flat_map(move |(i, _)| {
        let rest = &line[i + prefix.len()..];
        let names: Vec<String> = match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .map(word)
                .collect(),
            None => vec![word(rest)],
        };
        names.into_iter().filter(|n| !n.is_empty())
    })
}

/// The code of a file without its comments and its `#[cfg(test)]` module.
fn code_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        if !line.trim_start().starts_with("//") {
            lines.push(line.to_string());
        }
    }
    lines
}

/// Module → the modules of the same level its code names: top-level modules through
/// `crate::X`, the provider's through `super::X` and `crate::provider::X`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |module: String, file: &Path, provider: bool| {
        let deps = graph.entry(module.clone()).or_default();
        for line in code_lines(file) {
            let mut names: Vec<String> = named_after(&line, "crate::").collect();
            if provider {
                names = named_after(&line, "crate::provider::")
                    .chain(named_after(&line, "super::"))
                    .map(|n| format!("provider::{n}"))
                    .collect();
            }
            for name in names {
                if name != module && name != "provider::provider" {
                    deps.insert(name);
                }
            }
        }
    };
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "rs") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if stem != "lib" {
                add(stem, &path, false);
            }
        }
    }
    for entry in std::fs::read_dir(src.join("provider")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if stem != "mod" {
            add(format!("provider::{stem}"), &path, true);
        }
    }
    // Names that are not modules (re-exported items, `crate::{…}` groups) drop out here.
    let known: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| known.contains(d));
    }
    graph
}

/// A dependency cycle through `start`, if any, as the path that closes it.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let here = path.last().unwrap().clone();
    for next in graph.get(&here).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(next.clone());
            return Some(cycle);
        }
        if path.contains(next) {
            continue;
        }
        path.push(next.clone());
        if let Some(c) = cycle_from(graph, start, path) {
            return Some(c);
        }
        path.pop();
    }
    None
}

#[test]
fn modules_depend_on_each_other_in_one_direction_only() {
    let graph = module_graph();
    // The graph was read at all.
    assert!(graph["client"].contains("transport"), "{graph:?}");
    assert!(
        graph["provider::command"].contains("provider::collector"),
        "{graph:?}"
    );
    assert!(
        graph["provider::sandbox"].contains("provider::info"),
        "{graph:?}"
    );
    let mut cycles = Vec::new();
    for module in graph.keys() {
        let mut path = vec![module.clone()];
        if let Some(cycle) = cycle_from(&graph, module, &mut path) {
            cycles.push(cycle.join(" -> "));
        }
    }
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}
