//! Work on layer files in a child process inside a user namespace with the
//! id map every container of this caller gets (src/idmap.rs): there a
//! layer's owner uid N lands on the host id containers see as N, the
//! whiteouts (0:0 character devices) can be made, and a layer's files can
//! be removed whatever their container owners.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use nix::unistd::ForkResult;

use crate::idmap::IdMapPlan;

/// Runs `work` in a child in a new user namespace mapped as a container
/// is; its `Ok` text, or its error as one line, comes back.
pub fn run<F: FnOnce() -> Result<String>>(work: F) -> Result<String> {
    let plan = IdMapPlan::for_current_caller();
    let (ready_rx, ready_tx) = pipe()?;
    let (go_rx, go_tx) = pipe()?;
    let (result_rx, result_tx) = pipe()?;
    // SAFETY: fork is called from zookeeper's single thread (the registry
    // client runs no threads of its own), so the child's copy of the heap
    // and of every lock is consistent; the child only makes system calls,
    // runs `work` and leaves by _exit.
    match unsafe { nix::unistd::fork() }.context("forking the layer helper")? {
        ForkResult::Child => {
            drop((ready_rx, go_tx, result_rx));
            let outcome = child(ready_tx, go_rx, work);
            let mut out = std::fs::File::from(result_tx);
            let (code, text) = match outcome {
                Ok(text) => (0, text),
                Err(err) => (1, format!("{err:#}")),
            };
            let _ = out.write_all(text.as_bytes());
            drop(out);
            // SAFETY: _exit ends this forked child without running the
            // parent's exit handlers or flushing its copied buffers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop((ready_tx, go_rx, result_tx));
            let outcome = parent(child.as_raw(), &plan, ready_rx, go_tx, result_rx);
            let status = nix::sys::wait::waitpid(child, None).context("waiting for the layer helper")?;
            let text = outcome?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(text),
                nix::sys::wait::WaitStatus::Exited(_, _) if !text.is_empty() => Err(anyhow::anyhow!(text)),
                other => bail!("the layer helper ended badly ({other:?})"),
            }
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")
}

fn parent(pid: i32, plan: &IdMapPlan, ready: OwnedFd, go: OwnedFd, result: OwnedFd) -> Result<String> {
    let mut byte = [0u8; 1];
    let got = std::fs::File::from(ready).read(&mut byte).context("waiting for the layer helper")?;
    if got == 1 {
        let mapped = plan.start_install(pid).and_then(|installing| installing.finish());
        if let Err(err) = mapped {
            // The child sees its go pipe closed and gives up.
            drop(go);
            let mut discard = String::new();
            let _ = std::fs::File::from(result).read_to_string(&mut discard);
            return Err(err.context("mapping the layer helper's ids"));
        }
        let _ = std::fs::File::from(go).write_all(b"g");
    }
    let mut text = String::new();
    std::fs::File::from(result)
        .take(64 << 10)
        .read_to_string(&mut text)
        .context("reading the layer helper's answer")?;
    Ok(text)
}

fn child<F: FnOnce() -> Result<String>>(ready: OwnedFd, go: OwnedFd, work: F) -> Result<String> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
        .context("creating a user namespace for the layer (are unprivileged user namespaces allowed?)")?;
    std::fs::File::from(ready).write_all(b"r").context("telling zookeeper the namespace is there")?;
    let mut byte = [0u8; 1];
    if std::fs::File::from(go).read(&mut byte).context("waiting for the id map")? != 1 {
        bail!("the id map was not installed");
    }
    // Container root, as the files it makes must be owned by.
    nix::unistd::setresgid(0.into(), 0.into(), 0.into()).context("becoming container root (gid)")?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into()).context("becoming container root (uid)")?;
    // New files get exactly the modes the layer says.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    work()
}

/// Removes trees whose files may belong to container ids.
pub fn remove_trees(paths: &[PathBuf]) -> Result<()> {
    let paths = paths.to_vec();
    run(move || {
        for path in &paths {
            let meta = match std::fs::symlink_metadata(path) {
                Ok(meta) => meta,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err).with_context(|| format!("looking at {}", path.display())),
            };
            let removed =
                if meta.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
            removed.with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(String::new())
    })
    .map(|_| ())
}

/// The ids this namespace maps, for messages: `0-65536`.
pub fn mapped_range() -> String {
    let text = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let top = text
        .lines()
        .filter_map(|l| {
            let v: Vec<u64> = l.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            (v.len() == 3).then(|| v[0] + v[2])
        })
        .max()
        .unwrap_or(1);
    format!("0-{}", top.saturating_sub(1))
}
