//! OCI seccomp profiles (src/seccomp_oci.rs) compiled and really loaded:
//! each check forks a child that sets no_new_privs, loads the program with
//! `seccomp::install_program` and makes system calls; the parent reads
//! what happened from the child's exit status. No container, no root.

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::ForkResult;
use serde_json::json;
use zookeeper::{seccomp, seccomp_oci};

/// How a confined child ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The child's check returned this (an errno, or 0 for success).
    Returned(i32),
    Killed(Signal),
}

/// The child could not load the program (its exit status).
const NOT_LOADED: i32 = 250;

fn compile(profile: serde_json::Value) -> Vec<u8> {
    let profile = seccomp_oci::from_json(&profile.to_string()).unwrap();
    seccomp_oci::compile(&profile).unwrap()
}

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/seccomp/{name}", env!("CARGO_MANIFEST_DIR"));
    let profile = seccomp_oci::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    seccomp_oci::compile(&profile).unwrap()
}

/// Runs `check` in a child confined by `program`.
fn confined(program: &[u8], check: impl Fn() -> i32) -> End {
    // SAFETY: the child only makes system calls (prctl, the filter's load,
    // the check's calls) and leaves with _exit; the allocation in
    // install_program is safe after fork with glibc, which resets malloc's
    // locks in the child.
    match unsafe { nix::unistd::fork() }.unwrap() {
        ForkResult::Child => {
            // SAFETY: prctl with integer arguments only.
            let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let status =
                if nnp == 0 && seccomp::install_program(program).is_ok() { check() } else { NOT_LOADED };
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, NOT_LOADED) => panic!("the child could not load the program"),
            WaitStatus::Exited(_, status) => End::Returned(status),
            WaitStatus::Signaled(_, signal, _) => End::Killed(signal),
            other => panic!("child: {other:?}"),
        },
    }
}

/// 0 if the call succeeded, else its errno.
fn outcome(ret: libc::c_long) -> i32 {
    if ret < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(-1) } else { 0 }
}

fn getppid() -> i32 {
    // SAFETY: getppid takes no arguments.
    outcome(unsafe { libc::syscall(libc::SYS_getppid) })
}

fn getpid() -> i32 {
    // SAFETY: getpid takes no arguments.
    outcome(unsafe { libc::syscall(libc::SYS_getpid) })
}

/// getpgid with any 64-bit argument: ESRCH for a pid that does not exist,
/// a distinct errno when a rule catches it.
fn getpgid(pid: u64) -> i32 {
    // SAFETY: getpgid reads only its integer argument.
    outcome(unsafe { libc::syscall(libc::SYS_getpgid, pid) })
}

/// socket(2), closed again if it was made.
fn socket(domain: i32, kind: i32, protocol: i32) -> i32 {
    // SAFETY: socket takes integers; the descriptor it returns is ours to close.
    let fd = unsafe { libc::syscall(libc::SYS_socket, domain, kind, protocol) };
    let result = outcome(fd);
    if fd >= 0 {
        // SAFETY: fd was just made by this child and nothing else uses it.
        unsafe { libc::close(fd as i32) };
    }
    result
}

const CAUGHT: i32 = libc::EREMOTE; // an errno none of the calls below return by themselves

#[test]
fn an_errno_rule_denies_its_call_and_leaves_the_others() {
    let program = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }],
    }));
    assert_eq!(confined(&program, getppid), End::Returned(libc::ENOSYS));
    assert_eq!(confined(&program, getpid), End::Returned(0));
    // Without the filter, getppid works.
    assert_eq!(getppid(), 0);
}

#[test]
fn the_small_profile_does_what_it_says() {
    let program = data("small.json");
    assert_eq!(confined(&program, getppid), End::Returned(libc::ENOSYS));
    assert_eq!(confined(&program, getpid), End::Returned(0));
    // socket: AF_PACKET (arg0 EQ), or SOCK_CLOEXEC in the type (arg1 MASKED_EQ).
    assert_eq!(confined(&program, || socket(libc::AF_PACKET, libc::SOCK_RAW, 0)), End::Returned(CAUGHT));
    assert_eq!(confined(&program, || socket(libc::AF_UNIX, libc::SOCK_STREAM, 0)), End::Returned(0));
    let cloexec = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    assert_eq!(confined(&program, || socket(libc::AF_UNIX, cloexec, 0)), End::Returned(CAUGHT));
    // getpgid: arg0 == 5 or arg0 == 7 (two conditions on one argument: either).
    assert_eq!(confined(&program, || getpgid(5)), End::Returned(CAUGHT));
    assert_eq!(confined(&program, || getpgid(7)), End::Returned(CAUGHT));
    assert_ne!(confined(&program, || getpgid(6)), End::Returned(CAUGHT));
    assert_eq!(confined(&program, || getpgid(0)), End::Returned(0));
    // getsid: ERRNO without errnoRet is EPERM (beside a name no kernel has).
    // SAFETY: getsid reads only its integer argument.
    assert_eq!(
        confined(&program, || outcome(unsafe { libc::syscall(libc::SYS_getsid, 0) })),
        End::Returned(1)
    );
    // acct: SCMP_ACT_KILL_PROCESS.
    // SAFETY: acct(NULL) would turn accounting off; the filter kills first.
    let acct = || outcome(unsafe { libc::syscall(libc::SYS_acct, 0) });
    assert_eq!(confined(&program, acct), End::Killed(Signal::SIGSYS));
}

#[test]
fn every_operator_compares_as_the_runtime_spec_says() {
    // (op, value, valueTwo) -> for arguments 999, 1000, 1001: caught?
    let cases: &[(&str, u64, u64, [bool; 3])] = &[
        ("SCMP_CMP_NE", 1000, 0, [true, false, true]),
        ("SCMP_CMP_LT", 1000, 0, [true, false, false]),
        ("SCMP_CMP_LE", 1000, 0, [true, true, false]),
        ("SCMP_CMP_EQ", 1000, 0, [false, true, false]),
        ("SCMP_CMP_GE", 1000, 0, [false, true, true]),
        ("SCMP_CMP_GT", 1000, 0, [false, false, true]),
        // arg & value == valueTwo: 999 = 0x3e7, 1000 = 0x3e8, 1001 = 0x3e9.
        ("SCMP_CMP_MASKED_EQ", 0x0f, 0x08, [false, true, false]),
        ("SCMP_CMP_MASKED_EQ", 0x01, 0x01, [true, false, true]),
    ];
    for &(op, value, value_two, expected) in cases {
        let program = compile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{
                "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": CAUGHT,
                "args": [{ "index": 0, "value": value, "valueTwo": value_two, "op": op }],
            }],
        }));
        for (pid, caught) in [999, 1000, 1001].into_iter().zip(expected) {
            let end = confined(&program, || getpgid(pid));
            assert_eq!(
                end == End::Returned(CAUGHT),
                caught,
                "{op} {value} {value_two}: getpgid({pid}) {end:?}"
            );
        }
    }
    // All 64 bits are compared, not only the low 32.
    let program = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": CAUGHT,
            "args": [{ "index": 0, "value": 0x1_0000_0005_u64, "op": "SCMP_CMP_EQ" }],
        }],
    }));
    assert_eq!(confined(&program, || getpgid(0x1_0000_0005)), End::Returned(CAUGHT));
    assert_ne!(confined(&program, || getpgid(5)), End::Returned(CAUGHT));
}

#[test]
fn a_default_errno_with_an_allow_list_denies_the_rest() {
    for (errno, expected) in [(None, libc::EPERM), (Some(libc::ENOSYS), libc::ENOSYS)] {
        let mut profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{ "names": ["getpid", "exit_group", "exit"], "action": "SCMP_ACT_ALLOW" }],
        });
        if let Some(errno) = errno {
            profile["defaultErrnoRet"] = errno.into();
        }
        let program = compile(profile);
        assert_eq!(confined(&program, getpid), End::Returned(0));
        assert_eq!(confined(&program, getppid), End::Returned(expected));
        assert_eq!(confined(&program, || getpgid(0)), End::Returned(expected));
    }
}

#[test]
fn each_action_acts() {
    let with = |action: &str| {
        compile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getppid"], "action": action }],
        }))
    };
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"] {
        assert_eq!(confined(&with(action), getppid), End::Killed(Signal::SIGSYS), "{action}");
    }
    // TRACE without a tracer: the call fails with ENOSYS.
    assert_eq!(confined(&with("SCMP_ACT_TRACE"), getppid), End::Returned(libc::ENOSYS));
    assert_eq!(confined(&with("SCMP_ACT_LOG"), getppid), End::Returned(0));
    assert_eq!(confined(&with("SCMP_ACT_ERRNO"), getppid), End::Returned(libc::EPERM));
}

#[test]
fn podmans_profile_loads_and_confines() {
    let program = data("podman-4.3.1-oci.json");
    assert_eq!(confined(&program, getpid), End::Returned(0));
    assert_eq!(confined(&program, getppid), End::Returned(0));
    assert_eq!(confined(&program, || socket(libc::AF_UNIX, libc::SOCK_STREAM, 0)), End::Returned(0));
    // Listed with errnoRet 1.
    // SAFETY: kexec_load with no segments; the filter answers first.
    let kexec = || outcome(unsafe { libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0) });
    assert_eq!(confined(&program, kexec), End::Returned(libc::EPERM));
    // socket(AF_NETLINK, _, NETLINK_AUDIT): errnoRet 22 by its arguments.
    let audit = || socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_AUDIT);
    assert_eq!(confined(&program, audit), End::Returned(libc::EINVAL));
    // Not listed: the default, ENOSYS.
    // SAFETY: add_key with null pointers; the filter answers first.
    let add_key = || outcome(unsafe { libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0) });
    assert_eq!(confined(&program, add_key), End::Returned(libc::ENOSYS));
    // personality: allowed only for the listed values.
    // SAFETY: personality(0xffffffff) only reads the current persona.
    let query = || outcome(unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffff_u64) });
    assert_eq!(confined(&program, query), End::Returned(0));
    // SAFETY: a persona the profile does not list; the filter answers first.
    let other = || outcome(unsafe { libc::syscall(libc::SYS_personality, 0x0040_0000_u64) });
    assert_eq!(confined(&program, other), End::Returned(libc::ENOSYS));
}

#[test]
fn a_second_program_stacks_on_the_first() {
    // The kernel runs every loaded filter; the strictest answer wins.
    let first = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }],
    }));
    let second = compile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": CAUGHT }],
    }));
    let both = || {
        if seccomp::install_program(&second).is_err() {
            return NOT_LOADED;
        }
        if getppid() == libc::ENOSYS && getpgid(0) == CAUGHT && getpid() == 0 { 0 } else { 1 }
    };
    assert_eq!(confined(&first, both), End::Returned(0));
}
