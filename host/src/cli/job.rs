//! `host job submit|list|status|logs|stop` and `host timeline`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use reef_proto as pb;
use reef_proto::auth::TokenChannel;
use reef_proto::node_client::NodeClient;
use serde_json::json;

type Client = NodeClient<TokenChannel>;

fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

pub fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// What `host job submit` sends.
pub struct Submit {
    pub entrypoint: Vec<String>,
    pub working_dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub submission_id: Option<String>,
    pub no_wait: bool,
}

/// Submits the job; unless `no_wait`, prints its output as it comes and
/// fails when the job does not succeed.
pub async fn submit(mut client: Client, submit: Submit) -> Result<()> {
    // The default working directory is the caller's (the head is usually on
    // this machine); an absolute path either way, the head's cwd is not ours.
    let working_dir = match submit.working_dir {
        Some(dir) => dir,
        None => std::env::current_dir().context("the current directory")?,
    };
    let working_dir = std::path::absolute(&working_dir)
        .with_context(|| format!("the working directory {}", working_dir.display()))?;
    let job = client
        .submit_job(pb::SubmitJobRequest {
            entrypoint: submit.entrypoint,
            working_dir: working_dir.display().to_string(),
            env: submit.env.into_iter().collect(),
            submission_id: submit.submission_id.unwrap_or_default(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if submit.no_wait {
        println!("{}", job.submission_id);
        return Ok(());
    }
    eprintln!("job {} submitted ({})", job.submission_id, job.state);
    print_logs(&mut client, &job.submission_id, true).await?;
    let job = get(&mut client, &job.submission_id).await?;
    eprintln!("job {} {}", job.submission_id, describe(&job));
    if job.state != "SUCCEEDED" {
        bail!("job {} {}", job.submission_id, job.state);
    }
    Ok(())
}

async fn get(client: &mut Client, id: &str) -> Result<pb::SubmittedJob> {
    Ok(client
        .get_submitted_job(pb::SubmittedJobId {
            submission_id: id.to_string(),
        })
        .await
        .map_err(status_error)?
        .into_inner())
}

/// The state, with the exit code and why, in a few words.
fn describe(job: &pb::SubmittedJob) -> String {
    let mut out = job.state.clone();
    if job.has_exit_code {
        out.push_str(&format!(" (exit code {})", job.exit_code));
    }
    if !job.message.is_empty() && job.state != "SUCCEEDED" {
        out.push_str(&format!(": {}", job.message));
    }
    out
}

fn to_json(job: &pb::SubmittedJob) -> serde_json::Value {
    json!({
        "submission_id": job.submission_id,
        "entrypoint": job.entrypoint,
        "working_dir": job.working_dir,
        "state": job.state,
        "exit_code": job.has_exit_code.then_some(job.exit_code),
        "message": job.message,
        "started_at_ms": job.started_at_ms,
        "ended_at_ms": (job.ended_at_ms > 0).then_some(job.ended_at_ms),
        "pid": (job.pid > 0).then_some(job.pid),
        "driver_jobs": job.driver_jobs,
    })
}

pub async fn list(mut client: Client, as_json: bool) -> Result<()> {
    let jobs = client
        .list_submitted_jobs(pb::ListSubmittedJobsRequest {})
        .await
        .map_err(status_error)?
        .into_inner()
        .jobs;
    if as_json {
        let rows: Vec<_> = jobs.iter().map(to_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<10} {:>5} {:>15} {:>15}  ENTRYPOINT",
        "ID", "STATE", "EXIT", "STARTED_MS", "ENDED_MS"
    );
    for j in &jobs {
        println!(
            "{:<24} {:<10} {:>5} {:>15} {:>15}  {}",
            j.submission_id,
            j.state,
            if j.has_exit_code {
                j.exit_code.to_string()
            } else {
                "-".into()
            },
            j.started_at_ms,
            if j.ended_at_ms > 0 {
                j.ended_at_ms.to_string()
            } else {
                "-".into()
            },
            j.entrypoint.join(" ")
        );
    }
    Ok(())
}

pub async fn status(mut client: Client, id: &str, as_json: bool) -> Result<()> {
    let job = get(&mut client, id).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&to_json(&job))?);
        return Ok(());
    }
    println!("job {}: {}", job.submission_id, describe(&job));
    println!("  entrypoint:  {}", job.entrypoint.join(" "));
    println!("  working dir: {}", job.working_dir);
    println!("  started:     {} ms", job.started_at_ms);
    if job.ended_at_ms > 0 {
        println!("  ended:       {} ms", job.ended_at_ms);
    }
    if job.pid > 0 {
        println!("  pid:         {}", job.pid);
    }
    if !job.driver_jobs.is_empty() {
        let ids: Vec<String> = job.driver_jobs.iter().map(u64::to_string).collect();
        println!("  sessions:    {} (host list jobs)", ids.join(", "));
    }
    Ok(())
}

pub async fn logs(mut client: Client, id: &str, follow: bool) -> Result<()> {
    print_logs(&mut client, id, follow).await
}

async fn print_logs(client: &mut Client, id: &str, follow: bool) -> Result<()> {
    let mut stream = client
        .read_job_logs(pb::ReadJobLogsRequest {
            submission_id: id.to_string(),
            offset: 0,
            max_bytes: 0,
            follow,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(status_error)?;
        if chunk.skipped > 0 {
            out.flush()?;
            eprintln!(
                "[reef] the first {} bytes of output were dropped by the cap",
                chunk.skipped
            );
        }
        for line in &chunk.lines {
            out.write_all(line.text.as_bytes())?;
        }
        out.flush()?;
        if chunk.eof {
            break;
        }
    }
    Ok(())
}

pub async fn stop(mut client: Client, id: &str) -> Result<()> {
    let job = client
        .stop_job(pb::SubmittedJobId {
            submission_id: id.to_string(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    println!("job {}: {}", job.submission_id, describe(&job));
    Ok(())
}

/// `host timeline`: the trace to `output` (or standard output).
pub async fn timeline(mut client: Client, output: Option<&Path>, limit: u32) -> Result<()> {
    let reply = client
        .timeline(pb::TimelineRequest { limit })
        .await
        .map_err(status_error)?
        .into_inner();
    if !reply.missing_nodes.is_empty() {
        eprintln!(
            "nodes that did not answer in time: {}",
            reply.missing_nodes.join(", ")
        );
    }
    match output {
        Some(path) => {
            std::fs::write(path, &reply.trace_json)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} (open it in https://ui.perfetto.dev or chrome://tracing)",
                path.display()
            );
        }
        None => println!("{}", reply.trace_json),
    }
    Ok(())
}
