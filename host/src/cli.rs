//! The `host` command line: `start`, `register`, `status`, `stop`, `build`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytesize::ByteSize;
use clap::{Parser, Subcommand};
use reef_proto as pb;
use reef_proto::node_client::NodeClient;

use crate::node::{Node, NodeConfig};
use crate::rpc::NodeService;

mod job;
mod state;
mod tenant;
mod tls_init;

pub const DEFAULT_PORT: u16 = 6390;
/// The head's dashboard port (Ray's).
pub const DEFAULT_DASHBOARD_PORT: u16 = 8265;

#[derive(Parser)]
#[command(
    name = "host",
    version,
    about = "Reef node daemon: runs Wasm tasks and actors"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node (in the foreground).
    Start(Box<StartArgs>),
    /// Register a module (.wasm component or core module) and print what it exports.
    Register {
        file: PathBuf,
        /// Grant the module a capability: `filesystem` (wasi:filesystem, a
        /// scratch directory at /scratch) or `network` (wasi:sockets). Repeatable.
        #[arg(long = "grant", value_parser = ["filesystem", "network"])]
        grants: Vec<String>,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Print nodes, resources, running tasks, actors and object-store usage.
    Status {
        #[command(flatten)]
        node: NodeTarget,
    },
    /// List the cluster's nodes, tasks (running and recently finished), actors,
    /// objects, placement-group bundles, jobs or modules.
    List {
        #[arg(value_enum)]
        kind: state::Kind,
        /// Keep rows whose KEY equals VALUE (repeatable; ids as 0x... or decimal).
        #[arg(long = "filter", value_parser = state::parse_filter)]
        filters: Vec<(String, String)>,
        /// Rows to show at most [default: 100].
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Show one task (every attempt), actor or object (every copy), on any node.
    Get {
        #[arg(value_enum)]
        kind: state::One,
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Count tasks by function, actors by class, objects by state, split by state.
    Summary {
        #[arg(value_enum)]
        kind: state::Counted,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Print what a task, actor call or actor printed and logged, from the node
    /// that ran it.
    Logs {
        /// A task's (or actor call's) return id, or an actor id.
        id: String,
        /// Keep printing lines as they are written, until the task or actor ends.
        #[arg(long)]
        follow: bool,
        /// The id is an actor's (when it is also a task's).
        #[arg(long)]
        actor: bool,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Run a command as a job on the head, and follow it.
    #[command(subcommand)]
    Job(JobCommand),
    /// Write the recent tasks of every node as a Chrome trace / Perfetto JSON.
    Timeline {
        /// Write to FILE instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Tasks (the most recently ended) at most [default: 1000].
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Tools for building guests.
    #[command(subcommand)]
    Build(BuildCommand),
    /// Stop a node cleanly (running tasks fail with NODE_STOPPING). Needs
    /// the admin credential [default token file: <data-dir>/admin-token of a
    /// node on this machine in its default data directory].
    Stop {
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Create, list, change the quotas of and revoke tenants (admin
    /// credential, as for `stop`).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Certificates for running a cluster with TLS.
    #[command(subcommand)]
    Tls(TlsCommand),
}

#[derive(Subcommand)]
enum TlsCommand {
    /// Make a cluster CA and one node certificate signed by it, in DIR:
    /// ca.pem, cert.pem and key.pem (mode 0600; existing files are not
    /// replaced). Start every node with `--tls-cert DIR/cert.pem --tls-key
    /// DIR/key.pem --tls-ca DIR/ca.pem`; drivers trust DIR/ca.pem.
    Init {
        dir: PathBuf,
        /// A name or IP address the nodes are reached at (repeatable);
        /// localhost, 127.0.0.1, ::1 and this machine's hostname are always
        /// in.
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create tenant NAME (a-z, 0-9, - and _); its token is written to a
    /// file (mode 0600) whose path is printed.
    Add {
        name: String,
        /// Where to write the token [default: ./NAME.token]; an existing
        /// file is not replaced.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        quotas: tenant::QuotaFlags,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Change tenant NAME's quotas (`--max-... unlimited` lifts one); new
    /// requests are checked against them, work in progress goes on.
    Set {
        name: String,
        #[command(flatten)]
        quotas: tenant::QuotaFlags,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Every tenant, when it was created and its quotas.
    List {
        /// One JSON object per tenant and line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Revoke tenant NAME: its token is refused from now on and its drivers'
    /// open sessions end with PERMISSION_DENIED.
    Remove {
        name: String,
        #[command(flatten)]
        node: NodeTarget,
    },
}

#[derive(Subcommand)]
enum JobCommand {
    /// Run COMMAND on the head as a job (its own process; drivers inside
    /// connect back through $REEF_ADDRESS), printing its output until it ends.
    Submit {
        /// Where the command runs, on the head [default: the current directory].
        #[arg(long)]
        working_dir: Option<PathBuf>,
        /// Set an environment variable of the command (repeatable).
        #[arg(long = "env", value_parser = job::parse_env)]
        env: Vec<(String, String)>,
        /// The job's id [default: job_<random>].
        #[arg(long)]
        submission_id: Option<String>,
        /// Print the job id and return at once.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        node: NodeTarget,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// List the submitted jobs.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// A job's state, exit code, times and driver sessions.
    Status {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// A job's output (stdout and stderr).
    Logs {
        id: String,
        /// Keep printing output until the job ends.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Stop a job: SIGTERM, then SIGKILL after a grace period.
    Stop {
        id: String,
        #[command(flatten)]
        node: NodeTarget,
    },
}

#[derive(Subcommand)]
enum BuildCommand {
    /// Replace a component's imports of denied WASI interfaces with stubs that
    /// trap when called, so it registers without grants.
    StripImports {
        input: PathBuf,
        output: PathBuf,
        /// Packages or interfaces to remove, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "wasi:filesystem,wasi:sockets"
        )]
        deny: Vec<String>,
    },
}

#[derive(clap::Args)]
struct StartArgs {
    /// Also run the control plane (node table, modules, actors, jobs, KV).
    #[arg(long)]
    head: bool,
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Interface to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Size of the shared-memory object store (e.g. 2GiB).
    #[arg(long, default_value = "2GiB")]
    object_store_memory: ByteSize,
    /// Where objects go when the store is full [default: <data-dir>/spill].
    #[arg(long)]
    spill_dir: Option<PathBuf>,
    /// CPUs tasks may use [default: the machine's].
    #[arg(long)]
    num_cpus: Option<f64>,
    /// The `memory` resource tasks reserve from [default: the machine's RAM].
    #[arg(long)]
    memory: Option<ByteSize>,
    /// Custom resources, e.g. --resource gpu=2 (repeatable).
    #[arg(long = "resource", value_parser = parse_resource)]
    resources: Vec<(String, f64)>,
    /// Node state: module cache, control-plane store [default: /tmp/reef/node-<port>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Unix socket for drivers on this machine [default: <data-dir>/node.sock].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Objects smaller than this live on the heap, larger ones in the arena.
    #[arg(long, default_value = "100KiB")]
    inline_threshold: ByteSize,
    /// Default guest memory limit per task or actor.
    #[arg(long, default_value = "256MiB")]
    default_memory_limit: ByteSize,
    /// Default guest CPU-time limit per task or actor call, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    default_cpu_time_ms: u64,
    /// The largest memory limit one task or actor may ask for (at most
    /// 4GiB); a call asking more fails at once with INFEASIBLE.
    #[arg(long, default_value = "4GiB")]
    max_call_memory: ByteSize,
    /// Bytes of objects the node may spill to disk in all; beyond it a put
    /// that does not fit the store fails with STORE_FULL.
    #[arg(long, default_value = "16GiB")]
    max_spill_bytes: ByteSize,
    /// Join the cluster whose head is at HOST:PORT (a node without --head needs it).
    #[arg(long)]
    address: Option<String>,
    /// The address other nodes reach this node at.
    #[arg(long, default_value = "127.0.0.1")]
    node_ip: String,
    /// Heartbeat interval the control plane asks nodes for (head only).
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u64,
    /// A node silent this long is declared dead (head only).
    #[arg(long, default_value_t = 30_000)]
    node_timeout_ms: u64,
    /// Where the control plane keeps its state (head only): `file` (an
    /// embedded store in <data-dir>/gcs), a directory for that store, or
    /// `redis://[[USER]:PASSWORD@]HOST:PORT[/DB]`, so a new head anywhere can
    /// take the cluster over.
    #[arg(long, default_value = "file")]
    gcs_storage: reef_gcs::StorageSpec,
    /// The node credential, in a file: a node joining a cluster needs it (the
    /// head's <data-dir>/node-token) or $REEF_NODE_TOKEN. A head without it
    /// keeps the one its control-plane store holds, or makes one; it also
    /// writes the admin credential to <data-dir>/admin-token and the token of
    /// tenant `default` to <data-dir>/token (all mode 0600).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Stop when standard input closes (a parent that starts a private node
    /// passes a pipe, so the node stops even if the parent is killed).
    #[arg(long, hide = true)]
    stop_on_stdin_close: bool,
    /// Port of the Prometheus endpoint `/metrics`; 0 turns it off
    /// [default: --port + 1000, so nodes sharing a machine do not collide].
    #[arg(long)]
    metrics_port: Option<u16>,
    /// Interface `/metrics` listens on (0.0.0.0 exposes it off this machine).
    #[arg(long, default_value = "127.0.0.1")]
    metrics_host: String,
    /// Bytes of output (stdout, stderr, `log`) one task or actor call may
    /// write to its log file; the rest is dropped, and the drop noted.
    #[arg(long, default_value = "16MiB")]
    log_call_bytes: ByteSize,
    /// Bytes of all guests' log files of the node (<data-dir>/logs); the
    /// oldest files are deleted first.
    #[arg(long, default_value = "1GiB")]
    log_dir_bytes: ByteSize,
    /// Keep no lineage: a result lost with its nodes fails with OBJECT_LOST
    /// instead of running its task again.
    #[arg(long)]
    no_lineage: bool,
    /// Bytes of lineage (the specs of finished tasks whose results may be
    /// rebuilt) the node keeps; the oldest entries are evicted beyond it.
    #[arg(long, default_value = "128MiB")]
    lineage_bytes: ByteSize,
    /// Serve `/metrics` without a credential (for a scraper that cannot send
    /// `Authorization: Bearer <admin token>`).
    #[arg(long)]
    metrics_no_auth: bool,
    /// Turn metrics off entirely: nothing counted, no `/metrics` endpoint
    /// (to measure their cost; `--metrics-port 0` only hides the endpoint).
    #[arg(long, conflicts_with_all = ["metrics_port", "metrics_no_auth"])]
    no_metrics: bool,
    /// Driver sessions one tenant may have open on this node at once (a
    /// node has 16,383; the admin's are not counted): past it a new session
    /// of the tenant is refused with QUOTA_EXCEEDED.
    #[arg(long, default_value_t = crate::config::MAX_SESSIONS_PER_TENANT)]
    max_sessions_per_tenant: usize,
    /// Idle wasm instances kept for reuse by tasks submitted with
    /// `max_calls` other than 1, across all modules and tenants (least
    /// recently used evicted first; idle ones dropped after 60 s); 0: none.
    #[arg(long, default_value_t = 8)]
    warm_instances: usize,
    /// Tasks that get a fresh instance (`max_calls` 1, the default) of a
    /// module whose instances take at least this many µs of CPU to make
    /// (CPython's: ~600) have the next one made ahead on a guest thread, kept
    /// among the idle instances (`--warm-instances`; at most two per module,
    /// tenant and limits); such an instance never ran a call. 0: for every
    /// module; `off`: never.
    #[arg(long, default_value = "100", value_parser = parse_prestart)]
    prestart_min_us: PrestartMin,
    /// Microseconds the RPC thread spins on its sockets before it sleeps:
    /// a VM's idle vCPU takes tens of µs to wake, so a request arriving
    /// within this is served at once; costs up to this much CPU each time
    /// the node goes idle. 0: sleep at once; at most 1000 [default:
    /// $REEF_SPIN_US, else 50].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1000))]
    spin_us: Option<u64>,
    /// Added to the nice value of the threads that run guests while tenants
    /// compete for the node (0-19, at most 19 in all): when every core is
    /// busy, the node's RPC thread (every tenant's requests and replies) and
    /// the drivers on this machine go first, as Ray runs its workers at
    /// nice 15. A tenant alone on the node runs at the node's priority. 0:
    /// always at the node's priority.
    #[arg(long, default_value_t = crate::config::GUEST_NICENESS,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    guest_niceness: i32,
    /// Port of the web dashboard the head serves [default: 8265, skipped
    /// with a warning when taken].
    #[arg(long)]
    dashboard_port: Option<u16>,
    /// Interface the dashboard listens on (0.0.0.0 exposes it off this machine).
    #[arg(long, default_value = "127.0.0.1")]
    dashboard_host: String,
    /// Serve no dashboard.
    #[arg(long)]
    no_dashboard: bool,
    /// Serve every TCP listener (gRPC, object transfers, dashboard,
    /// `/metrics`) with TLS, presenting this certificate (PEM, the node's
    /// first; `host tls init` makes one). The Unix socket stays as it is.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The cluster CA (PEM) this node verifies the other nodes against
    /// [default: the --tls-cert file, for a self-signed certificate].
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
}

/// The node a command talks to, and the token it shows.
#[derive(clap::Args)]
struct NodeTarget {
    #[arg(long, default_value_t = default_address())]
    address: String,
    /// The cluster token file [default: $REEF_TOKEN, $REEF_TOKEN_FILE, or the
    /// token of a node on this machine in its default data directory].
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Connect with TLS, trusting this CA (PEM) [default: $REEF_TLS_CA].
    #[arg(long)]
    tls_ca: Option<PathBuf>,
}

fn default_address() -> String {
    format!("127.0.0.1:{DEFAULT_PORT}")
}

fn parse_resource(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=AMOUNT")?;
    let v: f64 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("resource {k} must be a non-negative number"));
    }
    Ok((k.to_string(), v))
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Start(args) => start(*args).await,
        Command::Register { file, grants, node } => register(&file, grants, &node).await,
        Command::Build(BuildCommand::StripImports {
            input,
            output,
            deny,
        }) => strip_imports(&input, &output, &deny),
        Command::List {
            kind,
            filters,
            limit,
            json,
            node,
        } => state::list(client(&node).await?, kind, filters, limit, json).await,
        Command::Get {
            kind,
            id,
            json,
            node,
        } => state::get(client(&node).await?, kind, &id, json).await,
        Command::Summary { kind, json, node } => {
            state::summary(client(&node).await?, kind, json).await
        }
        Command::Logs {
            id,
            follow,
            actor,
            node,
        } => state::logs(client(&node).await?, &id, follow, actor).await,
        Command::Job(command) => run_job(command).await,
        Command::Timeline {
            output,
            limit,
            node,
        } => job::timeline(client(&node).await?, output.as_deref(), limit.unwrap_or(0)).await,
        Command::Status { node } => status(node).await,
        Command::Stop { node } => {
            let (channel, admin) = connect(&node, Credential::Admin).await?;
            NodeClient::with_interceptor(channel, admin)
                .stop(pb::StopRequest {})
                .await?;
            println!("node at {} is stopping", node.address);
            Ok(())
        }
        Command::Tenant(command) => run_tenant(command).await,
        Command::Tls(TlsCommand::Init { dir, names }) => tls_init::init(&dir, &names),
    }
}

async fn run_tenant(command: TenantCommand) -> Result<()> {
    match command {
        TenantCommand::Add {
            name,
            output,
            quotas,
            node,
        } => tenant::add(tenants_client(&node).await?, &name, output, &quotas).await,
        TenantCommand::Set { name, quotas, node } => {
            tenant::set(tenants_client(&node).await?, &name, &quotas).await
        }
        TenantCommand::List { json, node } => {
            tenant::list(tenants_client(&node).await?, json).await
        }
        TenantCommand::Remove { name, node } => {
            tenant::remove(tenants_client(&node).await?, &name).await
        }
    }
}

/// A client of the node's `Tenants` service, with the admin credential.
async fn tenants_client(
    node: &NodeTarget,
) -> Result<pb::tenants_client::TenantsClient<reef_proto::auth::TokenChannel>> {
    let (channel, admin) = connect(node, Credential::Admin).await?;
    Ok(pb::tenants_client::TenantsClient::with_interceptor(
        channel, admin,
    ))
}

async fn run_job(command: JobCommand) -> Result<()> {
    match command {
        JobCommand::Submit {
            working_dir,
            env,
            submission_id,
            no_wait,
            node,
            command,
        } => {
            let submit = job::Submit {
                entrypoint: command,
                working_dir,
                env,
                submission_id,
                no_wait,
            };
            job::submit(admin_client(&node).await?, submit).await
        }
        JobCommand::List { json, node } => job::list(admin_client(&node).await?, json).await,
        JobCommand::Status { id, json, node } => {
            job::status(admin_client(&node).await?, &id, json).await
        }
        JobCommand::Logs { id, follow, node } => {
            job::logs(admin_client(&node).await?, &id, follow).await
        }
        JobCommand::Stop { id, node } => job::stop(admin_client(&node).await?, &id).await,
    }
}

/// One node per data directory: its token, socket, modules and spill live
/// there, and a second node would take them over.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // Private to the node's user: credentials, socket, logs and spill live here.
    match std::fs::DirBuilder::new().mode(0o700).create(data_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(data_dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::info!(
                    "restricting the data directory {} to its user (was mode {:o})",
                    data_dir.display(),
                    mode & 0o777
                );
                std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("cannot restrict {}", data_dir.display()))?;
            }
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot create the data directory {}", data_dir.display())
            })
        }
    }
    let path = data_dir.join("node.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "the data directory {} is in use by another node (stop it, or give this one \
             another --data-dir)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

async fn start(args: StartArgs) -> Result<()> {
    let addr = format!("{}:{}", args.bind, args.port);
    // Bind first: a second node on the same port fails here, before it touches anything.
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (is another node using this port?)"))?;
    let tls = start_tls(&args)?;
    let metrics_listener = bind_metrics(&args, tls.is_some()).await?;
    let dashboard_listener = bind_dashboard(&args).await?;
    if let Some(us) = args.spin_us {
        reef_core::spin::global().set_budget(std::time::Duration::from_micros(us));
    }
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/reef/node-{}", args.port)));
    // Held while the node runs (the OS drops it when the process ends, even killed).
    let _data_dir_lock = lock_data_dir(&data_dir)?;
    let config = NodeConfig {
        head: args.head,
        port: args.port,
        num_cpus: args
            .num_cpus
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as f64),
        memory: args.memory.map_or_else(machine_memory, |m| m.as_u64()),
        custom_resources: args.resources.into_iter().collect(),
        object_store_memory: args.object_store_memory.as_u64(),
        spill_dir: args.spill_dir.unwrap_or_else(|| data_dir.join("spill")),
        socket_path: args.socket.unwrap_or_else(|| data_dir.join("node.sock")),
        data_dir,
        inline_threshold: args.inline_threshold.as_u64(),
        default_memory_limit: args.default_memory_limit.as_u64(),
        default_cpu_time_ms: args.default_cpu_time_ms,
        max_call_memory: args.max_call_memory.as_u64(),
        max_spill_bytes: args.max_spill_bytes.as_u64(),
        token: String::new(),
        head_address: args.address.clone(),
        advertise_host: args.node_ip.clone(),
        log_limits: crate::logs::LogLimits {
            call_bytes: args.log_call_bytes.as_u64(),
            node_bytes: args.log_dir_bytes.as_u64(),
        },
        lineage: crate::config::LineageLimits {
            enabled: !args.no_lineage,
            max_bytes: args.lineage_bytes.as_u64(),
        },
        metrics: !args.no_metrics,
        max_sessions_per_tenant: args.max_sessions_per_tenant,
        warm_instances: args.warm_instances,
        prestart_min: args.prestart_min_us.0.map(std::time::Duration::from_micros),
        guest_niceness: args.guest_niceness,
    };
    if config.num_cpus < 0.0 || !config.num_cpus.is_finite() {
        bail!("--num-cpus must be a non-negative number");
    }
    if config.max_call_memory > crate::engine::MAX_MEMORY {
        bail!(
            "--max-call-memory {} is above what a guest can have ({})",
            args.max_call_memory,
            ByteSize(crate::engine::MAX_MEMORY)
        );
    }
    if config.default_memory_limit > config.max_call_memory {
        bail!(
            "--default-memory-limit {} is above --max-call-memory {}",
            args.default_memory_limit,
            args.max_call_memory
        );
    }
    let mut config = config;
    // The head's control-plane store holds the cluster's credentials: open
    // it first.
    let store = if config.head {
        let store = args
            .gcs_storage
            .open(&config.data_dir.join("gcs"))
            .with_context(|| format!("opening the control-plane store ({})", args.gcs_storage))?;
        tracing::info!(storage = %args.gcs_storage, "control-plane store opened");
        Some(store)
    } else {
        None
    };
    config.token = crate::token::node_token(
        args.head,
        args.token_file.as_deref(),
        &config.data_dir,
        store.as_ref(),
    )?;
    if let Some(store) = &store {
        crate::token::bootstrap_head(&config.data_dir, store, &config.token)
            .context("writing the cluster's credentials")?;
    }
    let token = config.token.clone();
    let node = Node::start(config).await?;
    let auth = crate::rpc::auth::Authenticator::new(&token, node.cluster.clone());
    let remove_files = |node: &Node| {
        let _ = std::fs::remove_file(&node.config.socket_path);
        let _ = std::fs::remove_file(reef_core::segments::socket_path(&node.config.socket_path));
    };

    if args.stop_on_stdin_close {
        let node = node.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            tracing::info!("standard input closed: stopping");
            node.stop();
        });
    }
    let signal_node = node.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        signal_node.stop();
    });

    // The services: `Node` for drivers, `Tenants` for the admin, `Peer`,
    // `PeerState` and, on the head, `ControlPlane` for other nodes. One layer
    // per listener authenticates every call and checks its kind of
    // credential (`rpc::auth`). TCP serves everyone, the Unix socket drivers
    // on this machine.
    let _ = std::fs::remove_file(&node.config.socket_path);
    let unix = tokio::net::UnixListener::bind(&node.config.socket_path)
        .with_context(|| format!("cannot listen on {}", node.config.socket_path.display()))?;
    // Only the node's user connects here (others use TCP with a token).
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            &node.config.socket_path,
            std::fs::Permissions::from_mode(0o600),
        )
        .with_context(|| format!("cannot restrict {}", node.config.socket_path.display()))?;
    }
    // Where same-machine drivers take their objects' memfds (`rpc::fds`).
    let fds = Arc::new(crate::rpc::fds::Registry::default());
    {
        use std::os::unix::fs::PermissionsExt;
        let path = reef_core::segments::socket_path(&node.config.socket_path);
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
        tokio::spawn(crate::rpc::fds::serve(fds.clone(), listener));
    }
    let service =
        pb::node_server::NodeServer::new(NodeService::new(node.clone(), auth.clone(), fds))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
    let peer = pb::peer_server::PeerServer::new(crate::rpc::peer::PeerService::new(node.clone()))
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let node_state = pb::peer_state_server::PeerStateServer::new(
        crate::rpc::state::peer::NodeStateService::new(crate::rpc::state::api::StateApi::of(&node)),
    )
    .max_encoding_message_size(usize::MAX);
    let groups = pb::placement_groups_server::PlacementGroupsServer::new(
        crate::rpc::groups::GroupService::new(node.clone()),
    );
    let tenants = pb::tenants_server::TenantsServer::new(crate::rpc::tenants::TenantService::new(
        node.cluster.clone(),
    ));
    // The head runs the control plane: served to the other nodes, called in
    // process by its own node.
    let control_plane = if let Some(store) = store {
        let service = reef_gcs::ControlPlaneService::new(
            store,
            &token,
            reef_gcs::ServiceConfig {
                heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
                node_timeout: Duration::from_millis(args.node_timeout_ms),
                probe_silent_nodes: true,
                head_node_id: Some(node.id.clone()),
                ..Default::default()
            },
        )
        .context("starting the control plane")?;
        Some(service)
    } else {
        None
    };
    let client: Option<Arc<dyn reef_gcs::ControlPlane>> =
        match (&control_plane, &node.config.head_address) {
            (Some(service), _) => Some(Arc::new(service.in_process())),
            (None, Some(head)) => Some(Arc::new(
                reef_gcs::GcsClient::connect_lazy(head, &token).map_err(anyhow::Error::msg)?,
            )),
            (None, None) => None,
        };
    let to_flush = control_plane.clone();
    let control_plane = control_plane.map(|service| service.into_plain_server());
    let stopping = node.stopping.clone();
    let http_tls = tls.as_ref().map(|tls| tls.http.clone());
    if let Some(listener) = metrics_listener {
        let listener = crate::tls::Incoming::new(listener, http_tls.clone(), stopping.clone())?;
        let access = if args.metrics_no_auth {
            crate::metrics::http::Access::Open
        } else {
            crate::metrics::http::Access::Checked(metrics_check(auth.clone()))
        };
        let metrics = node.metrics.clone();
        tokio::spawn(crate::metrics::http::serve(
            listener,
            access,
            Arc::new(move || metrics.encode()),
            stopping.clone(),
        ));
    }
    let dashboard_url = match dashboard_listener {
        Some(listener) => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let url = listener
                .local_addr()
                .map(|a| format!("{scheme}://{a}/"))
                .ok();
            let listener = crate::tls::Incoming::new(listener, http_tls, stopping.clone())?;
            tokio::spawn(crate::dashboard::serve(
                listener,
                node.clone(),
                // Every credential, each reading as itself (a tenant's
                // token sees its own work only).
                crate::dashboard::auth::Access::cluster(auth.clone()),
                stopping.clone(),
            ));
            url
        }
        None => None,
    };
    // Not installed at all when metrics are off (`--no-metrics`).
    let rpc_metrics = tower::util::option_layer(crate::metrics::rpc::RpcLayer::of(&node.metrics));
    let authenticate = crate::rpc::auth::AuthLayer(auth.clone());
    let tcp_server = tokio::spawn(
        reef_core::channel::server()
            .layer(rpc_metrics.clone())
            .layer(authenticate.clone())
            .add_service(service.clone())
            .add_service(peer.clone())
            .add_service(node_state)
            .add_service(groups.clone())
            .add_service(tenants.clone())
            .add_optional_service(control_plane)
            .serve_with_incoming_shutdown(
                // Raw pull connections are split off and served by `transfer`.
                crate::transfer::split_listener(
                    listener,
                    crate::transfer::Holder {
                        store: node.store().clone(),
                        uploads: node.uploads.clone(),
                        token: token.clone(),
                        drivers: {
                            let auth = auth.clone();
                            Arc::new(move |header: &[u8]| auth.driver(header))
                        },
                        access: {
                            let objects = node.objects.clone();
                            Arc::new(move |id, tenant| {
                                let objects = objects.clone();
                                Box::pin(async move { objects.may_use(id, &tenant).await })
                            })
                        },
                        stopping: node.stopping.clone(),
                    },
                    tls.as_ref().map(|tls| tls.node.clone()),
                ),
                stopping.clone().cancelled_owned(),
            ),
    );
    let unix_server = tokio::spawn(
        reef_core::channel::server()
            .layer(rpc_metrics)
            .layer(authenticate)
            .add_service(service)
            .add_service(peer)
            .add_service(groups)
            .add_service(tenants)
            .serve_with_incoming_shutdown(
                tokio_stream::StreamExt::map(
                    tokio_stream::wrappers::UnixListenerStream::new(unix),
                    |accepted| {
                        if let Ok(stream) = &accepted {
                            reef_core::spin::global().watch(stream);
                        }
                        accepted
                    },
                ),
                stopping.clone().cancelled_owned(),
            ),
    );

    // Join the cluster before saying we are up: a wrong token or a head that
    // refuses us is an error at start.
    match client {
        Some(client) => {
            if let Err(e) = node.join_cluster(client).await {
                node.stop();
                remove_files(&node);
                return Err(e);
            }
        }
        None => node.cluster.run_standalone(),
    }
    // One line: a parent may read only this banner and close the pipe.
    println!(
        "reef node {} listening on {addr}{}{} (object store {} in {}){}",
        node.id,
        if node.config.head { " (head)" } else { "" },
        if tls.is_some() { " with TLS" } else { "" },
        ByteSize(node.store().arena().capacity()),
        node.store().arena().name(),
        dashboard_url
            .map(|url| format!("; dashboard at {url}"))
            .unwrap_or_default()
    );
    std::io::stdout().flush()?;

    let drain_node = node.clone();
    tokio::spawn(async move {
        drain_node.stopping.cancelled().await;
        drain_node.drain(Duration::from_secs(2)).await;
    });
    // Graceful shutdown would wait for drivers to close their streams; once
    // sessions are closed, give connections a moment and go.
    let closing = node.closing.clone();
    tokio::select! {
        r = async { tokio::try_join!(tcp_server, unix_server) } => {
            let (tcp, unix) = r.context("serving gRPC")?;
            tcp.context("serving gRPC over TCP")?;
            unix.context("serving gRPC over the Unix socket")?;
        }
        _ = async {
            closing.cancelled().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        } => {}
    }
    if let Some(control_plane) = to_flush {
        // Records written behind (nodes, actors, groups) land before exit.
        control_plane.flush();
    }
    remove_files(&node);
    tracing::info!("node stopped");
    Ok(())
}

/// The node's TLS (`--tls-cert`): its listeners' acceptors; the cluster CA
/// becomes the trust of every client in the process (peers, the control
/// plane, pulls). `None` without the flags.
/// Who may scrape `/metrics`: the admin and node credentials, checked as
/// the node's API checks them (see `metrics::http`).
fn metrics_check(auth: Arc<crate::rpc::auth::Authenticator>) -> crate::metrics::http::Check {
    use crate::metrics::http::Verdict;
    Arc::new(move |header: Option<Vec<u8>>| {
        let auth = auth.clone();
        Box::pin(async move {
            match auth.caller(header.as_deref()).await {
                Ok((reef_core::Caller::Admin | reef_core::Caller::Node, _)) => Verdict::Granted,
                Ok((reef_core::Caller::Tenant(_), _)) => Verdict::Forbidden,
                Err(_) => Verdict::Refused,
            }
        })
    })
}

fn start_tls(args: &StartArgs) -> Result<Option<crate::tls::ServerTls>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let server = crate::tls::ServerTls::load(cert, key).context("--tls-cert / --tls-key")?;
    let ca = args.tls_ca.as_ref().unwrap_or(cert);
    let client = reef_core::tls::ClientTls::from_ca_file(ca).context("--tls-ca")?;
    reef_core::tls::install(client)?;
    Ok(Some(server))
}

/// The dashboard's listener (head only): `None` when turned off. A port
/// given with `--dashboard-port` must be free; the default one is skipped
/// with a warning when it is not (another head on this machine has it).
async fn bind_dashboard(args: &StartArgs) -> Result<Option<tokio::net::TcpListener>> {
    if !args.head || args.no_dashboard {
        return Ok(None);
    }
    let (port, chosen) = match args.dashboard_port {
        Some(port) => (port, true),
        None => (DEFAULT_DASHBOARD_PORT, false),
    };
    let addr = format!("{}:{port}", args.dashboard_host);
    match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if chosen => Err(e).with_context(|| format!("cannot serve the dashboard on {addr}")),
        Err(e) => {
            tracing::warn!("no dashboard: cannot listen on {addr} ({e}); choose --dashboard-port");
            Ok(None)
        }
    }
}

/// The `/metrics` listener: `None` when turned off. A port given with
/// `--metrics-port` must be free; the default one (`--port` + 1000) is
/// skipped with a warning when it is not.
async fn bind_metrics(args: &StartArgs, tls: bool) -> Result<Option<tokio::net::TcpListener>> {
    if args.no_metrics {
        return Ok(None);
    }
    let (port, chosen) = match args.metrics_port {
        Some(0) => return Ok(None),
        Some(port) => (port, true),
        None => match args.port.checked_add(1000).filter(|_| args.port != 0) {
            Some(port) => (port, false),
            None => return Ok(None),
        },
    };
    let addr = format!("{}:{port}", args.metrics_host);
    match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => {
            let scheme = if tls { "https" } else { "http" };
            tracing::info!("metrics at {scheme}://{addr}/metrics");
            Ok(Some(listener))
        }
        Err(e) if chosen => Err(e).with_context(|| format!("cannot serve metrics on {addr}")),
        Err(e) => {
            tracing::warn!("no metrics: cannot listen on {addr} ({e}); choose --metrics-port");
            Ok(None)
        }
    }
}

fn machine_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64) * (size.max(0) as u64)
}

/// Which credential a command presents when `--token-file` is not given.
#[derive(Clone, Copy)]
enum Credential {
    /// A tenant's (`$REEF_TOKEN`, `$REEF_TOKEN_FILE`, or the default tenant's
    /// token of a local node).
    Tenant,
    /// The admin's (the admin token of a local node).
    Admin,
}

/// A channel to the node and the credential its requests carry.
async fn connect(
    node: &NodeTarget,
    credential: Credential,
) -> Result<(tonic::transport::Channel, reef_proto::auth::AttachToken)> {
    let address = node.address.as_str();
    let token = match (&node.token_file, credential) {
        (Some(path), _) => reef_proto::auth::read_token_file(path),
        (None, Credential::Tenant) => reef_proto::auth::find_token(address),
        (None, Credential::Admin) => find_admin_token(address),
    }
    .map_err(anyhow::Error::msg)?;
    let ca = node
        .tls_ca
        .clone()
        .or_else(|| std::env::var_os("REEF_TLS_CA").map(PathBuf::from));
    let tls = match &ca {
        Some(path) => Some(reef_core::tls::ClientTls::from_ca_file(path).context("--tls-ca")?),
        None => None,
    };
    let channel = reef_core::channel::connect_with(address, tls.as_ref())
        .await
        .with_context(|| format!("cannot reach a node at {address}"))?;
    let token = reef_proto::auth::AttachToken::new(&token).map_err(anyhow::Error::msg)?;
    Ok((channel, token))
}

/// The admin token of the node at `address` when it is a head on this
/// machine in its default data directory.
fn find_admin_token(address: &str) -> Result<String, String> {
    let port = address
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok());
    let path = port.map(|port| {
        PathBuf::from(format!("/tmp/reef/node-{port}")).join(crate::token::ADMIN_TOKEN_FILE)
    });
    match path {
        Some(path) if path.exists() => reef_proto::auth::read_token_file(&path),
        _ => Err(format!(
            "no admin credential for {address}: pass --token-file <head data-dir>/{}",
            crate::token::ADMIN_TOKEN_FILE
        )),
    }
}

async fn client(node: &NodeTarget) -> Result<NodeClient<reef_proto::auth::TokenChannel>> {
    node_client(node, Credential::Tenant).await
}

/// A client presenting the admin credential (by default a local head's).
async fn admin_client(node: &NodeTarget) -> Result<NodeClient<reef_proto::auth::TokenChannel>> {
    node_client(node, Credential::Admin).await
}

async fn node_client(
    node: &NodeTarget,
    credential: Credential,
) -> Result<NodeClient<reef_proto::auth::TokenChannel>> {
    let (channel, token) = connect(node, credential).await?;
    Ok(NodeClient::with_interceptor(channel, token)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

fn strip_imports(input: &PathBuf, output: &PathBuf, deny: &[String]) -> Result<()> {
    let wasm = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let (out, stubbed) = crate::strip::strip_imports(&wasm, deny)
        .with_context(|| format!("stripping imports of {}", input.display()))?;
    let tmp = output.with_extension("strip-tmp");
    std::fs::write(&tmp, &out)
        .and_then(|()| std::fs::rename(&tmp, output))
        .with_context(|| format!("writing {}", output.display()))?;
    if stubbed.is_empty() {
        println!("{}: imports none of {}", input.display(), deny.join(", "));
    } else {
        println!(
            "stubbed (no directories; sockets and lookups refused; other calls trap): {}",
            stubbed.join(", ")
        );
    }
    Ok(())
}

async fn register(file: &PathBuf, grants: Vec<String>, node: &NodeTarget) -> Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let reply = client(node)
        .await?
        .register_module(pb::RegisterModuleRequest {
            wasm: wasm.into(),
            grants,
        })
        .await?
        .into_inner();
    match reply.result {
        Some(pb::register_module_reply::Result::Module(m)) => {
            println!("{}", m.hash);
            println!("  sdk:    {}", m.sdk);
            println!("  size:   {}", ByteSize(m.size));
            if !m.grants.is_empty() {
                println!("  grants: {}", m.grants.join(", "));
            }
            println!("  tasks:  {}", m.tasks.join(", "));
            for a in &m.actors {
                println!("  actor:  {} ({})", a.name, a.methods.join(", "));
            }
            Ok(())
        }
        Some(pb::register_module_reply::Result::Error(e)) => bail!(
            "{}: {}",
            pb::ErrorCode::try_from(e.code).map_or("ERROR", |c| c.as_str_name()),
            e.message
        ),
        None => bail!("empty reply from the node"),
    }
}

async fn status(node: NodeTarget) -> Result<()> {
    let s = client(&node)
        .await?
        .status(pb::StatusRequest {})
        .await?
        .into_inner();
    for n in &s.nodes {
        println!(
            "node {} at {} ({}){}{}: {} running, {} pending, store {} of {}",
            n.node_id,
            n.address,
            n.state,
            if n.head { " head" } else { "" },
            if n.this_node { " [this node]" } else { "" },
            n.running_tasks,
            n.pending_tasks,
            ByteSize(n.store_used),
            ByteSize(n.store_capacity)
        );
        for r in &n.resources {
            if r.name == "memory" {
                println!(
                    "  {:<10} {} of {} free",
                    r.name,
                    ByteSize(r.available as u64),
                    ByteSize(r.total as u64)
                );
            } else {
                println!("  {:<10} {} of {} free", r.name, r.available, r.total);
            }
        }
    }
    if let Some(st) = &s.store {
        println!(
            "object store: {} objects, arena {} of {} used, {} inline, {} spilled",
            st.objects,
            ByteSize(st.arena_used),
            ByteSize(st.arena_capacity),
            ByteSize(st.inline_bytes),
            ByteSize(st.spilled_bytes)
        );
    }
    println!("modules: {}", s.modules.len());
    for m in &s.modules {
        println!(
            "  {} {} tasks, {} actor classes",
            &m.hash[..12],
            m.tasks.len(),
            m.actors.len()
        );
    }
    println!("tasks: {}", s.tasks.len());
    for t in &s.tasks {
        println!(
            "  {:#x} {}::{} {} (attempt {})",
            t.return_id,
            &t.module[..t.module.len().min(12)],
            t.function,
            t.state,
            t.attempt.max(1)
        );
    }
    println!("actors: {}", s.actors.len());
    for a in &s.actors {
        println!(
            "  {} {} {} {}",
            a.actor_id,
            if a.name.is_empty() { "-" } else { &a.name },
            a.class,
            a.state
        );
    }
    Ok(())
}

/// `--prestart-min-us`: microseconds, or `off` (`None`).
#[derive(Clone, Debug)]
struct PrestartMin(Option<u64>);

fn parse_prestart(s: &str) -> Result<PrestartMin, String> {
    match s {
        "off" => Ok(PrestartMin(None)),
        _ => s
            .parse()
            .map(|us| PrestartMin(Some(us)))
            .map_err(|_| format!("`{s}` is neither a number of microseconds nor `off`")),
    }
}
