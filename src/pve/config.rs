//! Guest configuration files: `qemu-server/<vmid>.conf` and `lxc/<vmid>.conf`.
//!
//! A file is `key: value` lines; `#` lines are the description. The current
//! configuration ends at the first `[section]` line: `[name]` sections are
//! snapshots, `[PENDING]` holds pending changes, `[special:...]` other data.

/// A disk (or mount point) line of a guest configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiskLine {
    /// `scsi0`, `virtio1`, `efidisk0`, `rootfs`, `mp0`...
    pub key: String,
    /// The volume: `local-lvm:vm-108-disk-0`, or an absolute host path.
    pub volume: String,
    /// The `size=` option, as written (`32G`).
    pub size: Option<String>,
    /// The `mp=` option of a container mount point.
    pub mountpoint: Option<String>,
}

/// What the current section of a configuration says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestConfig {
    /// `name` (VMs) or `hostname` (containers).
    pub name: Option<String>,
    /// Disk lines, in file order (cdroms, TPM state and unused volumes left out).
    pub disks: Vec<DiskLine>,
    /// Snapshot section names.
    pub snapshots: Vec<String>,
    /// Boot order: disk keys from `boot: order=...` or `bootdisk`.
    pub boot_order: Vec<String>,
    /// Whether this is a template.
    pub template: bool,
    /// The `lock:` value (backup, snapshot, migrate...).
    pub lock: Option<String>,
}

/// Keys that name disks: `ide0`-`ide3`, `sata0`-`sata5`, `scsi0`-`scsi30`,
/// `virtio0`-`virtio15`, `efidisk0` (VMs); `rootfs`, `mp0`... (containers).
pub fn is_disk_key(key: &str) -> bool {
    let numbered = |prefix: &str, max: u32| {
        key.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n <= max)
    };
    key == "efidisk0"
        || key == "rootfs"
        || numbered("ide", 3)
        || numbered("sata", 5)
        || numbered("scsi", 30)
        || numbered("virtio", 15)
        || numbered("mp", 255)
}

/// Parse a configuration file's text.
pub fn parse(text: &str) -> GuestConfig {
    let mut cfg = GuestConfig::default();
    let mut in_current = true;
    let mut bootdisk = None;
    // Bounded by the text's length (the caller caps the file size).
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_current = false;
            if section != "PENDING" && !section.starts_with("special:") {
                cfg.snapshots.push(section.to_string());
            }
            continue;
        }
        if !in_current || line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "name" | "hostname" => cfg.name = Some(value.to_string()),
            "template" => cfg.template = value == "1",
            "lock" => cfg.lock = Some(value.to_string()),
            "bootdisk" => bootdisk = Some(value.to_string()),
            "boot" => {
                // New form: `order=scsi0;ide2;net0`; legacy: `cdn` (with `bootdisk`).
                for opt in value.split(',') {
                    if let Some(order) = opt.strip_prefix("order=") {
                        cfg.boot_order = order.split(';').map(str::to_string).collect();
                    }
                }
            }
            k if is_disk_key(k) => {
                if let Some(d) = parse_disk(k, value) {
                    cfg.disks.push(d);
                }
            }
            _ => {}
        }
    }
    if cfg.boot_order.is_empty()
        && let Some(b) = bootdisk
    {
        cfg.boot_order.push(b);
    }
    cfg
}

/// Parse a disk value (`local-lvm:vm-108-disk-0,size=32G` or
/// `file=...,media=cdrom`); `None` for cdroms and empty drives.
fn parse_disk(key: &str, value: &str) -> Option<DiskLine> {
    let mut volume = None;
    let mut size = None;
    let mut mountpoint = None;
    for (i, opt) in value.split(',').enumerate() {
        let opt = opt.trim();
        match opt.split_once('=') {
            Some(("file" | "volume", v)) => volume = Some(v.to_string()),
            Some(("media", "cdrom")) => return None,
            Some(("size", v)) => size = Some(v.to_string()),
            Some(("mp", v)) => mountpoint = Some(v.to_string()),
            Some(_) => {}
            None if i == 0 => volume = Some(opt.to_string()),
            None => {}
        }
    }
    let volume = volume?;
    if volume.is_empty() || volume == "none" || volume == "cdrom" {
        return None;
    }
    Some(DiskLine {
        key: key.to_string(),
        volume,
        size,
        mountpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_config() {
        let cfg = parse(
            "#CentOS 6 database server\n\
             boot: order=scsi0;ide2;net0\n\
             cores: 2\n\
             efidisk0: local-lvm:vm-108-disk-2,efitype=4m,size=4M\n\
             ide2: local:iso/CentOS-6.iso,media=cdrom,size=4G\n\
             ide0: none,media=cdrom\n\
             name: centos6-db\n\
             scsi0: local:108/vm-108-disk-1.qcow2,size=32G\n\
             virtio1: file=local-zfs:vm-108-disk-3,size=8G,iothread=1\n\
             sata0: /dev/disk/by-id/ata-FOO,size=100G\n\
             tpmstate0: local-lvm:vm-108-disk-4,size=4M,version=v2.0\n\
             unused0: local-lvm:vm-108-disk-9\n\
             parent: before\n\
             \n\
             [before]\n\
             scsi0: local:108/vm-108-disk-1.qcow2,size=32G\n\
             name: old\n\
             [PENDING]\n\
             memory: 2048\n",
        );
        assert_eq!(cfg.name.as_deref(), Some("centos6-db"));
        let keys: Vec<&str> = cfg.disks.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["efidisk0", "scsi0", "virtio1", "sata0"]);
        assert_eq!(cfg.disks[1].size.as_deref(), Some("32G"));
        assert_eq!(cfg.disks[2].volume, "local-zfs:vm-108-disk-3");
        assert_eq!(cfg.disks[3].volume, "/dev/disk/by-id/ata-FOO");
        assert_eq!(cfg.snapshots, ["before"]);
        assert_eq!(cfg.boot_order, ["scsi0", "ide2", "net0"]);
    }

    #[test]
    fn container_config() {
        let cfg = parse(
            "arch: amd64\n\
             hostname: web\n\
             rootfs: local-zfs:subvol-200-disk-0,size=8G\n\
             mp0: local-lvm:vm-200-disk-1,mp=/srv,size=16G\n\
             mp1: /mnt/host,mp=/host\n\
             lock: backup\n",
        );
        assert_eq!(cfg.name.as_deref(), Some("web"));
        assert_eq!(cfg.disks.len(), 3);
        assert_eq!(cfg.disks[1].mountpoint.as_deref(), Some("/srv"));
        assert_eq!(cfg.lock.as_deref(), Some("backup"));
    }

    #[test]
    fn disk_keys() {
        for k in [
            "ide3", "sata5", "scsi30", "virtio15", "efidisk0", "rootfs", "mp10",
        ] {
            assert!(is_disk_key(k), "{k}");
        }
        for k in [
            "ide4",
            "scsi",
            "tpmstate0",
            "unused0",
            "net0",
            "virtio16",
            "mpx",
        ] {
            assert!(!is_disk_key(k), "{k}");
        }
    }
}
