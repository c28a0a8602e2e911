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
//! as empty folders. A btrfs entry's `subvol=`/`subvolid=` mounts that
//! subvolume ([`crate::fs::FsView::subvolume_root`] and
//! [`crate::fs::rooted::Rooted`]); each volume is opened once however many
//! entries mount it, and a filesystem view that knows no subvolumes shows an
//! empty folder with the reason rather than another tree. A root whose
//! default tree has no `/etc/fstab` is looked for in the subvolumes at the
//! volume's top whose own fstab names them for `/` (`subvol=@`).

mod namespace;
mod tree;

pub(crate) use namespace::root_in_subvolume;
pub use namespace::{
    Mount, MountState, Namespace, Outside, drive_display, drive_path, operator_path,
    windows_display,
};
pub use tree::GuestFs;

#[cfg(test)]
mod tests;
