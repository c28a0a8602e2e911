//! Decompression of btrfs file extents: zlib, LZO and zstd, each as btrfs
//! frames it, into exactly the extent's `ram_bytes`.
//!
//! Every decompressor is bounded: the output never grows past `out_len`
//! (at most [`MAX_EXTENT`], the largest extent btrfs compresses), and input
//! that is not what its kind promises is an error naming the kind, the byte
//! within the extent where it went wrong (offsets in errors are relative to
//! the extent's first byte) and what was wrong. As the kernel does, a stream
//! that ends cleanly before `out_len` bytes leaves the rest zero.
//!
//! - zlib: a zlib stream (RFC 1950). When its header announces deflate
//!   without a preset dictionary the kernel inflates the raw deflate data
//!   after the two header bytes and never checks the Adler-32 trailer; so
//!   does this.
//! - zstd: one zstd frame, with a window of at most 2^17 bytes (btrfs's
//!   limit); what follows the frame (padding to the sector) is ignored.
//! - LZO: a 4-byte little-endian length of the whole compressed data
//!   (these four bytes included), then segments: a 4-byte little-endian
//!   segment length and that many bytes of LZO1X data that decompress to at
//!   most one sector. A segment header never crosses a sector boundary:
//!   when fewer than 4 bytes are left in the sector, the rest of the sector
//!   is padding. The LZO1X decoder here is written from the format's
//!   description (the Linux kernel's `Documentation/staging/lzo.rst`).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::io::Read as _;

use crate::error::{Error, Result};

/// Largest decompressed extent btrfs writes (`BTRFS_MAX_UNCOMPRESSED`, 128 KiB).
pub const MAX_EXTENT: usize = 128 * 1024;
/// Largest zstd window btrfs uses (`ZSTD_BTRFS_MAX_WINDOWLOG`).
const ZSTD_MAX_WINDOWLOG: u32 = 17;
/// Bytes of an LZO length header.
const LZO_LEN: usize = 4;

/// How a file extent is compressed (`compression` of the file extent item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// 0: stored as is.
    None,
    /// 1: zlib.
    Zlib,
    /// 2: LZO, in btrfs's segment framing.
    Lzo,
    /// 3: zstd.
    Zstd,
}

impl Compression {
    /// The kind for the on-disk number; `None` for one btrfs does not define.
    pub fn from_disk(v: u8) -> Option<Compression> {
        match v {
            0 => Some(Compression::None),
            1 => Some(Compression::Zlib),
            2 => Some(Compression::Lzo),
            3 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The name mount options use (`none`, `zlib`, `lzo`, `zstd`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Lzo => "lzo",
            Compression::Zstd => "zstd",
        }
    }

    fn structure(self) -> String {
        format!("btrfs {}-compressed extent", self.name())
    }
}

/// Decompress one extent's on-disk bytes into exactly `out_len` bytes (the extent's ram_bytes);
/// `sector_size` is needed for LZO's per-sector segment framing.
pub fn decompress(
    kind: Compression,
    input: &[u8],
    out_len: usize,
    sector_size: u32,
) -> Result<Vec<u8>> {
    if out_len > MAX_EXTENT {
        return Err(Error::corrupt(
            kind.structure(),
            0,
            format!(
                "decompressed length {out_len} is above btrfs's largest compressed extent ({MAX_EXTENT})"
            ),
        ));
    }
    let mut out = match kind {
        Compression::None => input.get(..out_len).unwrap_or(input).to_vec(),
        Compression::Zlib => zlib(input, out_len)?,
        Compression::Zstd => zstd(input, out_len)?,
        Compression::Lzo => lzo(input, out_len, sector_size)?,
    };
    // A stream that ended cleanly but short: the rest reads as zeros.
    out.resize(out_len, 0);
    Ok(out)
}

fn zlib(input: &[u8], out_len: usize) -> Result<Vec<u8>> {
    let structure = || Compression::Zlib.structure();
    let (cmf, flg) = match input {
        [a, b, ..] => (*a, *b),
        _ => {
            return Err(Error::corrupt(
                structure(),
                0,
                format!("{} bytes: too short for a zlib header", input.len()),
            ));
        }
    };
    let header = u16::from_be_bytes([cmf, flg]);
    if cmf & 0x0f != 8 || cmf >> 4 > 7 || header % 31 != 0 {
        return Err(Error::corrupt(
            structure(),
            0,
            format!("bad zlib header {cmf:#04x} {flg:#04x} (expected deflate, check bits valid)"),
        ));
    }
    if flg & 0x20 != 0 {
        return Err(Error::corrupt(
            structure(),
            1,
            "zlib stream asks for a preset dictionary (btrfs never uses one)",
        ));
    }
    let data = input.get(2..).unwrap_or_default();
    let mut d = flate2::Decompress::new(false);
    let mut out = vec![0u8; out_len];
    loop {
        let (in_pos, out_pos) = (counter(d.total_in()), counter(d.total_out()));
        if out_pos >= out_len {
            break;
        }
        let src = data.get(in_pos..).unwrap_or_default();
        let dst = out.get_mut(out_pos..).unwrap_or_default();
        let status = d
            .decompress(src, dst, flate2::FlushDecompress::None)
            .map_err(|e| {
                Error::corrupt(
                    structure(),
                    counter(d.total_in()).saturating_add(2) as u64,
                    format!("bad deflate data: {e}"),
                )
            })?;
        if status == flate2::Status::StreamEnd {
            break;
        }
        if counter(d.total_in()) == in_pos && counter(d.total_out()) == out_pos {
            return Err(Error::corrupt(
                structure(),
                input.len() as u64,
                format!("the deflate stream ends early: {out_pos} of {out_len} bytes decompressed"),
            ));
        }
    }
    out.truncate(counter(d.total_out()));
    Ok(out)
}

/// A byte counter of the inflater, as an index (it never passes a slice length).
fn counter(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn zstd(input: &[u8], out_len: usize) -> Result<Vec<u8>> {
    if let Some(out) = zstd_whole(input, out_len) {
        return Ok(out);
    }
    let structure = || Compression::Zstd.structure();
    let err = |e: std::io::Error| Error::corrupt(structure(), 0, format!("bad zstd frame: {e}"));
    let mut d = zstd::stream::read::Decoder::with_buffer(input)
        .map_err(err)?
        .single_frame();
    d.window_log_max(ZSTD_MAX_WINDOWLOG).map_err(err)?;
    let mut out = Vec::with_capacity(out_len);
    d.take(out_len as u64).read_to_end(&mut out).map_err(err)?;
    Ok(out)
}

/// zstd decompression contexts kept for reuse, from extent to extent and
/// from thread to thread (making one costs more than decompressing a small
/// extent, and the threads that decompress ahead come and go).
static ZSTD_DCTXS: std::sync::Mutex<Vec<zstd::zstd_safe::DCtx<'static>>> =
    std::sync::Mutex::new(Vec::new());
/// Most contexts kept (one per thread that decompresses at a time).
const ZSTD_DCTXS_KEPT: usize = 8;

/// The fast path: the frame (padding after it cut off) decompressed in one
/// call into a buffer of `out_len` bytes with a reused context. `None`
/// when that does not work out (a corrupt frame, one larger than
/// `out_len`, a window over btrfs's limit): the streaming path then
/// decides, and words any error.
fn zstd_whole(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(input).ok()?;
    let frame = input.get(..frame_len)?;
    if !zstd_window_fits(frame) {
        return None;
    }
    let kept = ZSTD_DCTXS.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut dctx = kept.or_else(zstd::zstd_safe::DCtx::try_create)?;
    // A frame that failed leaves the context mid-way: reset it.
    let _ = dctx.reset(zstd::zstd_safe::ResetDirective::SessionOnly);
    let mut out = Vec::with_capacity(out_len);
    let done = dctx.decompress(&mut out, frame);
    let mut pool = ZSTD_DCTXS.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < ZSTD_DCTXS_KEPT {
        pool.push(dctx);
    }
    drop(pool);
    done.ok()?;
    Some(out)
}

/// Whether the zstd frame header announces a window of at most 2^17
/// bytes (a single-segment frame's window is its content, which the
/// output buffer bounds).
fn zstd_window_fits(frame: &[u8]) -> bool {
    match (frame.get(4), frame.get(5)) {
        (Some(fhd), _) if fhd & 0x20 != 0 => true,
        (Some(_), Some(&wd)) => {
            let log = 10u32.saturating_add(u32::from(wd >> 3));
            let Some(base) = 1u64.checked_shl(log) else {
                return false;
            };
            let size = base.saturating_add((base / 8).saturating_mul(u64::from(wd & 7)));
            size <= 1u64 << ZSTD_MAX_WINDOWLOG
        }
        _ => false,
    }
}

/// Read a 4-byte little-endian LZO length at `at`.
fn lzo_len(input: &[u8], at: usize, what: &str) -> Result<usize> {
    let bytes = at
        .checked_add(LZO_LEN)
        .and_then(|end| input.get(at..end))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or_else(|| {
            Error::corrupt(
                Compression::Lzo.structure(),
                at as u64,
                format!(
                    "the {what} length is cut off (the data is {} bytes)",
                    input.len()
                ),
            )
        })?;
    Ok(usize::try_from(u32::from_le_bytes(bytes)).unwrap_or(usize::MAX))
}

fn lzo(input: &[u8], out_len: usize, sector_size: u32) -> Result<Vec<u8>> {
    let structure = || Compression::Lzo.structure();
    let sector = usize::try_from(sector_size).unwrap_or(0);
    if sector < LZO_LEN || !sector.is_power_of_two() || sector > 65536 {
        return Err(Error::Invalid(format!(
            "sector size {sector_size} for an LZO extent (expected a power of two, 4 KiB to 64 KiB)"
        )));
    }
    let total = lzo_len(input, 0, "total")?;
    if total < LZO_LEN || total > input.len() {
        return Err(Error::corrupt(
            structure(),
            0,
            format!(
                "total length {total} does not fit the {} bytes of the extent",
                input.len()
            ),
        ));
    }
    // The most a segment of one sector compresses to (LZO1X's worst case).
    let max_segment = sector.saturating_add(sector / 16).saturating_add(64 + 3);
    // Room for the last segment's whole sector and the decoder's slack: no reallocation.
    let mut out = Vec::with_capacity(out_len.saturating_add(sector).saturating_add(LZO_SLACK));
    let mut pos = LZO_LEN;
    // Every segment is at least a header long: the loop ends.
    while pos < total && out.len() < out_len {
        // A header never crosses a sector: skip the padding before it.
        let left = sector.saturating_sub(pos.checked_rem(sector).unwrap_or(0));
        if left < LZO_LEN {
            pos = pos.saturating_add(left);
            if pos >= total {
                break;
            }
        }
        let seg_len = lzo_len(input, pos, "segment")?;
        let start = pos.saturating_add(LZO_LEN);
        if seg_len == 0 || seg_len > max_segment {
            return Err(Error::corrupt(
                structure(),
                pos as u64,
                format!(
                    "segment length {seg_len} (expected 1 to {max_segment} for {sector}-byte sectors)"
                ),
            ));
        }
        let end = start
            .checked_add(seg_len)
            .filter(|&e| e <= total)
            .ok_or_else(|| {
                Error::corrupt(
                    structure(),
                    pos as u64,
                    format!("segment of {seg_len} bytes at byte {start} runs past the total length {total}"),
                )
            })?;
        let seg = input.get(start..end).unwrap_or_default();
        // A segment is one sector at most; the last may hold more than the
        // extent needs (what is past `out_len` is dropped, as the kernel does).
        lzo1x(seg, &mut out, sector).map_err(|(at, why)| {
            Error::corrupt(
                structure(),
                start.saturating_add(at) as u64,
                format!("LZO1X segment at byte {start}: {why}"),
            )
        })?;
        pos = end;
    }
    out.truncate(out_len);
    Ok(out)
}

/// Bytes past a segment's `room` in the output it is decoded into: short
/// literal runs and matches are copied 8 or 16 bytes at a time, and what a
/// copy writes past its end is overwritten by the next one or cut off.
const LZO_SLACK: usize = 16;

/// An LZO1X error: the position in the segment and what was wrong.
type LzoError = (usize, String);

/// Decompress the LZO1X stream `src`, appending at most `room` bytes to
/// `out` (matches reach only into this stream's own output). On error:
/// the position in `src` and what was wrong (`out` is left as it was).
fn lzo1x(src: &[u8], out: &mut Vec<u8>, room: usize) -> std::result::Result<(), LzoError> {
    let base = out.len();
    out.resize(base.saturating_add(room).saturating_add(LZO_SLACK), 0);
    let mut d = Lzo1x {
        src,
        ip: 0,
        dst: out.get_mut(base..).unwrap_or_default(),
        op: 0,
        room,
    };
    let r = d.run();
    let produced = d.op;
    match r {
        Ok(()) => {
            out.truncate(base.saturating_add(produced));
            Ok(())
        }
        Err(e) => {
            out.truncate(base);
            Err(e)
        }
    }
}

/// The state of one LZO1X segment's decoding: input position `ip` in
/// `src`, output position `op` in `dst` (`room` bytes and [`LZO_SLACK`]
/// more). Every copy is checked once against `room` and the input's end.
struct Lzo1x<'a> {
    src: &'a [u8],
    ip: usize,
    dst: &'a mut [u8],
    op: usize,
    room: usize,
}

/// An LZO1X error at `at` (out of line: the decoder's hot paths stay small).
#[cold]
#[inline(never)]
fn lzo_fail(at: usize, why: std::fmt::Arguments<'_>) -> LzoError {
    (at, why.to_string())
}

/// The error of a stream cut off at `at` (a free function: the decoder's
/// state never leaves registers for it).
#[cold]
#[inline(never)]
fn lzo_cut(at: usize) -> LzoError {
    (
        at,
        "the stream ends in the middle of an instruction".to_string(),
    )
}

impl Lzo1x<'_> {
    #[inline]
    fn byte(&mut self) -> std::result::Result<usize, LzoError> {
        let b = *self.src.get(self.ip).ok_or_else(|| lzo_cut(self.ip))?;
        self.ip = self.ip.saturating_add(1);
        Ok(usize::from(b))
    }

    /// A 16-bit little-endian distance field.
    #[inline]
    fn le16(&mut self) -> std::result::Result<usize, LzoError> {
        let end = self.ip.saturating_add(2);
        let b = self
            .src
            .get(self.ip..end)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .ok_or_else(|| lzo_cut(self.ip))?;
        self.ip = end;
        Ok(usize::from(u16::from_le_bytes(b)))
    }

    /// A length with zero-byte extension: `base` plus 255 for each zero
    /// byte plus the next (non-zero) byte.
    #[inline]
    fn extended(&mut self, base: usize) -> std::result::Result<usize, LzoError> {
        let mut len = base;
        loop {
            let b = self.byte()?;
            if b != 0 {
                return Ok(len.saturating_add(b));
            }
            len = len.saturating_add(255);
            if len > MAX_EXTENT.saturating_mul(2) {
                return Err((self.ip, format!("length extension past {len} bytes")));
            }
        }
    }

    /// Copy `n` literal bytes from the input.
    #[inline]
    fn literals(&mut self, n: usize) -> std::result::Result<(), LzoError> {
        let end = self.op.saturating_add(n);
        if end > self.room {
            return Err(lzo_fail(
                self.ip,
                format_args!("{n} literal bytes overrun the {}-byte output", self.room),
            ));
        }
        let src_end = self.ip.saturating_add(n);
        if src_end > self.src.len() {
            return Err(lzo_fail(
                self.ip,
                format_args!("{n} literal bytes run past the end of the segment"),
            ));
        }
        // Short runs (most of them: the 0-3 after a match) as one 16-byte
        // move when the input has 16 bytes left; the output has the slack.
        let short = n <= 16
            && match (
                self.src
                    .get(self.ip..self.ip.saturating_add(16))
                    .and_then(|s| <&[u8; 16]>::try_from(s).ok()),
                self.dst
                    .get_mut(self.op..self.op.saturating_add(16))
                    .and_then(|d| <&mut [u8; 16]>::try_from(d).ok()),
            ) {
                (Some(s), Some(d)) => {
                    *d = *s;
                    true
                }
                _ => false,
            };
        if !short
            && let (Some(d), Some(s)) = (
                self.dst.get_mut(self.op..end),
                self.src.get(self.ip..src_end),
            )
        {
            d.copy_from_slice(s);
        }
        self.ip = src_end;
        self.op = end;
        Ok(())
    }

    /// Copy a `len`-byte match from `dist` bytes back; `at` is where its
    /// instruction starts (for errors).
    #[inline]
    fn copy(&mut self, at: usize, dist: usize, len: usize) -> std::result::Result<(), LzoError> {
        // Segments are compressed one by one: a match stays inside its own.
        if dist == 0 || dist > self.op {
            return Err(lzo_fail(
                at,
                format_args!(
                    "match distance {dist} reaches before the segment's output ({} bytes)",
                    self.op
                ),
            ));
        }
        let end = self.op.saturating_add(len);
        if end > self.room {
            return Err(lzo_fail(
                at,
                format_args!("a {len}-byte match overruns the {}-byte output", self.room),
            ));
        }
        let from = self.op.saturating_sub(dist);
        if dist >= 8 && len <= 64 {
            // 8 bytes at a time: each chunk reads only bytes written
            // before it (dist >= 8); the last may spill into the slack.
            let mut k = 0;
            while k < len {
                let s = from.saturating_add(k);
                let o = self.op.saturating_add(k);
                let chunk = self
                    .dst
                    .get(s..s.saturating_add(8))
                    .and_then(|c| <[u8; 8]>::try_from(c).ok());
                if let (Some(c), Some(d)) = (
                    chunk,
                    self.dst
                        .get_mut(o..o.saturating_add(8))
                        .and_then(|d| <&mut [u8; 8]>::try_from(d).ok()),
                ) {
                    *d = c;
                }
                k = k.saturating_add(8);
            }
        } else if len <= 16 {
            // A short overlapping match: byte by byte (each byte may be
            // one this match wrote).
            for k in 0..len {
                let b = self.dst.get(from.saturating_add(k)).copied().unwrap_or(0);
                if let Some(d) = self.dst.get_mut(self.op.saturating_add(k)) {
                    *d = b;
                }
            }
        } else if dist == 1 {
            let b = self.dst.get(from).copied().unwrap_or(0);
            if let Some(d) = self.dst.get_mut(self.op..end) {
                d.fill(b);
            }
        } else {
            // Overlapping (or long) matches in runs: what lies from `from`
            // on repeats every `dist` bytes, so each run may take all that
            // is already written; the runs double in length.
            let mut done = 0;
            while done < len {
                let o = self.op.saturating_add(done);
                let n = (len.saturating_sub(done)).min(o.saturating_sub(from));
                self.dst.copy_within(from..from.saturating_add(n), o);
                done = done.saturating_add(n);
            }
        }
        self.op = end;
        Ok(())
    }

    fn run(&mut self) -> std::result::Result<(), LzoError> {
        // The state: how many literals the last instruction copied (0-3),
        // or 4 after a literal run of 4 or more.
        let mut state: usize;
        let first = *self
            .src
            .first()
            .ok_or((0usize, "empty segment".to_string()))?;
        if first > 17 {
            self.ip = 1;
            let n = usize::from(first).saturating_sub(17);
            self.literals(n)?;
            state = n.min(4);
        } else {
            state = 0;
        }
        // Each instruction consumes at least one byte: at most src.len() of them.
        for _ in 0..=self.src.len() {
            let at = self.ip;
            let t = self.byte()?;
            let (len, dist, s) = if t < 16 {
                match state {
                    0 => {
                        let n = if t == 0 { self.extended(15)? } else { t };
                        self.literals(n.saturating_add(3))?;
                        state = 4;
                        continue;
                    }
                    1..=3 => {
                        let h = self.byte()?;
                        (2, (h << 2).saturating_add(t >> 2).saturating_add(1), t & 3)
                    }
                    _ => {
                        let h = self.byte()?;
                        (
                            3,
                            (h << 2).saturating_add(t >> 2).saturating_add(2049),
                            t & 3,
                        )
                    }
                }
            } else if t < 32 {
                let l = t & 7;
                let len = if l == 0 { self.extended(7)? } else { l }.saturating_add(2);
                let d = self.le16()?;
                let dist = 16384usize
                    .saturating_add((t & 8) << 11)
                    .saturating_add(d >> 2);
                if dist == 16384 {
                    // The end of the stream.
                    if self.ip != self.src.len() {
                        return Err((
                            self.ip,
                            format!(
                                "{} bytes after the end marker",
                                self.src.len().saturating_sub(self.ip)
                            ),
                        ));
                    }
                    return Ok(());
                }
                (len, dist, d & 3)
            } else if t < 64 {
                let l = t & 31;
                let len = if l == 0 { self.extended(31)? } else { l }.saturating_add(2);
                let d = self.le16()?;
                (len, (d >> 2).saturating_add(1), d & 3)
            } else if t < 128 {
                let h = self.byte()?;
                (
                    ((t >> 5) & 1).saturating_add(3),
                    (h << 3).saturating_add((t >> 2) & 7).saturating_add(1),
                    t & 3,
                )
            } else {
                let h = self.byte()?;
                (
                    ((t >> 5) & 3).saturating_add(5),
                    (h << 3).saturating_add((t >> 2) & 7).saturating_add(1),
                    t & 3,
                )
            };
            self.copy(at, dist, len)?;
            self.literals(s)?;
            state = s;
        }
        Err((self.ip, "no end marker".to_string()))
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
    use std::io::Write as _;

    fn lzo_frame(segments: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![0u8; 4];
        for s in segments {
            v.extend_from_slice(&(s.len() as u32).to_le_bytes());
            v.extend_from_slice(s);
        }
        let total = v.len() as u32;
        v[..4].copy_from_slice(&total.to_le_bytes());
        v
    }

    #[test]
    fn lzo_literals_and_matches() {
        // 3 literals, then a 9-byte match at distance 3 (001LLLLL), then the end marker.
        let seg: &[u8] = &[20, b'a', b'b', b'c', 32 | 7, 8, 0, 0x11, 0, 0];
        let out = decompress(Compression::Lzo, &lzo_frame(&[seg]), 12, 4096).unwrap();
        assert_eq!(out, b"abcabcabcabc");
        // Short output is zero-filled to the extent's length.
        let out = decompress(Compression::Lzo, &lzo_frame(&[seg]), 16, 4096).unwrap();
        assert_eq!(&out[..12], b"abcabcabcabc");
        assert_eq!(&out[12..], &[0; 4]);
        // A match with two trailing literals (01LDDDSS: length 3, distance 1).
        let seg: &[u8] = &[18, b'x', 0b0100_0010, 0, b'y', b'z', 0x11, 0, 0];
        let out = decompress(Compression::Lzo, &lzo_frame(&[seg]), 6, 4096).unwrap();
        assert_eq!(out, b"xxxxyz");
    }

    /// An LZO1X literal run of `n` (19 or more) bytes of `c` in state 0.
    fn literal_run(n: usize, c: u8) -> Vec<u8> {
        let mut v = vec![0u8];
        let mut left = n - 18;
        while left > 255 {
            v.push(0);
            left -= 255;
        }
        v.push(left as u8);
        v.extend(std::iter::repeat_n(c, n));
        v
    }

    #[test]
    fn lzo_header_never_crosses_a_sector() {
        // A first segment that ends 2 bytes before the sector's end: the
        // next header starts on the next sector (4096-byte sectors).
        let mut seg = literal_run(4066, b'r');
        seg.extend_from_slice(&[0x11, 0, 0]);
        assert_eq!(4 + 4 + seg.len(), 4094);
        let mut data = lzo_frame(&[&seg]);
        data.extend_from_slice(&[0, 0]);
        let second: &[u8] = &[17 + 2, b's', b't', 0x11, 0, 0];
        data.extend_from_slice(&(second.len() as u32).to_le_bytes());
        data.extend_from_slice(second);
        let total = data.len() as u32;
        data[..4].copy_from_slice(&total.to_le_bytes());
        let want_len = 4066 + 2;
        let out = decompress(Compression::Lzo, &data, want_len, 4096).unwrap();
        assert!(out[..want_len - 2].iter().all(|&b| b == b'r'));
        assert_eq!(&out[want_len - 2..], b"st");
        // With 8 KiB sectors the padding is data: the header read there is garbage.
        assert!(decompress(Compression::Lzo, &data, want_len, 8192).is_err());
    }

    #[test]
    fn lzo_garbage_is_an_error() {
        let good: &[u8] = &[20, b'a', b'b', b'c', 32 | 7, 8, 0, 0x11, 0, 0];
        let frame = lzo_frame(&[good]);
        // Cut anywhere: an error, never a panic.
        // (Cut to 4 bytes it is an empty stream: all zeros, as the kernel reads it.)
        for cut in (0..frame.len()).filter(|&c| c != 4) {
            let mut f = frame[..cut].to_vec();
            if f.len() >= 4 {
                f[..4].copy_from_slice(&(cut as u32).to_le_bytes());
            }
            assert!(
                decompress(Compression::Lzo, &f, 12, 4096).is_err(),
                "cut {cut}"
            );
        }
        // A match reaching before the output.
        let bad: &[u8] = &[20, b'a', b'b', b'c', 32 | 7, 16, 0, 0x11, 0, 0];
        let e = decompress(Compression::Lzo, &lzo_frame(&[bad]), 12, 4096).unwrap_err();
        assert!(e.to_string().contains("match distance 5"), "{e}");
        // More output than the extent holds: the extent's part.
        let out = decompress(Compression::Lzo, &frame, 11, 4096).unwrap();
        assert_eq!(out, b"abcabcabcab");
        // More than a sector from one segment.
        let mut seg = literal_run(4097, b'r');
        seg.extend_from_slice(&[0x11, 0, 0]);
        let e = decompress(Compression::Lzo, &lzo_frame(&[&seg]), 8192, 4096).unwrap_err();
        assert!(
            e.to_string().contains("overrun the 4096-byte output"),
            "{e}"
        );
        // A total length past the data, a huge segment length.
        let mut f = frame.clone();
        f[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(decompress(Compression::Lzo, &f, 12, 4096).is_err());
        let mut f = frame.clone();
        f[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = decompress(Compression::Lzo, &f, 12, 4096).unwrap_err();
        assert!(e.to_string().contains("segment length"), "{e}");
        // Every single-bit flip: an error or some output of the exact length.
        for i in 0..frame.len() * 8 {
            let mut f = frame.clone();
            f[i / 8] ^= 1 << (i % 8);
            if let Ok(out) = decompress(Compression::Lzo, &f, 12, 4096) {
                assert_eq!(out.len(), 12);
            }
        }
    }

    /// A xorshift generator for the random LZO1X streams.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// An extended length `v` (more than `base`): zero bytes, then the rest.
    fn push_ext(s: &mut Vec<u8>, v: usize, base: usize) {
        let mut r = v - base;
        while r > 255 {
            s.push(0);
            r -= 255;
        }
        s.push(r as u8);
    }

    /// A random valid LZO1X stream of at most `room` bytes of output, with
    /// every kind of instruction (short and long literal runs, the three
    /// match kinds and both forms of `0000DDSS`, overlapping and not,
    /// extended lengths), and the output it stands for, made byte by byte.
    fn random_stream(rng: &mut Rng, room: usize) -> (Vec<u8>, Vec<u8>) {
        let mut s = Vec::new();
        let mut out: Vec<u8> = Vec::new();
        let target = room - rng.below(room / 4);
        let lit = |rng: &mut Rng, s: &mut Vec<u8>, out: &mut Vec<u8>, n: usize| {
            for _ in 0..n {
                let b = b"abcdefgh \n"[rng.below(10)];
                s.push(b);
                out.push(b);
            }
        };
        let run = |rng: &mut Rng, s: &mut Vec<u8>, out: &mut Vec<u8>, n: usize| {
            if n <= 18 {
                s.push((n - 3) as u8);
            } else {
                s.push(0);
                push_ext(s, n - 3, 15);
            }
            lit(rng, s, out, n);
        };
        let mut state;
        let n = 1 + rng.below(300);
        if n <= 238 && rng.below(2) == 0 {
            s.push((n + 17) as u8);
            lit(rng, &mut s, &mut out, n);
            state = n.min(4);
        } else {
            let n = n.max(4);
            run(rng, &mut s, &mut out, n);
            state = 4;
        }
        while out.len() + 300 + 3 < target {
            let have = out.len();
            let k = rng.below(6);
            let sl = rng.below(4);
            let (len, dist) = if state == 0 && k == 0 {
                let n = 4 + {
                    let long = rng.below(4) == 0;
                    rng.below(if long { 290 } else { 12 })
                };
                run(rng, &mut s, &mut out, n);
                state = 4;
                continue;
            } else if (1..=3).contains(&state) && k == 1 {
                let dist = 1 + rng.below(have.min(1024));
                let d = dist - 1;
                s.push((((d & 3) << 2) | sl) as u8);
                s.push((d >> 2) as u8);
                (2, dist)
            } else if state == 4 && k == 1 && have >= 2049 {
                let dist = 2049 + rng.below((have - 2048).min(1024));
                let d = dist - 2049;
                s.push((((d & 3) << 2) | sl) as u8);
                s.push((d >> 2) as u8);
                (3, dist)
            } else if k == 2 {
                let len = 3 + rng.below(6);
                let dist = 1 + rng.below(have.min(2048));
                let d = dist - 1;
                let t = if len <= 4 {
                    0x40 | ((len - 3) << 5)
                } else {
                    0x80 | ((len - 5) << 5)
                };
                s.push((t | ((d & 7) << 2) | sl) as u8);
                s.push((d >> 3) as u8);
                (len, dist)
            } else if k == 3 && have > 16384 {
                let len = 3 + {
                    let long = rng.below(3) == 0;
                    rng.below(if long { 290 } else { 20 })
                };
                let dist = 16385 + rng.below((have - 16384).min(32767));
                let d = dist - 16384;
                let h = (d >> 14) << 3;
                if len - 2 <= 7 {
                    s.push((16 | h | (len - 2)) as u8);
                } else {
                    s.push((16 | h) as u8);
                    push_ext(&mut s, len - 2, 7);
                }
                s.extend_from_slice(&((((d & 0x3fff) << 2) | sl) as u16).to_le_bytes());
                (len, dist)
            } else {
                let len = 3 + {
                    let long = rng.below(3) == 0;
                    rng.below(if long { 290 } else { 30 })
                };
                // Near distances often: the overlapping copies.
                let dist = 1 + rng.below(have.min(if k == 4 { 9 } else { 16384 }));
                if len - 2 <= 31 {
                    s.push((32 | (len - 2)) as u8);
                } else {
                    s.push(32);
                    push_ext(&mut s, len - 2, 31);
                }
                s.extend_from_slice(&((((dist - 1) << 2) | sl) as u16).to_le_bytes());
                (len, dist)
            };
            for _ in 0..len {
                out.push(out[out.len() - dist]);
            }
            lit(rng, &mut s, &mut out, sl);
            state = sl;
        }
        s.extend_from_slice(&[0x11, 0, 0]);
        (s, out)
    }

    #[test]
    fn lzo_random_streams_decode_exactly() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..400 {
            let room = if round % 2 == 0 { 4096 } else { 65536 };
            let (s, want) = random_stream(&mut rng, room);
            // Appended after what is there already.
            let mut out = vec![7u8; 5];
            lzo1x(&s, &mut out, room).unwrap();
            assert_eq!(&out[..5], &[7; 5]);
            assert!(out[5..] == want[..], "round {round}");
            if room == 4096 {
                let got = decompress(Compression::Lzo, &lzo_frame(&[&s]), want.len(), 4096);
                assert!(got.unwrap() == want, "round {round}");
            }
            // One byte less of room: an overrun, and the output as it was.
            let mut out = vec![7u8; 5];
            let e = lzo1x(&s, &mut out, want.len() - 1).unwrap_err();
            assert!(e.1.contains("overrun"), "{e:?}");
            assert_eq!(out, [7; 5]);
            // Cut short: an error, never a panic.
            for cut in [1, s.len() / 3, s.len() / 2, s.len() - 1] {
                assert!(lzo1x(&s[..cut], &mut Vec::new(), room).is_err());
            }
            // Flipped bytes: an error, or output within the room.
            for _ in 0..8 {
                let mut f = s.clone();
                let i = rng.below(f.len());
                f[i] ^= 1 << rng.below(8);
                let mut out = Vec::new();
                if lzo1x(&f, &mut out, room).is_ok() {
                    assert!(out.len() <= room);
                }
            }
        }
    }

    #[test]
    fn too_long_is_corrupt() {
        for kind in [
            Compression::None,
            Compression::Zlib,
            Compression::Lzo,
            Compression::Zstd,
        ] {
            let e = decompress(kind, &[], MAX_EXTENT + 1, 4096).unwrap_err();
            assert!(e.to_string().contains("largest compressed extent"), "{e}");
        }
    }

    #[test]
    fn zlib_and_zstd_round_trip() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .take(100_000)
            .collect();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        let zl = z.finish().unwrap();
        assert_eq!(
            decompress(Compression::Zlib, &zl, data.len(), 4096).unwrap(),
            data
        );
        // Padding after the stream is ignored; a shorter extent takes the first bytes.
        let mut padded = zl.clone();
        padded.extend_from_slice(&[0; 100]);
        assert_eq!(
            decompress(Compression::Zlib, &padded, 5000, 4096).unwrap(),
            data[..5000]
        );
        let zs = zstd::bulk::compress(&data, 3).unwrap();
        let mut padded = zs.clone();
        padded.extend_from_slice(&[0; 100]);
        assert_eq!(
            decompress(Compression::Zstd, &padded, data.len(), 4096).unwrap(),
            data
        );
        // A clean end before the extent's length: zeros after it.
        let out = decompress(Compression::Zstd, &zs, data.len() + 10, 4096).unwrap();
        assert_eq!(&out[data.len()..], &[0; 10]);
        // Truncated and flipped: errors (or exact-length output), never a panic.
        for kind_data in [(Compression::Zlib, &zl), (Compression::Zstd, &zs)] {
            let (kind, bytes) = kind_data;
            assert!(
                decompress(kind, &bytes[..bytes.len() / 2], data.len(), 4096).is_err(),
                "{kind:?}"
            );
            assert!(decompress(kind, &[], 10, 4096).is_err());
            assert!(decompress(kind, &[0xff; 64], 10, 4096).is_err());
            for i in (0..bytes.len().min(400) * 8).step_by(7) {
                let mut f = bytes.to_vec();
                f[i / 8] ^= 1 << (i % 8);
                if let Ok(out) = decompress(kind, &f, data.len(), 4096) {
                    assert_eq!(out.len(), data.len());
                }
            }
        }
    }

    /// A frame without a content size: its header states the window.
    fn zstd_frame(data: &[u8], window_log: u32) -> Vec<u8> {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.include_contentsize(false).unwrap();
        e.window_log(window_log).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn zstd_window_is_btrfs_limit() {
        let data: Vec<u8> = (0..MAX_EXTENT).map(|i| (i / 7 % 253) as u8).collect();
        // Within btrfs's 128 KiB window: decompressed (padding ignored).
        let mut ok = zstd_frame(&data, 17);
        assert!(zstd_window_fits(&ok));
        ok.extend_from_slice(&[0; 300]);
        assert_eq!(
            decompress(Compression::Zstd, &ok, MAX_EXTENT, 4096).unwrap(),
            data
        );
        // A larger window than btrfs writes: refused, as the kernel does.
        let big = zstd_frame(&data, 20);
        assert!(!zstd_window_fits(&big));
        let e = decompress(Compression::Zstd, &big, MAX_EXTENT, 4096).unwrap_err();
        assert!(e.to_string().contains("zstd"), "{e}");
        // The context is reused: a bad frame between good ones changes nothing.
        assert!(decompress(Compression::Zstd, &ok[..ok.len() / 3], MAX_EXTENT, 4096).is_err());
        assert_eq!(
            decompress(Compression::Zstd, &ok, MAX_EXTENT, 4096).unwrap(),
            data
        );
        // A frame holding more than the extent: its first bytes.
        assert_eq!(
            decompress(Compression::Zstd, &ok, 1000, 4096).unwrap(),
            data[..1000]
        );
    }

    #[test]
    fn none_copies() {
        assert_eq!(
            decompress(Compression::None, b"abcdef", 4, 4096).unwrap(),
            b"abcd"
        );
        assert_eq!(
            decompress(Compression::None, b"ab", 4, 4096).unwrap(),
            b"ab\0\0"
        );
        assert_eq!(Compression::from_disk(3), Some(Compression::Zstd));
        assert_eq!(Compression::from_disk(4), None);
    }
}
