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
//! What is honoured, refused or ignored, and why (runc's
//! `libcontainer/seccomp/seccomp_linux.go` is the reference):
//!
//! | field | here |
//! |---|---|
//! | `defaultAction`, `syscalls[].action` | SCMP_ACT_KILL (= KILL_THREAD, as in runc), KILL_THREAD, KILL_PROCESS, TRAP, ERRNO, TRACE, LOG, ALLOW. SCMP_ACT_NOTIFY is refused, naming the field: it needs a seccomp agent on `listenerPath`, which zookeeper does not connect to (and runc refuses it as the default action in any case) |
//! | `defaultErrnoRet`, `syscalls[].errnoRet` | the errno of ERRNO (at most 4094: libseccomp takes errnos below its MAX_ERRNO, 4095), the message of TRACE (at most 65535, the 16 bits the kernel has for it; runc truncates); EPERM when absent, as in runc. Refused on any other action: the runtime spec says a runtime MUST fail then (crun does; runc ignores it) |
//! | `architectures` | every SCMP_ARCH_* name the runtime spec has, added to the filter beside the native one. One that libseccomp cannot add is an error naming the entry, as in runc: one this libseccomp does not know (2.5.4 lacks LOONGARCH64, M68K, SH, SHEB), or one of the other byte order (on x86-64: MIPS, MIPS64, MIPS64N32, PPC, PPC64, S390, S390X, PARISC, PARISC64), which cannot share a filter with the native one. System calls of an architecture not in the filter kill the thread (libseccomp's default, as in runc) |
//! | `flags` | loading goes through prctl(PR_SET_SECCOMP), which takes no flags. SECCOMP_FILTER_FLAG_TSYNC is ignored, as runc ignores it: the filter is loaded by the container's single-threaded first process, and exec ends any other thread. SECCOMP_FILTER_FLAG_LOG and SECCOMP_FILTER_FLAG_SPEC_ALLOW, which runc passes to seccomp(2), are refused rather than dropped: a profile that asks for a log of what it denies, or for the speculative-store-bypass mitigation off, does not get a silently different container. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV concerns only a notify listener and is refused, as runc refuses it (unknown to it) |
//! | `listenerPath`, `listenerMetadata` | unused: they serve SCMP_ACT_NOTIFY only, which is refused |
//! | `syscalls[].names` | a name this libseccomp does not know is skipped, as runc skips it (profiles list calls newer or older than the kernel and libseccomp); [`unknown_syscalls`] lists them. An empty list or an empty name is an error: the runtime spec wants at least one name |
//! | a rule whose action is the default action | skipped, as runc skips it (libseccomp refuses it) |
//! | `syscalls[].args` | `index` 0-5 (more is an error), `value`, `op` SCMP_CMP_NE, LT, LE, EQ, GE, GT, MASKED_EQ. MASKED_EQ matches when `arg & value == valueTwo` (valueTwo absent: 0), as runc reads it; the other operators do not read `valueTwo`. The conditions of one entry must all hold (AND), except, as in runc, when two of them test the same argument, which one libseccomp rule cannot express: then each condition is a rule of its own and any one of them matches (OR) |
//!
//! An unknown action, architecture, flag or operator cannot reach
//! [`compile`]: oci-spec's types have no value for it, so it fails where the
//! JSON is read. [`from_json`] reads a profile naming the field at fault
//! (``linux.seccomp.syscalls[2].action: unknown variant `SCMP_ACT_FOO`,
//! expected one of ...``). The program may have 4096 instructions at most
//! (the kernel's BPF_MAXINSNS); a profile compiled beyond that is an error.
//! With more than 32 rules libseccomp is asked for a binary tree over the
//! call numbers (as runc asks it), so that a long allow list is searched,
//! not walked, at every system call.
//!
//! The cost is paid at each start of a container with a profile: podman's
//! default profile (437 calls, 3 architectures) takes 18 to 30 ms to
//! compile on the project's machine, to 1426 instructions; a handful of
//! rules, a tenth of a millisecond.

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

/// The largest errno libseccomp takes (less than its MAX_ERRNO, 4095; the
/// kernel's is 4095 too).
const MAX_ERRNO: u16 = 4094;

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
    let mut filter = ScmpFilterContext::new(default).map_err(|err| {
        anyhow!("{FIELD}.defaultAction: libseccomp refuses {}: {}", profile.default_action(), lower(err))
    })?;
    for (i, &arch) in profile.architectures().iter().flatten().enumerate() {
        let field = format!("{FIELD}.architectures[{i}]");
        filter.add_arch(scmp_arch(arch)).map_err(|err| {
            anyhow!(
                "{field}: {arch}: libseccomp {} cannot add it to a filter for this machine: {}",
                version(),
                lower(err)
            )
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
        filter
            .set_ctl_optimize(2)
            .map_err(|err| anyhow!("seccomp: asking libseccomp for a binary tree: {}", lower(err)))?;
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
    let data = |most: u16, what: &str| match errno {
        None => Ok(libc::EPERM as u16),
        Some(errno) => match u16::try_from(errno) {
            Ok(data) if data <= most => Ok(data),
            _ => Err(anyhow!("{errno_field}: {errno} is more than {most}, the largest {what}")),
        },
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(data(MAX_ERRNO, "errno")?.into()),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data(u16::MAX, "message to a tracer")?),
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
                .map_err(|err| anyhow!("{field}: libseccomp refuses the rule for {name}: {}", lower(err)))
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

/// A library's message as zookeeper's read: starting in lower case.
fn lower(err: impl std::fmt::Display) -> String {
    let text = err.to_string();
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

fn version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "(of unknown version)".to_string(),
    }
}

/// The program as libseccomp writes it, through a memory file (this
/// libseccomp, 2.5, has no export to memory).
fn export(filter: &ScmpFilterContext) -> Result<Vec<u8>> {
    let fd = nix::sys::memfd::memfd_create(c"zookeeper-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .context("seccomp: a memory file for the program")?;
    let mut file = std::fs::File::from(fd);
    filter.export_bpf(&file).map_err(|err| anyhow!("seccomp: compiling the profile: {}", lower(err)))?;
    file.rewind().context("seccomp: reading the program back")?;
    let mut program = Vec::new();
    file.read_to_end(&mut program).context("seccomp: reading the program back")?;
    if program.is_empty() || program.len() % std::mem::size_of::<libc::sock_filter>() != 0 {
        bail!("seccomp: libseccomp wrote a program of {} bytes, not whole instructions", program.len());
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::{MAX_INSTRUCTIONS, compile, from_json, unknown_syscalls};
    use oci_spec::runtime::LinuxSeccomp;
    use serde_json::json;

    const INSTRUCTION: usize = std::mem::size_of::<libc::sock_filter>();

    fn profile(value: serde_json::Value) -> LinuxSeccomp {
        from_json(&value.to_string()).expect("a valid profile")
    }

    fn data(name: &str) -> LinuxSeccomp {
        let path = format!("{}/tests/data/seccomp/{name}", env!("CARGO_MANIFEST_DIR"));
        from_json(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|err| panic!("{path}: {err:#}"))
    }

    /// `profile` is refused, by compile or by from_json, and the error names
    /// `field` (and `value`).
    fn refused(value: serde_json::Value, field: &str, value_text: &str) {
        let err = match from_json(&value.to_string()) {
            Err(err) => err,
            Ok(profile) => match compile(&profile) {
                Err(err) => err,
                Ok(program) => panic!("compiled to {} bytes, not refused", program.len()),
            },
        };
        let text = format!("{err:#}");
        assert!(text.starts_with(&format!("{field}: ")), "{text:?} does not start with {field:?}");
        assert!(text.contains(value_text), "{text:?} does not name {value_text:?}");
        assert_eq!(text, text.to_string(), "one line");
        assert!(!text.contains('\n'), "{text:?}");
    }

    fn allow_with(syscall: serde_json::Value) -> serde_json::Value {
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [syscall] })
    }

    /// A program as the kernel takes it: whole instructions, at most 4096,
    /// starting as libseccomp's do, by loading the architecture (BPF_LD |
    /// BPF_W | BPF_ABS, offset 4 of struct seccomp_data).
    fn assert_is_a_program(program: &[u8]) {
        assert!(program.len() % INSTRUCTION == 0 && !program.is_empty(), "{} bytes", program.len());
        assert!(program.len() / INSTRUCTION <= MAX_INSTRUCTIONS);
        assert_eq!(u16::from_ne_bytes([program[0], program[1]]), 0x20, "first instruction: ld [arch]");
        assert_eq!(u32::from_ne_bytes([program[4], program[5], program[6], program[7]]), 4);
    }

    #[test]
    fn podmans_profile_compiles() {
        let profile = data("podman-4.3.1-oci.json");
        assert_eq!(profile.syscalls().as_ref().unwrap().len(), 22);
        assert_is_a_program(&compile(&profile).unwrap());
    }

    #[test]
    fn the_containers_common_profile_compiles() {
        let profile = data("containers-common-0.50.1.json");
        assert_is_a_program(&compile(&profile).unwrap());
    }

    #[test]
    fn the_small_profile_compiles_skipping_its_unknown_call() {
        let profile = data("small.json");
        assert_is_a_program(&compile(&profile).unwrap());
        assert_eq!(unknown_syscalls(&profile), ["no_such_call_in_any_kernel"]);
    }

    #[test]
    fn an_unknown_call_is_skipped_and_listed() {
        let with = profile(allow_with(
            json!({ "names": ["getppid", "frobnicate_2099"], "action": "SCMP_ACT_ERRNO" }),
        ));
        let without = profile(allow_with(json!({ "names": ["getppid"], "action": "SCMP_ACT_ERRNO" })));
        assert_eq!(compile(&with).unwrap(), compile(&without).unwrap());
        assert_eq!(unknown_syscalls(&with), ["frobnicate_2099"]);
        assert!(unknown_syscalls(&without).is_empty());
    }

    #[test]
    fn a_rule_doing_what_the_default_does_is_skipped() {
        let redundant = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                { "names": ["getpid"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            ],
        });
        let plain = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ALLOW" }],
        });
        assert_eq!(compile(&profile(redundant)).unwrap(), compile(&profile(plain)).unwrap());
    }

    #[test]
    fn errno_defaults_to_eperm_and_kill_is_kill_thread() {
        let program = |syscall| compile(&profile(allow_with(syscall))).unwrap();
        assert_eq!(
            program(json!({ "names": ["getppid"], "action": "SCMP_ACT_ERRNO" })),
            program(json!({ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM }))
        );
        assert_eq!(
            program(json!({ "names": ["getppid"], "action": "SCMP_ACT_TRACE" })),
            program(json!({ "names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": libc::EPERM }))
        );
        assert_eq!(
            program(json!({ "names": ["getppid"], "action": "SCMP_ACT_KILL" })),
            program(json!({ "names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD" }))
        );
        let default = |errno: Option<u32>| {
            let mut value = json!({ "defaultAction": "SCMP_ACT_ERRNO" });
            if let Some(errno) = errno {
                value["defaultErrnoRet"] = errno.into();
            }
            compile(&profile(value)).unwrap()
        };
        assert_eq!(default(None), default(Some(1)));
        assert_ne!(default(Some(38)), default(Some(1)));
    }

    #[test]
    fn every_action_and_operator_compiles() {
        for action in [
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_LOG",
        ] {
            let program = compile(&profile(allow_with(json!({ "names": ["getppid"], "action": action }))));
            assert_is_a_program(&program.unwrap_or_else(|err| panic!("{action}: {err:#}")));
            let default = profile(json!({ "defaultAction": action, "syscalls": [
                { "names": ["getppid"], "action": "SCMP_ACT_ALLOW" },
            ] }));
            assert_is_a_program(&compile(&default).unwrap_or_else(|err| panic!("{action}: {err:#}")));
        }
        for op in [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ] {
            let rule = json!({ "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "args": [
                { "index": 0, "value": 1000, "valueTwo": 8, "op": op },
                { "index": 5, "value": 3, "op": op },
            ] });
            let program = compile(&profile(allow_with(rule)));
            assert_is_a_program(&program.unwrap_or_else(|err| panic!("{op}: {err:#}")));
        }
    }

    #[test]
    fn every_architecture_of_this_byte_order_compiles() {
        let little_endian = [
            "SCMP_ARCH_NATIVE",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_MIPSEL",
            "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_RISCV64",
        ];
        for arch in little_endian {
            let value = json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch], "syscalls": [
                { "names": ["getppid"], "action": "SCMP_ACT_ERRNO" },
            ] });
            assert_is_a_program(&compile(&profile(value)).unwrap_or_else(|err| panic!("{arch}: {err:#}")));
        }
        // Several at once, the native one among them, and twice: all fine.
        let value = json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": little_endian });
        assert_is_a_program(&compile(&profile(value)).unwrap());
    }

    #[test]
    fn an_architecture_of_the_other_byte_order_is_refused_naming_it() {
        for arch in [
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_PPC",
            "SCMP_ARCH_PPC64",
            "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_PARISC",
            "SCMP_ARCH_PARISC64",
        ] {
            let value =
                json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", arch] });
            refused(value, "linux.seccomp.architectures[1]", arch);
        }
    }

    #[test]
    fn an_architecture_this_libseccomp_lacks_is_refused_naming_it() {
        let version = libseccomp::ScmpVersion::current().unwrap();
        if (version.major, version.minor) >= (2, 6) {
            return; // 2.6 knows them all
        }
        for arch in ["SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB"] {
            let value =
                json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", arch] });
            refused(value, "linux.seccomp.architectures[1]", arch);
        }
    }

    #[test]
    fn notify_is_refused_naming_the_field() {
        refused(
            json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/agent.sock" }),
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY",
        );
        let value = json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock", "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO" },
            { "names": ["mount"], "action": "SCMP_ACT_NOTIFY" },
        ] });
        refused(value, "linux.seccomp.syscalls[1].action", "SCMP_ACT_NOTIFY");
    }

    #[test]
    fn flags_that_prctl_cannot_pass_are_refused_and_tsync_is_ignored() {
        for flag in [
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ] {
            let value =
                json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC", flag] });
            refused(value, "linux.seccomp.flags[1]", flag);
        }
        let tsync = json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"] });
        let none = json!({ "defaultAction": "SCMP_ACT_ALLOW" });
        assert_eq!(compile(&profile(tsync)).unwrap(), compile(&profile(none)).unwrap());
    }

    #[test]
    fn an_errno_beyond_the_kernels_is_refused() {
        refused(
            json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4095 }),
            "linux.seccomp.defaultErrnoRet",
            "4095",
        );
        refused(
            allow_with(json!({ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536 })),
            "linux.seccomp.syscalls[0].errnoRet",
            "65536",
        );
        refused(
            allow_with(json!({ "names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 70000 })),
            "linux.seccomp.syscalls[0].errnoRet",
            "70000",
        );
        refused(
            json!({ "defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": u32::MAX }),
            "linux.seccomp.defaultErrnoRet",
            &u32::MAX.to_string(),
        );
        // The largest of each fits; 0 too (the call "succeeds", not run).
        for (action, errno) in [("SCMP_ACT_ERRNO", 4094), ("SCMP_ACT_TRACE", 65535), ("SCMP_ACT_ERRNO", 0)] {
            let rule = json!({ "names": ["getpid"], "action": action, "errnoRet": errno });
            let program = compile(&profile(allow_with(rule)));
            assert_is_a_program(&program.unwrap_or_else(|err| panic!("{action} {errno}: {err:#}")));
            let default = json!({ "defaultAction": action, "defaultErrnoRet": errno });
            assert_is_a_program(&compile(&profile(default)).unwrap());
        }
    }

    #[test]
    fn an_errno_on_an_action_without_one_is_refused() {
        refused(
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1 }),
            "linux.seccomp.defaultErrnoRet",
            "SCMP_ACT_ALLOW",
        );
        refused(
            allow_with(json!({ "names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 1 })),
            "linux.seccomp.syscalls[0].errnoRet",
            "SCMP_ACT_KILL_PROCESS",
        );
    }

    #[test]
    fn empty_names_are_refused() {
        refused(
            allow_with(json!({ "names": [], "action": "SCMP_ACT_ERRNO" })),
            "linux.seccomp.syscalls[0].names",
            "empty",
        );
        refused(
            allow_with(json!({ "names": ["getpid", ""], "action": "SCMP_ACT_ERRNO" })),
            "linux.seccomp.syscalls[0].names[1]",
            "empty",
        );
    }

    #[test]
    fn an_argument_index_beyond_5_is_refused() {
        let rule = json!({ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [
            { "index": 5, "value": 1, "op": "SCMP_CMP_EQ" },
            { "index": 6, "value": 1, "op": "SCMP_CMP_EQ" },
        ] });
        refused(allow_with(rule), "linux.seccomp.syscalls[0].args[1].index", "6");
        let huge = json!({ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [
            { "index": u64::MAX, "value": 1, "op": "SCMP_CMP_EQ" },
        ] });
        refused(allow_with(huge), "linux.seccomp.syscalls[0].args[0].index", &u64::MAX.to_string());
    }

    #[test]
    fn unknown_values_are_refused_naming_field_and_value() {
        refused(json!({ "defaultAction": "SCMP_ACT_FOO" }), "linux.seccomp.defaultAction", "SCMP_ACT_FOO");
        refused(
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_VAX"] }),
            "linux.seccomp.architectures[1]",
            "SCMP_ARCH_VAX",
        );
        refused(
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"] }),
            "linux.seccomp.flags[0]",
            "SECCOMP_FILTER_FLAG_FAST",
        );
        refused(
            allow_with(json!({ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [
                { "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                { "index": 1, "value": 1, "op": "SCMP_CMP_APPROX" },
            ] })),
            "linux.seccomp.syscalls[0].args[1].op",
            "SCMP_CMP_APPROX",
        );
        refused(
            allow_with(json!({ "names": ["getpid"], "action": "SCMP_ACT_MAYBE" })),
            "linux.seccomp.syscalls[0].action",
            "SCMP_ACT_MAYBE",
        );
        refused(
            allow_with(json!({ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1 })),
            "linux.seccomp.syscalls[0].errnoRet",
            "-1",
        );
        refused(json!({ "syscalls": [] }), "linux.seccomp", "defaultAction");
        refused(json!([]), "linux.seccomp", "expected struct");
        refused(
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": {} }),
            "linux.seccomp.syscalls",
            "map",
        );
        let err = format!("{:#}", from_json("{ \"defaultAction\": ").unwrap_err());
        assert!(err.starts_with("linux.seccomp.defaultAction: ") && err.contains("EOF"), "{err}");
    }

    #[test]
    fn a_profile_beyond_the_kernels_4096_instructions_is_refused() {
        let rules: Vec<_> = (0..5000)
            .map(|value| {
                json!({ "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "args": [
                    { "index": 0, "value": value, "op": "SCMP_CMP_EQ" },
                ] })
            })
            .collect();
        let value = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules });
        refused(value, "linux.seccomp", "4096");
    }
}
