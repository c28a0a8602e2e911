//! Disk layers against what real tools made of the same images: qcow2,
//! partition tables (MBR, GPT, lost ones), LVM2, blkid's content probe,
//! truncated and damaged images, volumes read again as disks, the kernel
//! engine's device-mapper tables and `vmrescue layers`.
//!
//! One test binary per subject: each links the whole crate, so a few large
//! ones build much faster than one per file. Tests run as threads of one
//! process, so none here may change process-wide state (environment,
//! signal handlers, working directory, umask) or need the host to itself:
//! such tests get a binary of their own (`tests/kernel_host.rs`, whose
//! `cleanup` looks at every tagged loop device, and `tests/tui_pty.rs`, its
//! own harness).

// Test helpers unwrap too: a failure there is a failed test (`clippy.toml`
// allows unwrap only inside test functions).
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
mod partition_support;

mod kernel_tables;
mod layers_cli;
mod layers_cli_bad_input;
mod layers_cli_demo;
mod ldm;
mod luks;
mod lvm;
mod lvm_corrupt;
mod md;
mod nested;
mod partition_corruption;
mod partition_tables;
mod probe_blkid;
mod pve_host;
mod qcow2;
mod qcow2_corrupt;
mod raid;
mod raid_fixtures;
mod recover_lost_table;
mod thin;
mod truncated_images;
mod vhd;
mod vmdk;
mod volume_as_disk;
