//! `storage.cfg`: where a Proxmox volume ID (`storage:volname`) lives on the host.
//!
//! The file is a list of sections: a `type: id` line, then indented
//! `key value` property lines.

use std::path::{Path, PathBuf};

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
/// definitions of the configuration tree `etc` (`/etc/pve`, or a copy of
/// it: Ceph keyrings are taken from there), or why it cannot be had.
pub fn resolve(etc: &Path, storages: &[Storage], volume: &str) -> Result<PathBuf, String> {
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
        "rbd" => Ok(PathBuf::from(rbd_spec(etc, s, volname)?)),
        other => Err(format!(
            "storage \"{id}\" is of type {other}, which vmrescue cannot resolve without `pvesm` \
             (supported from storage.cfg: dir, nfs, cifs, cephfs, lvm, lvmthin, zfspool, rbd)"
        )),
    }
}

/// The `rbd:` image name (QEMU's option syntax, read by
/// [`crate::image::rbd`]) of `volname` on RBD storage `s`: its pool and
/// namespace, its user (default `admin`), and either the external
/// cluster's monitors (`monhost`) with the storage's own keyring
/// (`/etc/pve/priv/ceph/<storage>.keyring`), or, hyper-converged, the
/// node's `/etc/pve/ceph.conf` and `/etc/pve/priv/ceph.client.admin.keyring`.
fn rbd_spec(etc: &Path, s: &Storage, volname: &str) -> Result<String, String> {
    let etc = etc.display();
    let id = &s.id;
    // A linked clone's volume is `base-100-disk-0/vm-108-disk-0`: the image
    // is the last part.
    let image = volname.rsplit('/').next().unwrap_or(volname);
    let pool = s.prop("pool").unwrap_or("rbd");
    let ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && !p.contains(['/', ':', '@', '\\'])
            && !p.chars().any(char::is_control)
    };
    if !ok(image) || !ok(pool) {
        return Err(format!(
            "unexpected volume name \"{volname}\" on rbd storage \"{id}\""
        ));
    }
    let mut out = format!("rbd:{pool}/");
    if let Some(ns) = s.prop("namespace").filter(|n| !n.is_empty()) {
        if !ok(ns) {
            return Err(format!("rbd storage \"{id}\" has an unexpected namespace"));
        }
        out.push_str(ns);
        out.push('/');
    }
    out.push_str(image);
    let user = s.prop("username").unwrap_or("admin");
    if !ok(user) {
        return Err(format!("rbd storage \"{id}\" has an unexpected username"));
    }
    let escape = |v: &str| v.replace('\\', "\\\\").replace(':', "\\:");
    match s.prop("monhost").filter(|m| !m.trim().is_empty()) {
        Some(mons) => {
            let list: Vec<&str> = mons
                .split([' ', ',', ';'])
                .filter(|m| !m.is_empty())
                .collect();
            out.push_str(&format!(
                ":mon_host={}:id={user}:keyring={}",
                escape(&list.join(",")),
                escape(&format!("{etc}/priv/ceph/{id}.keyring"))
            ));
        }
        None => out.push_str(&format!(
            ":conf={}/ceph.conf:id={user}:keyring={}/priv/ceph.client.{user}.keyring",
            escape(&etc.to_string()),
            escape(&etc.to_string())
        )),
    }
    Ok(out)
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
        \tpool vms\n\
        \n\
        rbd: ext\n\
        \tpool rbd-pool\n\
        \tnamespace tenant1\n\
        \tmonhost 10.0.0.1 10.0.0.2:6789;[fd00::3]\n\
        \tusername pve\n\
        \tcontent images\n\
        \tkrbd 0\n";

    #[test]
    fn resolves_each_kind() {
        let s = parse(CFG);
        assert_eq!(s.len(), 6);
        assert_eq!(s[2].prop("sparse"), Some(""));
        assert_eq!(
            resolve(Path::new("/etc/pve"), &s, "local:108/vm-108-disk-1.qcow2").unwrap(),
            PathBuf::from("/var/lib/vz/images/108/vm-108-disk-1.qcow2")
        );
        assert_eq!(
            resolve(
                Path::new("/etc/pve"),
                &s,
                "local:100/base-100-disk-0.qcow2/108/vm-108-disk-0.qcow2"
            )
            .unwrap(),
            PathBuf::from("/var/lib/vz/images/108/vm-108-disk-0.qcow2")
        );
        assert_eq!(
            resolve(Path::new("/etc/pve"), &s, "local-lvm:vm-108-disk-0").unwrap(),
            PathBuf::from("/dev/pve/vm-108-disk-0")
        );
        assert_eq!(
            resolve(Path::new("/etc/pve"), &s, "local-zfs:vm-108-disk-3").unwrap(),
            PathBuf::from("/dev/zvol/rpool/data/vm-108-disk-3")
        );
        assert_eq!(
            resolve(Path::new("/etc/pve"), &s, "nas:108/vm-108-disk-0.raw").unwrap(),
            PathBuf::from("/mnt/pve/nas/images/108/vm-108-disk-0.raw")
        );
        assert_eq!(
            resolve(Path::new("/etc/pve"), &s, "ceph:vm-108-disk-0").unwrap(),
            PathBuf::from(
                "rbd:vms/vm-108-disk-0:conf=/etc/pve/ceph.conf:id=admin:\
                 keyring=/etc/pve/priv/ceph.client.admin.keyring"
            )
        );
        assert!(
            resolve(Path::new("/etc/pve"), &s, "nowhere:x")
                .unwrap_err()
                .contains("not defined")
        );
        assert!(
            resolve(Path::new("/etc/pve"), &s, "local-zfs:subvol-200-disk-0")
                .unwrap_err()
                .contains("ZFS dataset")
        );
        // External cluster: monitors and the storage's own keyring, the
        // image of a linked clone.
        let spec = resolve(
            Path::new("/etc/pve"),
            &s,
            "ext:base-100-disk-0/vm-108-disk-1",
        )
        .unwrap();
        assert_eq!(
            spec,
            PathBuf::from(
                "rbd:rbd-pool/tenant1/vm-108-disk-1:mon_host=10.0.0.1,10.0.0.2\\:6789,[fd00\\:\\:3]:\
                 id=pve:keyring=/etc/pve/priv/ceph/ext.keyring"
            )
        );
        // What the RBD reader makes of it.
        let parsed = crate::image::rbd::parse(spec.to_str().unwrap()).unwrap();
        assert_eq!(parsed.name(), "rbd-pool/tenant1/vm-108-disk-1");
        assert_eq!(
            parsed.options,
            vec![
                (
                    "mon_host".to_string(),
                    "10.0.0.1,10.0.0.2:6789,[fd00::3]".to_string()
                ),
                ("id".to_string(), "pve".to_string()),
                (
                    "keyring".to_string(),
                    "/etc/pve/priv/ceph/ext.keyring".to_string()
                ),
            ]
        );
        assert!(resolve(Path::new("/etc/pve"), &s, "ceph:vm-1@x").is_err());
        assert!(resolve(Path::new("/etc/pve"), &s, "ceph:vm-1:id=evil").is_err());
        // Names that would climb out of the storage are refused.
        assert!(resolve(Path::new("/etc/pve"), &s, "local:108/../../etc/shadow").is_err());
        assert!(resolve(Path::new("/etc/pve"), &s, "local:../x").is_err());
        assert!(resolve(Path::new("/etc/pve"), &s, "local-lvm:../../etc/shadow").is_err());
    }
}
