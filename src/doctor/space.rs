//! Full filesystems, from the counters the guest's kernel reads at mount
//! ([`crate::fs::FsView::space`]: the ext group descriptors, the XFS
//! allocation-group headers).
//!
//! Every mounted filesystem of the guest is looked at once. No block left
//! for users other than root (`df`'s "Avail" is 0), 99 % used or more as
//! `df` counts it, or no free inode: full. A full `/` or `/var` breaks the
//! boot itself (journald, dpkg/rpm, sshd's host keys, anything that writes
//! a pid file or a log): critical; another full filesystem is an error. At
//! 95 % a warning.

use super::{Check, Checked, Context, Finding, Impact, Severity};
use crate::fs::{FsView, NodeId, Space, path};
use crate::guest::MountState;
use crate::text::{count, escape};

/// `df`'s use percentage from which a filesystem is full.
const FULL_PERCENT: u64 = 99;
/// From which it is nearly full.
const WARN_PERCENT: u64 = 95;

/// Whose filesystems: a Linux guest's, or a Windows guest's, whose
/// mountpoints are its drives (`C:\`) and whose boot needs its system drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os<'a> {
    /// Mountpoints as paths; `/` and `/var` needed by the boot.
    Linux,
    /// Mountpoints shown as drives ([`crate::guest::windows_display`]);
    /// `system` is the tree's path of the drive holding `Windows\System32`
    /// (`/C:`, or `/` for that volume alone), if found.
    Windows {
        /// The system drive's path in the tree.
        system: Option<&'a [u8]>,
    },
}

/// Run the check.
pub fn check(ctx: &Context<'_>, os: Os<'_>, out: &mut Vec<Finding>) -> Checked {
    let mut looked: Vec<(Vec<u8>, Space)> = Vec::new();
    let mut seen: Vec<crate::layers::VolumeId> = Vec::new();
    match ctx.namespace {
        Some(ns) => {
            for m in ns.mounts() {
                if m.state != MountState::Mounted {
                    continue;
                }
                if let Some(v) = m.volume {
                    if seen.contains(&v) {
                        continue;
                    }
                    seen.push(v);
                }
                let Some(node) = node_at(ctx.fs, &m.mountpoint) else {
                    continue;
                };
                // The node must lie on this mount (not on one mounted over it).
                if ns.mount_of(node).map(|o| o.dev) != Some(m.dev) {
                    continue;
                }
                if let Some(s) = ctx.fs.space(node) {
                    looked.push((m.mountpoint.clone(), s));
                }
            }
        }
        None => {
            if let Some(s) = ctx.fs.space(ctx.fs.root()) {
                looked.push((b"/".to_vec(), s));
            }
        }
    }
    let shown = |mp: &[u8]| match os {
        Os::Linux => escape(mp),
        Os::Windows { .. } => {
            crate::guest::windows_display(ctx.drive.as_deref(), mp).unwrap_or_else(|| escape(mp))
        }
    };
    let before = out.len();
    for (mp, s) in &looked {
        let boot = match os {
            Os::Linux => Boot::Linux(mp == b"/" || mp == b"/var"),
            Os::Windows { system } => Boot::Windows(system == Some(mp.as_slice())),
        };
        judge(mp, &shown(mp), boot, s, out);
    }
    Checked {
        check: Check::Space,
        summary: if looked.is_empty() {
            "no filesystem whose counters vmrescue reads".into()
        } else {
            format!(
                "{} ({}): {} full or nearly",
                count(looked.len() as u64, "filesystem", "filesystems"),
                looked
                    .iter()
                    .map(|(mp, s)| format!("{} {}% used", shown(mp), used_percent(s)))
                    .collect::<Vec<_>>()
                    .join(", "),
                out.len() - before
            )
        },
    }
}

fn node_at(fs: &dyn FsView, mountpoint: &[u8]) -> Option<NodeId> {
    if mountpoint == b"/" {
        return Some(fs.root());
    }
    path::resolve(fs, mountpoint, true).ok().map(|r| r.node)
}

/// The use percentage `df` prints: used / (used + available), rounded up.
pub fn used_percent(s: &Space) -> u64 {
    let used = s.blocks.saturating_sub(s.free_blocks);
    let total = used.saturating_add(s.avail_blocks);
    if total == 0 {
        return 0;
    }
    u128::from(used)
        .saturating_mul(100)
        .div_ceil(u128::from(total))
        .try_into()
        .unwrap_or(100)
}

/// A size in binary units, one decimal (`12 KiB`, `1.3 GiB`).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut div = 1u128;
    while unit + 1 < UNITS.len() && u128::from(bytes) >= div * 1024 {
        div *= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} bytes");
    }
    let tenths = u128::from(bytes) * 10 / div;
    if tenths.is_multiple_of(10) || tenths >= 100 {
        format!("{} {}", tenths / 10, UNITS[unit])
    } else {
        format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
    }
}

/// Whether the boot needs a filesystem to have space: on a Linux guest
/// (`/`, `/var`), or a Windows guest (its system drive).
#[derive(Debug, Clone, Copy)]
enum Boot {
    Linux(bool),
    Windows(bool),
}

impl Boot {
    fn needs(self) -> bool {
        match self {
            Boot::Linux(b) | Boot::Windows(b) => b,
        }
    }
}

/// The finding for the filesystem mounted at `mp` (`m` as the operator
/// knows it), if it is full or nearly.
fn judge(mp: &[u8], m: &str, boot: Boot, s: &Space, out: &mut Vec<Finding>) {
    let bytes = |blocks: u64| blocks.saturating_mul(s.block_size);
    let pct = used_percent(s);
    let no_inodes = s.inodes > 0 && s.free_inodes == 0;
    let full = s.avail_blocks == 0 || pct >= FULL_PERCENT || no_inodes;
    let severity = if full {
        if boot.needs() {
            Severity::Critical
        } else {
            Severity::Error
        }
    } else if pct >= WARN_PERCENT {
        Severity::Warning
    } else {
        return;
    };
    let blocks_line = format!(
        "{} free of {} ({} available to users), {pct}% used",
        size(bytes(s.free_blocks)),
        size(bytes(s.blocks)),
        size(bytes(s.avail_blocks))
    );
    let inodes_line = format!("{} of {} inodes free", s.free_inodes, s.inodes);
    let mut evidence = vec![blocks_line, inodes_line];
    let summary = if no_inodes {
        format!("{m} has no free inode: no file can be created there")
    } else if full {
        format!("{m} is full: no space left for users other than root")
    } else {
        format!("{m} is {pct}% full")
    };
    // What a Linux boot writes; a Windows guest's is not listed.
    if full && matches!(boot, Boot::Linux(true)) {
        evidence.push(
            "with no space, journald, the package manager, sshd's host keys and every pid file or log written at boot fail"
                .into(),
        );
    }
    out.push(Finding {
        check: Check::Space,
        severity,
        impact: Impact::Space(mp.to_vec()),
        summary,
        evidence,
        // The mountpoint, to browse; no repair: what to delete is the
        // operator's call (large logs, caches, core dumps, old kernels).
        path: Some(mp.to_vec()),
        repair: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(blocks: u64, free: u64, avail: u64, inodes: u64, free_inodes: u64) -> Space {
        Space {
            block_size: 4096,
            blocks,
            free_blocks: free,
            avail_blocks: avail,
            inodes,
            free_inodes,
        }
    }

    #[test]
    fn percent_as_df() {
        // df: used 60, avail 30 → 67 %.
        assert_eq!(used_percent(&space(100, 40, 30, 10, 5)), 67);
        assert_eq!(used_percent(&space(100, 5, 0, 10, 5)), 100);
        assert_eq!(used_percent(&space(0, 0, 0, 0, 0)), 0);
    }

    #[test]
    fn severities() {
        let mut out = Vec::new();
        let mut linux = |mp: &str, s: Space| {
            let boot = Boot::Linux(mp == "/" || mp == "/var");
            judge(mp.as_bytes(), mp, boot, &s, &mut out)
        };
        linux("/", space(1000, 3, 0, 100, 50));
        linux("/home", space(1000, 3, 0, 100, 50));
        linux("/srv", space(1000, 40, 40, 100, 50));
        linux("/var", space(1000, 500, 400, 100, 0));
        linux("/data", space(1000, 500, 400, 100, 50));
        // A Windows guest: its drives by letter, the system drive needed.
        for (mp, shown, system) in [("/C:", "C:\\", true), ("/D:", "D:\\", false)] {
            let full = space(1000, 3, 0, 100, 50);
            judge(mp.as_bytes(), shown, Boot::Windows(system), &full, &mut out);
        }
        let got: Vec<(Severity, &str)> = out
            .iter()
            .map(|f| (f.severity, f.summary.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Severity::Critical,
                    "/ is full: no space left for users other than root"
                ),
                (
                    Severity::Error,
                    "/home is full: no space left for users other than root"
                ),
                (Severity::Warning, "/srv is 96% full"),
                (
                    Severity::Critical,
                    "/var has no free inode: no file can be created there"
                ),
                (
                    Severity::Critical,
                    "C:\\ is full: no space left for users other than root"
                ),
                (
                    Severity::Error,
                    "D:\\ is full: no space left for users other than root"
                ),
            ]
        );
        // The Linux boot's writers are named for a Linux `/` only.
        assert_eq!(out[0].evidence.len(), 3);
        assert_eq!(out[4].evidence.len(), 2);
        assert_eq!(size(12 * 1024), "12 KiB");
        assert_eq!(size(1_395_864_371), "1.2 GiB");
        assert_eq!(size(512), "512 bytes");
    }
}
