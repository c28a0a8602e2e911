//! One disk's copy of the LDM database: PRIVHEAD, TOCBLOCK, VMDB and the
//! VBLK records, read with the copies of PRIVHEAD and TOCBLOCK used when
//! one is damaged.
//!
//! Layout facts (all numbers big-endian, positions in sectors unless said):
//! an MBR dynamic disk has its first PRIVHEAD in sector 6, a GPT one in the
//! last sector of the "LDM metadata" partition; the others are at 1856 and
//! 2047 sectors into the 1 MiB configuration area that the PRIVHEAD points
//! at. The TOCBLOCKs are at sectors 1, 2, 2045 and 2046 of that area; the
//! TOCBLOCK's `config` bitmap gives where the VMDB starts, and the VBLKs
//! follow the VMDB, `vblk_size` bytes each. A record longer than a VBLK
//! spans several, joined by record id in entry order.

use crate::io::{ReadAt, be, read_vec};
use crate::problem::Problem;

/// PRIVHEAD offsets in its sector.
const PH_MAGIC: &[u8; 8] = b"PRIVHEAD";
/// The configuration area's size in sectors (1 MiB with 512-byte sectors).
pub const CONFIG_SECTORS: u64 = 2048;
/// Where the PRIVHEAD copies lie in the configuration area.
const PH_COPIES_IN_CONFIG: [u64; 2] = [1856, 2047];
/// Where the TOCBLOCK copies lie in the configuration area.
const TOC_COPIES: [u64; 4] = [1, 2, 2045, 2046];
/// The most database bytes read (a real one is under 1 MiB).
const MAX_DB_BYTES: u64 = 16 << 20;
/// The most VBLK entries that join into one record.
const MAX_ENTRIES_PER_RECORD: u16 = 64;

/// What the PRIVHEAD says about its disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivHead {
    /// Byte position of the copy used.
    pub at: u64,
    /// Version (2.11 Windows 2000/XP, 2.12 Vista and later).
    pub version: (u16, u16),
    /// This disk's GUID (text, as stored).
    pub disk_guid: String,
    /// The disk group's GUID (text).
    pub disk_group_guid: String,
    /// The disk group's name.
    pub disk_group_name: String,
    /// Where the data area (the "logical disk") starts, in sectors.
    pub logical_disk_start: u64,
    /// Its size in sectors.
    pub logical_disk_size: u64,
    /// Where the configuration area starts, in sectors.
    pub config_start: u64,
    /// Its size in sectors.
    pub config_size: u64,
}

/// A volume record (VBLK type 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolRec {
    /// Object id.
    pub id: u64,
    /// Name (`Volume1`).
    pub name: String,
    /// 3 = gen (simple, spanned, striped, mirrored), 4 = RAID-5.
    pub kind: u8,
    /// How many components it has.
    pub n_comps: u64,
    /// Size in sectors.
    pub size: u64,
    /// The partition type byte (0x07 NTFS).
    pub part_type: u8,
    /// Drive letter hint (`E:`), when stored.
    pub hint: Option<String>,
}

/// A component record (VBLK type 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompRec {
    /// Object id.
    pub id: u64,
    /// 1 striped, 2 spanned (simple and spanned), 3 RAID-5.
    pub kind: u8,
    /// How many partitions it has.
    pub n_parts: u64,
    /// The volume it belongs to.
    pub parent: u64,
    /// Stripe size in sectors (striped and RAID-5).
    pub chunk_size: u64,
    /// Columns (striped and RAID-5).
    pub n_columns: u64,
}

/// A partition record (VBLK type 3): an extent of a disk's data area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRec {
    /// Object id.
    pub id: u64,
    /// Name (`Disk1-01`).
    pub name: String,
    /// Start in sectors from the data area's start.
    pub start: u64,
    /// Where it lies in its volume, in sectors.
    pub vol_offset: u64,
    /// Size in sectors.
    pub size: u64,
    /// The component it belongs to.
    pub parent: u64,
    /// The disk record it lies on.
    pub disk: u64,
    /// Its column in a striped component.
    pub index: u64,
    /// Byte position of its VBLK, for messages.
    pub at: u64,
}

/// A disk record (VBLK type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRec {
    /// Object id.
    pub id: u64,
    /// Name (`Disk1`).
    pub name: String,
    /// The disk's GUID, lower case.
    pub guid: String,
}

/// The database of one disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Database {
    /// The disk group's name from its record.
    pub group_name: Option<String>,
    /// The committed sequence number (the newest copy wins).
    pub committed_seq: u64,
    /// Volumes, components, partitions and disks in record order.
    pub volumes: Vec<VolRec>,
    /// Components.
    pub comps: Vec<CompRec>,
    /// Partitions.
    pub parts: Vec<PartRec>,
    /// Disks.
    pub disks: Vec<DiskRec>,
}

/// What was read from one disk.
#[derive(Debug, Clone)]
pub struct LdmDisk {
    /// The PRIVHEAD used.
    pub privhead: PrivHead,
    /// The database, unless it could not be read at all.
    pub db: Option<Database>,
    /// Damage found (the copy used is named).
    pub problems: Vec<Problem>,
}

/// Where the first PRIVHEAD of a disk is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// An MBR disk with a partition of type 0x42: sector 6.
    Mbr,
    /// A GPT disk: the last sector of the LDM metadata partition, which
    /// ends at this sector.
    Gpt {
        /// The metadata partition's last sector.
        last_lba: u64,
    },
}

fn sector(s: u64, ss: u64) -> Option<u64> {
    s.checked_mul(ss)
}

/// A NUL-padded ASCII field.
fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default())
        .trim()
        .to_string()
}

/// Parse one PRIVHEAD sector read at byte `at`.
fn parse_privhead(b: &[u8], at: u64) -> Result<PrivHead, String> {
    if b.get(..8) != Some(&PH_MAGIC[..]) {
        return Err("no \"PRIVHEAD\" signature".into());
    }
    let field = |o: usize| be::u64(b, o).ok_or("sector too short");
    let ph = PrivHead {
        at,
        version: (be::u16(b, 0x0c).unwrap_or(0), be::u16(b, 0x0e).unwrap_or(0)),
        disk_guid: text(b.get(0x30..0x70).unwrap_or_default()).to_ascii_lowercase(),
        disk_group_guid: text(b.get(0xb0..0xf0).unwrap_or_default()).to_ascii_lowercase(),
        disk_group_name: text(b.get(0xf0..0x110).unwrap_or_default()),
        logical_disk_start: field(0x11b)?,
        logical_disk_size: field(0x123)?,
        config_start: field(0x12b)?,
        config_size: field(0x133)?,
    };
    if ph.version.0 != 2 {
        return Err(format!(
            "version {}.{} (expected 2.11 or 2.12)",
            ph.version.0, ph.version.1
        ));
    }
    if ph.config_size == 0 || ph.config_size > MAX_DB_BYTES / 512 {
        return Err(format!(
            "configuration area of {} sectors (expected {CONFIG_SECTORS})",
            ph.config_size
        ));
    }
    if ph.logical_disk_size == 0 {
        return Err("data area of 0 sectors".into());
    }
    if ph.disk_group_guid.is_empty() || ph.disk_guid.is_empty() {
        return Err("no disk or disk group GUID".into());
    }
    Ok(ph)
}

/// Read the PRIVHEAD at sector `s`.
fn read_privhead(src: &dyn ReadAt, s: u64, ss: u64) -> Result<PrivHead, (u64, String)> {
    let at = sector(s, ss).ok_or((u64::MAX, "position overflows".to_string()))?;
    let b =
        read_vec(src, at, ss.min(512), 4096).map_err(|e| (at, format!("cannot be read: {e}")))?;
    parse_privhead(&b, at).map_err(|e| (at, e))
}

/// Read one disk's PRIVHEAD (trying its copies) and database.
pub fn read(src: &dyn ReadAt, ss: u64, anchor: Anchor) -> Result<LdmDisk, Problem> {
    let disk_sectors = src.size().checked_div(ss).unwrap_or(0);
    let primary = match anchor {
        Anchor::Mbr => 6,
        Anchor::Gpt { last_lba } => last_lba,
    };
    let mut problems = Vec::new();
    let ph = match read_privhead(src, primary, ss) {
        Ok(ph) => ph,
        Err((at, e)) => {
            problems.push(Problem::at("LDM PRIVHEAD", at, e));
            // The copies sit in the configuration area, which ends at the
            // disk's last sector (MBR) or the metadata partition's (GPT).
            let config_end = match anchor {
                Anchor::Mbr => disk_sectors,
                Anchor::Gpt { last_lba } => last_lba.saturating_add(1),
            };
            let config_start = config_end.saturating_sub(CONFIG_SECTORS);
            let mut found = None;
            for c in PH_COPIES_IN_CONFIG {
                let s = config_start.saturating_add(c);
                if s == primary {
                    continue;
                }
                match read_privhead(src, s, ss) {
                    Ok(ph) => {
                        found = Some(ph);
                        break;
                    }
                    Err((at, e)) => problems.push(Problem::at("LDM PRIVHEAD copy", at, e)),
                }
            }
            match found {
                Some(ph) => {
                    problems.push(Problem::at(
                        "LDM PRIVHEAD copy",
                        ph.at,
                        "used instead of the damaged first PRIVHEAD",
                    ));
                    ph
                }
                None => {
                    return Err(Problem::at(
                        "LDM PRIVHEAD",
                        sector(primary, ss).unwrap_or(0),
                        "no readable copy (first, and at 1856 and 2047 sectors into the configuration area): not a readable dynamic disk",
                    ));
                }
            }
        }
    };
    // The other copies should agree.
    for c in PH_COPIES_IN_CONFIG {
        let Some(s) = ph.config_start.checked_add(c) else {
            continue;
        };
        if sector(s, ss) == Some(ph.at) {
            continue;
        }
        match read_privhead(src, s, ss) {
            Ok(other)
                if other.disk_guid != ph.disk_guid || other.config_start != ph.config_start =>
            {
                problems.push(Problem::at(
                    "LDM PRIVHEAD copy",
                    other.at,
                    format!("differs from the one used at byte {}", ph.at),
                ))
            }
            Ok(_) => {}
            Err((at, e)) => {
                if !problems.iter().any(|p| p.offset == Some(at)) {
                    problems.push(Problem::at("LDM PRIVHEAD copy", at, e));
                }
            }
        }
    }
    let config_end = ph.config_start.checked_add(ph.config_size);
    if config_end.is_none_or(|e| e > disk_sectors) {
        problems.push(Problem::at(
            "LDM PRIVHEAD",
            ph.at,
            format!(
                "configuration area (sectors {}+{}) lies past the disk's end (sector {disk_sectors})",
                ph.config_start, ph.config_size
            ),
        ));
        return Ok(LdmDisk {
            privhead: ph,
            db: None,
            problems,
        });
    }
    let db = read_database(src, ss, &ph, &mut problems);
    Ok(LdmDisk {
        privhead: ph,
        db,
        problems,
    })
}

/// A TOCBLOCK's `config` bitmap: where the VMDB starts and its size, in
/// sectors from the configuration area's start.
fn parse_toc(b: &[u8], config_size: u64) -> Result<(u64, u64), String> {
    if b.get(..8) != Some(&b"TOCBLOCK"[..]) {
        return Err("no \"TOCBLOCK\" signature".into());
    }
    // Each bitmap: name (8), flags (2), start (8), size (8), flags (8).
    for (name_at, start_at, size_at) in [(0x24usize, 0x2e, 0x36), (0x46, 0x50, 0x58)] {
        let name = text(b.get(name_at..start_at).unwrap_or_default());
        if name.starts_with("config") {
            let start = be::u64(b, start_at).ok_or("sector too short")?;
            let size = be::u64(b, size_at).ok_or("sector too short")?;
            if start == 0 || start.checked_add(size).is_none_or(|e| e > config_size) {
                return Err(format!(
                    "config bitmap at sectors {start}+{size} lies outside the {config_size}-sector configuration area"
                ));
            }
            return Ok((start, size));
        }
    }
    Err("no \"config\" bitmap".into())
}

fn read_database(
    src: &dyn ReadAt,
    ss: u64,
    ph: &PrivHead,
    problems: &mut Vec<Problem>,
) -> Option<Database> {
    let config_at = sector(ph.config_start, ss)?;
    // Windows Vista and later write only the copies at sectors 2 and 2045
    // (libldm reads only the first): a copy without a signature is damage
    // when it is the one at sector 2, or when no copy is usable.
    let mut toc = None;
    let mut damaged = Vec::new();
    for c in TOC_COPIES {
        let at = sector(ph.config_start.checked_add(c)?, ss)?;
        let parsed = read_vec(src, at, 512, 512)
            .map_err(|e| (true, format!("cannot be read: {e}")))
            .and_then(|b| {
                let signed = b.get(..8) == Some(&b"TOCBLOCK"[..]);
                parse_toc(&b, ph.config_size).map_err(|e| (signed, e))
            });
        match parsed {
            Ok(t) => {
                if toc.is_none() {
                    toc = Some((at, t));
                }
            }
            Err((signed, e)) => damaged.push((signed || c == 2, at, e)),
        }
    }
    let Some((toc_at, (vmdb_start, vmdb_sectors))) = toc else {
        for (_, at, e) in damaged {
            problems.push(Problem::at("LDM TOCBLOCK", at, e));
        }
        problems.push(Problem::at(
            "LDM TOCBLOCK",
            config_at,
            "none of the four copies is readable: the database cannot be found",
        ));
        return None;
    };
    let mut reported = false;
    for (_, at, e) in damaged.into_iter().filter(|d| d.0) {
        problems.push(Problem::at("LDM TOCBLOCK", at, e));
        reported = true;
    }
    if reported {
        problems.push(Problem::at("LDM TOCBLOCK", toc_at, "this copy used"));
    }
    let vmdb_at = config_at.checked_add(vmdb_start.checked_mul(ss)?)?;
    let len = vmdb_sectors.checked_mul(ss)?.min(MAX_DB_BYTES);
    let area = match read_vec(src, vmdb_at, len, MAX_DB_BYTES) {
        Ok(a) => a,
        Err(e) => {
            problems.push(Problem::at(
                "LDM VMDB",
                vmdb_at,
                format!("cannot be read: {e}"),
            ));
            return None;
        }
    };
    match parse_vmdb(&area, vmdb_at) {
        Ok((db, mut p)) => {
            problems.append(&mut p);
            Some(db)
        }
        Err(p) => {
            problems.push(p);
            None
        }
    }
}

/// Parse the VMDB and the VBLKs after it; `area` is the whole `config`
/// bitmap's extent, read from byte `at`.
pub fn parse_vmdb(area: &[u8], at: u64) -> Result<(Database, Vec<Problem>), Problem> {
    let mut problems = Vec::new();
    if area.get(..4) != Some(&b"VMDB"[..]) {
        return Err(Problem::at("LDM VMDB", at, "no \"VMDB\" signature"));
    }
    let short = || Problem::at("LDM VMDB", at, "truncated");
    let vblk_size = usize::try_from(be::u32(area, 0x08).ok_or_else(short)?).unwrap_or(0);
    let first = usize::try_from(be::u32(area, 0x0c).ok_or_else(short)?).unwrap_or(usize::MAX);
    let version = (
        be::u16(area, 0x12).ok_or_else(short)?,
        be::u16(area, 0x14).ok_or_else(short)?,
    );
    if version != (4, 10) {
        problems.push(Problem::at(
            "LDM VMDB",
            at,
            format!(
                "version {}.{} (expected 4.10); read as 4.10",
                version.0, version.1
            ),
        ));
    }
    if be::u16(area, 0x10) != Some(1) {
        problems.push(Problem::at(
            "LDM VMDB",
            at,
            "the database was left in the middle of an update (status is not 1, consistent)",
        ));
    }
    if !(32..=0x10000).contains(&vblk_size) {
        return Err(Problem::at(
            "LDM VMDB",
            at,
            format!("VBLK size {vblk_size} (expected 128)"),
        ));
    }
    if first < 0x100 || first > area.len() {
        return Err(Problem::at(
            "LDM VMDB",
            at,
            format!(
                "first VBLK at offset {first} lies outside the {}-byte database",
                area.len()
            ),
        ));
    }
    let mut db = Database {
        committed_seq: be::u64(area, 0x75).unwrap_or(0),
        ..Database::default()
    };
    let counts = [0x85usize, 0x89, 0x8d, 0x91].map(|o| be::u32(area, o).unwrap_or(0));
    let data_len = vblk_size.saturating_sub(16);
    let mut spanned: Vec<Spanned> = Vec::new();
    let mut seen_ids: Vec<(u8, u64)> = Vec::new();
    let mut off = first;
    let mut last_seq: Option<u32> = None;
    // Bounded: each turn moves `vblk_size` bytes through a finite area.
    while let Some(b) = area.get(off..off.saturating_add(vblk_size)) {
        let vat = at.saturating_add(off as u64);
        off = off.saturating_add(vblk_size);
        if b.get(..4) != Some(&b"VBLK"[..]) {
            break;
        }
        let seq = be::u32(b, 4).unwrap_or(0);
        if let Some(prev) = last_seq
            && seq <= prev
        {
            problems.push(Problem::at(
                "LDM VBLK",
                vat,
                format!("sequence number {seq} does not follow {prev}"),
            ));
        }
        last_seq = Some(seq);
        let record = be::u32(b, 8).unwrap_or(0);
        let entry = be::u16(b, 0x0c).unwrap_or(0);
        let total = be::u16(b, 0x0e).unwrap_or(0);
        let data = b.get(16..).unwrap_or_default();
        if total == 0 {
            continue;
        }
        if entry >= total || total > MAX_ENTRIES_PER_RECORD {
            problems.push(Problem::at(
                "LDM VBLK",
                vat,
                format!("entry {entry} of {total} (record {record}): skipped"),
            ));
            continue;
        }
        if total == 1 {
            parse_record(data, vat, &mut db, &mut seen_ids, &mut problems);
            continue;
        }
        let slot = match spanned.iter_mut().position(|s| s.0 == record) {
            Some(i) => i,
            None => {
                spanned.push((record, total, vec![None; usize::from(total)], vat));
                spanned.len().saturating_sub(1)
            }
        };
        if let Some(s) = spanned.get_mut(slot) {
            if s.1 != total {
                problems.push(Problem::at(
                    "LDM VBLK",
                    vat,
                    format!(
                        "record {record} says {total} entries here and {} elsewhere",
                        s.1
                    ),
                ));
                continue;
            }
            match s.2.get_mut(usize::from(entry)) {
                Some(p @ None) => *p = Some(data.to_vec()),
                _ => problems.push(Problem::at(
                    "LDM VBLK",
                    vat,
                    format!("entry {entry} of record {record} appears twice: the first kept"),
                )),
            }
        }
    }
    for (record, total, parts, vat) in spanned {
        let found = parts.iter().filter(|p| p.is_some()).count();
        if found != usize::from(total) {
            problems.push(Problem::at(
                "LDM VBLK",
                vat,
                format!("record {record} has {found} of its {total} entries: skipped"),
            ));
            continue;
        }
        let mut joined = Vec::with_capacity(data_len.saturating_mul(usize::from(total)));
        for p in parts.into_iter().flatten() {
            joined.extend_from_slice(&p);
        }
        parse_record(&joined, vat, &mut db, &mut seen_ids, &mut problems);
    }
    let found = [
        db.volumes.len(),
        db.comps.len(),
        db.parts.len(),
        db.disks.len(),
    ];
    for ((what, want), got) in ["volume", "component", "partition", "disk"]
        .iter()
        .zip(counts)
        .zip(found)
    {
        if u64::from(want) != got as u64 {
            problems.push(Problem::at(
                "LDM VMDB",
                at,
                format!("says {want} {what} records, {got} found"),
            ));
        }
    }
    Ok((db, problems))
}

/// A record spread over several entries: record id, entry count, the
/// entries' data as found, the first entry's byte position.
type Spanned = (u32, u16, Vec<Option<Vec<u8>>>, u64);

/// A cursor over a record's fields.
struct Fields<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let r = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(r)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1)?.first().copied()
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }
    /// A variable-length number: a length byte (at most 8), then that
    /// many big-endian bytes.
    fn num(&mut self) -> Option<u64> {
        let n = self.u8()?;
        if n > 8 {
            return None;
        }
        Some(
            self.bytes(usize::from(n))?
                .iter()
                .fold(0u64, |v, &d| (v << 8) | u64::from(d)),
        )
    }
    /// A variable-length string: a length byte, then the bytes.
    fn string(&mut self) -> Option<String> {
        let n = self.u8()?;
        Some(String::from_utf8_lossy(self.bytes(usize::from(n))?).into_owned())
    }
    fn be64(&mut self) -> Option<u64> {
        be::u64(self.bytes(8)?, 0)
    }
}

/// Parse one whole record (the data after the 16-byte VBLK header).
fn parse_record(
    data: &[u8],
    at: u64,
    db: &mut Database,
    seen: &mut Vec<(u8, u64)>,
    problems: &mut Vec<Problem>,
) {
    let flags = data.get(2).copied().unwrap_or(0);
    let type_byte = data.get(3).copied().unwrap_or(0);
    let (kind, revision) = (type_byte & 0x0f, type_byte >> 4);
    if kind == 0 {
        return;
    }
    let mut f = Fields {
        b: data.get(8..).unwrap_or_default(),
        pos: 0,
    };
    let parsed = match kind {
        1 => parse_volume(&mut f, revision, flags).map(|v| {
            let id = v.id;
            db.volumes.push(v);
            id
        }),
        2 => parse_comp(&mut f, revision, flags).map(|c| {
            let id = c.id;
            db.comps.push(c);
            id
        }),
        3 => parse_part(&mut f, revision, flags, at).map(|p| {
            let id = p.id;
            db.parts.push(p);
            id
        }),
        4 => parse_disk(&mut f, revision).map(|d| {
            let id = d.id;
            db.disks.push(d);
            id
        }),
        5 => (|| {
            let id = f.num()?;
            db.group_name = Some(f.string()?);
            Some(id)
        })()
        .ok_or_else(|| "truncated".to_string()),
        _ => Err(format!("unknown record type {kind}")),
    };
    match parsed {
        Ok(id) => {
            if seen.contains(&(kind, id)) {
                problems.push(Problem::at(
                    "LDM VBLK",
                    at,
                    format!("a second {} record with id {id}", kind_name(kind)),
                ));
            }
            seen.push((kind, id));
        }
        Err(e) => problems.push(Problem::at(
            "LDM VBLK",
            at,
            format!("{} record: {e}; skipped", kind_name(kind)),
        )),
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        1 => "volume",
        2 => "component",
        3 => "partition",
        4 => "disk",
        5 => "disk group",
        _ => "unknown",
    }
}

fn parse_volume(f: &mut Fields<'_>, revision: u8, flags: u8) -> Result<VolRec, String> {
    if revision != 5 {
        return Err(format!("revision {revision} (expected 5)"));
    }
    (|| {
        let id = f.num()?;
        let name = f.string()?;
        f.string()?; // "gen" or "raid5"
        f.string()?; // unknown
        f.skip(14)?; // state
        let kind = f.u8()?;
        f.skip(5)?; // unknown, volume number, zeros
        f.skip(1)?; // flags
        let n_comps = f.num()?;
        f.skip(16)?; // commit id, id
        let size = f.num()?;
        f.skip(4)?;
        let part_type = f.u8()?;
        f.skip(16)?; // volume GUID
        if flags & 0x08 != 0 {
            f.string()?;
        }
        if flags & 0x20 != 0 {
            f.string()?;
        }
        if flags & 0x80 != 0 {
            f.num()?;
        }
        let hint = if flags & 0x02 != 0 {
            Some(f.string()?)
        } else {
            None
        };
        Some(VolRec {
            id,
            name,
            kind,
            n_comps,
            size,
            part_type,
            hint,
        })
    })()
    .ok_or_else(|| "truncated".into())
}

fn parse_comp(f: &mut Fields<'_>, revision: u8, flags: u8) -> Result<CompRec, String> {
    if revision != 3 {
        return Err(format!("revision {revision} (expected 3)"));
    }
    (|| {
        let id = f.num()?;
        f.string()?; // name
        f.string()?; // state
        let kind = f.u8()?;
        f.skip(4)?;
        let n_parts = f.num()?;
        f.skip(16)?; // log commit id, zeros
        let parent = f.num()?;
        f.skip(1)?;
        let (chunk_size, n_columns) = if flags & 0x10 != 0 {
            (f.num()?, f.num()?)
        } else {
            (0, 0)
        };
        Some(CompRec {
            id,
            kind,
            n_parts,
            parent,
            chunk_size,
            n_columns,
        })
    })()
    .ok_or_else(|| "truncated".into())
}

fn parse_part(f: &mut Fields<'_>, revision: u8, flags: u8, at: u64) -> Result<PartRec, String> {
    if revision != 3 {
        return Err(format!("revision {revision} (expected 3)"));
    }
    (|| {
        let id = f.num()?;
        let name = f.string()?;
        f.skip(12)?; // zeros, log commit id
        let start = f.be64()?;
        let vol_offset = f.be64()?;
        let size = f.num()?;
        let parent = f.num()?;
        let disk = f.num()?;
        let index = if flags & 0x08 != 0 { f.num()? } else { 0 };
        Some(PartRec {
            id,
            name,
            start,
            vol_offset,
            size,
            parent,
            disk,
            index,
            at,
        })
    })()
    .ok_or_else(|| "truncated".into())
}

fn parse_disk(f: &mut Fields<'_>, revision: u8) -> Result<DiskRec, String> {
    let id = f.num().ok_or("truncated")?;
    let name = f.string().ok_or("truncated")?;
    let guid = match revision {
        3 => f.string().ok_or("truncated")?.to_ascii_lowercase(),
        4 => {
            let g = f.bytes(16).ok_or("truncated")?;
            g.iter()
                .enumerate()
                .map(|(i, b)| {
                    let dash = if matches!(i, 4 | 6 | 8 | 10) { "-" } else { "" };
                    format!("{dash}{b:02x}")
                })
                .collect()
        }
        r => return Err(format!("revision {r} (expected 3 or 4)")),
    };
    Ok(DiskRec { id, name, guid })
}
