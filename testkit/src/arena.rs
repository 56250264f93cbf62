//! A node's shared-memory arena (a memfd named `reef-<port>.arena`, with no
//! path of its own), as another process of the same user sees it: through
//! the node's descriptor `/proc/<pid>/fd/<n>` (which `stat` follows), whether
//! the node's background prefault has allocated it, and how much of it a
//! process has mapped.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The memfd's name as `/proc/<pid>/fd` links and `/proc/<pid>/maps` show it.
pub fn memfd_name(port: &str) -> String {
    format!("/memfd:reef-{port}.arena (deleted)")
}

/// The arena of the node listening on `address`: `/proc/<pid>/fd/<n>` of the
/// `host` process holding the memfd.
pub fn of_node(address: &str) -> Result<PathBuf> {
    let port = address.rsplit(':').next().unwrap_or_default();
    let name = memfd_name(port);
    for pid in host_pids()? {
        // Processes come and go: skip those gone meanwhile.
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == name.as_str()) {
                return Ok(fd.path());
            }
        }
    }
    bail!("no `host` process holds the arena {name} of the node at {address}")
}

/// This user's processes named `host` (others' are unreadable).
fn host_pids() -> Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim_end() == "host")
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// The name mappings of `arena` show in `/proc/<pid>/maps`.
fn mapped_name(arena: &Path) -> String {
    std::fs::read_link(arena)
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_else(|_| arena.to_string_lossy().into_owned())
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
    let name = mapped_name(path);
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

/// The node process that holds the arena `arena` (a `/proc/<pid>/fd/<n>`
/// path from `of_node`).
pub fn node_pid(arena: &Path) -> Result<u32> {
    arena
        .strip_prefix("/proc")
        .ok()
        .and_then(|rest| rest.iter().next())
        .and_then(|pid| match pid.to_str()? {
            // A node inside this process (`/proc/self/fd/<n>`).
            "self" => Some(std::process::id()),
            pid => pid.parse().ok(),
        })
        .with_context(|| format!("{} is not a process's descriptor", arena.display()))
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
    wait_huge_pages_of(&of_node(address)?).await
}

/// `wait_huge_pages` for the arena seen as `arena` (a `/proc/<pid>/fd/<n>`
/// path, e.g. from `of_node`).
pub async fn wait_huge_pages_of(arena: &Path) -> Result<()> {
    const STALL: Duration = Duration::from_secs(10);
    wait_allocated(arena).await?;
    let pid = node_pid(arena)?;
    let len = std::fs::metadata(arena)?.len();
    // The node collapses whole 2 MiB ranges only.
    let want = len / (2 << 20) * (2 << 20);
    let start = Instant::now();
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        let pmd = smaps_bytes(pid, arena, "ShmemPmdMapped:")?;
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
