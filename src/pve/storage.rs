//! `storage.cfg`: where a Proxmox volume ID (`storage:volname`) lives on the host.
//!
//! The file is a list of sections: a `type: id` line, then indented
//! `key value` property lines.

use std::path::PathBuf;

/// One storage definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// `dir`, `lvmthin`, `zfspool`...
    pub kind: String,
    /// The storage ID (`local`, `local-lvm`).
    pub id: String,
    /// Its properties, in file order.
    pub props: Vec<(String, String)>,
}

impl Storage {
    /// A property's value.
    pub fn prop(&self, key: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse `storage.cfg` text.
pub fn parse(text: &str) -> Vec<Storage> {
    let mut out: Vec<Storage> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(s) = out.last_mut() {
                let l = line.trim();
                let (k, v) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
                s.props.push((k.to_string(), v.trim().to_string()));
            }
            continue;
        }
        if let Some((kind, id)) = line.split_once(':') {
            out.push(Storage {
                kind: kind.trim().to_string(),
                id: id.trim().to_string(),
                props: Vec::new(),
            });
        }
    }
    out
}

/// Storage types whose volumes are files under `<path>/images/<vmid>/`.
const FILE_STORAGES: &[&str] = &["dir", "nfs", "cifs", "cephfs"];

/// The host path of volume `volume` (`storage:volname`) from the storage
/// definitions, or why it cannot be had.
pub fn resolve(storages: &[Storage], volume: &str) -> Result<PathBuf, String> {
    let Some((id, volname)) = volume.split_once(':') else {
        return Err(format!("\"{volume}\" is not a storage:volume ID"));
    };
    let Some(s) = storages.iter().find(|s| s.id == id) else {
        return Err(format!("storage \"{id}\" is not defined in storage.cfg"));
    };
    let clean = |part: &str| !part.is_empty() && part != "." && part != ".." && !part.contains('/');
    match s.kind.as_str() {
        k if FILE_STORAGES.contains(&k) => {
            let base = match s.prop("path") {
                Some(p) => PathBuf::from(p),
                None if k != "dir" => PathBuf::from("/mnt/pve").join(id),
                None => return Err(format!("dir storage \"{id}\" has no path")),
            };
            // `108/vm-108-disk-0.qcow2`, or for a linked clone
            // `100/base-100-disk-0.qcow2/108/vm-108-disk-0.qcow2`.
            let parts: Vec<&str> = volname.split('/').collect();
            let (vmid, file) = match parts.as_slice() {
                [vmid, file] | [_, _, vmid, file] => (*vmid, *file),
                _ => {
                    return Err(format!(
                        "unexpected volume name \"{volname}\" on {k} storage \"{id}\""
                    ));
                }
            };
            if !clean(vmid) || !clean(file) || !vmid.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "unexpected volume name \"{volname}\" on {k} storage \"{id}\""
                ));
            }
            if file.starts_with("subvol-") {
                return Err(format!(
                    "{file} is a container directory (subvol) on {k} storage \"{id}\", not a disk image: \
                     browse {} on the host",
                    base.join("images").join(vmid).join(file).display()
                ));
            }
            Ok(base.join("images").join(vmid).join(file))
        }
        "lvm" | "lvmthin" => {
            let vg = s
                .prop("vgname")
                .ok_or_else(|| format!("{} storage \"{id}\" has no vgname", s.kind))?;
            if !clean(volname) || !clean(vg) {
                return Err(format!(
                    "unexpected volume name \"{volname}\" on storage \"{id}\""
                ));
            }
            Ok(PathBuf::from("/dev").join(vg).join(volname))
        }
        "zfspool" => {
            let pool = s
                .prop("pool")
                .ok_or_else(|| format!("zfspool storage \"{id}\" has no pool"))?;
            if !clean(volname) || pool.split('/').any(|p| !clean(p)) {
                return Err(format!(
                    "unexpected volume name \"{volname}\" on storage \"{id}\""
                ));
            }
            if volname.starts_with("subvol-") || volname.starts_with("basevol-") {
                return Err(format!(
                    "{volname} is a ZFS dataset (a container's files), not a disk: \
                     browse it where it is mounted on the host (usually /{pool}/{volname})"
                ));
            }
            Ok(PathBuf::from("/dev/zvol").join(pool).join(volname))
        }
        other => Err(format!(
            "storage \"{id}\" is of type {other}, which vmrescue cannot resolve without `pvesm` \
             (supported from storage.cfg: dir, nfs, cifs, cephfs, lvm, lvmthin, zfspool)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "dir: local\n\
        \tpath /var/lib/vz\n\
        \tcontent iso,vztmpl,backup,images\n\
        \n\
        lvmthin: local-lvm\n\
        \tthinpool data\n\
        \tvgname pve\n\
        \tcontent rootdir,images\n\
        \n\
        zfspool: local-zfs\n\
        \tpool rpool/data\n\
        \tsparse\n\
        \tcontent images,rootdir\n\
        \n\
        nfs: nas\n\
        \tserver 10.0.0.5\n\
        \texport /export/vm\n\
        \n\
        rbd: ceph\n\
        \tpool vms\n";

    #[test]
    fn resolves_each_kind() {
        let s = parse(CFG);
        assert_eq!(s.len(), 5);
        assert_eq!(s[2].prop("sparse"), Some(""));
        assert_eq!(
            resolve(&s, "local:108/vm-108-disk-1.qcow2").unwrap(),
            PathBuf::from("/var/lib/vz/images/108/vm-108-disk-1.qcow2")
        );
        assert_eq!(
            resolve(
                &s,
                "local:100/base-100-disk-0.qcow2/108/vm-108-disk-0.qcow2"
            )
            .unwrap(),
            PathBuf::from("/var/lib/vz/images/108/vm-108-disk-0.qcow2")
        );
        assert_eq!(
            resolve(&s, "local-lvm:vm-108-disk-0").unwrap(),
            PathBuf::from("/dev/pve/vm-108-disk-0")
        );
        assert_eq!(
            resolve(&s, "local-zfs:vm-108-disk-3").unwrap(),
            PathBuf::from("/dev/zvol/rpool/data/vm-108-disk-3")
        );
        assert_eq!(
            resolve(&s, "nas:108/vm-108-disk-0.raw").unwrap(),
            PathBuf::from("/mnt/pve/nas/images/108/vm-108-disk-0.raw")
        );
        assert!(
            resolve(&s, "ceph:vm-108-disk-0")
                .unwrap_err()
                .contains("type rbd")
        );
        assert!(
            resolve(&s, "nowhere:x")
                .unwrap_err()
                .contains("not defined")
        );
        assert!(
            resolve(&s, "local-zfs:subvol-200-disk-0")
                .unwrap_err()
                .contains("ZFS dataset")
        );
        // Names that would climb out of the storage are refused.
        assert!(resolve(&s, "local:108/../../etc/shadow").is_err());
        assert!(resolve(&s, "local:../x").is_err());
        assert!(resolve(&s, "local-lvm:../../etc/shadow").is_err());
    }
}
