//! A repair's writes to an NBD export, on the reader's own connection:
//! `NBD_CMD_WRITE`, then `NBD_CMD_FLUSH` when the server offers it, and
//! reads that check what was written, through the same socket, reply
//! reader thread and handles as [`super::Nbd`]'s reads. One connection
//! suffices for a server that serves one client at a time (`qemu-nbd`
//! without `--shared`).
//!
//! Every request keeps to the block sizes the server states: a write that
//! does not start or end on the minimum block size reads the blocks at its
//! edges first (read-modify-write), and writes and reads go in pieces of at
//! most the maximum payload. A write drops the reader's cached blocks it
//! overlaps. An export the server marks read-only (`NBD_FLAG_READ_ONLY`) is
//! refused before anything is sent.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{Blocks, Conn, Nbd, PIECE, Uri, aligned, limits, lock, proto};
use crate::error::{Error, Result};
use crate::io::{NetworkDisk, WriteAt};

/// An NBD export opened for writing, sharing the reader's connection.
pub struct NbdWriter {
    uri: String,
    size: u64,
    flags: u16,
    conn: Arc<Conn>,
    /// The reader's block caches: a write drops what it overlaps.
    caches: [Arc<Mutex<Blocks>>; 2],
    /// Every request starts and ends on this (the server's minimum block size).
    min: u64,
    /// The most bytes one request carries (a multiple of `min`).
    chunk: u64,
}

/// Why an export cannot be written, from its transmission flags.
pub fn read_only_reason(uri: &str, flags: u16) -> Option<String> {
    (flags & proto::FLAG_READ_ONLY != 0).then(|| {
        format!(
            "{uri}: the NBD server serves the export read-only (NBD_FLAG_READ_ONLY, e.g. \
             qemu-nbd --read-only or nbdkit -r): vmrescue cannot write to it; serve it writable \
             for the repair"
        )
    })
}

impl NbdWriter {
    /// Connect to `uri`'s server (one connection, for reading and writing)
    /// and open its export for writing. Refused when it is read-only.
    pub fn open(uri: &Uri) -> Result<NbdWriter> {
        NbdWriter::new(&Nbd::open(uri)?)
    }

    /// Writes to `nbd`'s export on its connection. Refused when the export
    /// is read-only.
    pub fn new(nbd: &Nbd) -> Result<NbdWriter> {
        if let Some(why) = nbd.read_only() {
            return Err(Error::Refused(format!("{why}; nothing was written")));
        }
        let (min, max) = limits(&nbd.export);
        let chunk = (max.min(PIECE) / min).max(1) * min;
        Ok(NbdWriter {
            uri: nbd.uri.text.clone(),
            size: nbd.size,
            flags: nbd.export.flags,
            conn: Arc::clone(&nbd.conn),
            caches: [Arc::clone(&nbd.small), Arc::clone(&nbd.big)],
            min,
            chunk,
        })
    }

    /// Send requests of `kind` for `from..to` (aligned) in pieces of at
    /// most `chunk` bytes, all before waiting for the first reply; a
    /// write's pieces come from `data` (its bytes from `from`). Returns
    /// what reads brought, in order.
    fn pieces(&self, kind: u16, from: u64, to: u64, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut slots = Vec::new();
        let mut at = from;
        while at < to {
            let n = (to - at).min(self.chunk);
            let payload = if kind == proto::CMD_WRITE {
                data.get((at - from) as usize..(at - from + n) as usize)
                    .ok_or_else(|| self.conn.kind_error(kind, at, n as u32, "short payload"))?
            } else {
                &[]
            };
            let slot = self
                .conn
                .send(kind, at, n as u32, payload)
                .map_err(|why| self.conn.kind_error(kind, at, n as u32, &why))?;
            slots.push(slot);
            at += n;
        }
        let mut out = Vec::new();
        for slot in slots {
            let got = self.conn.wait(&slot)?;
            out.extend_from_slice(&got);
        }
        Ok(out)
    }

    /// The bytes of `from..to`, read from the server in aligned pieces.
    fn read_range(&self, from: u64, to: u64) -> io::Result<Vec<u8>> {
        let (a, b) = aligned(from, to, self.min, self.size);
        let got = self.pieces(proto::CMD_READ, a, b, &[])?;
        got.get((from - a) as usize..(to - a) as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                self.conn
                    .kind_error(proto::CMD_READ, from, (to - from) as u32, "short reply")
            })
    }

    /// Forget the reader's cached blocks that overlap `from..to`.
    fn drop_cached(&self, from: u64, to: u64) {
        for cache in &self.caches {
            let mut c = lock(cache);
            let size = c.size;
            let (first, last) = (from / size, (to - 1) / size);
            let Blocks { map, order, .. } = &mut *c;
            map.retain(|&i, _| i < first || i > last);
            order.retain(|&i| i < first || i > last);
        }
    }

    /// `data` (the bytes of `offset..end`) with the server's bytes around
    /// it up to `a..b`, the range widened to whole minimum blocks.
    fn with_edges(
        &self,
        data: &[u8],
        offset: u64,
        end: u64,
        (a, b): (u64, u64),
    ) -> io::Result<Vec<u8>> {
        let mut whole = vec![0u8; (b - a) as usize];
        if a < offset {
            let head = self.read_range(a, (a + self.min).min(b))?;
            whole[..head.len()].copy_from_slice(&head);
        }
        let t = (end - end % self.min).max(a);
        // The tail's block, unless it is the head's, read just above.
        if end < b && !(a < offset && t == a) {
            let tail = self.read_range(t, b)?;
            whole[(t - a) as usize..].copy_from_slice(&tail);
        }
        whole[(offset - a) as usize..(end - a) as usize].copy_from_slice(data);
        Ok(whole)
    }

    fn check_range(&self, offset: u64, len: usize) -> io::Result<u64> {
        offset
            .checked_add(len as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| crate::io::past_end(offset, len, self.size))
    }
}

impl WriteAt for NbdWriter {
    fn key(&self) -> PathBuf {
        PathBuf::from(&self.uri)
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = self.check_range(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        // From the server, not from the reader's cache: this checks a write.
        buf.copy_from_slice(&self.read_range(offset, end)?);
        Ok(())
    }
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let end = self.check_range(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        let (a, b) = aligned(offset, end, self.min, self.size);
        let whole;
        let data = if (a, b) == (offset, end) {
            data
        } else {
            // Read-modify-write of the blocks at the edges.
            whole = self.with_edges(data, offset, end, (a, b))?;
            &whole
        };
        let written = self.pieces(proto::CMD_WRITE, a, b, data);
        // Whatever came of it, the cached blocks may be stale now; reads
        // asked after this see the server's bytes.
        self.drop_cached(a, b);
        written.map(drop)
    }
    fn sync(&self) -> io::Result<()> {
        if self.flags & proto::FLAG_SEND_FLUSH == 0 {
            // Nothing to ask: the server writes through.
            return Ok(());
        }
        let slot = self
            .conn
            .send(proto::CMD_FLUSH, 0, 0, &[])
            .map_err(|why| self.conn.kind_error(proto::CMD_FLUSH, 0, 0, &why))?;
        self.conn.wait(&slot).map(drop)
    }
}
