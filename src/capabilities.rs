//! Capabilities the container must not have (SPEC.md 3.5).
//!
//! Container root holds every capability, but only over the container's own
//! namespaces. These are the ones that still reach the host (the kernel
//! checks some against the initial user namespace: time, modules, raw I/O,
//! reboot, syslog, ...) or that undo other confinement (SETFCAP writes file
//! capabilities, MKNOD creates devices, FSETID keeps set-id bits).

use anyhow::{Context, Result};
use caps::{CapSet, Capability};

/// The assignment's list, unchanged: the contract of SPEC.md 3.5.
pub const DROPPED: [Capability; 20] = [
    Capability::CAP_AUDIT_CONTROL,
    Capability::CAP_AUDIT_READ,
    Capability::CAP_AUDIT_WRITE,
    Capability::CAP_BLOCK_SUSPEND,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FSETID,
    Capability::CAP_IPC_LOCK,
    Capability::CAP_MAC_ADMIN,
    Capability::CAP_MAC_OVERRIDE,
    Capability::CAP_MKNOD,
    Capability::CAP_SETFCAP,
    Capability::CAP_SYSLOG,
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_SYS_BOOT,
    Capability::CAP_SYS_MODULE,
    Capability::CAP_SYS_NICE,
    Capability::CAP_SYS_RAWIO,
    Capability::CAP_SYS_RESOURCE,
    Capability::CAP_SYS_TIME,
    Capability::CAP_WAKE_ALARM,
];

/// Drops [`DROPPED`] from every set of the calling thread and empties the
/// ambient set. The bounding set goes first: it caps what any later exec,
/// including of a file with capabilities, can gain.
pub fn drop_dangerous() -> Result<()> {
    for cap in DROPPED {
        caps::drop(None, CapSet::Bounding, cap)
            .with_context(|| format!("dropping {cap} from the bounding set"))?;
    }
    caps::clear(None, CapSet::Ambient).context("clearing the ambient capabilities")?;
    // Inheritable before permitted: the kernel refuses an inheritable set
    // that is not a subset of bounding and permitted.
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        let mut held = caps::read(None, set).with_context(|| format!("reading the {set:?} capabilities"))?;
        for cap in DROPPED {
            held.remove(&cap);
        }
        caps::set(None, set, &held).with_context(|| format!("dropping from the {set:?} capabilities"))?;
    }
    Ok(())
}
