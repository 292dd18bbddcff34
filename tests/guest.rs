//! cgroup v2 checks in the User-Mode Linux guest of ../shared/vm (this host
//! runs cgroup v1): tests/guest/limits.sh, run rootless in a delegated
//! subtree (level 1), as root (level 1), and rootless through the user's
//! systemd over D-Bus (level 2).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run_in_guest() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vm/run-in-guest.sh");
    if script.exists() {
        Some(script)
    } else {
        eprintln!("SKIPPED: {} is absent, so the cgroup v2 limits are not tested here", script.display());
        None
    }
}

fn limits_in_guest(options: &[&str], script_args: &[&str]) {
    let Some(run) = run_in_guest() else { return };
    let fx = fixture();
    let script = fx.dir.join("limits.sh");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest/limits.sh"), &script).unwrap();
    let out = Command::new(&run)
        .args(options)
        .args(["-t", "300"])
        .arg(&fx.dir)
        .args(["sh", "limits.sh"])
        .args(script_args)
        .output()
        .expect("running ../shared/vm/run-in-guest.sh");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    eprintln!("{options:?}:\n{text}");
    assert!(out.status.success(), "guest checks failed ({:?}):\n{text}", out.status);
    assert!(text.contains(" passed, 0 failed"), "{text}");
}

#[test]
fn cgroup_v2_rootless_in_a_delegated_subtree() {
    limits_in_guest(&["-u"], &[]);
}

#[test]
fn cgroup_v2_as_root() {
    limits_in_guest(&[], &[]);
}

#[test]
fn cgroup_v2_rootless_through_systemd_over_dbus() {
    // Level 2: a login session of the user, whose cgroup it may not write;
    // zookeeper asks the user's systemd for zookeeper-<pid>.scope.
    limits_in_guest(&["-2", "-u"], &["scope"]);
}
