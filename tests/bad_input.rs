//! Every malformed option and environment problem, with the exact line and
//! status it gets (issue 9); none panics, and none leaves anything behind
//! (tests/cleanup.rs and tests/reliability.rs count what is left).

mod common;

use common::*;

const USER: As = As::User(RANGED_USER);

#[test]
fn each_problem_gets_its_exact_line_and_status() {
    let fx = fixture();
    let rootfs = fx.rootfs.to_str().unwrap().to_string();
    let file = fx.zookeeper.to_str().unwrap().to_string();
    let unreadable = fx.dir.join("unreadable");
    std::fs::create_dir_all(unreadable.join("dev")).unwrap();
    std::fs::set_permissions(&unreadable, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let unreadable = unreadable.to_str().unwrap().to_string();

    let cases: Vec<(Vec<&str>, Option<&str>, i32, String)> = vec![
        (vec!["-r", &file, "true"], None, 125, format!("--rootfs {file}: not a directory")),
        (vec!["-r", "/no/such/dir", "true"], None, 125, "--rootfs /no/such/dir: no such directory".into()),
        (vec!["-r", &unreadable, "true"], None, 125, format!("--rootfs {unreadable}: not readable and searchable by this user")),
        (vec!["-r", &rootfs, "no-such-command"], None, 127, "cannot execute 'no-such-command': not found in PATH".into()),
        (vec!["-r", &rootfs, "/etc/passwd"], None, 126, "cannot execute '/etc/passwd': permission denied".into()),
        (vec!["-r", &rootfs, "-n", "true"], Some("/nonexistent"), 125,
            "note: only root is mapped in the container (newuidmap is not installed, newgidmap is not installed); see 'Id maps' in the README\nzookeeper: networking (-n) needs slirp4netns, which is not installed (Debian: apt install slirp4netns)".into()),
        (vec!["-m", "12X", "true"], None, 125, "invalid value '12X' for '--memory <MEM>': unknown unit 'X' (use k, m or g) (see 'zookeeper --help')".into()),
        (vec!["-m", "1.5G", "true"], None, 125, "invalid value '1.5G' for '--memory <MEM>': expected a whole number of bytes, optionally followed by k, m or g (see 'zookeeper --help')".into()),
        (vec!["-m", "100", "true"], None, 125, "invalid value '100' for '--memory <MEM>': the limit must be at least 1M (see 'zookeeper --help')".into()),
        (vec!["-c", "0", "true"], None, 125, "invalid value '0' for '--cpus <CPU>': must be greater than 0 (see 'zookeeper --help')".into()),
        (vec!["-p", "many", "true"], None, 125, "invalid value 'many' for '--pids <N>': expected a whole number greater than 0 (see 'zookeeper --help')".into()),
        (vec!["-p", "99999999999", "true"], None, 125, "invalid value '99999999999' for '--pids <N>': the number is too large (see 'zookeeper --help')".into()),
        (vec!["-q", "true"], None, 125, "unexpected argument '-q' found (see 'zookeeper --help')".into()),
        (vec!["-r"], None, 125, "a value is required for '--rootfs <DIR>' but none was supplied (see 'zookeeper --help')".into()),
        (vec![], None, 125, "no command given (usage: zookeeper [options] <command> [args...])".into()),
        (vec!["--tty", "--no-tty", "true"], None, 125, "the argument '--tty' cannot be used with '--no-tty' (see 'zookeeper --help')".into()),
        (vec!["--cleanup", "true"], None, 125, "--cleanup takes no command".into()),
        (vec!["--stop-timeout", "-1", "true"], None, 125, "invalid value '-1' for '--stop-timeout <SECONDS>': expected a whole number of seconds (see 'zookeeper --help')".into()),
        (vec!["--stop-timeout", "18446744073709551616", "true"], None, 125, "invalid value '18446744073709551616' for '--stop-timeout <SECONDS>': the number is too large (at most 18446744073709551615) (see 'zookeeper --help')".into()),
        (vec!["--publish", "[::1]:8080:80", "true"], None, 125, "--publish [::1]:8080:80/tcp: slirp4netns cannot forward from an IPv6 host address; use --network pasta".into()),
    ];
    for (args, path, status, message) in cases {
        let mut command = zookeeper(USER, &args);
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let out = command.output().unwrap();
        assert_eq!(stderr(&out), format!("zookeeper: {message}\n"), "{args:?}");
        assert_eq!(out.status.code(), Some(status), "{args:?}");
    }

    // No subordinate range: it runs, and says so once.
    let out = run_in_rootfs(As::User(NORANGE_USER), &["true"]);
    assert_eq!(
        stderr(&out),
        format!(
            "zookeeper: note: only root is mapped in the container (no range for {NORANGE_USER} in /etc/subuid, no range for {NORANGE_USER} in /etc/subgid); see 'Id maps' in the README\n"
        )
    );
    assert!(out.status.success());
}
