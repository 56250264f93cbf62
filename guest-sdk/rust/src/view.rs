//! Zero-copy views of objects: the host maps an object's pages over a guest buffer.

use crate::error::{Error, Result};
use crate::host;
use crate::raw;
use crate::types::{ObjectId, ObjectRef};
use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;

/// A read-mostly, zero-copy view of an object.
///
/// The buffer is 64 KiB-aligned (2 MiB-aligned for objects of 8 MiB or more, so the host
/// can map them in 2 MiB pages) and as long as the object rounded up to 64 KiB. Reads
/// touch the store's pages directly; writes (through [`View::as_bytes_mut`]) land in
/// private copies and never change the object. Dropping the view unmaps it.
pub struct View {
    /// Start of the buffer (dangling when `cap == 0`).
    ptr: NonNull<u8>,
    /// Length of the buffer (a multiple of 64 KiB; 0 for an empty object).
    cap: usize,
    /// Size of the object.
    len: usize,
    id: ObjectId,
}

/// Element types a view can be read as: plain numbers, valid for every bit pattern.
pub trait Element: Copy + private::Sealed {}

mod private {
    pub trait Sealed {}
}

macro_rules! elements {
    ($($t:ty),*) => {
        $(impl private::Sealed for $t {}
          impl Element for $t {})*
    };
}

elements!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

impl View {
    /// Maps `object` (whose `size` must be right, as in an argument or a `put` result).
    pub fn map(object: ObjectRef) -> Result<View> {
        if object.size == 0 {
            return Ok(View {
                ptr: NonNull::dangling(),
                cap: 0,
                len: 0,
                id: object.id,
            });
        }
        let too_large = || Error::new(format!("object {} is too large for a view", object.id));
        let cap = raw::view_capacity(object.size).ok_or_else(too_large)?;
        let len = usize::try_from(object.size).map_err(|_| too_large())?;
        let layout =
            Layout::from_size_align(cap, raw::view_align(object.size)).map_err(|_| too_large())?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc::alloc(layout) }).ok_or_else(|| {
            Error::new(format!(
                "out of memory: cannot allocate a {}-byte view buffer for object {}",
                cap, object.id
            ))
        })?;
        // SAFETY: the buffer was just allocated and nothing else refers to it.
        match unsafe { raw::map_view(object.id, ptr.as_ptr(), cap) } {
            Ok(size) if size == object.size => Ok(View {
                ptr,
                cap,
                len,
                id: object.id,
            }),
            Ok(size) => {
                // SAFETY: the mapping succeeded and no reference into it exists; undo it
                // before freeing the buffer.
                unsafe {
                    raw::release_view(ptr.as_ptr(), cap);
                    alloc::dealloc(ptr.as_ptr(), layout);
                }
                Err(Error::new(format!(
                    "object {} has {} bytes, expected {}",
                    object.id, size, object.size
                )))
            }
            Err(e) => {
                // SAFETY: nothing was mapped; the buffer is ours to free.
                unsafe { alloc::dealloc(ptr.as_ptr(), layout) };
                Err(e.context(format_args!("map-view of object {}", object.id)))
            }
        }
    }

    /// Maps an object known only by id (asks the host for its size first).
    pub fn map_id(id: ObjectId) -> Result<View> {
        View::map(host::object(id)?)
    }

    /// The id of the viewed object.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The object's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The object's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `cap >= len` bytes (or dangling with len 0); the
        // host mapped the object there and it stays mapped while `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The object's bytes, writable. Writes go to private pages: the stored object never changes.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_bytes`; `&mut self` makes the borrow exclusive and the
        // mapping is private and writable.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The object as a slice of little-endian `T`s; an error unless its size is a multiple of `T`'s.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        let size = std::mem::size_of::<T>();
        if self.len % size != 0 {
            return Err(Error::new(format!(
                "object {} has {} bytes, not a multiple of {}",
                self.id, self.len, size
            )));
        }
        if self.len == 0 {
            return Ok(&[]);
        }
        // SAFETY: the buffer is 64 KiB-aligned (so aligned for any `T`), holds `len`
        // initialized bytes, and `T` is a plain number valid for any bit pattern. wasm32
        // is little-endian, so the in-memory order is the object's.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const T, self.len / size) })
    }

    /// The object as little-endian `f64`s.
    pub fn as_f64s(&self) -> Result<&[f64]> {
        self.as_slice()
    }

    /// The object as little-endian `f32`s.
    pub fn as_f32s(&self) -> Result<&[f32]> {
        self.as_slice()
    }

    /// The object as little-endian `u64`s.
    pub fn as_u64s(&self) -> Result<&[u64]> {
        self.as_slice()
    }

    /// The object as little-endian `i64`s.
    pub fn as_i64s(&self) -> Result<&[i64]> {
        self.as_slice()
    }

    /// The object as little-endian `u32`s.
    pub fn as_u32s(&self) -> Result<&[u32]> {
        self.as_slice()
    }

    /// The object as little-endian `i32`s.
    pub fn as_i32s(&self) -> Result<&[i32]> {
        self.as_slice()
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.cap == 0 {
            return;
        }
        // SAFETY: the buffer is mapped and no borrow of it outlives `self`; after
        // release-view it holds fresh zeroed pages and can be freed with the layout it
        // was allocated with (the same size and alignment as in `map`).
        unsafe {
            raw::release_view(self.ptr.as_ptr(), self.cap);
            alloc::dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(self.cap, raw::view_align(self.len as u64)),
            );
        }
    }
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("id", &self.id)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_objects_need_no_host() {
        let v = View::map(ObjectRef::new(9, 0)).unwrap();
        assert!(v.is_empty());
        assert_eq!(v.as_bytes(), &[] as &[u8]);
        assert_eq!(v.as_f64s().unwrap(), &[] as &[f64]);
    }

    #[test]
    fn capacity_rounds_to_64k() {
        assert_eq!(raw::view_capacity(0), Some(0));
        assert_eq!(raw::view_capacity(1), Some(65536));
        assert_eq!(raw::view_capacity(65536), Some(65536));
        assert_eq!(raw::view_capacity(65537), Some(131072));
        assert_eq!(raw::view_capacity(u64::MAX), None);
    }
}
