//! Misbehaving guest: one task per failure the host must contain.
//!
//! Every task's expected outcome is in its doc comment; none of them may harm the
//! node, other tasks, or the object store.
#![warn(unsafe_op_in_unsafe_fn)]

use reef_guest::prelude::*;
use reef_guest::raw::{self, VIEW_ALIGN};
use std::alloc::{self, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

/// `trap()`: executes `unreachable` → the task fails with a trap.
fn trap(_args: &Args) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// `panic()`: `panic!("boom 42")` → the host receives "boom 42 (at src/lib.rs:L:C)"
/// through `report-panic`, then the task traps.
fn panic(_args: &Args) -> Result<()> {
    panic!("boom {}", 42)
}

/// `loop_forever()`: never returns → the host must interrupt it (deadline/epoch/fuel).
fn loop_forever(_args: &Args) -> Result<u64> {
    let mut counter = 0u64;
    loop {
        // SAFETY: `counter` is a live local; volatile keeps the loop from being optimized out.
        unsafe { std::ptr::write_volatile(&mut counter, counter.wrapping_add(1)) };
    }
}

/// `eat_memory()`: keeps growing a Vec by 16 MiB chunks (each written, so resident)
/// until an allocation fails, then panics with "eat_memory: allocation failed after N MiB"
/// → the task fails; the memory limit of the instance holds.
fn eat_memory(_args: &Args) -> Result<u64> {
    const CHUNK: usize = 16 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(CHUNK).is_err() {
            let mib = chunks.len() * (CHUNK >> 20);
            drop(chunks);
            panic!("eat_memory: allocation failed after {} MiB", mib);
        }
        chunk.resize(CHUNK, 0xA5);
        chunks.push(chunk);
    }
}

/// Recurses with a 1 KiB frame per call; volatile accesses keep every frame alive.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    // SAFETY: indexes a live local array.
    unsafe { std::ptr::write_volatile(&mut frame[(depth % 1024) as usize], depth as u8) };
    if depth == u64::MAX {
        return 0;
    }
    let below = recurse(depth + 1);
    // SAFETY: reads a live local array.
    below + unsafe { std::ptr::read_volatile(&frame[(depth % 1024) as usize]) } as u64
}

/// `stack_overflow()`: unbounded recursion → the shadow stack runs out → trap.
fn stack_overflow(_args: &Args) -> Result<u64> {
    Ok(recurse(0))
}

/// `write_view(obj: object) -> u64`: maps a view, fills it with 0xEE, returns its
/// first byte (238). The stored object must be unchanged afterwards.
fn write_view(args: &Args) -> Result<u64> {
    let mut view = args.view(0)?;
    let bytes = view.as_bytes_mut();
    if bytes.is_empty() {
        return Err("write_view needs a non-empty object".into());
    }
    for b in bytes.iter_mut() {
        *b = 0xEE;
    }
    Ok(view.as_bytes()[0] as u64)
}

/// A 64 KiB-aligned allocation of `len` bytes (freed on drop).
struct Buffer {
    ptr: *mut u8,
    layout: Layout,
}

impl Buffer {
    fn new(len: usize) -> Result<Buffer> {
        let layout = Layout::from_size_align(len.max(1), VIEW_ALIGN)
            .map_err(|e| Error::new(e.to_string()))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc(layout) };
        if ptr.is_null() {
            return Err("out of memory".into());
        }
        Ok(Buffer { ptr, layout })
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `Buffer::new` with `self.layout`.
        unsafe { alloc::dealloc(self.ptr, self.layout) }
    }
}

/// Calls map-view on a buffer we own; undoes the mapping if the host (wrongly) accepted.
///
/// # Safety
/// `ptr..ptr+len` must lie inside memory this task owns and nothing may reference it.
unsafe fn try_map(id: u64, ptr: *mut u8, len: usize) -> Result<u64> {
    // SAFETY: forwarded contract.
    let size = unsafe { raw::map_view(id, ptr, len)? };
    // SAFETY: we just mapped it; nothing references it.
    unsafe { raw::release_view(ptr, len) };
    Ok(size)
}

/// `misaligned_view(obj: object)`: map-view on a buffer 4 KiB past a 64 KiB boundary →
/// the host must return an error (the task fails with it). Returns the size if accepted.
fn misaligned_view(args: &Args) -> Result<u64> {
    let obj = args.object(0)?;
    let cap = raw::view_capacity(obj.size).ok_or("object too large")?;
    let buf = Buffer::new(cap + VIEW_ALIGN)?;
    // SAFETY: `ptr + 4096 .. + cap` lies inside `buf`, which nothing else uses.
    unsafe { try_map(obj.id, buf.ptr.add(4096), cap) }
}

/// `oob_view(obj: object)`: map-view on an aligned buffer smaller than the object's
/// rounded size (64 KiB less, or 4 KiB for small objects) → the host must return an
/// error. Returns the size if accepted.
fn oob_view(args: &Args) -> Result<u64> {
    let obj = args.object(0)?;
    let cap = raw::view_capacity(obj.size).ok_or("object too large")?;
    let small = if cap > VIEW_ALIGN {
        cap - VIEW_ALIGN
    } else {
        4096
    };
    let buf = Buffer::new(small)?;
    // SAFETY: we own `small` bytes at `buf.ptr` (the host must refuse the longer length).
    unsafe { try_map(obj.id, buf.ptr, small) }
}

/// `view_beyond_memory(obj: object)`: map-view at the highest 64 KiB boundary of the
/// 4 GiB address space, far past the end of linear memory → the host must return an error.
fn view_beyond_memory(args: &Args) -> Result<u64> {
    let obj = args.object(0)?;
    let cap = raw::view_capacity(obj.size).ok_or("object too large")?;
    let top = (u32::MAX as usize - (VIEW_ALIGN - 1)) as *mut u8;
    // SAFETY: nothing of ours is at that address (it is outside memory); the host must refuse.
    unsafe { try_map(obj.id, top, cap) }
}

/// `view_over_data(obj: object)`: map-view at address 0, over the stack and the data
/// segments → the host must return an error.
fn view_over_data(args: &Args) -> Result<u64> {
    let obj = args.object(0)?;
    let cap = raw::view_capacity(obj.size).ok_or("object too large")?;
    let zero = std::ptr::null_mut::<u8>();
    // SAFETY: deliberately wrong (the host must refuse); on a buggy host the instance is
    // corrupted, which is what the test is there to catch.
    unsafe { try_map(obj.id, zero, cap) }
}

/// `read_secret() -> u64`: allocates 1 MiB aligned to 64 KiB without mapping anything
/// and returns the sum of its bytes. Must be 0: no object data left behind by an earlier
/// instance may be visible.
fn read_secret(_args: &Args) -> Result<u64> {
    const LEN: usize = 1 << 20;
    let buf = Buffer::new(LEN)?;
    let mut sum = 0u64;
    for i in 0..LEN {
        // SAFETY: `i < LEN` lies inside the allocation; volatile so the read really happens.
        sum += unsafe { std::ptr::read_volatile(buf.ptr.add(i)) } as u64;
    }
    Ok(sum)
}

/// `read_heap(mib: u64) -> u64`: as `read_secret`, over `mib` MiB (to cover where a
/// large view, whose buffer is 2 MiB-aligned, was mapped in an earlier instance).
fn read_heap(args: &Args) -> Result<u64> {
    let len = (args.u64(0)? as usize) << 20;
    let buf = Buffer::new(len)?;
    let mut sum = 0u64;
    for i in (0..len).step_by(64) {
        // SAFETY: `i < len` lies inside the allocation; volatile so the read really happens.
        sum += unsafe { std::ptr::read_volatile(buf.ptr.add(i)) } as u64;
    }
    Ok(sum)
}

/// `print() -> nil`: writes "hello stdout" to stdout, "hello stderr" to stderr, and
/// logs "hello log" at info level.
fn print(_args: &Args) -> Result<()> {
    println!("hello stdout");
    eprintln!("hello stderr");
    reef_guest::info("hello log");
    Ok(())
}

/// `flood(mib: u64) -> u64`: logs `mib` MiB of 1 KiB lines and prints as much to
/// stdout → the node keeps at most its per-call cap of it (and says so);
/// returns the bytes written.
fn flood(args: &Args) -> Result<u64> {
    let lines = args.u64(0)? * 1024;
    let line = "x".repeat(1000);
    for i in 0..lines {
        reef_guest::info(&format!("{:08} {}", i, line));
        println!("{:08} {}", i, line);
    }
    Ok(lines * 2 * 1024)
}

/// `calls() -> u64`: how many times this instance ran `calls` (a global counter):
/// 1 in a fresh instance, more in one kept for reuse (`max_calls`).
fn calls(_args: &Args) -> Result<u64> {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    Ok(CALLS.fetch_add(1, Ordering::Relaxed) + 1)
}

/// `leak_view(obj: object) -> u64`: maps a view and leaks it (never released nor
/// freed); returns the buffer's address. The host must undo the mapping when the
/// call ends, so that a later call of the same instance (`read_at`) sees zeros.
fn leak_view(args: &Args) -> Result<u64> {
    let view = args.view(0)?;
    if touch_sum(view.as_bytes()) == 0 {
        return Err("leak_view needs an object with non-zero bytes".into());
    }
    let addr = view.as_bytes().as_ptr() as u64;
    std::mem::forget(view);
    Ok(addr)
}

/// `read_at(addr: u64, len: u64) -> u64`: the sum of the bytes at `addr..addr+len`
/// of this instance's memory (a buffer `leak_view` left allocated).
fn read_at(args: &Args) -> Result<u64> {
    let (addr, len) = (args.u64(0)? as usize, args.u64(1)? as usize);
    let mut sum = 0u64;
    for i in 0..len {
        // SAFETY: the test passes a range `leak_view` leaked: allocated, never freed;
        // volatile so the read really happens.
        sum += unsafe { std::ptr::read_volatile((addr + i) as *const u8) } as u64;
    }
    Ok(sum)
}

fn touch_sum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| b as u64).sum()
}

/// Actor `Talker()`: `say(text: str) -> nil` logs and prints `text` (a log
/// that grows call by call, for following).
struct Talker;

impl Actor for Talker {
    const METHODS: &'static [&'static str] = &["say"];

    fn new(_args: &Args) -> Result<Self> {
        println!("talker ready");
        Ok(Talker)
    }

    fn call(&mut self, method: &str, args: &Args) -> Result<Output> {
        match method {
            "say" => {
                let text = args.string(0)?;
                reef_guest::info(&text);
                println!("said {}", text);
                Ok(().into())
            }
            _ => Err(format!("unknown method {}", method).into()),
        }
    }
}

/// `fail(message: str = "failed on purpose")`: returns an error (no trap).
fn fail(args: &Args) -> Result<()> {
    let message = if args.is_nil(0) {
        "failed on purpose".to_string()
    } else {
        args.string(0)?
    };
    Err(Error::new(message))
}

/// `steal(id: u64) -> u64`: reads an object by a raw id it was not given, first by
/// copy, then through a view → the host must refuse both (UNKNOWN_OBJECT); returns
/// the number of bytes it managed to read.
fn steal(args: &Args) -> Result<u64> {
    let id = args.u64(0)?;
    let copied = reef_guest::get(id)?;
    let view = View::map_id(id)?;
    Ok((copied.len() + view.len()) as u64)
}

/// `sandbox_probe() -> str`: tries the filesystem, the environment, the
/// arguments and the network; returns one word per attempt (`denied` or
/// what it got). A node grants none of them.
fn sandbox_probe(_args: &Args) -> Result<String> {
    let file = match std::fs::read("/etc/passwd") {
        Ok(b) => format!("read {} bytes", b.len()),
        Err(_) => "denied".to_string(),
    };
    let dir = match std::fs::read_dir(".") {
        Ok(_) => "listed".to_string(),
        Err(_) => "denied".to_string(),
    };
    let env = match std::env::vars().count() {
        0 => "denied".to_string(),
        n => format!("{} variables", n),
    };
    let argv = match std::env::args().count() {
        0 => "denied".to_string(),
        n => format!("{} arguments", n),
    };
    let net = match std::net::TcpStream::connect("127.0.0.1:22") {
        Ok(_) => "connected".to_string(),
        Err(_) => "denied".to_string(),
    };
    Ok(format!(
        "file={} dir={} env={} args={} net={}",
        file, dir, env, argv, net
    ))
}

/// `scratch_probe() -> str`: writes and reads back `/scratch/probe.txt`, the
/// directory a module granted `filesystem` gets; `denied` without it.
fn scratch_probe(_args: &Args) -> Result<String> {
    let path = "/scratch/probe.txt";
    let text = "written by the guest";
    let outcome = std::fs::write(path, text).and_then(|()| std::fs::read_to_string(path));
    Ok(match outcome {
        Ok(back) if back == text => format!("scratch=ok ({} bytes)", back.len()),
        Ok(back) => format!("scratch=read back {:?}", back),
        Err(_) => "scratch=denied".to_string(),
    })
}

reef_guest::export_module! {
    tasks: [
        trap, panic, loop_forever, eat_memory, stack_overflow, write_view,
        misaligned_view, oob_view, view_beyond_memory, view_over_data, read_secret, read_heap, steal, sandbox_probe, scratch_probe,
        print, fail, flood, calls, leak_view, read_at,
    ],
    actors: [Talker],
}
