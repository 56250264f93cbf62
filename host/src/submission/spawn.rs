//! Starting a job's process so that it ends with the head.
//!
//! The child asks the kernel for SIGKILL when its parent goes
//! (`PR_SET_PDEATHSIG`), so a head that is SIGKILLed or crashes leaves no
//! job running. The kernel's "parent" there is the *thread* that forked
//! the child: a thread of tokio's blocking pool exits after a while idle,
//! and would take every job it started with it. So every job is forked by
//! one dedicated thread that lives as long as the process.
//!
//! That signal reaches the job's first process only. For the processes it
//! starts itself (a shell's children, in its process group), each job has
//! a [`Guard`]: a `sh` reading a pipe whose other end only the head holds.
//! When the head's process ends, the pipe closes, `read` returns and the
//! guard SIGKILLs the job's process group. The head ends the guard once
//! the job's output is closed (every process of the job ended), so it
//! never signals a process group id that may have been reused.

use std::io;
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::OnceLock;

use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

/// What the spawner thread is asked to do: fork `command` within `runtime`
/// (whose reactor then watches the child).
struct Request {
    command: Command,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// The spawner thread's queue; the thread never exits, as this static
/// holds the sender for the life of the process.
fn spawner() -> io::Result<&'static mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    if let Some(tx) = SPAWNER.get() {
        return Ok(tx);
    }
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("reef-job-spawner".into())
        .spawn(move || {
            for mut request in rx {
                let _runtime = request.runtime.enter();
                let _ = request.reply.send(request.command.spawn());
            }
        })?;
    // Two first callers at once: the loser's thread sees its sender dropped
    // and ends without having forked anything.
    Ok(SPAWNER.get_or_init(|| tx))
}

/// Starts `command` from the spawner thread, its process set to be killed
/// when this one ends.
pub async fn spawn(mut command: Command) -> io::Result<Child> {
    let head = std::process::id();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it makes two system calls
    // (prctl, getppid) and allocates nothing on success.
    unsafe {
        command.pre_exec(move || die_with_parent(head));
    }
    from_spawner(command).await
}

/// Forks `command` on the spawner thread.
async fn from_spawner(command: Command) -> io::Result<Child> {
    let (reply, answer) = oneshot::channel();
    spawner()?
        .send(Request {
            command,
            runtime: tokio::runtime::Handle::current(),
            reply,
        })
        .map_err(|_| io::Error::other("the job spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the job spawner thread is gone"))?
}

/// Kills a job's process group when the head's process ends (see the module
/// documentation); [`Guard::release`] ends it when the job is over.
pub struct Guard {
    child: Child,
    /// The pipe's end the guard waits on: closed with the head.
    _pipe: ChildStdin,
}

impl Guard {
    /// A guard for process group `pgid` (not 0).
    pub async fn start(pgid: u32) -> io::Result<Guard> {
        if pgid == 0 {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                r#"read -r _; kill -s KILL -- "-$1""#,
                "reef-job-guard",
            ])
            .arg(pgid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Apart from the job's group: `stop` does not signal it.
            .process_group(0);
        // Not `spawn`: killed with the head, it might not send its signal.
        let mut child = from_spawner(command).await?;
        let pipe = child.stdin.take().expect("the guard's stdin is piped");
        Ok(Guard { child, _pipe: pipe })
    }

    /// The job is over: the guard ends without signalling anything.
    pub async fn release(mut self) {
        // SIGKILL: the shell cannot run its `kill` on the way out.
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// In the child: SIGKILL when the forking thread ends, unless the head
/// (`head`, its pid) ended already before the call (then nothing would send it).
fn die_with_parent(head: u32) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes integers only and touches no
    // memory of ours.
    let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } as u32 != head {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}
