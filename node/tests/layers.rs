//! Keeps the node crate a one-way stack (ARCHITECTURE.md, "Layers"): it reads the sources
//! under `node/src` and fails when a module imports one in its own layer or above, or when
//! SQL appears outside `node/src/store`.
//!
//! An import is any path `crate::name…` (or a `super::` that climbs to the crate root),
//! in `use` lines and in code alike. Test code is exempt from the layer rule, because
//! fixtures such as the demo catalog sit high up: files named `tests.rs`, and everything
//! from `#[cfg(test)] mod tests {` to the end of a file (test modules sit at the bottom).
//! The SQL rule has no exemption: a test that needs SQL asks a helper in `store`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers of `node/src`, lowest first. A module may import only modules in rows
/// below its own. Adding a module means adding it here.
const LAYERS: &[&[&str]] = &[
    // Base: leaves that import nothing of the crate.
    &[
        "clock", "accounts", "metrics", "links", "notice", "catalog", "i18n",
    ],
    // Base: the node key and the departments' seal keys, the pure booking rules, LAN
    // discovery.
    &["identity", "seals", "appointments", "discovery"],
    // Base: TLS around the node key, the config file.
    &["tls", "config"],
    // Base: the files of a data dir.
    &["data_dir"],
    // The only module with SQL.
    &["store"],
    // Files around the database: archives, restores, disk checks.
    &["backup"],
    // The edges: the JSON API and /sync/v1, the pages, the sync client, the local
    // control socket, the PostgreSQL sink's driver.
    &["api", "web", "link", "control", "sink"],
    // The wiring: a data dir opened into a node, the router, the server.
    &["node"],
    // Programs built on a node.
    &["commands", "demo"],
    &["bench"],
    &["cli"],
];

/// Words that only SQL uses, as they appear in its string literals.
const SQL_WORDS: &[&str] = &["SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM"];

#[test]
fn no_module_imports_one_in_its_layer_or_above() {
    let layer_of = layer_of();
    let mut problems = Vec::new();
    for file in sources() {
        let module = module_path(&file);
        let Some(own) = module.first().filter(|m| *m != "lib" && *m != "main") else {
            continue;
        };
        let Some(&own_layer) = layer_of.get(own.as_str()) else {
            problems.push(format!(
                "{}: module `{own}` is in no layer; add it to LAYERS in node/tests/layers.rs and to ARCHITECTURE.md",
                shown(&file)
            ));
            continue;
        };
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let code = without_tests(&read(&file));
        for (line, target) in imports(&code, &module) {
            if &target == own {
                continue;
            }
            match layer_of.get(target.as_str()) {
                Some(&layer) if layer < own_layer => {}
                Some(&layer) => problems.push(format!(
                    "{}:{line}: `{own}` (layer {own_layer}) imports `{target}` (layer {layer}); a module may only import layers below its own",
                    shown(&file)
                )),
                None => problems.push(format!(
                    "{}:{line}: `{own}` imports `{target}`, which is in no layer",
                    shown(&file)
                )),
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn sql_lives_only_in_the_store() {
    let mut problems = Vec::new();
    for file in sources() {
        if module_path(&file).first().is_some_and(|m| m == "store") {
            continue;
        }
        for (n, line) in read(&file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let literals: Vec<&str> = code.split('"').skip(1).step_by(2).collect();
            let sql = code.contains("rusqlite")
                || literals
                    .iter()
                    .any(|text| SQL_WORDS.iter().any(|word| text.contains(word)));
            if sql {
                problems.push(format!(
                    "{}:{}: SQL outside node/src/store: {}",
                    shown(&file),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// Every module in `LAYERS` once, and every top-level module of the crate in `LAYERS`.
#[test]
fn the_table_names_each_module_once() {
    let mut seen = BTreeMap::new();
    for name in LAYERS.iter().flat_map(|row| row.iter()) {
        *seen.entry(*name).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "named twice: {twice:?}");
    let lib = read(&src().join("lib.rs"));
    for line in lib.lines() {
        if let Some(name) = line.trim().strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';');
            assert!(
                seen.contains_key(name),
                "lib.rs declares `{name}`, which is in no layer"
            );
        }
    }
}

/// The scanner itself: grouped imports, paths in code, `super::` up to the root.
#[test]
fn imports_are_found_wherever_they_are_written() {
    let code = "use crate::{clock::Clock, store::{Store, StoreError}};\n\
                use super::cases::field;\n\
                fn f() { crate::backup::newest(dir); }\n\
                // crate::cli is only mentioned in a comment\n\
                use super::super::node::OpenNode;\n";
    let module = ["web".to_string(), "follow".to_string()];
    let found: Vec<String> = imports(code, &module).into_iter().map(|(_, m)| m).collect();
    assert_eq!(found, ["clock", "store", "web", "backup", "node"]);
    let test_code = "fn a() {}\n#[cfg(test)]\nmod tests {\n    use crate::cli;\n}\n";
    assert!(!without_tests(test_code).contains("cli"));
}

fn layer_of() -> BTreeMap<&'static str, usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(layer, row)| row.iter().map(move |name| (*name, layer)))
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `node/src`.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &mut out);
    assert!(out.len() > 20, "found only {out:?}");
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn shown(path: &Path) -> String {
    format!("node/src/{}", path.strip_prefix(src()).unwrap().display())
}

/// `node/src/store/sync.rs` → `["store", "sync"]`.
fn module_path(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src()).unwrap().with_extension("");
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect()
}

/// The code before a file's `#[cfg(test)] mod tests {`.
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut lines = code.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            let next = lines.peek().map(|l| l.trim()).unwrap_or_default();
            let module = next
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if module == "mod tests {" {
                break;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level modules `code` (in the module at `module`) names, with their lines.
fn imports(code: &str, module: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(at) = find_path_start(rest) {
            let path = &rest[at..];
            let (targets, used) = resolve(path, module);
            found.extend(targets.into_iter().map(|t| (n + 1, t)));
            rest = &path[used.max(1)..];
        }
    }
    found
}

/// Where the next `crate::` or `super::` path starts (not inside another word).
fn find_path_start(text: &str) -> Option<usize> {
    let mut best: Option<usize> = None;
    for word in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(word).map(|i| i + from) {
            let before = text[..i].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                best = Some(best.map_or(i, |b| b.min(i)));
                break;
            }
            from = i + word.len();
        }
    }
    best
}

/// The top-level modules a path starting at `path` names, and how many bytes it used.
fn resolve(path: &str, module: &[String]) -> (Vec<String>, usize) {
    let mut used = 0;
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    if let Some(after) = rest.strip_prefix("crate::") {
        base.clear();
        used += "crate::".len();
        rest = after;
    } else {
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            used += "super::".len();
            rest = after;
        }
    }
    if let Some(first) = base.first() {
        // Still inside a top-level module: the path stays in it.
        return (vec![first.clone()], used);
    }
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut end = group.len();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let mut names = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        let inner = &group[..end];
        for (i, c) in inner
            .char_indices()
            .chain(std::iter::once((inner.len(), ',')))
        {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    let name = leading_ident(inner[start..i].trim());
                    if !name.is_empty() && name != "self" {
                        names.push(name);
                    }
                    start = i + 1;
                }
                _ => {}
            }
        }
        return (names, used + 1 + end);
    }
    let name = leading_ident(rest);
    let len = name.len();
    (
        vec![name].into_iter().filter(|n| !n.is_empty()).collect(),
        used + len,
    )
}

fn leading_ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}
