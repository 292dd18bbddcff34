//! The system calls a container may not make (SPEC.md 3.5).
//!
//! The promise is a class of actions, not the assignment's list of calls: on
//! a 6.x kernel no process in the container can create a set-id file, make a
//! user namespace, push input into a terminal, use the kernel keyring,
//! change NUMA memory policy, use userfaultfd or perf events, by any system
//! call; nor trace or read another process by the calls made for it. Every
//! way in that we know of is closed here, and tests/confinement.rs tries
//! each one from inside a container. (Not closed, as under docker: opening
//! /proc/PID/mem of a dumpable sibling of the same user in the same
//! container. zookeeper's own processes in a container are non-dumpable
//! while they run its code, and the README's "Security" says what holds.)
//!
//! | class | calls | how |
//! |---|---|---|
//! | set-id files | chmod, fchmod, fchmodat, fchmodat2 (6.6) with S_ISUID or S_ISGID in the mode; open, openat with O_CREAT or O_TMPFILE and a set-id mode, creat with one; mknod, mknodat with a set-id mode | EPERM when the mode argument has the bit |
//! | | openat2 (its mode is inside a struct seccomp cannot read) | ENOSYS: libc falls back to openat, which is checked |
//! | | io_uring_setup/enter/register (io_uring opens files without system calls) | EPERM |
//! | user namespaces | unshare, clone with CLONE_NEWUSER | EPERM |
//! | | clone3 (flags inside a struct) | ENOSYS: glibc and musl fall back to clone, which is checked |
//! | terminal input | ioctl TIOCSTI, TIOCLINUX (its paste sub-command); compared on the low 32 bits, as the kernel reads the request, so high bits cannot dodge the rule | EPERM |
//! | keyring | keyctl, add_key, request_key | EPERM |
//! | tracing | ptrace, process_vm_readv, process_vm_writev, pidfd_getfd, process_madvise, kcmp | EPERM |
//! | NUMA policy | mbind, migrate_pages, move_pages, set_mempolicy, set_mempolicy_home_node (5.17) | EPERM |
//! | userfaultfd | userfaultfd; /dev/userfaultfd is not in the container's /dev | EPERM |
//! | perf | perf_event_open | EPERM |
//!
//! The same rules are installed for 32-bit x86 programs (int 0x80 reaches a
//! different system call table); x32 calls, which this filter does not
//! cover, get ENOSYS.

//!
//! The rules are built with libseccomp from `seccomp_rules.rs` when
//! zookeeper is built (build.rs) and the compiled program is part of the
//! binary, as Firecracker does with its filters: the container's start-up
//! only copies it into the kernel, and zookeeper does not run libseccomp
//! for it. (The program is for the build machine's architecture, so
//! build.rs refuses to cross-compile.)
//!
//! A container whose OCI configuration brings a seccomp profile of its own
//! gets that profile instead, compiled when it starts (src/seccomp_oci.rs,
//! with libseccomp linked into zookeeper statically) and loaded by
//! [`install_program`], the same way.

use anyhow::{Result, bail};

/// The compiled filter: classic BPF instructions in the kernel's layout.
const PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/seccomp.bpf"));

const INSTRUCTION: usize = std::mem::size_of::<libc::sock_filter>();

/// Loads the built-in filter into the calling thread; it passes to every
/// child and survives exec. Needs no_new_privs set first (zookeeper drops
/// CAP_SYS_ADMIN).
pub fn install() -> Result<()> {
    install_program(PROGRAM)
}

/// Loads a classic BPF program in the kernel's layout (`struct sock_filter`s
/// back to back, as libseccomp exports it: the built-in `PROGRAM`, or an
/// OCI profile from [`crate::seccomp_oci::compile`]) the way [`install`]
/// does. Needs no_new_privs set first, or CAP_SYS_ADMIN.
pub fn install_program(program: &[u8]) -> Result<()> {
    if program.is_empty() || program.len() % INSTRUCTION != 0 {
        bail!(
            "loading the seccomp filter: {} bytes are not a whole number of BPF instructions",
            program.len()
        );
    }
    let count = program.len() / INSTRUCTION;
    if count > crate::seccomp_oci::MAX_INSTRUCTIONS {
        bail!(
            "loading the seccomp filter: {count} BPF instructions, more than the kernel's {}",
            crate::seccomp_oci::MAX_INSTRUCTIONS
        );
    }
    let instructions: Vec<libc::sock_filter> = program
        .chunks_exact(INSTRUCTION)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect();
    // At most 4096, checked above.
    let fprog = libc::sock_fprog { len: count as u16, filter: instructions.as_ptr().cast_mut() };
    // prctl rather than seccomp(2): the same for a filter without flags, and
    // valgrind, under which the supervisor's tests run, knows only prctl.
    // SAFETY: `fprog` points at `instructions`, alive for the call; the
    // kernel copies them and keeps no pointer.
    let ret = unsafe {
        libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const libc::sock_fprog)
    };
    if ret != 0 {
        bail!("loading the seccomp filter: {}", crate::error::errno_text(nix::errno::Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "seccomp_rules.rs"]
mod rules;

#[cfg(test)]
mod tests {
    use super::{INSTRUCTION, PROGRAM, install_program};

    fn compiled_now() -> Vec<u8> {
        let filter = super::rules::build().expect("every call is known to this libseccomp");
        let path = std::env::temp_dir().join(format!("zookeeper-bpf-{}", std::process::id()));
        filter.export_bpf(std::fs::File::create(&path).unwrap()).unwrap();
        let bpf = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        bpf
    }

    #[test]
    fn the_built_in_program_is_the_rules_compiled() {
        assert!(PROGRAM.len() % INSTRUCTION == 0 && PROGRAM.len() > 20 * INSTRUCTION);
        assert!(PROGRAM.len() / INSTRUCTION <= usize::from(u16::MAX));
        assert_eq!(PROGRAM, compiled_now().as_slice());
    }

    #[test]
    fn the_filter_builds_with_every_rule() {
        let filter = super::rules::build().expect("every call is known to this libseccomp");
        let path = std::env::temp_dir().join(format!("zookeeper-pfc-{}", std::process::id()));
        filter.export_pfc(std::fs::File::create(&path).unwrap()).unwrap();
        let pfc = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        for name in ["fchmodat2", "clone3", "openat2", "io_uring_setup", "set_mempolicy_home_node", "ioctl"] {
            assert!(pfc.contains(&format!("\"{name}\"")), "{name} missing from the filter:\n{pfc}");
        }
    }

    #[test]
    fn a_program_that_is_not_whole_instructions_is_refused_before_the_kernel() {
        for program in [&[][..], &PROGRAM[..INSTRUCTION - 1], &PROGRAM[..PROGRAM.len() - 1]] {
            let err = format!("{:#}", install_program(program).unwrap_err());
            assert!(err.starts_with("loading the seccomp filter: ") && err.contains("whole"), "{err}");
        }
        let long = PROGRAM.repeat(4096 * INSTRUCTION / PROGRAM.len() + 1);
        let err = format!("{:#}", install_program(&long).unwrap_err());
        assert!(err.contains("more than the kernel's 4096"), "{err}");
    }
}
