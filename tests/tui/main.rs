//! The TUI: `App` state tests, screen snapshots (insta, in
//! `tests/tui/snapshots/`), the guest picker, and the restore dialog on a
//! copy of the demo image; the file viewer (`pager`: its model over host
//! files and the real compressors; `tui_viewer`: in the app; `tui_viewer_pty`:
//! end to end in a pseudo-terminal). The end-to-end tests in a pseudo-terminal that
//! send signals are in `tests/tui_pty.rs`, a binary of their own.
//!
//! One test binary per subject (see `tests/layers/main.rs`).

// Test helpers unwrap too: a failure there is a failed test (`clippy.toml`
// allows unwrap only inside test functions).
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../image_support/mod.rs"]
mod image_support;
#[path = "../loop_support/mod.rs"]
mod loop_support;
#[path = "../nbd_support/mod.rs"]
mod nbd_support;
#[path = "../pty_support/mod.rs"]
mod pty_support;
#[path = "../pve_support/mod.rs"]
mod pve_support;
#[path = "../rbd/support.rs"]
mod rbd_support;
#[path = "../tui_support/mod.rs"]
mod tui_support;

mod pager;
mod tui_app;
mod tui_btrfs;
mod tui_find;
mod tui_fixes;
mod tui_goto;
mod tui_guest;
mod tui_guest_pty;
mod tui_inner;
mod tui_luks;
mod tui_luks_pty;
mod tui_nbd;
mod tui_picker;
mod tui_rbd;
mod tui_relink;
mod tui_relink_snapshots;
mod tui_snapshots;
mod tui_viewer;
mod tui_viewer_pty;
