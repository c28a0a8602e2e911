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

/// Run the check.
pub fn check(ctx: &Context<'_>, out: &mut Vec<Finding>) -> Checked {
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
    let before = out.len();
    for (mp, s) in &looked {
        judge(mp, s, out);
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
                    .map(|(mp, s)| format!("{} {}% used", escape(mp), used_percent(s)))
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

/// Whether a full filesystem at `mp` stops the boot.
fn boot_needs(mp: &[u8]) -> bool {
    mp == b"/" || mp == b"/var"
}

fn judge(mp: &[u8], s: &Space, out: &mut Vec<Finding>) {
    let bytes = |blocks: u64| blocks.saturating_mul(s.block_size);
    let pct = used_percent(s);
    let no_inodes = s.inodes > 0 && s.free_inodes == 0;
    let full = s.avail_blocks == 0 || pct >= FULL_PERCENT || no_inodes;
    let severity = if full {
        if boot_needs(mp) {
            Severity::Critical
        } else {
            Severity::Error
        }
    } else if pct >= WARN_PERCENT {
        Severity::Warning
    } else {
        return;
    };
    let m = escape(mp);
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
    if full && boot_needs(mp) {
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
        judge(b"/", &space(1000, 3, 0, 100, 50), &mut out);
        judge(b"/home", &space(1000, 3, 0, 100, 50), &mut out);
        judge(b"/srv", &space(1000, 40, 40, 100, 50), &mut out);
        judge(b"/var", &space(1000, 500, 400, 100, 0), &mut out);
        judge(b"/data", &space(1000, 500, 400, 100, 50), &mut out);
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
            ]
        );
        assert_eq!(size(12 * 1024), "12 KiB");
        assert_eq!(size(1_395_864_371), "1.2 GiB");
        assert_eq!(size(512), "512 bytes");
    }
}
