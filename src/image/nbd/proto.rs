//! The NBD wire protocol, client side: the fixed-newstyle handshake with
//! `NBD_OPT_GO`, requests, and simple and structured replies, over any
//! `Read`/`Write`. Field names follow the protocol document
//! (NetworkBlockDevice `doc/proto.md`); no I/O policy lives here, so the unit
//! tests and the fuzz target drive it with byte buffers.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use std::io::{self, Read, Write};

/// `NBDMAGIC`, the first 8 bytes a server sends.
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: a newstyle server's second word, and every option's prefix.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// The oldstyle handshake's second word.
pub const CLISERV_MAGIC: u64 = 0x0000_4202_8186_1253;
/// The magic of every option reply.
pub const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;

/// Handshake flags (server): fixed newstyle, no zero padding.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1;
/// Handshake flag: the server may omit the 124 zero bytes.
pub const FLAG_NO_ZEROES: u16 = 2;

/// Options.
pub const OPT_EXPORT_NAME: u32 = 1;
/// Options: end the handshake without an export.
pub const OPT_ABORT: u32 = 2;
/// Options: select the export and its transmission parameters.
pub const OPT_GO: u32 = 7;
/// Options: ask for structured replies.
pub const OPT_STRUCTURED_REPLY: u32 = 8;

/// Option reply types.
pub const REP_ACK: u32 = 1;
/// Option reply: information about the export (`NBD_OPT_GO`).
pub const REP_INFO: u32 = 3;
/// Option reply error bit.
pub const REP_FLAG_ERROR: u32 = 1 << 31;
/// Option reply error: the option is not supported.
pub const REP_ERR_UNSUP: u32 = REP_FLAG_ERROR | 1;
/// Option reply error: refused by policy.
pub const REP_ERR_POLICY: u32 = REP_FLAG_ERROR | 2;
/// Option reply error: TLS is required first.
pub const REP_ERR_TLS_REQD: u32 = REP_FLAG_ERROR | 5;
/// Option reply error: no such export.
pub const REP_ERR_UNKNOWN: u32 = REP_FLAG_ERROR | 6;
/// Option reply error: the server is shutting down.
pub const REP_ERR_SHUTDOWN: u32 = REP_FLAG_ERROR | 7;
/// Option reply error: block size constraints must be requested.
pub const REP_ERR_BLOCK_SIZE_REQD: u32 = REP_FLAG_ERROR | 8;

/// Info types (`NBD_REP_INFO`, requested in `NBD_OPT_GO`).
pub const INFO_EXPORT: u16 = 0;
/// Info: the export's description.
pub const INFO_DESCRIPTION: u16 = 2;
/// Info: block size constraints.
pub const INFO_BLOCK_SIZE: u16 = 3;

/// Transmission flags.
pub const FLAG_HAS_FLAGS: u16 = 1;
/// Transmission flag: the export is read-only.
pub const FLAG_READ_ONLY: u16 = 1 << 1;
/// Transmission flag: the server takes `NBD_CMD_FLUSH`.
pub const FLAG_SEND_FLUSH: u16 = 1 << 2;
/// Transmission flag: the server may answer several connections consistently.
pub const FLAG_CAN_MULTI_CONN: u16 = 1 << 8;

/// Request magic.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// Simple reply magic.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// Structured reply chunk magic.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// Commands: the reader sends only `CMD_READ` and `CMD_DISC`; a repair
/// (`NbdWriter`, on the same connection) also `CMD_WRITE` and `CMD_FLUSH`.
pub const CMD_READ: u16 = 0;
/// Command: write the request's payload.
pub const CMD_WRITE: u16 = 1;
/// Command: disconnect.
pub const CMD_DISC: u16 = 2;
/// Command: make every completed write durable.
pub const CMD_FLUSH: u16 = 3;

/// Structured reply flag: the last chunk of the reply.
pub const REPLY_FLAG_DONE: u16 = 1;
/// Chunk types.
pub const REPLY_TYPE_NONE: u16 = 0;
/// Chunk: data at an offset.
pub const REPLY_TYPE_OFFSET_DATA: u16 = 1;
/// Chunk: a hole (reads as zeros) at an offset.
pub const REPLY_TYPE_OFFSET_HOLE: u16 = 2;
/// Chunk: an error for the whole request.
pub const REPLY_TYPE_ERROR: u16 = (1 << 15) | 1;
/// Chunk: an error at an offset.
pub const REPLY_TYPE_ERROR_OFFSET: u16 = (1 << 15) | 2;

/// The longest option reply or error message accepted (the protocol caps
/// strings at 4096 bytes; an `NBD_REP_INFO` is far shorter).
pub const MAX_OPTION_REPLY: u32 = 64 * 1024;
/// The longest export name sent (the protocol's limit).
pub const MAX_NAME: usize = 4096;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read_u16<R: Read + ?Sized>(r: &mut R) -> io::Result<u16> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b)?;
    Ok(u16::from_be_bytes(b))
}

fn read_u32<R: Read + ?Sized>(r: &mut R) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64<R: Read + ?Sized>(r: &mut R) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

/// Read and drop `n` bytes, in small pieces (no allocation of `n`).
fn skip<R: Read + ?Sized>(r: &mut R, mut n: u64) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    while n > 0 {
        let step = usize::try_from(n.min(buf.len() as u64)).unwrap_or(buf.len());
        let piece = buf.get_mut(..step).unwrap_or_default();
        r.read_exact(piece)?;
        n = n.saturating_sub(step as u64);
    }
    Ok(())
}

/// What the server said of the export at the end of the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Size in bytes.
    pub size: u64,
    /// Transmission flags (`NBD_FLAG_READ_ONLY`...).
    pub flags: u16,
    /// Block size constraints (minimum, preferred, maximum), when sent.
    pub block_size: Option<(u32, u32, u32)>,
    /// The export's description, when sent.
    pub description: Option<String>,
    /// Whether structured replies were negotiated.
    pub structured: bool,
}

/// Why a handshake failed, kept apart so the caller can word it for the operator.
#[derive(Debug)]
pub enum HandshakeError {
    /// A socket error or a reply that breaks the protocol.
    Io(io::Error),
    /// The server wants TLS first.
    TlsRequired,
    /// The server has no export of that name (or refused it).
    UnknownExport(String),
    /// The server speaks the oldstyle protocol (no export names).
    Oldstyle,
    /// Another option error: the option, the reply type and its message.
    Refused(u32, u32, String),
}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

/// One option reply: its type and payload (capped at [`MAX_OPTION_REPLY`]).
struct OptReply {
    kind: u32,
    data: Vec<u8>,
}

fn send_option<W: Write + ?Sized>(w: &mut W, option: u32, data: &[u8]) -> io::Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| invalid("option too long".into()))?;
    let mut msg = Vec::with_capacity(data.len().saturating_add(16));
    msg.extend_from_slice(&IHAVEOPT.to_be_bytes());
    msg.extend_from_slice(&option.to_be_bytes());
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(data);
    w.write_all(&msg)?;
    w.flush()
}

fn read_option_reply<R: Read + ?Sized>(r: &mut R, option: u32) -> io::Result<OptReply> {
    let magic = read_u64(r)?;
    if magic != REPLY_MAGIC {
        return Err(invalid(format!(
            "option reply: bad magic {magic:#018x} (expected {REPLY_MAGIC:#018x})"
        )));
    }
    let opt = read_u32(r)?;
    if opt != option {
        return Err(invalid(format!(
            "option reply: answers option {opt}, {option} was sent"
        )));
    }
    let kind = read_u32(r)?;
    let len = read_u32(r)?;
    if len > MAX_OPTION_REPLY {
        return Err(invalid(format!(
            "option reply to option {option}: length {len} above the {MAX_OPTION_REPLY}-byte limit"
        )));
    }
    let mut data = vec![0u8; len as usize];
    r.read_exact(&mut data)?;
    Ok(OptReply { kind, data })
}

fn message(data: &[u8]) -> String {
    String::from_utf8_lossy(data).chars().take(200).collect()
}

/// The fixed-newstyle handshake for `export`: structured replies if the
/// server offers them, then `NBD_OPT_GO` asking for the export's size,
/// flags, block sizes and description (`NBD_OPT_EXPORT_NAME` if the server
/// does not know `NBD_OPT_GO`).
pub fn handshake<S: Read + Write + ?Sized>(
    s: &mut S,
    export: &str,
) -> Result<Export, HandshakeError> {
    if export.len() > MAX_NAME {
        return Err(HandshakeError::Io(invalid(format!(
            "export name of {} bytes is above the protocol's {MAX_NAME}",
            export.len()
        ))));
    }
    let magic = read_u64(s)?;
    if magic != NBDMAGIC {
        return Err(HandshakeError::Io(invalid(format!(
            "not an NBD server: greeting starts with {magic:#018x}, not NBDMAGIC"
        ))));
    }
    let second = read_u64(s)?;
    if second == CLISERV_MAGIC {
        return Err(HandshakeError::Oldstyle);
    }
    if second != IHAVEOPT {
        return Err(HandshakeError::Io(invalid(format!(
            "greeting: bad magic {second:#018x} after NBDMAGIC"
        ))));
    }
    let hflags = read_u16(s)?;
    if hflags & FLAG_FIXED_NEWSTYLE == 0 {
        return Err(HandshakeError::Io(invalid(
            "the server does not speak fixed newstyle NBD (handshake flags without NBD_FLAG_FIXED_NEWSTYLE)".into(),
        )));
    }
    let no_zeroes = hflags & FLAG_NO_ZEROES != 0;
    let cflags: u32 = if no_zeroes { 3 } else { 1 };
    s.write_all(&cflags.to_be_bytes())?;

    let mut structured = false;
    send_option(s, OPT_STRUCTURED_REPLY, &[])?;
    let rep = read_option_reply(s, OPT_STRUCTURED_REPLY)?;
    match rep.kind {
        REP_ACK => structured = true,
        REP_ERR_TLS_REQD => return Err(HandshakeError::TlsRequired),
        k if k & REP_FLAG_ERROR != 0 => {}
        k => {
            return Err(HandshakeError::Io(invalid(format!(
                "NBD_OPT_STRUCTURED_REPLY: unexpected reply type {k}"
            ))));
        }
    }

    let name = export.as_bytes();
    let mut go = Vec::with_capacity(name.len().saturating_add(10));
    go.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
    go.extend_from_slice(name);
    go.extend_from_slice(&2u16.to_be_bytes());
    go.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    go.extend_from_slice(&INFO_DESCRIPTION.to_be_bytes());
    send_option(s, OPT_GO, &go)?;
    let mut out = Export {
        size: 0,
        flags: 0,
        block_size: None,
        description: None,
        structured,
    };
    let mut have_export = false;
    // Each reply is at most MAX_OPTION_REPLY bytes; a server that keeps
    // sending NBD_REP_INFO forever is cut off.
    for _ in 0..64 {
        let rep = read_option_reply(s, OPT_GO)?;
        match rep.kind {
            REP_INFO => {
                let kind = crate::io::be::u16(&rep.data, 0)
                    .ok_or_else(|| invalid("NBD_REP_INFO shorter than its type".into()))?;
                let body = rep.data.get(2..).unwrap_or_default();
                match kind {
                    INFO_EXPORT => {
                        let (size, flags) = crate::io::be::u64(body, 0)
                            .zip(crate::io::be::u16(body, 8))
                            .filter(|_| body.len() == 10)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "NBD_INFO_EXPORT of {} bytes (expected 12)",
                                    rep.data.len()
                                ))
                            })?;
                        out.size = size;
                        out.flags = flags;
                        have_export = true;
                    }
                    INFO_BLOCK_SIZE => {
                        let b = crate::io::be::u32(body, 0)
                            .zip(crate::io::be::u32(body, 4))
                            .zip(crate::io::be::u32(body, 8))
                            .filter(|_| body.len() == 12)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "NBD_INFO_BLOCK_SIZE of {} bytes (expected 14)",
                                    rep.data.len()
                                ))
                            })?;
                        out.block_size = Some((b.0.0, b.0.1, b.1));
                    }
                    INFO_DESCRIPTION => out.description = Some(message(body)),
                    _ => {}
                }
            }
            REP_ACK => {
                if !have_export {
                    return Err(HandshakeError::Io(invalid(
                        "NBD_OPT_GO acknowledged without NBD_INFO_EXPORT (size and flags)".into(),
                    )));
                }
                return Ok(out);
            }
            REP_ERR_UNSUP => return export_name(s, name, no_zeroes, structured),
            REP_ERR_TLS_REQD => return Err(HandshakeError::TlsRequired),
            REP_ERR_UNKNOWN | REP_ERR_POLICY => {
                return Err(HandshakeError::UnknownExport(message(&rep.data)));
            }
            k => return Err(HandshakeError::Refused(OPT_GO, k, message(&rep.data))),
        }
    }
    Err(HandshakeError::Io(invalid(
        "NBD_OPT_GO: more than 64 replies without an end".into(),
    )))
}

/// The old way to pick an export (servers without `NBD_OPT_GO`): no error
/// reply exists; an unknown export closes the connection.
fn export_name<S: Read + Write + ?Sized>(
    s: &mut S,
    name: &[u8],
    no_zeroes: bool,
    structured: bool,
) -> Result<Export, HandshakeError> {
    send_option(s, OPT_EXPORT_NAME, name)?;
    let size = read_u64(s).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            HandshakeError::UnknownExport(String::new())
        } else {
            HandshakeError::Io(e)
        }
    })?;
    let flags = read_u16(s)?;
    if !no_zeroes {
        skip(s, 124)?;
    }
    Ok(Export {
        size,
        flags,
        block_size: None,
        description: None,
        structured,
    })
}

/// The 28 bytes of a read request.
pub fn read_request(handle: u64, offset: u64, len: u32) -> [u8; 28] {
    request(CMD_READ, handle, offset, len)
}

/// The 28 bytes of a request of `kind`.
pub fn request(kind: u16, handle: u64, offset: u64, len: u32) -> [u8; 28] {
    let mut b = [0u8; 28];
    let fields: [&[u8]; 6] = [
        &REQUEST_MAGIC.to_be_bytes(),
        &0u16.to_be_bytes(),
        &kind.to_be_bytes(),
        &handle.to_be_bytes(),
        &offset.to_be_bytes(),
        &len.to_be_bytes(),
    ];
    let mut at = 0usize;
    for f in fields {
        for (d, s) in b.iter_mut().skip(at).zip(f) {
            *d = *s;
        }
        at = at.saturating_add(f.len());
    }
    b
}

/// A request the reply reader is waiting on: where it reads and where the data goes.
pub struct Pending<'a> {
    /// The request's offset on the export.
    pub offset: u64,
    /// Its buffer, exactly the request's length, zero-filled (holes stay zeros).
    pub buf: &'a mut [u8],
    /// Bytes covered so far by data and hole chunks.
    pub covered: u64,
    /// The first error chunk's text (the reply goes on until its last chunk).
    pub error: Option<String>,
    /// Bytes that came as holes (zeros not sent).
    pub holes: u64,
}

impl<'a> Pending<'a> {
    /// A request for `buf.len()` bytes at `offset`.
    pub fn new(offset: u64, buf: &'a mut [u8]) -> Self {
        Pending {
            offset,
            buf,
            covered: 0,
            error: None,
            holes: 0,
        }
    }
}

/// What one reply (simple) or one chunk (structured) was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The request is answered: look at its `error`.
    Done,
    /// More chunks follow for this request.
    More,
}

/// The header of a reply: which request it answers. The caller finds the
/// request (`lookup`), then [`read_reply_body`] fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyHeader {
    /// A simple reply: error (0: none) and handle.
    Simple {
        /// The errno-like value (0 on success).
        error: u32,
        /// The request's handle.
        handle: u64,
    },
    /// A structured reply chunk.
    Chunk {
        /// `NBD_REPLY_FLAG_*`.
        flags: u16,
        /// `NBD_REPLY_TYPE_*`.
        kind: u16,
        /// The request's handle.
        handle: u64,
        /// The payload's length.
        length: u32,
    },
}

impl ReplyHeader {
    /// The handle of the request answered.
    pub fn handle(&self) -> u64 {
        match *self {
            ReplyHeader::Simple { handle, .. } | ReplyHeader::Chunk { handle, .. } => handle,
        }
    }
}

/// Read the next reply's header.
pub fn read_reply_header<R: Read + ?Sized>(r: &mut R, structured: bool) -> io::Result<ReplyHeader> {
    let magic = read_u32(r)?;
    match magic {
        SIMPLE_REPLY_MAGIC => {
            let error = read_u32(r)?;
            let handle = read_u64(r)?;
            Ok(ReplyHeader::Simple { error, handle })
        }
        STRUCTURED_REPLY_MAGIC if structured => {
            let flags = read_u16(r)?;
            let kind = read_u16(r)?;
            let handle = read_u64(r)?;
            let length = read_u32(r)?;
            Ok(ReplyHeader::Chunk {
                flags,
                kind,
                handle,
                length,
            })
        }
        m => Err(invalid(format!("reply with bad magic {m:#010x}"))),
    }
}

/// The name of an NBD error value (errno values as the protocol fixes them).
pub fn error_name(e: u32) -> &'static str {
    match e {
        1 => "EPERM (operation not permitted)",
        5 => "EIO (input/output error)",
        12 => "ENOMEM (out of memory)",
        22 => "EINVAL (invalid argument)",
        28 => "ENOSPC (no space left)",
        75 => "EOVERFLOW (value too large)",
        95 => "ENOTSUP (not supported)",
        108 => "ESHUTDOWN (server shutting down)",
        _ => "unknown error",
    }
}

/// Read the body of the reply whose header is `h` into `p` (the request
/// it answers). Every length is checked against the request before a byte
/// is read: data outside the request, a hole outside it, an oversized
/// error message end the connection with an error.
pub fn read_reply_body<R: Read + ?Sized>(
    r: &mut R,
    h: &ReplyHeader,
    p: &mut Pending<'_>,
) -> io::Result<Step> {
    let len = p.buf.len() as u64;
    match *h {
        ReplyHeader::Simple { error, .. } => {
            if error != 0 {
                p.error = Some(format!("server error {error}: {}", error_name(error)));
            } else {
                r.read_exact(p.buf)?;
                p.covered = len;
            }
            Ok(Step::Done)
        }
        ReplyHeader::Chunk {
            flags,
            kind,
            length,
            ..
        } => {
            match kind {
                REPLY_TYPE_NONE => {
                    if length != 0 || flags & REPLY_FLAG_DONE == 0 {
                        return Err(invalid(format!(
                            "NBD_REPLY_TYPE_NONE chunk with length {length} or without the DONE flag"
                        )));
                    }
                }
                REPLY_TYPE_OFFSET_DATA => {
                    let n = u64::from(length).checked_sub(8).ok_or_else(|| {
                        invalid(format!("OFFSET_DATA chunk of {length} bytes (under 8)"))
                    })?;
                    let at = read_u64(r)?;
                    let (start, end) = within(p, at, n, "OFFSET_DATA")?;
                    let dest = p.buf.get_mut(start..end).ok_or_else(|| {
                        invalid(format!("OFFSET_DATA chunk at {at} outside the request"))
                    })?;
                    r.read_exact(dest)?;
                    p.covered = p.covered.saturating_add(n);
                }
                REPLY_TYPE_OFFSET_HOLE => {
                    if length != 12 {
                        return Err(invalid(format!(
                            "OFFSET_HOLE chunk of {length} bytes (expected 12)"
                        )));
                    }
                    let at = read_u64(r)?;
                    let n = u64::from(read_u32(r)?);
                    let (start, end) = within(p, at, n, "OFFSET_HOLE")?;
                    // Zeros without moving bytes: the buffer may hold data
                    // from an earlier use.
                    if let Some(dest) = p.buf.get_mut(start..end) {
                        dest.fill(0);
                    }
                    p.covered = p.covered.saturating_add(n);
                    p.holes = p.holes.saturating_add(n);
                }
                REPLY_TYPE_ERROR | REPLY_TYPE_ERROR_OFFSET => {
                    let min: u32 = if kind == REPLY_TYPE_ERROR { 6 } else { 14 };
                    if length < min || length > MAX_OPTION_REPLY {
                        return Err(invalid(format!(
                            "error chunk of {length} bytes (between {min} and {MAX_OPTION_REPLY})"
                        )));
                    }
                    let error = read_u32(r)?;
                    let mlen = read_u16(r)?;
                    if u32::from(mlen) > length.saturating_sub(min) {
                        return Err(invalid(format!(
                            "error chunk: message of {mlen} bytes in a {length}-byte chunk"
                        )));
                    }
                    let mut msg = vec![0u8; usize::from(mlen)];
                    r.read_exact(&mut msg)?;
                    let mut text = format!("server error {error}: {}", error_name(error));
                    if kind == REPLY_TYPE_ERROR_OFFSET {
                        let at = read_u64(r)?;
                        text.push_str(&format!(" at offset {at}"));
                    }
                    if !msg.is_empty() {
                        text.push_str(&format!(" ({})", message(&msg)));
                    }
                    let rest = length.saturating_sub(min).saturating_sub(u32::from(mlen));
                    skip(r, u64::from(rest))?;
                    if p.error.is_none() {
                        p.error = Some(text);
                    }
                }
                k if k & (1 << 15) != 0 => {
                    // An error type this client does not know: still an error.
                    if length > MAX_OPTION_REPLY {
                        return Err(invalid(format!(
                            "error chunk type {k} of {length} bytes (limit {MAX_OPTION_REPLY})"
                        )));
                    }
                    skip(r, u64::from(length))?;
                    if p.error.is_none() {
                        p.error = Some(format!("server error chunk of unknown type {k}"));
                    }
                }
                k => {
                    return Err(invalid(format!(
                        "structured reply chunk of unknown type {k} ({length} bytes)"
                    )));
                }
            }
            if flags & REPLY_FLAG_DONE == 0 {
                return Ok(Step::More);
            }
            if p.error.is_none() && p.covered != len {
                p.error = Some(format!(
                    "the reply covered {} of the {len} bytes asked",
                    p.covered
                ));
            }
            Ok(Step::Done)
        }
    }
}

/// Where `n` bytes at export offset `at` lie in the request's buffer,
/// or an error when they leave it.
fn within(p: &Pending<'_>, at: u64, n: u64, what: &str) -> io::Result<(usize, usize)> {
    let len = p.buf.len() as u64;
    let start = at.checked_sub(p.offset).filter(|&s| s <= len);
    let end = start.and_then(|s| s.checked_add(n)).filter(|&e| e <= len);
    match start.zip(end) {
        Some((s, e)) => Ok((
            usize::try_from(s).map_err(|_| invalid(format!("{what}: offset {at}")))?,
            usize::try_from(e).map_err(|_| invalid(format!("{what}: offset {at}")))?,
        )),
        None => Err(invalid(format!(
            "{what} chunk of {n} bytes at offset {at} outside the request ({len} bytes at {})",
            p.offset
        ))),
    }
}
