//! The module registry: content-addressed modules, compiled once, with
//! compiled artifacts cached on disk so a restart does not recompile.
//!
//! Layout of `<data-dir>/modules/`: `<hash>.wasm` (the bytes as registered,
//! with the grants sealed in, see `grants`), `<hash>.json` (what `describe`
//! said) and `<hash>-<engine>.cwasm` (the compiled component for this engine
//! configuration). A module granted `filesystem` gets
//! `<data-dir>/scratch/<hash>/<tenant>/`, preopened as `/scratch` for the
//! calls of that tenant (each tenant running it has its own).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use crate::cluster::Membership;
use crate::componentize::componentize;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::grants::{self, Capability, Grants};
use crate::guest::ctx::GuestCtx;
use crate::guest::exec;
use crate::guest::types::{ModuleInfo as WitModuleInfo, GUEST_INTERFACE, WIT_VERSION};
use crate::guest::HostServices;
use crate::module::{ActorClassInfo, GuestExports, Module, ModuleInfo};
use crate::module_owners::{unknown_module, ModuleOwners};
use crate::spec::Limits;
use crate::tasks::inline::RunTimes;

type Loading = std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// Removes a module's entry from [`Registry::loading`] when dropped.
struct ForgetLoading<'a>(&'a Loading, &'a str);

impl Drop for ForgetLoading<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap().remove(self.1);
    }
}

pub struct Registry {
    engine: Engine,
    /// One linker per set of grants (see `Registry::linker`): each links
    /// only the granted WASI interfaces.
    linkers: Vec<Linker<GuestCtx>>,
    dir: PathBuf,
    scratch_dir: PathBuf,
    engine_key: String,
    modules: RwLock<HashMap<String, Arc<Module>>>,
    /// Per-hash locks held while a module is fetched and compiled.
    loading: Loading,
    /// The control plane modules are published to and fetched from.
    cluster: Arc<Membership>,
    /// The memory limit of the instance that runs `describe`.
    describe_memory: u64,
    /// Which tenants may run which module.
    owners: ModuleOwners,
}

impl Registry {
    /// `dir` holds the module cache, `scratch_dir` the scratch directories
    /// of modules granted `filesystem`.
    pub fn new(
        engine: &Engine,
        dir: PathBuf,
        scratch_dir: PathBuf,
        cluster: Arc<Membership>,
        describe_memory: u64,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut linkers = Vec::new();
        for index in 0..4 {
            let grants = Grants {
                filesystem: index & 1 != 0,
                network: index & 2 != 0,
            };
            let mut linker = Linker::new(engine);
            crate::guest::ctx::add_wasi_to_linker(&mut linker, grants)?;
            crate::guest::host_api::add_to_linker(&mut linker)?;
            linkers.push(linker);
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Registry {
            engine: engine.clone(),
            linkers,
            dir,
            scratch_dir,
            engine_key: format!("{:016x}", hasher.finish()),
            modules: RwLock::new(HashMap::new()),
            loading: Default::default(),
            owners: ModuleOwners::new(cluster.clone()),
            cluster,
            describe_memory,
        })
    }

    pub fn get(&self, hash: &str) -> ReefResult<Arc<Module>> {
        self.modules
            .read()
            .unwrap()
            .get(hash)
            .cloned()
            .ok_or_else(|| unknown_module(hash))
    }

    /// Which tenants may run which module.
    pub fn owners(&self) -> &ModuleOwners {
        &self.owners
    }

    pub fn list(&self) -> Vec<Arc<Module>> {
        let mut v: Vec<_> = self.modules.read().unwrap().values().cloned().collect();
        v.sort_by(|a, b| a.hash.cmp(&b.hash));
        v
    }

    /// Uploads a module's bytes to the control plane, so other nodes can
    /// fetch it by hash the first time they run it. Registration waits for
    /// it: a task forwarded right after must find the module there.
    async fn publish(&self, module: &Module, wasm: bytes::Bytes) {
        let Ok(gcs) = self.cluster.gcs() else {
            return;
        };
        if let Err(status) = gcs.put_module(&module.hash, wasm).await {
            tracing::warn!("control plane: uploading module {}: {status}", module.hash);
        }
    }

    /// Gets a module's bytes from the control plane and loads it here (the
    /// first use on this node of a module registered elsewhere). The tasks
    /// that arrive together before it is loaded (a DAG's first wave: thousands)
    /// wait for one fetch, not each its own copy of the bytes.
    pub async fn fetch(&self, host: &HostServices, hash: &str) -> ReefResult<Arc<Module>> {
        self.load_once(hash, async {
            let wasm =
                self.cluster.gcs()?.get_module(hash).await.map_err(|s| {
                    crate::cluster::rpc_error(&format!("fetching module {hash}"), s)
                })?;
            let got = hex::encode(Sha256::digest(&wasm));
            if got != hash {
                return Err(ReefError::new(
                    ErrorCode::InvalidModule,
                    format!("the control plane returned module {got} for {hash}"),
                ));
            }
            // Not published again: the control plane has it.
            self.load(host, hash, wasm.to_vec()).await
        })
        .await
    }

    /// Runs `load` for `hash` unless the module is loaded, one caller at a
    /// time: the others wait for the first and find its module (or, if it
    /// failed, try in turn).
    async fn load_once(
        &self,
        hash: &str,
        load: impl std::future::Future<Output = ReefResult<Arc<Module>>>,
    ) -> ReefResult<Arc<Module>> {
        if let Ok(m) = self.get(hash) {
            return Ok(m);
        }
        let lock = self
            .loading
            .lock()
            .unwrap()
            .entry(hash.to_owned())
            .or_default()
            .clone();
        let _held = lock.lock().await;
        // Forgets the lock however this ends (a failed load, a caller that
        // went away): the map holds only modules being loaded.
        let _forget = ForgetLoading(&self.loading, hash);
        if let Ok(m) = self.get(hash) {
            return Ok(m);
        }
        let module = load.await?;
        self.modules
            .write()
            .unwrap()
            .insert(hash.to_owned(), module.clone());
        Ok(module)
    }

    fn linker(&self, grants: Grants) -> &Linker<GuestCtx> {
        &self.linkers[grants.filesystem as usize | (grants.network as usize) << 1]
    }

    /// Registers a module a driver sent, with the capabilities it asks for.
    /// The grants are sealed into the bytes (see `grants::seal`), so the
    /// hash names the module and its grants together.
    pub async fn register_granted(
        &self,
        host: &HostServices,
        wasm: Vec<u8>,
        grants: Grants,
    ) -> ReefResult<Arc<Module>> {
        if grants::read_sealed(&wasm)?.is_some() {
            return Err(ReefError::new(
                ErrorCode::InvalidModule,
                format!(
                    "the module carries a `{}` custom section, which only the node writes: \
                     register the original bytes and pass the grants with the registration",
                    grants::GRANTS_SECTION
                ),
            ));
        }
        self.register(host, grants::seal(wasm, grants)).await
    }

    /// Registers a module (component or core module) as stored: its grants
    /// are those sealed in its bytes, if any (the node's own cache and the
    /// control plane hold sealed bytes). Registering the same bytes again
    /// returns the loaded module.
    pub async fn register(&self, host: &HostServices, wasm: Vec<u8>) -> ReefResult<Arc<Module>> {
        let hash = hex::encode(Sha256::digest(&wasm));
        // One compilation per module: concurrent registrations (or tasks
        // fetching it on first use) wait for the first.
        self.load_once(&hash, async {
            let bytes = bytes::Bytes::from(wasm.clone());
            let module = self.load(host, &hash, wasm).await?;
            self.publish(&module, bytes).await;
            Ok(module)
        })
        .await
    }

    /// Loads every module registered before a restart (from the cache).
    pub async fn load_saved(&self, host: &HostServices) -> anyhow::Result<usize> {
        let mut n = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
                continue;
            }
            let wasm = std::fs::read(&path)?;
            match self.register(host, wasm).await {
                Ok(_) => n += 1,
                Err(e) => tracing::warn!(path = %path.display(), "skipping saved module: {e}"),
            }
        }
        Ok(n)
    }

    async fn load(
        &self,
        host: &HostServices,
        hash: &str,
        wasm: Vec<u8>,
    ) -> ReefResult<Arc<Module>> {
        let size = wasm.len() as u64;
        let grants = grants::read_sealed(&wasm)?.unwrap_or_default();
        let cwasm = self.dir.join(format!("{hash}-{}.cwasm", self.engine_key));
        let (component, cached) = self.compile(&wasm, grants, cwasm.clone()).await?;
        // Checked on the compiled component too: it covers artifacts from the
        // cache and the adapter a core module was given.
        let imports: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        check_imports(&imports, grants)?;
        let exports = guest_exports(&component)?;
        let pre = self
            .linker(grants)
            .instantiate_pre(&component)
            .map_err(|e| {
                ReefError::new(
                    ErrorCode::InvalidModule,
                    format!("the module imports something this node does not provide: {e:#}"),
                )
            })?;
        let scratch = if grants.filesystem {
            let dir = self.scratch_dir.join(hash);
            std::fs::create_dir_all(&dir).map_err(|e| {
                ReefError::internal(format!("creating scratch dir {}: {e}", dir.display()))
            })?;
            Some(dir)
        } else {
            None
        };
        let mut module = Module {
            hash: hash.to_string(),
            info: ModuleInfo::default(),
            pre,
            exports,
            size,
            cached,
            image_end: data_segments_end(&wasm),
            grants,
            scratch,
            run_times: RunTimes::default(),
            resident: Default::default(),
        };
        module.info = describe(host, &module, self.describe_memory).await?;
        module.run_times = RunTimes::new(&module.info.tasks);
        std::fs::write(self.dir.join(format!("{hash}.wasm")), &wasm)
            .map_err(ReefError::internal)?;
        let json = serde_json::to_vec_pretty(&module.info).map_err(ReefError::internal)?;
        std::fs::write(self.dir.join(format!("{hash}.json")), json).map_err(ReefError::internal)?;
        tracing::info!(hash, cached, %grants, tasks = ?module.info.tasks, "registered module");
        Ok(Arc::new(module))
    }

    /// Compiles (on a blocking thread) or loads the cached artifact.
    async fn compile(
        &self,
        wasm: &[u8],
        grants: Grants,
        cwasm: PathBuf,
    ) -> ReefResult<(Component, bool)> {
        if cwasm.exists() {
            // SAFETY: the file is in the node's private data dir, written by
            // `Component::serialize` of an engine with this configuration
            // (the engine key is in its name).
            match unsafe { Component::deserialize_file(&self.engine, &cwasm) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => tracing::warn!("ignoring cached artifact {}: {e}", cwasm.display()),
            }
        }
        let component_bytes = to_component(wasm, grants)?;
        let engine = self.engine.clone();
        let component =
            tokio::task::spawn_blocking(move || Component::new(&engine, &component_bytes))
                .await
                .map_err(ReefError::internal)?
                .map_err(|e| {
                    ReefError::new(ErrorCode::InvalidModule, format!("compiling: {e:#}"))
                })?;
        if let Ok(bytes) = component.serialize() {
            let tmp = cwasm.with_extension("tmp");
            if std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, &cwasm))
                .is_err()
            {
                tracing::warn!("cannot cache {}", cwasm.display());
            }
        }
        Ok((component, false))
    }
}

/// The highest end of an active data segment with a constant offset, over
/// every core module in `wasm` (nested modules of a component included).
fn data_segments_end(wasm: &[u8]) -> u64 {
    let mut end = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(wasm).flatten() {
        let wasmparser::Payload::DataSection(reader) = payload else {
            continue;
        };
        for data in reader.into_iter().flatten() {
            if let wasmparser::DataKind::Active { offset_expr, .. } = data.kind {
                let mut ops = offset_expr.get_operators_reader();
                let offset = match ops.read() {
                    Ok(wasmparser::Operator::I32Const { value }) => value as u32 as u64,
                    Ok(wasmparser::Operator::I64Const { value }) => value as u64,
                    _ => continue,
                };
                end = end.max(offset + data.data.len() as u64);
            }
        }
    }
    end
}

/// Refuses imports of capabilities not granted (all listed at once), and
/// `wasi:http`, which this node does not link even with `network`.
fn check_imports(imports: &[String], grants: Grants) -> ReefResult<()> {
    let denied: Vec<(String, Capability)> = imports
        .iter()
        .filter_map(|name| match grants::capability_of(name) {
            Some(c) if !grants.has(c) => Some((name.clone(), c)),
            _ => None,
        })
        .collect();
    if !denied.is_empty() {
        return Err(grants::refusal(&denied, grants));
    }
    let http: Vec<&str> = imports
        .iter()
        .filter(|n| n.starts_with("wasi:http/"))
        .map(String::as_str)
        .collect();
    if !http.is_empty() {
        return Err(ReefError::new(
            ErrorCode::InvalidModule,
            format!(
                "the component imports {}: this node does not link wasi:http \
                 (`network` grants wasi:sockets only)",
                http.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Accepts a component as is (after checking its imports against its
/// grants, before the costly compile); componentizes a core module with the
/// preview-1 adapter its grants allow.
fn to_component(wasm: &[u8], grants: Grants) -> ReefResult<Vec<u8>> {
    if wasmparser::Parser::is_component(wasm) {
        check_imports(&grants::component_imports(wasm), grants)?;
        Ok(wasm.to_vec())
    } else if wasmparser::Parser::is_core_wasm(wasm) {
        componentize(wasm, grants.filesystem)
            .map_err(|e| ReefError::new(ErrorCode::InvalidModule, format!("{e:#}")))
    } else {
        Err(ReefError::new(
            ErrorCode::InvalidModule,
            "not a WebAssembly module or component (bad magic number)",
        ))
    }
}

fn guest_exports(component: &Component) -> ReefResult<GuestExports> {
    let Some((_, iface)) = component.get_export(None, GUEST_INTERFACE) else {
        let found: Vec<String> = component
            .component_type()
            .exports(component.engine())
            .map(|(name, _)| name.to_string())
            .collect();
        let other = found.iter().find(|n| n.starts_with("reef:runtime/guest@"));
        let message = match other {
            Some(name) => format!(
                "the module was built for {name}, this node speaks reef:runtime@{WIT_VERSION}"
            ),
            None => format!("the module does not export {GUEST_INTERFACE} (exports: {found:?})"),
        };
        return Err(ReefError::new(ErrorCode::InvalidModule, message));
    };
    let func = |name: &str| {
        component
            .get_export_index(Some(&iface), name)
            .ok_or_else(|| {
                ReefError::new(
                    ErrorCode::InvalidModule,
                    format!("the module's {GUEST_INTERFACE} has no `{name}`"),
                )
            })
    };
    Ok(GuestExports {
        describe: func("describe")?,
        run_task: func("run-task")?,
        actor_init: func("actor-init")?,
        actor_call: func("actor-call")?,
    })
}

/// Asks a fresh instance what the module exports.
async fn describe(
    host: &HostServices,
    module: &Module,
    memory_bytes: u64,
) -> ReefResult<ModuleInfo> {
    // A throwaway module handle for the context: describe needs no host state.
    let handle = Arc::new(Module {
        hash: module.hash.clone(),
        info: ModuleInfo::default(),
        pre: module.pre.clone(),
        exports: module.exports.clone(),
        size: module.size,
        cached: module.cached,
        image_end: module.image_end,
        grants: module.grants,
        scratch: module.scratch.clone(),
        run_times: RunTimes::default(),
        resident: Default::default(),
    });
    let limits = Limits {
        memory_bytes,
        cpu_time_ms: 10_000,
    };
    let mut store = exec::new_store(host, &handle, limits, CancellationToken::new());
    let instance = exec::instantiate(&mut store, module)
        .await
        .map_err(|e| ReefError::new(ErrorCode::InvalidModule, format!("instantiating: {e}")))?;
    let func = instance
        .get_typed_func::<(), (WitModuleInfo,)>(&mut store, &module.exports.describe)
        .map_err(|e| ReefError::new(ErrorCode::InvalidModule, format!("{e:#}")))?;
    let (info,) = func.call_async(&mut store, ()).await.map_err(|e| {
        let e = exec::classify(e, store.data());
        ReefError::new(ErrorCode::InvalidModule, format!("describe failed: {e}"))
    })?;
    Ok(ModuleInfo {
        sdk: info.sdk,
        tasks: info.tasks,
        actors: info
            .actors
            .into_iter()
            .map(|a| ActorClassInfo {
                name: a.name,
                methods: a.methods,
            })
            .collect(),
    })
}
