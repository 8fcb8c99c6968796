//! The architecture, checked: the layers use each other in one direction only, no file or
//! top-level module imports another that imports it back, no function runs past 100 lines,
//! and SQL built at run time stays the exception.
//!
//! It reads the sources with `syn`, so it sees what the compiler sees: `use` trees and every
//! `crate::`/`super::` path in code, whether or not a `use` line names it.

use proc_macro2::Span;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// Which top-level modules each layer may use. A module not listed here may use anything;
/// every module of `src/` is listed.
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("config", &[]),
    ("metrics", &[]),
    ("db", &["config"]),
    ("store", &["domain", "db", "config"]),
    ("services", &["domain", "store", "db", "config", "metrics"]),
    (
        "http",
        &[
            "domain",
            "store",
            "services",
            "db",
            "config",
            "metrics",
            "telemetry",
        ],
    ),
    ("telemetry", &["config", "metrics"]),
    // The simulator is an independent reading of the upstream: it shares only the error shape.
    ("sim", &["http::error"]),
    (
        "startup",
        &[
            "config",
            "db",
            "domain",
            "http",
            "metrics",
            "services",
            "sim",
            "store",
            "telemetry",
        ],
    ),
    (
        "cli",
        &[
            "config",
            "db",
            "domain",
            "http",
            "services",
            "sim",
            "startup",
            "store",
            "telemetry",
        ],
    ),
];

const MAX_FUNCTION_LINES: usize = 100;
/// Statements whose text is built at run time (`QueryBuilder`, or `sqlx::query` on a string).
const MAX_DYNAMIC_SQL: usize = 15;

struct SourceFile {
    module: String,
    path: PathBuf,
    ast: syn::File,
}

fn sources(root: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let ast = syn::parse_file(&text)
                    .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
                files.push(SourceFile {
                    module: module_of(root, &path),
                    path,
                    ast,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// `src/http/tenant/proxy.rs` is `http::tenant::proxy`; `mod.rs`, `lib.rs`, `main.rs` name
/// their folder.
fn module_of(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap().with_extension("");
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
    parts.join("::")
}

/// Every crate path a file names, made absolute (`crate::a::b`, `super::c` resolved).
#[derive(Default)]
struct PathCollector {
    module: Vec<String>,
    /// Inside `#[cfg(test)] mod tests`: a file's own tests may use anything of it.
    depth_in_tests: usize,
    found: BTreeSet<String>,
}

impl PathCollector {
    fn absolute(&self, segments: &[String]) -> Option<String> {
        let mut base: Vec<String> = match segments.first().map(String::as_str) {
            Some("crate") => Vec::new(),
            Some("super") => {
                let mut m = self.module.clone();
                m.pop();
                m
            }
            _ => return None,
        };
        let mut rest = &segments[1..];
        while rest.first().map(String::as_str) == Some("super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base.join("::"))
    }

    fn record(&mut self, segments: Vec<String>) {
        if self.depth_in_tests > 0 {
            return;
        }
        if let Some(path) = self.absolute(&segments) {
            self.found.insert(path);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.record(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.record(full);
            }
            syn::UseTree::Glob(_) => self.record(prefix.clone()),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.record(segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let is_test = item
            .attrs
            .iter()
            .any(|a| a.path().is_ident("cfg") && a.meta.to_token_stream_string().contains("test"));
        if is_test {
            self.depth_in_tests += 1;
        }
        self.module.push(item.ident.to_string());
        syn::visit::visit_item_mod(self, item);
        self.module.pop();
        if is_test {
            self.depth_in_tests -= 1;
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // Paths inside macro calls (`format!`, `json!`, `query_as!`) are tokens, not syntax:
        // pick out `crate :: a :: b` runs by hand.
        let tokens: Vec<String> = mac
            .tokens
            .clone()
            .into_iter()
            .map(|t| t.to_string())
            .collect();
        let mut i = 0;
        while i < tokens.len() {
            if tokens[i] == "crate" || tokens[i] == "super" {
                let mut segments = vec![tokens[i].clone()];
                let mut j = i + 1;
                while j + 2 < tokens.len() + 1
                    && tokens.get(j).map(String::as_str) == Some(":")
                    && tokens.get(j + 1).map(String::as_str) == Some(":")
                {
                    match tokens.get(j + 2) {
                        Some(ident) if ident.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                            segments.push(ident.clone());
                            j += 3;
                        }
                        _ => break,
                    }
                }
                self.record(segments);
                i = j;
            } else {
                i += 1;
            }
        }
        syn::visit::visit_macro(self, mac);
    }
}

trait MetaText {
    fn to_token_stream_string(&self) -> String;
}

impl MetaText for syn::Meta {
    fn to_token_stream_string(&self) -> String {
        quote_tokens(self)
    }
}

fn quote_tokens(meta: &syn::Meta) -> String {
    match meta {
        syn::Meta::List(list) => list.tokens.to_string(),
        syn::Meta::Path(p) => p.segments.iter().map(|s| s.ident.to_string()).collect(),
        syn::Meta::NameValue(_) => String::new(),
    }
}

/// For each module, the other modules of the crate it uses (resolved to the longest module
/// that exists: `crate::http::error::ApiError` is a use of `http::error`).
fn module_graph(files: &[SourceFile]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<&str> = files.iter().map(|f| f.module.as_str()).collect();
    let resolve = |path: &str| -> Option<String> {
        let mut parts: Vec<&str> = path.split("::").collect();
        while !parts.is_empty() {
            let candidate = parts.join("::");
            if modules.contains(candidate.as_str()) {
                return Some(candidate);
            }
            parts.pop();
        }
        None
    };
    let mut graph = BTreeMap::new();
    for file in files {
        let mut collector = PathCollector {
            module: file
                .module
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            ..PathCollector::default()
        };
        collector.visit_file(&file.ast);
        let used: BTreeSet<String> = collector
            .found
            .iter()
            .filter_map(|p| resolve(p))
            .filter(|m| {
                !m.is_empty() && *m != file.module && !file.module.starts_with(&format!("{m}::"))
            })
            .collect();
        graph.insert(file.module.clone(), used);
    }
    graph
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn connect<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                if s.graph.contains_key(w) {
                    connect(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                }
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            connect(&mut state, v);
        }
    }
    state.found
}

fn top_level(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let head = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, used) in graph {
        let from = head(from);
        if from.is_empty() {
            continue;
        }
        let entry = top.entry(from.clone()).or_default();
        for to in used {
            let to = head(to);
            if to != from {
                entry.insert(to);
            }
        }
    }
    top
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let graph = module_graph(&sources(&src()));
    assert_eq!(
        cycles(&graph),
        Vec::<Vec<String>>::new(),
        "import circles between files"
    );
}

#[test]
fn no_top_level_module_imports_one_that_imports_it_back() {
    let top = top_level(&module_graph(&sources(&src())));
    assert_eq!(
        cycles(&top),
        Vec::<Vec<String>>::new(),
        "import circles: {top:#?}"
    );
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let graph = module_graph(&sources(&src()));
    let mut wrong = Vec::new();
    for (from, used) in &graph {
        let Some(layer) = from.split("::").next().filter(|l| !l.is_empty()) else {
            continue;
        };
        let allowed = ALLOWED
            .iter()
            .find(|(l, _)| *l == layer)
            .unwrap_or_else(|| panic!("module `{layer}` has no entry in ALLOWED"))
            .1;
        for to in used {
            let same_layer = to == layer || to.starts_with(&format!("{layer}::"));
            let permitted = allowed
                .iter()
                .any(|a| to == a || to.starts_with(&format!("{a}::")));
            if !same_layer && !permitted {
                wrong.push(format!("{from} uses {to}"));
            }
        }
    }
    assert_eq!(wrong, Vec::<String>::new(), "uses against the layering");
}

/// Every `fn` with a body, with the lines from its signature to its closing brace.
#[derive(Default)]
struct FunctionLengths {
    found: Vec<(String, usize)>,
}

impl FunctionLengths {
    fn note(&mut self, name: &syn::Ident, span: Span, end: Span) {
        let lines = end.end().line.saturating_sub(span.start().line) + 1;
        self.found
            .push((format!("{name} (line {})", span.start().line), lines));
    }
}

impl<'ast> Visit<'ast> for FunctionLengths {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.note(
            &f.sig.ident,
            f.sig.fn_token.span,
            f.block.brace_token.span.close(),
        );
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.note(
            &f.sig.ident,
            f.sig.fn_token.span,
            f.block.brace_token.span.close(),
        );
        syn::visit::visit_impl_item_fn(self, f);
    }
}

#[test]
fn no_function_runs_past_100_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = Vec::new();
    for dir in ["src", "tests", "bench"] {
        if !root.join(dir).exists() {
            continue;
        }
        for file in sources(&root.join(dir)) {
            let mut lengths = FunctionLengths::default();
            lengths.visit_file(&file.ast);
            for (name, lines) in lengths.found {
                if lines > MAX_FUNCTION_LINES {
                    let path = file.path.strip_prefix(root).unwrap().display().to_string();
                    long.push(format!("{path}: {name}: {lines} lines"));
                }
            }
        }
    }
    assert_eq!(
        long,
        Vec::<String>::new(),
        "functions over {MAX_FUNCTION_LINES} lines"
    );
}

#[test]
fn sql_is_checked_at_compile_time_but_for_a_few_dynamic_statements() {
    let dynamic = regex::Regex::new(
        r"sqlx::(query|query_as|query_scalar)(::<[^>]*>)?\s*\(|QueryBuilder::(<[^>]*>::)?new\b",
    )
    .unwrap();
    let mut found = Vec::new();
    for file in sources(&src()) {
        let text = std::fs::read_to_string(&file.path).unwrap();
        for (i, line) in text.lines().enumerate() {
            if dynamic.is_match(line) {
                found.push(format!("{}:{}", file.path.display(), i + 1));
            }
        }
    }
    assert!(
        found.len() <= MAX_DYNAMIC_SQL,
        "{} statements built at run time (at most {MAX_DYNAMIC_SQL}): {found:#?}",
        found.len()
    );
}
