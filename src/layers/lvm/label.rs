//! The PV label (`label_header` + `pv_header`) and the metadata areas
//! (`mda_header` + the circular buffer of metadata text).
//!
//! Layout, all little-endian, offsets in bytes from the PV's first byte:
//!
//! * one of sectors 0–3 holds the 32-byte `label_header`: `id` "LABELONE",
//!   `sector_xl` (its own sector number), `crc_xl` (over the rest of the
//!   512-byte sector from byte 20), `offset_xl` (where the `pv_header`
//!   starts, from the label's start) and `type` "LVM2 001";
//! * the `pv_header`: `pv_uuid` (32 ASCII characters), `device_size_xl`
//!   (bytes), then two lists of `disk_locn` {`offset`, `size`} each ended
//!   by an entry whose offset is 0 — the data areas, then the metadata
//!   areas — and, in newer PVs, a `pv_header_extension` {`version`, `flags`,
//!   bootloader area list};
//! * each metadata area starts with a 512-byte `mda_header`: `checksum_xl`
//!   (over bytes 4..512), `magic` " LVM2 x[5A%r0N*>", `version` 1, `start`
//!   and `size` of the area, and a list of `raw_locn` {`offset`, `size`,
//!   `checksum`, `flags`} ended by a zero entry. `raw_locn[0]` locates the
//!   committed metadata text: `offset` from the area's start, `size`
//!   including a trailing NUL, `checksum` over the text. The text lives in
//!   a circular buffer after the header: when it runs past the end of the
//!   area it continues right after the header.

use super::crc::{INITIAL_CRC, calc_crc};
use super::{PvScan, meta, text};
use crate::error::{Error, Result};
use crate::io::{ReadAt, le, read_vec};
use crate::layers::probe::lvm_uuid;
use crate::problem::Problem;

/// Size of a sector in LVM2's on-disk format.
const SECTOR: u64 = 512;
/// The label is looked for in sectors 0..LABEL_SCAN_SECTORS.
const LABEL_SCAN_SECTORS: u64 = 4;
/// `label_header.id`.
const LABEL_ID: &[u8; 8] = b"LABELONE";
/// `label_header.type` of LVM2 text-format PVs.
const LVM2_LABEL: &[u8; 8] = b"LVM2 001";
/// Size of `label_header`.
const LABEL_HEADER_SIZE: usize = 32;
/// Offset of the first byte `crc_xl` covers.
const LABEL_CRC_FROM: usize = 20;
/// Size of `pv_header` up to its lists.
const PV_HEADER_SIZE: usize = 40;
/// Size of `disk_locn`.
const DISK_LOCN_SIZE: usize = 16;
/// `mda_header.magic`.
pub const FMTT_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// `mda_header.version`.
const FMTT_VERSION: u32 = 1;
/// Size of `mda_header` (the text buffer starts after it).
const MDA_HEADER_SIZE: u64 = 512;
/// Offset of `raw_locn[0]` in `mda_header`.
const RAW_LOCN_OFFSET: usize = 40;
/// `raw_locn.flags`: this metadata area is to be ignored.
const RAW_LOCN_IGNORED: u32 = 1;
/// The largest metadata text read (lvm2's own buffers are far smaller).
pub const MAX_METADATA_TEXT: u64 = 64 << 20;

/// What the checks should verify (fuzzing turns checksums off to reach the
/// code behind them).
#[derive(Debug, Clone, Copy)]
pub(super) struct Checks {
    /// Verify `crc_xl`, `mda_header.checksum_xl` and the text checksum.
    pub checksums: bool,
}

/// A decoded `label_header` + `pv_header`.
#[derive(Debug, Clone)]
struct Label {
    sector: u64,
    pv_uuid: String,
    device_size: u64,
    data_areas: Vec<(u64, u64)>,
    metadata_areas: Vec<(u64, u64)>,
    ext_flags: Option<u32>,
}

/// One metadata area's committed metadata.
#[derive(Debug, Clone)]
struct MdaText {
    text: String,
    vg: meta::VgMeta,
    text_at: u64,
    wrapped: bool,
}

/// What reading one metadata area gave.
enum MdaRead {
    /// `raw_locn[0]` is empty: a PV in no VG.
    Empty,
    /// The area is marked ignored (`pvchange --metadataignore y`).
    Ignored,
    /// The metadata.
    Text(Box<MdaText>),
}

/// Read a PV's label and newest metadata. `Ok(None)` when no sector 0–3
/// starts with `LABELONE`.
pub(super) fn read_pv(src: &dyn ReadAt, checks: Checks) -> Result<Option<PvScan>> {
    let mut problems = Vec::new();
    let Some(label) = find_label(src, checks, &mut problems)? else {
        return Ok(None);
    };
    if label.device_size > src.size() {
        problems.push(
            format!(
                "the label says the PV is {} bytes but only {} are there (truncated image?)",
                label.device_size,
                src.size()
            )
            .into(),
        );
    }
    let mut reads: Vec<(usize, u64, MdaRead)> = Vec::new();
    let mut bad: Vec<(usize, u64, String)> = Vec::new();
    for (i, &(offset, size)) in label.metadata_areas.iter().enumerate() {
        match read_mda(src, offset, size, checks) {
            Ok(r) => reads.push((i, offset, r)),
            Err(e) => bad.push((i, offset, e.to_string())),
        }
    }
    // The newest good copy wins; ties go to the first area.
    let mut best: Option<(usize, u64, &MdaText)> = None;
    for (i, off, r) in &reads {
        if let MdaRead::Text(t) = r
            && best.is_none_or(|(_, _, b)| t.vg.seqno > b.vg.seqno)
        {
            best = Some((*i, *off, t));
        }
    }
    let mut scan = PvScan {
        label_sector: label.sector,
        pv_uuid: label.pv_uuid.clone(),
        device_size: label.device_size,
        metadata: None,
        metadata_origin: None,
        problems: Vec::new(),
        vg_name: None,
        vg_uuid: None,
        seqno: None,
        data_offset: label.data_areas.first().map(|&(o, _)| o),
        metadata_areas: label.metadata_areas.clone(),
        in_use: label.ext_flags.map(|f| f & 1 != 0),
    };
    let origin = |i: usize, off: u64| format!("mda {i} at byte {off}");
    match best {
        Some((i, off, t)) => {
            for (j, joff, why) in &bad {
                problems.push(
                    format!(
                        "{} is unusable ({why}); using {}",
                        origin(*j, *joff),
                        origin(i, off)
                    )
                    .into(),
                );
            }
            for (j, joff, r) in &reads {
                if let MdaRead::Text(o) = r
                    && o.vg.seqno < t.vg.seqno
                {
                    problems.push(format!(
                        "{} holds older metadata (seqno {}) than {} (seqno {}); using the newer",
                        origin(*j, *joff),
                        o.vg.seqno,
                        origin(i, off),
                        t.vg.seqno
                    ).into());
                }
            }
            scan.metadata_origin = Some(format!(
                "{} (text at byte {}{})",
                origin(i, off),
                t.text_at,
                if t.wrapped {
                    ", wrapping round the end of the area"
                } else {
                    ""
                }
            ));
            scan.metadata = Some(t.text.clone());
            scan.vg_name = Some(t.vg.name.clone());
            scan.vg_uuid = Some(t.vg.id.clone());
            scan.seqno = Some(t.vg.seqno);
        }
        None => {
            for (j, joff, why) in &bad {
                problems.push(format!("{} is unusable: {why}", origin(*j, *joff)).into());
            }
            if !bad.is_empty() {
                problems.push(
                    if reads.is_empty() {
                        "no metadata area of this PV can be read".to_string()
                    } else {
                        "no metadata area of this PV holds readable VG metadata".to_string()
                    }
                    .into(),
                );
            }
        }
    }
    scan.problems = problems;
    Ok(Some(scan))
}

/// Whether sector bytes `s` start with a label header.
fn has_label_id(s: &[u8]) -> bool {
    s.get(..8) == Some(LABEL_ID.as_slice())
}

/// Look for the label in sectors 0–3. Errors when a `LABELONE` sector is
/// found but none of them is a valid LVM2 label.
fn find_label(
    src: &dyn ReadAt,
    checks: Checks,
    problems: &mut Vec<Problem>,
) -> Result<Option<Label>> {
    let mut first_error: Option<Error> = None;
    for sector in 0..LABEL_SCAN_SECTORS {
        let at = sector * SECTOR;
        if at >= src.size() {
            break;
        }
        let len = SECTOR.min(src.size() - at);
        let buf = read_vec(src, at, len, SECTOR).map_err(|e| Error::io("LVM2 label", e))?;
        if !has_label_id(&buf) {
            continue;
        }
        match decode_label(&buf, sector, checks) {
            Ok(l) => {
                if let Some(e) = first_error {
                    problems.push(format!("ignored a damaged label: {e}").into());
                }
                return Ok(Some(l));
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

fn decode_label(buf: &[u8], sector: u64, checks: Checks) -> Result<Label> {
    let at = sector * SECTOR;
    let corrupt =
        |rel: usize, detail: String| Error::corrupt("label_header", at + rel as u64, detail);
    if buf.len() < SECTOR as usize {
        return Err(corrupt(
            0,
            format!("the label sector is cut short ({} of 512 bytes)", buf.len()),
        ));
    }
    let sector_xl = le::u64(buf, 8).unwrap_or(u64::MAX);
    if sector_xl != sector {
        return Err(corrupt(
            8,
            format!("sector_xl is {sector_xl} but the label is in sector {sector}"),
        ));
    }
    let crc_xl = le::u32(buf, 16).unwrap_or(0);
    let crc = calc_crc(INITIAL_CRC, &buf[LABEL_CRC_FROM..]);
    if checks.checksums && crc != crc_xl {
        return Err(corrupt(
            16,
            format!("crc_xl is {crc_xl:#010x} but the sector's checksum is {crc:#010x}"),
        ));
    }
    if buf.get(24..32) != Some(LVM2_LABEL.as_slice()) {
        return Err(corrupt(
            24,
            format!(
                "type is \"{}\" (expected \"LVM2 001\")",
                crate::text::escape(&buf[24..32])
            ),
        ));
    }
    let offset_xl = le::u32(buf, 20).unwrap_or(0) as usize;
    if offset_xl < LABEL_HEADER_SIZE || offset_xl + PV_HEADER_SIZE > buf.len() {
        return Err(corrupt(
            20,
            format!("offset_xl {offset_xl} does not leave room for the pv_header in the sector"),
        ));
    }
    let pvh = offset_xl;
    let pv_corrupt =
        |rel: usize, detail: String| Error::corrupt("pv_header", at + rel as u64, detail);
    let raw_uuid = &buf[pvh..pvh + 32];
    if !raw_uuid
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'!' | b'#'))
    {
        return Err(pv_corrupt(
            pvh,
            format!(
                "pv_uuid \"{}\" is not an LVM UUID",
                crate::text::escape(raw_uuid)
            ),
        ));
    }
    let device_size = le::u64(buf, pvh + 32).unwrap_or(0);
    let mut pos = pvh + PV_HEADER_SIZE;
    let data_areas =
        locn_list(buf, &mut pos, "data area list").map_err(|(rel, d)| pv_corrupt(rel, d))?;
    let metadata_areas =
        locn_list(buf, &mut pos, "metadata area list").map_err(|(rel, d)| pv_corrupt(rel, d))?;
    // pv_header_extension, when there is room for it and it is set.
    let mut ext_flags = None;
    if let (Some(version), Some(flags)) = (le::u32(buf, pos), le::u32(buf, pos + 4))
        && version != 0
    {
        ext_flags = Some(flags);
    }
    for (i, &(off, size)) in metadata_areas.iter().enumerate() {
        if size <= MDA_HEADER_SIZE {
            return Err(pv_corrupt(
                pvh,
                format!("metadata area {i} at byte {off} has a size of {size} bytes"),
            ));
        }
    }
    Ok(Label {
        sector,
        pv_uuid: lvm_uuid(raw_uuid),
        device_size,
        data_areas,
        metadata_areas,
        ext_flags,
    })
}

/// A `disk_locn` list ended by an entry whose offset is 0; `pos` moves past it.
fn locn_list(
    buf: &[u8],
    pos: &mut usize,
    what: &str,
) -> std::result::Result<Vec<(u64, u64)>, (usize, String)> {
    let mut out = Vec::new();
    loop {
        let (Some(offset), Some(size)) = (le::u64(buf, *pos), le::u64(buf, *pos + 8)) else {
            return Err((
                *pos,
                format!("the {what} runs past the end of the label sector"),
            ));
        };
        *pos += DISK_LOCN_SIZE;
        if offset == 0 {
            return Ok(out);
        }
        out.push((offset, size));
    }
}

/// Read the committed metadata of the area at `offset` of `size` bytes.
fn read_mda(src: &dyn ReadAt, offset: u64, size: u64, checks: Checks) -> Result<MdaRead> {
    let corrupt =
        |rel: u64, detail: String| Error::corrupt("mda_header", offset.saturating_add(rel), detail);
    let h = read_vec(src, offset, MDA_HEADER_SIZE, MDA_HEADER_SIZE)
        .map_err(|e| Error::io(format!("mda_header at byte {offset}"), e))?;
    let checksum_xl = le::u32(&h, 0).unwrap_or(0);
    let crc = calc_crc(INITIAL_CRC, &h[4..]);
    if checks.checksums && crc != checksum_xl {
        return Err(corrupt(
            0,
            format!("checksum_xl is {checksum_xl:#010x} but the header's checksum is {crc:#010x}"),
        ));
    }
    if h.get(4..20) != Some(FMTT_MAGIC.as_slice()) {
        return Err(corrupt(
            4,
            "bad magic (expected \" LVM2 x[5A%r0N*>\")".into(),
        ));
    }
    let version = le::u32(&h, 20).unwrap_or(0);
    if version != FMTT_VERSION {
        return Err(corrupt(20, format!("version {version} (expected 1)")));
    }
    let start = le::u64(&h, 24).unwrap_or(0);
    if start != offset {
        return Err(corrupt(
            24,
            format!("start is {start} but the pv_header puts the area at {offset}"),
        ));
    }
    let mda_size = le::u64(&h, 32).unwrap_or(0);
    if mda_size != size {
        return Err(corrupt(
            32,
            format!("size is {mda_size} but the pv_header says {size}"),
        ));
    }
    let rl = RAW_LOCN_OFFSET;
    let r_offset = le::u64(&h, rl).unwrap_or(0);
    let r_size = le::u64(&h, rl + 8).unwrap_or(0);
    let r_checksum = le::u32(&h, rl + 16).unwrap_or(0);
    let r_flags = le::u32(&h, rl + 20).unwrap_or(0);
    if r_flags & RAW_LOCN_IGNORED != 0 {
        return Ok(MdaRead::Ignored);
    }
    if r_offset == 0 || r_size == 0 {
        return Ok(MdaRead::Empty);
    }
    let rcorrupt =
        |detail: String| Error::corrupt("raw_locn", offset.saturating_add(rl as u64), detail);
    if r_offset < MDA_HEADER_SIZE || r_offset >= mda_size {
        return Err(rcorrupt(format!(
            "metadata offset {r_offset} is outside the text area (512..{mda_size})"
        )));
    }
    if r_size > mda_size - MDA_HEADER_SIZE {
        return Err(rcorrupt(format!(
            "metadata size {r_size} is larger than the text area ({} bytes)",
            mda_size - MDA_HEADER_SIZE
        )));
    }
    if r_size > MAX_METADATA_TEXT {
        return Err(rcorrupt(format!(
            "metadata size {r_size} is above the limit of {MAX_METADATA_TEXT} bytes"
        )));
    }
    // Circular buffer: what does not fit before the end continues after the header.
    let end = r_offset + r_size; // both below mda_size: no overflow
    let wrap = end.saturating_sub(mda_size);
    if wrap > r_offset - MDA_HEADER_SIZE {
        return Err(rcorrupt(format!(
            "metadata of {r_size} bytes at {r_offset} wraps over itself"
        )));
    }
    let first_len = r_size - wrap;
    let text_at = offset
        .checked_add(r_offset)
        .ok_or_else(|| rcorrupt("metadata offset overflows".into()))?;
    let io = |e| Error::io(format!("metadata text at byte {text_at}"), e);
    let mut bytes = read_vec(src, text_at, first_len, MAX_METADATA_TEXT).map_err(io)?;
    if wrap > 0 {
        // The header was read from there, so this cannot overflow.
        let tail_at = offset.saturating_add(MDA_HEADER_SIZE);
        let tail = read_vec(src, tail_at, wrap, MAX_METADATA_TEXT)
            .map_err(|e| Error::io(format!("metadata text at byte {tail_at}"), e))?;
        bytes.extend_from_slice(&tail);
    }
    let crc = calc_crc(INITIAL_CRC, &bytes);
    if checks.checksums && crc != r_checksum {
        return Err(Error::corrupt(
            "metadata text",
            text_at,
            format!(
                "checksum is {crc:#010x} but raw_locn says {r_checksum:#010x} ({r_size} bytes{})",
                if wrap > 0 { ", wrapped" } else { "" }
            ),
        ));
    }
    let root = text::parse(&bytes)
        .map_err(|e| Error::corrupt("metadata text", text_at, format!("cannot be parsed: {e}")))?;
    let vg = meta::decode(&root).map_err(|e| {
        Error::corrupt(
            "metadata text",
            text_at,
            format!("not valid VG metadata: {e}"),
        )
    })?;
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    Ok(MdaRead::Text(Box::new(MdaText {
        text: String::from_utf8_lossy(&bytes[..end]).into_owned(),
        vg,
        text_at,
        wrapped: wrap > 0,
    })))
}

/// A hint for a volume without a valid-looking label whose bytes still look
/// like an LVM2 PV (a damaged label sector), or `None`.
pub fn damaged_label_hint(src: &dyn ReadAt) -> Option<String> {
    let mut head = vec![0u8; (LABEL_SCAN_SECTORS * SECTOR).min(src.size()) as usize];
    src.read_exact_at(0, &mut head).ok()?;
    for (i, s) in head.chunks(SECTOR as usize).enumerate() {
        if has_label_id(s) || s.get(24..32) == Some(LVM2_LABEL.as_slice()) {
            return Some(format!(
                "sector {i} holds part of an LVM2 label (\"LABELONE\"/\"LVM2 001\") but not a whole one: the PV label may be damaged"
            ));
        }
    }
    // lvm2 puts the first metadata area at the machine's page size.
    for off in [4096u64, 8192, 16384, 65536] {
        let mut magic = [0u8; 16];
        if src.read_exact_at(off + 4, &mut magic).is_ok() && &magic == FMTT_MAGIC {
            return Some(format!(
                "no LVM2 label, but an LVM2 metadata area header at byte {off}: the PV label may be damaged"
            ));
        }
    }
    None
}
