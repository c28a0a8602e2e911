//! Decompressing one compressed cluster.
//!
//! A compressed cluster is stored as raw deflate (no zlib header) or as
//! zstd frames. The stored length is rounded up to 512-byte sectors, so the
//! input may carry bytes of the next cluster after the end of the stream:
//! decompression stops as soon as a whole cluster has been produced.

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};
use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

use super::header::CompressionType;

thread_local! {
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
    static ZSTD: RefCell<Option<Decoder<'static>>> = const { RefCell::new(None) };
}

/// Decompress `input` into all of `out`. The error text says what went wrong
/// (the caller adds where).
pub(super) fn decompress(
    kind: CompressionType,
    input: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    match kind {
        CompressionType::Zlib => inflate(input, out),
        CompressionType::Zstd => unzstd(input, out),
    }
}

fn inflate(input: &[u8], out: &mut [u8]) -> Result<(), String> {
    INFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = slot.get_or_insert_with(|| Decompress::new(false));
        d.reset(false);
        // Raw deflate produces the whole cluster in one call when the output
        // buffer is large enough; loop in case it stops early.
        for _ in 0..64 {
            let (in_pos, out_pos) = (d.total_in() as usize, d.total_out() as usize);
            if out_pos >= out.len() {
                return Ok(());
            }
            let status = d
                .decompress(
                    &input[in_pos.min(input.len())..],
                    &mut out[out_pos..],
                    FlushDecompress::Finish,
                )
                .map_err(|e| format!("deflate data is damaged ({e})"))?;
            let done = d.total_out() as usize;
            if done >= out.len() {
                return Ok(());
            }
            let progressed = d.total_in() as usize != in_pos || done != out_pos;
            if status == Status::StreamEnd || !progressed {
                return Err(format!(
                    "deflate data ends after {done} of {} bytes",
                    out.len()
                ));
            }
        }
        Err("deflate data makes no progress".to_string())
    })
}

fn unzstd(input: &[u8], out: &mut [u8]) -> Result<(), String> {
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut d = Decoder::new().map_err(|e| format!("zstd decoder: {e}"))?;
            // A cluster is at most 2 MiB; refuse frames asking for larger windows
            // instead of allocating what a hostile frame asks for.
            d.set_parameter(DParameter::WindowLogMax(22))
                .map_err(|e| format!("zstd decoder: {e}"))?;
            *slot = Some(d);
        }
        let Some(d) = slot.as_mut() else {
            return Err("zstd decoder unavailable".to_string());
        };
        d.reinit().map_err(|e| format!("zstd decoder: {e}"))?;
        let mut inb = InBuffer::around(input);
        let mut outb = OutBuffer::around(out);
        // Each call consumes input or produces output; a stream that does
        // neither is damaged. The bound is generous: one byte per call at worst.
        let limit = input.len() + outb.capacity() + 16;
        for _ in 0..limit {
            if outb.pos() == outb.capacity() {
                return Ok(());
            }
            let (ip, op) = (inb.pos(), outb.pos());
            let r = d
                .run(&mut inb, &mut outb)
                .map_err(|e| format!("zstd data is damaged ({e})"));
            if let Err(e) = r {
                // Reset so the next cluster starts clean.
                let _ = d.reinit();
                return Err(e);
            }
            if outb.pos() == outb.capacity() {
                return Ok(());
            }
            if inb.pos() == ip && outb.pos() == op {
                let _ = d.reinit();
                return Err(format!(
                    "zstd data ends after {} of {} bytes",
                    outb.pos(),
                    outb.capacity()
                ));
            }
        }
        let _ = d.reinit();
        Err("zstd data makes no progress".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Vec<u8> {
        (0..65536u32)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn raw_deflate_with_trailing_bytes() {
        let data = sample();
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&data).unwrap();
        let mut c = enc.finish().unwrap();
        c.extend_from_slice(&[0xAA; 300]);
        let mut out = vec![0u8; data.len()];
        decompress(CompressionType::Zlib, &c, &mut out).unwrap();
        assert_eq!(out, data);
        // Truncated: an error, not a panic.
        let e = decompress(CompressionType::Zlib, &c[..c.len() / 3], &mut out).unwrap_err();
        assert!(e.contains("ends after"), "{e}");
        // Garbage.
        assert!(decompress(CompressionType::Zlib, &[0xff; 100], &mut out).is_err());
    }

    #[test]
    fn zstd_with_trailing_bytes() {
        let data = sample();
        let mut c = zstd::bulk::compress(&data, 3).unwrap();
        c.extend_from_slice(&[0x55; 300]);
        let mut out = vec![0u8; data.len()];
        decompress(CompressionType::Zstd, &c, &mut out).unwrap();
        assert_eq!(out, data);
        assert!(decompress(CompressionType::Zstd, &c[..c.len() / 2], &mut out).is_err());
        assert!(
            decompress(
                CompressionType::Zstd,
                &[0x28, 0xb5, 0x2f, 0xfd, 0xff],
                &mut out
            )
            .is_err()
        );
        // And the decoder still works afterwards.
        decompress(CompressionType::Zstd, &c, &mut out).unwrap();
        assert_eq!(out, data);
    }
}
