//! OCI hooks: programs run at points of the container's life, each given
//! the container's state (runtime-spec state.md) as JSON on stdin, with
//! exactly its own argv and environment, killed after its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::spec::{Hook, Identity};

/// The state a hook reads: `status` is creating, created, running or
/// stopped; `pid` the container's first process on the host (none once
/// stopped).
pub fn state_json(identity: &Identity, pid: i32, status: &str) -> String {
    let id = if identity.id.is_empty() { format!("zoo-{pid}") } else { identity.id.clone() };
    let annotations: Vec<String> =
        identity.annotations.iter().map(|(k, v)| format!("{}:{}", quote(k), quote(v))).collect();
    let pid = if status == "stopped" { String::new() } else { format!(",\"pid\":{pid}") };
    format!(
        "{{\"ociVersion\":\"1.2.0\",\"id\":{},\"status\":{}{pid},\"bundle\":{},\"annotations\":{{{}}}}}",
        quote(&id),
        quote(status),
        quote(&identity.bundle.to_string_lossy()),
        annotations.join(",")
    )
}

/// A JSON string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `hooks` one after the other; the first that fails (a non-zero
/// status, a signal, its timeout) stops the rest and is the error.
pub fn run(hooks: &[Hook], point: &str, state: &str) -> Result<()> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, state).with_context(|| format!("{point} hook {index} ({})", hook.path.display()))?;
    }
    Ok(())
}

fn run_one(hook: &Hook, state: &str) -> Result<()> {
    let mut command = Command::new(&hook.path);
    if let Some((arg0, rest)) = hook.args.split_first() {
        command.arg0(arg0).args(rest);
    }
    command.env_clear().stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
    for entry in &hook.env {
        if let Some((key, value)) = entry.split_once('=') {
            command.env(key, value);
        }
    }
    let mut child = command.spawn().context("starting it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state is no error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook.timeout.map(|secs| Instant::now() + Duration::from_secs(secs.into()));
    loop {
        if let Some(status) = child.try_wait().context("waiting for it")? {
            if !status.success() {
                bail!("it failed ({status})");
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("it ran past its timeout of {}s", hook.timeout.unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_the_runtime_specs_json() {
        let identity = Identity {
            id: "web".into(),
            bundle: "/b \"x\"".into(),
            annotations: vec![("k".into(), "v\n".into())],
        };
        assert_eq!(
            state_json(&identity, 42, "created"),
            r#"{"ociVersion":"1.2.0","id":"web","status":"created","pid":42,"bundle":"/b \"x\"","annotations":{"k":"v\u000a"}}"#
        );
        assert!(!state_json(&Identity::default(), 7, "stopped").contains("pid"));
        assert!(state_json(&Identity::default(), 7, "running").contains(r#""id":"zoo-7""#));
    }

    fn hook(script: &str, timeout: Option<u32>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["A=1".into()],
            timeout,
        }
    }

    #[test]
    fn hooks_get_their_state_args_and_env_and_fail_loudly() {
        let out = std::env::temp_dir().join(format!("zookeeper-hook-{}", std::process::id()));
        let script = format!("read state; echo \"$A $0 $state\" > {}", out.display());
        run(&[hook(&script, None)], "poststart", "{\"x\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "1 sh {\"x\":1}\n");
        std::fs::remove_file(&out).unwrap();
        let err = run(&[hook("exit 3", None)], "createRuntime", "{}").unwrap_err();
        assert!(
            format!("{err:#}").contains("createRuntime hook 0 (/bin/sh): it failed (exit status: 3)"),
            "{err:#}"
        );
        let err = run(&[hook("sleep 5", Some(1))], "prestart", "{}").unwrap_err();
        assert!(format!("{err:#}").contains("past its timeout of 1s"), "{err:#}");
    }
}
