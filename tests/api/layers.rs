//! Which way the imports run (STYLE.md): a request travels down, `http` → `hub` →
//! `graphql` → `loaders` → `sources`, and nothing reaches back up. Read from the sources
//! themselves: every `crate::<module>` path outside comments and test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules of `src/`, each with the top-level modules it uses.
fn imports(dir: &Path, prefix: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        if ["main", "lib", "mod"].contains(&name.as_str()) {
            continue;
        }
        let files = if path.is_dir() { rust_files(&path) } else { vec![path] };
        modules.insert(name, files);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .into_iter()
        .map(|(name, files)| {
            let mut used = BTreeSet::new();
            for file in files {
                let text = std::fs::read_to_string(&file).expect("read");
                let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
                for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                    for (i, _) in line.match_indices(prefix) {
                        let rest = &line[i + prefix.len()..];
                        let target: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        if names.contains(&target) && target != name {
                            used.insert(target);
                        }
                    }
                }
            }
            (name, used)
        })
        .collect()
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Modules that reach themselves through their imports.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    graph
        .keys()
        .filter(|start| {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&String> = graph[*start].iter().collect();
            while let Some(m) = todo.pop() {
                if m == *start {
                    return true;
                }
                if seen.insert(m) {
                    todo.extend(graph.get(m).into_iter().flatten());
                }
            }
            false
        })
        .cloned()
        .collect()
}

#[test]
fn imports_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&src, "crate::");
    let uses = |m: &str| graph.get(m).cloned().unwrap_or_default();
    let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(cycles(&graph), Vec::<String>::new(), "no cycles between top-level modules: {graph:#?}");
    assert!(uses("names").is_empty(), "names is a leaf");
    assert!(uses("metrics").is_empty(), "metrics is a leaf: every layer may count");
    assert!(uses("config").is_subset(&set(&["names"])), "config: {:?}", uses("config"));
    assert!(uses("error").is_subset(&set(&["names"])), "error: {:?}", uses("error"));
    assert!(
        uses("sources").is_subset(&set(&["config", "error", "metrics", "names"])),
        "sources: {:?}",
        uses("sources")
    );
    assert!(uses("policy").is_subset(&set(&["auth"])), "policy knows no GraphQL, HTTP or SQL: {:?}", uses("policy"));
    for below in ["sources", "loaders", "identity", "policy", "audit", "subject", "jobs"] {
        let up: Vec<_> = uses(below).intersection(&set(&["graphql", "http", "hub", "cli"])).cloned().collect();
        assert!(up.is_empty(), "{below} reaches up into {up:?}");
    }
    assert!(
        !uses("http").contains("graphql") && !uses("http").contains("loaders"),
        "http calls the hub: {:?}",
        uses("http")
    );

    let graphql = imports(&src.join("graphql"), "super::");
    assert_eq!(cycles(&graphql), Vec::<String>::new(), "no cycles inside graphql/: {graphql:#?}");
}
