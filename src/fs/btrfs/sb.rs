//! The btrfs superblock, its mirrors, and the chunk map (logical to
//! physical addresses) from the `sys_chunk_array` and the chunk tree.
//!
//! Every btrfs structure is little-endian.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::csum::{self, CsumType};
use crate::error::{Error, Result};
use crate::io::{ReadAt, le};

/// `_BHRfS_M`.
pub const MAGIC: &[u8; 8] = b"_BHRfS_M";
/// Where the primary superblock lives.
pub const PRIMARY: u64 = 0x1_0000;
/// The superblock copies: 64 KiB, 64 MiB, 256 GiB.
pub const MIRRORS: [u64; 3] = [PRIMARY, 0x400_0000, 0x40_0000_0000];
/// Bytes of a superblock.
pub const SB_LEN: usize = 4096;
/// Offset of `sys_chunk_array`.
const SYS_CHUNK_ARRAY: usize = 0x32b;
/// Its size.
const SYS_CHUNK_ARRAY_MAX: usize = 2048;
/// Bytes of a disk key.
pub const KEY_LEN: usize = 17;
/// Bytes of a chunk item without its stripes.
pub const CHUNK_LEN: usize = 48;
/// Bytes of one stripe of a chunk item.
pub const STRIPE_LEN: usize = 32;
/// Most chunks a filesystem may have.
const MAX_CHUNKS: usize = 1 << 20;

/// `incompat_flags` bits.
pub mod incompat {
    /// `metadata_uuid` stamps the tree blocks instead of `fsid`.
    pub const METADATA_UUID: u64 = 1 << 10;
    /// RAID5/6 profiles in use.
    pub const RAID56: u64 = 1 << 7;
    /// Extent tree v2.
    pub const EXTENT_TREE_V2: u64 = 1 << 13;
}

/// Block group profile bits of a chunk's `type`.
pub mod bg {
    /// Data.
    pub const DATA: u64 = 1;
    /// System (the chunk tree).
    pub const SYSTEM: u64 = 2;
    /// Metadata.
    pub const METADATA: u64 = 4;
    /// RAID0.
    pub const RAID0: u64 = 1 << 3;
    /// RAID1.
    pub const RAID1: u64 = 1 << 4;
    /// DUP.
    pub const DUP: u64 = 1 << 5;
    /// RAID10.
    pub const RAID10: u64 = 1 << 6;
    /// RAID5.
    pub const RAID5: u64 = 1 << 7;
    /// RAID6.
    pub const RAID6: u64 = 1 << 8;
    /// RAID1C3.
    pub const RAID1C3: u64 = 1 << 9;
    /// RAID1C4.
    pub const RAID1C4: u64 = 1 << 10;
}

/// A btrfs key: (objectid, type, offset), ordered in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key {
    /// Object id.
    pub objectid: u64,
    /// Item type.
    pub ty: u8,
    /// Offset (meaning depends on the type).
    pub offset: u64,
}

impl Key {
    /// A key.
    pub const fn new(objectid: u64, ty: u8, offset: u64) -> Key {
        Key {
            objectid,
            ty,
            offset,
        }
    }

    /// A disk key at `off` of `b`.
    pub fn parse(b: &[u8], off: usize) -> Option<Key> {
        Some(Key {
            objectid: le::u64(b, off)?,
            ty: *b.get(off.checked_add(8)?)?,
            offset: le::u64(b, off.checked_add(9)?)?,
        })
    }
}

/// The superblock fields vmrescue uses.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// Where it was read.
    pub pos: u64,
    /// The filesystem UUID.
    pub fsid: [u8; 16],
    /// The UUID stamped into tree blocks (`metadata_uuid` or `fsid`).
    pub meta_fsid: [u8; 16],
    /// Transaction generation.
    pub generation: u64,
    /// Logical address of the root tree.
    pub root: u64,
    /// Logical address of the chunk tree.
    pub chunk_root: u64,
    /// Logical address of the log tree (0: none).
    pub log_root: u64,
    /// Size of the filesystem.
    pub total_bytes: u64,
    /// Bytes in use.
    pub bytes_used: u64,
    /// Devices of the filesystem.
    pub num_devices: u64,
    /// Data block size.
    pub sectorsize: u32,
    /// Tree block size.
    pub nodesize: u32,
    /// Incompatible feature flags.
    pub incompat: u64,
    /// Checksum kind.
    pub csum_type: CsumType,
    /// Levels of the root and chunk trees.
    pub root_level: u8,
    /// Level of the chunk tree root.
    pub chunk_root_level: u8,
    /// This device's id.
    pub devid: u64,
    /// This device's UUID.
    pub dev_uuid: [u8; 16],
    /// Label bytes (up to the first NUL).
    pub label: Vec<u8>,
    /// The raw `sys_chunk_array`.
    pub sys_chunks: Vec<u8>,
}

fn uuid_at(b: &[u8], off: usize) -> [u8; 16] {
    let mut u = [0u8; 16];
    if let Some(s) = off.checked_add(16).and_then(|e| b.get(off..e)) {
        u.copy_from_slice(s);
    }
    u
}

/// A UUID as text.
pub fn uuid_string(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h.get(..4).unwrap_or(&[]).concat(),
        h.get(4..6).unwrap_or(&[]).concat(),
        h.get(6..8).unwrap_or(&[]).concat(),
        h.get(8..10).unwrap_or(&[]).concat(),
        h.get(10..).unwrap_or(&[]).concat()
    )
}

/// Why a metadata block's checksum is wrong, if it is (`None` also when the
/// kind cannot be computed here).
pub fn csum_mismatch(kind: CsumType, block: &[u8]) -> Option<String> {
    let body = block.get(0x20..)?;
    let want = csum::checksum(kind, body);
    if want.is_empty() {
        return None;
    }
    let stored = block.get(..want.len())?;
    (stored != want.as_slice()).then(|| {
        format!(
            "bad {} checksum (stored {}, computed {})",
            kind.name(),
            hex(stored),
            hex(&want)
        )
    })
}

/// Bytes as hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Superblock {
    /// Decode and check the superblock in `b` (4096 bytes read at `pos`).
    pub fn parse(b: &[u8], pos: u64) -> Result<Superblock> {
        let what = "btrfs superblock";
        let bad = |d: String| Error::corrupt(what, pos, d);
        if b.len() < SB_LEN || b.get(0x40..0x48) != Some(MAGIC.as_slice()) {
            return Err(bad("no btrfs magic _BHRfS_M".into()));
        }
        let u64_at = |o: usize| le::u64(b, o).unwrap_or(0);
        let u32_at = |o: usize| le::u32(b, o).unwrap_or(0);
        let csum_raw = le::u16(b, 0xc4).unwrap_or(u16::MAX);
        let csum_type = CsumType::from_disk(csum_raw)
            .ok_or_else(|| bad(format!("unknown checksum type {csum_raw}")))?;
        let block = b.get(..SB_LEN).unwrap_or(&[]);
        if let Some(m) = csum_mismatch(csum_type, block) {
            return Err(bad(m));
        }
        let bytenr = u64_at(0x30);
        if bytenr != pos {
            return Err(bad(format!("it says it lives at byte {bytenr}")));
        }
        let sectorsize = u32_at(0x90);
        let nodesize = u32_at(0x94);
        if !sectorsize.is_power_of_two() || !(4096..=65536).contains(&sectorsize) {
            return Err(bad(format!("sector size {sectorsize}")));
        }
        if !nodesize.is_power_of_two() || !(sectorsize..=65536).contains(&nodesize) {
            return Err(bad(format!("node size {nodesize}")));
        }
        let incompat = u64_at(0xbc);
        let fsid = uuid_at(b, 0x20);
        let meta_fsid = if incompat & incompat::METADATA_UUID != 0 {
            uuid_at(b, 0x23b)
        } else {
            fsid
        };
        let n = usize::try_from(u32_at(0xa0)).unwrap_or(usize::MAX);
        if n > SYS_CHUNK_ARRAY_MAX {
            return Err(bad(format!("sys_chunk_array_size {n} (at most 2048)")));
        }
        let sys_chunks = SYS_CHUNK_ARRAY
            .checked_add(n)
            .and_then(|e| b.get(SYS_CHUNK_ARRAY..e))
            .unwrap_or(&[])
            .to_vec();
        let label_raw = b.get(0x12b..0x22b).unwrap_or(&[]);
        let label_len = label_raw
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(label_raw.len());
        Ok(Superblock {
            pos,
            fsid,
            meta_fsid,
            generation: u64_at(0x48),
            root: u64_at(0x50),
            chunk_root: u64_at(0x58),
            log_root: u64_at(0x60),
            total_bytes: u64_at(0x70),
            bytes_used: u64_at(0x78),
            num_devices: u64_at(0x88),
            sectorsize,
            nodesize,
            incompat,
            csum_type,
            root_level: b.get(0xc6).copied().unwrap_or(0),
            chunk_root_level: b.get(0xc7).copied().unwrap_or(0),
            devid: u64_at(0xc9),
            dev_uuid: uuid_at(b, 0x10b),
            label: label_raw.get(..label_len).unwrap_or(&[]).to_vec(),
            sys_chunks,
        })
    }
}

/// Read the primary superblock, or the newest good mirror when it is
/// damaged; the problems found with the copies come back beside it.
pub fn read(src: &dyn ReadAt) -> Result<(Superblock, Vec<crate::problem::Problem>)> {
    let mut problems = Vec::new();
    let mut best: Option<Superblock> = None;
    let mut first_err = None;
    for (i, pos) in MIRRORS.into_iter().enumerate() {
        let end = pos.saturating_add(SB_LEN as u64);
        if end > src.size() {
            continue;
        }
        let mut buf = vec![0u8; SB_LEN];
        let got = src
            .read_exact_at(pos, &mut buf)
            .map_err(|e| Error::io(format!("btrfs superblock at byte {pos}"), e))
            .and_then(|()| Superblock::parse(&buf, pos));
        match got {
            Ok(sb) => {
                if i == 0 {
                    return Ok((sb, problems));
                }
                if best.as_ref().is_none_or(|b| sb.generation > b.generation) {
                    best = Some(sb);
                }
            }
            Err(e) => {
                if i == 0 {
                    problems.push(crate::problem::Problem::at(
                        "btrfs primary superblock",
                        pos,
                        format!("{e}; a mirror copy is used"),
                    ));
                }
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    match best {
        Some(sb) => Ok((sb, problems)),
        None => Err(first_err.unwrap_or_else(|| {
            Error::corrupt(
                "btrfs superblock",
                PRIMARY,
                "the volume is too small to hold one",
            )
        })),
    }
}

/// One stripe of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe {
    /// Device id.
    pub devid: u64,
    /// Byte offset on that device.
    pub offset: u64,
    /// Device UUID.
    pub dev_uuid: [u8; 16],
}

/// A chunk: a logical range and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// First logical byte.
    pub logical: u64,
    /// Length in bytes.
    pub length: u64,
    /// Stripe length (RAID0/10).
    pub stripe_len: u64,
    /// Block group type and profile bits.
    pub ty: u64,
    /// Stripes.
    pub stripes: Vec<Stripe>,
    /// Stripes per mirror set (RAID10).
    pub sub_stripes: u16,
}

/// A chunk item at `off` of `b` (the key says its logical start).
pub fn parse_chunk(b: &[u8], off: usize, logical: u64, pos: u64) -> Result<(Chunk, usize)> {
    let bad = |d: String| Error::corrupt("btrfs chunk item", pos, d);
    let f = |o: usize| off.checked_add(o).and_then(|x| le::u64(b, x));
    let length = f(0).ok_or_else(|| bad("truncated".into()))?;
    let stripe_len = f(16).unwrap_or(0);
    let ty = f(24).unwrap_or(0);
    let num = off
        .checked_add(44)
        .and_then(|x| le::u16(b, x))
        .ok_or_else(|| bad("truncated".into()))?;
    let sub = off.checked_add(46).and_then(|x| le::u16(b, x)).unwrap_or(0);
    if num == 0 || length == 0 {
        return Err(bad(format!(
            "chunk at logical {logical}: {num} stripes, {length} bytes"
        )));
    }
    let mut stripes = Vec::with_capacity(usize::from(num));
    let mut at = off
        .checked_add(CHUNK_LEN)
        .ok_or_else(|| bad("overflow".into()))?;
    for _ in 0..num {
        let devid = le::u64(b, at).ok_or_else(|| bad("stripes truncated".into()))?;
        let offset = at
            .checked_add(8)
            .and_then(|x| le::u64(b, x))
            .ok_or_else(|| bad("stripes truncated".into()))?;
        let dev_uuid = uuid_at(b, at.saturating_add(16));
        stripes.push(Stripe {
            devid,
            offset,
            dev_uuid,
        });
        at = at.saturating_add(STRIPE_LEN);
    }
    let used = at.saturating_sub(off);
    Ok((
        Chunk {
            logical,
            length,
            stripe_len,
            ty,
            stripes,
            sub_stripes: sub,
        },
        used,
    ))
}

/// One physical place holding a piece of a logical range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The device (`devid`) holding it.
    pub devid: u64,
    /// Byte offset on that device.
    pub physical: u64,
    /// Bytes there that are contiguous (at most the asked length).
    pub len: u64,
}

/// The logical-to-physical map of the filesystem, and which of its
/// devices are opened.
#[derive(Debug, Clone, Default)]
pub struct ChunkMap {
    chunks: Vec<Chunk>,
    /// The devices that can be read, sorted.
    devs: Vec<u64>,
}

/// The profile's name, for messages.
pub fn profile_name(ty: u64) -> &'static str {
    if ty & bg::RAID0 != 0 {
        "RAID0"
    } else if ty & bg::RAID1 != 0 {
        "RAID1"
    } else if ty & bg::DUP != 0 {
        "DUP"
    } else if ty & bg::RAID10 != 0 {
        "RAID10"
    } else if ty & bg::RAID5 != 0 {
        "RAID5"
    } else if ty & bg::RAID6 != 0 {
        "RAID6"
    } else if ty & bg::RAID1C3 != 0 {
        "RAID1C3"
    } else if ty & bg::RAID1C4 != 0 {
        "RAID1C4"
    } else {
        "SINGLE"
    }
}

/// What a chunk holds, for messages.
pub fn content_name(ty: u64) -> &'static str {
    if ty & bg::DATA != 0 && ty & bg::METADATA != 0 {
        "mixed data+metadata"
    } else if ty & bg::DATA != 0 {
        "data"
    } else if ty & bg::SYSTEM != 0 {
        "system"
    } else {
        "metadata"
    }
}

/// A RAID6 row as [`ChunkMap::raid6_row`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raid6Row {
    /// Data stripes per row.
    pub data: u64,
    /// Data index of the bytes asked.
    pub index: u64,
    /// Bytes of the piece.
    pub run: u64,
    /// The stripes on opened devices: (index, place); P is `data`, Q `data + 1`.
    pub present: Vec<(u64, Place)>,
}

/// Most stripes a chunk may have (the kernel's limit is bounded by the
/// item size: a 64 KiB node holds fewer than 2048).
const MAX_STRIPES: usize = 2048;

/// Where one piece of a logical range lies in a RAID5/6 chunk: the row
/// (full stripe), the data stripe index in it and the stripe geometry.
#[derive(Debug, Clone, Copy)]
struct Raid56 {
    /// Stripes of the chunk.
    n: u64,
    /// Data stripes per row.
    data: u64,
    /// Row number.
    row: u64,
    /// Data stripe index within the row.
    index: u64,
    /// Byte offset on each device of this piece (from the stripe start).
    dev_off: u64,
    /// Bytes of this piece.
    run: u64,
}

impl ChunkMap {
    /// An empty map where device `devid` is opened.
    pub fn new(devid: u64) -> ChunkMap {
        ChunkMap {
            chunks: Vec::new(),
            devs: vec![devid],
        }
    }

    /// Mark device `devid` as opened too.
    pub fn add_device(&mut self, devid: u64) {
        if let Err(i) = self.devs.binary_search(&devid) {
            self.devs.insert(i, devid);
        }
    }

    /// Whether device `devid` is opened.
    pub fn has_device(&self, devid: u64) -> bool {
        self.devs.binary_search(&devid).is_ok()
    }

    /// The opened devices.
    pub fn devices(&self) -> &[u64] {
        &self.devs
    }

    /// Add (or replace) a chunk.
    pub fn insert(&mut self, c: Chunk) -> Result<()> {
        if c.stripes.len() > MAX_STRIPES {
            return Err(Error::corrupt(
                "btrfs chunk item",
                c.logical,
                format!("{} stripes (at most {MAX_STRIPES})", c.stripes.len()),
            ));
        }
        match self.chunks.binary_search_by_key(&c.logical, |x| x.logical) {
            Ok(i) => {
                if let Some(slot) = self.chunks.get_mut(i) {
                    *slot = c;
                }
            }
            Err(i) => {
                if self.chunks.len() >= MAX_CHUNKS {
                    return Err(Error::corrupt(
                        "btrfs chunk tree",
                        c.logical,
                        "more than a million chunks",
                    ));
                }
                self.chunks.insert(i, c);
            }
        }
        Ok(())
    }

    /// Every chunk.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Load the chunks of the superblock's `sys_chunk_array`.
    pub fn load_sys_array(&mut self, sb: &Superblock) -> Result<()> {
        let b = &sb.sys_chunks;
        let mut off = 0usize;
        let pos = sb.pos.saturating_add(SYS_CHUNK_ARRAY as u64);
        while off < b.len() {
            let key = Key::parse(b, off).ok_or_else(|| {
                Error::corrupt(
                    "btrfs sys_chunk_array",
                    pos,
                    format!("key truncated at {off}"),
                )
            })?;
            if key.ty != super::item::ty::CHUNK_ITEM {
                return Err(Error::corrupt(
                    "btrfs sys_chunk_array",
                    pos,
                    format!("item type {} at {off} (a chunk item is 228)", key.ty),
                ));
            }
            let at = off.saturating_add(KEY_LEN);
            let (c, used) = parse_chunk(b, at, key.offset, pos)?;
            self.insert(c)?;
            off = at.saturating_add(used);
        }
        if self.chunks.is_empty() {
            return Err(Error::corrupt(
                "btrfs sys_chunk_array",
                pos,
                "holds no chunk: the chunk tree cannot be found",
            ));
        }
        Ok(())
    }

    fn find(&self, logical: u64) -> Result<&Chunk> {
        let i = self.chunks.partition_point(|c| c.logical <= logical);
        i.checked_sub(1)
            .and_then(|j| self.chunks.get(j))
            .filter(|c| logical.checked_sub(c.logical).is_some_and(|o| o < c.length))
            .ok_or_else(|| {
                Error::corrupt(
                    "btrfs chunk map",
                    logical,
                    "no chunk maps this logical address",
                )
            })
    }

    fn dev_name(s: &Stripe) -> String {
        format!("devid {} (UUID {})", s.devid, uuid_string(&s.dev_uuid))
    }

    /// The geometry of `off` (bytes into RAID5/6 chunk `c`), at most `left` bytes.
    fn raid56(c: &Chunk, off: u64, left: u64) -> Result<Raid56> {
        let bad = |d: String| Error::corrupt("btrfs chunk", c.logical, d);
        let n = u64::try_from(c.stripes.len()).unwrap_or(0);
        let parity = if c.ty & bg::RAID6 != 0 { 2 } else { 1 };
        let data = n
            .checked_sub(parity)
            .filter(|&d| d > 0)
            .ok_or_else(|| bad(format!("{} with {n} stripes", profile_name(c.ty))))?;
        let sl = c.stripe_len;
        if sl == 0 {
            return Err(bad("stripe length 0".into()));
        }
        let stripe_nr = off.checked_div(sl).unwrap_or(0);
        let in_stripe = off.checked_rem(sl).unwrap_or(0);
        let row = stripe_nr.checked_div(data).unwrap_or(0);
        let index = stripe_nr.checked_rem(data).unwrap_or(0);
        Ok(Raid56 {
            n,
            data,
            row,
            index,
            dev_off: row.saturating_mul(sl).saturating_add(in_stripe),
            run: sl.saturating_sub(in_stripe).min(left),
        })
    }

    /// The stripe of the chunk holding data stripe `index` (or parity when
    /// `index >= data`) of `row`: parity rotates one device per row.
    fn raid56_stripe(c: &Chunk, g: Raid56, index: u64) -> Option<&Stripe> {
        let i = g.row.checked_add(index)?.checked_rem(g.n)?;
        c.stripes.get(usize::try_from(i).ok()?)
    }

    /// The copies of the logical bytes `[logical, logical+len)` that lie on
    /// opened devices: each a place of at most `len` bytes (shorter at a
    /// stripe or chunk end). An error says why none can be read (and names
    /// the devices that would hold them).
    pub fn map(&self, logical: u64, len: u64) -> Result<Vec<Place>> {
        let c = self.find(logical)?;
        let what = "btrfs chunk";
        let off = logical.saturating_sub(c.logical);
        let left = c.length.saturating_sub(off).min(len);
        let n = u64::try_from(c.stripes.len()).unwrap_or(0);
        let mut candidates: Vec<(&Stripe, u64, u64)> = Vec::new();
        if c.ty & (bg::RAID5 | bg::RAID6) != 0 {
            let g = Self::raid56(c, off, left)?;
            if let Some(s) = Self::raid56_stripe(c, g, g.index) {
                candidates.push((s, g.dev_off, g.run));
            }
        } else if c.ty & (bg::RAID0 | bg::RAID10) != 0 {
            let sl = c.stripe_len;
            if sl == 0 || n == 0 {
                return Err(Error::corrupt(what, c.logical, "stripe length 0"));
            }
            let sub = if c.ty & bg::RAID10 != 0 {
                u64::from(c.sub_stripes.max(1))
            } else {
                1
            };
            let factor = n.checked_div(sub).filter(|&f| f > 0).ok_or_else(|| {
                Error::corrupt(what, c.logical, format!("{n} stripes, {sub} sub-stripes"))
            })?;
            let stripe_nr = off.checked_div(sl).unwrap_or(0);
            let in_stripe = off.checked_rem(sl).unwrap_or(0);
            let run = sl.saturating_sub(in_stripe).min(left);
            let first = stripe_nr
                .checked_rem(factor)
                .unwrap_or(0)
                .saturating_mul(sub);
            let dev_off = stripe_nr
                .checked_div(factor)
                .unwrap_or(0)
                .saturating_mul(sl)
                .saturating_add(in_stripe);
            for m in 0..sub {
                let idx = usize::try_from(first.saturating_add(m)).unwrap_or(usize::MAX);
                if let Some(s) = c.stripes.get(idx) {
                    candidates.push((s, dev_off, run));
                }
            }
        } else {
            for s in &c.stripes {
                candidates.push((s, off, left));
            }
        }
        let mut places = Vec::new();
        let mut missing = Vec::new();
        for (s, dev_off, run) in candidates {
            if self.has_device(s.devid) {
                places.push(Place {
                    devid: s.devid,
                    physical: s.offset.saturating_add(dev_off),
                    len: run,
                });
            } else {
                missing.push(Self::dev_name(s));
            }
        }
        if places.is_empty() {
            return Err(Error::io(
                format!(
                    "btrfs logical byte {logical} ({} {} chunk at {})",
                    profile_name(c.ty),
                    content_name(c.ty),
                    c.logical
                ),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "it is stored on {}, a device of this filesystem that was not found",
                        if missing.is_empty() {
                            "no device".to_string()
                        } else {
                            missing.join(", ")
                        }
                    ),
                ),
            ));
        }
        Ok(places)
    }

    /// For logical bytes of a RAID5/6 chunk whose data stripe lies on a
    /// device that is not opened: the places whose XOR gives them back (the
    /// other data stripes of the row and the P parity), each `len` bytes at
    /// most. `None` when the chunk is not RAID5/6 or the data device is
    /// opened (unless `force`: then the sources even so, to check a bad
    /// copy against); an error names the devices when more than one is
    /// missing.
    pub fn rebuild_sources(
        &self,
        logical: u64,
        len: u64,
        force: bool,
    ) -> Result<Option<Vec<Place>>> {
        let c = self.find(logical)?;
        if c.ty & (bg::RAID5 | bg::RAID6) == 0 {
            return Ok(None);
        }
        let off = logical.saturating_sub(c.logical);
        let left = c.length.saturating_sub(off).min(len);
        let g = Self::raid56(c, off, left)?;
        let target = Self::raid56_stripe(c, g, g.index)
            .ok_or_else(|| Error::corrupt("btrfs chunk", c.logical, "stripe out of range"))?;
        if self.has_device(target.devid) && !force {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut missing = vec![Self::dev_name(target)];
        // Data stripes 0..data, then P (index data).
        for i in 0..=g.data {
            if i == g.index {
                continue;
            }
            let s = Self::raid56_stripe(c, g, i)
                .ok_or_else(|| Error::corrupt("btrfs chunk", c.logical, "stripe out of range"))?;
            if self.has_device(s.devid) {
                out.push(Place {
                    devid: s.devid,
                    physical: s.offset.saturating_add(g.dev_off),
                    len: g.run,
                });
            } else {
                missing.push(Self::dev_name(s));
            }
        }
        if missing.len() > 1 {
            return Err(Error::io(
                format!(
                    "btrfs logical byte {logical} ({} chunk at {})",
                    profile_name(c.ty),
                    c.logical
                ),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{} are not found: too many stripes of this row are missing to rebuild it",
                        missing.join(", ")
                    ),
                ),
            ));
        }
        Ok(Some(out))
    }

    /// For logical bytes of a RAID6 chunk: every stripe of their row that
    /// lies on an opened device, as (index, place) with data stripes
    /// `0..data`, P at `data` and Q at `data + 1`, and the data index of
    /// the bytes asked. `None` when the chunk is not RAID6.
    pub fn raid6_row(&self, logical: u64, len: u64) -> Result<Option<Raid6Row>> {
        let c = self.find(logical)?;
        if c.ty & bg::RAID6 == 0 {
            return Ok(None);
        }
        let off = logical.saturating_sub(c.logical);
        let left = c.length.saturating_sub(off).min(len);
        let g = Self::raid56(c, off, left)?;
        let mut present = Vec::new();
        for i in 0..g.data.saturating_add(2) {
            let s = Self::raid56_stripe(c, g, i)
                .ok_or_else(|| Error::corrupt("btrfs chunk", c.logical, "stripe out of range"))?;
            if self.has_device(s.devid) {
                present.push((
                    i,
                    Place {
                        devid: s.devid,
                        physical: s.offset.saturating_add(g.dev_off),
                        len: g.run,
                    },
                ));
            }
        }
        Ok(Some(Raid6Row {
            data: g.data,
            index: g.index,
            run: g.run,
            present,
        }))
    }

    /// The devices the chunks name that are not opened, with what their
    /// absence costs: one line per missing device.
    pub fn missing_report(&self, names: &dyn Fn(u64) -> Option<[u8; 16]>) -> Vec<String> {
        let mut missing: Vec<(u64, [u8; 16])> = Vec::new();
        for c in &self.chunks {
            for s in &c.stripes {
                if !self.has_device(s.devid) && !missing.iter().any(|(d, _)| *d == s.devid) {
                    if missing.len() >= 64 {
                        break;
                    }
                    missing.push((s.devid, names(s.devid).unwrap_or(s.dev_uuid)));
                }
            }
        }
        missing.sort_unstable();
        let mut out = Vec::new();
        for (devid, uuid) in missing {
            // (profile, content, readable?) once each.
            let mut kinds: Vec<(&'static str, &'static str, bool)> = Vec::new();
            for c in &self.chunks {
                if !c.stripes.iter().any(|s| s.devid == devid) {
                    continue;
                }
                let k = (profile_name(c.ty), content_name(c.ty), self.readable(c));
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
            let lost: Vec<String> = kinds
                .iter()
                .filter(|k| !k.2)
                .map(|k| format!("{} {}", k.0, k.1))
                .collect();
            let kept = |raid56: bool| -> Vec<String> {
                kinds
                    .iter()
                    .filter(|k| k.2 && (k.0 == "RAID5" || k.0 == "RAID6") == raid56)
                    .map(|k| format!("{} {}", k.0, k.1))
                    .collect()
            };
            let mut line = format!(
                "btrfs device devid {devid} (UUID {}) was not found",
                uuid_string(&uuid)
            );
            let copies = kept(false);
            if !copies.is_empty() {
                line.push_str(&format!(
                    "; its {}: read from the other copies",
                    copies.join(", ")
                ));
            }
            let parity = kept(true);
            if !parity.is_empty() {
                line.push_str(&format!(
                    "; its {}: rebuilt from the parity",
                    parity.join(", ")
                ));
            }
            if !lost.is_empty() {
                line.push_str(&format!(
                    "; its {}: cannot be read (files stored there give an I/O error)",
                    lost.join(", ")
                ));
            }
            out.push(line);
        }
        out
    }

    /// Whether logical byte `logical` lies in a RAID5/6 chunk.
    pub fn is_raid56(&self, logical: u64) -> bool {
        self.find(logical)
            .is_ok_and(|c| c.ty & (bg::RAID5 | bg::RAID6) != 0)
    }

    /// Whether every byte of chunk `c` can be read from the opened devices
    /// (RAID5 and RAID6 with one device missing are rebuilt).
    fn readable(&self, c: &Chunk) -> bool {
        let absent = |s: &Stripe| !self.has_device(s.devid);
        let n_absent = c.stripes.iter().filter(|s| absent(s)).count();
        if c.ty & (bg::RAID1 | bg::RAID1C3 | bg::RAID1C4) != 0 {
            n_absent < c.stripes.len()
        } else if c.ty & bg::RAID6 != 0 {
            n_absent <= 2
        } else if c.ty & bg::RAID5 != 0 {
            n_absent <= 1
        } else if c.ty & bg::RAID10 != 0 {
            let sub = usize::from(c.sub_stripes.max(1));
            c.stripes.chunks(sub).all(|g| g.iter().any(|s| !absent(s)))
        } else {
            // SINGLE, DUP, RAID0.
            n_absent == 0
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;

    fn chunk(ty: u64, stripes: &[(u64, u64)], sub: u16) -> Chunk {
        Chunk {
            logical: 1 << 30,
            length: 1 << 30,
            stripe_len: 65536,
            ty,
            stripes: stripes
                .iter()
                .map(|&(devid, offset)| Stripe {
                    devid,
                    offset,
                    dev_uuid: [devid as u8; 16],
                })
                .collect(),
            sub_stripes: sub,
        }
    }

    fn map_of(c: Chunk) -> ChunkMap {
        let mut m = ChunkMap::new(1);
        m.insert(c).unwrap();
        m
    }

    #[test]
    fn dup_gives_both_copies() {
        let m = map_of(chunk(bg::METADATA | bg::DUP, &[(1, 1000), (1, 9000)], 0));
        let p = m.map((1 << 30) + 5, 100).unwrap();
        assert_eq!(
            p,
            [
                Place {
                    devid: 1,
                    physical: 1005,
                    len: 100
                },
                Place {
                    devid: 1,
                    physical: 9005,
                    len: 100
                }
            ]
        );
    }

    #[test]
    fn raid0_rotates_stripes() {
        let m = map_of(chunk(bg::DATA | bg::RAID0, &[(1, 0), (1, 1 << 40)], 0));
        // Stripe 3 (the second stripe's second row), 10 bytes in.
        let p = m.map((1 << 30) + 3 * 65536 + 10, 1 << 20).unwrap();
        assert_eq!(
            p,
            [Place {
                devid: 1,
                physical: (1 << 40) + 65536 + 10,
                len: 65536 - 10
            }]
        );
    }

    #[test]
    fn raid10_mirrors_within_a_pair_and_names_missing_devices() {
        let m = map_of(chunk(
            bg::DATA | bg::RAID10,
            &[(1, 0), (2, 0), (3, 0), (1, 1 << 40)],
            2,
        ));
        // Stripe 1 lives on the pair (3, 1@2^40): this device has one copy.
        let p = m.map((1 << 30) + 65536, 4096).unwrap();
        assert_eq!(
            p,
            [Place {
                devid: 1,
                physical: 1 << 40,
                len: 4096
            }]
        );
        let m = map_of(chunk(bg::DATA | bg::RAID1, &[(2, 0), (3, 0)], 0));
        let e = m.map(1 << 30, 1).unwrap_err().to_string();
        assert!(e.contains("devid 2") && e.contains("devid 3"), "{e}");
        let m = map_of(chunk(bg::DATA | bg::RAID5, &[(2, 0), (3, 0), (4, 0)], 0));
        let e = m.map(1 << 30, 1).unwrap_err().to_string();
        assert!(e.contains("RAID5") && e.contains("devid 2"), "{e}");
        assert!(m.map(5, 1).is_err());
    }

    #[test]
    fn raid5_rotates_parity_and_rebuilds_one_missing_device() {
        let mut m = ChunkMap::new(1);
        m.add_device(2);
        m.add_device(3);
        m.insert(chunk(
            bg::DATA | bg::RAID5,
            &[(1, 100), (2, 200), (3, 300)],
            0,
        ))
        .unwrap();
        let base = 1u64 << 30;
        let sl = 65536u64;
        // Row 0: data 0 on stripe 0, data 1 on stripe 1, P on stripe 2.
        let p = m.map(base + 10, 1 << 20).unwrap();
        assert_eq!(
            p,
            [Place {
                devid: 1,
                physical: 110,
                len: sl - 10
            }]
        );
        let p = m.map(base + sl, 1).unwrap();
        assert_eq!(p[0].devid, 2);
        // Row 1 (logical stripes 2, 3): data 0 on stripe 1, data 1 on stripe 2, P on 0.
        let p = m.map(base + 2 * sl + 5, 1).unwrap();
        assert_eq!(
            p,
            [Place {
                devid: 2,
                physical: 200 + sl + 5,
                len: 1
            }]
        );
        let p = m.map(base + 3 * sl, 1).unwrap();
        assert_eq!(
            p,
            [Place {
                devid: 3,
                physical: 300 + sl,
                len: 1
            }]
        );
        assert_eq!(m.rebuild_sources(base, 1, false).unwrap(), None);
        // Without device 2: row 1 data 0 comes from data 1 (devid 3) and P (devid 1).
        let mut m2 = ChunkMap::new(1);
        m2.add_device(3);
        m2.insert(m.chunks()[0].clone()).unwrap();
        assert!(m2.map(base + 2 * sl, 1).is_err());
        let src = m2
            .rebuild_sources(base + 2 * sl + 7, 100, false)
            .unwrap()
            .unwrap();
        assert_eq!(
            src,
            [
                Place {
                    devid: 3,
                    physical: 300 + sl + 7,
                    len: 100
                },
                Place {
                    devid: 1,
                    physical: 100 + sl + 7,
                    len: 100
                }
            ]
        );
        let r = m2.missing_report(&|_| None);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].contains("devid 2") && r[0].contains("RAID5 data: rebuilt from the parity"),
            "{r:?}"
        );
        // Two devices missing: an error naming both.
        let mut m3 = ChunkMap::new(1);
        m3.insert(m.chunks()[0].clone()).unwrap();
        let e = m3
            .rebuild_sources(base + 2 * sl, 1, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("devid 2") && e.contains("devid 3"), "{e}");
        assert!(m3.missing_report(&|_| None)[0].contains("cannot be read"));
    }

    #[test]
    fn raid6_places_p_and_q_after_the_data() {
        let mut m = ChunkMap::new(1);
        for d in 2..=4 {
            m.add_device(d);
        }
        m.insert(chunk(
            bg::DATA | bg::RAID6,
            &[(1, 0), (2, 0), (3, 0), (4, 0)],
            0,
        ))
        .unwrap();
        let base = 1u64 << 30;
        let sl = 65536u64;
        // Two data stripes a row; row 1 starts on stripe 1.
        assert_eq!(m.map(base + 2 * sl, 1).unwrap()[0].devid, 2);
        assert_eq!(m.map(base + 3 * sl, 1).unwrap()[0].devid, 3);
        // Row 3: data on stripes 3 and 0.
        assert_eq!(m.map(base + 6 * sl, 1).unwrap()[0].devid, 4);
        assert_eq!(m.map(base + 7 * sl, 1).unwrap()[0].devid, 1);
        // Absurd geometry: an error, no panic.
        let mut bad = chunk(bg::DATA | bg::RAID6, &[(1, 0), (2, 0)], 0);
        bad.logical = 0;
        let mut m4 = ChunkMap::new(1);
        m4.insert(bad).unwrap();
        assert!(m4.map(5, 1).is_err());
        let mut zero = chunk(bg::DATA | bg::RAID5, &[(1, 0), (2, 0)], 0);
        zero.stripe_len = 0;
        let mut m5 = ChunkMap::new(1);
        m5.insert(zero).unwrap();
        assert!(m5.map(1 << 30, 1).is_err());
        assert!(m5.rebuild_sources(1 << 30, 1, false).is_err());
    }

    #[test]
    fn name_hash_is_the_kernels() {
        // btrfs-progs: the `default` dir item of the root tree sits at this hash.
        assert_eq!(super::super::name_hash(b"default"), 0x8dbf_c2d2);
    }
}
