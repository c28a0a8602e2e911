//! The fstab entries the boot needs: each resolves to a volume of this
//! guest, holds the filesystem type the line names, and can be mounted.
//!
//! What systemd does with a line decides how bad a failure is: a mount
//! without `nofail` that fails makes `local-fs.target` fail and the boot
//! stops in emergency mode (a critical finding, grouped under the
//! mountpoint, or under "cannot start" for `/`); `nofail` and `noauto`
//! lines are not needed to boot and are skipped; a swap device that never
//! appears delays the boot (systemd waits 90 s for it) and then the boot
//! goes on (a warning). A source named by the kernel's disk order
//! (`/dev/sda1`) is resolved by guessing that order: a note. A volume
//! that holds no filesystem, or one of another type than the line names,
//! fails the mount like a missing one (the root's type is not judged: the
//! initramfs mounts it with the probed type, systemd only remounts it).
//!
//! What the disks alone cannot tell is said in the check's summary, not
//! as a finding: a filesystem vmrescue has no reader for (vfat), a source
//! only the running guest knows (`/dev/dm-3`, a disk's serial in
//! `by-id`), a device `/etc/crypttab` opens, a RAID device, or any UUID
//! when the disks hold LUKS volumes or RAID members whose contents are
//! not seen.
//!
//! With the whole guest the namespace's mount table is used (each entry's
//! state and reason); on one volume the volume's own `/etc/fstab` is read
//! and each source resolved through the layout, without mounting.

use super::{Check, Checked, Context, Finding, Impact, Repair, Severity};
use crate::guest::{Mount, MountState};
use crate::layers::fstab::{self, FstabEntry, MountOptions, SpecMatch};
use crate::layers::{Layout, VolumeId};
use crate::text::{count, escape};

const FSTAB: &[u8] = b"/etc/fstab";
const EMERGENCY: &str =
    "without nofail, a failed mount makes systemd stop the boot in emergency mode";

/// Run the check.
pub fn check(ctx: &Context<'_>, out: &mut Vec<Finding>) -> Checked {
    let entries = fstab::read(ctx.fs);
    let rows: Vec<Row> = match ctx.namespace {
        Some(ns) => rows_of_namespace(ns.mounts(), &entries),
        None => match ctx.layout {
            Some(layout) => rows_of_fstab(layout, &entries),
            None => {
                return Checked {
                    check: Check::Mounts,
                    summary: "not checked: no disk layout to resolve the fstab's sources".into(),
                };
            }
        },
    };
    if entries.is_empty() && ctx.namespace.is_none() {
        return Checked {
            check: Check::Mounts,
            summary: "no /etc/fstab on this volume".into(),
        };
    }
    let before = out.len();
    let mut unchecked = Vec::new();
    let hidden = Hidden::of(ctx);
    for row in &rows {
        judge(ctx.layout, &hidden, row, out, &mut unchecked);
    }
    let needed = rows
        .iter()
        .filter(|r| {
            let o = MountOptions::parse(&r.options);
            !o.noauto && !o.nofail
        })
        .count();
    Checked {
        check: Check::Mounts,
        summary: format!(
            "{} ({needed} needed at boot): {}{}",
            count(rows.len() as u64, "fstab entry", "fstab entries"),
            count((out.len() - before) as u64, "finding", "findings"),
            if unchecked.is_empty() {
                String::new()
            } else {
                format!("; {}", unchecked.join(", "))
            }
        ),
    }
}

/// What the boot makes that the disks do not show: the devices
/// `/etc/crypttab` opens, and the filesystems inside encrypted volumes and
/// RAID members (whose UUIDs and labels vmrescue cannot see).
struct Hidden {
    /// `/etc/crypttab`'s names (`/dev/mapper/<name>`).
    crypt_names: Vec<String>,
    /// Why a UUID or label may be on a volume not shown, if one may be.
    containers: Option<String>,
}

impl Hidden {
    fn of(ctx: &Context<'_>) -> Hidden {
        let crypt_names = crate::fs::read_small(ctx.fs, b"/etc/crypttab", 256 * 1024)
            .map(|t| {
                t.split(|&b| b == b'\n')
                    .take(10_000)
                    .filter_map(|l| {
                        let l = String::from_utf8_lossy(l);
                        let name = l.split_ascii_whitespace().next()?.to_string();
                        (!name.starts_with('#')).then_some(name)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let containers = ctx.layout.and_then(|l| {
            let kinds: Vec<&str> = l
                .volumes
                .iter()
                .filter(|v| match v.content.kind {
                    // An unlocked volume's contents are seen.
                    crate::layers::ContentKind::Luks => !l
                        .luks
                        .iter()
                        .any(|(id, s)| *id == v.id && s.unlocked_by.is_some()),
                    // An assembled array's contents are seen.
                    crate::layers::ContentKind::MdRaid => l.md_array_of(v.id).is_none(),
                    _ => false,
                })
                .map(|v| v.content.kind.name())
                .collect();
            (!kinds.is_empty()).then(|| {
                format!(
                    "the disks hold {} whose contents vmrescue does not see",
                    kinds.join(", ")
                )
            })
        });
        Hidden {
            crypt_names,
            containers,
        }
    }

    /// Why `spec` may name a device the boot makes, if it may.
    fn unseen(&self, spec: &str) -> Option<String> {
        if let Some(name) = spec.strip_prefix("/dev/mapper/")
            && self.crypt_names.iter().any(|n| n == name)
        {
            return Some(format!("{spec} is opened from /etc/crypttab at boot"));
        }
        if spec.starts_with("/dev/md") {
            return Some(format!("{spec} is a RAID device assembled at boot"));
        }
        self.containers.clone()
    }
}

/// One fstab entry and what became of it.
struct Row {
    /// Its line in `/etc/fstab`, from 1 (none for a root not in the fstab).
    line: Option<usize>,
    spec: String,
    mountpoint: Vec<u8>,
    fstype: String,
    options: String,
    volume: Option<VolumeId>,
    guessed: bool,
    state: MountState,
}

/// The namespace's table with each entry's fstab line: the root first (the
/// first `/` line, if any), then every other line in order, as
/// `Namespace::build` makes it.
fn rows_of_namespace(mounts: &[Mount], entries: &[FstabEntry]) -> Vec<Row> {
    let root_line = entries
        .iter()
        .find(|e| e.mountpoint == b"/")
        .map(|e| e.line);
    let mut lines = vec![root_line];
    let mut seen_root = false;
    for e in entries {
        if e.mountpoint == b"/" && !seen_root {
            seen_root = true;
            continue;
        }
        lines.push(Some(e.line));
    }
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| Row {
            line: lines.get(i).copied().flatten(),
            spec: m.spec.clone(),
            mountpoint: m.mountpoint.clone(),
            fstype: m.fstype.clone(),
            options: m.options.clone(),
            volume: m.volume,
            guessed: m.guessed,
            state: m.state.clone(),
        })
        .collect()
}

/// The fstab's entries resolved through the layout, not mounted: a
/// resolved device is taken as mountable.
fn rows_of_fstab(layout: &Layout, entries: &[FstabEntry]) -> Vec<Row> {
    entries
        .iter()
        .map(|e| {
            let o = e.options();
            let mut row = Row {
                line: Some(e.line),
                spec: e.spec.clone(),
                mountpoint: e.mountpoint.clone(),
                fstype: e.fstype.clone(),
                options: e.options.clone(),
                volume: None,
                guessed: false,
                state: MountState::Mounted,
            };
            if fstab::is_device_spec(&e.spec) && !o.bind {
                match layout.resolve_spec(&e.spec) {
                    SpecMatch::Found { volume, guessed } => {
                        row.volume = Some(volume);
                        row.guessed = guessed;
                    }
                    SpecMatch::NotFound(why) | SpecMatch::Unresolvable(why) => {
                        row.state = MountState::Missing(why);
                    }
                }
            } else if fstab::is_network_fstype(&e.fstype) {
                row.state = MountState::Missing(String::new());
            } else {
                row.state = MountState::Virtual;
            }
            if e.fstype == "swap" || e.mountpoint == b"swap" {
                row.state = MountState::Swap;
            } else if o.noauto {
                row.state = MountState::NoAuto;
            }
            row
        })
        .collect()
}

/// The line as the fstab gives it (fields separated by one space).
fn line_text(row: &Row) -> String {
    let at = row.line.map_or_else(
        || "not in /etc/fstab".to_string(),
        |l| format!("fstab line {l}"),
    );
    format!(
        "{at}: {} {} {} {}",
        row.spec,
        escape(&row.mountpoint),
        row.fstype,
        row.options
    )
}

fn view(row: &Row, hint: &str) -> Option<Repair> {
    Some(Repair::View {
        path: FSTAB.to_vec(),
        line: row.line.and_then(|l| u32::try_from(l).ok()),
        hint: hint.to_string(),
    })
}

/// Why a device spec names no volume, in the guest's terms.
fn not_found(spec: &str, reason: &str) -> String {
    for (tag, what) in [
        ("UUID=", "UUID"),
        ("LABEL=", "label"),
        ("PARTUUID=", "PARTUUID"),
        ("PARTLABEL=", "partition name"),
    ] {
        if let Some(v) = spec.strip_prefix(tag) {
            return format!("no volume of this guest has {what} {v}");
        }
    }
    reason.to_string()
}

/// Whether the running guest alone could tell which device `spec` is.
fn unresolvable(layout: Option<&Layout>, spec: &str) -> bool {
    layout.is_some_and(|l| matches!(l.resolve_spec(spec), SpecMatch::Unresolvable(_)))
}

/// The family of a filesystem type, as mount would accept it for a
/// probed filesystem: ext2/3/4 are one (the kernel's ext4 driver mounts
/// them all), FAT and NTFS have several driver names.
fn family(fstype: &str) -> Option<&'static str> {
    Some(match fstype {
        "ext2" | "ext3" | "ext4" | "ext4dev" => "ext",
        "xfs" => "xfs",
        "btrfs" => "btrfs",
        "vfat" | "msdos" | "fat" | "umsdos" => "fat",
        "exfat" => "exfat",
        "ntfs" | "ntfs3" | "ntfs-3g" => "ntfs",
        "iso9660" => "iso9660",
        "squashfs" => "squashfs",
        "swap" => "swap",
        _ => return None,
    })
}

/// Judge one entry; what could not be checked goes to `unchecked`.
fn judge(
    layout: Option<&Layout>,
    hidden: &Hidden,
    row: &Row,
    out: &mut Vec<Finding>,
    unchecked: &mut Vec<String>,
) {
    let o = MountOptions::parse(&row.options);
    let is_root = row.mountpoint == b"/";
    let mp = escape(&row.mountpoint);
    let (severity, impact) = if is_root {
        (Severity::Critical, Impact::Boot)
    } else {
        (Severity::Critical, Impact::Mount(row.mountpoint.clone()))
    };
    let finding =
        |severity: Severity, impact: Impact, summary: String, evidence: Vec<String>, hint: &str| {
            Finding {
                check: Check::Mounts,
                severity,
                impact,
                summary,
                evidence,
                path: Some(FSTAB.to_vec()),
                repair: view(row, hint),
            }
        };
    match &row.state {
        MountState::NoAuto | MountState::Virtual | MountState::Bind { .. } => {}
        MountState::Swap => {
            let device = fstab::is_device_spec(&row.spec);
            if device && row.volume.is_none() && !o.nofail && !o.noauto {
                if unresolvable(layout, &row.spec) || hidden.unseen(&row.spec).is_some() {
                    return;
                }
                out.push(finding(
                    Severity::Warning,
                    Impact::Other,
                    format!("the swap device {} is not on this guest's disks", row.spec),
                    vec![
                        line_text(row),
                        not_found(&row.spec, "no volume has it"),
                        "systemd waits 90 s for the device, then boots without swap".into(),
                    ],
                    "correct the swap line's source or add nofail",
                ));
            } else if let Some(v) = row
                .volume
                .and_then(|v| layout.and_then(|l| l.volumes.get(v.0)))
            {
                let kind = v.content.kind;
                if kind.is_filesystem() && !o.nofail {
                    out.push(finding(
                        Severity::Warning,
                        Impact::Other,
                        format!(
                            "the swap line's device {} holds {}, not a swap area",
                            row.spec,
                            kind.name()
                        ),
                        vec![
                            line_text(row),
                            format!("{} ({}) holds {}", row.spec, v.name, kind.name()),
                            "swapon refuses it: the guest boots without swap".into(),
                        ],
                        "correct the swap line's source",
                    ));
                }
            }
        }
        MountState::Missing(reason) => {
            // A network filesystem is never on the disks; a bind's source
            // may be made at boot (by tmpfiles, a service): not judged here.
            if o.nofail || o.bind || fstab::is_network_fstype(&row.fstype) {
                return;
            }
            if let Some(why) = hidden.unseen(&row.spec) {
                unchecked.push(format!("{mp} not checked ({why})"));
                return;
            }
            if unresolvable(layout, &row.spec) {
                // Only the running guest knows (`/dev/dm-3`, a by-id serial).
                unchecked.push(format!("{mp} not checked ({reason})"));
                return;
            }
            out.push(finding(
                severity,
                impact,
                format!("{mp} cannot be mounted: {}", not_found(&row.spec, reason)),
                vec![
                    line_text(row),
                    not_found(&row.spec, reason),
                    EMERGENCY.into(),
                ],
                "correct the source (blkid names the volumes' UUIDs) or add nofail",
            ));
        }
        MountState::Unreadable(reason) => {
            if o.nofail {
                return;
            }
            let volume = row
                .volume
                .and_then(|v| layout.and_then(|l| l.volumes.get(v.0)));
            let kind = volume.map(|v| v.content.kind);
            let ours = kind
                .and_then(|k| crate::fs::kinds::by_probe_name(k.name()))
                .is_some_and(|k| k.reader.is_some());
            match (volume, kind) {
                (Some(v), Some(k)) if !k.is_filesystem() => {
                    out.push(finding(
                        severity,
                        impact,
                        format!(
                            "{mp} cannot be mounted: {} holds {}, not a filesystem",
                            row.spec,
                            v.content.describe()
                        ),
                        vec![
                            line_text(row),
                            format!(
                                "{} is {} and holds {}",
                                row.spec,
                                v.name,
                                v.content.describe()
                            ),
                            EMERGENCY.into(),
                        ],
                        "correct the source (blkid names the volumes' UUIDs) or add nofail",
                    ));
                }
                _ if !ours => {
                    // vmrescue cannot read it; the guest's kernel may well.
                    unchecked.push(format!("{mp} not checked ({reason})"));
                }
                _ => out.push(finding(
                    severity,
                    impact,
                    format!("{mp} cannot be mounted: its filesystem cannot be read ({reason})"),
                    vec![line_text(row), reason.clone(), EMERGENCY.into()],
                    "check the filesystem (fsck on a copy of the image) or add nofail",
                )),
            }
        }
        MountState::Failed(reason) => {
            if o.nofail {
                return;
            }
            // systemd's fstab generator skips a second `/` and a
            // mountpoint that is not an absolute path, with a warning.
            let skipped = !row.mountpoint.starts_with(b"/")
                || reason.starts_with("/ is mounted by an earlier line")
                || reason.starts_with("the mountpoint is not a plain absolute path");
            if skipped {
                out.push(finding(
                    Severity::Note,
                    Impact::Other,
                    format!("fstab entry for {mp} is ignored: {reason}"),
                    vec![line_text(row), reason.clone()],
                    "remove or correct the line",
                ));
                return;
            }
            out.push(finding(
                severity,
                impact,
                format!("{mp} cannot be mounted: {reason}"),
                vec![line_text(row), reason.clone(), EMERGENCY.into()],
                "make the mountpoint a directory or correct the line",
            ));
        }
        MountState::Mounted => {
            let Some(v) = row
                .volume
                .and_then(|v| layout.and_then(|l| l.volumes.get(v.0)))
            else {
                return;
            };
            let kind = v.content.kind;
            let types: Vec<&str> = row.fstype.split(',').filter(|t| !t.is_empty()).collect();
            let any = types.iter().any(|t| *t == "auto" || family(t).is_none());
            let probed = family(kind.name());
            let matches = any || probed.is_none() || types.iter().any(|t| family(t) == probed);
            // `/` is mounted by the initramfs from `root=` with the probed
            // type; systemd only remounts it with the fstab's options.
            if !matches && !o.nofail && !is_root {
                out.push(finding(
                    severity,
                    impact.clone(),
                    format!(
                        "{mp} cannot be mounted: the fstab says {}, the volume holds {}",
                        row.fstype,
                        kind.name()
                    ),
                    vec![
                        line_text(row),
                        format!("{} is {} and holds {}", row.spec, v.name, kind.name()),
                        format!(
                            "mount -t {} refuses a {} filesystem",
                            row.fstype,
                            kind.name()
                        ),
                        EMERGENCY.into(),
                    ],
                    &format!("write {} (or auto) as the type", kind.name()),
                ));
            }
            if row.guessed {
                out.push(finding(
                    Severity::Note,
                    Impact::Other,
                    format!(
                        "{mp}: {} is a kernel name, taken as {} by disk order",
                        row.spec, v.name
                    ),
                    vec![
                        line_text(row),
                        format!(
                            "{} names a disk by the order the guest's kernel finds it; another disk order mounts another volume",
                            row.spec
                        ),
                    ],
                    "name the device by UUID= instead",
                ));
            }
        }
    }
}
