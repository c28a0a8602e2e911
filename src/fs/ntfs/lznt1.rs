//! LZNT1, the compression of NTFS compressed files: a compression unit
//! (16 clusters) holds chunks of at most 4096 bytes of output, each with a
//! two-byte header (bits 0-11: the chunk's stored length minus 3, bit 15: the
//! chunk is compressed). A compressed chunk is groups of a flag byte and
//! eight items: a literal byte (flag bit 0) or a two-byte back reference
//! (flag bit 1) whose split between displacement and length bits depends on
//! how far into the chunk the output is.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

/// Bytes of output one chunk holds at most.
pub const CHUNK: usize = 4096;

/// Why a unit does not decompress: the byte of the input and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lznt1Error {
    /// Byte of the compressed input.
    pub at: usize,
    /// What was wrong.
    pub detail: String,
}

/// Decompress one compression unit `input` into at most `limit` bytes.
/// Chunks end at a zero header or at the end of `input`; output shorter than
/// `limit` means the rest of the unit reads as zeros (the caller pads).
pub fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, Lznt1Error> {
    let mut out: Vec<u8> = Vec::with_capacity(limit.min(1 << 20));
    let mut pos = 0usize;
    while out.len() < limit {
        let Some(header) = le16(input, pos) else {
            break;
        };
        if header == 0 {
            break;
        }
        let stored = usize::from(header & 0x0fff).saturating_add(1);
        let start = pos.saturating_add(2);
        let end = start.saturating_add(stored);
        let Some(body) = input.get(start..end) else {
            return Err(Lznt1Error {
                at: pos,
                detail: format!(
                    "chunk of {stored} bytes runs past the {} bytes of the unit",
                    input.len()
                ),
            });
        };
        let room = limit.saturating_sub(out.len()).min(CHUNK);
        if header & 0x8000 == 0 {
            // Stored uncompressed.
            let take = body.len().min(room);
            out.extend_from_slice(body.get(..take).unwrap_or(body));
        } else {
            chunk(body, start, room, &mut out)?;
        }
        pos = end;
    }
    Ok(out)
}

fn le16(b: &[u8], o: usize) -> Option<u16> {
    b.get(o..o.checked_add(2)?)?
        .try_into()
        .ok()
        .map(u16::from_le_bytes)
}

/// Decompress one chunk `body` (starting at byte `base` of the unit) onto `out`, at most `room` bytes.
fn chunk(body: &[u8], base: usize, room: usize, out: &mut Vec<u8>) -> Result<(), Lznt1Error> {
    let first = out.len();
    let mut i = 0usize;
    while i < body.len() {
        let flags = body.get(i).copied().unwrap_or(0);
        i = i.saturating_add(1);
        for bit in 0..8u32 {
            if i >= body.len() {
                return Ok(());
            }
            let written = out.len().saturating_sub(first);
            if written >= room {
                return Ok(());
            }
            if flags & (1 << bit) == 0 {
                out.push(body.get(i).copied().unwrap_or(0));
                i = i.saturating_add(1);
                continue;
            }
            let Some(token) = le16(body, i) else {
                return Err(Lznt1Error {
                    at: base.saturating_add(i),
                    detail: "back reference cut by the end of the chunk".into(),
                });
            };
            i = i.saturating_add(2);
            if written == 0 {
                return Err(Lznt1Error {
                    at: base.saturating_add(i).saturating_sub(2),
                    detail: "back reference before any output of the chunk".into(),
                });
            }
            // Displacement bits: at least 4, enough to reach the chunk's start.
            let mut dbits = 4u32;
            while dbits < 12 && written.saturating_sub(1) >= (1usize << dbits) {
                dbits = dbits.saturating_add(1);
            }
            let lbits = 16u32.saturating_sub(dbits);
            let disp = usize::from(token >> lbits).saturating_add(1);
            let len = usize::from(token & ((1u16 << lbits).saturating_sub(1))).saturating_add(3);
            if disp > written {
                return Err(Lznt1Error {
                    at: base.saturating_add(i).saturating_sub(2),
                    detail: format!(
                        "back reference {disp} bytes back, only {written} bytes into the chunk"
                    ),
                });
            }
            let len = len.min(room.saturating_sub(written));
            let from = out.len().saturating_sub(disp);
            for k in 0..len {
                let b = out.get(from.saturating_add(k)).copied().unwrap_or(0);
                out.push(b);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;

    #[test]
    fn stored_chunk() {
        let mut unit = vec![0x03, 0x30]; // 4 bytes stored, not compressed
        unit.extend_from_slice(b"abcd");
        assert_eq!(decompress(&unit, 100).unwrap(), b"abcd");
        assert_eq!(decompress(&unit, 2).unwrap(), b"ab");
    }

    #[test]
    fn literals_and_a_back_reference() {
        // "abcabcabc": flags 0b1000 (4th item is a reference), literals a b c,
        // then displacement 3 length 6: 4 displacement bits at position 3,
        // token = (3-1) << 12 | (6-3).
        let body = [0x08, b'a', b'b', b'c', 0x03, 0x20];
        let mut unit = vec![(body.len() - 1) as u8, 0xb0];
        unit.extend_from_slice(&body);
        assert_eq!(decompress(&unit, 4096).unwrap(), b"abcabcabc");
    }

    #[test]
    fn end_marker_and_truncation() {
        assert_eq!(decompress(&[0, 0, 1, 2], 10).unwrap(), b"");
        assert_eq!(decompress(&[], 10).unwrap(), b"");
        let e = decompress(&[0x10, 0xb0, 0x00], 4096).unwrap_err();
        assert_eq!(e.at, 0);
    }

    #[test]
    fn reference_too_far_back_is_an_error() {
        let body = [0x02, b'a', 0x00, 0x50];
        let mut unit = vec![(body.len() - 1) as u8, 0xb0];
        unit.extend_from_slice(&body);
        let e = decompress(&unit, 4096).unwrap_err();
        assert!(e.detail.contains("back"), "{e:?}");
    }

    #[test]
    fn random_input_never_panics_and_is_bounded() {
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let n = (x % 300) as usize;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(x as u8);
            }
            if let Ok(o) = decompress(&v, 65536) {
                assert!(o.len() <= 65536);
            }
        }
    }
}
