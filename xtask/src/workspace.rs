//! The workspace as `cargo metadata` describes it: every package, its
//! declared dependencies and targets, and the resolved dependency graph.
//! `tidy` states its dependency and packaging rules against this.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::json::Json;
use crate::{Result, cmd};

/// One package of the graph (a workspace member or a dependency).
#[derive(Debug, Clone, Default)]
pub(crate) struct Package {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The directory holding its `Cargo.toml`.
    pub(crate) dir: PathBuf,
    /// `false` for `publish = false`.
    pub(crate) publishable: bool,
    /// `description`, `license`, `readme`, `repository` as set.
    pub(crate) fields: BTreeMap<&'static str, String>,
    pub(crate) keywords: Vec<String>,
    pub(crate) categories: Vec<String>,
    /// Dependencies as declared in `Cargo.toml`.
    pub(crate) declared: Vec<Declared>,
    /// The root source file of each target (lib, bins, tests, benches…).
    pub(crate) roots: Vec<PathBuf>,
}

/// A dependency as a manifest declares it.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    pub(crate) name: String,
    /// `None` for a normal dependency, else `"dev"` or `"build"`.
    pub(crate) kind: Option<String>,
    /// Set for path dependencies.
    pub(crate) path: Option<PathBuf>,
    /// The version requirement; `*` when a path dependency gives none.
    pub(crate) req: String,
}

/// Packages and the resolved graph.
#[derive(Debug, Clone, Default)]
pub(crate) struct Workspace {
    pub(crate) packages: BTreeMap<String, Package>,
    pub(crate) members: Vec<String>,
    /// Resolved edges: package id → (dependency id, is a normal edge).
    pub(crate) edges: BTreeMap<String, Vec<(String, bool)>>,
}

/// The package metadata fields every published crate must set.
pub(crate) const PUBLISH_FIELDS: [&str; 4] = ["description", "license", "readme", "repository"];

impl Workspace {
    /// Runs `cargo metadata` for the whole workspace, every platform and
    /// every feature (an optional dependency breaks a rule as much as any).
    pub(crate) fn load() -> Result<Workspace> {
        let out = cmd::output(cmd::cargo(
            &[
                "metadata",
                "--format-version",
                "1",
                "--locked",
                "--all-features",
            ],
            &[],
        ))?;
        if !out.status.success() {
            return Err(format!(
                "cargo metadata failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8(out.stdout).map_err(|_| "cargo metadata: not UTF-8")?;
        Workspace::from_json(&Json::parse(&text)?)
    }

    pub(crate) fn from_json(doc: &Json) -> Result<Workspace> {
        let mut ws = Workspace::default();
        for p in doc
            .get("packages")
            .ok_or("cargo metadata: no packages")?
            .items()
        {
            let id = p.str_at("id").ok_or("package without id")?.to_owned();
            let manifest = p.str_at("manifest_path").unwrap_or_default();
            let strings = |key: &str| -> Vec<String> {
                p.get(key)
                    .map(|v| {
                        v.items()
                            .iter()
                            .filter_map(Json::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let declared = p
                .get("dependencies")
                .map(Json::items)
                .unwrap_or_default()
                .iter()
                .map(|d| Declared {
                    name: d.str_at("name").unwrap_or_default().to_owned(),
                    kind: d.str_at("kind").map(str::to_owned),
                    path: d.str_at("path").map(PathBuf::from),
                    req: d.str_at("req").unwrap_or("*").to_owned(),
                })
                .collect();
            let roots = p
                .get("targets")
                .map(Json::items)
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t.str_at("src_path"))
                .map(PathBuf::from)
                .collect();
            let fields = PUBLISH_FIELDS
                .iter()
                .filter_map(|f| Some((*f, p.str_at(f)?.to_owned())))
                .collect();
            let package = Package {
                id: id.clone(),
                name: p.str_at("name").unwrap_or_default().to_owned(),
                dir: Path::new(manifest)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                // `publish: null` is "anywhere"; `[]` is `publish = false`.
                publishable: p
                    .get("publish")
                    .is_none_or(|v| !matches!(v, Json::Array(a) if a.is_empty())),
                fields,
                keywords: strings("keywords"),
                categories: strings("categories"),
                declared,
                roots,
            };
            ws.packages.insert(id, package);
        }
        ws.members = doc
            .get("workspace_members")
            .map(Json::items)
            .unwrap_or_default()
            .iter()
            .filter_map(Json::as_str)
            .map(str::to_owned)
            .collect();
        let nodes = doc
            .get("resolve")
            .and_then(|r| r.get("nodes"))
            .ok_or("cargo metadata: no resolve graph")?;
        for node in nodes.items() {
            let id = node.str_at("id").unwrap_or_default().to_owned();
            let deps = node
                .get("deps")
                .map(Json::items)
                .unwrap_or_default()
                .iter()
                .filter_map(|d| {
                    let normal = d
                        .get("dep_kinds")
                        .map(Json::items)
                        .unwrap_or_default()
                        .iter()
                        .any(|k| matches!(k.get("kind"), None | Some(Json::Null)));
                    Some((d.str_at("pkg")?.to_owned(), normal))
                })
                .collect();
            ws.edges.insert(id, deps);
        }
        Ok(ws)
    }

    /// The workspace member called `name`.
    pub(crate) fn member(&self, name: &str) -> Option<&Package> {
        self.members
            .iter()
            .filter_map(|id| self.packages.get(id))
            .find(|p| p.name == name)
    }

    /// The workspace members, in name order.
    pub(crate) fn members(&self) -> Vec<&Package> {
        let mut out: Vec<&Package> = self
            .members
            .iter()
            .filter_map(|id| self.packages.get(id))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.packages.get(id).map_or(id, |p| p.name.as_str())
    }

    /// Names of the packages `package` depends on directly through normal
    /// (not dev or build) edges.
    pub(crate) fn direct(&self, package: &Package) -> BTreeSet<&str> {
        self.edges
            .get(&package.id)
            .map(|deps| {
                deps.iter()
                    .filter(|(_, normal)| *normal)
                    .map(|(id, _)| self.name(id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Names of every package `package` reaches through normal edges: what
    /// its users compile and link because of it.
    pub(crate) fn reached(&self, package: &Package) -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![package.id.as_str()];
        while let Some(id) = todo.pop() {
            for (dep, normal) in self.edges.get(id).map(Vec::as_slice).unwrap_or_default() {
                if *normal && seen.insert(dep.as_str()) {
                    todo.push(dep);
                }
            }
        }
        seen.into_iter().map(|id| self.name(id)).collect()
    }

    /// The names of every package in the graph, dev and build edges too.
    pub(crate) fn all_names(&self) -> BTreeSet<&str> {
        self.packages.values().map(|p| p.name.as_str()).collect()
    }
}
