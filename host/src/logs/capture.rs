//! A guest instance's output: stdout, stderr and `log` lines go to the log
//! of the call it is running (a `CallLog`), nothing is kept in memory.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::dir::CallLog;
use super::record::Stream;

/// Where an instance's output goes now: the running call's log, or nowhere
/// (between calls, and while a module is described at registration).
#[derive(Clone, Default)]
pub struct LogSink(Arc<Mutex<Option<CallLog>>>);

impl LogSink {
    /// Output from now on goes to `log` (the previous call's log is ended).
    pub fn begin(&self, log: CallLog) {
        let previous = self.0.lock().unwrap().replace(log);
        drop(previous);
    }

    /// Ends the running call's log.
    pub fn finish(&self) {
        if let Some(log) = self.0.lock().unwrap().take() {
            log.finish();
        }
    }

    pub fn write(&self, stream: Stream, bytes: &[u8]) {
        if let Some(log) = &mut *self.0.lock().unwrap() {
            log.write(stream, bytes);
        }
    }

    /// The WASI stdout or stderr of an instance writing here.
    pub fn pipe(&self, stream: Stream) -> Capture {
        Capture {
            sink: self.clone(),
            stream,
        }
    }
}

/// One of an instance's WASI output streams. Never full, never failing: a
/// call past its log cap goes on, its output dropped.
#[derive(Clone)]
pub struct Capture {
    sink: LogSink,
    stream: Stream,
}

/// Most bytes a guest is told it may write at once.
const WRITE_BUDGET: usize = 1 << 20;

#[wasmtime_wasi::async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.sink.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.sink.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}
