//! The emulator's modules form layers: no module reaches, directly or through others, back
//! into one that depends on it (ARCHITECTURE.md shows the layers). Read from the sources, so a
//! new `use crate::...` that closes a cycle fails here rather than in review.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its code (comments aside) names as `crate::X`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let (module, files) = if path.is_dir() {
            let files = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .collect::<Vec<_>>();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                files,
            )
        } else if path.extension().is_some_and(|x| x == "rs") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, vec![path])
        } else {
            continue;
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let deps = graph.entry(module.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for line in text.lines() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    // `crate::{a, b}` groups and re-exported items (`crate::Emulator`) name no
                    // module here.
                    if !name.is_empty() && name != module {
                        deps.insert(name);
                    }
                }
            }
        }
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
        if path.contains(next) || !graph.contains_key(next) {
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
    // The graph was read at all: the accept loop builds on the routes, which build on state.
    assert!(graph["server"].contains("api"), "{graph:?}");
    assert!(graph["api"].contains("state"), "{graph:?}");
    assert!(graph["toolbox"].contains("runtime"), "{graph:?}");
    for module in graph.keys() {
        let mut path = vec![module.clone()];
        if let Some(cycle) = cycle_from(&graph, module, &mut path) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
    // The lower layers know nothing of what sits on them.
    for (low, high) in [
        ("state", "lifecycle"),
        ("state", "api"),
        ("state", "toolbox"),
        ("build", "state"),
        ("runtime", "state"),
        ("runtime", "toolbox"),
        ("api", "server"),
    ] {
        assert!(
            !graph[low].contains(high),
            "{low} must not use {high}: {:?}",
            graph[low]
        );
    }
}
