//! The one RAID reader: raid0, raid1, raid10, raid4/5/6 over legs that are
//! each a [`Mapping`] onto the disks, as Linux MD lays them out (LVM raid
//! LVs are MD arrays driven by dm-raid, so both use this).
//!
//! Data, parity and Q placement follow MD's `raid5_compute_sector`
//! (`drivers/md/raid5.c`) for every algorithm, raid10's near/far/offset
//! copies follow `raid10_find_phys` (`drivers/md/raid10.c`). A leg that is
//! missing or stale is never read: raid1/raid10 read another copy,
//! raid4/5 rebuild the chunk from the other legs and parity, raid6 from
//! P and Q (GF(2⁸), polynomial 0x11d, generator 2) with up to two legs
//! gone. A leg whose read fails is treated as missing for that read.
//!
//! Reads go a chunk piece at a time (at most [`MAX_PIECE`] bytes, one
//! buffer per leg while rebuilding), so nothing grows with the volume.

use std::sync::Arc;

use super::mapped::read_mapping;
use super::{Mapping, ReadAt, past_end};

/// Most bytes read from one leg in one step.
pub const MAX_PIECE: u64 = 256 * 1024;

/// Most legs in one array (MD's raid6 syndrome needs fewer than 256 slots;
/// dm-raid allows 253).
pub const MAX_LEGS: usize = 255;

/// Where parity (and Q) go in a raid4/5/6 array: MD's `ALGORITHM_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParityLayout {
    /// `ALGORITHM_LEFT_ASYMMETRIC` (0): parity rotates from the last leg down, data in leg order.
    LeftAsymmetric,
    /// `ALGORITHM_RIGHT_ASYMMETRIC` (1): parity rotates from leg 0 up, data in leg order.
    RightAsymmetric,
    /// `ALGORITHM_LEFT_SYMMETRIC` (2, MD's default): parity rotates down, data starts after it.
    LeftSymmetric,
    /// `ALGORITHM_RIGHT_SYMMETRIC` (3): parity rotates up, data starts after it.
    RightSymmetric,
    /// `ALGORITHM_PARITY_0` (4): parity on leg 0 (raid6: Q on leg 1). dm-raid's `raid4`.
    ParityFirst,
    /// `ALGORITHM_PARITY_N` (5): parity on the last data leg + 1 (raid6: Q after it).
    ParityLast,
    /// `ALGORITHM_ROTATING_ZERO_RESTART` (8, raid6, DDF): as right asymmetric, Q by leg number.
    RotatingZeroRestart,
    /// `ALGORITHM_ROTATING_N_RESTART` (9, raid6, DDF): as left asymmetric shifted by one stripe.
    RotatingNRestart,
    /// `ALGORITHM_ROTATING_N_CONTINUE` (10, raid6, DDF): as left symmetric with Q before P.
    RotatingNContinue,
    /// `ALGORITHM_LEFT_ASYMMETRIC_6` (16, raid6): raid5 left asymmetric, Q on the last leg.
    LeftAsymmetric6,
    /// `ALGORITHM_RIGHT_ASYMMETRIC_6` (17, raid6): raid5 right asymmetric, Q on the last leg.
    RightAsymmetric6,
    /// `ALGORITHM_LEFT_SYMMETRIC_6` (18, raid6): raid5 left symmetric, Q on the last leg.
    LeftSymmetric6,
    /// `ALGORITHM_RIGHT_SYMMETRIC_6` (19, raid6): raid5 right symmetric, Q on the last leg.
    RightSymmetric6,
    /// `ALGORITHM_PARITY_0_6` (20, raid6): parity on leg 0, Q on the last leg.
    ParityFirst6,
}

impl ParityLayout {
    /// The layout for MD's layout number (`mdadm --detail`'s "Layout"), if known.
    pub fn from_md(n: u32) -> Option<ParityLayout> {
        use ParityLayout::*;
        Some(match n {
            0 => LeftAsymmetric,
            1 => RightAsymmetric,
            2 => LeftSymmetric,
            3 => RightSymmetric,
            4 => ParityFirst,
            5 => ParityLast,
            8 => RotatingZeroRestart,
            9 => RotatingNRestart,
            10 => RotatingNContinue,
            16 => LeftAsymmetric6,
            17 => RightAsymmetric6,
            18 => LeftSymmetric6,
            19 => RightSymmetric6,
            20 => ParityFirst6,
            _ => return None,
        })
    }

    /// MD's layout number.
    pub fn md_number(self) -> u32 {
        use ParityLayout::*;
        match self {
            LeftAsymmetric => 0,
            RightAsymmetric => 1,
            LeftSymmetric => 2,
            RightSymmetric => 3,
            ParityFirst => 4,
            ParityLast => 5,
            RotatingZeroRestart => 8,
            RotatingNRestart => 9,
            RotatingNContinue => 10,
            LeftAsymmetric6 => 16,
            RightAsymmetric6 => 17,
            LeftSymmetric6 => 18,
            RightSymmetric6 => 19,
            ParityFirst6 => 20,
        }
    }

    /// Words for messages: "left symmetric".
    pub fn words(self) -> &'static str {
        use ParityLayout::*;
        match self {
            LeftAsymmetric => "left asymmetric",
            RightAsymmetric => "right asymmetric",
            LeftSymmetric => "left symmetric",
            RightSymmetric => "right symmetric",
            ParityFirst => "parity on the first leg",
            ParityLast => "parity on the last legs",
            RotatingZeroRestart => "rotating parity zero restart",
            RotatingNRestart => "rotating parity N restart",
            RotatingNContinue => "rotating parity N continue",
            LeftAsymmetric6 => "left asymmetric, Q on the last leg",
            RightAsymmetric6 => "right asymmetric, Q on the last leg",
            LeftSymmetric6 => "left symmetric, Q on the last leg",
            RightSymmetric6 => "right symmetric, Q on the last leg",
            ParityFirst6 => "parity on the first leg, Q on the last leg",
        }
    }

    /// Whether the layout is one of raid5's (levels 4 and 5 accept these).
    fn raid5(self) -> bool {
        use ParityLayout::*;
        matches!(
            self,
            LeftAsymmetric
                | RightAsymmetric
                | LeftSymmetric
                | RightSymmetric
                | ParityFirst
                | ParityLast
        )
    }
}

/// A RAID level with its geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "level", content = "geometry")]
pub enum RaidLevel {
    /// Striping over all legs, chunk by chunk, no redundancy (MD raid0 with
    /// legs of one size; dm-raid `raid0`).
    Raid0,
    /// Every leg holds all the data.
    Raid1,
    /// MD raid10: `near` copies side by side, `far` copies further down each
    /// leg (`offset`: in the next chunk row instead of the next part of the leg).
    Raid10 {
        /// Near copies (dm-raid's `raid10` default: 2, lvm2's `data_copies`).
        near: u32,
        /// Far copies (1: none).
        far: u32,
        /// Far copies offset by one chunk row (MD layout bit 16).
        offset: bool,
    },
    /// MD level 4: dedicated parity on the last leg. (dm-raid's `raid4` is
    /// level 5 with [`ParityLayout::ParityFirst`].)
    Raid4,
    /// Rotating or dedicated single parity.
    Raid5(ParityLayout),
    /// P and Q syndrome.
    Raid6(ParityLayout),
}

impl RaidLevel {
    /// How many legs' worth of each stripe is parity.
    fn parity_legs(self) -> usize {
        match self {
            RaidLevel::Raid4 | RaidLevel::Raid5(_) => 1,
            RaidLevel::Raid6(_) => 2,
            _ => 0,
        }
    }

    /// Words for messages: "raid5 (left symmetric)".
    pub fn words(self) -> String {
        match self {
            RaidLevel::Raid0 => "raid0".into(),
            RaidLevel::Raid1 => "raid1".into(),
            RaidLevel::Raid10 { near, far, offset } => {
                let mut s = format!("raid10 ({near} near");
                if far > 1 {
                    s.push_str(&format!(
                        ", {far} {}",
                        if offset { "offset" } else { "far" }
                    ));
                }
                s.push_str(" copies)");
                s
            }
            RaidLevel::Raid4 => "raid4".into(),
            RaidLevel::Raid5(l) => format!("raid5 ({})", l.words()),
            RaidLevel::Raid6(l) => format!("raid6 ({})", l.words()),
        }
    }
}

/// One leg (member) of an array: its bytes are `mapping` from byte `offset` on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leg {
    /// Its name, for messages (`r5_rimage_1`, `/dev/sdb1`).
    pub name: String,
    /// Where the leg's bytes are.
    pub mapping: Mapping,
    /// Where the array's data starts in the leg (MD `data_offset`, dm-raid's
    /// reshape space), in bytes.
    pub offset: u64,
    /// Why the leg is not read (missing, stale, failed), if so.
    pub unusable: Option<String>,
}

impl Leg {
    /// A healthy leg.
    pub fn new(name: impl Into<String>, mapping: Mapping, offset: u64) -> Leg {
        Leg {
            name: name.into(),
            mapping,
            offset,
            unusable: None,
        }
    }

    /// A leg that is not there, and why.
    pub fn missing(name: impl Into<String>, why: impl Into<String>) -> Leg {
        Leg {
            name: name.into(),
            mapping: Mapping::default(),
            offset: 0,
            unusable: Some(why.into()),
        }
    }

    /// This leg, not to be read, and why (stale, failed).
    pub fn unusable(mut self, why: impl Into<String>) -> Leg {
        self.unusable = Some(why.into());
        self
    }

    /// Whether the leg is read.
    pub fn usable(&self) -> bool {
        self.unusable.is_none()
    }
}

/// An array: its level, chunk size, legs, and the bytes it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Raid {
    level: RaidLevel,
    chunk_size: u64,
    /// Shared by the windows of one array ([`Raid::window`]).
    #[serde(serialize_with = "serialize_legs")]
    legs: Arc<[Leg]>,
    leg_len: u64,
    /// The array byte this view's byte 0 is ([`Raid::window`]).
    start: u64,
    /// Bytes in this view.
    size: u64,
    /// Bytes the legs hold.
    #[serde(skip)]
    capacity: u64,
    /// raid10 far copies: bytes between a chunk's copies on one leg.
    #[serde(skip)]
    stride: u64,
}

fn serialize_legs<S: serde::Serializer>(legs: &Arc<[Leg]>, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&**legs, s)
}

/// One leg's role in a raid4/5/6 stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Data, with its slot in the Q syndrome.
    Data(usize),
    P,
    Q,
}

impl Raid {
    /// An array of `legs` (in array order, missing ones included), each
    /// holding `leg_len` bytes of array data from its `offset`. `chunk_size`
    /// in bytes (a multiple of 512; ignored for raid1). The array's size is
    /// what the legs hold ([`Raid::with_size`] makes it smaller).
    ///
    /// A leg whose mapping is too short for `leg_len` is kept but marked
    /// unusable with the reason.
    pub fn new(
        level: RaidLevel,
        chunk_size: u64,
        mut legs: Vec<Leg>,
        leg_len: u64,
    ) -> Result<Raid, String> {
        let n = legs.len();
        if n == 0 {
            return Err("an array without legs".into());
        }
        if n > MAX_LEGS {
            return Err(format!("{n} legs (at most {MAX_LEGS} are read)"));
        }
        let min = match level {
            RaidLevel::Raid0 | RaidLevel::Raid1 => 1,
            RaidLevel::Raid10 { near, far, .. } => {
                if near == 0 || far == 0 {
                    return Err(format!("raid10 with {near} near and {far} far copies"));
                }
                (near as usize).saturating_mul(far as usize)
            }
            RaidLevel::Raid4 => 2,
            RaidLevel::Raid5(l) => {
                if !l.raid5() {
                    return Err(format!("raid5 with the raid6 layout {}", l.words()));
                }
                2
            }
            RaidLevel::Raid6(_) => 3,
        };
        if n < min {
            return Err(format!(
                "{} needs at least {min} legs, not {n}",
                level.words()
            ));
        }
        let chunked = level != RaidLevel::Raid1;
        if chunked && (chunk_size == 0 || !chunk_size.is_multiple_of(512)) {
            return Err(format!("a chunk size of {chunk_size} bytes"));
        }
        for leg in legs.iter_mut() {
            if leg.unusable.is_some() {
                continue;
            }
            let need = leg.offset.checked_add(leg_len);
            if need.is_none_or(|e| e > leg.mapping.size()) {
                leg.unusable = Some(format!(
                    "it holds {} bytes, fewer than the {} from its data offset {} on",
                    leg.mapping.size(),
                    leg_len,
                    leg.offset
                ));
            }
        }
        let nn = n as u64;
        let chunks_per_leg = if chunked { leg_len / chunk_size } else { 0 };
        let mut stride = 0;
        let size = match level {
            RaidLevel::Raid1 => Some(leg_len),
            RaidLevel::Raid0 => chunks_per_leg
                .checked_mul(nn)
                .and_then(|c| c.checked_mul(chunk_size)),
            RaidLevel::Raid10 { near, far, offset } => {
                let (near, far) = (u64::from(near), u64::from(far));
                // raid10's calc_sectors: array chunks, then used chunks per leg.
                let array_chunks = (chunks_per_leg / far).checked_mul(nn).map(|c| c / near);
                if let Some(ac) = array_chunks {
                    let used = ac
                        .checked_mul(near * far)
                        .map(|u| u.div_ceil(nn))
                        .unwrap_or(0);
                    stride = if offset {
                        chunk_size
                    } else {
                        (used / far).saturating_mul(chunk_size)
                    };
                }
                array_chunks.and_then(|c| c.checked_mul(chunk_size))
            }
            RaidLevel::Raid4 | RaidLevel::Raid5(_) | RaidLevel::Raid6(_) => chunks_per_leg
                .checked_mul(nn - level.parity_legs() as u64)
                .and_then(|c| c.checked_mul(chunk_size)),
        }
        .ok_or_else(|| "the array's size does not fit in 64 bits".to_string())?;
        Ok(Raid {
            level,
            chunk_size: if chunked { chunk_size } else { 0 },
            legs: legs.into(),
            leg_len,
            start: 0,
            size,
            capacity: size,
            stride,
        })
    }

    /// The same array, holding only its first `size` bytes (MD's array
    /// size, an LV's length); an error if the legs hold fewer.
    pub fn with_size(mut self, size: u64) -> Result<Raid, String> {
        let room = self.capacity.saturating_sub(self.start);
        if size > room {
            return Err(format!(
                "{size} bytes asked of an array whose legs hold {room}"
            ));
        }
        self.size = size;
        Ok(self)
    }

    /// Bytes `start..start + len` of this array as an array of their own
    /// (sharing the legs: cheap), for a volume mapped onto a part of it (a
    /// thin LV whose pool's data LV is raid).
    pub fn window(&self, start: u64, len: u64) -> Result<Raid, String> {
        start
            .checked_add(len)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| {
                format!(
                    "bytes {start}..+{len} of a {} array of {} bytes",
                    self.level.words(),
                    self.size
                )
            })?;
        Ok(Raid {
            start: self.start.saturating_add(start),
            size: len,
            legs: Arc::clone(&self.legs),
            ..*self
        })
    }

    /// The level and geometry.
    pub fn level(&self) -> RaidLevel {
        self.level
    }

    /// Chunk size in bytes (0 for raid1).
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// The legs, in array order.
    pub fn legs(&self) -> &[Leg] {
        &self.legs
    }

    /// Bytes of array data per leg.
    pub fn leg_len(&self) -> u64 {
        self.leg_len
    }

    /// The array's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether every byte can still be read: no more legs unusable than the
    /// level survives (raid10: judged per copy set, as laid out).
    pub fn readable(&self) -> Result<(), String> {
        let bad: Vec<usize> = (0..self.legs.len())
            .filter(|&i| !self.legs[i].usable())
            .collect();
        let lost = |what: String| Err(format!("{}: {what}", self.level.words()));
        match self.level {
            RaidLevel::Raid0 if !bad.is_empty() => {
                lost(format!("{} of its legs cannot be read", bad.len()))
            }
            RaidLevel::Raid1 if bad.len() == self.legs.len() => {
                lost("none of its legs can be read".into())
            }
            RaidLevel::Raid10 { .. } => {
                // A chunk is lost when all its copies are on bad legs; the
                // copy sets repeat every `legs` chunks, so try that many.
                if bad.is_empty() {
                    return Ok(());
                }
                let n = self.legs.len() as u64;
                for c in 0..n {
                    let pos = c.saturating_mul(self.chunk_size);
                    if pos >= self.capacity {
                        break;
                    }
                    let copies = self.raid10_copies(pos);
                    if copies.iter().all(|&(d, _)| bad.contains(&d)) {
                        return lost(format!(
                            "every copy of some chunks is on an unreadable leg ({})",
                            copies
                                .iter()
                                .map(|&(d, _)| self.legs[d].name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
                Ok(())
            }
            l if bad.len() > l.parity_legs() && l.parity_legs() > 0 => lost(format!(
                "{} legs cannot be read, more than the {} its parity rebuilds",
                bad.len(),
                l.parity_legs()
            )),
            _ => Ok(()),
        }
    }

    /// Which legs are read and which are not, one sentence each, for the
    /// volume's notes: "reads r1_rimage_0", "r1_rimage_1 is not used: ...",
    /// "data of r5_rimage_1 is rebuilt from parity".
    pub fn which_legs_used(&self) -> Vec<String> {
        let mut out = Vec::new();
        let bad: Vec<&Leg> = self.legs.iter().filter(|l| !l.usable()).collect();
        let good: Vec<&str> = self
            .legs
            .iter()
            .filter(|l| l.usable())
            .map(|l| l.name.as_str())
            .collect();
        match self.level {
            RaidLevel::Raid1 => {
                if let Some(first) = good.first() {
                    let mut s = format!("{} reads leg {first}", self.level.words());
                    if good.len() > 1 {
                        s.push_str(&format!(
                            " (then {} if a read fails)",
                            good.get(1..).unwrap_or_default().join(", ")
                        ));
                    }
                    out.push(s);
                }
            }
            _ => out.push(format!(
                "{} reads legs {}",
                self.level.words(),
                if good.is_empty() {
                    "(none)".to_string()
                } else {
                    good.join(", ")
                }
            )),
        }
        for l in &bad {
            out.push(format!(
                "leg {} is not used: {}",
                l.name,
                l.unusable.as_deref().unwrap_or("")
            ));
        }
        if !bad.is_empty() {
            match self.level {
                RaidLevel::Raid4 | RaidLevel::Raid5(_) | RaidLevel::Raid6(_) => {
                    let names: Vec<&str> = bad.iter().map(|l| l.name.as_str()).collect();
                    out.push(match self.readable() {
                        Ok(()) => format!(
                            "the data of {} is rebuilt from parity and the other legs",
                            names.join(" and ")
                        ),
                        Err(e) => format!("not everything can be rebuilt: {e}"),
                    });
                }
                _ => {
                    if let Err(e) = self.readable() {
                        out.push(format!("not everything can be read: {e}"));
                    }
                }
            }
        }
        out
    }

    /// Every disk any usable leg reads from.
    pub(super) fn disks(&self) -> Vec<super::DiskId> {
        self.legs
            .iter()
            .filter(|l| l.usable())
            .flat_map(|l| l.mapping.disks())
            .collect()
    }

    /// Fill `buf` with the array's bytes at `offset`, reading the legs over
    /// `disks` (indexed by [`super::DiskId`]).
    pub fn read(
        &self,
        disks: &[Arc<dyn ReadAt>],
        offset: u64,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| past_end(offset, buf.len(), self.size))?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = self.start + offset + done as u64;
            let left = (buf.len() - done) as u64;
            let n = match self.level {
                RaidLevel::Raid1 => {
                    let n = left.min(MAX_PIECE) as usize;
                    let copies: Vec<(usize, u64)> =
                        (0..self.legs.len()).map(|i| (i, pos)).collect();
                    self.read_copy(disks, &copies, &mut buf[done..done + n])?;
                    n
                }
                RaidLevel::Raid0 => {
                    let within = pos % self.chunk_size;
                    let n = left.min(self.chunk_size - within).min(MAX_PIECE) as usize;
                    let chunk = pos / self.chunk_size;
                    let nn = self.legs.len() as u64;
                    let leg = (chunk % nn) as usize;
                    let at = (chunk / nn) * self.chunk_size + within;
                    self.read_leg(disks, leg, at, &mut buf[done..done + n])?;
                    n
                }
                RaidLevel::Raid10 { .. } => {
                    let within = pos % self.chunk_size;
                    let n = left.min(self.chunk_size - within).min(MAX_PIECE) as usize;
                    let copies = self.raid10_copies(pos);
                    self.read_copy(disks, &copies, &mut buf[done..done + n])?;
                    n
                }
                _ => {
                    let within = pos % self.chunk_size;
                    let n = left.min(self.chunk_size - within).min(MAX_PIECE) as usize;
                    self.read_parity(disks, pos, &mut buf[done..done + n])?;
                    n
                }
            };
            done += n;
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at `at` of leg `i`'s array data.
    fn read_leg(
        &self,
        disks: &[Arc<dyn ReadAt>],
        i: usize,
        at: u64,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        let leg = self
            .legs
            .get(i)
            .ok_or_else(|| std::io::Error::other(format!("{}: no leg {i}", self.level.words())))?;
        if let Some(why) = &leg.unusable {
            return Err(std::io::Error::other(format!(
                "leg {} is not used: {why}",
                leg.name
            )));
        }
        let end = at.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.leg_len) {
            return Err(past_end(at, buf.len(), self.leg_len));
        }
        read_mapping(&leg.mapping, disks, leg.offset + at, buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("leg {}: {e}", leg.name)))
    }

    /// Read from the first of `copies` (leg, offset in the leg) that reads.
    fn read_copy(
        &self,
        disks: &[Arc<dyn ReadAt>],
        copies: &[(usize, u64)],
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        let mut errors = Vec::new();
        for &(leg, at) in copies {
            match self.read_leg(disks, leg, at, buf) {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(std::io::Error::other(format!(
            "{}: no copy can be read: {}",
            self.level.words(),
            errors.join("; ")
        )))
    }

    /// raid10: every copy of the chunk holding array byte `pos`, as (leg,
    /// offset in the leg), in the order MD prefers them.
    fn raid10_copies(&self, pos: u64) -> Vec<(usize, u64)> {
        let RaidLevel::Raid10 { near, far, offset } = self.level else {
            return Vec::new();
        };
        let n = self.legs.len() as u64;
        let cs = self.chunk_size;
        let within = pos % cs;
        let chunk = (pos / cs).saturating_mul(u64::from(near));
        let mut stripe = chunk / n;
        let mut dev = chunk % n;
        if offset {
            stripe = stripe.saturating_mul(u64::from(far));
        }
        let mut sector = stripe.saturating_mul(cs).saturating_add(within);
        let mut out = Vec::with_capacity((near as usize).saturating_mul(far as usize));
        for _ in 0..near {
            let (mut d, mut s) = (dev, sector);
            out.push((d as usize, s));
            for _ in 1..far {
                d = (d + u64::from(near)) % n;
                s = s.saturating_add(self.stride);
                out.push((d as usize, s));
            }
            dev += 1;
            if dev >= n {
                dev = 0;
                sector = sector.saturating_add(cs);
            }
        }
        out
    }

    /// raid4/5/6: for stripe (row) `stripe`, the leg of each data chunk in
    /// order, the parity leg, the Q leg, and whether Q counts legs DDF's way.
    fn stripe_legs(&self, stripe: u64, data: &mut Vec<usize>) -> (usize, Option<usize>, bool) {
        let n = self.legs.len();
        let nn = n as u64;
        let dd_n = n - self.level.parity_legs();
        data.clear();
        let md = |x: u64, m: u64| (x % m) as usize;
        use ParityLayout::*;
        match self.level {
            RaidLevel::Raid4 => {
                data.extend(0..dd_n);
                (dd_n, None, false)
            }
            RaidLevel::Raid5(l) => {
                let pd = match l {
                    LeftAsymmetric | LeftSymmetric => dd_n - md(stripe, nn),
                    RightAsymmetric | RightSymmetric => md(stripe, nn),
                    ParityFirst => 0,
                    _ => dd_n,
                };
                for dd in 0..dd_n {
                    data.push(match l {
                        LeftSymmetric | RightSymmetric => (pd + 1 + dd) % n,
                        ParityLast => dd,
                        ParityFirst => dd + 1,
                        _ if dd >= pd => dd + 1,
                        _ => dd,
                    });
                }
                (pd, None, false)
            }
            RaidLevel::Raid6(l) => {
                // Asymmetric: Q right after P, data skipping both (Q on leg 0
                // when P is last).
                let asym = |pd: usize, data: &mut Vec<usize>| {
                    let qd = if pd == n - 1 { 0 } else { pd + 1 };
                    for dd in 0..dd_n {
                        data.push(if pd == n - 1 {
                            dd + 1
                        } else if dd >= pd {
                            dd + 2
                        } else {
                            dd
                        });
                    }
                    qd
                };
                match l {
                    LeftAsymmetric => {
                        let pd = n - 1 - md(stripe, nn);
                        (pd, Some(asym(pd, data)), false)
                    }
                    RightAsymmetric => {
                        let pd = md(stripe, nn);
                        (pd, Some(asym(pd, data)), false)
                    }
                    RotatingZeroRestart => {
                        let pd = md(stripe, nn);
                        (pd, Some(asym(pd, data)), true)
                    }
                    RotatingNRestart => {
                        let pd = n - 1 - md(stripe.wrapping_add(1), nn);
                        (pd, Some(asym(pd, data)), true)
                    }
                    LeftSymmetric | RightSymmetric => {
                        let pd = if l == LeftSymmetric {
                            n - 1 - md(stripe, nn)
                        } else {
                            md(stripe, nn)
                        };
                        data.extend((0..dd_n).map(|dd| (pd + 2 + dd) % n));
                        (pd, Some((pd + 1) % n), false)
                    }
                    RotatingNContinue => {
                        let pd = n - 1 - md(stripe, nn);
                        data.extend((0..dd_n).map(|dd| (pd + 1 + dd) % n));
                        (pd, Some((pd + n - 1) % n), true)
                    }
                    ParityFirst => {
                        data.extend((0..dd_n).map(|dd| dd + 2));
                        (0, Some(1), false)
                    }
                    ParityLast => {
                        data.extend(0..dd_n);
                        (dd_n, Some(dd_n + 1), false)
                    }
                    LeftAsymmetric6 | RightAsymmetric6 | LeftSymmetric6 | RightSymmetric6 => {
                        let m = nn - 1;
                        let pd = match l {
                            LeftAsymmetric6 | LeftSymmetric6 => dd_n - md(stripe, m),
                            _ => md(stripe, m),
                        };
                        for dd in 0..dd_n {
                            data.push(match l {
                                LeftSymmetric6 | RightSymmetric6 => (pd + 1 + dd) % (n - 1),
                                _ if dd >= pd => dd + 1,
                                _ => dd,
                            });
                        }
                        (pd, Some(n - 1), false)
                    }
                    ParityFirst6 => {
                        data.extend((0..dd_n).map(|dd| dd + 1));
                        (0, Some(n - 1), false)
                    }
                }
            }
            _ => (0, None, false),
        }
    }

    /// raid4/5/6: the bytes at array byte `pos` (within one chunk), from
    /// their leg or rebuilt from the others.
    fn read_parity(
        &self,
        disks: &[Arc<dyn ReadAt>],
        pos: u64,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        let n = self.legs.len();
        let dd_n = (n - self.level.parity_legs()) as u64;
        let cs = self.chunk_size;
        let chunk = pos / cs;
        let stripe = chunk / dd_n;
        let dd = (chunk % dd_n) as usize;
        let at = stripe * cs + pos % cs;
        let mut data = Vec::with_capacity(n);
        let (pd, qd, ddf) = self.stripe_legs(stripe, &mut data);
        let target = data.get(dd).copied().unwrap_or(0);
        let first_error = match self.read_leg(disks, target, at, buf) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // Rebuild. Roles of every leg in this stripe.
        let mut roles = vec![Role::P; n];
        if let Some(q) = qd {
            roles[q] = Role::Q;
        }
        if ddf {
            for &d in &data {
                roles[d] = Role::Data(d);
            }
        } else {
            // MD's syndrome order: the data legs met going round from the leg after Q.
            let start = qd.map_or(0, |q| (q + 1) % n);
            let mut slot = 0;
            for k in 0..n {
                let d = (start + k) % n;
                if d != pd && Some(d) != qd {
                    roles[d] = Role::Data(slot);
                    slot += 1;
                }
            }
        }
        let Role::Data(t_slot) = roles[target] else {
            return Err(first_error);
        };
        let len = buf.len();
        let mut p_acc: Option<Vec<u8>> = None; // P ^ known data
        let mut q_acc: Option<Vec<u8>> = None; // Q ^ known data's syndrome
        let mut known = vec![0u8; len];
        let mut missing: Vec<(usize, usize)> = vec![(target, t_slot)];
        let mut data_sum = vec![0u8; len];
        let mut data_syn = vec![0u8; len];
        let mut errors = vec![format!("{first_error}")];
        for (i, &role) in roles.iter().enumerate() {
            if i == target {
                continue;
            }
            match self.read_leg(disks, i, at, &mut known) {
                Ok(()) => match role {
                    Role::Data(slot) => {
                        xor_into(&mut data_sum, &known);
                        if qd.is_some() {
                            mul_xor_into(&mut data_syn, &known, gf_exp(slot));
                        }
                    }
                    Role::P => p_acc = Some(known.clone()),
                    Role::Q => q_acc = Some(known.clone()),
                },
                Err(e) => {
                    errors.push(e.to_string());
                    if let Role::Data(slot) = role {
                        missing.push((i, slot));
                    }
                }
            }
        }
        let fail = |why: &str| {
            std::io::Error::other(format!(
                "{}: array byte {pos} cannot be rebuilt ({why}): {}",
                self.level.words(),
                errors.join("; ")
            ))
        };
        match (missing.as_slice(), p_acc, q_acc) {
            ([_], Some(mut p), _) => {
                xor_into(&mut p, &data_sum);
                buf.copy_from_slice(&p);
                Ok(())
            }
            ([_], None, Some(mut q)) => {
                // Q ^ syndrome of the others = g^t · D_t.
                xor_into(&mut q, &data_syn);
                let inv = gf_inv(gf_exp(t_slot));
                for (o, &x) in buf.iter_mut().zip(&q) {
                    *o = gf_mul(x, inv);
                }
                Ok(())
            }
            ([(_, a), (_, b)], Some(mut p), Some(mut q)) => {
                // P' = D_a ^ D_b, Q' = g^a D_a ^ g^b D_b.
                xor_into(&mut p, &data_sum);
                xor_into(&mut q, &data_syn);
                let gb = gf_exp(*b);
                let inv = gf_inv(gf_exp(*a) ^ gb);
                for ((o, &pp), &qq) in buf.iter_mut().zip(&p).zip(&q) {
                    *o = gf_mul(qq ^ gf_mul(pp, gb), inv);
                }
                Ok(())
            }
            (m, _, _) if m.len() > self.level.parity_legs() => {
                Err(fail("more legs are missing than its parity covers"))
            }
            _ => Err(fail("its parity cannot be read")),
        }
    }
}

fn xor_into(acc: &mut [u8], x: &[u8]) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a ^= b;
    }
}

fn mul_xor_into(acc: &mut [u8], x: &[u8], c: u8) {
    if c == 1 {
        return xor_into(acc, x);
    }
    for (a, &b) in acc.iter_mut().zip(x) {
        *a ^= gf_mul(b, c);
    }
}

/// GF(2⁸) with polynomial 0x11d: (exp, log) tables for generator 2.
const GF: ([u8; 512], [u8; 256]) = {
    let mut exp = [0u8; 512];
    let mut log = [0u8; 256];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x as u8;
        exp[i + 255] = x as u8;
        log[x as usize] = i as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= 0x11d;
        }
        i += 1;
    }
    (exp, log)
};

/// g^i in GF(2⁸), g = 2.
fn gf_exp(i: usize) -> u8 {
    GF.0[i % 255]
}

fn gf_mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    GF.0[GF.1[a as usize] as usize + GF.1[b as usize] as usize]
}

fn gf_inv(a: u8) -> u8 {
    if a == 0 {
        return 0;
    }
    GF.0[255 - GF.1[a as usize] as usize]
}

#[cfg(test)]
mod tests;
