//! `host tenant add|list|set|remove`: tenants and their quotas, managed
//! with the admin credential. `add` makes the tenant's token here and sends
//! only its sha256; the token goes to a file (mode 0600) whose path it
//! prints.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use bytesize::ByteSize;
use reef_proto as pb;
use reef_proto::auth::TokenChannel;
use reef_proto::tenants_client::TenantsClient;

type Client = TenantsClient<TokenChannel>;

/// A quota flag's value: a limit, or `unlimited` (lifts it in `set`).
#[derive(Clone, Debug)]
pub(super) enum Limit<T> {
    Unlimited,
    Max(T),
}

impl<T: FromStr> FromStr for Limit<T>
where
    T::Err: fmt::Display,
{
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "unlimited" {
            return Ok(Limit::Unlimited);
        }
        s.parse()
            .map(Limit::Max)
            .map_err(|e| format!("{s:?}: {e} (or `unlimited`)"))
    }
}

/// The quota flags of `add` and `set`; a flag not given leaves the quota
/// as it is (unlimited for a new tenant).
#[derive(clap::Args, Clone, Debug)]
pub(super) struct QuotaFlags {
    /// Tasks submitted through one node and not finished.
    #[arg(long, value_name = "N")]
    max_pending_tasks: Option<Limit<u64>>,
    /// Live actors created through one node.
    #[arg(long, value_name = "N")]
    max_actors: Option<Limit<u64>>,
    /// CPUs one task or actor may ask for.
    #[arg(long, value_name = "N")]
    max_cpus: Option<Limit<f64>>,
    /// CPUs its tasks and actors may hold at once on one node: more wait
    /// (other tenants go first), they do not fail.
    #[arg(long, value_name = "N")]
    max_cpus_in_use: Option<Limit<f64>>,
    /// The largest memory limit one task or actor may ask for (e.g. 512MiB);
    /// calls asking none get it when it is below the node's default.
    #[arg(long, value_name = "BYTES")]
    max_call_memory: Option<Limit<ByteSize>>,
    /// Bytes of objects its drivers put on one node and hold (e.g. 1GiB).
    #[arg(long, value_name = "BYTES")]
    max_arena_bytes: Option<Limit<ByteSize>>,
    /// Placement groups created through one node and not removed.
    #[arg(long, value_name = "N")]
    max_placement_groups: Option<Limit<u64>>,
    /// Wasm instances its running tasks and live actors may have at once on
    /// one node: a task past it waits, an actor creation past it fails.
    #[arg(long, value_name = "N")]
    max_instances: Option<Limit<u64>>,
    /// CPU time one task or actor call may run, in milliseconds: a call
    /// asking more fails, one asking none is stopped at it.
    #[arg(long, value_name = "MS")]
    max_call_cpu_ms: Option<Limit<u64>>,
    /// Bytes of its objects one node may have spilled to disk (e.g. 1GiB);
    /// beyond it they are not spilled and its puts that need room fail.
    #[arg(long, value_name = "BYTES")]
    max_spill_bytes: Option<Limit<ByteSize>>,
    /// Bytes of its calls' logs one node keeps (e.g. 64MiB); beyond it its
    /// oldest log files are deleted first.
    #[arg(long, value_name = "BYTES")]
    max_log_bytes: Option<Limit<ByteSize>>,
    /// The tenant's share of a node's CPUs when tenants compete for them
    /// (default 1): a tenant of weight 3 gets three times the CPU grants of
    /// a tenant of weight 1. Not a limit: a tenant alone gets every CPU.
    #[arg(long, value_name = "W", value_parser = parse_weight)]
    weight: Option<f64>,
}

/// A weight: a finite number > 0.
fn parse_weight(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(w) if w.is_finite() && w > 0.0 => Ok(w),
        Ok(w) => Err(format!("{w}: a weight must be a number > 0")),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

impl QuotaFlags {
    fn is_empty(&self) -> bool {
        self.max_pending_tasks.is_none()
            && self.max_actors.is_none()
            && self.max_cpus.is_none()
            && self.max_cpus_in_use.is_none()
            && self.max_call_memory.is_none()
            && self.max_arena_bytes.is_none()
            && self.max_placement_groups.is_none()
            && self.max_instances.is_none()
            && self.max_call_cpu_ms.is_none()
            && self.max_spill_bytes.is_none()
            && self.max_log_bytes.is_none()
            && self.weight.is_none()
    }

    /// `quotas` with the flags given applied.
    fn apply(&self, mut quotas: pb::TenantQuotas) -> pb::TenantQuotas {
        fn set<T: Clone, U>(field: &mut Option<U>, flag: &Option<Limit<T>>, f: impl Fn(T) -> U) {
            match flag {
                None => {}
                Some(Limit::Unlimited) => *field = None,
                Some(Limit::Max(v)) => *field = Some(f(v.clone())),
            }
        }
        set(
            &mut quotas.max_pending_tasks,
            &self.max_pending_tasks,
            |v| v,
        );
        set(&mut quotas.max_actors, &self.max_actors, |v| v);
        set(&mut quotas.max_cpus, &self.max_cpus, |v| v);
        set(&mut quotas.max_cpus_in_use, &self.max_cpus_in_use, |v| v);
        set(&mut quotas.max_call_memory, &self.max_call_memory, |v| {
            v.as_u64()
        });
        set(&mut quotas.max_arena_bytes, &self.max_arena_bytes, |v| {
            v.as_u64()
        });
        set(
            &mut quotas.max_placement_groups,
            &self.max_placement_groups,
            |v| v,
        );
        set(&mut quotas.max_instances, &self.max_instances, |v| v);
        set(&mut quotas.max_call_cpu_ms, &self.max_call_cpu_ms, |v| v);
        set(&mut quotas.max_spill_bytes, &self.max_spill_bytes, |v| {
            v.as_u64()
        });
        set(&mut quotas.max_log_bytes, &self.max_log_bytes, |v| {
            v.as_u64()
        });
        if let Some(w) = self.weight {
            quotas.weight = Some(w);
        }
        quotas
    }
}

/// Quotas as `host tenant list` prints them (`unlimited` when none).
fn describe(q: &pb::TenantQuotas) -> String {
    let mut parts = Vec::new();
    let mut count = |name: &str, v: Option<u64>| {
        if let Some(v) = v {
            parts.push(format!("{name}={v}"));
        }
    };
    count("max-pending-tasks", q.max_pending_tasks);
    count("max-actors", q.max_actors);
    count("max-placement-groups", q.max_placement_groups);
    count("max-instances", q.max_instances);
    count("max-call-cpu-ms", q.max_call_cpu_ms);
    if let Some(v) = q.max_cpus {
        parts.push(format!("max-cpus={v}"));
    }
    if let Some(v) = q.max_cpus_in_use {
        parts.push(format!("max-cpus-in-use={v}"));
    }
    if let Some(v) = q.max_call_memory {
        parts.push(format!("max-call-memory={}", ByteSize(v)));
    }
    if let Some(v) = q.max_arena_bytes {
        parts.push(format!("max-arena-bytes={}", ByteSize(v)));
    }
    if let Some(v) = q.max_spill_bytes {
        parts.push(format!("max-spill-bytes={}", ByteSize(v)));
    }
    if let Some(v) = q.max_log_bytes {
        parts.push(format!("max-log-bytes={}", ByteSize(v)));
    }
    let quotas = if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join(" ")
    };
    format!("{quotas} weight={}", q.weight.unwrap_or(1.0))
}

/// Creates tenant `name` with `quotas`, its token written to `output`
/// [default: ./NAME.token].
pub(super) async fn add(
    mut client: Client,
    name: &str,
    output: Option<PathBuf>,
    quotas: &QuotaFlags,
) -> Result<()> {
    reef_core::tenant::validate_name(name).map_err(anyhow::Error::msg)?;
    let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}.token")));
    let token = reef_proto::auth::generate_token().context("generating the tenant's token")?;
    // The file first: a tenant whose token could not be kept is useless.
    write_new_private(&path, &token)?;
    let request = pb::AddTenantRequest {
        name: name.to_string(),
        token_sha256: hex::decode(crate::token::sha256_hex(&token))?.into(),
        quotas: Some(quotas.apply(pb::TenantQuotas::default())),
    };
    if let Err(status) = client.add(request).await {
        let _ = std::fs::remove_file(&path);
        bail!(
            "adding tenant {name}: {}",
            reef_core::ReefError::from(status)
        );
    }
    let shown = std::fs::canonicalize(&path).unwrap_or(path);
    println!("{}", shown.display());
    Ok(())
}

/// Prints every tenant (one JSON object per line with `json`).
pub(super) async fn list(mut client: Client, json: bool) -> Result<()> {
    let reply = client
        .list(pb::ListTenantsRequest {})
        .await
        .map_err(reef_core::ReefError::from)?
        .into_inner();
    for t in reply.tenants {
        let q = t.quotas.unwrap_or_default();
        if json {
            let line = serde_json::json!({
                "name": t.name,
                "created_at_ms": t.created_at_ms,
                "quotas": {
                    "max_pending_tasks": q.max_pending_tasks,
                    "max_actors": q.max_actors,
                    "max_cpus": q.max_cpus,
                    "max_cpus_in_use": q.max_cpus_in_use,
                    "max_call_memory": q.max_call_memory,
                    "max_arena_bytes": q.max_arena_bytes,
                    "max_placement_groups": q.max_placement_groups,
                    "max_instances": q.max_instances,
                    "max_call_cpu_ms": q.max_call_cpu_ms,
                    "max_spill_bytes": q.max_spill_bytes,
                    "max_log_bytes": q.max_log_bytes,
                },
                "weight": q.weight.unwrap_or(1.0),
            });
            println!("{line}");
        } else {
            println!(
                "{} (created at {} ms) quotas: {}",
                t.name,
                t.created_at_ms,
                describe(&q)
            );
        }
    }
    Ok(())
}

/// Changes the quotas of tenant `name` given by `flags`; the others stay.
pub(super) async fn set(mut client: Client, name: &str, flags: &QuotaFlags) -> Result<()> {
    if flags.is_empty() {
        bail!("no quota to set: give at least one --max-... or --weight flag (see `host tenant set --help`)");
    }
    let tenants = client
        .list(pb::ListTenantsRequest {})
        .await
        .map_err(reef_core::ReefError::from)?
        .into_inner()
        .tenants;
    let Some(current) = tenants.into_iter().find(|t| t.name == name) else {
        bail!("there is no tenant named {name}");
    };
    let quotas = flags.apply(current.quotas.unwrap_or_default());
    let info = client
        .set_quotas(pb::SetTenantQuotasRequest {
            name: name.to_string(),
            quotas: Some(quotas),
        })
        .await
        .map_err(reef_core::ReefError::from)?
        .into_inner();
    println!(
        "tenant {name} quotas: {}",
        describe(&info.quotas.unwrap_or_default())
    );
    Ok(())
}

/// Revokes tenant `name`.
pub(super) async fn remove(mut client: Client, name: &str) -> Result<()> {
    client
        .remove(pb::RemoveTenantRequest {
            name: name.to_string(),
        })
        .await
        .map_err(reef_core::ReefError::from)?;
    println!("tenant {name} removed");
    Ok(())
}

/// Writes `contents` to a new file `path`, mode 0600 (an existing file is an error).
fn write_new_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
