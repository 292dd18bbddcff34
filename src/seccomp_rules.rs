//! The seccomp rules, as libseccomp builds them. Compiled into the
//! zookeeper binary at build time (build.rs), and read by the tests; the
//! reasoning for each rule is in the table at the top of `seccomp.rs`.
//! zookeeper itself never runs this: it loads the compiled program.

use anyhow::{Context, Result};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

const EPERM: ScmpAction = ScmpAction::Errno(libc::EPERM);
const ENOSYS: ScmpAction = ScmpAction::Errno(libc::ENOSYS);

const SET_ID_BITS: [u64; 2] = [libc::S_ISUID as u64, libc::S_ISGID as u64];

/// Denied whatever their arguments.
const DENIED: &[&str] = &[
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "process_madvise",
    "kcmp",
    "mbind",
    "migrate_pages",
    "move_pages",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "userfaultfd",
    "perf_event_open",
];

/// Calls whose arguments live in memory seccomp cannot read: ENOSYS, so
/// that callers fall back to the older call, whose arguments are checked.
const UNINSPECTABLE: &[&str] = &["clone3", "openat2"];

/// (call, index of its mode argument): denied when the mode has a set-id bit.
const MODE_SETTERS: &[(&str, u32)] =
    &[("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2), ("mknod", 1), ("mknodat", 2)];

/// (call, index of flags, index of mode): file creation with a set-id mode,
/// named (O_CREAT) or unnamed and linked in later (O_TMPFILE).
const CREATORS: &[(&str, u32, u32)] = &[("open", 1, 2), ("openat", 2, 3)];

/// O_TMPFILE without the O_DIRECTORY bit it is defined with.
const O_TMPFILE_ONLY: u64 = (libc::O_TMPFILE & !libc::O_DIRECTORY) as u64;

/// Builds the filter for x86-64 programs and for 32-bit x86 ones.
pub fn build() -> Result<ScmpFilterContext> {
    let mut filter = ScmpFilterContext::new(ScmpAction::Allow).context("creating the seccomp filter")?;
    // zookeeper sets no_new_privs itself (capabilities::...), in the order it chooses.
    filter.set_ctl_nnp(false).context("seccomp: no_new_privs control")?;
    filter.add_arch(ScmpArch::X86).context("seccomp: adding the x86 architecture")?;
    filter.set_act_badarch(ENOSYS).context("seccomp: bad-architecture action")?;

    for name in DENIED {
        filter.add_rule(EPERM, syscall(name)?).with_context(|| format!("seccomp: denying {name}"))?;
    }
    for name in UNINSPECTABLE {
        filter.add_rule(ENOSYS, syscall(name)?).with_context(|| format!("seccomp: denying {name}"))?;
    }
    for &(name, mode) in MODE_SETTERS {
        for bit in SET_ID_BITS {
            let rule = [ScmpArgCompare::new(mode, ScmpCompareOp::MaskedEqual(bit), bit)];
            filter
                .add_rule_conditional(EPERM, syscall(name)?, &rule)
                .with_context(|| format!("seccomp: {name}"))?;
        }
    }
    for bit in SET_ID_BITS {
        let rule = [ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(bit), bit)];
        filter.add_rule_conditional(EPERM, syscall("creat")?, &rule).context("seccomp: creat")?;
        for &(name, flags, mode) in CREATORS {
            for creating in [libc::O_CREAT as u64, O_TMPFILE_ONLY] {
                let rule = [
                    ScmpArgCompare::new(mode, ScmpCompareOp::MaskedEqual(bit), bit),
                    ScmpArgCompare::new(flags, ScmpCompareOp::MaskedEqual(creating), creating),
                ];
                filter
                    .add_rule_conditional(EPERM, syscall(name)?, &rule)
                    .with_context(|| format!("seccomp: {name}"))?;
            }
        }
    }
    for &(name, flag) in &[("unshare", 0), ("clone", 0)] {
        let newuser = libc::CLONE_NEWUSER as u64;
        let rule = [ScmpArgCompare::new(flag, ScmpCompareOp::MaskedEqual(newuser), newuser)];
        filter
            .add_rule_conditional(EPERM, syscall(name)?, &rule)
            .with_context(|| format!("seccomp: {name}"))?;
    }
    for request in [libc::TIOCSTI, libc::TIOCLINUX] {
        #[allow(clippy::unnecessary_cast)] // the request type is c_ulong on glibc, c_int on musl
        let request = request as u64;
        let rule = [ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), request)];
        filter.add_rule_conditional(EPERM, syscall("ioctl")?, &rule).context("seccomp: ioctl")?;
    }
    Ok(filter)
}

fn syscall(name: &str) -> Result<ScmpSyscall> {
    ScmpSyscall::from_name(name).with_context(|| format!("seccomp: this libseccomp does not know {name}"))
}
