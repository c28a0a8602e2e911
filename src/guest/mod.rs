//! The guest as it boots: one tree across its volumes.
//!
//! [`Namespace::build`] reads the guest root's `/etc/fstab`
//! ([`crate::layers::fstab`]), resolves each source to a volume of the
//! [`crate::layers::Layout`] ([`crate::layers::Layout::resolve_spec`]) and
//! mounts the entries in order, as `mount -a` does, into a [`GuestFs`]: one
//! [`crate::fs::FsView`] over every mounted filesystem. Paths resolve inside
//! it, so an absolute symlink on one volume reaches files on another, and
//! `..` climbs out of a mount into its parent. Entries that cannot be
//! mounted here (a device that is not on these disks, a filesystem nothing
//! reads) stay in the table ([`Namespace::mounts`]) with the reason, shown
//! as empty folders.

mod namespace;
mod tree;

pub use namespace::{Mount, MountState, Namespace};
pub use tree::GuestFs;

#[cfg(test)]
mod tests;
