//! `host build strip-imports`: removes a component's imports of denied WASI
//! interfaces, so a guest whose toolchain imports them whether or not it uses
//! them (componentize-py's CPython imports `wasi:filesystem` and
//! `wasi:sockets`; Rust's `wasm32-wasip2` std imports `wasi:filesystem`)
//! registers without grants.
//!
//! How: a stub component exporting exactly the denied interfaces (built
//! here, as `wit_component::dummy_module` would, from a generated core
//! module) is plugged into the component's matching imports with
//! `wac-graph`. The stub imports what the stubbed interfaces' types need
//! (`wasi:io/streams`, `wasi:clocks/wall-clock`, ...), which the node links
//! for every guest, so every other import (stdio, clocks, random, the Reef
//! host API) is untouched.
//!
//! What the stubs do: `wasi:filesystem/preopens.get-directories` returns no
//! directory, so every path operation fails with an error as on a node that
//! preopens nothing (CPython's imports and tracebacks look for files);
//! `filesystem-error-code` answers none; `instance-network` returns a
//! handle on which nothing works; `create-tcp-socket`, `create-udp-socket`
//! and `resolve-addresses` fail with `access-denied`. Every other function
//! of a stubbed interface traps (`unreachable`): it needs a descriptor or a
//! socket that a stubbed guest can never get.

use anyhow::{bail, Context, Result};
use wac_graph::{plug, types::Package, CompositionGraph, EncodeOptions};
use wit_component::{embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::decoding::{decode, DecodedWasm};
use wit_parser::{
    abi::WasmType, InterfaceId, ManglingAndAbi, Resolve, ResourceIntrinsic, TypeDefKind, TypeId,
    WasmExport, WasmExportKind, WasmImport, WorldId, WorldItem, WorldKey,
};

/// The interfaces stripped by default: what `filesystem` and `network` grant.
pub const DEFAULT_DENY: &[&str] = &["wasi:filesystem", "wasi:sockets"];

/// Whether `import` (`wasi:filesystem/types@0.2.9`) is in one of the denied
/// packages or interfaces (`wasi:filesystem`, `wasi:sockets/tcp`).
fn is_denied(import: &str, deny: &[String]) -> bool {
    let unversioned = import.split('@').next().unwrap_or(import);
    deny.iter().any(|d| {
        let d = d.trim().trim_end_matches('/');
        unversioned == d || unversioned.starts_with(&format!("{d}/"))
    })
}

/// Returns the component with the denied imports replaced by trapping stubs,
/// and the imports that were replaced (empty: the bytes are returned as is).
pub fn strip_imports(component: &[u8], deny: &[String]) -> Result<(Vec<u8>, Vec<String>)> {
    if !wasmparser::Parser::is_component(component) {
        bail!("not a component (core modules are componentized by the node at registration)");
    }
    let (resolve, world_id) = match decode(component).context("decoding the component's WIT")? {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => bail!("this is a WIT package, not a component"),
    };
    let world = &resolve.worlds[world_id];
    let stubbed: Vec<(WorldKey, WorldItem)> = world
        .imports
        .iter()
        .filter(|(key, _)| is_denied(&resolve.name_world_key(key), deny))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if stubbed.is_empty() {
        return Ok((component.to_vec(), Vec::new()));
    }
    for (key, item) in &stubbed {
        if !matches!(item, WorldItem::Interface { .. }) {
            bail!(
                "import `{}` is not an interface; only interfaces can be stubbed",
                resolve.name_world_key(key)
            );
        }
    }
    let names: Vec<String> = stubbed
        .iter()
        .map(|(k, _)| resolve.name_world_key(k))
        .collect();
    let stub = stub_component(&resolve, world_id, &stubbed).context("building the stub")?;

    let mut graph = CompositionGraph::new();
    let original =
        Package::from_bytes("reef:original", None, component.to_vec(), graph.types_mut())
            .context("loading the component into the composition")?;
    let stub = Package::from_bytes("reef:stubs", None, stub, graph.types_mut())
        .context("loading the stub into the composition")?;
    let original = graph.register_package(original)?;
    let stub = graph.register_package(stub)?;
    plug(&mut graph, vec![stub], original).context("plugging the stub into the component")?;
    let out = graph
        .encode(EncodeOptions::default())
        .context("encoding the composed component")?;

    let left: Vec<String> = crate::grants::component_imports(&out)
        .into_iter()
        .filter(|i| is_denied(i, deny))
        .collect();
    if !left.is_empty() {
        bail!("the composition still imports {}", left.join(", "));
    }
    Ok((out, names))
}

/// A component exporting the stubbed interfaces (trapping bodies) and
/// importing the interfaces their types come from.
fn stub_component(
    resolve: &Resolve,
    world_id: wit_parser::WorldId,
    stubbed: &[(WorldKey, WorldItem)],
) -> Result<Vec<u8>> {
    let mut resolve = resolve.clone();
    let exported: Vec<InterfaceId> = stubbed
        .iter()
        .filter_map(|(_, item)| match item {
            WorldItem::Interface { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    // Every interface the exported ones use types from, transitively, that
    // is not itself exported, is imported.
    let mut imported: Vec<InterfaceId> = Vec::new();
    let mut todo = exported.clone();
    while let Some(id) = todo.pop() {
        for dep in resolve.interface_direct_deps(id) {
            if !exported.contains(&dep) && !imported.contains(&dep) {
                imported.push(dep);
                todo.push(dep);
            }
        }
    }
    let mut world = resolve.worlds[world_id].clone();
    world.name = "reef-stubs".to_string();
    world.includes.clear();
    // The original imports them already (its stubbed imports need them too),
    // in an order where every interface comes after those it uses.
    let original = &resolve.worlds[world_id].imports;
    if let Some(missing) = imported
        .iter()
        .find(|id| !original.contains_key(&WorldKey::Interface(**id)))
    {
        bail!(
            "the component does not import `{}`, which its stubbed imports use",
            resolve.id_of(*missing).unwrap_or_default()
        );
    }
    world.imports = original
        .iter()
        .filter(|(key, _)| matches!(key, WorldKey::Interface(id) if imported.contains(id)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    world.exports = stubbed.iter().cloned().collect();
    let stub_world = resolve.worlds.alloc(world);

    let mut module = stub_module(&resolve, stub_world)?;
    embed_component_metadata(&mut module, &resolve, stub_world, StringEncoding::UTF8)
        .context("embedding the stub's world")?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)?
        .encode()
        .context("encoding the stub component")
}

/// Where stubs return their results from (zeroed memory: an empty list, `none`).
const ZEROED_RESULT: u32 = 16;
/// Where `result::err(access-denied)` is written for socket creation.
const DENIED_RESULT: u32 = 32;
/// `wasi:sockets/network.error-code.access-denied`.
const ACCESS_DENIED: u32 = 1;

/// The core module of the stub: every export of `world` (functions and
/// resource destructors), a memory and a bump allocator for parameters.
fn stub_module(resolve: &Resolve, world: WorldId) -> Result<Vec<u8>> {
    let mangling = ManglingAndAbi::Standard32;
    let memory = resolve.wasm_export_name(mangling, WasmExport::Memory);
    let realloc = resolve.wasm_export_name(mangling, WasmExport::Realloc);
    let mut wat = String::from("(module\n");
    // `instance-network` hands out a handle to the stub's own `network`
    // resource, so name lookups fail with an error instead of a trap.
    let network = network_resource(resolve, world);
    if let Some((key, resource)) = network {
        let (module, name) = resolve.wasm_import_name(
            mangling,
            WasmImport::ResourceIntrinsic {
                interface: Some(key),
                resource,
                intrinsic: ResourceIntrinsic::ExportedNew,
            },
        );
        wat.push_str(&format!(
            "(import {module:?} {name:?} (func $network_new (param i32) (result i32)))\n"
        ));
    }
    wat.push_str(&format!("(memory (export {memory:?}) 1)\n"));
    wat.push_str("(global $heap (mut i32) (i32.const 1024))\n");
    // Bump allocation for lifted parameters (strings, lists); never freed:
    // a stub instance lives as long as the guest's.
    wat.push_str(&format!("(func (export {realloc:?})"));
    wat.push_str(
        " (param i32 i32 i32 i32) (result i32) (local $p i32)
           (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                                  (i32.sub (i32.const 0) (local.get 2))))
           (global.set $heap (i32.add (local.get $p) (local.get 3)))
           (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
             (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16))
                                                     (i32.const 1)))
                               (i32.const -1))
                     (then unreachable))))
           (local.get $p))\n",
    );
    for (key, item) in resolve.worlds[world].exports.iter() {
        let WorldItem::Interface { id, .. } = item else {
            bail!("only interfaces can be stubbed");
        };
        let interface = resolve.name_world_key(key);
        let unversioned = interface.split('@').next().unwrap_or(&interface);
        for (_, func) in resolve.interfaces[*id].functions.iter() {
            let sig = resolve.wasm_signature(mangling.for_func(func).export_variant(), func);
            let name = resolve.wasm_export_name(
                mangling,
                WasmExport::Func {
                    interface: Some(key),
                    func,
                    kind: WasmExportKind::Normal,
                },
            );
            let body = match (unversioned, func.name.as_str(), sig.results.len()) {
                ("wasi:filesystem/preopens", "get-directories", 1)
                | ("wasi:filesystem/types", "filesystem-error-code", 1) => {
                    format!("i32.const {ZEROED_RESULT}")
                }
                ("wasi:sockets/instance-network", "instance-network", 1) if network.is_some() => {
                    "(call $network_new (i32.const 0))".to_string()
                }
                ("wasi:sockets/tcp-create-socket", "create-tcp-socket", 1)
                | ("wasi:sockets/udp-create-socket", "create-udp-socket", 1)
                | ("wasi:sockets/ip-name-lookup", "resolve-addresses", 1) => format!(
                    "(i32.store8 (i32.const {DENIED_RESULT}) (i32.const 1))
                     (i32.store8 (i32.const {}) (i32.const {ACCESS_DENIED}))
                     i32.const {DENIED_RESULT}",
                    DENIED_RESULT + 4
                ),
                _ => "unreachable".to_string(),
            };
            wat.push_str(&format!("(func (export {name:?})"));
            push_types(&mut wat, "param", &sig.params);
            push_types(&mut wat, "result", &sig.results);
            wat.push_str(&format!(" {body})\n"));
        }
        for (_, ty) in resolve.interfaces[*id].types.iter() {
            if matches!(resolve.types[*ty].kind, TypeDefKind::Resource) {
                let name = resolve.wasm_export_name(
                    mangling,
                    WasmExport::ResourceDtor {
                        interface: key,
                        resource: *ty,
                    },
                );
                wat.push_str(&format!("(func (export {name:?}) (param i32))\n"));
            }
        }
    }
    let initialize = resolve.wasm_export_name(mangling, WasmExport::Initialize);
    wat.push_str(&format!("(func (export {initialize:?}))\n)\n"));
    wat::parse_str(&wat).context("assembling the stub module")
}

/// The `network` resource of `wasi:sockets/network`, when the stub exports
/// both it and `wasi:sockets/instance-network`.
fn network_resource(resolve: &Resolve, world: WorldId) -> Option<(&WorldKey, TypeId)> {
    let exports = &resolve.worlds[world].exports;
    let unversioned = |key: &WorldKey| {
        let name = resolve.name_world_key(key);
        name.split('@').next().unwrap_or(&name).to_string()
    };
    if !exports
        .keys()
        .any(|k| unversioned(k) == "wasi:sockets/instance-network")
    {
        return None;
    }
    exports.iter().find_map(|(key, item)| match item {
        WorldItem::Interface { id, .. } if unversioned(key) == "wasi:sockets/network" => resolve
            .interfaces[*id]
            .types
            .get("network")
            .map(|ty| (key, *ty)),
        _ => None,
    })
}

fn push_types(wat: &mut String, what: &str, types: &[WasmType]) {
    if types.is_empty() {
        return;
    }
    wat.push_str(&format!(" ({what}"));
    for ty in types {
        wat.push_str(match ty {
            WasmType::I32 | WasmType::Pointer | WasmType::Length => " i32",
            WasmType::I64 | WasmType::PointerOrI64 => " i64",
            WasmType::F32 => " f32",
            WasmType::F64 => " f64",
        });
    }
    wat.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component importing `wasi:filesystem/preopens` whose `run` returns
    /// how many preopened directories it was given.
    fn app_component() -> Vec<u8> {
        let wit = r#"
            package test:app;
            world app {
                import wasi:filesystem/preopens@0.2.0;
                export run: func() -> u32;
            }
            package wasi:filesystem@0.2.0 {
                interface preopens { get-directories: func() -> list<string>; }
            }"#;
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("app.wit", wit).unwrap();
        let world = resolve.select_world(&[pkg], Some("app")).unwrap();
        let mut core = wat::parse_str(
            r#"(module
                (import "wasi:filesystem/preopens@0.2.0" "get-directories" (func $dirs (param i32)))
                (memory (export "memory") 1)
                (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 256)
                (func (export "run") (result i32)
                    (call $dirs (i32.const 16))
                    (i32.load (i32.const 20))))"#,
        )
        .unwrap();
        embed_component_metadata(&mut core, &resolve, world, StringEncoding::UTF8).unwrap();
        ComponentEncoder::default()
            .validate(true)
            .module(&core)
            .unwrap()
            .encode()
            .unwrap()
    }

    #[test]
    fn stripped_imports_are_gone_and_the_stub_answers_no_directories() {
        let app = app_component();
        assert_eq!(
            crate::grants::component_imports(&app),
            ["wasi:filesystem/preopens@0.2.0"]
        );
        let deny: Vec<String> = DEFAULT_DENY.iter().map(|s| s.to_string()).collect();
        let (stripped, stubbed) = strip_imports(&app, &deny).unwrap();
        assert_eq!(stubbed, ["wasi:filesystem/preopens@0.2.0"]);
        assert!(crate::grants::component_imports(&stripped).is_empty());
        // Nothing left to strip: the bytes come back as they are.
        let (again, none) = strip_imports(&stripped, &deny).unwrap();
        assert!(none.is_empty());
        assert_eq!(again, stripped);

        let engine = wasmtime::Engine::default();
        let component = wasmtime::component::Component::new(&engine, &stripped).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let linker = wasmtime::component::Linker::new(&engine);
        let instance = linker.instantiate(&mut store, &component).unwrap();
        let run = instance
            .get_typed_func::<(), (u32,)>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, ()).unwrap(), (0,));
    }

    #[test]
    fn denied_names_match_packages_and_interfaces() {
        let deny: Vec<String> = DEFAULT_DENY.iter().map(|s| s.to_string()).collect();
        assert!(is_denied("wasi:filesystem/types@0.2.9", &deny));
        assert!(is_denied("wasi:sockets/tcp@0.2.0", &deny));
        assert!(!is_denied("wasi:io/streams@0.2.9", &deny));
        assert!(!is_denied("wasi:filesystemx/types@0.2.9", &deny));
        let one = vec!["wasi:sockets/tcp".to_string()];
        assert!(is_denied("wasi:sockets/tcp@0.2.0", &one));
        assert!(!is_denied("wasi:sockets/udp@0.2.0", &one));
    }
}
