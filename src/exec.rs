//! Replacing the container's first process with the command.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

use crate::sync::Failure;

/// Execs `argv` with exactly `env`, looking a bare name up in the PATH of
/// `env` (the container's, not zookeeper's). Returns only on failure, with
/// the exit status of the shell's convention: 127 not found, 126 found but
/// not executable.
pub fn exec_command(argv: &[CString], env: &[CString]) -> Failure {
    let program = &argv[0];
    let shown = program.to_string_lossy();
    if program.as_bytes().contains(&b'/') {
        let errno = execve(program, argv, env);
        return failure_for(&shown, program, errno);
    }
    let search_path = env
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH.as_bytes());
    let mut denied = None;
    for dir in search_path.split(|b| *b == b':') {
        // An empty entry means the current directory, as for execvp(3).
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let mut candidate = dir.to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(program.as_bytes());
        let Ok(candidate) = CString::new(candidate) else {
            continue;
        };
        match execve(&candidate, argv, env) {
            Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::ENAMETOOLONG => continue,
            Errno::EACCES => denied = Some(candidate),
            errno => return failure_for(&shown, &candidate, errno),
        }
    }
    match denied {
        Some(candidate) => failure_for(&shown, &candidate, Errno::EACCES),
        None => Failure { exit_code: 127, message: format!("cannot execute '{shown}': not found in PATH") },
    }
}

fn execve(path: &CStr, argv: &[CString], env: &[CString]) -> Errno {
    match nix::unistd::execve(path, argv, env) {
        Err(errno) => errno,
        Ok(never) => match never {},
    }
}

fn failure_for(shown: &str, path: &CStr, errno: Errno) -> Failure {
    let exists = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes())).exists();
    let (exit_code, reason) = match errno {
        // The file is there, but its #! interpreter or ELF loader is not.
        Errno::ENOENT if exists => (126, "its interpreter or dynamic loader is missing".to_string()),
        Errno::ENOENT | Errno::ENOTDIR => (127, "no such file or directory".to_string()),
        errno => (126, crate::error::errno_text(errno)),
    };
    Failure { exit_code, message: format!("cannot execute '{shown}': {reason}") }
}
