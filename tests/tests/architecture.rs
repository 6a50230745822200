//! The layers of the node and the edge, checked: each top-level module of a crate sits on a
//! layer and imports (`crate::…`) only modules of lower layers, so no cycle between modules
//! can come back unnoticed. `docs/architecture.md` draws the same layers.
//!
//! Test-only modules (`tests`, `test_support`) may import anything. A new top-level module
//! must be given a layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use zombi_tests::package_dir;

/// The node, bottom first. A module imports only from the layers above its own line.
const NODE: &[&[&str]] = &[
    // What every error of the node has: a code, and its chain for the log.
    &["error"],
    // Foundations: CPU offloading, failpoints, metric names, and the shapes of background
    // work.
    &["cpu", "failpoints", "metrics", "tasks"],
    // The log in the object store (`durability = "object"`): segments, fencing, truncation.
    &["log"],
    // The RocksDB hot store, over the log when there is one.
    &["hot"],
    // The vocabulary: system columns, field ids, spec, sort order, rows, `zombi.*` keys.
    &["schema"],
    // Typed tables: their settings, schema checks and conversion.
    &["typed"],
    // Stored rows → Arrow batches and data files of a table's layout.
    &["layout"],
    // The Iceberg catalog: metadata, commits, table lifecycle, the REST surface.
    &["catalog"],
    // The engines of the node: writes, flushes, maintenance, hot reads.
    &["combiner", "flush", "compact", "read"],
    // Services built from them.
    &["ingest", "replay", "erase", "dump"],
    // The HTTP surface and the process's telemetry.
    &["http", "telemetry"],
];

/// The edge, bottom first.
const EDGE: &[&[&str]] =
    &[&["metrics", "auth"], &["body"], &["forward"], &["error"], &["ingest"], &["http"]];

/// Modules compiled only for tests.
const TEST_ONLY: &[&str] = &["tests", "test_support"];

#[test]
fn node_modules_import_only_lower_layers() {
    check("node", NODE);
}

#[test]
fn edge_modules_import_only_lower_layers() {
    check("edge", EDGE);
}

#[test]
fn the_scanner_sees_grouped_and_nested_imports() {
    let code = "use crate::{a::X, b};\n// crate::c in a comment\nfn f() { crate::d::g(); }\n\
        use crate::{\n    e::{f, g::H},\n    self as i,\n};\n";
    let found: Vec<String> = imports(code).into_iter().collect();
    assert_eq!(found, ["a", "b", "d", "e"]);
}

fn check(krate: &str, layers: &[&[&str]]) {
    let root = package_dir().parent().expect("the repository").to_path_buf();
    let src = root.join(krate).join("src");
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, modules)| modules.iter().map(move |m| (*m, i)))
        .collect();
    let mut problems = Vec::new();
    for (module, deps) in module_imports(&root, &src) {
        if TEST_ONLY.contains(&module.as_str()) {
            continue;
        }
        let Some(&own) = layer_of.get(module.as_str()) else {
            problems.push(format!(
                "{krate}/src/{module} has no layer: add it to tests/tests/architecture.rs"
            ));
            continue;
        };
        for (dep, file) in deps {
            if TEST_ONLY.contains(&dep.as_str()) {
                continue;
            }
            match layer_of.get(dep.as_str()) {
                Some(&layer) if layer < own => {}
                Some(_) => problems.push(format!(
                    "{file} imports crate::{dep}, which is not in a layer below {module}"
                )),
                None => problems.push(format!(
                    "{file} imports crate::{dep}, which has no layer in tests/tests/architecture.rs"
                )),
            }
        }
    }
    assert!(problems.is_empty(), "layering broken in {krate}:\n  {}", problems.join("\n  "));
}

/// Per top-level module (`src/<m>.rs` or `src/<m>/`), each module it imports with the
/// first file that does, relative to the repository.
fn module_imports(root: &Path, src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("read src") {
        let path = entry.expect("dir entry").path();
        let name = path.file_stem().expect("file name").to_string_lossy().into_owned();
        if ["lib", "main"].contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        collect_rs(&path, &mut files);
        let deps = out.entry(name.clone()).or_default();
        for file in files {
            let code = std::fs::read_to_string(&file).expect("read source");
            let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
            for dep in imports(&code) {
                if dep != name {
                    deps.entry(dep).or_insert_with(|| shown.clone());
                }
            }
        }
    }
    out
}

fn collect_rs(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            collect_rs(&entry.expect("dir entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The top-level modules `code` names as `crate::m…` or in `crate::{m…, n::{…}}`, outside
/// comments.
fn imports(code: &str) -> BTreeSet<String> {
    let code: String =
        code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first path segment of every item at the group's own depth.
            let (mut depth, mut item_start) = (0usize, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphanumeric() || c == '_') => {
                        item_start = false;
                        let ident = ident_at(&group[i..]);
                        if ident != "self" {
                            out.insert(ident);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let ident = ident_at(rest);
            if !ident.is_empty() {
                out.insert(ident);
            }
        }
    }
    out
}

fn ident_at(s: &str) -> String {
    s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}
