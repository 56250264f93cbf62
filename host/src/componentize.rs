//! Turns a core wasm32-wasi module that follows the canonical ABI of the
//! `module` world into a component, as `wasm-tools component new` would, so
//! that every toolchain that can build a core module can build a guest.

use anyhow::{Context, Result};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

use crate::guest::types::WIT_VERSION;

/// The contract, compiled into the host so it always matches the linker.
pub const WIT: &str = include_str!("../../wit/reef.wit");

/// Componentizes `core`. A module that imports WASI preview 1 gets the
/// preview-1 adapter: the reactor adapter (which imports `wasi:filesystem`)
/// when the module was granted `filesystem`, else the proxy adapter, whose
/// file calls fail with an error (EBADF/ENOTSUP) and which imports no
/// filesystem or socket interface.
pub fn componentize(core: &[u8], filesystem: bool) -> Result<Vec<u8>> {
    // wit-component expects well-formed input (it can panic on truncated
    // modules), so validate first and contain any panic that remains.
    wasmparser::Validator::new()
        .validate_all(core)
        .context("the module is not valid WebAssembly")?;
    std::panic::catch_unwind(|| encode(core, filesystem)).unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "the module is malformed (componentization failed)"
        ))
    })
}

fn encode(core: &[u8], filesystem: bool) -> Result<Vec<u8>> {
    if is_go(core) && !exports(core, "cabi_realloc_adapter") {
        anyhow::bail!(
            "this Go module has no `cabi_realloc_adapter` for the WASI adapter \
             (Go's cabi_realloc cannot run before its runtime starts): \
             build it with guest-sdk/go/build.sh"
        );
    }
    check_version(core)?;
    let mut resolve = Resolve::default();
    let pkg = resolve
        .push_str("reef.wit", WIT)
        .context("parsing the built-in WIT")?;
    let world = resolve
        .select_world(&[pkg], Some("module"))
        .context("selecting world `module`")?;
    let mut module = core.to_vec();
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .context("embedding the reef:runtime world")?;
    let mut encoder = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .context("the module does not fit the reef:runtime `module` world")?;
    if imports_wasi_preview1(core) {
        let adapter = if filesystem {
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
        } else {
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER
        };
        encoder = encoder
            .adapter("wasi_snapshot_preview1", adapter)
            .context("adding the WASI preview-1 adapter")?;
    }
    encoder
        .encode()
        .context("the module does not fit the reef:runtime `module` world")
}

/// A module built for another version of the contract names it in its
/// exports and imports (`reef:runtime/guest@0.1.0#run-task`): name both
/// versions rather than let the encoder report a missing export.
fn check_version(core: &[u8]) -> Result<()> {
    let names = wasmparser::Parser::new(0)
        .parse_all(core)
        .filter_map(Result::ok)
        .flat_map(|payload| match payload {
            wasmparser::Payload::ExportSection(reader) => reader
                .into_iter()
                .filter_map(|e| e.ok().map(|e| e.name.to_string()))
                .collect(),
            wasmparser::Payload::ImportSection(reader) => reader
                .into_imports()
                .filter_map(|i| i.ok().map(|i| i.module.to_string()))
                .collect(),
            _ => Vec::new(),
        });
    for name in names {
        let Some(start) = name.find("reef:runtime/") else {
            continue;
        };
        let interface = name[start..].split('#').next().unwrap_or_default();
        match interface.split_once('@') {
            Some((_, version)) if version == WIT_VERSION => {}
            _ => anyhow::bail!(
                "the module was built for {interface}, this node speaks reef:runtime@{WIT_VERSION}"
            ),
        }
    }
    Ok(())
}

/// A module built by the Go toolchain (it carries a `go:buildid` custom section).
fn is_go(core: &[u8]) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(core)
        .any(|p| matches!(p, Ok(wasmparser::Payload::CustomSection(c)) if c.name() == "go:buildid"))
}

fn exports(core: &[u8], name: &str) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(core)
        .filter_map(|p| match p {
            Ok(wasmparser::Payload::ExportSection(reader)) => Some(reader),
            _ => None,
        })
        .flatten()
        .any(|e| matches!(e, Ok(e) if e.name == name))
}

fn imports_wasi_preview1(core: &[u8]) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(core)
        .filter_map(|p| match p {
            Ok(wasmparser::Payload::ImportSection(reader)) => Some(reader),
            _ => None,
        })
        .flat_map(|reader| reader.into_imports())
        .any(|i| matches!(i, Ok(i) if i.module == "wasi_snapshot_preview1"))
}
