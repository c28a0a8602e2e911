//! A repair's own connection to an NBD export: `NBD_CMD_WRITE`, then
//! `NBD_CMD_FLUSH` when the server offers it, and reads to check what was
//! written, one request at a time.
//!
//! The reader ([`super::Nbd`]) stays read-only; this connection is opened
//! for one repair (or undo) and closed after it. Every request has the
//! reader's deadline, kept by the socket's timeouts. An export the server
//! marks read-only (`NBD_FLAG_READ_ONLY`) is refused before anything is
//! sent.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Export, Stream, Uri, dial, handshake_error, lock, proto};
use crate::error::{Error, Result};
use crate::io::WriteAt;

/// How long the handshake of the repair's connection may take at most: a
/// server that serves one client at a time (`qemu-nbd` without `--shared`)
/// does not answer a second connection while the reader's is open.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// An NBD export opened for writing.
pub struct NbdWriter {
    uri: Uri,
    export: Export,
    stream: Mutex<Stream>,
    next: AtomicU64,
    timeout: Duration,
}

/// Why an export cannot be written, from its transmission flags.
pub fn read_only_reason(uri: &str, flags: u16) -> Option<String> {
    (flags & proto::FLAG_READ_ONLY != 0).then(|| {
        format!(
            "{uri}: the NBD server serves the export read-only (NBD_FLAG_READ_ONLY, e.g. \
             qemu-nbd --read-only): vmrescue cannot write to it; serve it writable for the \
             repair (qemu-nbd --shared=2 without --read-only)"
        )
    })
}

impl NbdWriter {
    /// Connect to `uri`'s server for writing; each request waits at most
    /// `timeout`. Refused when the export is read-only.
    pub fn open(uri: &Uri, timeout: Duration) -> Result<NbdWriter> {
        let hs_timeout = timeout.min(HANDSHAKE);
        let mut stream = dial(uri, hs_timeout)?;
        let export = match proto::handshake(&mut stream, &uri.export) {
            Ok(e) => e,
            Err(proto::HandshakeError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Refused(format!(
                    "{}: the NBD server did not answer a second connection within {} s: it \
                     serves one client at a time (qemu-nbd without --shared), and vmrescue reads \
                     on one connection and writes on another; restart it with --shared=2; \
                     nothing was written",
                    uri.text,
                    hs_timeout.as_secs()
                )));
            }
            Err(e) => return Err(handshake_error(uri, e)),
        };
        if let Some(why) = read_only_reason(&uri.text, export.flags) {
            return Err(Error::Refused(format!("{why}; nothing was written")));
        }
        stream
            .set_timeouts(Some(timeout))
            .map_err(|e| Error::Invalid(format!("{}: {e}", uri.text)))?;
        Ok(NbdWriter {
            uri: uri.clone(),
            export,
            stream: Mutex::new(stream),
            next: AtomicU64::new(1),
            timeout,
        })
    }

    /// What the server said of the export on this connection.
    pub fn export(&self) -> &Export {
        &self.export
    }

    /// Send one request (`payload` after a write's header) and read its
    /// reply: `reply_len` bytes of data for a read, none otherwise.
    fn call(
        &self,
        kind: u16,
        offset: u64,
        payload: &[u8],
        reply_len: usize,
    ) -> io::Result<Vec<u8>> {
        let what = match kind {
            proto::CMD_WRITE => "write",
            proto::CMD_FLUSH => "flush",
            _ => "read",
        };
        let len = if kind == proto::CMD_WRITE {
            payload.len()
        } else {
            reply_len
        };
        let end = offset.saturating_add(len as u64);
        let fail = |why: String| {
            // The caller names the URI (`undo`'s messages name the disk).
            io::Error::other(format!("{what} of bytes {offset}..{end} failed: {why}"))
        };
        let wire_len = u32::try_from(len).map_err(|_| fail("too long for one request".into()))?;
        let handle = self.next.fetch_add(1, Ordering::Relaxed);
        let mut s = lock(&self.stream);
        let timed = |e: io::Error| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                fail(format!(
                    "no reply within {} s (VMRESCUE_NBD_TIMEOUT=SECONDS waits longer)",
                    self.timeout.as_secs()
                ))
            } else {
                fail(e.to_string())
            }
        };
        let header = proto::request(kind, handle, offset, wire_len);
        s.write_all(&header).map_err(timed)?;
        if kind == proto::CMD_WRITE {
            s.write_all(payload).map_err(timed)?;
        }
        s.flush().map_err(timed)?;
        let mut buf = vec![0u8; reply_len];
        let mut p = proto::Pending::new(offset, &mut buf);
        loop {
            let h = proto::read_reply_header(&mut *s, self.export.structured).map_err(timed)?;
            if h.handle() != handle {
                return Err(fail(format!(
                    "reply for handle {:#x}, expected {handle:#x}",
                    h.handle()
                )));
            }
            match proto::read_reply_body(&mut *s, &h, &mut p).map_err(timed)? {
                proto::Step::More => {}
                proto::Step::Done => break,
            }
        }
        if let Some(e) = p.error.take() {
            return Err(fail(e));
        }
        Ok(buf)
    }
}

impl WriteAt for NbdWriter {
    fn key(&self) -> PathBuf {
        PathBuf::from(&self.uri.text)
    }
    fn size(&self) -> u64 {
        self.export.size
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.export.size);
        if end.is_none() {
            return Err(crate::io::past_end(offset, buf.len(), self.export.size));
        }
        let got = self.call(proto::CMD_READ, offset, &[], buf.len())?;
        buf.copy_from_slice(&got);
        Ok(())
    }
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= self.export.size);
        if end.is_none() {
            return Err(crate::io::past_end(offset, data.len(), self.export.size));
        }
        self.call(proto::CMD_WRITE, offset, data, 0).map(drop)
    }
    fn sync(&self) -> io::Result<()> {
        if self.export.flags & proto::FLAG_SEND_FLUSH == 0 {
            // Nothing to ask: the server writes through.
            return Ok(());
        }
        self.call(proto::CMD_FLUSH, 0, &[], 0).map(drop)
    }
}

impl Drop for NbdWriter {
    fn drop(&mut self) {
        let msg = proto::request(proto::CMD_DISC, 0, 0, 0);
        let mut s = lock(&self.stream);
        let _ = s.write_all(&msg);
        s.shutdown();
    }
}
