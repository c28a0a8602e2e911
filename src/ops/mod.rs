//! What the operator does with a guest filesystem.
//!
//! * [`copy`] — the copy-out job shared by `vmrescue cp` and the TUI: plan,
//!   run with progress and cancel, summary.
//! * [`find`] — `find` over a guest tree, GNU find's tests and rounding,
//!   streaming results; shared by `vmrescue find` and the TUI's find dialog.
//! * [`list`] — directory listings as `ls` shows them (sorting, `-l` columns,
//!   owner names from the guest's `/etc/passwd`, names escaped for display).
//! * [`pager`] — the file viewer's model: pages read lazily, line numbers
//!   where counted, hex, search, transparent decompression.

pub mod copy;
pub mod find;
pub mod list;
pub mod pager;
pub mod records;
