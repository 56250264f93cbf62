//! `GuestBuffer`: a `list<u8>` parameter lifted as a *location* in guest
//! memory (offset, length, host address) instead of as bytes.
//!
//! Views need the guest-side offset of the buffer (to keep mappings off the
//! module's data segments, see `docs/architecture.md#zero-copy-views`), which `WasmList` does not
//! expose. Lifting delegates to `WasmList<u8>`, so bounds are checked exactly
//! as for any list.

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift, WasmList};

#[derive(Clone, Copy, Debug)]
pub struct GuestBuffer {
    /// Offset of the buffer in the guest's linear memory.
    pub offset: usize,
    pub len: usize,
    /// Host address of the buffer.
    pub addr: usize,
}

// SAFETY: same ABI and type check as `list<u8>`, which this type forwards to.
unsafe impl ComponentType for GuestBuffer {
    type Lower = <WasmList<u8> as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <WasmList<u8> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <WasmList<u8> as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lifting is `WasmList<u8>`'s (which validates the pointer and length
// against the memory); we only read the pointer it validated.
unsafe impl Lift for GuestBuffer {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let list = WasmList::<u8>::linear_lift_from_flat(cx, ty, src)?;
        let offset = src[0].get_u32() as usize;
        Ok(Self::at(cx, offset, list.len()))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let list = WasmList::<u8>::linear_lift_from_memory(cx, ty, bytes)?;
        let offset = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        Ok(Self::at(cx, offset, list.len()))
    }
}

impl GuestBuffer {
    fn at(cx: &LiftContext<'_>, offset: usize, len: usize) -> Self {
        GuestBuffer {
            offset,
            len,
            addr: cx.memory().as_ptr() as usize + offset,
        }
    }
}
