//! What a volume holds, recognised by magic numbers (as `blkid` does).

pub(super) use super::labels::uuid;
use crate::io::{ReadAt, be, le};

/// The kinds of content vmrescue recognises, with `blkid`'s names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ContentKind {
    /// ext2 (no journal, no ext3/4 features).
    Ext2,
    /// ext3 (journal, no ext4 features).
    Ext3,
    /// ext4.
    Ext4,
    /// An external ext3/4 journal device.
    Jbd,
    /// XFS.
    Xfs,
    /// btrfs.
    Btrfs,
    /// FAT12/16/32.
    Vfat,
    /// exFAT.
    Exfat,
    /// NTFS.
    Ntfs,
    /// Linux swap (or a hibernation image in it).
    Swap,
    /// An LVM2 physical volume.
    LvmPv,
    /// LUKS encrypted volume.
    Luks,
    /// ISO 9660 (CD/DVD image).
    Iso9660,
    /// squashfs.
    Squashfs,
    /// A Linux MD RAID member.
    MdRaid,
    /// A qcow2 image stored inside the volume.
    Qcow2,
    /// A VMDK sparse or stream-optimized image stored inside the volume.
    Vmdk,
    /// A dynamic or differencing VHD image stored inside the volume.
    Vhd,
    /// A VHDX image stored inside the volume.
    Vhdx,
    /// A VDI image stored inside the volume.
    Vdi,
    /// A partition table inside a volume (a disk stored in an LV, say).
    PartitionTable,
    /// Nothing but zeros at the places where signatures live.
    Zeros,
    /// Something vmrescue does not recognise.
    Unknown,
    /// The volume could not be read.
    Unreadable,
}

impl ContentKind {
    /// The name `blkid` gives (`ext4`, `LVM2_member`, `crypto_LUKS`...), or ours
    /// for kinds blkid does not name.
    pub fn name(self) -> &'static str {
        match self {
            ContentKind::Ext2 => "ext2",
            ContentKind::Ext3 => "ext3",
            ContentKind::Ext4 => "ext4",
            ContentKind::Jbd => "jbd",
            ContentKind::Xfs => "xfs",
            ContentKind::Btrfs => "btrfs",
            ContentKind::Vfat => "vfat",
            ContentKind::Exfat => "exfat",
            ContentKind::Ntfs => "ntfs",
            ContentKind::Swap => "swap",
            ContentKind::LvmPv => "LVM2_member",
            ContentKind::Luks => "crypto_LUKS",
            ContentKind::Iso9660 => "iso9660",
            ContentKind::Squashfs => "squashfs",
            ContentKind::MdRaid => "linux_raid_member",
            ContentKind::Qcow2 => "qcow2",
            ContentKind::Vmdk => "vmdk",
            ContentKind::Vhd => "vhd",
            ContentKind::Vhdx => "vhdx",
            ContentKind::Vdi => "vdi",
            ContentKind::PartitionTable => "partition table",
            ContentKind::Zeros => "empty",
            ContentKind::Unknown => "unknown",
            ContentKind::Unreadable => "unreadable",
        }
    }

    /// Whether this is a filesystem a guest mounts (so it can be browsed).
    pub fn is_filesystem(self) -> bool {
        matches!(
            self,
            ContentKind::Ext2
                | ContentKind::Ext3
                | ContentKind::Ext4
                | ContentKind::Xfs
                | ContentKind::Btrfs
                | ContentKind::Vfat
                | ContentKind::Exfat
                | ContentKind::Ntfs
                | ContentKind::Iso9660
                | ContentKind::Squashfs
        )
    }

    /// Whether it is one of ext2/ext3/ext4.
    pub fn is_ext(self) -> bool {
        matches!(
            self,
            ContentKind::Ext2 | ContentKind::Ext3 | ContentKind::Ext4
        )
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Content {
    /// The kind.
    pub kind: ContentKind,
    /// Label from the superblock (raw; escape before showing).
    pub label: Option<String>,
    /// UUID (or serial number) from the superblock.
    pub uuid: Option<String>,
    /// Version or variant (`FAT32`, `LUKS2`, `SWAPSPACE2`).
    pub version: Option<String>,
    /// The version as blkid's `VERSION` (and lsblk's FSVER) gives it, where
    /// that differs from [`Content::version`]: `1.0` for ext's revision,
    /// `1` for a SWAPSPACE2 header, `2` for LUKS2. See [`Content::fsver`].
    pub blkid_version: Option<String>,
    /// More words for unknown or unreadable content: `first bytes 4c 41 ...`.
    pub detail: Option<String>,
    /// The size the content gives itself (a filesystem's size from its
    /// superblock, a PV's from its label), when it says; a volume smaller
    /// than this was probably truncated.
    pub size: Option<u64>,
}

impl Content {
    /// Content of `kind` and nothing else known.
    pub fn new(kind: ContentKind) -> Content {
        Content {
            kind,
            label: None,
            uuid: None,
            version: None,
            blkid_version: None,
            detail: None,
            size: None,
        }
    }

    /// The version as lsblk's FSVER shows it: blkid's `VERSION`.
    pub fn fsver(&self) -> Option<String> {
        self.blkid_version.clone().or_else(|| self.version.clone())
    }

    /// Where the size claim of this kind of content is recorded, for messages.
    pub fn size_source(&self) -> &'static str {
        match self.kind {
            ContentKind::Ext2 | ContentKind::Ext3 | ContentKind::Ext4 | ContentKind::Jbd => {
                "superblock at byte 1024"
            }
            ContentKind::Xfs => "superblock at byte 0",
            ContentKind::Btrfs => "superblock at byte 65536",
            ContentKind::Vfat | ContentKind::Ntfs | ContentKind::Exfat => "boot sector at byte 0",
            ContentKind::Swap => "swap header at byte 1024",
            ContentKind::LvmPv => "pv_header in sectors 0-3",
            ContentKind::Iso9660 => "primary volume descriptor at byte 32768",
            ContentKind::Squashfs => "superblock at byte 0",
            _ => "header",
        }
    }

    /// A one-line description: `ext4 "root" 1b2c...`, `unknown (first bytes ...)`.
    pub fn describe(&self) -> String {
        let mut s = self.kind.name().to_string();
        for extra in [&self.version, &self.detail].into_iter().flatten() {
            s.push_str(&format!(" ({extra})"));
        }
        s
    }
}

/// How much of a volume's start the probe looks at: enough for btrfs's
/// superblock at 64 KiB and swap signatures on 64 KiB pages.
const PROBE_LEN: u64 = 0x10000 + 0x1000;

/// The parts of the first [`PROBE_LEN`] bytes that [`probe_bytes`] reads,
/// apart from its "all zeros" verdict: the first 8 KiB (labels, boot
/// sectors, ext/xfs superblocks, swap on 4 and 8 KiB pages, md 1.2), the
/// end of a 16 KiB page and the LUKS2 secondary header after it, the ISO
/// 9660 volume descriptor (and a LUKS2 secondary header) at 32 KiB, and 60–68
/// KiB (swap on 64 KiB pages, the btrfs superblock). Reading only these
/// keeps a scan of many volumes cheap; see the test `staged_reads_decide_alike`.
const PROBE_READS: [(u64, u64); 4] = [
    (0, 0x2000),
    (0x3000, 0x2000),
    (0x8000, 0x1000),
    (0xf000, 0x2000),
];

/// Ask `src` for every byte [`probe`] will read, at once: over a network
/// source the probes of many volumes then cost one round trip, not one each.
pub fn prefetch(src: &dyn ReadAt) {
    let size = src.size();
    let len = size.min(PROBE_LEN);
    for (at, n) in PROBE_READS {
        if at < len {
            src.prefetch(at, n.min(len - at));
        }
    }
    // MD metadata at the end (`labels::md_at_end`).
    if size > 0x20000 {
        src.prefetch((size & !0xffff) - 0x10000, 64);
    }
}

/// Recognise the content of a volume.
pub fn probe(src: &dyn ReadAt) -> Content {
    let len = src.size().min(PROBE_LEN);
    let mut buf = vec![0u8; len as usize];
    for (at, n) in PROBE_READS {
        if at >= len {
            break;
        }
        let end = (at + n).min(len);
        if let Err(e) = src.read_exact_at(at, &mut buf[at as usize..end as usize]) {
            return unreadable(e);
        }
    }
    // MD RAID metadata at the device's end comes first, as in blkid: a
    // RAID1 member with it also shows the filesystem at its start.
    if let Some((version, uuid, name)) = super::labels::md_at_end(src) {
        let inner = probe_bytes(&buf);
        let mut c = Content::new(ContentKind::MdRaid);
        c.version = Some(version);
        c.uuid = uuid;
        c.label = name;
        if inner.kind.is_filesystem() {
            c.detail = Some(format!(
                "metadata at the end; a {} filesystem starts at byte 0 (a RAID1 member)",
                inner.kind.name()
            ));
        }
        return c;
    }
    let mut c = probe_bytes(&buf);
    let boot = buf.get(..512).unwrap_or(&[]);
    match c.kind {
        ContentKind::Vfat => c.label = super::labels::fat_root_label(src, boot),
        ContentKind::Exfat => c.label = super::labels::exfat_label(src, boot),
        ContentKind::Ntfs => c.label = super::labels::ntfs_label(src, boot),
        ContentKind::Iso9660 => {
            if let Some(pvd) = buf.get(0x8028..0x8048)
                && let Some(l) = super::labels::joliet_label(src, pvd)
            {
                c.label = Some(l);
            }
        }
        _ => {}
    }
    if c.kind == ContentKind::Zeros {
        // Only now look at every byte: zeros where we looked may hide data elsewhere.
        if let Err(e) = src.read_exact_at(0, &mut buf) {
            return unreadable(e);
        }
        c = probe_bytes(&buf);
    }
    if matches!(c.kind, ContentKind::Unknown | ContentKind::Zeros)
        && let Some(backup) = ext_backup(src)
    {
        return backup;
    }
    if matches!(c.kind, ContentKind::Unknown | ContentKind::Zeros)
        && let Some(luks) = luks2_far_secondary(src)
    {
        return luks;
    }
    c
}

/// A LUKS2 secondary header at byte `off`, `h` its bytes: its magic,
/// version 2, and its own offset field saying `off`.
fn luks2_secondary(h: &[u8], off: u64) -> Option<Content> {
    if h.get(..6) != Some(b"SKUL\xba\xbe".as_slice())
        || be::u16(h, 6) != Some(2)
        || be::u64(h, 256) != Some(off)
    {
        return None;
    }
    let mut c = Content::new(ContentKind::Luks);
    c.version = Some("LUKS2".into());
    c.blkid_version = Some("2".into());
    c.uuid = text(h, 168, 40);
    c.label = text(h, 24, 48);
    c.detail = Some(format!(
        "no primary LUKS2 header; the secondary header is at byte {off}"
    ));
    Some(c)
}

/// The offsets of a LUKS2 secondary header past the bytes [`probe`] reads
/// first: after a primary header area of 128 KiB to 4 MiB (the sizes
/// `cryptsetup luksFormat --luks2-metadata-size` takes above 64 KiB).
const LUKS2_FAR_SECONDARY: [u64; 6] = [
    0x2_0000, 0x4_0000, 0x8_0000, 0x10_0000, 0x20_0000, 0x40_0000,
];

/// A LUKS2 volume whose primary header was wiped and whose header area is
/// larger than 64 KiB: its secondary header at one of
/// [`LUKS2_FAR_SECONDARY`] (six reads of 512 bytes at most).
fn luks2_far_secondary(src: &dyn ReadAt) -> Option<Content> {
    let mut h = [0u8; 512];
    for off in LUKS2_FAR_SECONDARY {
        if off.checked_add(4096).is_none_or(|e| e > src.size()) {
            break;
        }
        if src.read_exact_at(off, &mut h).is_err() {
            continue;
        }
        if let Some(c) = luks2_secondary(&h, off) {
            return Some(c);
        }
    }
    None
}

/// An ext2/3/4 filesystem whose primary superblock is damaged or wiped,
/// known by a backup superblock in group 1 (where `e2fsck -b` looks); the
/// ext reader falls back to the same backup.
fn ext_backup(src: &dyn ReadAt) -> Option<Content> {
    let pos = crate::fs::ext::backup_superblock_pos(src)?;
    let mut buf = vec![0u8; 2048];
    src.read_exact_at(pos, &mut buf[1024..]).ok()?;
    // A backup names its group (s_block_group_nr); a superblock of group 0
    // there is another filesystem's primary one, starting at that place.
    if le::u16(&buf, 1024 + 0x5a)? == 0 {
        return None;
    }
    let mut c = ext(&buf)?;
    c.detail = Some(format!(
        "primary superblock damaged; backup superblock at byte {pos}"
    ));
    Some(c)
}

fn unreadable(e: std::io::Error) -> Content {
    let mut c = Content::new(ContentKind::Unreadable);
    c.detail = Some(e.to_string());
    c
}

/// Recognise content from its first bytes (up to 68 KiB).
pub fn probe_bytes(b: &[u8]) -> Content {
    let at = |off: usize, magic: &[u8]| b.get(off..off + magic.len()) == Some(magic);
    if let Some(c) = lvm(b) {
        return c;
    }
    if at(0, b"LUKS\xba\xbe") {
        let mut c = Content::new(ContentKind::Luks);
        c.version = be::u16(b, 6).map(|v| format!("LUKS{v}"));
        c.blkid_version = be::u16(b, 6).map(|v| v.to_string());
        c.uuid = text(b, 168, 40);
        if be::u16(b, 6) == Some(2) {
            c.label = text(b, 24, 48);
        }
        return c;
    }
    // A LUKS2 volume whose primary header was wiped still has its
    // secondary one right after the primary area (16, 32 or 64 KiB with
    // the sizes cryptsetup writes); as blkid, it must say where it is.
    for off in [0x4000usize, 0x8000, 0x10000] {
        if let Some(c) = b.get(off..).and_then(|h| luks2_secondary(h, off as u64)) {
            return c;
        }
    }
    if at(0, b"QFI\xfb") {
        let mut c = Content::new(ContentKind::Qcow2);
        c.version = be::u32(b, 4).map(|v| format!("version {v}"));
        return c;
    }
    // The other disk image formats whose first bytes say what they are
    // (a fixed VHD starts with its disk's own bytes, a VMDK descriptor
    // names extents elsewhere: neither is an image here).
    if at(0, b"KDMV") {
        let mut c = Content::new(ContentKind::Vmdk);
        c.version = le::u32(b, 4).map(|v| format!("version {v}"));
        return c;
    }
    if at(0, b"conectix") {
        return Content::new(ContentKind::Vhd);
    }
    if at(0, b"vhdxfile") {
        return Content::new(ContentKind::Vhdx);
    }
    if le::u32(b, 0x40) == Some(crate::image::vdi::SIGNATURE) {
        return Content::new(ContentKind::Vdi);
    }
    if at(0, b"XFSB") {
        let mut c = Content::new(ContentKind::Xfs);
        c.uuid = uuid(b, 32);
        c.label = text(b, 108, 12);
        // sb_blocksize × sb_dblocks.
        c.size = be::u64(b, 8).and_then(|n| n.checked_mul(u64::from(be::u32(b, 4)?)));
        return c;
    }
    if at(0x10040, b"_BHRfS_M") {
        let mut c = Content::new(ContentKind::Btrfs);
        c.uuid = uuid(b, 0x10020);
        c.label = text(b, 0x1012b, 256);
        // dev_item.total_bytes: this device's share.
        c.size = le::u64(b, 0x10000 + 0xc9 + 8);
        // num_devices, dev_item.devid: which device of several.
        if let (Some(n), Some(devid)) = (le::u64(b, 0x10088), le::u64(b, 0x100c9))
            && n > 1
        {
            c.detail = Some(format!("device {devid} of {n}"));
        }
        return c;
    }
    if let Some(c) = ext(b) {
        return c;
    }
    if let Some(c) = swap(b) {
        return c;
    }
    if at(0, b"hsqs") {
        let mut c = Content::new(ContentKind::Squashfs);
        c.size = le::u64(b, 40); // bytes_used
        return c;
    }
    for off in [0usize, 4096] {
        if le::u32(b, off) == Some(0xa92b_4efc)
            && b.get(off..)
                .is_some_and(|sb| super::labels::md1_valid(sb, off as u64))
        {
            let mut c = Content::new(ContentKind::MdRaid);
            c.version = Some(if off == 0 { "1.1" } else { "1.2" }.to_string());
            c.uuid = uuid(b, off + 16);
            c.label = text(b, off + 32, 32);
            return c;
        }
    }
    if at(0x8001, b"CD001") {
        let mut c = Content::new(ContentKind::Iso9660);
        c.label = text(b, 0x8028, 32);
        // blkid's UUID: the modification date, else the creation date, as
        // YYYY-MM-DD-HH-MM-SS-CC.
        c.uuid = iso_date_uuid(b, 0x8000 + 830).or_else(|| iso_date_uuid(b, 0x8000 + 813));
        // Volume space size × logical block size.
        c.size = le::u32(b, 0x8050)
            .and_then(|n| u64::from(n).checked_mul(u64::from(le::u16(b, 0x8080)?)));
        return c;
    }
    if let Some(c) = boot_sector_fs(b) {
        return c;
    }
    if at(512, b"EFI PART") || at(4096, b"EFI PART") || looks_like_mbr(b) {
        return Content::new(ContentKind::PartitionTable);
    }
    if b.iter().all(|&x| x == 0) {
        let mut c = Content::new(ContentKind::Zeros);
        c.detail = Some("zeros where signatures live".into());
        return c;
    }
    let mut c = Content::new(ContentKind::Unknown);
    let first: Vec<String> = b.iter().take(16).map(|x| format!("{x:02x}")).collect();
    c.detail = Some(format!("first bytes {}", first.join(" ")));
    c
}

/// An LVM2 label in one of the first four sectors.
fn lvm(b: &[u8]) -> Option<Content> {
    for sector in 0..4usize {
        let off = sector * 512;
        if b.get(off..off + 8) == Some(b"LABELONE")
            && b.get(off + 24..off + 32) == Some(b"LVM2 001")
        {
            let mut c = Content::new(ContentKind::LvmPv);
            c.version = Some("LVM2 001".into());
            let pvh = off + le::u32(b, off + 20)? as usize;
            if let Some(raw) = b.get(pvh..pvh + 32) {
                c.uuid = Some(lvm_uuid(raw));
            }
            // pv_header.device_size_xl.
            c.size = le::u64(b, pvh + 32).filter(|&n| n > 0);
            return Some(c);
        }
    }
    None
}

/// Format a 32-character LVM UUID as LVM prints it (6-4-4-4-4-4-6).
pub fn lvm_uuid(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw).to_string();
    if s.len() != 32 || !s.is_ascii() {
        return s;
    }
    let parts = [
        &s[0..6],
        &s[6..10],
        &s[10..14],
        &s[14..18],
        &s[18..22],
        &s[22..26],
        &s[26..32],
    ];
    parts.join("-")
}

/// ext2/3/4, told apart by features as blkid does.
fn ext(b: &[u8]) -> Option<Content> {
    const SB: usize = 1024;
    if le::u16(b, SB + 0x38)? != 0xef53 {
        return None;
    }
    let compat = le::u32(b, SB + 0x5c)?;
    let incompat = le::u32(b, SB + 0x60)?;
    let ro_compat = le::u32(b, SB + 0x64)?;
    const HAS_JOURNAL: u32 = 0x4;
    const JOURNAL_DEV: u32 = 0x8;
    // Features an ext2/ext3 driver understands.
    const EXT3_INCOMPAT: u32 = 0x2 | 0x4 | 0x10; // filetype, recover, meta_bg
    const EXT2_RO_COMPAT: u32 = 0x1 | 0x2 | 0x4; // sparse_super, large_file, btree_dir
    let kind = if incompat & JOURNAL_DEV != 0 {
        ContentKind::Jbd
    } else if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT2_RO_COMPAT != 0 {
        ContentKind::Ext4
    } else if compat & HAS_JOURNAL != 0 {
        ContentKind::Ext3
    } else if incompat & 0x4 != 0 {
        // needs_recovery without a journal: not ext2 either.
        ContentKind::Ext4
    } else {
        ContentKind::Ext2
    };
    let mut c = Content::new(kind);
    c.uuid = uuid(b, SB + 0x68);
    c.label = text(b, SB + 0x78, 16);
    // s_rev_level.s_minor_rev_level, as blkid prints it.
    if let (Some(rev), Some(minor)) = (le::u32(b, SB + 0x4c), le::u16(b, SB + 0x3e)) {
        c.blkid_version = Some(format!("{rev}.{minor}"));
    }
    // s_blocks_count (with its high half on 64bit filesystems) × block size.
    const INCOMPAT_64BIT: u32 = 0x80;
    let lo = u64::from(le::u32(b, SB + 0x4)?);
    let hi = if incompat & INCOMPAT_64BIT != 0 {
        u64::from(le::u32(b, SB + 0x150)?)
    } else {
        0
    };
    let log = le::u32(b, SB + 0x18)?;
    if kind != ContentKind::Jbd && log <= 6 {
        c.size = ((hi << 32) | lo).checked_mul(1024u64 << log);
    }
    Some(c)
}

fn swap(b: &[u8]) -> Option<Content> {
    for page in [4096usize, 8192, 16384, 65536] {
        let Some(sig) = b.get(page - 10..page) else {
            continue;
        };
        let version = match sig {
            b"SWAPSPACE2" => "SWAPSPACE2",
            b"SWAP-SPACE" => "SWAP-SPACE",
            _ if &sig[..9] == b"S1SUSPEND" || &sig[..9] == b"S2SUSPEND" => "suspend image",
            _ => continue,
        };
        let mut c = Content::new(ContentKind::Swap);
        c.version = Some(version.into());
        if version != "SWAP-SPACE" {
            c.uuid = uuid(b, 1024 + 12);
            c.label = text(b, 1024 + 28, 16);
            // swap_header.info.version.
            c.blkid_version = le::u32(b, 1024).map(|v| v.to_string());
            // (last_page + 1) pages.
            c.size = le::u32(b, 1024 + 4).and_then(|n| (u64::from(n) + 1).checked_mul(page as u64));
        }
        return Some(c);
    }
    None
}

/// FAT, exFAT and NTFS boot sectors.
fn boot_sector_fs(b: &[u8]) -> Option<Content> {
    if b.get(510..512) != Some(&[0x55, 0xaa]) {
        return None;
    }
    let oem = b.get(3..11)?;
    if oem == b"NTFS    " {
        let mut c = Content::new(ContentKind::Ntfs);
        c.uuid = le::u64(b, 0x48).map(|v| format!("{v:016X}"));
        // Total sectors (the backup boot sector after them is not counted).
        c.size = le::u64(b, 0x28).and_then(|n| n.checked_mul(u64::from(le::u16(b, 11)?)));
        return Some(c);
    }
    if oem == b"EXFAT   " {
        let mut c = Content::new(ContentKind::Exfat);
        c.uuid = le::u32(b, 100).map(fat_serial);
        // VolumeLength in sectors of 2^BytesPerSectorShift bytes.
        c.size = le::u64(b, 72)
            .zip(b.get(108).copied().filter(|&s| (9..=12).contains(&s)))
            .and_then(|(n, shift)| n.checked_mul(1u64 << shift));
        return Some(c);
    }
    let jump = b[0] == 0xeb || b[0] == 0xe9;
    let bytes_per_sector = le::u16(b, 11)?;
    let sectors_per_cluster = b[13];
    let fat32 = b.get(82..87) == Some(b"FAT32");
    let fat1x = b.get(54..57) == Some(b"FAT");
    let sane = bytes_per_sector.is_power_of_two()
        && (512..=4096).contains(&bytes_per_sector)
        && sectors_per_cluster.is_power_of_two()
        && le::u16(b, 14)? > 0
        && (1..=2).contains(&b[16]);
    if !(jump && sane && (fat32 || fat1x)) {
        return None;
    }
    let mut c = Content::new(ContentKind::Vfat);
    let (label_at, serial_at) = if fat32 { (71, 67) } else { (43, 39) };
    c.version = Some(if fat32 {
        "FAT32".to_string()
    } else {
        String::from_utf8_lossy(&b[54..59]).trim().to_string()
    });
    c.label = text(b, label_at, 11).filter(|l| l != "NO NAME");
    // FAT12/16 have a serial number only with an extended boot signature
    // (0x28 or 0x29 at byte 38), as blkid reads them; FAT32 always has one.
    let has_serial = fat32 || matches!(b.get(38), Some(0x28 | 0x29));
    c.uuid = le::u32(b, serial_at).filter(|_| has_serial).map(fat_serial);
    // BPB_TotSec16, or BPB_TotSec32 when that is 0.
    let total = match le::u16(b, 19)? {
        0 => u64::from(le::u32(b, 32)?),
        n => u64::from(n),
    };
    c.size = total.checked_mul(u64::from(bytes_per_sector));
    Some(c)
}

/// An ISO 9660 date (16 digits and a time zone byte) as blkid makes a
/// UUID of it; `None` when unset (all '0' and zone 0).
fn iso_date_uuid(b: &[u8], off: usize) -> Option<String> {
    let d = b.get(off..off + 17)?;
    if d[..16].iter().all(|&x| x == b'0') && d[16] == 0 {
        return None;
    }
    let s = String::from_utf8_lossy(&d[..16]);
    let s: Vec<char> = s.chars().collect();
    if s.len() != 16 {
        return None;
    }
    let part = |a: usize, b: usize| s[a..b].iter().collect::<String>();
    Some(format!(
        "{}-{}-{}-{}-{}-{}-{}",
        part(0, 4),
        part(4, 6),
        part(6, 8),
        part(8, 10),
        part(10, 12),
        part(12, 14),
        part(14, 16)
    ))
}

fn fat_serial(v: u32) -> String {
    format!("{:04X}-{:04X}", v >> 16, v & 0xffff)
}

fn looks_like_mbr(b: &[u8]) -> bool {
    if b.get(510..512) != Some(&[0x55, 0xaa]) {
        return false;
    }
    let mut any = false;
    for i in 0..4 {
        let e = 446 + 16 * i;
        let status = b[e];
        if status != 0 && status != 0x80 {
            return false;
        }
        any |= b[e + 4] != 0 && le::u32(b, e + 12).unwrap_or(0) != 0;
    }
    any
}

/// A label: bytes up to the first NUL, trailing spaces removed; `None` if empty.
fn text(b: &[u8], off: usize, len: usize) -> Option<String> {
    let raw = b.get(off..off + len)?;
    let end = raw.iter().position(|&x| x == 0).unwrap_or(raw.len());
    let s = String::from_utf8_lossy(&raw[..end]).trim_end().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_zeros() {
        assert_eq!(probe_bytes(&[0u8; 8192]).kind, ContentKind::Zeros);
        let c = probe_bytes(b"hello world, this is not a filesystem");
        assert_eq!(c.kind, ContentKind::Unknown);
        assert_eq!(
            c.detail.as_deref(),
            Some("first bytes 68 65 6c 6c 6f 20 77 6f 72 6c 64 2c 20 74 68 69")
        );
    }

    /// Bytes outside `PROBE_READS` never change a verdict other than "zeros":
    /// fill them with noise around each signature and compare.
    #[test]
    fn staged_reads_decide_alike() {
        let len = PROBE_LEN as usize;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        let inside = |i: usize| {
            PROBE_READS
                .iter()
                .any(|&(at, n)| (at as usize..(at + n) as usize).contains(&i))
        };
        let magics: &[(usize, &[u8])] = &[
            (0, b""),
            (1080, &[0x53, 0xef]),
            (0x10040, b"_BHRfS_M"),
            (0x8001, b"CD001"),
            (4086, b"SWAPSPACE2"),
            (16374, b"SWAPSPACE2"),
            (65526, b"SWAPSPACE2"),
            (4096, &[0xfc, 0x4e, 0x2b, 0xa9]),
            (512, b"EFI PART"),
            (512, b"LABELONE\x01\0\0\0\0\0\0\0\0\0\0\0\x20\0\0\0LVM2 001"),
            (0, b"XFSB"),
            (0, b"hsqs"),
        ];
        for &(at, magic) in magics {
            for round in 0..6 {
                let mut full: Vec<u8> = (0..len).map(|_| noise()).collect();
                if round % 2 == 0 {
                    // Quiet inside too, so that only the magic speaks.
                    for (i, b) in full.iter_mut().enumerate() {
                        if inside(i) {
                            *b = 0;
                        }
                    }
                }
                full[at..at + magic.len()].copy_from_slice(magic);
                let mut staged = full.clone();
                for (i, b) in staged.iter_mut().enumerate() {
                    if !inside(i) {
                        *b = 0;
                    }
                }
                let a = probe_bytes(&full);
                let b = probe_bytes(&staged);
                if b.kind != ContentKind::Zeros {
                    assert_eq!(a, b, "signature at {at}, round {round}");
                }
                // And probe() through a source agrees with probe_bytes on the full buffer.
                let c = probe(&full);
                assert_eq!(c, a, "probe() vs probe_bytes(), signature at {at}");
            }
        }
    }

    #[test]
    fn sizes_from_superblocks() {
        let mut b = vec![0u8; 8192];
        b[1080..1082].copy_from_slice(&[0x53, 0xef]);
        b[1024 + 4..1024 + 8].copy_from_slice(&4096u32.to_le_bytes()); // blocks
        b[1024 + 0x18..1024 + 0x1c].copy_from_slice(&2u32.to_le_bytes()); // 4 KiB
        assert_eq!(probe_bytes(&b).size, Some(16 << 20));
        // A hostile block size does not overflow.
        b[1024 + 0x18..1024 + 0x1c].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(probe_bytes(&b).size, None);
    }

    #[test]
    fn lvm_uuid_format() {
        assert_eq!(
            lvm_uuid(b"abcdefghijklmnopqrstuvwxyz012345"),
            "abcdef-ghij-klmn-opqr-stuv-wxyz-012345"
        );
    }
}
