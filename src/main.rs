//! The `zookeeper` command: parse, run, end as the container ended.

use std::io::Write;

use zookeeper::cli::{self, Invocation};

fn main() {
    zookeeper::trace::init();
    zookeeper::trace::mark("start");
    let on_terminal = zookeeper::terminal::stdio_is_terminal();
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
            std::process::exit(if all_well { 0 } else { 1 });
        }
        Invocation::Cleanup => {
            let mut removed = zookeeper::rootfs::remove_stale_mountpoints();
            removed.extend(zookeeper::cgroups::remove_stale());
            for path in removed {
                let _ = writeln!(std::io::stdout(), "removed {}", path.display());
            }
        }
        Invocation::Run(spec) => match zookeeper::run(&spec) {
            Ok(state) => state.mirror(),
            Err(err) => fail(&err.to_string(), err.exit_code()),
        },
    }
}

fn fail(message: &str, code: i32) -> ! {
    let _ = writeln!(std::io::stderr(), "zookeeper: {message}");
    std::process::exit(code)
}
