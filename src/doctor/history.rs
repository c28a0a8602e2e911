//! The package manager's own history: the last transactions before the
//! guest stopped. (Being written.)

use crate::fs::FsView;

/// How many transactions are listed.
pub const HISTORY_COUNT: usize = 10;

/// One package transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageEvent {
    /// When, as the log gives it (`2017-03-02 10:29:36`).
    pub when: String,
    /// What (`install glibc-2.12-1.132.el6`).
    pub what: String,
    /// The log it came from.
    pub source: Vec<u8>,
}

/// The last `count` transactions of the guest's package logs, newest last.
pub fn last_transactions(_fs: &dyn FsView, _count: usize) -> Vec<PackageEvent> {
    Vec::new()
}
