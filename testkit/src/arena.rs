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
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
        .with_context(|| format!("reading /proc/{pid}/smaps"))?;
    let name = path.to_string_lossy();
    let mut in_arena = false;
    let mut rss = 0u64;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if !first.ends_with(':') {
            // A mapping's header line (`start-end perms offset dev inode path`).
            in_arena = line.ends_with(&*name);
        } else if let (true, Some(kb)) = (in_arena, line.strip_prefix("Rss:")) {
            let kb = kb.trim().trim_end_matches("kB").trim();
            rss += kb.parse::<u64>().unwrap_or(0) << 10;
        }
    }
    Ok(rss)
}
