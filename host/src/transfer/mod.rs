//! Object transfer between nodes.
//!
//! Nodes pull over **raw pull connections**: plain TCP connections to the
//! holder's ordinary port (the one serving gRPC), told apart on accept by
//! their first byte, or under TLS by their ALPN protocol `reef-raw`
//! ([`split_listener`]; framing in `reef_core::wire`: a request
//! with the cluster token, a status and size, then the object's bytes as
//! they are). They replaced a gRPC `Peer.Pull` stream of 4 MiB chunks (see
//! the measurements below).
//!
//! * **Holder side** — a pull connection's first request is read on the
//!   RPC runtime and its token checked (the same `Bearer <token>` as gRPC,
//!   compared in constant time; a wrong one is told so and dropped); the
//!   connection is then served on a blocking thread of its own (not the
//!   node's single RPC thread), every request checked again: the object
//!   looked up (a spilled one is restored, a pending one waited for),
//!   and the requested range written to the socket straight from the stored
//!   bytes, which stay pinned (never spilled or freed) while they are sent.
//!   The connection then takes the next request; it is closed after 30 s
//!   idle, on a bad request or token, and when the node stops.
//! * **Puller side** — [`Puller::pull`] allocates the destination once
//!   (arena, or heap below the inline threshold) and cuts objects of 64 MiB
//!   and more into up to 4 page-aligned *stripes*, each pulled over its own
//!   connection by a blocking thread that `read`s from the socket straight
//!   into its range of the block: no intermediate buffer, no copy but the
//!   kernel's. Connections are kept per holder and reused. The object is
//!   sealed only when every stripe is complete. Concurrent pulls of one id
//!   share one transfer. A holder that fails (error, connection lost, a
//!   refused token, no progress for [`PROGRESS_TIMEOUT`]) is replaced by the
//!   next one for every unfinished stripe, each resuming at the byte it
//!   reached; when every holder failed the pull returns `OBJECT_LOST` and the
//!   destination is freed, never shown half-written.
//!
//! **References.** A pull that finds a local entry for the id (a placeholder
//! the node made: `Pending` or `Remote`) fills it (`ObjectStore::fill`) and
//! leaves its reference count alone. With no local entry it creates a `Ready`
//! object with **one** reference, owned by the transfer: the node releases it
//! (`store.release(id)`) when the owner frees the object. An id that is
//! already sealed here is not pulled again.
//!
//! **Measurements** (1 GiB, loopback, 2 vCPUs shared with two other
//! engineers' builds: load average 3–6.5 throughout, so every figure is a
//! range over runs).
//!
//! | path | GB/s | CPU-s per GiB (both nodes) |
//! | --- | --- | --- |
//! | gRPC `Peer.Pull`, 4 MiB chunks, 1 MiB HTTP/2 frames, in-process (`testing::bench_pull` before) | 1.24–1.41 | 0.71 |
//! | the same between two `host` processes (`make bench`), page faults included | 0.32–0.59 | |
//! | gRPC, arena mapped at start (no faults), two processes | 0.83 | |
//! | raw, 1 stripe, in-process (`testing::bench_pull`) | 2.31–3.58 | 0.23–0.36 |
//! | raw, 2 stripes, in-process | 1.47–4.34 | 0.30–0.51 |
//! | raw, 4 stripes, in-process | 2.05–4.84 | 0.35–0.52 |
//! | raw, 4 stripes, two `host` processes (`make bench`: task submit to result) | 2.16–5.20 (16 runs; last 3: 3.90–4.40) | |
//!
//! Where the time went before: (1) page faults — the first write of each
//! 4 KiB page of a fresh arena region costs ~1.6 µs on this VM, 0.4 s per GiB
//! on the puller (and read faults on the holder), so the arena now maps all
//! its pages at start (`Arena::prefault`); (2) tonic copies each chunk into
//! its encode buffer and HTTP/2 frames into its decode buffer, and both ran
//! on the node's single RPC thread. Plain loopback TCP (a C program, 4 MiB
//! writes) measured 2.4–2.8 GB/s with one socket and 2.5–4.4 GB/s with
//! 2–4: the raw path is at the machine's loopback throughput, and stripes
//! buy the second core. One stripe costs the least CPU per byte; more
//! stripes win wall-clock time on a shared machine. (`sendfile` from the
//! arena file measured no better and would send pages that can be reused
//! once the pin is dropped, so replies are plain `write`s.)

mod client;
mod serve;
mod upload;
// Test support (in-process nodes, a pull-only server, a faulty proxy, the
// pull benchmark): compiled into the unit tests only, not the daemon.
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use client::{Puller, PROGRESS_TIMEOUT};
pub use serve::{split_listener, Holder};
pub use upload::{Claim, Uploads};
