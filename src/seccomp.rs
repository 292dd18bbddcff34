//! The system calls a container may not make (SPEC.md 3.5).
//!
//! The promise is a class of actions, not the assignment's list of calls: on
//! a 6.x kernel no process in the container can create a set-id file, make a
//! user namespace, push input into a terminal, use the kernel keyring, trace
//! or read another process, change NUMA memory policy, use userfaultfd or
//! perf events, by any system call. Every way in that we know of is closed
//! here, and tests/confinement.rs tries each one from inside a container.
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

/// Builds the filter; [`compile`] turns it into the program [`install`] loads.
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

/// The filter compiled to classic BPF: what the kernel loads. Compiled by
/// the parent while the id-map helpers run, so the child only makes one
/// system call for it (libseccomp would compile it in the child, on the
/// container's start-up path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(Vec<u8>);

const INSTRUCTION: usize = std::mem::size_of::<libc::sock_filter>();

/// Builds the filter and compiles it for this machine's architectures.
pub fn compile() -> Result<Program> {
    use std::io::{Read, Seek};
    let filter = build()?;
    let memfd = nix::sys::memfd::memfd_create(c"zookeeper-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .context("seccomp: creating a buffer for the compiled filter")?;
    let mut buffer = std::fs::File::from(memfd);
    filter.export_bpf(&buffer).context("seccomp: compiling the filter")?;
    let mut bytes = Vec::new();
    buffer.rewind().and_then(|_| buffer.read_to_end(&mut bytes)).context("seccomp: reading the compiled filter")?;
    Program::from_bytes(bytes).context("seccomp: libseccomp's compiled filter is not whole instructions")
}

impl Program {
    /// The instructions in the kernel's (native-endian) layout.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `None` unless `bytes` is a non-empty whole number of instructions
    /// that fits a program's length field.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Program> {
        let whole = !bytes.is_empty() && bytes.len() % INSTRUCTION == 0 && bytes.len() / INSTRUCTION <= 0xffff;
        whole.then_some(Program(bytes))
    }
}

/// Loads `program` into the calling thread; it passes to every child and
/// survives exec. Needs no_new_privs set first (zookeeper drops CAP_SYS_ADMIN).
pub fn install(program: &Program) -> Result<()> {
    let instructions: Vec<libc::sock_filter> = program
        .0
        .chunks_exact(INSTRUCTION)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect();
    let fprog = libc::sock_fprog { len: instructions.len() as u16, filter: instructions.as_ptr().cast_mut() };
    // SAFETY: `fprog` points at `instructions`, alive for the call; the
    // kernel copies them and keeps no pointer.
    let ret = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog)
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("loading the seccomp filter");
    }
    Ok(())
}

fn syscall(name: &str) -> Result<ScmpSyscall> {
    ScmpSyscall::from_name(name).with_context(|| format!("seccomp: this libseccomp does not know {name}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_program_survives_the_trip_to_the_child() {
        let program = super::compile().unwrap();
        assert!(program.0.len() > 20 * super::INSTRUCTION, "{} bytes", program.0.len());
        assert_eq!(super::Program::from_bytes(program.as_bytes().to_vec()), Some(program));
        assert_eq!(super::Program::from_bytes(vec![0; 7]), None);
        assert_eq!(super::Program::from_bytes(Vec::new()), None);
    }

    #[test]
    fn the_filter_builds_with_every_rule() {
        let filter = super::build().expect("every call is known to this libseccomp");
        let path = std::env::temp_dir().join(format!("zookeeper-pfc-{}", std::process::id()));
        filter.export_pfc(std::fs::File::create(&path).unwrap()).unwrap();
        let pfc = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        for name in ["fchmodat2", "clone3", "openat2", "io_uring_setup", "set_mempolicy_home_node", "ioctl"] {
            assert!(pfc.contains(&format!("\"{name}\"")), "{name} missing from the filter:\n{pfc}");
        }
    }
}
