//! Volume names: the canonical ones (`p1`, `vg/lv`) and every spelling a
//! guest's fstab or a guide uses for the same volume.

use super::fstab::{SpecMatch, udev_unescape};
use super::{Layout, Volume, VolumeId, VolumeKind};
use crate::error::{Error, Result};
use crate::io::DiskId;

/// The device-mapper name lvm2 gives `vg/lv`: each `-` inside a name is
/// doubled, then the two are joined with `-` (`vg-x/lv` → `vg--x-lv`).
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

/// Split a device-mapper name back into VG and LV at the first single `-`.
fn split_dm_name(name: &str) -> Option<(String, String)> {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-' {
            if b.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            let vg = name[..i].replace("--", "-");
            let lv = name[i + 1..].replace("--", "-");
            return Some((vg, lv));
        }
        i += 1;
    }
    None
}

/// The drive letter `spec` names (`C:`, `c:\`, `D:/`), in upper case.
fn drive_letter(spec: &str) -> Option<char> {
    let mut chars = spec.chars();
    let letter = chars.next().filter(char::is_ascii_alphabetic)?;
    (chars.next() == Some(':') && matches!(chars.as_str(), "" | "\\" | "/"))
        .then(|| letter.to_ascii_uppercase())
}

/// Kernel disk name prefixes a guest may use, with the disk letter after them.
const DISK_PREFIXES: [&str; 4] = ["sd", "vd", "xvd", "hd"];

/// `sda1` / `vdb2` / `nvme0n1p3` → (disk index, partition number).
fn parse_kernel_partition(name: &str) -> Option<(usize, u32)> {
    if let Some(rest) = name.strip_prefix("nvme") {
        let (ctrl, rest) = rest.split_once('n')?;
        let (_, part) = rest.split_once('p')?;
        return Some((ctrl.parse().ok()?, part.parse().ok()?));
    }
    for prefix in DISK_PREFIXES {
        if let Some(rest) = name.strip_prefix(prefix) {
            let letter = rest.chars().next()?;
            if !letter.is_ascii_lowercase() {
                return None;
            }
            let number: u32 = rest[1..].parse().ok()?;
            return Some(((letter as u8 - b'a') as usize, number));
        }
    }
    None
}

/// `sda` / `vdb` / `nvme1n1` → disk index.
fn parse_kernel_disk(name: &str) -> Option<usize> {
    if let Some(rest) = name.strip_prefix("nvme") {
        let (ctrl, ns) = rest.split_once('n')?;
        ns.parse::<u32>().ok()?;
        return ctrl.parse().ok();
    }
    for prefix in DISK_PREFIXES {
        if let Some(rest) = name.strip_prefix(prefix)
            && rest.len() == 1
            && let Some(letter) = rest.bytes().next().filter(u8::is_ascii_lowercase)
        {
            return Some(usize::from(letter - b'a'));
        }
    }
    None
}

/// The name commands accept for subvolume `path` (bytes from the top
/// level; empty: the top level) of volume `volume`: `p2@/@home`, `p2@/`.
pub(crate) fn subvolume_name(volume: &str, path: &[u8]) -> String {
    format!(
        "{volume}@/{}",
        crate::text::escape_str(&String::from_utf8_lossy(path))
    )
}

/// Most subvolume candidates named in an ambiguity error.
const MAX_NAMED: usize = 8;

impl Layout {
    /// Find a volume, or a btrfs subvolume of one: `VOLUME@SUBVOLUME`,
    /// where VOLUME is any name [`Layout::find_volume`] takes and SUBVOLUME
    /// is `/PATH` (the path from the top level, as `subvol=` gives it:
    /// `p2@/@home`, `p2@/` the top level), `id=N` (as `subvolid=`:
    /// `p2@id=257`) or a bare `PATH`, which names the subvolume of that path,
    /// else the one whose last component is PATH or `@PATH` (`p2@home` for
    /// `@home`) when only one is. A spec that names a volume whole is that
    /// volume (its default subvolume). The subvolume is given by its id.
    pub fn find_volume_or_subvolume(&self, spec: &str) -> Result<(VolumeId, Option<u64>)> {
        let whole = self.find_volume(spec);
        if whole.is_ok() || !spec.contains('@') {
            return whole.map(|v| (v, None));
        }
        for (at, _) in spec.match_indices('@') {
            let (vol, sub) = (&spec[..at], &spec[at + 1..]);
            let Ok(v) = self.find_volume(vol) else {
                continue;
            };
            return self.find_subvolume(v, sub).map(|id| (v, Some(id)));
        }
        whole.map(|v| (v, None))
    }

    /// The name of subvolume `id` of volume `v` (`p2@/@home`), or the
    /// volume's name with `@id=N` when it is not listed.
    pub fn subvolume_name(&self, v: VolumeId, id: u64) -> String {
        let vname = &self.volume(v).name;
        self.subvolumes
            .iter()
            .find(|(x, _)| *x == v)
            .and_then(|(_, subs)| subs.iter().find(|s| s.id == id))
            .map_or_else(
                || format!("{vname}@id={id}"),
                |s| subvolume_name(vname, &s.path),
            )
    }

    /// The id of the subvolume `sub` names on volume `v` (the grammar of
    /// [`Layout::find_volume_or_subvolume`]).
    pub fn find_subvolume(&self, v: VolumeId, sub: &str) -> Result<u64> {
        let vname = &self.volume(v).name;
        let Some((_, subs)) = self.subvolumes.iter().find(|(id, _)| *id == v) else {
            return Err(Error::NotFound(format!(
                "subvolume {sub:?} of {vname}: it has no subvolumes that were read (only btrfs volumes \
                 read by vmrescue's own reader list them)"
            )));
        };
        let list = || {
            subs.iter()
                .map(|s| subvolume_name(vname, &s.path))
                .take(MAX_NAMED)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let trim = |p: &[u8]| -> Vec<u8> {
            p.split(|&c| c == b'/')
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(&b'/')
        };
        if let Some(n) = sub.strip_prefix("id=") {
            let id: u64 = n.parse().map_err(|_| {
                Error::Invalid(format!("{vname}@{sub}: id= takes a subvolume number"))
            })?;
            return subs
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.id)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "subvolume id {id} of {vname}; the subvolumes are: {}",
                        list()
                    ))
                });
        }
        let want = trim(sub.as_bytes());
        if sub.starts_with('/') || want.is_empty() {
            return subs
                .iter()
                .find(|s| s.path == want)
                .map(|s| s.id)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "subvolume {sub:?} of {vname}; the subvolumes are: {}",
                        list()
                    ))
                });
        }
        if let Some(s) = subs.iter().find(|s| s.path == want) {
            return Ok(s.id);
        }
        let mut at = want.clone();
        at.insert(0, b'@');
        let last = |p: &[u8]| p.rsplit(|&c| c == b'/').next().map(<[u8]>::to_vec);
        let found: Vec<_> = subs
            .iter()
            .filter(|s| last(&s.path).is_some_and(|l| !s.path.is_empty() && (l == want || l == at)))
            .collect();
        match found.as_slice() {
            [one] => Ok(one.id),
            [] => Err(Error::NotFound(format!(
                "subvolume {sub:?} of {vname}; the subvolumes are: {}",
                list()
            ))),
            many => Err(Error::Invalid(format!(
                "subvolume {sub:?} of {vname} is ambiguous: {}",
                many.iter()
                    .map(|s| subvolume_name(vname, &s.path))
                    .take(MAX_NAMED)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Find a volume by any of its names: `p1`, `disk1p2`, `vg/lv`,
    /// `/dev/vg/lv`, `/dev/mapper/vg-lv`, `vg-lv`, `lv` (when unique),
    /// `/dev/sda1`, `/dev/vda1`, `UUID=...`, `LABEL=...`, `PARTUUID=...`,
    /// `PARTLABEL=...`; an MD array by `md/<name>`, `md0`, `/dev/md/<name>`,
    /// `/dev/md/<host>:<name>`, `/dev/md0`. A volume on a nested disk (a guest disk in a host
    /// LV) is `<holder>/<local name>` (`pve/vm-100-disk-0/p1`,
    /// `pve/vm-100-disk-0/vg_ta/lv_root`), and `<holder>/<any spelling>`
    /// resolves that spelling among the nested disk's volumes.
    pub fn find_volume(&self, spec: &str) -> Result<VolumeId> {
        let found = self.match_volume(spec.trim());
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::NotFound(format!(
                "volume {spec:?}; the volumes are: {}",
                self.volume_choices()
            ))),
            many => Err(Error::Invalid(format!(
                "volume {spec:?} is ambiguous: {}",
                many.iter()
                    .map(|v| self.describe_candidate(&self.volumes[v.0]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// A volume among several of the same name, told apart by where its
    /// bytes are and by the name that picks it alone (its content's UUID).
    fn describe_candidate(&self, v: &super::Volume) -> String {
        let disks: Vec<String> = v
            .mapping
            .disks()
            .iter()
            .filter_map(|d| self.disks.get(d.0))
            .map(|d| d.origin.short_name())
            .collect();
        let mut out = v.name.clone();
        let mut about = Vec::new();
        if !disks.is_empty() {
            about.push(format!("on {}", disks.join(" + ")));
        }
        let unique_uuid = v.content.uuid.as_deref().filter(|u| {
            self.volumes
                .iter()
                .filter(|o| o.content.uuid.as_deref() == Some(*u))
                .count()
                == 1
        });
        if let Some(u) = unique_uuid {
            about.push(format!("name it UUID={u}"));
        }
        if !about.is_empty() {
            out.push_str(&format!(" ({})", about.join("; ")));
        }
        out
    }

    /// The names of the volumes, for messages.
    pub fn volume_choices(&self) -> String {
        let names: Vec<String> = self
            .volumes
            .iter()
            .filter(|v| !matches!(v.kind, VolumeKind::LogicalVolume { hidden: true, .. }))
            // A nested disk's whole-disk volume is its holder's bytes again.
            .filter(|v| {
                !matches!(v.kind, VolumeKind::WholeDisk { .. })
                    || super::nested::scope_of(self, v.id).is_none()
            })
            .map(|v| {
                let what = v.content.kind.name();
                format!("{} ({what})", v.name)
            })
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    fn match_volume(&self, spec: &str) -> Vec<VolumeId> {
        self.match_in(spec, None, 0)
    }

    /// The volumes `spec` names among those of `scope`: the disks given to
    /// the scan (`None`), or the disk nested in volume `scope`, whose
    /// volumes are named `<scope's name>/<local name>`. A spec of the form
    /// `<volume>/<rest>` where `<volume>` holds a nested disk is `<rest>`
    /// matched in that disk's scope, so every spelling works there too
    /// (`pve/vm-100-disk-0/UUID=…`, `pve/vm-100-disk-0//dev/mapper/pve-root`,
    /// `pve/vm-100-disk-0/lv_root`). At the top level, a spelling other than
    /// a volume's name means the top-level volume it has always meant, and
    /// looks into nested disks only when no top-level volume answers to it
    /// (kernel names `/dev/sda1` never do: they count the disks given).
    fn match_in(&self, spec: &str, scope: Option<VolumeId>, depth: usize) -> Vec<VolumeId> {
        let prefix = scope
            .and_then(|s| self.volumes.get(s.0))
            .map(|v| format!("{}/", v.name))
            .unwrap_or_default();
        let exact: Vec<VolumeId> = self
            .volumes
            .iter()
            .filter(|v| {
                v.name.len() == prefix.len() + spec.len()
                    && v.name.starts_with(&prefix)
                    && v.name.ends_with(spec)
            })
            .map(|v| v.id)
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        if depth < super::nested::MAX_DEPTH {
            for (i, _) in spec.match_indices('/') {
                let (head, rest) = (&spec[..i], &spec[i + 1..]);
                if head.is_empty() || rest.is_empty() {
                    continue;
                }
                let full = format!("{prefix}{head}");
                let holder = self
                    .volumes
                    .iter()
                    .find(|v| v.name == full && self.disks.iter().any(|d| d.parent == Some(v.id)));
                if let Some(h) = holder {
                    let hits = self.match_in(rest, Some(h.id), depth + 1);
                    if !hits.is_empty() {
                        return hits;
                    }
                }
            }
        }
        let (all, kernel_name) = self.match_alias(spec, scope);
        let here: Vec<VolumeId> = all
            .iter()
            .copied()
            .filter(|v| super::nested::scope_of(self, *v) == scope)
            .collect();
        if here.is_empty() && scope.is_none() && !kernel_name {
            return all;
        }
        here
    }

    /// The volumes of any scope that `spec` names other than by their name,
    /// and whether `spec` is a kernel name (`/dev/sda1`: partition numbers
    /// of the disks of `scope`, in order).
    fn match_alias(&self, spec: &str, scope: Option<VolumeId>) -> (Vec<VolumeId>, bool) {
        let by = |pred: &dyn Fn(&Volume) -> bool| -> Vec<VolumeId> {
            self.volumes
                .iter()
                .filter(|v| pred(v))
                .map(|v| v.id)
                .collect()
        };
        for (key, field) in [("UUID=", 0), ("LABEL=", 1)] {
            if let Some(val) = spec.strip_prefix(key) {
                let val = val.trim_matches('"');
                return (
                    by(&|v| {
                        let have = if field == 0 {
                            &v.content.uuid
                        } else {
                            &v.content.label
                        };
                        have.as_deref().is_some_and(|h| {
                            if field == 0 {
                                h.eq_ignore_ascii_case(val)
                            } else {
                                h == val
                            }
                        })
                    }),
                    false,
                );
            }
        }
        if let Some(val) = spec.strip_prefix("PARTUUID=") {
            let val = val.trim_matches('"').to_ascii_lowercase();
            return (by(&|v| self.partuuid(v).is_some_and(|u| u == val)), false);
        }
        if let Some(val) = spec.strip_prefix("PARTLABEL=") {
            let val = val.trim_matches('"');
            return (
                by(&|v| match &v.kind {
                    VolumeKind::Partition { entry, .. } => entry.name.as_deref() == Some(val),
                    _ => false,
                }),
                false,
            );
        }
        // C:, d:\ — the volume a Windows guest gives that drive letter
        // (its MountedDevices, or C: for its system volume).
        if let Some(letter) = drive_letter(spec) {
            let mountpoint = format!("{letter}:\\");
            return (
                by(&|v| v.guest.mountpoint.as_deref() == Some(mountpoint.as_str())),
                false,
            );
        }
        let rest = spec.strip_prefix("/dev/").unwrap_or(spec);
        // /dev/md0, /dev/md/root, md/root
        let md = self.md_named(rest);
        if !md.is_empty() {
            return (md, false);
        }
        // /dev/mapper/vg-lv, vg-lv
        let dm = rest.strip_prefix("mapper/").unwrap_or(rest);
        if let Some((vg, lv)) = split_dm_name(dm) {
            let hits = self.lv(&vg, &lv);
            if !hits.is_empty() {
                return (hits, false);
            }
        }
        // /dev/vg/lv
        if let Some((vg, lv)) = rest.split_once('/') {
            return (self.lv(vg, lv), false);
        }
        // /dev/sda1, vdb2
        if let Some((disk, number)) = parse_kernel_partition(rest) {
            return (
                by(
                    &|v| matches!(&v.kind, VolumeKind::Partition { disk: d, number: n, entry } if self.local_disk(*d, scope) == Some(disk) && *n == number && !entry.is_recovered()),
                ),
                true,
            );
        }
        // lv_root alone, when only one VG has it.
        (
            by(
                &|v| matches!(&v.kind, VolumeKind::LogicalVolume { lv, hidden: false, .. } if lv == rest),
            ),
            false,
        )
    }

    /// Disk `d`'s number among the disks of `scope` (the disks given to the
    /// scan, or the disk nested in a volume), when it is one of them.
    fn local_disk(&self, d: DiskId, scope: Option<VolumeId>) -> Option<usize> {
        self.disks
            .iter()
            .filter(|x| x.parent == scope)
            .position(|x| x.id == d)
    }

    /// Which volume the source `spec` of an fstab line names, as the
    /// guest's udev and device-mapper would: `UUID=`, `LABEL=`, `PARTUUID=`,
    /// `PARTLABEL=`, `/dev/disk/by-uuid|by-label|by-partuuid|by-partlabel/…`,
    /// `/dev/disk/by-id/dm-name-…` and `dm-uuid-LVM-…`, `/dev/mapper/vg-lv`
    /// (`--` for a `-` in a name), `/dev/vg/lv`, MD arrays as `/dev/md0`
    /// and `/dev/md/<name>`, and the kernel names
    /// `/dev/sdXN`, `vdXN`, `hdXN`, `xvdXN`, `nvme0n1pN` (by disk order and
    /// partition number: a guess). `/dev/dm-N` and hardware ids in
    /// `by-id`/`by-path` only the running guest knows.
    ///
    /// The spec is resolved among the volumes of the disks given to the
    /// scan; [`Layout::resolve_spec_from`] resolves it for a guest root on
    /// a nested disk.
    pub fn resolve_spec(&self, spec: &str) -> SpecMatch {
        self.resolve_spec_in(spec, None)
    }

    /// [`Layout::resolve_spec`] for the fstab of the guest whose root is
    /// volume `root`: among the volumes of `root`'s own disks (those given to
    /// the scan, or the disk nested in a host volume that holds it), as that
    /// guest's kernel sees them. A host's fstab never names a guest's
    /// volume, nor a guest's fstab the host's.
    pub fn resolve_spec_from(&self, spec: &str, root: VolumeId) -> SpecMatch {
        self.resolve_spec_in(spec, super::nested::scope_of(self, root))
    }

    fn resolve_spec_in(&self, spec: &str, scope: Option<VolumeId>) -> SpecMatch {
        let found = |ids: Vec<VolumeId>, guessed: bool| match ids
            .into_iter()
            .filter(|v| super::nested::scope_of(self, *v) == scope)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [one] => SpecMatch::Found {
                volume: *one,
                guessed,
            },
            [] => SpecMatch::NotFound(format!("no volume is {spec}")),
            many => SpecMatch::NotFound(format!(
                "{spec} is ambiguous: {}",
                many.iter()
                    .map(|v| self.describe_candidate(&self.volumes[v.0]))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        for tag in ["UUID=", "LABEL=", "PARTUUID=", "PARTLABEL="] {
            if spec.starts_with(tag) {
                return found(self.match_alias(spec, scope).0, false);
            }
        }
        let Some(dev) = spec.strip_prefix("/dev/") else {
            return SpecMatch::NotFound(format!("{spec} is not a device"));
        };
        if let Some(link) = dev.strip_prefix("disk/") {
            let Some((dir, name)) = link.split_once('/') else {
                return SpecMatch::NotFound(format!("{spec} is not a device"));
            };
            let name = udev_unescape(name);
            let tag = match dir {
                "by-uuid" => "UUID=",
                "by-label" => "LABEL=",
                "by-partuuid" => "PARTUUID=",
                "by-partlabel" => "PARTLABEL=",
                "by-id" => {
                    if let Some(dm) = name.strip_prefix("dm-name-") {
                        return found(self.dm_named(dm), false);
                    }
                    if let Some(u) = name.strip_prefix("dm-uuid-LVM-") {
                        return found(self.lv_by_dm_uuid(u), false);
                    }
                    return SpecMatch::Unresolvable(format!(
                        "{spec} names a disk by its hardware id, which only the running guest knows"
                    ));
                }
                _ => {
                    return SpecMatch::Unresolvable(format!(
                        "{spec} names a disk by where it is attached, which only the running guest knows"
                    ));
                }
            };
            return found(self.match_alias(&format!("{tag}{name}"), scope).0, false);
        }
        if let Some(dm) = dev.strip_prefix("mapper/") {
            return found(self.dm_named(dm), false);
        }
        if let Some(n) = dev.strip_prefix("dm-")
            && n.parse::<u32>().is_ok()
        {
            return SpecMatch::Unresolvable(format!(
                "{spec} is numbered by the running guest's device-mapper; name it /dev/mapper/… or UUID=…"
            ));
        }
        let md = self.md_named(dev);
        if !md.is_empty() {
            return found(md, false);
        }
        if let Some((vg, lv)) = dev.split_once('/') {
            return found(self.lv(vg, lv), false);
        }
        if let Some((disk, number)) = parse_kernel_partition(dev) {
            return found(
                self.volumes
                    .iter()
                    .filter(|v| matches!(&v.kind, VolumeKind::Partition { disk: d, number: n, entry } if self.local_disk(*d, scope) == Some(disk) && *n == number && !entry.is_recovered()))
                    .map(|v| v.id)
                    .collect(),
                true,
            );
        }
        if let Some(disk) = parse_kernel_disk(dev) {
            return found(
                self.volumes
                    .iter()
                    .filter(|v| matches!(&v.kind, VolumeKind::WholeDisk { disk: d } if self.local_disk(*d, scope) == Some(disk)))
                    .map(|v| v.id)
                    .collect(),
                true,
            );
        }
        SpecMatch::NotFound(format!("no volume is {spec}"))
    }

    /// The LV whose device-mapper name is `dm` (`vg--x-lv`).
    fn dm_named(&self, dm: &str) -> Vec<VolumeId> {
        split_dm_name(dm).map_or_else(Vec::new, |(vg, lv)| self.lv(&vg, &lv))
    }

    /// The LV whose device-mapper UUID is `LVM-<VG UUID><LV UUID>` (both
    /// without dashes; a suffix such as `-real` or `-cow` follows for inner devices).
    fn lv_by_dm_uuid(&self, u: &str) -> Vec<VolumeId> {
        let bare = |s: &str| s.replace('-', "");
        let mut out = Vec::new();
        for g in &self.groups {
            for l in &g.lvs {
                if u == format!("{}{}", bare(&g.uuid), bare(&l.uuid)) {
                    out.extend(self.lv(&g.name, &l.name));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The MD arrays that `/dev/<dev>` names in the guest: `md0`,
    /// `md/root` (the name mdadm gives the device, `md/host:root` too),
    /// each among the arrays of its own scope.
    fn md_named(&self, dev: &str) -> Vec<VolumeId> {
        if !dev.starts_with("md") {
            return Vec::new();
        }
        self.volumes
            .iter()
            .filter(|v| {
                let VolumeKind::MdArray { array } = &v.kind else {
                    return false;
                };
                let prefix = array
                    .scope
                    .and_then(|s| self.volumes.get(s.0))
                    .map(|h| format!("{}/", h.name))
                    .unwrap_or_default();
                let local = v.name.strip_prefix(&prefix).unwrap_or(&v.name);
                local == dev
                    || array
                        .name
                        .as_deref()
                        .is_some_and(|n| dev.strip_prefix("md/") == Some(n))
            })
            .map(|v| v.id)
            .collect()
    }

    fn lv(&self, vg_name: &str, lv_name: &str) -> Vec<VolumeId> {
        self.volumes
            .iter()
            .filter(|v| matches!(&v.kind, VolumeKind::LogicalVolume { vg, lv, .. } if vg == vg_name && lv == lv_name))
            .map(|v| v.id)
            .collect()
    }

    /// The volume holding the nested disk that volume `id` is on (a guest
    /// disk in a host LV), or `None` for a volume of the disks given to the scan.
    pub fn holder(&self, id: VolumeId) -> Option<VolumeId> {
        super::nested::scope_of(self, id)
    }

    /// The `PARTUUID` of a partition volume: the GPT unique GUID, or for MBR
    /// `<disk signature>-<number as two hex digits>` as blkid forms it.
    pub fn partuuid(&self, v: &Volume) -> Option<String> {
        let VolumeKind::Partition {
            disk,
            number,
            entry,
        } = &v.kind
        else {
            return None;
        };
        if let Some(u) = &entry.uuid {
            return Some(u.to_ascii_lowercase());
        }
        let table = self.disks.get(disk.0)?.table.as_ref()?;
        let sig = table.id.as_deref()?.trim_start_matches("0x");
        Some(format!("{sig}-{number:02x}"))
    }

    /// Other names of a volume that commands accept (for help and listings).
    pub fn aliases(&self, id: VolumeId) -> Vec<String> {
        let v = &self.volumes[id.0];
        let mut out = Vec::new();
        // A nested volume's spellings are typed after its holder's name
        // (`pve/vm-100-disk-0//dev/pve/root`).
        let scope = super::nested::scope_of(self, id);
        let prefix = scope.map_or_else(String::new, |p| format!("{}/", self.volume(p).name));
        match &v.kind {
            VolumeKind::LogicalVolume { vg, lv, .. } => {
                out.push(format!("{prefix}/dev/{vg}/{lv}"));
                out.push(format!("{prefix}/dev/mapper/{}", dm_name(vg, lv)));
            }
            // A volume found by searching has no kernel name: the kernel
            // sees no partition there.
            VolumeKind::Partition {
                disk,
                number,
                entry,
            } if !entry.is_recovered() => {
                if let Some(local) = self.local_disk(*disk, scope).filter(|l| *l < 26) {
                    let letter = char::from(b'a' + local as u8);
                    out.push(format!("{prefix}/dev/sd{letter}{number}"));
                    out.push(format!("{prefix}/dev/vd{letter}{number}"));
                }
            }
            VolumeKind::MdArray { .. } => {
                out.push(format!(
                    "{prefix}/dev/{}",
                    v.name.strip_prefix(&prefix).unwrap_or(&v.name)
                ));
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_names_double_dashes() {
        assert_eq!(dm_name("vg_ta", "lv_root"), "vg_ta-lv_root");
        assert_eq!(dm_name("my-vg", "lv-1"), "my--vg-lv--1");
        assert_eq!(
            split_dm_name("my--vg-lv--1"),
            Some(("my-vg".into(), "lv-1".into()))
        );
        assert_eq!(
            split_dm_name("vg_ta-lv_root"),
            Some(("vg_ta".into(), "lv_root".into()))
        );
        assert_eq!(split_dm_name("nodash"), None);
    }

    #[test]
    fn kernel_partition_names() {
        assert_eq!(parse_kernel_partition("sda1"), Some((0, 1)));
        assert_eq!(parse_kernel_partition("vdb12"), Some((1, 12)));
        assert_eq!(parse_kernel_partition("xvda2"), Some((0, 2)));
        assert_eq!(parse_kernel_partition("nvme0n1p3"), Some((0, 3)));
        assert_eq!(parse_kernel_partition("sda"), None);
    }
}
