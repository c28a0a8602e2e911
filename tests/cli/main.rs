//! The command line: `ls`, `cat`, `cp` (rules, hostile guests, signals),
//! pipes that close early, `doctor`, `relink` and `undo`, `find` (against GNU
//! find on the kernel's loop mounts), and Proxmox VE discovery.
//!
//! One test binary per subject (see `tests/layers/main.rs`).

// Test helpers unwrap too: a failure there is a failed test (`clippy.toml`
// allows unwrap only inside test functions).
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
mod copy_support;
#[path = "../image_support/mod.rs"]
mod image_support;
#[path = "../loop_support/mod.rs"]
mod loop_support;
#[path = "../nbd_support/mod.rs"]
mod nbd_support;
#[path = "../pve_support/mod.rs"]
mod pve_support;
#[path = "../rbd/support.rs"]
mod rbd_support;

mod btrfs_cli;
mod btrfs_multi_cli;
mod btrfs_subvol;
mod cli_ls;
mod cli_pipes;
mod copy;
mod copy_cli;
mod copy_destination;
mod copy_hostile;
mod copy_signals;
mod doctor;
mod doctor_boot;
mod doctor_linking;
mod doctor_links;
mod doctor_system;
mod find_cli;
mod guest_namespace;
mod info;
mod inner;
mod json_schema;
mod manual;
mod nbd;
mod pve;
mod pve_in_use;
mod rbd;
mod relink;
mod relink_xfs;
mod windows;
mod windows_paths;
