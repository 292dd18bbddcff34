//! zookeeper: run a program in an isolated, rootless Linux container built
//! from kernel facilities only.
//!
//! The modules, in the order a container comes to life:
//! - [`cli`]: the command line, parsed into a [`spec::ContainerSpec`]
//!   ([`oci`]: `--bundle`, an OCI bundle's config.json converted into one);
//! - `container`: one container's life, start to clean-up ([`run`]);
//! - `namespaces`: clone() into new namespaces;
//! - [`keeper`]: the kept user namespace a rootless container is cloned
//!   in, so that its id maps need no set-id helper;
//! - `idmap`, `cgroups`, `network`: the parent's set-up: id maps,
//!   the container's cgroup (created and removed there; `systemd` for a
//!   delegated scope), slirp4netns;
//! - `sync`: the one-way channels between parent and child;
//! - `child`: the child's set-up up to exec (hostname is set there);
//! - `rootfs`: the child's filesystem;
//! - `capabilities`, [`seccomp`]: confinement, applied just before exec
//!   ([`seccomp_oci`]: an OCI profile compiled in place of the built-in filter);
//! - `exec`: finding and exec'ing the command; `init`: `--init`;
//! - [`terminal`]: the container's pty, relayed like `docker run -it`;
//!   `stdio`: without one, pipes in place of the caller's terminals;
//! - `signals`, [`status`]: waiting, forwarding signals, mirroring the end;
//! - [`cleanup`]: `--cleanup`, after zookeepers that were killed;
//! - [`runtime`]: the `zookeeper-oci` binary, runc's command line (create,
//!   start, state, kill, delete, run) on the same engine.
//!
//! The public interface is small: the description ([`spec`]), [`run`] and
//! its [`Error`], the front ends that build a description ([`cli`], [`oci`],
//! with [`seccomp_oci`]), and what the `zookeeper` binary needs beside
//! ([`preflight`], [`cleanup`], [`status`], [`terminal`], [`trace`]). The
//! engine's stages are the crate's own.

pub(crate) mod capabilities;
pub(crate) mod cgroups;
pub(crate) mod child;
pub mod cleanup;
pub mod cli;
pub(crate) mod container;
pub mod detach;
pub mod error;
pub(crate) mod exec;
pub(crate) mod hooks;
pub(crate) mod idmap;
pub mod image;
pub(crate) mod init;
pub mod keeper;
pub(crate) mod namespaces;
pub(crate) mod network;
pub mod oci;
pub mod preflight;
pub(crate) mod rootfs;
pub mod runtime;
pub mod seccomp;
pub mod seccomp_oci;
pub(crate) mod signals;
pub mod spec;
pub mod status;
pub(crate) mod stdio;
pub(crate) mod sync;
pub(crate) mod systemd;
pub mod terminal;
pub mod trace;
pub(crate) mod users;

pub use container::{Running, run, run_observed};
pub use error::Error;
