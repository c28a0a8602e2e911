//! Linux MD superblocks, as `drivers/md/md.c` and mdadm's `super0.c` and
//! `super1.c` read them.
//!
//! * **0.90** (`mdp_super_t`, 4096 bytes) sits in the last 64 KiB-aligned
//!   64 KiB of the device (`MD_NEW_SIZE_SECTORS`), in the byte order of the
//!   host that wrote it: little-endian, or big-endian (a PowerPC or s390
//!   host), told apart by the magic. Words, counted in `u32`: 0 `md_magic`,
//!   1–3 the version, 5 `set_uuid0`, 7 `level`, 8 `size` (KiB used on each
//!   device), 10 `raid_disks`, 11 `md_minor`, 13–15 `set_uuid1..3`, 38
//!   `sb_csum`, 39–40 `events` (low word first on a little-endian host,
//!   high first on a big-endian one), 43 `recovery_cp`, 64 `layout`, 65
//!   `chunk_size` (bytes), 128.. 27 disk descriptors of 32 words
//!   (`number`, `major`, `minor`, `raid_disk`, `state`), 992 `this_disk`.
//!   The data starts at byte 0 of the device. Checksum: the sum of the 1024
//!   words with `sb_csum` taken as 0, carries folded once into 32 bits.
//! * **1.x** (`mdp_superblock_1`, little-endian, 256 bytes + 2 bytes per
//!   `dev_roles` entry): 1.0 at 8 KiB before the 4 KiB-aligned end, 1.1 at
//!   byte 0, 1.2 at byte 4096. Bytes: 0 `magic`, 4 `major_version` (1), 8
//!   `feature_map`, 16 `set_uuid`, 32 `set_name`, 72 `level`, 76 `layout`,
//!   80 `size` (sectors used on each device), 88 `chunksize` (sectors), 92
//!   `raid_disks`, 104 `reshape_position`, 128 `data_offset`, 136
//!   `data_size`, 144 `super_offset` (this superblock's own sector), 152
//!   `recovery_offset`, 160 `dev_number`, 168 `device_uuid`, 200 `events`,
//!   208 `resync_offset`, 216 `sb_csum`, 220 `max_dev`, 256 `dev_roles[]`
//!   (`0xffff` spare, `0xfffe` faulty, `0xfffd` journal). Checksum: the sum
//!   of the little-endian words of the 256 + 2 × `max_dev` bytes (a last
//!   half word added as such) with `sb_csum` taken as 0, folded once.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use crate::io::{ReadAt, be, le};

/// The MD magic number, in every version.
pub const MD_MAGIC: u32 = 0xa92b_4efc;

/// Bytes kept for a 0.90 superblock at the device's end (`MD_RESERVED_BYTES`).
const RESERVED_090: u64 = 64 * 1024;
/// Size of a 0.90 superblock (`MD_SB_BYTES`).
const SB_090_BYTES: usize = 4096;
/// Disk descriptors in a 0.90 superblock (`MD_SB_DISKS`).
pub const MAX_DISKS_090: u32 = 27;
/// The most `dev_roles` entries a 1.x superblock may have: the kernel
/// refuses `max_dev` above (4096 - 256) / 2.
pub const MAX_DEV_1: u32 = 1920;
/// The largest chunk vmrescue accepts (bytes); the kernel's raid5 refuses
/// far less, and a reader holds a few chunks at once.
pub const MAX_CHUNK: u64 = 64 << 20;

/// `feature_map` bits (md_p.h).
pub mod feature {
    /// `MD_FEATURE_BITMAP_OFFSET`: a write-intent bitmap.
    pub const BITMAP: u32 = 1;
    /// `MD_FEATURE_RECOVERY_OFFSET`: this device is being rebuilt.
    pub const RECOVERY_OFFSET: u32 = 2;
    /// `MD_FEATURE_RESHAPE_ACTIVE`: a reshape is in progress.
    pub const RESHAPE_ACTIVE: u32 = 4;
    /// `MD_FEATURE_BAD_BLOCKS`: a bad-block log.
    pub const BAD_BLOCKS: u32 = 8;
    /// `MD_FEATURE_REPLACEMENT`: this device replaces another.
    pub const REPLACEMENT: u32 = 16;
    /// `MD_FEATURE_RESHAPE_BACKWARDS`.
    pub const RESHAPE_BACKWARDS: u32 = 32;
    /// `MD_FEATURE_NEW_OFFSET`: a reshape moves the data offset.
    pub const NEW_OFFSET: u32 = 64;
    /// `MD_FEATURE_RECOVERY_BITMAP`.
    pub const RECOVERY_BITMAP: u32 = 128;
    /// `MD_FEATURE_CLUSTERED`: a clustered bitmap.
    pub const CLUSTERED: u32 = 256;
    /// `MD_FEATURE_JOURNAL`: a raid5 write journal.
    pub const JOURNAL: u32 = 512;
    /// `MD_FEATURE_PPL`: raid5 partial parity log.
    pub const PPL: u32 = 1024;
    /// `MD_FEATURE_MULTIPLE_PPLS`.
    pub const MULTIPLE_PPLS: u32 = 2048;
    /// `MD_FEATURE_RAID0_LAYOUT`: raid0 multi-zone layout recorded.
    pub const RAID0_LAYOUT: u32 = 4096;
}

/// Which metadata format a superblock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    /// 0.90, written in the host's byte order.
    V090 {
        /// Written by a big-endian host.
        big_endian: bool,
    },
    /// 1.0 (at the end), 1.1 (at 0), 1.2 (at 4 KiB).
    V1 {
        /// The minor version: where the superblock sits.
        minor: u8,
    },
}

impl Version {
    /// `0.90`, `1.2`...
    pub fn name(self) -> String {
        match self {
            Version::V090 { .. } => "0.90".into(),
            Version::V1 { minor } => format!("1.{minor}"),
        }
    }
}

/// A device's role in the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "role", content = "slot", rename_all = "snake_case")]
pub enum Role {
    /// Holds slot `n` of the array (`0..raid_disks`).
    Active(u32),
    /// A spare (`0xffff`, or a 0.90 descriptor neither active nor faulty).
    Spare,
    /// Marked faulty (`0xfffe`, or the 0.90 `MD_DISK_FAULTY` bit).
    Faulty,
    /// A raid5 write journal (`0xfffd`).
    Journal,
}

impl Role {
    /// A 1.x `dev_roles` entry.
    fn from_v1(r: u16) -> Role {
        match r {
            0xffff => Role::Spare,
            0xfffe => Role::Faulty,
            0xfffd => Role::Journal,
            n => Role::Active(u32::from(n)),
        }
    }

    /// A 0.90 disk descriptor: its `raid_disk` and `state` bits
    /// (0 faulty, 1 active, 2 sync, 3 removed: faulty or removed is
    /// faulty here).
    fn from_090(raid_disk: u32, state: u32, raid_disks: u32) -> Role {
        if state & 0b1001 != 0 {
            Role::Faulty
        } else if state & 0b110 != 0 && raid_disk < raid_disks {
            Role::Active(raid_disk)
        } else {
            Role::Spare
        }
    }

    /// In words: `role 2`, `spare`...
    pub fn describe(self) -> String {
        match self {
            Role::Active(n) => format!("role {n}"),
            Role::Spare => "spare".into(),
            Role::Faulty => "faulty".into(),
            Role::Journal => "journal".into(),
        }
    }
}

/// One MD superblock, decoded. Sizes and offsets are in bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Superblock {
    /// Its format.
    pub version: Version,
    /// Byte position of the superblock on the device.
    pub at: u64,
    /// The checksum stored.
    pub csum_stored: u32,
    /// The checksum computed over the superblock.
    pub csum_computed: u32,
    /// The array's UUID, bytes in the order blkid shows them (for 0.90
    /// each of the four words is byte-swapped from a little-endian host).
    pub uuid: [u8; 16],
    /// The array name, `host:name` or `name` (1.x only).
    pub name: Option<String>,
    /// The preferred minor number, `md<minor>` (0.90 only).
    pub md_minor: Option<u32>,
    /// RAID level: -1 linear, -4 multipath, 0, 1, 4, 5, 6, 10.
    pub level: i32,
    /// Level-specific layout (raid5 algorithm, raid10 copies).
    pub layout: u32,
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Slots in a complete array.
    pub raid_disks: u32,
    /// Bytes of each device the array uses (0.90 `size`, 1.x `size`).
    pub size: u64,
    /// Where the array's data starts on this device.
    pub data_offset: u64,
    /// Bytes available for data on this device from `data_offset`
    /// (1.x `data_size`; for 0.90, the space before the superblock).
    pub data_size: u64,
    /// This device's number (its index in `roles`).
    pub dev_number: u32,
    /// This device's role, as its own superblock says.
    pub role: Role,
    /// The role of every device number, as this superblock says.
    pub roles: Vec<Role>,
    /// Update counter: the freshest member has the highest.
    pub events: u64,
    /// How far this device was rebuilt, when `feature_map` says it is being rebuilt.
    pub recovery_offset: Option<u64>,
    /// How far the array was resynced (`u64::MAX` when clean).
    pub resync_offset: u64,
    /// 1.x feature bits (0 for 0.90).
    pub feature_map: u32,
}

impl Superblock {
    /// Whether the checksum matches.
    pub fn csum_ok(&self) -> bool {
        self.csum_stored == self.csum_computed
    }

    /// The UUID as mdadm shows it: four groups of 8 hex digits.
    pub fn uuid_mdadm(&self) -> String {
        let h: String = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        let mut out = String::new();
        for (i, c) in h.chars().enumerate() {
            if i > 0 && i % 8 == 0 {
                out.push(':');
            }
            out.push(c);
        }
        out
    }

    /// The UUID as blkid shows it (8-4-4-4-12).
    pub fn uuid_blkid(&self) -> String {
        let h: Vec<String> = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        let part = |a: usize, b: usize| h.get(a..b).map(|s| s.concat()).unwrap_or_default();
        format!(
            "{}-{}-{}-{}-{}",
            part(0, 4),
            part(4, 6),
            part(6, 8),
            part(8, 10),
            part(10, 16)
        )
    }

    /// `raid5`, `linear`...
    pub fn level_name(&self) -> String {
        level_name(self.level)
    }

    /// The features this reader does not follow, in words. A bitmap is
    /// not among them: it only speeds a resync up.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        let f = self.feature_map;
        if f & (feature::RESHAPE_ACTIVE | feature::RESHAPE_BACKWARDS | feature::NEW_OFFSET) != 0 {
            out.push(
                "a reshape is in progress (the array is half in its old geometry, half in its new one): not readable"
                    .to_string(),
            );
        }
        if f & feature::JOURNAL != 0 {
            out.push(
                "the array has a raid5 write journal: writes still in the journal are not replayed"
                    .to_string(),
            );
        }
        if f & (feature::PPL | feature::MULTIPLE_PPLS) != 0 {
            out.push("the array has a partial parity log: it is not replayed".to_string());
        }
        if f & feature::CLUSTERED != 0 {
            out.push("clustered MD (md-cluster) array: read as a plain one".to_string());
        }
        out
    }

    /// Facts worth knowing that change nothing for reading.
    pub fn facts(&self) -> Vec<String> {
        let mut out = Vec::new();
        let f = self.feature_map;
        if f & feature::BITMAP != 0 {
            out.push("write-intent bitmap (not needed to read)".to_string());
        }
        if f & feature::BAD_BLOCKS != 0 {
            out.push("bad-block log present (blocks it lists are not avoided)".to_string());
        }
        if f & feature::REPLACEMENT != 0 {
            out.push("this device is a replacement being built".to_string());
        }
        out
    }
}

/// `raid5`, `linear`, `multipath`, `level 7`.
pub fn level_name(level: i32) -> String {
    match level {
        -1 => "linear".into(),
        -4 => "multipath".into(),
        -5 => "faulty".into(),
        0 | 1 | 4 | 5 | 6 | 10 => format!("raid{level}"),
        n => format!("level {n}"),
    }
}

/// What a look for an MD superblock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// None at any of the four places.
    None,
    /// A superblock (check [`Superblock::csum_ok`]).
    Superblock(Box<Superblock>),
    /// The magic is there but the rest is impossible: why, and where.
    Damaged {
        /// Byte position of the superblock.
        at: u64,
        /// What is wrong.
        detail: String,
    },
}

/// Read the MD superblock of a device, looking where each version keeps it:
/// 1.2, 1.1, 1.0 then 0.90. A superblock with a good checksum wins over a
/// damaged or mis-summed one found first.
pub fn read(src: &dyn ReadAt) -> Found {
    let size = src.size();
    let mut places: Vec<(u64, Version)> = vec![
        (4096, Version::V1 { minor: 2 }),
        (0, Version::V1 { minor: 1 }),
    ];
    if let Some(at) = (size & !0xfff).checked_sub(0x2000) {
        places.push((at, Version::V1 { minor: 0 }));
    }
    if size > RESERVED_090
        && let Some(at) = (size & !(RESERVED_090 - 1)).checked_sub(RESERVED_090)
    {
        places.push((at, Version::V090 { big_endian: false }));
    }
    let mut first: Found = Found::None;
    for (at, v) in places {
        let mut b = vec![0u8; SB_090_BYTES];
        let Some(end) = at.checked_add(SB_090_BYTES as u64) else {
            continue;
        };
        if end > size || src.read_exact_at(at, &mut b).is_err() {
            continue;
        }
        let f = match v {
            Version::V1 { minor } => parse_v1(&b, at, minor),
            Version::V090 { .. } => parse_090(&b, at),
        };
        match f {
            Found::Superblock(sb) if sb.csum_ok() => return Found::Superblock(sb),
            Found::None => {}
            other => {
                if first == Found::None {
                    first = other;
                }
            }
        }
    }
    first
}

/// Fold a 64-bit sum into 32 bits once, as `calc_sb_1_csum` and
/// `calc_sb_csum` do (the second carry is lost in 32-bit arithmetic).
fn fold(sum: u64) -> u32 {
    let lo = sum & 0xffff_ffff;
    let hi = sum >> 32;
    u32::try_from(lo.wrapping_add(hi) & 0xffff_ffff).unwrap_or(0)
}

/// Parse a 1.x superblock from `b` (4096 bytes read at byte `at`).
pub fn parse_v1(b: &[u8], at: u64, minor: u8) -> Found {
    if le::u32(b, 0) != Some(MD_MAGIC) {
        return Found::None;
    }
    let damaged = |detail: String| Found::Damaged { at, detail };
    let field = |off: usize| le::u32(b, off).unwrap_or(0);
    let field64 = |off: usize| le::u64(b, off).unwrap_or(0);
    let major = field(4);
    if major != 1 {
        return damaged(format!(
            "MD superblock {}: major version {major}, not 1",
            Version::V1 { minor }.name()
        ));
    }
    let super_offset = field64(144);
    if super_offset != at >> 9 {
        // Not this place's superblock (a 1.x superblock of another
        // version seen through a partition, or a stale copy).
        return Found::None;
    }
    let max_dev = field(220);
    if max_dev > MAX_DEV_1 {
        return damaged(format!(
            "MD superblock {}: max_dev {max_dev} (the kernel allows {MAX_DEV_1} at most)",
            Version::V1 { minor }.name()
        ));
    }
    let raid_disks = field(92);
    if raid_disks > MAX_DEV_1 {
        return damaged(format!(
            "MD superblock {}: raid_disks {raid_disks} (a superblock lists {MAX_DEV_1} devices at most)",
            Version::V1 { minor }.name()
        ));
    }
    // 256 + 2 × max_dev ≤ 4096: within `b`.
    let len = (max_dev as usize)
        .checked_mul(2)
        .and_then(|n| n.checked_add(256))
        .unwrap_or(256);
    let Some(covered) = b.get(..len) else {
        return damaged("MD superblock shorter than its role table".into());
    };
    let mut sum: u64 = 0;
    let mut words = covered.chunks_exact(4);
    for (i, w) in words.by_ref().enumerate() {
        if i != 216 / 4
            && let Ok(w) = <[u8; 4]>::try_from(w)
        {
            sum = sum.wrapping_add(u64::from(u32::from_le_bytes(w)));
        }
    }
    if let [a, c] = words.remainder() {
        sum = sum.wrapping_add(u64::from(u16::from_le_bytes([*a, *c])));
    }
    let mut uuid = [0u8; 16];
    if let Some(u) = b.get(16..32) {
        uuid.copy_from_slice(u);
    }
    let name = b.get(32..64).and_then(|n| {
        let end = n.iter().position(|&x| x == 0).unwrap_or(n.len());
        let s = String::from_utf8_lossy(n.get(..end)?).into_owned();
        (!s.is_empty()).then_some(s)
    });
    let roles: Vec<Role> = (0..max_dev as usize)
        .filter_map(|i| le::u16(b, 256usize.checked_add(i.checked_mul(2)?)?))
        .map(Role::from_v1)
        .collect();
    let dev_number = field(160);
    let role = roles
        .get(dev_number as usize)
        .copied()
        .unwrap_or(Role::Spare);
    let feature_map = field(8);
    let sectors = |n: u64| n.checked_mul(512);
    let Some(chunk_size) = sectors(u64::from(field(88))) else {
        return damaged("chunk size overflows".into());
    };
    let (Some(size), Some(data_offset), Some(data_size)) = (
        sectors(field64(80)),
        sectors(field64(128)),
        sectors(field64(136)),
    ) else {
        return damaged(format!(
            "MD superblock {}: sizes past 2^64 bytes",
            Version::V1 { minor }.name()
        ));
    };
    let recovery_offset = (feature_map & feature::RECOVERY_OFFSET != 0)
        .then(|| sectors(field64(152)).unwrap_or(u64::MAX));
    let resync = field64(208);
    Found::Superblock(Box::new(Superblock {
        version: Version::V1 { minor },
        at,
        csum_stored: field(216),
        csum_computed: fold(sum),
        uuid,
        name,
        md_minor: None,
        level: i32::from_le_bytes(field(72).to_le_bytes()),
        layout: field(76),
        chunk_size,
        raid_disks,
        size,
        data_offset,
        data_size,
        dev_number,
        role,
        roles,
        events: field64(200),
        recovery_offset,
        resync_offset: if resync == u64::MAX {
            u64::MAX
        } else {
            resync.saturating_mul(512)
        },
        feature_map,
    }))
}

/// Parse a 0.90 superblock from `b` (4096 bytes read at byte `at` of the
/// device), in whichever byte order its magic says.
pub fn parse_090(b: &[u8], at: u64) -> Found {
    let big_endian = if le::u32(b, 0) == Some(MD_MAGIC) {
        false
    } else if be::u32(b, 0) == Some(MD_MAGIC) {
        true
    } else {
        return Found::None;
    };
    let damaged = |detail: String| Found::Damaged { at, detail };
    let word = |i: usize| -> u32 {
        let off = i.saturating_mul(4);
        if big_endian {
            be::u32(b, off).unwrap_or(0)
        } else {
            le::u32(b, off).unwrap_or(0)
        }
    };
    let major = word(1);
    let minor = word(2);
    if major != 0 {
        return damaged(format!("MD superblock 0.90: major version {major}, not 0"));
    }
    let mut sum: u64 = 0;
    for i in 0..SB_090_BYTES / 4 {
        if i != 38 {
            sum = sum.wrapping_add(u64::from(word(i)));
        }
    }
    // blkid's byte order: each word as a big-endian number.
    let mut uuid = [0u8; 16];
    let uuid_words = if minor >= 90 {
        [word(5), word(13), word(14), word(15)]
    } else {
        [word(5), 0, 0, 0]
    };
    for (dst, w) in uuid.chunks_exact_mut(4).zip(uuid_words) {
        dst.copy_from_slice(&w.to_be_bytes());
    }
    let raid_disks = word(10);
    if raid_disks > MAX_DISKS_090 {
        return damaged(format!(
            "MD superblock 0.90: raid_disks {raid_disks} (a 0.90 superblock describes {MAX_DISKS_090} at most)"
        ));
    }
    let (events_hi, events_lo) = if big_endian {
        (word(39), word(40))
    } else {
        (word(40), word(39))
    };
    let descriptor = |base: usize| -> (u32, u32, u32) {
        // number, raid_disk, state
        (
            word(base),
            word(base.saturating_add(3)),
            word(base.saturating_add(4)),
        )
    };
    let roles: Vec<Role> = (0..MAX_DISKS_090 as usize)
        .map(|i| {
            let (_, raid_disk, state) = descriptor(128usize.saturating_add(i.saturating_mul(32)));
            Role::from_090(raid_disk, state, raid_disks)
        })
        .collect();
    let (dev_number, raid_disk, state) = descriptor(992);
    let data_size = at;
    let size = u64::from(word(8)).saturating_mul(1024);
    Found::Superblock(Box::new(Superblock {
        version: Version::V090 { big_endian },
        at,
        csum_stored: word(38),
        csum_computed: fold(sum),
        uuid,
        name: None,
        md_minor: Some(word(11)),
        level: i32::from_le_bytes(word(7).to_le_bytes()),
        layout: word(64),
        chunk_size: u64::from(word(65)),
        raid_disks,
        size,
        data_offset: 0,
        data_size,
        dev_number,
        role: Role::from_090(raid_disk, state, raid_disks),
        roles,
        events: (u64::from(events_hi) << 32) | u64::from(events_lo),
        recovery_offset: None,
        resync_offset: if word(33) & 1 != 0 {
            u64::MAX
        } else {
            u64::from(word(43)).saturating_mul(512)
        },
        feature_map: 0,
    }))
}

/// Test helpers: superblocks made field by field, with a right checksum.
#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
pub(crate) mod build {
    use super::MD_MAGIC;

    /// The fields of a 1.x superblock a test sets.
    #[derive(Debug, Clone)]
    pub(crate) struct V1 {
        /// 0, 1 or 2.
        pub minor: u8,
        /// Where it is written (bytes): `super_offset` says so.
        pub at: u64,
        /// Array UUID.
        pub uuid: [u8; 16],
        /// `set_name`.
        pub name: String,
        /// Level.
        pub level: i32,
        /// Layout.
        pub layout: u32,
        /// Chunk (sectors).
        pub chunk_sectors: u32,
        /// raid_disks.
        pub raid_disks: u32,
        /// size (sectors).
        pub size: u64,
        /// data_offset (sectors).
        pub data_offset: u64,
        /// data_size (sectors).
        pub data_size: u64,
        /// dev_number.
        pub dev_number: u32,
        /// dev_roles.
        pub roles: Vec<u16>,
        /// events.
        pub events: u64,
        /// feature_map.
        pub feature_map: u32,
    }

    impl V1 {
        /// The 4096 bytes of the superblock, checksum set.
        pub(crate) fn bytes(&self) -> Vec<u8> {
            let mut b = vec![0u8; 4096];
            let put32 = |b: &mut Vec<u8>, off: usize, v: u32| {
                if let Some(d) = b.get_mut(off..off + 4) {
                    d.copy_from_slice(&v.to_le_bytes());
                }
            };
            let put64 = |b: &mut Vec<u8>, off: usize, v: u64| {
                if let Some(d) = b.get_mut(off..off + 8) {
                    d.copy_from_slice(&v.to_le_bytes());
                }
            };
            put32(&mut b, 0, MD_MAGIC);
            put32(&mut b, 4, 1);
            put32(&mut b, 8, self.feature_map);
            b[16..32].copy_from_slice(&self.uuid);
            let n = self.name.as_bytes();
            let n = &n[..n.len().min(32)];
            b[32..32 + n.len()].copy_from_slice(n);
            put32(&mut b, 72, u32::from_le_bytes(self.level.to_le_bytes()));
            put32(&mut b, 76, self.layout);
            put64(&mut b, 80, self.size);
            put32(&mut b, 88, self.chunk_sectors);
            put32(&mut b, 92, self.raid_disks);
            put64(&mut b, 128, self.data_offset);
            put64(&mut b, 136, self.data_size);
            put64(&mut b, 144, self.at >> 9);
            put32(&mut b, 160, self.dev_number);
            put64(&mut b, 200, self.events);
            put64(&mut b, 208, u64::MAX);
            let max_dev = self.roles.len().min(1920);
            put32(&mut b, 220, max_dev as u32);
            for (i, r) in self.roles.iter().take(max_dev).enumerate() {
                b[256 + 2 * i..258 + 2 * i].copy_from_slice(&r.to_le_bytes());
            }
            let csum = match super::parse_v1(&b, self.at, self.minor) {
                super::Found::Superblock(sb) => sb.csum_computed,
                _ => 0,
            };
            put32(&mut b, 216, csum);
            b
        }
    }

    /// A 0.90 superblock: (level, raid_disks, size KiB, minor, this
    /// device's number and raid_disk, events), in the byte order asked.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn v090(
        big_endian: bool,
        uuid_words: [u32; 4],
        level: i32,
        raid_disks: u32,
        size_kib: u32,
        md_minor: u32,
        this: u32,
        events: u64,
    ) -> Vec<u8> {
        let mut w = vec![0u32; 1024];
        w[0] = MD_MAGIC;
        w[2] = 90;
        w[5] = uuid_words[0];
        w[7] = u32::from_le_bytes(level.to_le_bytes());
        w[8] = size_kib;
        w[9] = raid_disks;
        w[10] = raid_disks;
        w[11] = md_minor;
        w[13] = uuid_words[1];
        w[14] = uuid_words[2];
        w[15] = uuid_words[3];
        w[33] = 1; // clean
        let (lo, hi) = (events as u32, (events >> 32) as u32);
        if big_endian {
            w[39] = hi;
            w[40] = lo;
        } else {
            w[39] = lo;
            w[40] = hi;
        }
        w[65] = 64 * 1024;
        for i in 0..raid_disks.min(27) as usize {
            let d = 128 + 32 * i;
            w[d] = i as u32;
            w[d + 3] = i as u32;
            w[d + 4] = 0b110; // active, sync
        }
        w[992] = this;
        w[992 + 3] = this;
        w[992 + 4] = 0b110;
        let mut sum: u64 = 0;
        for x in &w {
            sum += u64::from(*x);
        }
        w[38] = super::fold(sum);
        w.iter()
            .flat_map(|x| {
                if big_endian {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                }
            })
            .collect()
    }
}
