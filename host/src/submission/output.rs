//! A submitted job's output (stdout and stderr, interleaved), kept in
//! bounded files: segments `out-<offset>.log`, each named by the offset of
//! its first byte in the whole output. When the newest segment is full a new
//! one starts and the oldest beyond [`SEGMENTS`] is deleted, so a job
//! printing forever keeps at most `SEGMENTS * segment_bytes` on disk and
//! readers page through it by offset, never loading it whole.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// Segments kept per job.
pub const SEGMENTS: usize = 2;

/// Appends to a job's output directory.
pub struct OutputWriter {
    dir: PathBuf,
    segment_bytes: u64,
    /// Bytes written since the job started (the next byte's offset).
    written: u64,
    current: Option<(u64, tokio::fs::File)>,
}

impl OutputWriter {
    /// Output into `dir` (created), at most `total_bytes` of it kept.
    pub fn create(dir: &Path, total_bytes: u64) -> std::io::Result<OutputWriter> {
        std::fs::create_dir_all(dir)?;
        Ok(OutputWriter {
            dir: dir.to_path_buf(),
            segment_bytes: (total_bytes / SEGMENTS as u64).max(1),
            written: 0,
            current: None,
        })
    }

    pub async fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let start = match &self.current {
                Some((start, _)) if self.written - start < self.segment_bytes => *start,
                _ => self.next_segment().await?,
            };
            let room = (self.segment_bytes - (self.written - start)) as usize;
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            let (_, file) = self.current.as_mut().expect("a segment is open");
            file.write_all(now).await?;
            self.written += now.len() as u64;
            bytes = rest;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if let Some((_, file)) = &mut self.current {
            file.flush().await?;
        }
        Ok(())
    }

    /// Starts the segment at the current offset, deleting the oldest ones.
    async fn next_segment(&mut self) -> std::io::Result<u64> {
        self.flush().await?;
        let start = self.written;
        let file = tokio::fs::File::create(segment_path(&self.dir, start)).await?;
        self.current = Some((start, file));
        let segments = segments(&self.dir)?;
        for (_, old) in segments
            .iter()
            .take(segments.len().saturating_sub(SEGMENTS))
        {
            let _ = std::fs::remove_file(old);
        }
        Ok(start)
    }
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("out-{start:020}.log"))
}

/// The segments in `dir`, oldest first: (start offset, path).
fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let start = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("out-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(start) = start {
            found.push((start, path));
        }
    }
    found.sort();
    Ok(found)
}

/// One page of a job's output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub bytes: Vec<u8>,
    /// Where the next page starts.
    pub next_offset: u64,
    /// Bytes before the asked offset that were deleted by the cap.
    pub skipped: u64,
}

/// Up to `max_bytes` of the output in `dir` from `offset`. Blocking (small
/// reads of local files).
pub fn read(dir: &Path, offset: u64, max_bytes: usize) -> std::io::Result<Page> {
    // A segment deleted between listing and opening: list again.
    for _ in 0..3 {
        let segments = segments(dir)?;
        let Some((first, _)) = segments.first() else {
            return Ok(Page {
                next_offset: offset,
                ..Page::default()
            });
        };
        let skipped = first.saturating_sub(offset);
        let mut at = offset.max(*first);
        let mut bytes = Vec::new();
        let mut vanished = false;
        for (i, (start, path)) in segments.iter().enumerate() {
            let end = segments.get(i + 1).map(|(next, _)| *next);
            if end.is_some_and(|end| at >= end) || at < *start {
                continue;
            }
            let mut file = match std::fs::File::open(path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    vanished = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            file.seek(SeekFrom::Start(at - start))?;
            let want = max_bytes - bytes.len();
            let before = bytes.len();
            file.take(want as u64).read_to_end(&mut bytes)?;
            at += (bytes.len() - before) as u64;
            if bytes.len() == max_bytes || end.is_none_or(|end| at < end) {
                break;
            }
        }
        if !vanished {
            return Ok(Page {
                bytes,
                next_offset: at,
                skipped,
            });
        }
    }
    Err(std::io::Error::other("the job's output rotated while read"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_newest_bytes_and_pages_through_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = OutputWriter::create(dir.path(), 20).unwrap();
        let all: Vec<u8> = (0..55u8).map(|i| b'a' + i % 26).collect();
        for chunk in all.chunks(7) {
            w.write(chunk).await.unwrap();
        }
        w.flush().await.unwrap();
        // Segments of 10 bytes, two kept: offsets 40..55.
        assert_eq!(segments(dir.path()).unwrap().len(), SEGMENTS);
        let page = read(dir.path(), 0, 4).unwrap();
        assert_eq!(page.skipped, 40);
        assert_eq!(page.bytes, &all[40..44]);
        let mut at = page.next_offset;
        let mut got = page.bytes;
        loop {
            let page = read(dir.path(), at, 4).unwrap();
            if page.bytes.is_empty() {
                break;
            }
            assert_eq!(page.skipped, 0);
            got.extend(page.bytes);
            at = page.next_offset;
        }
        assert_eq!(got, &all[40..]);
        assert_eq!(at, 55);
    }

    #[test]
    fn no_output_yet() {
        let dir = tempfile::tempdir().unwrap();
        let page = read(&dir.path().join("none"), 3, 10).unwrap();
        assert_eq!(page.next_offset, 3);
        assert!(page.bytes.is_empty());
    }
}
