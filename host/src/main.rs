use std::io::IsTerminal;

use clap::Parser;

/// mimalloc instead of glibc's malloc: per task the RPC thread allocates and
/// frees a few hundred blocks (wasmtime's store and instance, the task's
/// records): ~13% of its time went to glibc's malloc, and blocks freed on
/// another thread (a future finished on a guest thread) contended on
/// glibc's arena lock, where mimalloc frees them without one.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REEF_LOG")
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: log files stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = reef_host::cli::Cli::parse();
    // RPCs are served by one thread; guests run on their own threads
    // (`node::GuestRuntime`).
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        // Spin briefly before sleeping (`reef_core::spin`): a VM's idle vCPU
        // takes tens of µs to wake.
        .on_thread_park(reef_core::spin::before_park)
        .enable_all()
        .build()?
        .block_on(reef_host::cli::run(cli))
}
