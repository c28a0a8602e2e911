//! The guest's `/etc/fstab`, read as util-linux's libmount reads it.
//!
//! One line per filesystem: `spec file vfstype options freq passno`,
//! separated by spaces or tabs; `#` at the start of a line (after blanks)
//! makes it a comment; blank lines are skipped; a line needs the first two
//! fields, the others default (`auto`, `defaults`, 0, 0). Octal escapes
//! (`\040` space, `\011` tab, `\134` backslash) are decoded in the first
//! four fields. Which volume a spec names is [`super::Layout::resolve_spec`];
//! the guest's mount table built from it is `crate::guest::Namespace`.

use crate::text::unescape_octal;

/// Most lines read from one fstab.
const MAX_LINES: usize = 10_000;

/// One line of an fstab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabEntry {
    /// What is mounted (`UUID=…`, `/dev/mapper/vg-lv`, `tmpfs`), escapes decoded.
    pub spec: String,
    /// Where (`fs_file`), escapes decoded; bytes, as a guest path.
    pub mountpoint: Vec<u8>,
    /// Filesystem type (`fs_vfstype`); `auto` when the field is missing.
    pub fstype: String,
    /// The options field verbatim (escapes decoded); `defaults` when missing.
    pub options: String,
    /// `fs_freq` (dump); 0 when missing or not a number.
    pub freq: u32,
    /// `fs_passno` (fsck order); 0 when missing or not a number.
    pub passno: u32,
    /// The line number in the file, from 1.
    pub line: usize,
}

/// The options of an entry that change what is mounted, parsed; the rest
/// (`x-systemd.*`, `defaults`, `errors=…`) are kept verbatim in `other`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `noauto`: `mount -a` (and boot) skips it.
    pub noauto: bool,
    /// `nofail`: a missing device is no error at boot.
    pub nofail: bool,
    /// `bind` or `rbind`: the spec is a directory of the guest.
    pub bind: bool,
    /// `rbind`: with the mounts below the source.
    pub rbind: bool,
    /// `ro`.
    pub ro: bool,
    /// `subvol=` (btrfs).
    pub subvol: Option<String>,
    /// `subvolid=` (btrfs).
    pub subvolid: Option<String>,
    /// `mode=` (tmpfs and the like), octal.
    pub mode: Option<u32>,
    /// Every other option, verbatim, in order.
    pub other: Vec<String>,
}

impl MountOptions {
    /// Parse a comma-separated options field. Later options win over
    /// earlier ones (`ro,rw` is read-write), as mount does.
    pub fn parse(field: &str) -> MountOptions {
        let mut o = MountOptions::default();
        for opt in field.split(',').filter(|s| !s.is_empty()) {
            match opt {
                "noauto" => o.noauto = true,
                "auto" => o.noauto = false,
                "nofail" => o.nofail = true,
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.rbind = true;
                }
                "ro" => o.ro = true,
                "rw" => o.ro = false,
                _ => {
                    if let Some(v) = opt.strip_prefix("subvol=") {
                        o.subvol = Some(v.to_string());
                    } else if let Some(v) = opt.strip_prefix("subvolid=") {
                        o.subvolid = Some(v.to_string());
                    } else if let Some(m) = opt
                        .strip_prefix("mode=")
                        .and_then(|v| u32::from_str_radix(v, 8).ok())
                    {
                        o.mode = Some(m & 0o7777);
                    } else {
                        o.other.push(opt.to_string());
                    }
                }
            }
        }
        o
    }
}

impl FstabEntry {
    /// Its options, parsed.
    pub fn options(&self) -> MountOptions {
        MountOptions::parse(&self.options)
    }
}

/// Largest `/etc/fstab` read.
const MAX_FSTAB: usize = 256 * 1024;

/// The entries of the guest's `/etc/fstab` (symlinks followed inside the
/// guest); none when it is missing or unreadable.
pub fn read(fs: &dyn crate::fs::FsView) -> Vec<FstabEntry> {
    crate::fs::read_small(fs, b"/etc/fstab", MAX_FSTAB).map_or_else(Vec::new, |t| parse(&t))
}

/// Parse fstab text (at most 10,000 lines).
pub fn parse(text: &[u8]) -> Vec<FstabEntry> {
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').take(MAX_LINES).enumerate() {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split([' ', '\t']).filter(|s| !s.is_empty());
        let (Some(spec), Some(file)) = (f.next(), f.next()) else {
            continue;
        };
        let text = |s: &str| String::from_utf8_lossy(&unescape_octal(s)).into_owned();
        let number = |s: Option<&str>| s.and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut spec = text(spec);
        // libmount drops the quotes of a tag: UUID="abc".
        if let Some((tag, value)) = spec.split_once('=')
            && ["UUID", "LABEL", "PARTUUID", "PARTLABEL"].contains(&tag)
            && value.len() >= 2
            && value.starts_with('"')
            && value.ends_with('"')
        {
            spec = format!("{tag}={}", &value[1..value.len() - 1]);
        }
        out.push(FstabEntry {
            spec,
            mountpoint: unescape_octal(file),
            fstype: f.next().map_or_else(|| "auto".to_string(), text),
            options: f.next().map_or_else(|| "defaults".to_string(), text),
            freq: number(f.next()),
            passno: number(f.next()),
            line: i + 1,
        });
    }
    out
}

/// Whether `spec` names a block device (a path in `/dev` or a tag), not a
/// virtual filesystem (`tmpfs`, `proc`) or a network source.
pub fn is_device_spec(spec: &str) -> bool {
    spec.starts_with("/dev/")
        || ["UUID=", "LABEL=", "PARTUUID=", "PARTLABEL="]
            .iter()
            .any(|p| spec.starts_with(p))
}

/// Filesystem types with no device: the kernel makes them up (`tmpfs`,
/// `proc`...). The guest mounts them; an image holds nothing of them.
pub fn is_virtual_fstype(fstype: &str) -> bool {
    matches!(
        fstype,
        "tmpfs"
            | "ramfs"
            | "proc"
            | "sysfs"
            | "devpts"
            | "devtmpfs"
            | "securityfs"
            | "cgroup"
            | "cgroup2"
            | "debugfs"
            | "tracefs"
            | "configfs"
            | "hugetlbfs"
            | "mqueue"
            | "pstore"
            | "efivarfs"
            | "binfmt_misc"
            | "fusectl"
            | "autofs"
            | "rpc_pipefs"
            | "nfsd"
            | "bpf"
            | "selinuxfs"
            | "usbfs"
    )
}

/// Filesystem types whose source is another machine.
pub fn is_network_fstype(fstype: &str) -> bool {
    matches!(
        fstype,
        "nfs"
            | "nfs4"
            | "cifs"
            | "smbfs"
            | "smb3"
            | "9p"
            | "virtiofs"
            | "glusterfs"
            | "ceph"
            | "sshfs"
            | "davfs"
            | "ncpfs"
            | "afs"
    ) || fstype.starts_with("fuse")
}

/// Which volume an fstab spec names ([`super::Layout::resolve_spec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecMatch {
    /// This volume. `guessed` when the spec is a kernel name (`/dev/sda1`):
    /// the guest's kernel may have named its disks in another order.
    Found {
        /// The volume.
        volume: super::VolumeId,
        /// Found by disk order and partition number, not by an identity.
        guessed: bool,
    },
    /// A name an image can tell, but no volume (or more than one) has it: why.
    NotFound(String),
    /// A name only the running guest knows (`/dev/dm-3`, a disk's serial
    /// number in `/dev/disk/by-id`): why it cannot be resolved here.
    Unresolvable(String),
}

/// Decode udev's `\xHH` escapes in a `/dev/disk/by-*` link name
/// (`by-label/my\x20disk` is the label `my disk`).
pub fn udev_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && let Some(v) = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_comments_escapes_defaults() {
        let t = b"# comment\n  # indented comment\n\n\
UUID=abc /boot ext4 defaults 1 2\n\
/dev/mapper/vg_ta-lv_root\t/\text4 defaults\t1 1\n\
/dev/disk/by-uuid/x /my\\040dir xfs defaults 0 0\n\
/dev/mapper/vg_ta-lv_swap swap swap defaults 0 0\n\
tmpfs /dev/shm tmpfs mode=1777,nosuid 0 0\n\
LABEL=\"data\" /a\\011b\\134c\n\
lonely\n";
        let e = parse(t);
        assert_eq!(e.len(), 6);
        assert_eq!(e[0].spec, "UUID=abc");
        assert_eq!(e[0].mountpoint, b"/boot");
        assert_eq!((e[0].freq, e[0].passno, e[0].line), (1, 2, 4));
        assert_eq!(e[1].mountpoint, b"/");
        assert_eq!(e[2].spec, "/dev/disk/by-uuid/x");
        assert_eq!(e[2].mountpoint, b"/my dir");
        assert_eq!(e[3].fstype, "swap");
        assert!(!is_device_spec(&e[4].spec));
        assert_eq!(e[4].options().mode, Some(0o1777));
        assert_eq!(e[4].options().other, vec!["nosuid".to_string()]);
        assert_eq!(e[5].spec, "LABEL=data");
        assert_eq!(e[5].mountpoint, b"/a\tb\\c");
        assert_eq!(e[5].fstype, "auto");
        assert_eq!(e[5].options, "defaults");
        assert_eq!((e[5].freq, e[5].passno), (0, 0));
    }

    #[test]
    fn options_parsed_and_kept() {
        let o = MountOptions::parse(
            "defaults,noauto,nofail,ro,subvol=@home,subvolid=257,x-systemd.automount,x-systemd.device-timeout=1ms",
        );
        assert!(o.noauto && o.nofail && o.ro && !o.bind);
        assert_eq!(o.subvol.as_deref(), Some("@home"));
        assert_eq!(o.subvolid.as_deref(), Some("257"));
        assert_eq!(
            o.other,
            vec![
                "defaults".to_string(),
                "x-systemd.automount".into(),
                "x-systemd.device-timeout=1ms".into()
            ]
        );
        let o = MountOptions::parse("rbind,ro,rw,noauto,auto");
        assert!(o.bind && o.rbind && !o.ro && !o.noauto);
    }
}
