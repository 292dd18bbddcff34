//! Capabilities the container must not have (SPEC.md 3.5).
//!
//! Container root holds every capability, but only over the container's own
//! namespaces. These are the ones that still reach the host (the kernel
//! checks some against the initial user namespace: time, modules, raw I/O,
//! reboot, syslog, ...) or that undo other confinement (SETFCAP writes file
//! capabilities, MKNOD creates devices, FSETID keeps set-id bits).

use anyhow::{Context, Result};
use caps::{CapSet as CapSet_, Capability};

use crate::spec::{CapSet, Capabilities};

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

/// Drops from the bounding set every capability `keep` lacks: what no
/// later exec, of a file with capabilities or not, can gain. Needs
/// CAP_SETPCAP, so it comes before the process leaves container root.
pub fn limit_bounding(keep: CapSet) -> Result<()> {
    for cap in CapSet::all().iter().filter(|cap| !keep.contains(*cap)) {
        caps::drop(None, CapSet_::Bounding, cap)
            .with_context(|| format!("dropping {cap} from the bounding set"))?;
    }
    Ok(())
}

/// Sets the inheritable, permitted and effective sets to exactly the
/// spec's (each a subset of what the process holds), and raises the
/// ambient ones (which must be permitted and inheritable).
pub fn set(wanted: &Capabilities) -> Result<()> {
    caps::clear(None, CapSet_::Ambient).context("clearing the ambient capabilities")?;
    // Each capset(2) writes all three sets, which must stay consistent:
    // inheritable within bounding and permitted, effective within
    // permitted. So the narrowing goes inheritable, effective, permitted.
    for (set, caps_set) in [
        (CapSet_::Inheritable, wanted.inheritable),
        (CapSet_::Effective, wanted.effective),
        (CapSet_::Permitted, wanted.permitted),
    ] {
        let held: caps::CapsHashSet = caps_set.iter().collect();
        caps::set(None, set, &held).with_context(|| format!("setting the {set:?} capabilities"))?;
    }
    for cap in wanted.ambient.iter() {
        caps::raise(None, CapSet_::Ambient, cap)
            .with_context(|| format!("raising {cap} in the ambient set"))?;
    }
    Ok(())
}
