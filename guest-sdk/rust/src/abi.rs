//! Canonical-ABI memory layouts of the `reef:runtime` types on wasm32 (little-endian,
//! 32-bit pointers), and the allocator behind `cabi_realloc`.
//!
//! Layouts (offsets in bytes):
//! - `string` / `list<T>`: ptr u32 @0, len u32 @4 (size 8, align 4)
//! - `arg`: disc u8 @0 (0 inline, 1 object); inline ptr @8, len @12; object id u64 @8, size u64 @16 (size 24, align 8)
//! - `output`: disc u8 @0 (0 bytes, 1 object); bytes ptr @8, len @12; object id u64 @8 (size 16, align 8)
//! - `failure`: code u8 @0, message string @4 (size 12, align 4)
//! - `result<output, failure>`: disc @0; ok output @8; err failure @8 (size 24, align 8)
//! - `result<_, failure>` and `result<list<u8>, failure>`: disc @0; payload @4 (size 16, align 4)
//! - `result<u64, failure>`: disc @0; ok u64 @8; err failure @8 (size 24, align 8)
//! - `result<object-ref, failure>`: disc @0; ok id @8, size @16; err failure @8 (size 24, align 8)
//! - `module-info`: sdk string @0, tasks list @8, actors list @16 (size 24, align 4)
//! - `actor-class`: name string @0, methods list @8 (size 16, align 4)
//!
//! `tests/golden/abi-layouts.json` (computed from `wit/` by the host's tests) holds the
//! same numbers; the tests below check these constants against it.

use crate::error::{Code, Error, Result};
use crate::types::{Arg, ObjectRef, Output};
use std::alloc::{self, Layout};
use std::any::Any;

/// Size of one `arg` in a `list<arg>`.
pub(crate) const ARG_SIZE: usize = 24;
/// Alignment of `arg`.
pub(crate) const ARG_ALIGN: usize = 8;
/// Payload offset of `output` (and of `arg`).
const OUTPUT_PAYLOAD: usize = 8;
/// Offset of a `failure`'s message (its code is a u8 at 0).
const FAILURE_MESSAGE: usize = 4;
/// Payload offset of a result whose `ok` holds a u64 (`u64`, `object-ref`, `output`).
const WIDE_PAYLOAD: usize = 8;
/// Payload offset of `result<_, failure>` and `result<list<u8>, failure>`.
const NARROW_PAYLOAD: usize = 4;
/// Size of the return area: the largest result in the interface.
const RET_AREA_SIZE: usize = 24;

/// Memory that must outlive an export's return until its `cabi_post_*` call.
pub(crate) type KeepAlive = Option<Box<dyn Any>>;

/// A return area large and aligned enough for every result in the interface.
#[repr(C, align(8))]
pub(crate) struct RetArea(pub [u8; RET_AREA_SIZE]);

impl RetArea {
    /// A zeroed area.
    pub(crate) const fn new() -> RetArea {
        RetArea([0; RET_AREA_SIZE])
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

    /// Takes the `failure` the host wrote at `off`.
    ///
    /// # Safety
    /// A host import must have written a `failure` at `off` (its message is ours to free).
    unsafe fn take_failure(&self, off: usize) -> Error {
        // A code this SDK does not know (a newer host) still fails the call.
        let code = Code::from_discriminant(self.0[off]).unwrap_or(Code::Internal);
        let msg = off + FAILURE_MESSAGE;
        // SAFETY: the message was allocated for us by the host.
        let message = unsafe { take_string(self.u32_at(msg), self.u32_at(msg + 4)) };
        Error::with_code(code, message)
    }

    /// Writes `e` as a `failure` at `off`; returns its message, which must stay alive.
    fn put_failure(&mut self, off: usize, e: Error) -> KeepAlive {
        self.0[off] = e.code() as u8;
        let msg = e.into_message();
        self.put_str(off + FAILURE_MESSAGE, msg.as_ptr(), msg.len());
        Some(Box::new(msg))
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

/// Reads a `result<u64, failure>` an import wrote.
///
/// # Safety
/// `ret` must have been filled by a host import returning `result<u64, failure>`.
pub(crate) unsafe fn lift_result_u64(ret: &RetArea) -> Result<u64> {
    if ret.0[0] == 0 {
        Ok(ret.u64_at(WIDE_PAYLOAD))
    } else {
        // SAFETY: forwarded contract: the host wrote the failure there.
        Err(unsafe { ret.take_failure(WIDE_PAYLOAD) })
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

/// Reads a `result<object-ref, failure>` an import wrote.
///
/// # Safety
/// `ret` must have been filled by a host import returning `result<object-ref, failure>`.
pub(crate) unsafe fn lift_result_object_ref(ret: &RetArea) -> Result<ObjectRef> {
    if ret.0[0] == 0 {
        Ok(ObjectRef::new(
            ret.u64_at(WIDE_PAYLOAD),
            ret.u64_at(WIDE_PAYLOAD + 8),
        ))
    } else {
        // SAFETY: forwarded contract: the host wrote the failure there.
        Err(unsafe { ret.take_failure(WIDE_PAYLOAD) })
    }
}

/// Reads a `result<list<u8>, failure>` an import wrote.
///
/// # Safety
/// `ret` must have been filled by a host import returning `result<list<u8>, failure>`.
pub(crate) unsafe fn lift_result_bytes(ret: &RetArea) -> Result<Vec<u8>> {
    if ret.0[0] == 0 {
        let (ptr, len) = (ret.u32_at(NARROW_PAYLOAD), ret.u32_at(NARROW_PAYLOAD + 4));
        // SAFETY: the list was allocated for us by the host.
        Ok(unsafe { take_bytes(ptr, len) })
    } else {
        // SAFETY: forwarded contract: the host wrote the failure there.
        Err(unsafe { ret.take_failure(NARROW_PAYLOAD) })
    }
}

/// Writes a `result<output, failure>` for an export; returns what must stay alive.
pub(crate) fn lower_result_output(ret: &mut RetArea, result: Result<Output>) -> KeepAlive {
    *ret = RetArea::new();
    match result {
        Ok(Output::Bytes(bytes)) => {
            ret.put_str(WIDE_PAYLOAD + OUTPUT_PAYLOAD, bytes.as_ptr(), bytes.len());
            Some(Box::new(bytes))
        }
        Ok(Output::Object(id)) => {
            ret.0[WIDE_PAYLOAD] = 1;
            ret.put_u64(WIDE_PAYLOAD + OUTPUT_PAYLOAD, id);
            None
        }
        Err(e) => {
            ret.0[0] = 1;
            ret.put_failure(WIDE_PAYLOAD, e)
        }
    }
}

/// Writes a `result<_, failure>` for an export; returns what must stay alive.
pub(crate) fn lower_result_unit(ret: &mut RetArea, result: Result<()>) -> KeepAlive {
    *ret = RetArea::new();
    match result {
        Ok(()) => None,
        Err(e) => {
            ret.0[0] = 1;
            ret.put_failure(NARROW_PAYLOAD, e)
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
        assert_eq!((ret.0[0], ret.0[8], ret.u32_at(16)), (1, 7, 4));
    }

    #[test]
    fn result_unit_layout() {
        let mut ret = RetArea::new();
        assert!(lower_result_unit(&mut ret, Ok(())).is_none());
        assert_eq!(ret.0[0], 0);
        let e = Error::with_code(Code::UnknownFunction, "bad class");
        let _keep = lower_result_unit(&mut ret, Err(e));
        assert_eq!((ret.0[0], ret.0[4], ret.u32_at(12)), (1, 2, 9));
    }

    #[test]
    fn failures_lift_with_their_code() {
        let mut ret = RetArea::new();
        ret.0[0] = 1;
        ret.0[WIDE_PAYLOAD] = Code::UnknownObject as u8;
        // An empty message: nothing for take_failure to free.
        ret.put_str(WIDE_PAYLOAD + FAILURE_MESSAGE, std::ptr::null(), 0);
        // SAFETY: the area holds a failure with an empty message.
        let e = unsafe { lift_result_u64(&ret) }.unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::UnknownObject, ""));
        ret.0[NARROW_PAYLOAD] = 200;
        // SAFETY: as above (the message at 8..16 is zero: empty).
        let e = unsafe { lift_result_bytes(&ret) }.unwrap_err();
        assert_eq!(e.code(), Code::Internal);
    }

    /// `tests/golden/abi-layouts.json`: one `"name": value` pair per line.
    fn golden() -> std::collections::HashMap<String, String> {
        include_str!("../../../tests/golden/abi-layouts.json")
            .lines()
            .filter_map(|line| {
                let (k, v) = line.trim().trim_end_matches(',').split_once(": ")?;
                Some((
                    k.trim_matches('"').to_string(),
                    v.trim_matches('"').to_string(),
                ))
            })
            .collect()
    }

    #[test]
    fn constants_match_the_golden_layouts() {
        let g = golden();
        let n = |k: &str| -> usize {
            g.get(k)
                .unwrap_or_else(|| panic!("golden file has no {}", k))
                .parse()
                .unwrap()
        };
        assert_eq!(g["package"], "reef:runtime@0.2.0");
        assert_eq!((n("size.arg"), n("align.arg")), (ARG_SIZE, ARG_ALIGN));
        assert_eq!(
            (n("payload.arg"), n("payload.output")),
            (OUTPUT_PAYLOAD, OUTPUT_PAYLOAD)
        );
        assert_eq!((n("case.arg.inline"), n("case.arg.object")), (0, 1));
        assert_eq!((n("case.output.bytes"), n("case.output.object")), (0, 1));
        assert_eq!(
            (n("offset.object-ref.id"), n("offset.object-ref.size")),
            (0, 8)
        );
        let failure = (n("offset.failure.code"), n("offset.failure.message"));
        assert_eq!(failure, (0, FAILURE_MESSAGE));
        assert_eq!(n("size.code"), 1);
        let info = (
            "offset.module-info.sdk",
            "offset.module-info.tasks",
            "offset.module-info.actors",
        );
        assert_eq!((n(info.0), n(info.1), n(info.2)), (0, 8, 16));
        let class = (
            n("offset.actor-class.name"),
            n("offset.actor-class.methods"),
        );
        assert_eq!(class, (0, 8));
        let wide = [
            "put",
            "object-size",
            "map-view",
            "submit",
            "actor-create",
            "actor-lookup",
            "actor-call",
        ];
        for f in wide {
            assert_eq!(
                n(&format!("payload.host.{}.result", f)),
                WIDE_PAYLOAD,
                "{}",
                f
            );
        }
        assert_eq!(n("payload.host.get.result"), NARROW_PAYLOAD);
        assert_eq!(n("payload.guest.run-task.result"), WIDE_PAYLOAD);
        assert_eq!(n("payload.guest.actor-call.result"), WIDE_PAYLOAD);
        assert_eq!(n("payload.guest.actor-init.result"), NARROW_PAYLOAD);
        for (k, v) in &g {
            let v: usize = v.parse().unwrap_or(0);
            if k.starts_with("size.") && k.ends_with(".result") {
                assert!(v <= RET_AREA_SIZE, "{}", k);
            }
            if k.starts_with("align.") && k.ends_with(".result") {
                assert!(v <= std::mem::align_of::<RetArea>(), "{}", k);
            }
        }
        for (i, (name, code)) in crate::error::CODES.iter().enumerate() {
            assert_eq!(n(&format!("case.code.{}", name)), i);
            assert_eq!(*code as usize, i);
        }
        let codes = g.keys().filter(|k| k.starts_with("case.code."));
        assert_eq!(codes.count(), crate::error::CODES.len());
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
