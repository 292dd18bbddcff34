//! zookeeper: run a program in an isolated, rootless Linux container built
//! from kernel facilities only.
//!
//! The modules, in the order a container comes to life:
//! - [`cli`]: the command line, parsed into a [`spec::ContainerSpec`];
//! - [`container`]: one container's life, start to clean-up ([`run`]);
//! - [`namespaces`]: clone() into new namespaces;
//! - [`idmap`], [`cgroups`], [`network`]: the parent's set-up: id maps,
//!   the container's cgroup (created and removed there; [`systemd`] for a
//!   delegated scope), slirp4netns;
//! - [`sync`]: the one-way channels between parent and child;
//! - [`child`]: the child's set-up up to exec (hostname is set there);
//! - [`rootfs`]: the child's filesystem;
//! - [`capabilities`], [`seccomp`]: confinement, applied just before exec
//!   ([`seccomp_oci`]: an OCI profile compiled in place of the built-in filter);
//! - [`exec`]: finding and exec'ing the command; [`init`]: `--init`;
//! - [`terminal`]: the container's pty, relayed like `docker run -it`;
//!   [`stdio`]: without one, pipes in place of the caller's terminals;
//! - [`signals`], [`status`]: waiting, forwarding signals, mirroring the end;
//! - [`cleanup`]: `--cleanup`, after zookeepers that were killed.

pub mod capabilities;
pub mod cgroups;
pub mod child;
pub mod cleanup;
pub mod cli;
pub mod container;
pub mod error;
pub mod exec;
pub mod hooks;
pub mod idmap;
pub mod init;
pub mod namespaces;
pub mod network;
pub mod preflight;
pub mod rootfs;
pub mod seccomp;
pub mod seccomp_oci;
pub mod signals;
pub mod spec;
pub mod status;
pub mod stdio;
pub mod sync;
pub mod systemd;
pub mod terminal;
pub mod trace;
pub mod users;

pub use container::run;
pub use error::Error;
