//! The pipeline's modules form a one-way graph: no file of `src/` reaches itself through the
//! `crate::`/`super::` paths it names (tests and comments aside). A new cycle fails this test,
//! which names it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/model/clip.rs` → `model::clip`, `src/model/mod.rs` → `model`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)]` modules.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut skipping_tests = false;
    let mut depth = 0i64;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if !skipping_tests
            && trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|l| l.trim_start().starts_with("mod "))
        {
            skipping_tests = true;
            depth = 0;
            continue;
        }
        if skipping_tests {
            depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            if depth <= 0 && line.contains('}') || trimmed.ends_with(';') && depth == 0 {
                skipping_tests = false;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module paths `text` names with `crate::a::b` or `super::a` (relative to `module`).
fn referenced(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for start in ["crate::", "super::"] {
        let mut rest = text;
        while let Some(i) = rest.find(start) {
            let before = rest[..i].chars().last();
            rest = &rest[i + start.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let path: Vec<String> = rest
                .split("::")
                .map(|seg| {
                    seg.chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|seg| !seg.is_empty())
                .collect();
            let mut base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                // `super` of `a::b` (file a/b.rs) is `a`; of `a` (file a/mod.rs) it is the root
                let mut b = module.to_vec();
                b.pop();
                b
            };
            base.extend(path);
            found.push(base);
        }
    }
    found
}

/// The graph in Graphviz's DOT language (`dot -Tsvg`), one `"a" -> "b";` line per edge.
fn dot(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> String {
    let mut out = String::from("digraph modules {\n  rankdir=LR;\n");
    for (from, targets) in edges {
        for to in targets {
            out += &format!("  \"{}\" -> \"{}\";\n", from.join("::"), to.join("::"));
        }
    }
    out + "}\n"
}

/// `MODULE_GRAPH_SRC=DIR` checks another tree (e.g. an older checkout, to see the test fail);
/// `MODULE_GRAPH_DOT=FILE` also writes the graph there as Graphviz DOT.
#[test]
fn the_module_graph_has_no_cycles() {
    let src = std::env::var_os("MODULE_GRAPH_SRC").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        PathBuf::from,
    );
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = code(&std::fs::read_to_string(file).unwrap());
        let targets = edges.entry(module.clone()).or_default();
        for path in referenced(&text, module) {
            // the longest prefix that is a module file
            let target = (1..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|p| modules.contains_key(p));
            if let Some(target) = target
                && &target != module
                && !target.is_empty()
            {
                targets.insert(target);
            }
        }
    }
    if let Some(path) = std::env::var_os("MODULE_GRAPH_DOT") {
        std::fs::write(&path, dot(&edges)).unwrap();
    }
    // depth-first search for a back edge, reporting the cycle it closes
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                0 => visit(next, edges, state, stack, cycles),
                1 => {
                    let from = stack.iter().position(|m| m == next).unwrap();
                    let mut names: Vec<String> =
                        stack[from..].iter().map(|m| m.join("::")).collect();
                    names.push(next.join("::"));
                    cycles.push(names.join(" → "));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for node in edges.keys() {
        if state.get(node).copied().unwrap_or(0) == 0 {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between files:\n{}",
        cycles.join("\n")
    );
    assert!(edges.len() > 20, "read only {} modules", edges.len());
}
