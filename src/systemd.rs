//! Asking the user's systemd for a place to put cgroups (SPEC.md 3.6).
//!
//! On a systemd host a rootless user may only write inside the subtree its
//! `user@UID.service` delegates. As the assignment's skeleton does, zookeeper
//! asks the user's systemd instance, over D-Bus, for a transient scope
//! `zookeeper-<pid>.scope` with `Delegate=yes` in `user.slice` and waits
//! until systemd has moved it there; the container's cgroup then goes beside
//! the scope (see [`crate::cgroups`]). systemd removes the scope by itself
//! once zookeeper, its last process, has exited.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dbus::arg::{RefArg, Variant};
use dbus::blocking::Connection;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A unit's properties: D-Bus `a(sv)`.
type Properties<'a> = Vec<(&'a str, Variant<Box<dyn RefArg>>)>;

/// Moves zookeeper into a new delegated scope; returns its cgroup path (as
/// /proc/self/cgroup shows it).
pub fn move_into_scope() -> Result<String> {
    let pid = std::process::id();
    let name = format!("zookeeper-{pid}.scope");
    let connection = user_bus().context("connecting to the user's systemd (D-Bus)")?;
    let proxy = connection.with_proxy("org.freedesktop.systemd1", "/org/freedesktop/systemd1", TIMEOUT);
    let properties: Properties = vec![
        ("Description", Variant(Box::new("zookeeper container supervisor".to_string()))),
        ("Slice", Variant(Box::new("user.slice".to_string()))),
        ("Delegate", Variant(Box::new(true))),
        ("PIDs", Variant(Box::new(vec![pid]))),
    ];
    // Auxiliary units, `a(sa(sv))`: none.
    let auxiliary: Vec<(&str, Properties)> = Vec::new();
    let _job: (dbus::Path,) = proxy
        .method_call(
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            (name.as_str(), "fail", properties, auxiliary),
        )
        .with_context(|| format!("asking systemd for {name}"))?;
    // The job moves us; wait until the kernel shows it.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
        if let Some(path) = cgroup.lines().find_map(|l| l.strip_prefix("0::")) {
            if path.ends_with(&format!("/{name}")) {
                return Ok(path.to_string());
            }
        }
        if Instant::now() > deadline {
            bail!("systemd did not move zookeeper into {name} in time");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The user's bus: $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus
/// (where systemd's user instance puts it).
fn user_bus() -> Result<Connection> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        return Ok(Connection::new_session()?);
    }
    let runtime = std::env::var("XDG_RUNTIME_DIR")
        .ok()
        .filter(|dir| !dir.is_empty())
        .context("neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set: is there a user session?")?;
    let address = format!("unix:path={runtime}/bus");
    let mut channel =
        dbus::channel::Channel::open_private(&address).with_context(|| format!("opening {address}"))?;
    channel.register().context("registering on the user bus")?;
    Ok(Connection::from(channel))
}
