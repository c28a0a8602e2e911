//! Error types shared by the library.
//!
//! Parsers report corruption with the structure's name and the absolute byte
//! position where it was found, so a message reads like
//! `GPT header at byte 512: bad signature (expected "EFI PART")`.

use std::path::PathBuf;

/// The library's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error while reading or writing `path` (or a described object).
    #[error("{what}: {source}")]
    Io {
        /// What was being accessed: a path or a description.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// On-disk data that does not follow its specification.
    #[error("{structure} at byte {offset}: {detail}")]
    Corrupt {
        /// The structure's name as the specification calls it.
        structure: String,
        /// Absolute byte position (within the source being parsed).
        offset: u64,
        /// What was wrong, and what was expected.
        detail: String,
    },
    /// A valid feature that vmrescue does not handle (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A path, volume or object that does not exist.
    #[error("{0}: not found")]
    NotFound(String),
    /// The caller asked for something that makes no sense (bad option, wrong kind of node).
    #[error("{0}")]
    Invalid(String),
    /// An operation refused for safety (image in use, journal needs recovery, ...).
    #[error("refused: {0}")]
    Refused(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A corruption error.
    pub fn corrupt(structure: impl Into<String>, offset: u64, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            structure: structure.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// An I/O error on a path.
    pub fn io_path(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            what: path.display().to_string(),
            source,
        }
    }

    /// An I/O error while reading a described structure.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Convenience for turning `std::io::Result` into ours with context.
pub trait IoContext<T> {
    /// Attach a description of what was being accessed.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
    /// Attach a path.
    fn with_path(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
    fn with_path(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::io_path(path, source))
    }
}

/// Path of a file, kept for messages.
pub type SourcePath = PathBuf;
