//! What guests print and log: written to bounded files under
//! `<data-dir>/logs` on the node that ran them (a cap per call and one for
//! the node, oldest files deleted first), read in pages from any node.

mod capture;
mod dir;
mod record;

pub use capture::{Capture, LogSink};
pub use dir::{no_logs, whole_call, CallLog, LogDir, LogLimits, LogOwner, Page, Target};
pub use record::Stream;
