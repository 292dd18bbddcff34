//! zookeeper's failures and the exit statuses they map to (SPEC.md 2).

use crate::sync::Failure;

#[derive(Debug)]
pub enum Error {
    /// zookeeper itself could not do something: exit 125.
    Setup(anyhow::Error),
    /// The container could not start its command: 125, 126 or 127 as reported.
    Container(Failure),
    /// A stop signal (HUP, INT, QUIT, TERM) came while the container was
    /// still starting: zookeeper gave up, cleaned up, and ends by that
    /// signal (it is not the container's death).
    Interrupted(nix::sys::signal::Signal),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Setup(_) => 125,
            Error::Container(failure) => failure.exit_code.into(),
            Error::Interrupted(sig) => 128 + *sig as i32,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // "{:#}" prints the whole context chain on one line.
            Error::Setup(err) => write!(f, "{err:#}"),
            Error::Container(failure) => f.write_str(&failure.message),
            Error::Interrupted(sig) => write!(f, "interrupted by {sig} while the container was starting"),
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Error {
        Error::Setup(err)
    }
}

/// An errno as zookeeper's messages read: lower case, no "(os error N)".
pub fn errno_text(errno: nix::errno::Errno) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}
