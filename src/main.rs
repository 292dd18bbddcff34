//! The `zookeeper` command: parse, run, end as the container ended.
//!
//! `no_main`: the C runtime calls [`main`] directly, without Rust's start-up
//! (`lang_start`). That start-up finds the main thread's stack by reading
//! /proc/self/maps, maps an alternate signal stack and installs SIGSEGV and
//! SIGBUS handlers to name stack overflows, and ignores SIGPIPE: together a
//! tenth of a millisecond on every container's start, for a message
//! zookeeper does not need (a recursion-free supervisor) and a SIGPIPE
//! setting it would have to undo. std works without it on Linux (it reads
//! the arguments from glibc's initialisers).
// (The test harness brings its own main.)
#![cfg_attr(not(test), no_main)]

use std::io::Write;
use std::os::fd::AsFd;

use zookeeper::cli::{self, Invocation};

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    run();
    let _ = std::io::stdout().flush();
    0
}

#[cfg_attr(test, allow(dead_code))]
fn run() {
    // The kept user namespace's process (src/keeper.rs), exec'd by a
    // zookeeper under this name.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.first().is_some_and(|argv0| argv0 == zookeeper::keeper::KEEPER_ARGV0) {
        zookeeper::keeper::keeper_main(&args);
    }
    zookeeper::trace::init();
    zookeeper::trace::mark("start");
    // A pty only for the terminal's foreground job: in the background
    // (`zookeeper ... &`) its raw mode would stop zookeeper with SIGTTOU,
    // and the keyboard is the foreground job's.
    let on_terminal = zookeeper::terminal::stdio_is_terminal()
        && zookeeper::terminal::in_foreground(std::io::stdin().as_fd());
    let invocation = match cli::parse(std::env::args_os(), |key| std::env::var_os(key), on_terminal) {
        Ok(invocation) => invocation,
        Err(err) => fail(&err.to_string(), 125),
    };
    match invocation {
        Invocation::Info(text) => {
            // A closed stdout (zookeeper --help | head -0) is not an error.
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        Invocation::Check => {
            let (text, all_well) = zookeeper::preflight::report(&zookeeper::preflight::check());
            let _ = std::io::stdout().write_all(text.as_bytes());
            let _ = std::io::stdout().flush();
            std::process::exit(if all_well { 0 } else { 1 });
        }
        Invocation::Cleanup => {
            let mut report = zookeeper::cleanup::run();
            zookeeper::detach::remove_gone(&mut report);
            if let Some(pid) = zookeeper::keeper::stop() {
                let _ = writeln!(std::io::stdout(), "stopped the keeper (pid {pid})");
            }
            for path in &report.removed {
                let _ = writeln!(std::io::stdout(), "removed {}", path.display());
            }
            for (path, reason) in &report.failed {
                let _ = writeln!(std::io::stderr(), "zookeeper: cannot remove {}: {reason}", path.display());
            }
            if !report.failed.is_empty() {
                let _ = std::io::stdout().flush();
                std::process::exit(125);
            }
        }
        Invocation::Detach(detach) => match zookeeper::detach::start(*detach) {
            Ok(id) => {
                let _ = writeln!(std::io::stdout(), "{id}");
            }
            Err(err) => fail(&err.to_string(), err.exit_code()),
        },
        Invocation::Manage(manage) => match zookeeper::detach::manage(manage) {
            Ok(Some(state)) => {
                let _ = std::io::stdout().flush();
                state.mirror()
            }
            Ok(None) => {}
            Err(err) => match err.downcast_ref::<zookeeper::detach::ExecFailed>() {
                Some(failed) => fail(&failed.to_string(), failed.0.exit_code()),
                None => fail(&format!("{err:#}"), 125),
            },
        },
        Invocation::Pull { reference, store, platform } => {
            if let Err(err) = zookeeper::image::pull(&reference, store.as_deref(), platform.as_ref()) {
                fail(&format!("{err:#}"), 125);
            }
        }
        Invocation::Images(command, store) => {
            use zookeeper::cli::ImageCommand;
            let store = store.as_deref();
            let done = match command {
                ImageCommand::List => zookeeper::image::list(store),
                ImageCommand::Remove(reference) => zookeeper::image::remove(&reference, store),
                ImageCommand::Prune => zookeeper::image::prune(store),
                ImageCommand::DiskUse => zookeeper::image::disk_use(store),
                ImageCommand::Inspect(reference) => zookeeper::image::inspect(&reference, store),
            };
            match done {
                Ok(text) => {
                    let _ = std::io::stdout().write_all(text.as_bytes());
                }
                Err(err) => fail(&format!("{err:#}"), 125),
            }
        }
        Invocation::RunImage(mut spec, image) => {
            let in_use = match zookeeper::image::prepare(&image, &mut spec) {
                Ok(in_use) => in_use,
                Err(err) => fail(&format!("{err:#}"), 125),
            };
            let outcome = zookeeper::run(&spec);
            drop(in_use);
            finish(outcome)
        }
        Invocation::Run(spec) => finish(zookeeper::run(&spec)),
    }
}

fn finish(outcome: Result<zookeeper::status::ExitState, zookeeper::Error>) {
    match outcome {
        Ok(state) => {
            zookeeper::trace::mark("cleaned up");
            state.mirror()
        }
        // The caller asked zookeeper to stop; its shell sees that signal.
        Err(zookeeper::Error::Interrupted(sig)) => zookeeper::status::ExitState::Signaled(sig).mirror(),
        Err(err) => fail(&err.to_string(), err.exit_code()),
    }
}

fn fail(message: &str, code: i32) -> ! {
    let _ = writeln!(std::io::stderr(), "zookeeper: {message}");
    std::process::exit(code)
}
