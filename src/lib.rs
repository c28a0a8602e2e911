//! vmrescue: rescue files from virtual-machine disk images.
//!
//! The crate is layered the way a disk image is:
//!
//! * [`io`] — byte sources read by offset (`&self`, pread), windows and
//!   mapped (linear/striped) views.
//! * [`image`] — container formats (raw files, block devices, qcow2).
//! * [`layers`] — partition tables, LVM2 and the content probe, assembled
//!   into one [`layers::Layout`] per set of disks.
//! * [`pve`] — Proxmox VE discovery: guests, their disks, whether they run.
//! * [`fs`] — guest filesystems behind the [`fs::FsView`] trait.
//! * [`guest`] — the guest as it boots: its fstab's mounts over every
//!   volume, composed into one tree.
//! * [`engine`] — the userspace engine (we parse everything ourselves) and
//!   the kernel engine (loop + device-mapper + read-only mount).
//! * [`ops`] — what the operator does with a filesystem: copy out, listings.
//! * [`elf`] — ELF objects and how the guest's `ld.so` finds them.
//! * [`doctor`] — why won't the guest boot: linking, mounts, boot entries,
//!   space, accounts; each finding with its evidence and repair.
//! * [`repair`] — the right target for a broken symlink, relink with an
//!   undo record.
//! * [`tui`] — the full-screen interface.
//! * [`demo`] — the bundled demo disk; [`text`] — showing guest bytes to a
//!   person (escaping, terminal columns).
//!
//! `ARCHITECTURE.md` at the top of the repository maps the folders and
//! their invariants.
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

pub mod demo;
pub mod doctor;
pub mod elf;
pub mod engine;
pub mod error;
pub mod fs;
pub mod guest;
pub mod image;
pub mod io;
pub mod layers;
pub mod ops;
pub mod problem;
pub mod pve;
pub mod repair;
pub mod teardown;
pub mod text;
pub mod tui;

pub use error::{Error, Result};
