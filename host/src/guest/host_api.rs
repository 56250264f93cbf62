//! The `reef:runtime/host` imports: what a guest can ask of its node.
//!
//! Registered by hand with `func_wrap` (not `bindgen!`) so that buffers can
//! be taken as `WasmList<u8>` or `GuestBuffer`: borrows of guest memory
//! rather than copies.

use bytes::Bytes;
use wasmtime::component::{Linker, WasmList};
use wasmtime::{AsContextMut, StoreContextMut};

use super::buffer::GuestBuffer;
use super::ctx::GuestCtx;
use super::read::read_object;
use super::types::{Arg, Failure, LogLevel, ObjectRef, HOST_INTERFACE};
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::spec::{when_placed, ActorSpec, ArgSpec, TaskSpec};
use crate::store::ObjectId;

type Ctx<'a> = StoreContextMut<'a, GuestCtx>;

pub fn add_to_linker(linker: &mut Linker<GuestCtx>) -> wasmtime::Result<()> {
    let mut host = linker.instance(HOST_INTERFACE)?;

    host.func_wrap("log", |store: Ctx, (level, message): (LogLevel, String)| {
        let level = format!("{level:?}").to_lowercase();
        let line = format!("[{level}] {message}");
        store
            .data()
            .output
            .write(crate::logs::Stream::Log, line.as_bytes());
        Ok(())
    })?;

    host.func_wrap("report-panic", |mut store: Ctx, (message,): (String,)| {
        store.data_mut().panic_message = Some(message);
        Ok(())
    })?;

    host.func_wrap("put", |mut store: Ctx, (data,): (WasmList<u8>,)| {
        let objects = store.data().host.objects().clone();
        // The guest's tenant's: its spills count against that tenant's quota.
        let tenant = store.data().host.tenant().clone();
        let result = objects
            .store()
            .new_data_for(data.as_le_slice(&store), Some(&tenant))
            .and_then(|data| {
                // Counted against the tenant's arena bytes while it lives.
                let charge = objects.store().charge_arena(&tenant, &data)?;
                let id = objects.new_object_id();
                let size = data.len();
                objects.store().insert_put(id, data, 1, &tenant)?;
                objects.store().keep_charge(id, charge);
                let ctx = store.data_mut();
                ctx.host.made(id);
                ctx.owned.push(id);
                ctx.allowed.insert(id);
                Ok(ObjectRef { id, size })
            });
        Ok((result.map_err(Failure::from),))
    })?;

    host.func_wrap_async("object-size", |store: Ctx, (id,): (ObjectId,)| {
        Box::new(async move {
            Ok((read_object(store, id)
                .await
                .map(|d| d.len())
                .map_err(Failure::from),))
        })
    })?;

    host.func_wrap_async("get", |store: Ctx, (id,): (ObjectId,)| {
        Box::new(async move {
            Ok((read_object(store, id)
                .await
                .map(|d| d.as_slice().to_vec())
                .map_err(Failure::from),))
        })
    })?;

    host.func_wrap_async(
        "map-view",
        |mut store: Ctx, (id, buffer): (ObjectId, GuestBuffer)| {
            Box::new(async move {
                let data = match read_object(store.as_context_mut(), id).await {
                    Ok(d) => d,
                    Err(e) => return Ok((Err(Failure::from(e)),)),
                };
                let size = data.len();
                let ctx = store.data_mut();
                let image_end = ctx.image_end;
                let result = ctx.views.map(data, buffer, image_end).map(|()| size);
                Ok((result.map_err(Failure::from),))
            })
        },
    )?;

    host.func_wrap(
        "release-view",
        |mut store: Ctx, (buffer,): (GuestBuffer,)| {
            store.data_mut().views.release(buffer.addr);
            Ok(())
        },
    )?;

    host.func_wrap(
        "submit",
        |mut store: Ctx, (module, function, args): (String, String, Vec<Arg>)| {
            let result = submit(&mut store, module, function, args);
            Ok((result.map_err(Failure::from),))
        },
    )?;

    host.func_wrap_async(
        "actor-create",
        |mut store: Ctx,
         (module, class, args, name): (String, String, Vec<Arg>, Option<String>)| {
            let ctx = store.data_mut();
            let created = guest_args(ctx, args).and_then(|args| {
                let module = resolve_module(ctx, module);
                let spec = ActorSpec {
                    module,
                    class,
                    args,
                    name,
                    options: Default::default(),
                    owner: None,
                    strategy: Default::default(),
                    lifecycle: Default::default(),
                    tenant: ctx.host.tenant().clone(),
                };
                ctx.host.work()?.create_actor(spec)
            });
            // Returns once the actor is placed (its name claimed cluster-wide),
            // as a driver's create does.
            Box::new(async move {
                let result = when_placed(created).await;
                Ok((result.map_err(Failure::from),))
            })
        },
    )?;

    host.func_wrap_async("actor-lookup", |store: Ctx, (name,): (String,)| {
        let host = &store.data().host;
        let found = host
            .work()
            .map(|work| work.lookup_actor(host.tenant(), name));
        Box::new(async move {
            let result = match found {
                Ok(lookup) => lookup.await,
                Err(e) => Err(e),
            };
            Ok((result.map_err(Failure::from),))
        })
    })?;

    host.func_wrap(
        "actor-call",
        |mut store: Ctx, (actor, method, args): (u64, String, Vec<Arg>)| {
            let ctx = store.data_mut();
            let result = guest_args(ctx, args).and_then(|args| {
                let id = ctx.host.objects().new_object_id();
                ctx.host.made(id);
                let caller = ctx.host.tenant().clone();
                ctx.host
                    .work()?
                    .call_actor(&caller, actor, id, method, args)?;
                ctx.owned.push(id);
                ctx.allowed.insert(id);
                Ok(id)
            });
            Ok((result.map_err(Failure::from),))
        },
    )?;

    host.func_wrap("node-id", |store: Ctx, (): ()| {
        Ok((store.data().host.node_id().to_string(),))
    })?;
    super::arrays::add_to_linker(&mut host)
}

fn guest_args(ctx: &GuestCtx, args: Vec<Arg>) -> ReefResult<Vec<ArgSpec>> {
    args.into_iter()
        .map(|a| match a {
            Arg::Inline(bytes) => Ok(ArgSpec::Inline(Bytes::from(bytes))),
            Arg::Object(r) if ctx.allowed.contains(&r.id) => Ok(ArgSpec::Object(r.id)),
            Arg::Object(r) => Err(ReefError::new(
                ErrorCode::UnknownObject,
                format!("object {:#x} was not given to this task", r.id),
            )),
        })
        .collect()
}

/// "" names the calling module.
fn resolve_module(ctx: &GuestCtx, module: String) -> String {
    if module.is_empty() {
        ctx.module_hash.clone()
    } else {
        module
    }
}

fn submit(
    store: &mut Ctx,
    module: String,
    function: String,
    args: Vec<Arg>,
) -> ReefResult<ObjectId> {
    let ctx = store.data_mut();
    let args = guest_args(ctx, args)?;
    let module = resolve_module(ctx, module);
    let return_id = ctx.host.objects().new_object_id();
    ctx.host.made(return_id);
    ctx.host.work()?.submit(TaskSpec {
        return_id,
        module,
        function,
        args,
        options: Default::default(),
        owner: None,
        strategy: Default::default(),
        hops: 0,
        tenant: ctx.host.tenant().clone(),
    })?;
    ctx.owned.push(return_id);
    ctx.allowed.insert(return_id);
    Ok(return_id)
}
