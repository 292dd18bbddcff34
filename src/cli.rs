//! The command line: `zookeeper [options] <command> [args...]`.
//!
//! getopt(3) behaviour is part of the contract (SPEC.md section 1): short
//! flags bundle (`-Pn`), values may be attached (`-m100M`), `--` ends the
//! options, and the first non-option word starts the command; everything after
//! it belongs to the command untouched (`sh -c -x true`, `echo -n hi`).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;
use clap::error::ErrorKind;

use crate::spec::{ContainerSpec, Mount, MountKind, Network, PortMapping, Process, Resources};

mod run_flags;

const ABOUT: &str = "Run a program in an isolated, rootless Linux container.";

const AFTER_HELP: &str = "\
Exit status: the command's own; if it dies of a signal, zookeeper dies of the
same signal. 125: zookeeper itself failed; 126: the command cannot be
executed; 127: the command was not found.";

#[derive(Debug, Default, Parser)]
#[command(
    name = "zookeeper",
    about = ABOUT,
    after_help = AFTER_HELP,
    override_usage = "zookeeper [options] <command> [args...]",
    disable_version_flag = true,
    trailing_var_arg = true,
    max_term_width = 100
)]
struct Args {
    /// Set DIR as / in the container
    #[arg(short = 'r', long = "rootfs", value_name = "DIR", allow_hyphen_values = true)]
    rootfs: Option<PathBuf>,

    /// Run the OCI bundle DIR (runtime spec 1.0-1.2): config.json's process,
    /// root, mounts, namespaces and limits (docs/oci.md); no command, and the
    /// other options add to it
    #[arg(long = "bundle", value_name = "DIR", conflicts_with_all = ["rootfs", "mount_proc"])]
    bundle: Option<PathBuf>,

    /// Run the image REF (docker's names: busybox, 127.0.0.1:5000/zk/app:1,
    /// name@sha256:...), pulled if the store lacks it, on an overlay of its
    /// layers with its Entrypoint, Cmd, Env, WorkingDir and User; the
    /// command, if given, replaces its Cmd (docs/images.md)
    #[arg(long = "image", value_name = "REF", conflicts_with_all = ["rootfs", "bundle"])]
    image: Option<String>,

    /// With --image: run CMD in place of the image's Entrypoint (its Cmd
    /// then goes too; "" clears the Entrypoint)
    #[arg(long = "entrypoint", value_name = "CMD", requires = "image", allow_hyphen_values = true)]
    entrypoint: Option<String>,

    /// With --image: when to pull it: missing (the default), always (a tag
    /// may have moved), or never
    #[arg(long = "pull", value_name = "WHEN", requires = "image", value_parser = parse_pull)]
    pull: Option<crate::image::Pull>,

    /// Pull the image REF into the store (again), then exit
    #[arg(long = "image-pull", value_name = "REF", conflicts_with_all = ["image", "rootfs", "bundle"])]
    image_pull: Option<String>,

    /// With --image or --image-pull: the platform to take from an image
    /// index, as OS/ARCH[/VARIANT] (linux/arm64/v8); default this machine's
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<crate::image::platform::Platform>,

    /// Print what the image REF in the store is and asks for (platform,
    /// Entrypoint, Cmd, Env, exposed ports, ...), then exit
    #[arg(long = "image-inspect", value_name = "REF")]
    image_inspect: Option<String>,

    /// List the images in the store, then exit
    #[arg(long = "images")]
    images: bool,

    /// Remove the image REF from the store, and its layers no other image
    /// uses, then exit
    #[arg(long = "image-rm", value_name = "REF")]
    image_rm: Option<String>,

    /// Remove the layers and blobs no image uses, then exit
    #[arg(long = "image-prune")]
    image_prune: bool,

    /// Show the disk space the store takes, then exit
    #[arg(long = "image-df")]
    image_df: bool,

    /// The image store (default: $XDG_DATA_HOME/zookeeper, or
    /// ~/.local/share/zookeeper; /var/lib/zookeeper for root)
    #[arg(long = "store", value_name = "DIR")]
    store: Option<PathBuf>,

    /// Limit the container's memory: bytes, or with a k, m or g suffix (1024-based)
    #[arg(short = 'm', long = "memory", value_name = "MEM", allow_hyphen_values = true, value_parser = parse_memory)]
    memory: Option<u64>,

    /// Limit CPU use, in percent of one CPU (250 = two and a half CPUs; not
    /// docker's count of CPUs)
    #[arg(short = 'c', long = "cpus", visible_alias = "cpu-percent", value_name = "CPU", allow_hyphen_values = true, value_parser = parse_cpu_percent)]
    cpus: Option<u32>,

    /// Memory and swap together, as docker's: at least --memory (equal: no
    /// swap, the default), or -1 for unlimited swap
    #[arg(long = "memory-swap", value_name = "MEM", allow_hyphen_values = true, value_parser = parse_memory_swap)]
    memory_swap: Option<i64>,

    /// Limit the number of processes and threads in the container
    #[arg(short = 'p', long = "pids", value_name = "N", allow_hyphen_values = true, value_parser = parse_pids)]
    pids: Option<u32>,

    /// Mount a fresh /proc in the container
    #[arg(short = 'P', long = "proc")]
    mount_proc: bool,

    /// Enable networking (slirp4netns, device eth0)
    #[arg(short = 'n', long = "net")]
    net: bool,

    /// The network backend: slirp4netns (what -n gives), pasta, or none
    #[arg(long = "network", value_name = "BACKEND", value_parser = parse_network)]
    network: Option<Network>,

    /// Forward a host port into the container (implies -n); HOST_IP
    /// defaults to 127.0.0.1, the protocol to tcp; repeatable
    #[arg(long = "publish", value_name = "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]", value_parser = parse_publish)]
    publish: Vec<PortMapping>,

    /// The MTU of the container's interface (68-65521; slirp4netns's default
    /// is 65521)
    #[arg(long = "mtu", value_name = "N", value_parser = parse_mtu)]
    mtu: Option<u32>,

    /// Set an environment variable in the container (KEY=VALUE), or pass the
    /// caller's value of KEY; repeatable
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]", allow_hyphen_values = true, value_parser = parse_env)]
    env: Vec<EnvArg>,

    /// Read variables from FILE, docker's format: KEY=VALUE or KEY (the
    /// caller's value) a line, # comments; repeatable
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,

    #[command(flatten)]
    run: run_flags::RunFlags,

    /// Run a minimal init as pid 1 that forwards signals to the command and
    /// reaps orphans
    #[arg(long = "init")]
    init: bool,

    /// Map a rootless container's subordinate ids with newuidmap and
    /// newgidmap itself, not through the kept user namespace (also
    /// ZOOKEEPER_NO_KEEPER=1; docs/keeper.md)
    #[arg(long = "no-keeper")]
    no_keeper: bool,

    /// After HUP, INT, QUIT or TERM (forwarded to the container), kill the
    /// container if it has not ended within this many seconds (a second such
    /// signal kills it at once)
    #[arg(long = "stop-timeout", value_name = "SECONDS", allow_hyphen_values = true, value_parser = parse_seconds, default_value_t = crate::spec::DEFAULT_STOP_TIMEOUT_SECS)]
    stop_timeout: u64,

    /// Give the container a terminal of its own (the default when stdin and
    /// stdout are terminals)
    #[arg(short = 't', long = "tty", conflicts_with = "no_tty")]
    tty: bool,

    /// Never give the container a terminal: it uses zookeeper's stdin,
    /// stdout and stderr directly
    #[arg(long = "no-tty")]
    no_tty: bool,

    /// Check what this host lacks for rootless containers, then exit (0:
    /// nothing is missing)
    #[arg(long = "check")]
    check: bool,

    /// Remove what killed zookeepers left behind (the caller's /tmp/zoo.*
    /// directories and zoo-<pid> cgroups no container uses), then exit
    #[arg(long = "cleanup")]
    cleanup: bool,

    /// Print the version and exit
    #[arg(long = "version")]
    version: bool,

    /// Run the container in the background, supervised, its output in a
    /// log; print its id and return
    #[arg(short = 'd', long = "detach")]
    detach: bool,

    /// With --detach: the container's name (unique among yours; default
    /// zoo-<id>)
    #[arg(long = "name", value_name = "NAME")]
    name: Option<String>,

    /// List your detached containers, then exit
    #[arg(long = "list")]
    list: bool,

    /// Print a detached container's output (NAME or id)
    #[arg(long = "logs", value_name = "NAME")]
    logs: Option<String>,

    /// With --logs: keep printing what it writes until it ends
    #[arg(long = "follow")]
    follow: bool,

    /// Stop a detached container: SIGTERM, then SIGKILL after its stop
    /// timeout (or --time)
    #[arg(long = "stop", value_name = "NAME")]
    stop: Option<String>,

    /// With --stop: seconds before SIGKILL
    #[arg(long = "time", value_name = "SECONDS", value_parser = parse_seconds)]
    time: Option<u64>,

    /// Send a signal (the word after NAME; default KILL) to a detached
    /// container's first process
    #[arg(long = "kill", value_name = "NAME")]
    kill: Option<String>,

    /// Remove a detached container's state (a running one only with --force)
    #[arg(long = "remove", value_name = "NAME")]
    remove: Option<String>,

    /// With --remove: kill a running container first
    #[arg(long = "force")]
    force: bool,

    /// Print a detached container's state as JSON
    #[arg(long = "inspect", value_name = "NAME")]
    inspect: Option<String>,

    /// Run the command in a running detached container, with its first
    /// process's namespaces, cgroup and confinement (-t: a terminal)
    #[arg(long = "exec", value_name = "NAME")]
    exec: Option<String>,

    /// The program to run and its arguments
    #[arg(value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EnvArg {
    Set(String, String),
    Inherit(String),
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Help or version text for stdout; exit 0.
    Info(String),
    /// `--cleanup`.
    Cleanup,
    /// `--check`.
    Check,
    Run(Box<ContainerSpec>),
    /// `--detach`.
    Detach(Box<crate::detach::Detach>),
    /// `--list`, `--logs`, `--stop`, `--kill`, `--remove`, `--inspect`, `--exec`.
    Manage(crate::detach::Manage),
    /// `--image`: the description, to be completed from the image.
    RunImage(Box<ContainerSpec>, Box<crate::image::ImageRun>),
    /// `--image-pull REF`.
    Pull {
        reference: String,
        store: Option<PathBuf>,
        platform: Option<crate::image::platform::Platform>,
    },
    /// `--images`, `--image-rm`, `--image-prune`, `--image-df`, `--image-inspect`.
    Images(ImageCommand, Option<PathBuf>),
}

/// What to do with the image store.
#[derive(Debug, PartialEq, Eq)]
pub enum ImageCommand {
    List,
    Remove(String),
    Prune,
    DiskUse,
    Inspect(String),
}

/// A command-line error: one line, without the `zookeeper: ` prefix.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `argv` (including `argv[0]`) into what to do. `getenv` supplies the
/// caller's environment for `--env KEY` and TERM; `on_terminal` says whether
/// zookeeper's stdin and stdout are terminals (the default for `--tty`).
pub fn parse<I, T>(
    argv: I,
    getenv: impl Fn(&str) -> Option<OsString>,
    on_terminal: bool,
) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let parsed = match seed_only(&argv) {
        Some(args) => Ok(args),
        None => Args::try_parse_from(&argv),
    };
    let mut args = match parsed {
        Ok(args) => args,
        Err(err) if err.kind() == ErrorKind::DisplayHelp => {
            return Ok(Invocation::Info(err.render().to_string()));
        }
        Err(err) => return Err(UsageError(one_line(&err))),
    };
    if args.version {
        return Ok(Invocation::Info(format!("zookeeper {}\n", env!("CARGO_PKG_VERSION"))));
    }
    if args.check {
        return Ok(Invocation::Check);
    }
    if let Some(manage) = management(&mut args)? {
        return Ok(Invocation::Manage(manage));
    }
    if args.cleanup {
        if !args.command.is_empty() {
            return Err(UsageError("--cleanup takes no command".into()));
        }
        return Ok(Invocation::Cleanup);
    }
    if let Some(reference) = args.image_pull {
        if !args.command.is_empty() {
            return Err(UsageError("--image-pull takes no command".into()));
        }
        return Ok(Invocation::Pull { reference, store: args.store, platform: args.platform });
    }
    if args.platform.is_some() && args.image.is_none() {
        return Err(UsageError("--platform goes with --image and --image-pull".into()));
    }
    let management = [
        args.images.then_some(ImageCommand::List),
        args.image_rm.map(ImageCommand::Remove),
        args.image_prune.then_some(ImageCommand::Prune),
        args.image_df.then_some(ImageCommand::DiskUse),
        args.image_inspect.map(ImageCommand::Inspect),
    ];
    let mut management: Vec<ImageCommand> = management.into_iter().flatten().collect();
    if management.len() > 1 {
        return Err(UsageError(
            "--images, --image-rm, --image-prune, --image-df and --image-inspect go one at a time".into(),
        ));
    }
    if let Some(command) = management.pop() {
        if !args.command.is_empty() || args.image.is_some() || args.rootfs.is_some() || args.bundle.is_some()
        {
            return Err(UsageError(
                "--images, --image-rm, --image-prune, --image-df and --image-inspect take no command and no root"
                    .into(),
            ));
        }
        return Ok(Invocation::Images(command, args.store));
    }
    if args.store.is_some() && args.image.is_none() {
        return Err(UsageError(
            "--store goes with --image, --image-pull and the image listing options".into(),
        ));
    }
    // --bundle: config.json is what the options below add to (src/oci.rs).
    let bundle = match &args.bundle {
        Some(_) if !args.command.is_empty() => {
            return Err(UsageError("--bundle runs config.json's process.args; no command".into()));
        }
        Some(dir) => Some(crate::oci::load_bundle(dir).map_err(|err| UsageError(err.to_string()))?),
        None => None,
    };
    if args.command.is_empty() && bundle.is_none() && args.image.is_none() {
        return Err(UsageError("no command given (usage: zookeeper [options] <command> [args...])".into()));
    }
    if args.command.first().is_some_and(|command| command.is_empty()) {
        return Err(UsageError("the command is an empty string".into()));
    }

    let mut env = match &bundle {
        Some(bundle) => bundle.process.env.clone(),
        None => Process::default_env(getenv("TERM")),
    };
    let mut entries = Vec::new();
    for file in &args.env_file {
        entries.extend(read_env_file(file)?);
    }
    entries.extend(args.env);
    let home_given =
        entries.iter().any(|e| matches!(e, EnvArg::Set(k, _) | EnvArg::Inherit(k) if k == "HOME"));
    let env_given: Vec<String> = entries
        .iter()
        .map(|e| match e {
            EnvArg::Set(k, _) | EnvArg::Inherit(k) => k.clone(),
        })
        .collect();
    for entry in entries {
        let (key, value) = match entry {
            EnvArg::Set(key, value) => (key, OsString::from(value)),
            EnvArg::Inherit(key) => match getenv(&key) {
                Some(value) => (key, value),
                None => continue, // as docker does: an unset variable is left out
            },
        };
        set_env(&mut env, &key, value);
    }

    let network = match args.network {
        Some(Network::LoopbackOnly) if args.net || !args.publish.is_empty() => {
            return Err(UsageError("--network none contradicts -n and --publish".into()));
        }
        Some(network) => network,
        None if args.net || !args.publish.is_empty() => Network::Slirp4netns,
        None => Network::LoopbackOnly,
    };
    // slirp4netns's add_hostfwd takes IPv4 host addresses only (1.2.0 says
    // "bad arguments.host_addr"); pasta binds IPv6 ones.
    if network == Network::Slirp4netns
        && let Some(mapping) = args.publish.iter().find(|m| m.host_ip.is_ipv6())
    {
        return Err(UsageError(format!(
            "--publish {mapping}: slirp4netns cannot forward from an IPv6 host address; use --network pasta"
        )));
    }

    if args.mtu.is_some() && network == Network::LoopbackOnly {
        return Err(UsageError("--mtu needs a network (-n, --network or --publish)".into()));
    }

    let command_given = !args.command.is_empty();
    let mut spec = match bundle {
        // zookeeper's /etc files, which a runtime's caller would bind, so
        // that -n, --dns and --add-host reach the container.
        Some(bundle) => {
            ContainerSpec { process: Process { env, ..bundle.process }, etc_files: true, ..bundle }
        }
        None => ContainerSpec::new(args.command, env),
    };
    let auto_remove = args.run.remove();
    let mut run = args.run;
    let workdir_given = run.workdir_given();
    if args.image.is_some() {
        // An image's root is always an overlay of its layers.
        run.for_image().map_err(UsageError)?;
    }
    run.apply(&mut spec, home_given).map_err(UsageError)?;
    // A bundle's process.terminal stands unless --tty or --no-tty says otherwise.
    let terminal = spec.process.terminal || (args.bundle.is_none() && on_terminal);
    spec.process.terminal = args.tty || (terminal && !args.no_tty);
    if spec.overlay.is_some() && args.rootfs.is_none() && args.bundle.is_none() && args.image.is_none() {
        // The default root is read-only and private already.
        return Err(UsageError("--overlay needs -r DIR, the directory to lay it over".into()));
    }
    spec.root = args.rootfs.or(spec.root);
    if args.mount_proc && !spec.mounts_proc() {
        spec.mounts.insert(0, Mount::standard(MountKind::Proc));
    }
    match (args.memory_swap, args.memory) {
        (Some(_), None) => return Err(UsageError("--memory-swap needs --memory (-m)".into())),
        (Some(total), Some(memory)) if total != -1 && (total as u64) < memory => {
            return Err(UsageError(format!(
                "--memory-swap {total} is less than --memory {memory}: it counts memory and swap together"
            )));
        }
        _ => {}
    }
    let limits = &spec.resources;
    spec.resources = Resources {
        memory_bytes: args.memory.or(limits.memory_bytes),
        memory_swap_bytes: args.memory_swap.or(limits.memory_swap_bytes),
        cpu_percent: args.cpus.or(limits.cpu_percent),
        // -c speaks in percent: a bundle's own quota and period give way.
        cpu_quota_period: if args.cpus.is_some() { None } else { limits.cpu_quota_period },
        pids: args.pids.or(limits.pids),
        // A bundle's others, which the command line has no options for.
        ..limits.clone()
    };
    // -m over a bundle whose memory.swap (memory and swap together) is
    // now below the memory: the kernel would refuse it at the start.
    if let (Some(memory), Some(total)) = (spec.resources.memory_bytes, spec.resources.memory_swap_bytes)
        && total != -1
        && (total as u64) < memory
    {
        return Err(UsageError(format!(
            "--memory {memory} is above the memory and swap total {total}; give --memory-swap too"
        )));
    }
    if network != Network::LoopbackOnly && spec.namespaces.network != crate::spec::Namespace::New {
        return Err(UsageError(
            "-n, --network and --publish need a network namespace of the container's own; config.json's is not"
                .into(),
        ));
    }
    spec.network = network;
    spec.publish = args.publish;
    spec.mtu = args.mtu;
    spec.init = args.init;
    spec.keeper = !args.no_keeper && getenv("ZOOKEEPER_NO_KEEPER").is_none_or(|v| v.is_empty() || v == "0");
    spec.stop_timeout = std::time::Duration::from_secs(args.stop_timeout);
    let image = args.image.map(|reference| crate::image::ImageRun {
        reference,
        store: args.store,
        entrypoint: args.entrypoint,
        command_given,
        workdir_given,
        env_given,
        home_given,
        pull: args.pull.unwrap_or_default(),
        platform: args.platform,
    });
    if args.detach {
        if args.tty {
            return Err(UsageError("--detach and --tty exclude each other: a detached container's output goes to its log (--exec -t gives a terminal inside)".into()));
        }
        spec.process.terminal = false;
        let detach = crate::detach::Detach {
            spec: Box::new(spec),
            name: args.name,
            argv: argv[1..].to_vec(),
            auto_remove,
            image: image.map(Box::new),
        };
        return Ok(Invocation::Detach(Box::new(detach)));
    }
    if let Some(image) = image {
        return Ok(Invocation::RunImage(Box::new(spec), Box::new(image)));
    }
    Ok(Invocation::Run(Box::new(spec)))
}

/// The management options: at most one, and a command only for `--exec`
/// (and `--kill`'s signal).
fn management(args: &mut Args) -> Result<Option<crate::detach::Manage>, UsageError> {
    use crate::detach::Manage;
    let command = std::mem::take(&mut args.command);
    let mut chosen = Vec::new();
    if args.list {
        chosen.push(("--list", Manage::List));
    }
    if let Some(name) = args.logs.take() {
        chosen.push(("--logs", Manage::Logs { name, follow: args.follow }));
    }
    if let Some(name) = args.stop.take() {
        chosen.push(("--stop", Manage::Stop { name, time: args.time }));
    }
    if let Some(name) = args.kill.take() {
        chosen.push(("--kill", Manage::Kill { name, signal: String::new() }));
    }
    if let Some(name) = args.remove.take() {
        chosen.push(("--remove", Manage::Remove { name, force: args.force }));
    }
    if let Some(name) = args.inspect.take() {
        chosen.push(("--inspect", Manage::Inspect { name }));
    }
    if let Some(name) = args.exec.take() {
        chosen.push(("--exec", Manage::Exec { name, command: Vec::new(), tty: args.tty }));
    }
    if chosen.len() > 1 {
        return Err(UsageError(format!("{} and {} exclude each other", chosen[0].0, chosen[1].0)));
    }
    for (given, option, needs) in [
        (args.follow, "--follow", "--logs NAME"),
        (args.time.is_some(), "--time", "--stop NAME"),
        (args.force, "--force", "--remove NAME"),
        (args.name.is_some(), "--name", "--detach"),
    ] {
        let needed =
            chosen.first().is_some_and(|(o, _)| needs.starts_with(o)) || (needs == "--detach" && args.detach);
        if given && !needed {
            return Err(UsageError(format!("{option} needs {needs}")));
        }
    }
    let Some((option, mut manage)) = chosen.pop() else {
        args.command = command;
        return Ok(None);
    };
    if args.detach {
        return Err(UsageError(format!("--detach and {option} exclude each other")));
    }
    match &mut manage {
        Manage::Exec { command: to_run, .. } => {
            if command.is_empty() {
                return Err(UsageError("--exec NAME needs a command to run".into()));
            }
            *to_run = command;
        }
        Manage::Kill { signal, .. } => match command.as_slice() {
            [] => *signal = "KILL".into(),
            [one] => *signal = one.to_string_lossy().into_owned(),
            _ => return Err(UsageError("--kill NAME takes one signal at most".into())),
        },
        _ if !command.is_empty() => return Err(UsageError(format!("{option} takes no command"))),
        _ => {}
    }
    Ok(Some(manage))
}

fn parse_pull(text: &str) -> Result<crate::image::Pull, String> {
    text.parse()
}

fn parse_platform(text: &str) -> Result<crate::image::platform::Platform, String> {
    text.parse()
}

/// docker's --env-file: `KEY=VALUE` or `KEY` (the caller's value) a line,
/// `#` comments and blank lines skipped, no quoting. Read to at most 1 MiB.
fn read_env_file(path: &std::path::Path) -> Result<Vec<EnvArg>, UsageError> {
    use std::io::Read;
    let shown = path.display();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(1 << 20).read_to_string(&mut text))
        .map_err(|err| UsageError(format!("--env-file {shown}: {err}")))?;
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        entries.push(
            parse_env(line)
                .map_err(|err| UsageError(format!("--env-file {shown}, line {}: {err}", number + 1)))?,
        );
    }
    Ok(entries)
}

/// The seed's command lines (`-r DIR -m MEM -c CPU -p N -P -n`, bundled
/// and attached as getopt takes them, then the command) parsed by hand:
/// what nearly every start is, without clap building its sixty options
/// first (about 40 µs of each start). Anything else, a long option, another
/// letter or a value the parsers refuse, is `None`: clap then parses the
/// whole line, and says what is wrong in its words. A unit test checks
/// that both give the same result on every line this one takes.
fn seed_only(argv: &[OsString]) -> Option<Args> {
    let mut args = Args { stop_timeout: crate::spec::DEFAULT_STOP_TIMEOUT_SECS, ..Args::default() };
    let mut words = argv.iter().skip(1);
    let mut seen = String::new();
    while let Some(word) = words.next() {
        let text = word.to_str()?;
        if text == "--" {
            args.command = words.cloned().collect();
            break;
        }
        if !text.starts_with('-') || text == "-" {
            args.command = std::iter::once(word).chain(words).cloned().collect();
            break;
        }
        if text.starts_with("--") {
            return None;
        }
        for (at, letter) in text[1..].char_indices() {
            // A repeated option is clap's to judge.
            if seen.contains(letter) {
                return None;
            }
            seen.push(letter);
            match letter {
                'P' => args.mount_proc = true,
                'n' => args.net = true,
                'r' | 'm' | 'c' | 'p' => {
                    // The rest of this word, or the next word, is the value.
                    let attached = &text[1 + at + 1..];
                    let value = if attached.is_empty() { words.next()?.to_str()? } else { attached };
                    // clap refuses an empty value ("a value is required").
                    if value.is_empty() {
                        return None;
                    }
                    match letter {
                        'r' => args.rootfs = Some(PathBuf::from(value)),
                        'm' => args.memory = Some(parse_memory(value).ok()?),
                        'c' => args.cpus = Some(parse_cpu_percent(value).ok()?),
                        _ => args.pids = Some(parse_pids(value).ok()?),
                    }
                    break;
                }
                _ => return None,
            }
        }
    }
    // No command: clap says so, in its words.
    (!args.command.is_empty()).then_some(args)
}

/// Replaces KEY in `env`, or appends it.
fn set_env(env: &mut Vec<OsString>, key: &str, value: OsString) {
    let mut entry = OsString::from(format!("{key}="));
    entry.push(value);
    let prefix = format!("{key}=");
    match env.iter_mut().find(|e| e.to_string_lossy().starts_with(&prefix)) {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// clap's errors span several lines (tips, usage); the contract is one line.
fn one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first} (see 'zookeeper --help')")
}

/// A memory size: bytes, or a number with a k/K, m/M or g/G suffix (1024-based).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], Some(c)),
        _ => (text, None),
    };
    let multiplier: u64 = match unit.map(|c| c.to_ascii_lowercase()) {
        None => 1,
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some(_) => return Err(format!("unknown unit '{}' (use k, m or g)", unit.unwrap_or_default())),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number of bytes, optionally followed by k, m or g".into());
    }
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or("the size is too large")?;
    // Below a few pages the kernel cannot even start the command.
    const MINIMUM: u64 = 1 << 20;
    if bytes < MINIMUM {
        return Err("the limit must be at least 1M".into());
    }
    Ok(bytes)
}

/// `--memory-swap`: a size as `--memory`'s, or -1 for unlimited swap.
pub fn parse_memory_swap(text: &str) -> Result<i64, String> {
    if text == "-1" {
        return Ok(-1);
    }
    // parse_memory keeps sizes within i64.
    parse_memory(text).map(|bytes| bytes as i64)
}

/// CPU limit in percent of one CPU, a whole number from 1 up. The seed's
/// contract (SPEC.md 1) never changes meaning, so docker's count of CPUs
/// (`--cpus 1.5`) is an error that says what to write instead.
pub fn parse_cpu_percent(text: &str) -> Result<u32, String> {
    if text.contains('.')
        && let Ok(cpus) = text.parse::<f64>()
        && cpus.is_finite()
        && cpus > 0.0
    {
        let percent = (cpus * 100.0).round();
        return Err(format!(
            "this is a percent of one CPU, not docker's number of CPUs: for {text} CPUs write --cpus {percent}"
        ));
    }
    let percent = parse_positive(text)?;
    // cpu.max takes a quota of at most a few thousand CPUs' worth; more is a typo.
    const MAXIMUM: u32 = 100 * 4096;
    if percent > MAXIMUM {
        return Err(format!("at most {MAXIMUM} (4096 CPUs)"));
    }
    Ok(percent)
}

/// Process limit: a whole number from 1 up to the kernel's PID_MAX_LIMIT.
pub fn parse_pids(text: &str) -> Result<u32, String> {
    if text.contains(':') {
        // docker's -p is a port; here it is the assignment's pids limit.
        return Err(format!(
            "-p is the process limit here (a number); to forward a port use --publish {text}"
        ));
    }
    let pids = parse_positive(text)?;
    const PID_MAX_LIMIT: u32 = 4 * 1024 * 1024;
    if pids > PID_MAX_LIMIT {
        return Err(format!("at most {PID_MAX_LIMIT}"));
    }
    Ok(pids)
}

fn parse_positive(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number greater than 0".into());
    }
    match text.parse::<u32>() {
        Ok(0) => Err("must be greater than 0".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("the number is too large".into()),
    }
}

/// A whole number of seconds. Any u64 is taken: one too large for a
/// deadline means no deadline (see `signals.rs`).
fn parse_seconds(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number of seconds".into());
    }
    text.parse().map_err(|_| format!("the number is too large (at most {})", u64::MAX))
}

fn parse_mtu(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(mtu @ 68..=65521) => Ok(mtu),
        _ => Err("expected a whole number from 68 (IPv4's minimum) to 65521 (slirp4netns's maximum)".into()),
    }
}

fn parse_network(text: &str) -> Result<Network, String> {
    match text {
        "slirp4netns" => Ok(Network::Slirp4netns),
        "pasta" => Ok(Network::Pasta),
        "none" => Ok(Network::LoopbackOnly),
        // Not offered: in the host's network namespace a container reaches
        // every service on the host's loopback and every abstract unix
        // socket (X11, D-Bus, a container runtime's shim), which trust
        // their peer's uid: a container whose root is host root would be
        // host root to them (README, "Networking").
        "host" => Err("host networking is not offered (the container would reach the host's loopback and abstract sockets); use --publish to reach the container".into()),
        _ => Err("use slirp4netns, pasta or none".into()),
    }
}

/// `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`; an IPv6 HOST_IP in brackets.
pub fn parse_publish(text: &str) -> Result<PortMapping, String> {
    let (mapping, udp) = match text.rsplit_once('/') {
        Some((mapping, "tcp")) => (mapping, false),
        Some((mapping, "udp")) => (mapping, true),
        Some((_, other)) => return Err(format!("unknown protocol '{other}' (use tcp or udp)")),
        None => (text, false),
    };
    let (host, container_port) = mapping.rsplit_once(':').ok_or("expected HOST_PORT:CONTAINER_PORT")?;
    let (host_ip, host_port) = match host.rsplit_once(':') {
        Some((ip, port)) => {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            (ip.parse().map_err(|_| format!("'{ip}' is not an IP address"))?, port)
        }
        None => (std::net::IpAddr::from([127, 0, 0, 1]), host),
    };
    let port = |text: &str| match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("'{text}' is not a port (1-65535)")),
        Ok(port) => Ok(port),
    };
    Ok(PortMapping { host_ip, host_port: port(host_port)?, container_port: port(container_port)?, udp })
}

fn parse_env(text: &str) -> Result<EnvArg, String> {
    let (key, value) = match text.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (text, None),
    };
    if key.is_empty() {
        return Err("the variable name is empty".into());
    }
    Ok(match value {
        Some(value) => EnvArg::Set(key.into(), value.into()),
        None => EnvArg::Inherit(key.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str]) -> Result<ContainerSpec, UsageError> {
        let argv = std::iter::once("zookeeper").chain(argv.iter().copied());
        match parse(argv, |k| (k == "FROMHOST").then(|| "host-value".into()), false)? {
            Invocation::Run(spec) => Ok(*spec),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn command(spec: &ContainerSpec) -> Vec<&str> {
        spec.process.args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    /// The hand parser of the seed's lines and clap agree wherever the hand
    /// parser takes a line.
    pub(super) fn same_as_clap(words: &[String]) {
        let argv: Vec<OsString> = std::iter::once("zookeeper".to_string())
            .chain(words.iter().cloned())
            .map(OsString::from)
            .collect();
        if let Some(fast) = seed_only(&argv) {
            let slow = Args::try_parse_from(&argv)
                .unwrap_or_else(|err| panic!("{words:?}: clap refuses what seed_only took: {err}"));
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{words:?}");
        }
    }

    #[test]
    fn the_seed_lines_parse_by_hand_as_clap_parses_them() {
        for line in [
            "-r fs ls -l",
            "-Pn -m100M -c 50 -p 10 sh -c 'x'",
            "-rfs -P true",
            "-r -dir true",
            "-P -- -weird",
            "-Pr fs true",
            "-m 1G -m 2G true",
            "-P -P true",
            "true",
            "- true",
            "-n",
            "-m bogus true",
            "-x true",
            "-r  true",
        ] {
            same_as_clap(&line.split(' ').map(String::from).collect::<Vec<_>>());
        }
        assert!(seed_only(&["zookeeper", "-P", "true"].map(OsString::from)).is_some());
    }

    #[test]
    fn short_flags_bundle_and_take_attached_values() {
        let spec = run(&["-Pn", "-m100M", "-c", "50", "-p64", "-r", "/fs", "/bin/sh"]).unwrap();
        assert!(spec.mounts_proc());
        assert_eq!(spec.network, Network::Slirp4netns);
        assert_eq!(spec.resources.memory_bytes, Some(100 << 20));
        assert_eq!(spec.resources.cpu_percent, Some(50));
        assert_eq!(spec.resources.pids, Some(64));
        assert_eq!(spec.root, Some(PathBuf::from("/fs")));
        assert_eq!(command(&spec), ["/bin/sh"]);
    }

    #[test]
    fn long_forms_match_short_ones() {
        let long =
            run(&["--rootfs", "fs", "--memory=1G", "--cpus", "250", "--pids", "9", "--proc", "--net", "x"]);
        let short = run(&["-r", "fs", "-m", "1G", "-c", "250", "-p", "9", "-P", "-n", "x"]);
        assert_eq!(long.unwrap(), short.unwrap());
    }

    #[test]
    fn everything_after_the_command_belongs_to_it() {
        assert_eq!(command(&run(&["-r", "fs", "ls", "-l"]).unwrap()), ["ls", "-l"]);
        assert_eq!(command(&run(&["sh", "-c", "-x", "true"]).unwrap()), ["sh", "-c", "-x", "true"]);
        assert_eq!(command(&run(&["echo", "-n", "hi"]).unwrap()), ["echo", "-n", "hi"]);
        assert_eq!(
            command(&run(&["ls", "-h", "--help", "-r", "x"]).unwrap()),
            ["ls", "-h", "--help", "-r", "x"]
        );
        assert_eq!(command(&run(&["-P", "--", "-weird", "-P"]).unwrap()), ["-weird", "-P"]);
        assert_eq!(command(&run(&["--", "--", "x"]).unwrap()), ["--", "x"]);
    }

    #[test]
    fn help_and_version_are_info() {
        for flag in ["-h", "--help"] {
            match parse(["zookeeper", flag], |_| None, false).unwrap() {
                Invocation::Info(text) => {
                    assert!(text.contains("Usage: zookeeper [options] <command>"), "{text}");
                    assert!(text.contains("-r, --rootfs <DIR>"), "{text}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(parse(["zookeeper", "--version"], |_| None, false), Ok(Invocation::Info(_))));
        assert_eq!(parse(["zookeeper", "--cleanup"], |_| None, false), Ok(Invocation::Cleanup));
        assert!(parse(["zookeeper", "--cleanup", "sh"], |_| None, false).is_err());
    }

    #[test]
    fn errors_are_one_line_and_name_the_option() {
        let cases: &[(&[&str], &str)] = &[
            (&["-x", "sh"], "'-x'"),
            (&["--bogus", "sh"], "'--bogus'"),
            (&["-m"], "--memory"),
            (&["-m", "12X", "sh"], "--memory"),
            (&["-m", "", "sh"], "--memory"),
            (&["-m", "-5", "sh"], "-m"),
            (&["-m", "1.5G", "sh"], "--memory"),
            (&["-m", "99999999999G", "sh"], "--memory"),
            (&["-m", "10", "sh"], "--memory"),
            (&["-c", "0", "sh"], "--cpus"),
            (&["-c", "abc", "sh"], "--cpus"),
            (&["-c", "50%", "sh"], "--cpus"),
            (&["-c", "99999999999", "sh"], "--cpus"),
            (&["-p", "0", "sh"], "--pids"),
            (&["-p", "-1", "sh"], "-p"),
            (&["-p", "5000000", "sh"], "--pids"),
            (&["--env", "=x", "sh"], "--env"),
            (&["--overlay", "sh"], "--overlay needs -r DIR"),
            (&["-r", "fs", "--overlay-size", "1M", "sh"], "--overlay-size needs --overlay"),
            (&["-r", "fs", "--overlay", "--overlay-size", "1", "sh"], "--overlay-size"),
            (&["-V", "sh"], "'-V'"),
            (&[], "no command"),
            (&["-P"], "no command"),
            (&[""], "empty"),
        ];
        for (argv, needle) in cases {
            let err = run(argv).expect_err(&format!("{argv:?} should fail"));
            assert!(!err.0.contains('\n'), "{argv:?}: {err}");
            assert!(err.0.contains(needle), "{argv:?}: {err} lacks {needle}");
        }
    }

    #[test]
    fn a_terminal_when_asked_or_when_on_one() {
        let tty = |argv: &[&str], on_terminal: bool| match parse(argv.iter().copied(), |_| None, on_terminal)
        {
            Ok(Invocation::Run(spec)) => spec.process.terminal,
            other => panic!("{other:?}"),
        };
        assert!(tty(&["zookeeper", "sh"], true));
        assert!(!tty(&["zookeeper", "sh"], false));
        assert!(tty(&["zookeeper", "--tty", "sh"], false));
        assert!(!tty(&["zookeeper", "--no-tty", "sh"], true));
        assert!(parse(["zookeeper", "--tty", "--no-tty", "sh"], |_| None, true).is_err());
    }

    #[test]
    fn published_ports() {
        let m = parse_publish("8080:80").unwrap();
        assert_eq!(m.to_string(), "127.0.0.1:8080:80/tcp");
        assert_eq!(parse_publish("0.0.0.0:53:5353/udp").unwrap().to_string(), "0.0.0.0:53:5353/udp");
        assert_eq!(parse_publish("[::1]:8080:80/tcp").unwrap().to_string(), "[::1]:8080:80/tcp");
        assert_eq!(parse_publish("::1:8080:80").unwrap().to_string(), "[::1]:8080:80/tcp");
        for bad in ["80", "0:80", "80:0", "x:80", "70000:80", "8080:80/sctp", "1.2.3:80:80", ""] {
            assert!(parse_publish(bad).is_err(), "{bad:?} accepted");
        }
        let spec = run(&["--publish", "8080:80", "true"]).unwrap();
        assert_eq!(spec.network, Network::Slirp4netns, "--publish implies -n");
        // IPv6 host addresses: pasta's, not slirp4netns's.
        for slirp in [&["--publish", "[::1]:8080:80"][..], &["-n", "--publish", "[::]:8080:80"][..]] {
            let args: Vec<&str> = slirp.iter().copied().chain(["true"]).collect();
            assert!(run(&args).unwrap_err().0.contains("use --network pasta"), "{slirp:?}");
        }
        let spec = run(&["--network", "pasta", "--publish", "[::1]:8080:80", "true"]).unwrap();
        assert!(spec.publish[0].host_ip.is_ipv6());
        assert_eq!(run(&["--network", "pasta", "true"]).unwrap().network, Network::Pasta);
        assert_eq!(run(&["--network=none", "true"]).unwrap().network, Network::LoopbackOnly);
        assert!(run(&["--network", "none", "-n", "true"]).is_err());
        assert!(run(&["--network", "bridge", "true"]).is_err());
        assert_eq!(run(&["--mtu", "1500", "-n", "true"]).unwrap().mtu, Some(1500));
        for bad in ["0", "67", "65522", "x", ""] {
            assert!(run(&["--mtu", bad, "-n", "true"]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn detach_and_the_management_options() {
        use crate::detach::Manage;
        let parsed =
            |argv: &[&str]| parse(std::iter::once("zookeeper").chain(argv.iter().copied()), |_| None, true);
        match parsed(&["-dP", "--name", "web", "--rm", "httpd", "-f"]).unwrap() {
            Invocation::Detach(d) => {
                assert_eq!(d.name.as_deref(), Some("web"));
                assert!(d.auto_remove && d.spec.mounts_proc());
                assert!(!d.spec.process.terminal, "a detached container has no terminal, even from one");
                assert_eq!(d.argv, ["-dP", "--name", "web", "--rm", "httpd", "-f"].map(OsString::from));
                assert_eq!(command(&d.spec), ["httpd", "-f"]);
            }
            other => panic!("{other:?}"),
        }
        match parsed(&["-d", "--image", "busybox", "true"]).unwrap() {
            Invocation::Detach(d) => {
                assert_eq!(d.image.as_ref().map(|i| i.reference.as_str()), Some("busybox"));
                assert!(d.image.as_ref().is_some_and(|i| i.command_given));
                assert_eq!(command(&d.spec), ["true"]);
            }
            other => panic!("{other:?}"),
        }
        let manage = |argv: &[&str]| match parsed(argv) {
            Ok(Invocation::Manage(m)) => m,
            other => panic!("{argv:?}: {other:?}"),
        };
        assert_eq!(manage(&["--list"]), Manage::List);
        assert_eq!(manage(&["--logs", "w", "--follow"]), Manage::Logs { name: "w".into(), follow: true });
        assert_eq!(manage(&["--stop", "w", "--time", "3"]), Manage::Stop { name: "w".into(), time: Some(3) });
        assert_eq!(manage(&["--kill", "w"]), Manage::Kill { name: "w".into(), signal: "KILL".into() });
        assert_eq!(manage(&["--kill", "w", "HUP"]), Manage::Kill { name: "w".into(), signal: "HUP".into() });
        assert_eq!(manage(&["--remove", "w", "--force"]), Manage::Remove { name: "w".into(), force: true });
        assert_eq!(manage(&["--inspect", "w"]), Manage::Inspect { name: "w".into() });
        assert_eq!(
            manage(&["--exec", "w", "-t", "sh", "-c", "--list"]),
            Manage::Exec {
                name: "w".into(),
                command: ["sh", "-c", "--list"].map(OsString::from).to_vec(),
                tty: true
            }
        );
        // The first word that is not an option is still the command.
        assert_eq!(command(&run(&["list"]).unwrap()), ["list"]);
        assert_eq!(command(&run(&["--rm", "sh"]).unwrap()), ["sh"]);
        for (argv, needle) in [
            (&["--list", "sh"][..], "takes no command"),
            (&["--list", "--inspect", "w"][..], "exclude each other"),
            (&["--exec", "w"][..], "needs a command"),
            (&["--kill", "w", "TERM", "x"][..], "one signal"),
            (&["--name", "w", "sh"][..], "--name needs --detach"),
            (&["--follow", "--list"][..], "--follow needs --logs"),
            (&["--time", "1", "sh"][..], "--time needs --stop"),
            (&["--force", "sh"][..], "--force needs --remove"),
            (&["-d", "--list"][..], "exclude each other"),
            (&["-d", "-t", "sh"][..], "--detach and --tty"),
        ] {
            let err = parsed(argv).expect_err(&format!("{argv:?}")).0;
            assert!(err.contains(needle) && !err.contains('\n'), "{argv:?}: {err}");
        }
    }

    #[test]
    fn stop_timeouts() {
        let timeout = |t: &str| run(&["--stop-timeout", t, "true"]).map(|spec| spec.stop_timeout.as_secs());
        assert_eq!(timeout("0"), Ok(0));
        assert_eq!(timeout("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(run(&["true"]).unwrap().stop_timeout.as_secs(), 10);
        for bad in ["", "-1", "+5", " 5", "1.5", "x", "18446744073709551616"] {
            assert!(timeout(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert_eq!(parse_memory("1024k"), Ok(1 << 20));
        assert_eq!(parse_memory("1024K"), Ok(1 << 20));
        assert_eq!(parse_memory("256M"), Ok(256 << 20));
        assert_eq!(parse_memory("256m"), Ok(256 << 20));
        assert_eq!(parse_memory("2g"), Ok(2 << 30));
        for bad in
            ["", "M", "1MB", "1.5M", "-1M", "+1M", " 1M", "1 M", "0", "1k", "1t", "18446744073709551615"]
        {
            assert!(parse_memory(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cpu_percent_and_docker_cpus() {
        let long = run(&["--cpu-percent", "150", "true"]).unwrap();
        assert_eq!(long, run(&["--cpus", "150", "true"]).unwrap());
        assert_eq!(long.resources.cpu_percent, Some(150));
        let err = run(&["--cpus", "1.5", "true"]).unwrap_err().0;
        assert!(err.contains("write --cpus 150") && !err.contains('\n'), "{err}");
        assert!(run(&["--cpus", "0.5", "true"]).unwrap_err().0.contains("write --cpus 50"));
        assert!(run(&["-c", "2.", "true"]).unwrap_err().0.contains("write --cpus 200"));
        assert!(!run(&["-c", "NaN.", "true"]).unwrap_err().0.contains("write"));
    }

    #[test]
    fn memory_swap() {
        let swap = |args: &[&str]| run(args).map(|spec| spec.resources.memory_swap_bytes);
        assert_eq!(swap(&["-m", "32M", "--memory-swap", "64M", "true"]), Ok(Some(64 << 20)));
        assert_eq!(swap(&["-m", "32M", "--memory-swap", "-1", "true"]), Ok(Some(-1)));
        assert_eq!(swap(&["-m", "32M", "true"]), Ok(None));
        assert!(swap(&["--memory-swap", "64M", "true"]).unwrap_err().0.contains("needs --memory"));
        assert!(swap(&["-m", "64M", "--memory-swap", "32M", "true"]).unwrap_err().0.contains("less than"));
        assert!(swap(&["-m", "64M", "--memory-swap", "-2", "true"]).is_err());
    }

    #[test]
    fn cpu_and_pids() {
        assert_eq!(parse_cpu_percent("50"), Ok(50));
        assert_eq!(parse_cpu_percent("250"), Ok(250));
        assert_eq!(parse_pids("1"), Ok(1));
        for bad in ["", "0", "-1", "1.5", "x", "4294967296"] {
            assert!(parse_cpu_percent(bad).is_err(), "{bad:?} accepted");
            assert!(parse_pids(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn environment_is_clean_and_extendable() {
        let spec =
            run(&["--env", "A=1", "--env", "FROMHOST", "--env", "UNSET", "--env", "PATH=/x", "sh"]).unwrap();
        let env: Vec<&str> = spec.process.env.iter().map(|e| e.to_str().unwrap()).collect();
        assert_eq!(env, ["PATH=/x", "HOME=/root", "HOSTNAME=zoo", "A=1", "FROMHOST=host-value"]);
    }

    #[test]
    fn platform_and_image_inspect() {
        let parse_words = |words: &[&str]| {
            parse(std::iter::once("zookeeper").chain(words.iter().copied()), |_| None, false)
        };
        match parse_words(&["--platform", "linux/arm64/v8", "--image", "x", "true"]) {
            Ok(Invocation::RunImage(_, image)) => {
                assert_eq!(image.platform.unwrap().to_string(), "linux/arm64/v8");
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse_words(&["--image-pull", "x", "--platform", "linux/amd64"]) {
            Ok(Invocation::Pull { platform: Some(p), .. }) => assert_eq!(p.to_string(), "linux/amd64"),
            other => panic!("unexpected {other:?}"),
        }
        match parse_words(&["--image-inspect", "x", "--store", "/s"]) {
            Ok(Invocation::Images(ImageCommand::Inspect(r), Some(store))) => {
                assert_eq!((r.as_str(), store), ("x", PathBuf::from("/s")));
            }
            other => panic!("unexpected {other:?}"),
        }
        for (words, needle) in [
            (&["--platform", "linux/amd64", "-r", "/fs", "true"][..], "--platform goes with"),
            (&["--platform", "amd64", "--image", "x"][..], "OS/ARCH"),
            (&["--image-inspect", "x", "--images"][..], "one at a time"),
            (&["--image-inspect", "x", "true"][..], "no command"),
        ] {
            let err = parse_words(words).unwrap_err().0;
            assert!(err.contains(needle), "{words:?}: {err}");
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_hand_parser_agrees_with_clap(words in proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(vec!["-r", "-m", "-c", "-p", "-P", "-n", "-Pn", "-nP", "--", "-", "-m100M", "-rfs", "-c50", "-p7", "x", "sh", "-h", "--net"]).prop_map(String::from),
                "[-a-zA-Z0-9]{0,6}",
            ], 0..8)) {
            super::tests::same_as_clap(&words);
        }

        #[test]
        fn any_command_line_parses_or_fails_in_one_line(argv in proptest::collection::vec(".{0,12}", 0..8)) {
            let argv = std::iter::once("zookeeper".to_string()).chain(argv);
            match parse(argv, |_| None, false) {
                Ok(_) => {}
                Err(UsageError(message)) => prop_assert!(!message.contains('\n') && !message.is_empty()),
            }
        }

        #[test]
        fn sizes_round_trip(n in 1u64..1_000_000, unit in prop::sample::select(vec!["", "k", "K", "m", "M", "g", "G"])) {
            let multiplier: u64 = match unit { "" => 1, "k" | "K" => 1 << 10, "m" | "M" => 1 << 20, _ => 1 << 30 };
            let expected = n * multiplier;
            let parsed = parse_memory(&format!("{n}{unit}"));
            if expected >= 1 << 20 {
                prop_assert_eq!(parsed, Ok(expected));
            } else {
                prop_assert!(parsed.is_err());
            }
        }

        #[test]
        fn numbers_never_panic(text in ".{0,24}") {
            let _ = parse_memory(&text);
            let _ = parse_cpu_percent(&text);
            let _ = parse_pids(&text);
        }
    }
}
