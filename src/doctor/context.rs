//! What every check shares: the guest's tree, its mounts and disks, and the
//! ELF facts read once.

use std::sync::OnceLock;

use crate::fs::FsView;
use crate::guest::Namespace;
use crate::layers::Layout;
use crate::repair::candidates::Guest;

/// The guest being examined.
pub struct Context<'a> {
    /// The guest's tree: the namespace's merged tree, or one volume.
    pub fs: &'a dyn FsView,
    /// The guest's mounts, when the whole guest is examined.
    pub namespace: Option<&'a Namespace>,
    /// The disks' layout (volumes, UUIDs), to resolve `root=` and fstab sources.
    pub layout: Option<&'a Layout>,
    /// When one volume of a Windows guest is examined alone: the drive the
    /// guest gives it (`C:\`), to show its paths as Windows writes them.
    pub drive: Option<String>,
    /// Library directories and ELF facts, each object parsed once and shared
    /// by every check.
    pub guest: Guest<'a>,
    cmdline: OnceLock<Option<String>>,
}

impl<'a> Context<'a> {
    /// A context over `fs`; `namespace` and `layout` when the whole guest is examined.
    pub fn new(
        fs: &'a dyn FsView,
        namespace: Option<&'a Namespace>,
        layout: Option<&'a Layout>,
    ) -> Context<'a> {
        Context {
            fs,
            namespace,
            layout,
            drive: None,
            guest: Guest::new(fs),
            cmdline: OnceLock::new(),
        }
    }

    /// The kernel command line of the boot loader's default entry, read once.
    pub fn kernel_cmdline(&self) -> Option<&str> {
        self.cmdline
            .get_or_init(|| super::boot::default_cmdline(self))
            .as_deref()
    }
}
