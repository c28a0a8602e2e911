//! Reading through a block map: what VHD, VHDX and VDI readers share.
//!
//! Each reader tells, for a virtual offset, where the bytes there live (a
//! position in the image file, zeros, or the parent image) and how many
//! bytes on the same answer holds; [`read_mapped`] does the rest.

use std::sync::Arc;

use crate::io::{ReadAt, past_end};

/// Where the virtual bytes at an offset come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Stored in the image file at this byte position.
    Host(u64),
    /// Not stored: zeros.
    Zero,
    /// Not stored here: the parent's bytes (zeros without a parent).
    Parent,
}

/// What every block-mapped container holds: its name, file and parent.
pub struct Base {
    /// The file's name, for messages.
    pub name: String,
    /// The image file.
    pub file: Arc<dyn ReadAt>,
    /// The parent image of a differencing disk.
    pub parent: Option<Arc<dyn ReadAt>>,
}

impl Base {
    /// A container named `name` in `file`, no parent yet.
    pub fn new(file: Arc<dyn ReadAt>, name: &str) -> Base {
        Base {
            name: name.to_string(),
            file,
            parent: None,
        }
    }
}

/// A container whose virtual bytes are found through a block map.
pub trait Mapped {
    /// The virtual disk's size.
    fn virtual_size(&self) -> u64;
    /// Where the byte at `offset` (below the size) lives, and how many bytes
    /// from there (at least 1) are found the same way, contiguously.
    fn locate(&self, offset: u64) -> std::io::Result<(Piece, u64)>;
    /// Name, file and parent.
    fn base(&self) -> &Base;
}

/// Fill `buf` with the virtual bytes at `offset` of `m`.
pub fn read_mapped(m: &dyn Mapped, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let size = m.virtual_size();
    let end = offset
        .checked_add(buf.len() as u64)
        .ok_or_else(|| past_end(offset, buf.len(), size))?;
    if end > size {
        return Err(past_end(offset, buf.len(), size));
    }
    let base = m.base();
    let mut done = 0usize;
    while done < buf.len() {
        let pos = offset + done as u64;
        let (piece, run) = m.locate(pos)?;
        let left = (buf.len() - done) as u64;
        let mut n = run.max(1).min(left);
        if let Piece::Host(h) = piece {
            // Blocks that follow each other in the file too are read in
            // one go (each turn adds at least a byte: bounded by the buffer).
            while n < left {
                match m.locate(pos + n)? {
                    (Piece::Host(next), more) if Some(next) == h.checked_add(n) => {
                        n = n.saturating_add(more.max(1)).min(left);
                    }
                    _ => break,
                }
            }
        }
        let n = n as usize;
        let dst = &mut buf[done..done + n];
        match piece {
            Piece::Host(h) => {
                let file = &base.file;
                let fits = h.checked_add(n as u64).is_some_and(|e| e <= file.size());
                if !fits {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "{}: virtual bytes {pos}+{n} are stored at file byte {h}, past the \
                             file's end ({} bytes; the file is cut short)",
                            base.name,
                            file.size()
                        ),
                    ));
                }
                file.read_exact_at(h, dst)?;
            }
            Piece::Zero => dst.fill(0),
            Piece::Parent => match &base.parent {
                Some(p) => {
                    let psize = p.size();
                    let have = psize.saturating_sub(pos).min(n as u64) as usize;
                    if have > 0 {
                        p.read_exact_at(pos, &mut dst[..have])?;
                    }
                    dst[have..].fill(0);
                }
                None => dst.fill(0),
            },
        }
        done += n;
    }
    Ok(())
}

/// A bounded cache of small tables read from the file (sector bitmaps),
/// keyed by their file position.
#[derive(Debug, Default)]
pub struct TableCache {
    entries: std::sync::Mutex<Vec<(u64, Arc<[u8]>)>>,
}

/// Tables kept by a [`TableCache`].
const CACHED_TABLES: usize = 32;

impl TableCache {
    /// The `len` bytes at `pos` of `file`, from the cache or read now.
    pub fn get(&self, file: &dyn ReadAt, pos: u64, len: usize) -> std::io::Result<Arc<[u8]>> {
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = g.iter().position(|(p, t)| *p == pos && t.len() == len) {
            let e = g.remove(i);
            let t = Arc::clone(&e.1);
            g.push(e);
            return Ok(t);
        }
        drop(g);
        let mut v = vec![0u8; len];
        file.read_exact_at(pos, &mut v)?;
        let t: Arc<[u8]> = v.into();
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() >= CACHED_TABLES {
            g.remove(0);
        }
        g.push((pos, Arc::clone(&t)));
        Ok(t)
    }
}

/// A GUID/UUID as text: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, the bytes
/// in the order given (callers reorder Microsoft's mixed-endian GUIDs).
pub fn uuid_text(b: &[u8; 16]) -> String {
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// A Microsoft GUID (first three fields little-endian) as text.
pub fn guid_text(b: &[u8; 16]) -> String {
    let mut o = *b;
    o[0..4].reverse();
    o[4..6].reverse();
    o[6..8].reverse();
    uuid_text(&o)
}
