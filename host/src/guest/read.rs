//! Reading an object a guest was given, shared by the host API's `get` and
//! the f64 array helpers.

use wasmtime::StoreContextMut;

use super::ctx::GuestCtx;
use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::store::{Data, ObjectId};

/// Waits for an object the guest may read. While it waits, the guest's CPU
/// is given back to the scheduler.
pub(super) async fn read_object(
    mut store: StoreContextMut<'_, GuestCtx>,
    id: ObjectId,
) -> ReefResult<std::sync::Arc<Data>> {
    let ctx = store.data_mut();
    if !ctx.allowed.contains(&id) {
        return Err(ReefError::new(
            ErrorCode::UnknownObject,
            format!("object {id:#x} was not given to this task"),
        ));
    }
    let objects = ctx.host.objects().clone();
    if objects.store().is_ready(id)? {
        return objects.fetch(id).await;
    }
    let held = ctx
        .permit
        .take()
        .map(|p| (p.pool().clone(), p.share(), p.resources().clone()));
    let result = objects.fetch(id).await;
    if let Some((pool, share, resources)) = held {
        let permit = pool.acquire(&share, &resources).await;
        store.data_mut().permit = Some(permit);
    }
    result
}
