//! Canonical-ABI memory layouts of the `reef:runtime` types on wasm32 (little-endian,
//! 32-bit pointers), and the allocator behind `cabi_realloc`.
//!
//! Layouts (offsets in bytes):
//! - `string` / `list<T>`: ptr u32 @0, len u32 @4 (size 8, align 4)
//! - `arg`: disc u8 @0 (0 inline, 1 object); inline ptr @8, len @12; object id u64 @8, size u64 @16 (size 24, align 8)
//! - `output`: disc u8 @0 (0 bytes, 1 object); bytes ptr @8, len @12; object id u64 @8 (size 16, align 8)
//! - `result<output, string>`: disc @0; ok output @8; err string @8 (size 24, align 8)
//! - `result<_, string>` and `result<list<u8>, string>`: disc @0; payload @4 (size 12, align 4)
//! - `result<u64, string>`: disc @0; ok u64 @8; err string @8 (size 16, align 8)
//! - `result<object-ref, string>`: disc @0; ok id @8, size @16; err string @8 (size 24, align 8)
//! - `module-info`: sdk string @0, tasks list @8, actors list @16 (size 24, align 4)
//! - `actor-class`: name string @0, methods list @8 (size 16, align 4)

use crate::error::{Error, Result};
use crate::types::{Arg, ObjectRef, Output};
use std::alloc::{self, Layout};
use std::any::Any;

/// Size of one `arg` in a `list<arg>`.
pub(crate) const ARG_SIZE: usize = 24;
/// Alignment of `arg`.
pub(crate) const ARG_ALIGN: usize = 8;

/// Memory that must outlive an export's return until its `cabi_post_*` call.
pub(crate) type KeepAlive = Option<Box<dyn Any>>;

/// A return area large and aligned enough for every result in the interface.
#[repr(C, align(8))]
pub(crate) struct RetArea(pub [u8; 24]);

impl RetArea {
    /// A zeroed area.
    pub(crate) const fn new() -> RetArea {
        RetArea([0; 24])
    }

    /// The area's address, passed to imports as their `ret` parameter.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }

    fn u32_at(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_le_bytes(b)
    }

    fn u64_at(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[off..off + 8]);
        u64::from_le_bytes(b)
    }

    fn put_u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn put_u64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn put_str(&mut self, off: usize, ptr: *const u8, len: usize) {
        self.put_u32(off, addr(ptr));
        self.put_u32(off + 4, len as u32);
    }
}

/// A guest pointer as the `u32` the canonical ABI stores.
fn addr<T>(ptr: *const T) -> u32 {
    ptr as usize as u32
}

/// `cabi_realloc`: how the host allocates guest memory for strings and lists it passes in.
///
/// # Safety
/// `old_ptr`/`old_size`/`align` must describe a live allocation made by this function
/// (or `old_size` must be 0); `align` must be a power of two.
pub(crate) unsafe fn realloc(
    old_ptr: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    if new_size == 0 {
        if old_size != 0 {
            // SAFETY: the caller guarantees (old_ptr, old_size, align) is a live allocation.
            unsafe { alloc::dealloc(old_ptr, Layout::from_size_align_unchecked(old_size, align)) };
        }
        // A non-null, aligned address for an empty allocation; nothing to free later.
        return align as *mut u8;
    }
    let layout = match Layout::from_size_align(new_size, align) {
        Ok(layout) => layout,
        Err(_) => std::process::abort(),
    };
    let ptr = if old_size == 0 {
        // SAFETY: `layout` has a non-zero size.
        unsafe { alloc::alloc(layout) }
    } else {
        // SAFETY: the caller guarantees the old allocation; new_size is non-zero.
        unsafe {
            alloc::realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_size, align),
                new_size,
            )
        }
    };
    if ptr.is_null() {
        alloc::handle_alloc_error(layout);
    }
    ptr
}

/// Takes ownership of a byte list the host allocated through `cabi_realloc` (align 1).
///
/// # Safety
/// `(ptr, len)` must be a list the host just handed over, allocated with align 1.
pub(crate) unsafe fn take_bytes(ptr: u32, len: u32) -> Vec<u8> {
    if len == 0 {
        return Vec::new();
    }
    let len = len as usize;
    // SAFETY: the allocation was made by `realloc` above with Layout(len, 1), which is
    // exactly what a Vec<u8> of capacity `len` owns; the host no longer uses it.
    unsafe { Vec::from_raw_parts(ptr as usize as *mut u8, len, len) }
}

/// Takes ownership of a string the host allocated (invalid UTF-8 is replaced, never trusted).
///
/// # Safety
/// As for [`take_bytes`].
pub(crate) unsafe fn take_string(ptr: u32, len: u32) -> String {
    // SAFETY: forwarded contract.
    let bytes = unsafe { take_bytes(ptr, len) };
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Takes ownership of a `list<arg>` passed into an export and frees its array.
///
/// # Safety
/// `(ptr, len)` must be a `list<arg>` the host just allocated through `cabi_realloc`.
pub(crate) unsafe fn take_args(ptr: u32, len: u32) -> Vec<Arg> {
    let len = len as usize;
    let base = ptr as usize as *const u8;
    let mut args = Vec::with_capacity(len);
    for i in 0..len {
        // SAFETY: element i lies inside the host-written array; the array is 8-aligned
        // (the host allocated it with align 8), so each [u64; 3] read is aligned.
        let words = unsafe { (base.add(i * ARG_SIZE) as *const [u64; 3]).read() };
        let arg = if words[0] as u8 == 0 {
            // SAFETY: an inline arg's bytes were allocated for us by the host.
            Arg::Inline(unsafe { take_bytes(words[1] as u32, (words[1] >> 32) as u32) })
        } else {
            Arg::Object(ObjectRef::new(words[1], words[2]))
        };
        args.push(arg);
    }
    if len > 0 {
        // SAFETY: the host allocated the array with Layout(24 * len, 8) via `realloc`.
        unsafe {
            alloc::dealloc(
                ptr as usize as *mut u8,
                Layout::from_size_align_unchecked(len * ARG_SIZE, ARG_ALIGN),
            )
        };
    }
    args
}

/// Lays out `args` as a `list<arg>` array for an import call. Inline bytes are borrowed
/// from `args`, which must outlive the call.
pub(crate) fn lower_args(args: &[Arg]) -> Vec<[u64; 3]> {
    // Each `[u64; 3]` is one 24-byte, 8-aligned `arg`. Little-endian words: the low
    // byte of word 0 is the discriminant; word 1 holds ptr (low half) and len (high
    // half) of an inline list, or the object id; word 2 the object size.
    args.iter()
        .map(|arg| match arg {
            Arg::Inline(bytes) => [
                0,
                addr(bytes.as_ptr()) as u64 | (bytes.len() as u32 as u64) << 32,
                0,
            ],
            Arg::Object(o) => [1, o.id, o.size],
        })
        .collect()
}

/// Reads a `result<u64, string>` an import wrote.
///
/// # Safety
/// `ret` must have been filled by a host import returning `result<u64, string>`.
pub(crate) unsafe fn lift_result_u64(ret: &RetArea) -> Result<u64> {
    if ret.0[0] == 0 {
        Ok(ret.u64_at(8))
    } else {
        // SAFETY: the err string at @8 was allocated for us by the host.
        Err(Error::new(unsafe {
            take_string(ret.u32_at(8), ret.u32_at(12))
        }))
    }
}

/// Reads a `string` an import wrote.
///
/// # Safety
/// `ret` must have been filled by a host import returning `string`.
pub(crate) unsafe fn lift_string(ret: &RetArea) -> String {
    // SAFETY: the string at @0 was allocated for us by the host.
    unsafe { take_string(ret.u32_at(0), ret.u32_at(4)) }
}

/// Reads a `result<object-ref, string>` an import wrote.
///
/// # Safety
/// `ret` must have been filled by a host import returning `result<object-ref, string>`.
pub(crate) unsafe fn lift_result_object_ref(ret: &RetArea) -> Result<ObjectRef> {
    if ret.0[0] == 0 {
        Ok(ObjectRef::new(ret.u64_at(8), ret.u64_at(16)))
    } else {
        // SAFETY: the err string at @8 was allocated for us by the host.
        Err(Error::new(unsafe {
            take_string(ret.u32_at(8), ret.u32_at(12))
        }))
    }
}

/// Reads a `result<list<u8>, string>` an import wrote.
///
/// # Safety
/// `ret` must have been filled by a host import returning `result<list<u8>, string>`.
pub(crate) unsafe fn lift_result_bytes(ret: &RetArea) -> Result<Vec<u8>> {
    let (ptr, len) = (ret.u32_at(4), ret.u32_at(8));
    if ret.0[0] == 0 {
        // SAFETY: the list was allocated for us by the host.
        Ok(unsafe { take_bytes(ptr, len) })
    } else {
        // SAFETY: the string was allocated for us by the host.
        Err(Error::new(unsafe { take_string(ptr, len) }))
    }
}

/// Writes a `result<output, string>` for an export; returns what must stay alive.
pub(crate) fn lower_result_output(ret: &mut RetArea, result: Result<Output>) -> KeepAlive {
    *ret = RetArea::new();
    match result {
        Ok(Output::Bytes(bytes)) => {
            ret.put_str(16, bytes.as_ptr(), bytes.len());
            Some(Box::new(bytes))
        }
        Ok(Output::Object(id)) => {
            ret.0[8] = 1;
            ret.put_u64(16, id);
            None
        }
        Err(e) => {
            let msg = e.into_message();
            ret.0[0] = 1;
            ret.put_str(8, msg.as_ptr(), msg.len());
            Some(Box::new(msg))
        }
    }
}

/// Writes a `result<_, string>` for an export; returns what must stay alive.
pub(crate) fn lower_result_unit(ret: &mut RetArea, result: Result<()>) -> KeepAlive {
    *ret = RetArea::new();
    match result {
        Ok(()) => None,
        Err(e) => {
            let msg = e.into_message();
            ret.0[0] = 1;
            ret.put_str(4, msg.as_ptr(), msg.len());
            Some(Box::new(msg))
        }
    }
}

/// A `list<string>` of static strings: (ptr, len) pairs.
fn string_list(names: &[&'static str]) -> Vec<u32> {
    names
        .iter()
        .flat_map(|s| [addr(s.as_ptr()), s.len() as u32])
        .collect()
}

/// Writes a `module-info` record for `describe`; returns what must stay alive.
pub(crate) fn lower_module_info(
    ret: &mut RetArea,
    sdk: &'static str,
    tasks: &[&'static str],
    actors: &[(&'static str, &'static [&'static str])],
) -> KeepAlive {
    let task_list = string_list(tasks);
    let method_lists: Vec<Vec<u32>> = actors.iter().map(|(_, m)| string_list(m)).collect();
    let classes: Vec<u32> = actors
        .iter()
        .zip(&method_lists)
        .flat_map(|((name, methods), list)| {
            [
                addr(name.as_ptr()),
                name.len() as u32,
                addr(list.as_ptr()),
                methods.len() as u32,
            ]
        })
        .collect();
    *ret = RetArea::new();
    ret.put_str(0, sdk.as_ptr(), sdk.len());
    ret.put_u32(8, addr(task_list.as_ptr()));
    ret.put_u32(12, tasks.len() as u32);
    ret.put_u32(16, addr(classes.as_ptr()));
    ret.put_u32(20, actors.len() as u32);
    Some(Box::new((task_list, method_lists, classes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_args_lower_to_disc_id_size() {
        let args = [Arg::Object(ObjectRef::new(0x1122, 0x3344))];
        assert_eq!(lower_args(&args), vec![[1, 0x1122, 0x3344]]);
    }

    #[test]
    fn result_output_layout() {
        let mut ret = RetArea::new();
        let keep = lower_result_output(&mut ret, Ok(Output::Object(0xabcd)));
        assert!(keep.is_none());
        assert_eq!(ret.0[0], 0);
        assert_eq!(ret.0[8], 1);
        assert_eq!(ret.u64_at(16), 0xabcd);

        let keep = lower_result_output(&mut ret, Ok(Output::Bytes(vec![1, 2, 3])));
        assert!(keep.is_some());
        assert_eq!((ret.0[0], ret.0[8], ret.u32_at(20)), (0, 0, 3));

        let _keep = lower_result_output(&mut ret, Err(Error::new("nope")));
        assert_eq!((ret.0[0], ret.u32_at(12)), (1, 4));
    }

    #[test]
    fn result_unit_layout() {
        let mut ret = RetArea::new();
        assert!(lower_result_unit(&mut ret, Ok(())).is_none());
        assert_eq!(ret.0[0], 0);
        let _keep = lower_result_unit(&mut ret, Err(Error::new("bad class")));
        assert_eq!((ret.0[0], ret.u32_at(8)), (1, 9));
    }

    #[test]
    fn module_info_lengths() {
        let mut ret = RetArea::new();
        let _keep = lower_module_info(&mut ret, "sdk/1", &["a", "b"], &[("C", &["m"])]);
        assert_eq!(ret.u32_at(4), 5);
        assert_eq!(ret.u32_at(12), 2);
        assert_eq!(ret.u32_at(20), 1);
    }
}
