//! A dead Proxmox host's guest configurations, read from its root
//! filesystem: `/etc/pve` is pmxcfs, a FUSE mount that is empty on disk, so
//! the source of truth is the database pmxcfs keeps it in,
//! `/var/lib/pve-cluster/config.db` (SQLite, WAL mode: `config.db-wal`
//! holds what was not checkpointed yet). Its table `tree` has one row per
//! file or directory: `inode` (the row id), `parent`, `version`, `writer`,
//! `mtime`, `type` (4 a directory, 8 a file, as `DT_DIR`/`DT_REG`), `name`,
//! `data`. Top-level entries have parent 0; row 0 is pmxcfs's version entry.
//! Guests are `nodes/<node>/qemu-server/<vmid>.conf` and
//! `nodes/<node>/lxc/<vmid>.conf`; storages `storage.cfg`.
//!
//! A copy of `/etc/pve/qemu-server/*.conf` (and `lxc/`, `storage.cfg`)
//! left in the image is read too, when the database says nothing.
//!
//! Each VM disk (an LV `vm-100-disk-0`, its thin snapshot
//! `snap_vm-100-disk-0_before`) is then labelled with its guest: the volume
//! names in the configurations (`scsi0: local-lvm:vm-100-disk-0,...`, with
//! `storage.cfg` saying which VG `local-lvm` is), else the
//! `vm-<id>-disk-<n>` naming alone.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::collections::HashMap;

use super::config::{self, GuestConfig};
use super::sqlite::{Db, SqlError, Value};
use super::storage::{self, Storage};

/// `DT_REG`, a file in pmxcfs's tree.
const DT_REG: i64 = 8;
/// Deepest path followed up the parents.
const MAX_PATH_DEPTH: usize = 64;

/// VM or container, as the label shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelKind {
    /// A QEMU VM (`qemu-server/<vmid>.conf`).
    Qemu,
    /// An LXC container (`lxc/<vmid>.conf`).
    Lxc,
    /// No configuration found: only the volume's name gave the ID.
    Unknown,
}

/// Which guest a volume belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GuestLabel {
    /// `qemu`, `lxc` or `unknown`.
    pub kind: LabelKind,
    /// The VM ID.
    pub id: u32,
    /// The guest's `name` (VM) or `hostname` (container).
    pub name: Option<String>,
    /// The config line naming this volume (`scsi0`), if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The snapshot's name, for a thin snapshot `snap_<volume>_<name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

impl std::fmt::Display for GuestLabel {
    /// `VM 100 `db01``, `CT 105 `web``, `VM/CT 104`, with ` snapshot `x``.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            LabelKind::Qemu => "VM",
            LabelKind::Lxc => "CT",
            LabelKind::Unknown => "VM/CT",
        };
        write!(f, "{kind} {}", self.id)?;
        if let Some(n) = &self.name {
            write!(f, " `{}`", crate::text::escape_str(n))?;
        }
        if let Some(s) = &self.snapshot {
            write!(f, ", snapshot `{}`", crate::text::escape_str(s))?;
        }
        Ok(())
    }
}

/// One guest configuration found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGuest {
    /// VM or container.
    pub kind: LabelKind,
    /// The VM ID.
    pub vmid: u32,
    /// The cluster node whose directory holds it (empty for `/etc/pve/...`).
    pub node: String,
    /// The parsed configuration.
    pub config: GuestConfig,
}

/// What the host's configuration says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// Guests, by node then VM ID.
    pub guests: Vec<HostGuest>,
    /// `storage.cfg`'s storages.
    pub storages: Vec<Storage>,
    /// Facts worth telling (WAL frames applied, damage).
    pub notes: Vec<String>,
}

/// The guest of a `<vmid>.conf` file name.
fn vmid_of(file: &str) -> Option<u32> {
    let id = file.strip_suffix(".conf")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| id.parse().ok())
        .flatten()
}

impl HostConfig {
    /// Read pmxcfs's database (and its WAL, if any).
    pub fn from_db(main: &[u8], wal: Option<&[u8]>) -> Result<HostConfig, SqlError> {
        let db = Db::open(main, wal)?;
        let rows = db.table_rows(db.table_root("tree")?)?;
        struct Entry<'r> {
            parent: i64,
            kind: i64,
            name: &'r [u8],
            data: Option<&'r [u8]>,
        }
        let mut entries: HashMap<i64, Entry<'_>> = HashMap::new();
        for r in &rows {
            // inode is the INTEGER PRIMARY KEY: stored as NULL, the row id.
            let v = |i: usize| r.values.get(i);
            let (Some(parent), Some(kind), Some(name)) = (
                v(1).and_then(Value::as_int),
                v(5).and_then(Value::as_int),
                v(6).and_then(Value::as_bytes),
            ) else {
                continue;
            };
            if r.rowid == 0 {
                continue;
            }
            entries.insert(
                r.rowid,
                Entry {
                    parent,
                    kind,
                    name,
                    data: v(7).and_then(Value::as_bytes),
                },
            );
        }
        let path_of = |mut inode: i64| -> Option<Vec<&[u8]>> {
            let mut parts = Vec::new();
            while inode != 0 {
                if parts.len() >= MAX_PATH_DEPTH {
                    return None;
                }
                let e = entries.get(&inode)?;
                parts.push(e.name);
                inode = e.parent;
            }
            parts.reverse();
            Some(parts)
        };
        let mut files = Vec::new();
        for (inode, e) in &entries {
            if e.kind != DT_REG {
                continue;
            }
            let Some(parts) = path_of(*inode) else {
                continue;
            };
            let path: Vec<String> = parts
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let text = String::from_utf8_lossy(e.data.unwrap_or_default()).into_owned();
            files.push((path.join("/"), text));
        }
        files.sort();
        let mut out = HostConfig::from_files(&files);
        out.notes.splice(0..0, db.notes.iter().cloned());
        Ok(out)
    }

    /// Read configurations from (path, text) pairs: `nodes/<node>/qemu-server/
    /// <vmid>.conf`, `nodes/<node>/lxc/<vmid>.conf`, `qemu-server/<vmid>.conf`
    /// (the `/etc/pve` view), `storage.cfg`.
    pub fn from_files(files: &[(String, String)]) -> HostConfig {
        let mut out = HostConfig::default();
        for (path, text) in files {
            let parts: Vec<&str> = path.split('/').collect();
            let (node, dir, file) = match parts.as_slice() {
                ["storage.cfg"] => {
                    out.storages = storage::parse(text);
                    continue;
                }
                ["nodes", node, dir, file] => (*node, *dir, *file),
                [dir, file] => ("", *dir, *file),
                _ => continue,
            };
            let kind = match dir {
                "qemu-server" => LabelKind::Qemu,
                "lxc" => LabelKind::Lxc,
                _ => continue,
            };
            let Some(vmid) = vmid_of(file) else { continue };
            out.guests.push(HostGuest {
                kind,
                vmid,
                node: node.to_string(),
                config: config::parse(text),
            });
        }
        out
    }

    /// Whether anything was found.
    pub fn is_empty(&self) -> bool {
        self.guests.is_empty() && self.storages.is_empty()
    }

    /// The guest owning LV `lv` of VG `vg`: a config naming it on an LVM
    /// storage of that VG first, else the `vm-<id>-disk-<n>` naming
    /// (`base-`, `subvol-` too) with the guest of that ID if there is one.
    /// A thin snapshot `snap_<volume>_<name>` is labelled as its volume.
    pub fn label(&self, vg: &str, lv: &str) -> Option<GuestLabel> {
        let (volume, snapshot) = split_snapshot(lv);
        for g in &self.guests {
            for d in &g.config.disks {
                let Some((store, volname)) = d.volume.split_once(':') else {
                    continue;
                };
                if volname != volume {
                    continue;
                }
                let on_vg = self.storages.iter().any(|s| {
                    s.id == store
                        && matches!(s.kind.as_str(), "lvm" | "lvmthin")
                        && s.prop("vgname") == Some(vg)
                });
                // Without storage.cfg, the volume name alone.
                if on_vg || self.storages.is_empty() {
                    return Some(GuestLabel {
                        kind: g.kind,
                        id: g.vmid,
                        name: g.config.name.clone(),
                        key: Some(d.key.clone()),
                        snapshot: snapshot.map(str::to_string),
                    });
                }
            }
        }
        let id = id_from_name(volume)?;
        let g = self.guests.iter().find(|g| g.vmid == id);
        Some(GuestLabel {
            kind: g.map_or(LabelKind::Unknown, |g| g.kind),
            id,
            name: g.and_then(|g| g.config.name.clone()),
            key: None,
            snapshot: snapshot.map(str::to_string),
        })
    }
}

/// `snap_vm-100-disk-0_before` → (`vm-100-disk-0`, `before`); any other
/// name → (itself, none). Proxmox names a thin snapshot `snap_<volname>_<snapname>`.
pub fn split_snapshot(lv: &str) -> (&str, Option<&str>) {
    if let Some(rest) = lv.strip_prefix("snap_") {
        // The volume name ends at `-disk-<n>`; the snapshot name follows.
        if let Some(i) = rest.find("-disk-") {
            let (head, tail) = rest.split_at(i);
            let tail = tail.strip_prefix("-disk-").unwrap_or(tail);
            if let Some((n, snap)) = tail.split_once('_')
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
            {
                let len = head.len().saturating_add(6).saturating_add(n.len());
                if let Some(volume) = rest.get(..len) {
                    return (volume, Some(snap));
                }
            }
        }
    }
    (lv, None)
}

/// The VM ID of `vm-<id>-disk-<n>`, `base-<id>-disk-<n>`, `subvol-<id>-disk-<n>`.
pub fn id_from_name(volume: &str) -> Option<u32> {
    let rest = ["vm-", "base-", "subvol-"]
        .iter()
        .find_map(|p| volume.strip_prefix(p))?;
    let (id, disk) = rest.split_once("-disk-")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(id) || !digits(disk.split('.').next().unwrap_or("")) {
        return None;
    }
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(id_from_name("vm-100-disk-0"), Some(100));
        assert_eq!(id_from_name("subvol-105-disk-1"), Some(105));
        assert_eq!(id_from_name("vm-100-cloudinit"), None);
        assert_eq!(id_from_name("root"), None);
        assert_eq!(
            split_snapshot("snap_vm-100-disk-0_before"),
            ("vm-100-disk-0", Some("before"))
        );
        assert_eq!(
            split_snapshot("snap_vm-100-disk-12_a_b"),
            ("vm-100-disk-12", Some("a_b"))
        );
        assert_eq!(split_snapshot("vm-100-disk-0"), ("vm-100-disk-0", None));
    }

    #[test]
    fn labels_from_files() {
        let h = HostConfig::from_files(&[
            (
                "nodes/pve1/qemu-server/100.conf".into(),
                "name: db01\nscsi0: local-lvm:vm-100-disk-0,size=8G\n".into(),
            ),
            (
                "nodes/pve1/lxc/105.conf".into(),
                "hostname: web\nrootfs: local-lvm:vm-105-disk-0,size=4G\n".into(),
            ),
            (
                "storage.cfg".into(),
                "lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n".into(),
            ),
        ]);
        let l = h.label("pve", "vm-100-disk-0").unwrap();
        assert_eq!(l.to_string(), "VM 100 `db01`");
        assert_eq!(l.key.as_deref(), Some("scsi0"));
        assert_eq!(
            h.label("pve", "vm-105-disk-0").unwrap().to_string(),
            "CT 105 `web`"
        );
        assert_eq!(
            h.label("pve", "snap_vm-100-disk-0_before")
                .unwrap()
                .to_string(),
            "VM 100 `db01`, snapshot `before`"
        );
        // Another VG's LV of the same name: the naming alone, kind from the ID.
        let other = h.label("vg2", "vm-100-disk-0").unwrap();
        assert_eq!(other.key, None);
        assert_eq!(
            h.label("pve", "vm-999-disk-0").unwrap().to_string(),
            "VM/CT 999"
        );
        assert_eq!(h.label("pve", "root"), None);
    }
}
