//! The supervisor is clean under valgrind (the assignment's rule): no
//! memory errors and no leaks, on a normal run, a failing command, an exec
//! failure and a usage error.

mod common;

use common::*;
use std::process::Command;

#[test]
fn supervisor_is_clean_under_valgrind() {
    let fx = fixture();
    let rootfs = fx.rootfs.to_str().unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["-r", rootfs, "-P", "sh", "-c", "echo hi"], 0),
        (&["-r", rootfs, "sh", "-c", "exit 3"], 3),
        (&["-r", rootfs, "--init", "sh", "-c", "exit 4"], 4),
        (&["-r", rootfs, "no-such-command"], 127),
        (&["-m", "bogus", "sh"], 125),
    ];
    for (args, code) in cases {
        let out = Command::new("setpriv")
            .args([&format!("--reuid={RANGED_USER}"), &format!("--regid={RANGED_USER}"), "--init-groups"])
            .args(["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full"])
            .args(["--errors-for-leak-kinds=definite,indirect,possible", "--trace-children=no"])
            .arg(&fx.zookeeper)
            .args(*args)
            .current_dir(&fx.dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .expect("running valgrind (run scripts/setup.sh)");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {err}");
        assert!(!err.contains("=="), "{args:?}: valgrind reported: {err}");
    }
}
