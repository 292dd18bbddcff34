//! An OCI runtime spec's seccomp profile (`linux.seccomp` in config.json),
//! compiled to a BPF program with libseccomp when the container starts.
//!
//! The built-in filter (src/seccomp.rs) stays the default and stays
//! compiled at build time: this module runs only for a container whose
//! configuration brings a profile of its own. [`compile`] gives a classic
//! BPF program in the kernel's layout (`struct sock_filter`s back to back,
//! the layout of the built-in one) and [`crate::seccomp::install_program`]
//! loads it the same way, with prctl. libseccomp is linked statically.
//!
//! What is honoured, refused or ignored, and why (runc 1.1 is the reference:
//! `libcontainer/seccomp/seccomp_linux.go`):
//!
//! | field | here |
//! |---|---|
//! | `defaultAction`, `syscalls[].action` | SCMP_ACT_KILL (= KILL_THREAD, as in runc), KILL_THREAD, KILL_PROCESS, TRAP, ERRNO, TRACE, LOG, ALLOW. SCMP_ACT_NOTIFY is refused, naming the field: it needs a seccomp agent on `listenerPath`, which zookeeper does not connect to (and runc refuses it as the default action in any case) |
//! | `defaultErrnoRet`, `syscalls[].errnoRet` | the errno of ERRNO, the message of TRACE; EPERM when absent, as in runc. Refused on any other action: the runtime spec says a runtime MUST fail then (crun does; runc ignores it). Refused above 65535, the 16 bits the kernel has for it (runc truncates); the kernel itself caps an errno at 4095 |
//! | `architectures` | every SCMP_ARCH_* name the runtime spec has, added to the filter beside the native one; one that this libseccomp does not know (2.5.4 lacks LOONGARCH64, M68K, SH, SHEB) is an error naming the entry. System calls of an architecture not in the filter are killed (libseccomp's default, as in runc) |
//! | `flags` | loading goes through prctl(PR_SET_SECCOMP), which takes no flags. SECCOMP_FILTER_FLAG_TSYNC is ignored, as runc ignores it: the filter is loaded by the container's single-threaded first process, and exec ends any other thread. SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW, which runc passes to seccomp(2), are refused rather than dropped: a profile that asks for a log of what it denies, or for the speculative-store-bypass mitigation off, does not get a silently different container. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV concerns only a notify listener and is refused, as runc refuses it (unknown to it) |
//! | `listenerPath`, `listenerMetadata` | unused: they serve SCMP_ACT_NOTIFY only, which is refused |
//! | `syscalls[].names` | a name this libseccomp does not know is skipped, as runc skips it (profiles list calls newer or older than the kernel and libseccomp); [`unknown_syscalls`] lists them. An empty list or an empty name is an error: the runtime spec wants at least one name |
//! | a rule whose action is the default action | skipped, as runc skips it (libseccomp refuses it) |
//! | `syscalls[].args` | `index` 0-5 (more is an error), `value`, `op` SCMP_CMP_NE, LT, LE, EQ, GE, GT, MASKED_EQ. MASKED_EQ matches when `arg & value == valueTwo` (valueTwo absent: 0), as runc reads it; the other operators do not read `valueTwo`. The conditions of one entry must all hold (AND), except, as in runc, when two of them test the same argument, which one libseccomp rule cannot express: then each condition is a rule of its own and any one of them matches (OR) |
//!
//! An unknown action, architecture, flag or operator cannot reach
//! [`compile`]: oci-spec's types have no value for it, so it fails where the
//! JSON is read. [`from_json`] reads a profile naming the field at fault
//! (`syscalls[2].action: unknown variant "SCMP_ACT_FOO", expected one of
//! ...`). The program may have 4096 instructions at most (the kernel's
//! BPF_MAXINSNS); a profile compiled beyond that is an error. With more
//! than 32 rules the program is a binary tree over the call numbers (what
//! runc asks of libseccomp too), so a long allow list costs a few
//! comparisons per system call, not hundreds.

use anyhow::{Context, Result, anyhow, bail};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};
use std::io::{Read, Seek};

/// Where the profile is in config.json, for the error messages.
const FIELD: &str = "linux.seccomp";

/// The most instructions a classic BPF program may have (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// A system call has at most six arguments.
const MAX_ARGUMENTS: usize = 6;

/// Above this many rules, libseccomp is asked for a binary tree (runc's
/// threshold; libseccomp 2.5.4 and older misbehave with a tree of no rules).
const TREE_ABOVE: usize = 32;

/// Compiles `profile` to a classic BPF program in the kernel's layout, for
/// [`crate::seccomp::install_program`]. The module's documentation says
/// what is honoured, refused and ignored; an error names the field at fault.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<u8>> {
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        &format!("{FIELD}.defaultAction"),
        &format!("{FIELD}.defaultErrnoRet"),
    )?;
    let mut filter = ScmpFilterContext::new(default).context("seccomp: creating the filter")?;
    for (i, &arch) in profile.architectures().iter().flatten().enumerate() {
        let field = format!("{FIELD}.architectures[{i}]");
        filter.add_arch(scmp_arch(arch)).map_err(|err| {
            anyhow!("{field}: {arch}: not an architecture this libseccomp ({}) knows: {err}", version())
        })?;
    }
    for (i, flag) in profile.flags().iter().flatten().enumerate() {
        check_flag(*flag, &format!("{FIELD}.flags[{i}]"))?;
    }
    let mut rules = 0;
    for (i, syscall) in profile.syscalls().iter().flatten().enumerate() {
        rules += add_rules(&mut filter, syscall, default, &format!("{FIELD}.syscalls[{i}]"))?;
    }
    if rules > TREE_ABOVE {
        filter.set_ctl_optimize(2).context("seccomp: asking libseccomp for a binary tree")?;
    }
    let program = export(&filter)?;
    let instructions = program.len() / std::mem::size_of::<libc::sock_filter>();
    if instructions > MAX_INSTRUCTIONS {
        bail!(
            "{FIELD}: the profile compiles to {instructions} BPF instructions, more than the kernel's {MAX_INSTRUCTIONS}"
        );
    }
    Ok(program)
}

/// The names in `profile` that this libseccomp does not know, which
/// [`compile`] skips: for a warning, as runc logs them.
pub fn unknown_syscalls(profile: &LinuxSeccomp) -> Vec<&str> {
    let names = profile.syscalls().iter().flatten().flat_map(|syscall| syscall.names());
    names
        .filter(|name| !name.is_empty() && ScmpSyscall::from_name(name).is_err())
        .map(String::as_str)
        .collect()
}

/// Reads a `linux.seccomp` object. A value oci-spec cannot take (an unknown
/// action, architecture, flag or operator, a negative number) is an error
/// naming its field and the value.
pub fn from_json(json: &str) -> Result<LinuxSeccomp> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { FIELD.to_string() } else { format!("{FIELD}.{path}") };
        anyhow!("{field}: {}", err.into_inner())
    })
}

/// An action and its errno field (`errnoRet`, `defaultErrnoRet`).
fn action(
    action: LinuxSeccompAction,
    errno: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<ScmpAction> {
    let data = match errno {
        None => libc::EPERM as u16,
        Some(errno) => u16::try_from(errno)
            .map_err(|_| anyhow!("{errno_field}: {errno} does not fit in the 16 bits seccomp has for it"))?,
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(data.into()),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data),
        _ if errno.is_some() => {
            bail!("{errno_field}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return a value, not {action}")
        }
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => bail!(
            "{field}: SCMP_ACT_NOTIFY is not supported: it needs a seccomp agent listening on listenerPath, which zookeeper does not connect to"
        ),
    })
}

fn check_flag(flag: LinuxSeccompFilterFlag, field: &str) -> Result<()> {
    match flag {
        // Only the container's first process runs when the filter is loaded.
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => Ok(()),
        LinuxSeccompFilterFlag::SeccompFilterFlagLog | LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
            bail!(
                "{field}: {flag} is not supported: zookeeper loads the filter with prctl, which takes no flags"
            )
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => bail!(
            "{field}: {flag} is not supported: it serves a notify listener, and SCMP_ACT_NOTIFY is not supported"
        ),
    }
}

/// Adds the rules of one `syscalls[]` entry; returns how many.
fn add_rules(
    filter: &mut ScmpFilterContext,
    syscall: &LinuxSyscall,
    default: ScmpAction,
    field: &str,
) -> Result<usize> {
    let act = action(
        syscall.action(),
        syscall.errno_ret(),
        &format!("{field}.action"),
        &format!("{field}.errnoRet"),
    )?;
    if syscall.names().is_empty() {
        bail!("{field}.names: empty; an entry names at least one system call");
    }
    let args = syscall.args().as_deref().unwrap_or_default();
    let mut conditions = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        conditions.push(condition(arg, &format!("{field}.args[{i}]"))?);
    }
    let mut seen = [false; MAX_ARGUMENTS];
    let repeated = args.iter().any(|arg| std::mem::replace(&mut seen[arg.index()], true));
    let mut added = 0;
    for (i, name) in syscall.names().iter().enumerate() {
        if name.is_empty() {
            bail!("{field}.names[{i}]: empty");
        }
        // The default already does this (libseccomp would refuse the rule).
        if act == default {
            continue;
        }
        // A call this libseccomp does not know: skipped, see the module doc.
        let Ok(number) = ScmpSyscall::from_name(name) else { continue };
        let mut add = |conditions: &[ScmpArgCompare]| {
            filter
                .add_rule_conditional(act, number, conditions)
                .map(|_| ())
                .map_err(|err| anyhow!("{field}: adding the rule for {name}: {err}"))
        };
        if repeated {
            for condition in &conditions {
                add(std::slice::from_ref(condition))?;
            }
        } else {
            add(&conditions)?;
        }
        added += 1;
    }
    Ok(added)
}

fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare> {
    let index = arg.index();
    if index >= MAX_ARGUMENTS {
        bail!("{field}.index: {index} is not an argument: a system call has arguments 0 to 5");
    }
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let datum = arg.value_two().unwrap_or(0);
            return Ok(ScmpArgCompare::new(index as u32, ScmpCompareOp::MaskedEqual(arg.value()), datum));
        }
    };
    Ok(ScmpArgCompare::new(index as u32, op, arg.value()))
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "of unknown version".to_string(),
    }
}

/// The program as libseccomp writes it, through a memory file (this
/// libseccomp, 2.5, has no export to memory).
fn export(filter: &ScmpFilterContext) -> Result<Vec<u8>> {
    let fd = nix::sys::memfd::memfd_create(c"zookeeper-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .context("seccomp: a memory file for the program")?;
    let mut file = std::fs::File::from(fd);
    filter.export_bpf(&file).map_err(|err| anyhow!("seccomp: compiling the profile: {err}"))?;
    file.rewind().context("seccomp: reading the program back")?;
    let mut program = Vec::new();
    file.read_to_end(&mut program).context("seccomp: reading the program back")?;
    if program.is_empty() || program.len() % std::mem::size_of::<libc::sock_filter>() != 0 {
        bail!("seccomp: libseccomp wrote a program of {} bytes, not whole instructions", program.len());
    }
    Ok(program)
}
