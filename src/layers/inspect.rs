//! Guest inspection: which filesystem is the guest's root, what OS it runs,
//! and where its fstab mounts each volume.

use std::sync::Arc;

use super::fstab::{self, SpecMatch};
use super::{GuestRole, Layout, VolumeId, VolumeKind};
use crate::error::{Error, Result};
use crate::fs::FsView;

/// Largest guest configuration file read during inspection.
const MAX_CONFIG: usize = 256 * 1024;

/// What inspection found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// Roles found for volumes.
    pub roles: Vec<(VolumeId, GuestRole)>,
    /// Facts worth telling (fstab lines that match no volume...).
    pub notes: Vec<String>,
    /// What each opened filesystem reported: (volume, notes, problems).
    pub filesystems: Vec<(VolumeId, Vec<String>, Vec<crate::problem::Problem>)>,
    /// The subvolumes of each opened filesystem that has them (btrfs).
    pub subvolumes: Vec<(VolumeId, Vec<crate::fs::btrfs::SubvolInfo>)>,
    /// Where a guest mounts a btrfs subvolume: (volume, `subvol=`/`subvolid=`
    /// or the root's own, mountpoint).
    pub subvolume_mounts: Vec<(VolumeId, crate::fs::SubvolSpec, String)>,
}

/// Opens a volume's filesystem.
pub type Opener<'a> = dyn Fn(VolumeId) -> Result<Arc<dyn FsView>> + 'a;

/// Find guest roots (a filesystem with `/etc/fstab` and an OS release file),
/// their OS names, and map their fstab lines to volumes.
pub fn inspect(layout: &Layout, open: &Opener<'_>) -> Inspection {
    let mut out = Inspection::default();
    let candidates: Vec<VolumeId> = layout
        .volumes
        .iter()
        .filter(|v| v.is_filesystem())
        .filter(|v| !matches!(v.kind, VolumeKind::LogicalVolume { hidden: true, .. }))
        .map(|v| v.id)
        .collect();
    for id in candidates {
        let fs = match open(id) {
            Ok(fs) => fs,
            // Not readable by this engine: the tree says so; it is no damage.
            Err(Error::Unsupported(_)) => continue,
            Err(e) => {
                out.filesystems
                    .push((id, Vec::new(), vec![format!("cannot be read: {e}").into()]));
                continue;
            }
        };
        let status = fs.status();
        out.filesystems
            .push((id, status.notes.clone(), status.problems.clone()));
        if let Some(subs) = fs.subvolumes() {
            out.subvolumes.push((id, subs));
        }
        label_pve_guests(layout, id, &*fs, &mut out);
        if fs.subvolumes().is_none()
            && read_file(&*fs, b"/etc/fstab").is_none()
            && super::windows::is_system_volume(&*fs)
        {
            inspect_windows(layout, id, &*fs, &mut out);
            continue;
        }
        // A btrfs guest whose root is a subvolume that is not the default
        // one (the top level is: Fedora's and openSUSE's layouts): the
        // root as its kernel mounts it.
        let whole = Arc::clone(&fs);
        let fs = match read_file(&*fs, b"/etc/fstab") {
            None => crate::guest::root_in_subvolume(&fs).map_or(fs, |(view, _, _)| view),
            Some(_) => fs,
        };
        // The subvolume shown as the root, when it is not the default one.
        let root_subvol = (fs.root() != whole.root())
            .then(|| {
                whole.subvolumes()?.into_iter().find(|s| {
                    matches!(whole.subvolume_root(&crate::fs::SubvolSpec::Id(s.id)),
                        Ok(Some(n)) if n == fs.root())
                })
            })
            .flatten();
        let fstab = read_file(&*fs, b"/etc/fstab");
        let Some(os) = os_name(&*fs) else { continue };
        let Some(fstab) = fstab else { continue };
        let hostname = hostname(&*fs);
        set_role(&mut out.roles, id, |r| {
            r.os = Some(os.clone());
            r.hostname = hostname;
            r.mountpoint.get_or_insert_with(|| "/".to_string());
        });
        if let Some(s) = &root_subvol {
            out.subvolume_mounts
                .push((id, crate::fs::SubvolSpec::Id(s.id), "/".into()));
        }
        for entry in fstab::parse(&fstab) {
            let mountpoint = String::from_utf8_lossy(&entry.mountpoint).into_owned();
            let opts = entry.options();
            let spec = match (&opts.subvolid, &opts.subvol) {
                (Some(n), _) => n.parse().ok().map(crate::fs::SubvolSpec::Id),
                (None, Some(p)) => Some(crate::fs::SubvolSpec::Path(p.as_bytes().to_vec())),
                (None, None) => None,
            };
            if let (Some(spec), SpecMatch::Found { volume, .. }) =
                (spec, layout.resolve_spec_from(&entry.spec, id))
                && !(entry.mountpoint == b"/" && root_subvol.is_some())
            {
                out.subvolume_mounts
                    .push((volume, spec, mountpoint.clone()));
            }
            if entry.mountpoint == b"/" {
                continue;
            }
            match layout.resolve_spec_from(&entry.spec, id) {
                SpecMatch::Found { volume, .. } => {
                    let mp = if entry.fstype == "swap" {
                        "[SWAP]".to_string()
                    } else {
                        mountpoint
                    };
                    set_role(&mut out.roles, volume, |r| {
                        r.mountpoint.get_or_insert(mp);
                    });
                }
                SpecMatch::NotFound(_) if fstab::is_device_spec(&entry.spec) => {
                    out.notes.push(format!(
                        "{}: /etc/fstab mounts {} on {mountpoint}, but no volume matches it",
                        layout.volume(id).name,
                        entry.spec,
                    ))
                }
                SpecMatch::NotFound(_) | SpecMatch::Unresolvable(_) => {}
            }
        }
    }
    out
}

/// A Windows system volume: its OS and computer name from the hives, the
/// drive letters as the other volumes' mountpoints (`D:\\`), and the
/// hives' problems (a damaged hive, a letter naming a partition that is not
/// here) among the volume's.
fn inspect_windows(layout: &Layout, id: VolumeId, fs: &dyn FsView, out: &mut Inspection) {
    let (w, problems) = super::windows::inspect(layout, id, fs);
    if let Some((_, _, p)) = out.filesystems.iter_mut().rev().find(|(v, ..)| *v == id) {
        p.extend(problems);
    }
    for d in &w.drives {
        if let Some(v) = d.volume.filter(|&v| v != id) {
            set_role(&mut out.roles, v, |r| {
                r.mountpoint.get_or_insert(format!("{}:\\", d.letter));
            });
        }
    }
    let letter = w.letter_of(id).unwrap_or('C');
    set_role(&mut out.roles, id, |r| {
        r.os = Some(w.os_name());
        r.hostname = w.computer_name.clone();
        r.mountpoint = Some(format!("{letter}:\\"));
        r.windows = Some(w);
    });
}

/// pmxcfs's database on a Proxmox host's root filesystem.
const PVE_DB: &[u8] = b"/var/lib/pve-cluster/config.db";
/// Its write-ahead log.
const PVE_DB_WAL: &[u8] = b"/var/lib/pve-cluster/config.db-wal";
/// Largest pmxcfs database read (pmxcfs itself keeps far less).
const MAX_PVE_DB: usize = 64 << 20;

/// When filesystem `root` (volume `id`) is a Proxmox host's root, label the
/// LVs of the same disks (`pve/vm-100-disk-0`) with their guests: from
/// pmxcfs's database, else a copy of `/etc/pve`'s configurations.
fn label_pve_guests(layout: &Layout, id: VolumeId, root: &dyn FsView, out: &mut Inspection) {
    use crate::pve::hostdb::HostConfig;
    let who = &layout.volume(id).name;
    let mut host = match crate::fs::read_small(root, PVE_DB, MAX_PVE_DB) {
        Some(main) => {
            let wal = crate::fs::read_small(root, PVE_DB_WAL, MAX_PVE_DB);
            match HostConfig::from_db(&main, wal.as_deref()) {
                Ok(h) => h,
                Err(e) => {
                    out.notes.push(format!(
                        "{who}: /var/lib/pve-cluster/config.db cannot be read: {e}"
                    ));
                    HostConfig::default()
                }
            }
        }
        None => HostConfig::default(),
    };
    if host.guests.is_empty() {
        let copy = etc_pve_files(root);
        if !copy.is_empty() {
            host = HostConfig::from_files(&copy);
        }
    }
    for n in &host.notes {
        out.notes.push(format!("{who}: config.db: {n}"));
    }
    let scope = super::nested::scope_of(layout, id);
    for v in &layout.volumes {
        let VolumeKind::LogicalVolume { vg, lv, .. } = &v.kind else {
            continue;
        };
        if super::nested::scope_of(layout, v.id) != scope {
            continue;
        }
        if let Some(label) = host.label(vg, lv) {
            set_role(&mut out.roles, v.id, |r| {
                r.pve.get_or_insert(label);
            });
        }
    }
}

/// `/etc/pve/qemu-server/*.conf`, `/etc/pve/lxc/*.conf` and
/// `/etc/pve/storage.cfg`, when someone copied them into the root
/// (pmxcfs's own mount leaves the directory empty on disk).
fn etc_pve_files(root: &dyn FsView) -> Vec<(String, String)> {
    const MAX_FILES: usize = 10_000;
    let mut files = Vec::new();
    if let Some(b) = read_file(root, b"/etc/pve/storage.cfg") {
        files.push((
            "storage.cfg".to_string(),
            String::from_utf8_lossy(&b).into_owned(),
        ));
    }
    for dir in ["qemu-server", "lxc"] {
        let path = format!("/etc/pve/{dir}");
        let Ok(r) = crate::fs::path::resolve(root, path.as_bytes(), true) else {
            continue;
        };
        let Ok(entries) = root.read_dir(r.node) else {
            continue;
        };
        for e in entries.iter().take(MAX_FILES) {
            let name = String::from_utf8_lossy(&e.name).into_owned();
            if !name.ends_with(".conf") {
                continue;
            }
            let p = format!("{path}/{name}");
            if let Some(b) = read_file(root, p.as_bytes()) {
                files.push((
                    format!("{dir}/{name}"),
                    String::from_utf8_lossy(&b).into_owned(),
                ));
            }
        }
    }
    files
}

fn set_role(roles: &mut Vec<(VolumeId, GuestRole)>, id: VolumeId, f: impl FnOnce(&mut GuestRole)) {
    if let Some((_, r)) = roles.iter_mut().find(|(v, _)| *v == id) {
        f(r);
    } else {
        let mut r = GuestRole::default();
        f(&mut r);
        roles.push((id, r));
    }
}

impl Layout {
    /// Record what inspection found on the volumes.
    pub fn apply_inspection(&mut self, inspection: &Inspection) {
        for (id, role) in &inspection.roles {
            if let Some(v) = self.volumes.get_mut(id.0) {
                v.guest = role.clone();
            }
        }
        for (id, notes, problems) in &inspection.filesystems {
            if let Some(v) = self.volumes.get_mut(id.0) {
                // Notes of the layers (a raid LV's legs) stay.
                for n in notes {
                    if !v.notes.contains(n) {
                        v.notes.push(n.clone());
                    }
                }
                for p in problems {
                    if !v.problems.contains(p) {
                        v.problems.push(p.clone());
                    }
                }
            }
        }
        for (id, subs) in &inspection.subvolumes {
            self.subvolumes.retain(|(v, _)| v != id);
            self.subvolumes.push((*id, subs.clone()));
        }
        for m in &inspection.subvolume_mounts {
            if !self.subvolume_mounts.contains(m) {
                self.subvolume_mounts.push(m.clone());
            }
        }
        self.notes.extend(inspection.notes.iter().cloned());
    }

    /// The guest root volumes found by inspection.
    pub fn guest_roots(&self) -> Vec<VolumeId> {
        self.volumes
            .iter()
            .filter(|v| v.guest.os.is_some())
            .map(|v| v.id)
            .collect()
    }
}

/// Read a small regular file of the guest, following symlinks inside the guest.
fn read_file(fs: &dyn FsView, p: &[u8]) -> Option<Vec<u8>> {
    crate::fs::read_small(fs, p, MAX_CONFIG)
}

fn first_line(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b);
    let line = s.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.to_string())
}

/// A `KEY=value` from os-release/lsb-release syntax, unquoted.
fn shell_var(b: &[u8], key: &str) -> Option<String> {
    let s = String::from_utf8_lossy(b);
    for line in s.lines() {
        if let Some(v) = line
            .trim()
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
        {
            let v = v.trim().trim_matches('"').trim_matches('\'').trim();
            if !v.is_empty() {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// The guest's host name: `/etc/hostname`, else `HOSTNAME=` in
/// `/etc/sysconfig/network` (Red Hat before systemd). Only a name that
/// looks like one (printable, no spaces, at most 253 bytes).
fn hostname(fs: &dyn FsView) -> Option<String> {
    let name = read_file(fs, b"/etc/hostname")
        .as_deref()
        .and_then(first_line)
        .or_else(|| {
            read_file(fs, b"/etc/sysconfig/network").and_then(|b| shell_var(&b, "HOSTNAME"))
        })?;
    let ok = name.len() <= 253 && name.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(name)
}

/// The guest's OS name from its release files, most specific first.
fn os_name(fs: &dyn FsView) -> Option<String> {
    for p in [
        &b"/etc/redhat-release"[..],
        b"/etc/centos-release",
        b"/etc/SuSE-release",
    ] {
        if let Some(l) = read_file(fs, p).as_deref().and_then(first_line) {
            return Some(l);
        }
    }
    for p in [&b"/etc/os-release"[..], b"/usr/lib/os-release"] {
        if let Some(n) = read_file(fs, p)
            .and_then(|b| shell_var(&b, "PRETTY_NAME").or_else(|| shell_var(&b, "NAME")))
        {
            return Some(n);
        }
    }
    if let Some(n) =
        read_file(fs, b"/etc/lsb-release").and_then(|b| shell_var(&b, "DISTRIB_DESCRIPTION"))
    {
        return Some(n);
    }
    if let Some(v) = read_file(fs, b"/etc/debian_version")
        .as_deref()
        .and_then(first_line)
    {
        return Some(format!("Debian GNU/Linux {v}"));
    }
    if let Some(v) = read_file(fs, b"/etc/alpine-release")
        .as_deref()
        .and_then(first_line)
    {
        return Some(format!("Alpine Linux {v}"));
    }
    if read_file(fs, b"/etc/arch-release").is_some() {
        return Some("Arch Linux".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_files() {
        assert_eq!(
            shell_var(
                b"NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
                "PRETTY_NAME"
            )
            .as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            first_line(b"\nCentOS release 6.4 (Final)\n").as_deref(),
            Some("CentOS release 6.4 (Final)")
        );
    }
}
