//! A node's shared-memory arena file (`/dev/shm/reef-<port>-<id>.arena`), as
//! another process sees it: which file it is, whether the node's background
//! prefault has allocated it, and how much of it a process has mapped.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The arena file of the node listening on `address`.
pub fn of_node(address: &str) -> Result<PathBuf> {
    let port = address.rsplit(':').next().unwrap_or_default();
    let prefix = format!("reef-{port}-");
    for entry in std::fs::read_dir("/dev/shm")? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(&prefix) && name.ends_with(".arena") {
            return Ok(path);
        }
    }
    bail!("no arena file for the node at {address} in /dev/shm")
}

/// Whether every block of the arena file is allocated.
fn allocated(meta: &std::fs::Metadata) -> bool {
    meta.blocks() * 512 >= meta.len()
}

/// Waits until a node's background prefault has allocated its whole arena
/// file (allocating tmpfs pages would otherwise compete with a measurement
/// for the machine's cores).
pub async fn wait_allocated(arena: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        let meta = std::fs::metadata(arena)
            .with_context(|| format!("reading the arena {}", arena.display()))?;
        if allocated(&meta) {
            tracing::info!(
                arena = %arena.display(),
                ms = start.elapsed().as_millis() as u64,
                "arena allocated"
            );
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!(
                "the arena {} was not allocated within 60 s",
                arena.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bytes of the arena file `path` mapped into process `pid` (its resident
/// size in `/proc/<pid>/smaps`), 0 until the file is fully allocated. Once
/// the node's prefault is done this is the whole file, less any pages the
/// kernel has unmapped since (reclaim may). Such pages fault back in when
/// touched.
pub fn mapped_bytes(pid: u32, path: &Path) -> Result<u64> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading the arena {}", path.display()))?;
    if !allocated(&meta) {
        return Ok(0);
    }
    smaps_bytes(pid, path, "Rss:")
}

/// The sum of `field` (a `/proc/<pid>/smaps` line such as `Rss:`, in kB
/// there) over process `pid`'s mappings of the file `path`, in bytes.
fn smaps_bytes(pid: u32, path: &Path, field: &str) -> Result<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
        .with_context(|| format!("reading /proc/{pid}/smaps"))?;
    let name = path.to_string_lossy();
    let mut in_arena = false;
    let mut bytes = 0u64;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if !first.ends_with(':') {
            // A mapping's header line (`start-end perms offset dev inode path`).
            in_arena = line.ends_with(&*name);
        } else if let (true, Some(kb)) = (in_arena, line.strip_prefix(field)) {
            let kb = kb.trim().trim_end_matches("kB").trim();
            bytes += kb.parse::<u64>().unwrap_or(0) << 10;
        }
    }
    Ok(bytes)
}

/// The node process that owns the arena file `arena`: a process named `host`
/// (this user's) that maps it. Drivers on the machine map it too, so the name
/// tells them apart.
pub fn node_pid(arena: &Path) -> Result<u32> {
    let name = arena.to_string_lossy();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes come and go, and others' are unreadable: skip those.
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if comm.trim_end() != "host" {
            continue;
        }
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            if maps.lines().any(|l| l.ends_with(&*name)) {
                return Ok(pid);
            }
        }
    }
    bail!("no `host` process maps the arena {}", arena.display())
}

/// Waits until the node at `address` has its arena allocated and rebuilt in
/// 2 MiB pages (its own mapping of the file is then PMD-mapped, smaps'
/// `ShmemPmdMapped`): the steady state of a running node, which
/// measurements of large views should see. Rebuilding takes the node
/// seconds of one core after start; a measurement running meanwhile
/// competes with it and takes 4 KiB faults. Where the kernel cannot build
/// 2 MiB pages (before Linux 6.1, or none free) the count stops growing:
/// after `STALL` without growth (longer than the node's pauses between
/// retries) this returns with a warning.
pub async fn wait_huge_pages(address: &str) -> Result<()> {
    const STALL: Duration = Duration::from_secs(10);
    let arena = of_node(address)?;
    wait_allocated(&arena).await?;
    let pid = node_pid(&arena)?;
    let len = std::fs::metadata(&arena)?.len();
    // The node collapses whole 2 MiB ranges only.
    let want = len / (2 << 20) * (2 << 20);
    let start = Instant::now();
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        let pmd = smaps_bytes(pid, &arena, "ShmemPmdMapped:")?;
        if pmd >= want {
            tracing::info!(
                ms = start.elapsed().as_millis() as u64,
                "arena in 2 MiB pages"
            );
            return Ok(());
        }
        if pmd != last {
            (last, last_change) = (pmd, Instant::now());
        } else if last_change.elapsed() > STALL {
            tracing::warn!(
                pmd_mapped = pmd,
                arena = len,
                "the node's arena is not all in 2 MiB pages; measuring anyway"
            );
            return Ok(());
        }
        // Each smaps read walks the node's mappings under its mm lock: poll gently.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
