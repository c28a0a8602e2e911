//! Disks served over NBD (the Network Block Device protocol), read in
//! userspace: `nbd://HOST[:PORT]/EXPORT` and `nbd+unix:///EXPORT?socket=PATH`.
//!
//! One socket per opened export. Requests carry handles and go out as
//! soon as they are made; one reader thread per connection reads the
//! replies (in any order, structured or simple) and hands each to the slot
//! of its request, where the callers wait with a deadline. One connection,
//! not a pool: `qemu-nbd` serves a single client unless started with
//! `--shared`, and a single connection already keeps as many requests in
//! flight as we make. On top of it, [`Nbd`] keeps two caches of slots: 64
//! KiB blocks for small reads (metadata, read again and again, and
//! fetched all at once by [`ReadAt::prefetch`]) and 1 MiB pieces for big
//! reads, with up to 16 MiB requested ahead once reads go forward in order.
//!
//! Reading sends `NBD_CMD_READ` and `NBD_CMD_DISC`, nothing else. A repair
//! writes on the same connection ([`NbdWriter`], reached through
//! [`NetworkDisk::open_writer`]): `NBD_CMD_WRITE` and `NBD_CMD_FLUSH` go
//! through the same socket, reply reader and handles, and each write drops
//! the cached blocks it overlaps. Every request keeps to the block sizes
//! the server states (`NBD_INFO_BLOCK_SIZE`): it starts and ends on the
//! minimum block size and carries at most the maximum payload. TLS is not
//! spoken: a server that requires it is refused with an error that says so.

pub mod proto;
#[cfg(test)]
mod tests;
mod write;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::io::{NetworkDisk, ReadAt, WriteAt, past_end};

pub use proto::Export;
pub use write::{NbdWriter, read_only_reason};

/// The port NBD servers listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 10809;
/// How long a request may wait for its reply before the connection is
/// declared dead (`VMRESCUE_NBD_TIMEOUT`, seconds, changes it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new connection waits for the server's greeting (at most the
/// request deadline): a server greets at once, unless it is busy with
/// another client and has not taken this one yet.
const GREETING_WAIT: Duration = Duration::from_secs(5);
/// Small reads are cached in blocks of this size.
const SMALL_BLOCK: u64 = 64 * 1024;
/// Small blocks kept (32 MiB).
const SMALL_BLOCKS: usize = 512;
/// Big reads go in pieces of this size.
const PIECE: u64 = 1024 * 1024;
/// Pieces requested ahead of a forward-going read.
const AHEAD: u64 = 16;
/// Pieces kept (64 MiB).
const PIECES: usize = 64;
/// A read up to this long goes through the small-block cache.
const SMALL_READ: usize = 128 * 1024;

/// The deadline of every request: [`DEFAULT_TIMEOUT`], or
/// `VMRESCUE_NBD_TIMEOUT` seconds.
pub fn timeout() -> Duration {
    std::env::var("VMRESCUE_NBD_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

/// Whether `s` is an NBD URI (and not a host path).
pub fn is_uri(s: &str) -> bool {
    s.starts_with("nbd://")
        || s.starts_with("nbd+unix://")
        || s.starts_with("nbds://")
        || s.starts_with("nbds+unix://")
}

/// Whether the path given on the command line is an NBD URI.
pub fn is_uri_path(p: &std::path::Path) -> bool {
    p.to_str().is_some_and(is_uri)
}

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP host (name, IPv4 or IPv6 without brackets) and port.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix socket.
    Unix(PathBuf),
}

/// A parsed NBD URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The URI as given.
    pub text: String,
    /// Where the server listens.
    pub address: Address,
    /// The export's name (may be empty: the server's default export).
    pub export: String,
}

fn percent_decode(s: &str, what: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Invalid(format!("{what}: bad %-escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Invalid(format!("{what}: {s:?} is not UTF-8")))
}

/// Parse `nbd://HOST[:PORT][/EXPORT]` or `nbd+unix:///EXPORT?socket=PATH`.
pub fn parse_uri(text: &str) -> Result<Uri> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "{text}: {why} (expected nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH)"
        ))
    };
    if text.starts_with("nbds://") || text.starts_with("nbds+unix://") {
        return Err(Error::Unsupported(format!(
            "{text}: NBD over TLS is not supported; serve the export without TLS on a trusted \
             network or a Unix socket (or through an SSH tunnel) and use nbd:// or nbd+unix://"
        )));
    }
    let (unix, rest) = if let Some(r) = text.strip_prefix("nbd+unix://") {
        (true, r)
    } else if let Some(r) = text.strip_prefix("nbd://") {
        (false, r)
    } else {
        return Err(bad("not an NBD URI"));
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let export = percent_decode(path, text)?;
    if unix {
        if !authority.is_empty() {
            return Err(bad("a Unix socket URI has no host"));
        }
        let socket = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("socket="))
            .ok_or_else(|| bad("no socket=PATH"))?;
        let socket = percent_decode(socket, text)?;
        if socket.is_empty() {
            return Err(bad("empty socket path"));
        }
        return Ok(Uri {
            text: text.to_string(),
            address: Address::Unix(PathBuf::from(socket)),
            export,
        });
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in the host"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse().map_err(|_| bad("bad port"))?,
    };
    Ok(Uri {
        text: text.to_string(),
        address: Address::Tcp {
            host: host.to_string(),
            port,
        },
        export,
    })
}

/// A connected socket.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }
    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
    /// Wait up to `wait` for the server's first bytes; false if none came.
    /// A server that took the connection but serves someone else (qemu-nbd
    /// without `--shared`) leaves it unanswered in its backlog.
    fn greeted_within(&self, wait: Duration) -> io::Result<bool> {
        use std::os::fd::AsFd;
        let fd = match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        };
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let t = rustix::event::Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&t)) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// One request's reply, waited on by whoever needs its bytes.
struct Slot {
    /// `NBD_CMD_READ`, `NBD_CMD_WRITE` or `NBD_CMD_FLUSH`.
    kind: u16,
    offset: u64,
    /// The request's length (a read's reply carries that many bytes).
    len: u32,
    state: Mutex<Option<std::result::Result<Arc<Vec<u8>>, String>>>,
    ready: Condvar,
}

impl Slot {
    /// The bytes of data its reply carries: a read's length, else none.
    fn reply_len(&self) -> usize {
        if self.kind == proto::CMD_READ {
            self.len as usize
        } else {
            0
        }
    }
    fn finish(&self, r: std::result::Result<Arc<Vec<u8>>, String>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.is_none() {
            *st = Some(r);
        }
        self.ready.notify_all();
    }
}

#[derive(Default)]
struct Inflight {
    pending: HashMap<u64, Arc<Slot>>,
    /// Bytes received as holes so far.
    holes: u64,
    /// Why the connection is gone; new requests fail at once.
    dead: Option<String>,
}

/// One connection: the writing half, the requests in flight, the reader thread's socket.
struct Conn {
    uri: String,
    writer: Mutex<Stream>,
    /// A handle on the socket to shut it down from any thread.
    closer: Stream,
    inflight: Arc<Mutex<Inflight>>,
    next: AtomicU64,
    timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fail every request in flight with `why` and refuse new ones.
fn kill(inflight: &Mutex<Inflight>, why: String) {
    let slots: Vec<Arc<Slot>> = {
        let mut st = lock(inflight);
        if st.dead.is_none() {
            st.dead = Some(why.clone());
        }
        st.pending.drain().map(|(_, s)| s).collect()
    };
    for s in slots {
        s.finish(Err(why.clone()));
    }
}

/// The reader thread: replies to slots until the socket ends or breaks the protocol.
fn read_replies(mut r: io::BufReader<Stream>, inflight: Arc<Mutex<Inflight>>, structured: bool) {
    struct Partial {
        buf: Vec<u8>,
        covered: u64,
        error: Option<String>,
    }
    let mut partial: HashMap<u64, Partial> = HashMap::new();
    let why = loop {
        let h = match proto::read_reply_header(&mut r, structured) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                break "the server closed the connection".to_string();
            }
            Err(e) => break format!("reading a reply: {e}"),
        };
        let handle = h.handle();
        let Some(slot) = lock(&inflight).pending.get(&handle).cloned() else {
            break format!("reply for handle {handle:#x}, which no request has");
        };
        let p = partial.entry(handle).or_insert_with(|| Partial {
            buf: vec![0u8; slot.reply_len()],
            covered: 0,
            error: None,
        });
        let mut pending = proto::Pending {
            offset: slot.offset,
            buf: &mut p.buf,
            covered: p.covered,
            error: p.error.take(),
            holes: 0,
        };
        let step = proto::read_reply_body(&mut r, &h, &mut pending);
        if pending.holes > 0 {
            let mut st = lock(&inflight);
            st.holes = st.holes.saturating_add(pending.holes);
        }
        p.covered = pending.covered;
        p.error = pending.error.take();
        match step {
            Ok(proto::Step::More) => {}
            Ok(proto::Step::Done) => {
                lock(&inflight).pending.remove(&handle);
                if let Some(done) = partial.remove(&handle) {
                    slot.finish(match done.error {
                        Some(e) => Err(e),
                        None => Ok(Arc::new(done.buf)),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                break "the server closed the connection in the middle of a reply".to_string();
            }
            Err(e) => break format!("bad reply: {e}"),
        }
    };
    kill(&inflight, why);
}

/// Connect to the server of `uri`, with `timeout` for the connection and
/// (set on the socket) for the handshake that follows.
fn dial(uri: &Uri, timeout: Duration) -> Result<Stream> {
    let stream = match &uri.address {
        Address::Tcp { host, port } => {
            let addrs = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| Error::Invalid(format!("{}: cannot resolve {host}: {e}", uri.text)))?;
            let mut last = None;
            let mut got = None;
            for a in addrs {
                match TcpStream::connect_timeout(&a, timeout) {
                    Ok(s) => {
                        got = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let s = got.ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: cannot connect to the NBD server: {}",
                    uri.text,
                    last.map_or_else(|| "no address".to_string(), |e| e.to_string())
                ))
            })?;
            let _ = s.set_nodelay(true);
            Stream::Tcp(s)
        }
        Address::Unix(p) => Stream::Unix(UnixStream::connect(p).map_err(|e| {
            Error::Invalid(format!(
                "{}: cannot connect to the NBD socket {}: {e}",
                uri.text,
                p.display()
            ))
        })?),
    };
    stream
        .set_timeouts(Some(timeout))
        .map_err(|e| Error::Invalid(format!("{}: {e}", uri.text)))?;
    Ok(stream)
}

impl Conn {
    fn connect(uri: &Uri, timeout: Duration) -> Result<(Conn, Export)> {
        let stream = dial(uri, timeout)?;
        let wait = timeout.min(GREETING_WAIT);
        let greeted = stream
            .greeted_within(wait)
            .map_err(|e| Error::Invalid(format!("{}: {e}", uri.text)))?;
        if !greeted {
            return Err(no_greeting(uri, wait));
        }
        let mut hs = stream
            .try_clone()
            .map_err(|e| Error::Invalid(format!("{}: {e}", uri.text)))?;
        let export = proto::handshake(&mut hs, &uri.export).map_err(|e| handshake_error(uri, e))?;
        // Replies may be long in coming when nothing is asked; the
        // deadline is per request, kept by the callers.
        stream
            .set_timeouts(None)
            .and_then(|()| hs.set_timeouts(Some(timeout)))
            .map_err(|e| Error::Invalid(format!("{}: {e}", uri.text)))?;
        let reader = stream
            .try_clone()
            .map_err(|e| Error::Invalid(format!("{}: {e}", uri.text)))?;
        if let Stream::Tcp(s) = &reader {
            let _ = s.set_write_timeout(Some(timeout));
        }
        let closer = stream
            .try_clone()
            .map_err(|e| Error::Invalid(format!("{}: {e}", uri.text)))?;
        let inflight = Arc::new(Mutex::new(Inflight::default()));
        let theirs = Arc::clone(&inflight);
        let structured = export.structured;
        std::thread::Builder::new()
            .name("nbd-replies".into())
            .spawn(move || {
                read_replies(
                    io::BufReader::with_capacity(256 * 1024, reader),
                    theirs,
                    structured,
                )
            })
            .map_err(|e| Error::Invalid(format!("{}: starting the reply reader: {e}", uri.text)))?;
        Ok((
            Conn {
                uri: uri.text.clone(),
                writer: Mutex::new(hs),
                closer,
                inflight,
                next: AtomicU64::new(1),
                timeout,
            },
            export,
        ))
    }

    /// Send a read request; its slot fills when the reply arrives.
    fn request(&self, offset: u64, len: u32) -> std::result::Result<Arc<Slot>, String> {
        self.send(proto::CMD_READ, offset, len, &[])
    }

    /// Send a request of `kind` (a write's `payload`, exactly `len` bytes,
    /// after its header); its slot fills when the reply arrives.
    fn send(
        &self,
        kind: u16,
        offset: u64,
        len: u32,
        payload: &[u8],
    ) -> std::result::Result<Arc<Slot>, String> {
        let handle = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            kind,
            offset,
            len,
            state: Mutex::new(None),
            ready: Condvar::new(),
        });
        {
            let mut st = lock(&self.inflight);
            if let Some(why) = &st.dead {
                return Err(why.clone());
            }
            st.pending.insert(handle, Arc::clone(&slot));
        }
        let msg = proto::request(kind, handle, offset, len);
        let sent = {
            // Header and payload go out together: other threads send too.
            let mut w = lock(&self.writer);
            w.write_all(&msg).and_then(|()| w.write_all(payload))
        };
        if let Err(e) = sent {
            let why = format!("sending a request: {e}");
            self.die(why.clone());
            return Err(why);
        }
        Ok(slot)
    }

    fn die(&self, why: String) {
        kill(&self.inflight, why);
        self.closer.shutdown();
    }

    /// Wait for `slot`'s bytes until the deadline; past it the connection is given up.
    fn wait(&self, slot: &Slot) -> io::Result<Arc<Vec<u8>>> {
        let deadline = Instant::now() + self.timeout;
        let mut st = lock(&slot.state);
        loop {
            if let Some(r) = st.as_ref() {
                return r.clone().map_err(|why| self.slot_error(slot, &why));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                let why = format!(
                    "no reply within {} s; giving up on the server (VMRESCUE_NBD_TIMEOUT=SECONDS \
                     waits longer)",
                    self.timeout.as_secs()
                );
                self.die(why.clone());
                return Err(self.slot_error(slot, &why));
            }
            st = slot
                .ready
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn error(&self, offset: u64, len: u32, why: &str) -> io::Error {
        self.kind_error(proto::CMD_READ, offset, len, why)
    }

    fn slot_error(&self, slot: &Slot, why: &str) -> io::Error {
        self.kind_error(slot.kind, slot.offset, slot.len, why)
    }

    fn kind_error(&self, kind: u16, offset: u64, len: u32, why: &str) -> io::Error {
        let what = match kind {
            proto::CMD_WRITE => "write",
            proto::CMD_FLUSH => {
                return io::Error::other(format!("{}: flush failed: {why}", self.uri));
            }
            _ => "read",
        };
        io::Error::other(format!(
            "{}: {what} of bytes {offset}..{} failed: {why}",
            self.uri,
            offset.saturating_add(u64::from(len))
        ))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let msg = proto::request(proto::CMD_DISC, 0, 0, 0);
        let _ = lock(&self.writer).write_all(&msg);
        // Let the replies still on their way (read-ahead nobody waits for)
        // arrive before closing: the server answers every request before it
        // acts on NBD_CMD_DISC, and some servers (nbdkit 1.32) abort when a
        // client closes under a reply. Bounded: a second at most.
        let until = Instant::now() + self.timeout.min(Duration::from_secs(1));
        loop {
            let st = lock(&self.inflight);
            if st.pending.is_empty() || st.dead.is_some() || Instant::now() >= until {
                break;
            }
            drop(st);
            std::thread::sleep(Duration::from_millis(1));
        }
        self.closer.shutdown();
    }
}

/// A server that accepted the connection but never greeted it.
fn no_greeting(uri: &Uri, wait: Duration) -> Error {
    Error::Invalid(format!(
        "{}: the NBD server accepted the connection but sent nothing in {} s: it is most \
         likely serving another client (qemu-nbd serves one at a time unless started with \
         --shared=N; a vmrescue browser open on this export is such a client: quit it \
         first, or serve the export with --shared=2)",
        uri.text,
        wait.as_secs_f64()
    ))
}

fn handshake_error(uri: &Uri, e: proto::HandshakeError) -> Error {
    let u = &uri.text;
    match e {
        proto::HandshakeError::TlsRequired => Error::Unsupported(format!(
            "{u}: the NBD server requires TLS, which vmrescue does not speak; serve the export \
             without TLS on a trusted network or a Unix socket (or through an SSH tunnel)"
        )),
        proto::HandshakeError::UnknownExport(msg) => Error::NotFound(format!(
            "export {:?} on the NBD server of {u} (the server refused it{})",
            uri.export,
            if msg.is_empty() {
                String::new()
            } else {
                format!(": {msg}")
            }
        )),
        proto::HandshakeError::Oldstyle => Error::Unsupported(format!(
            "{u}: the server speaks the oldstyle NBD handshake, which has no export names; \
             vmrescue needs a newstyle server (qemu-nbd, nbdkit and nbd-server are)"
        )),
        proto::HandshakeError::Refused(opt, kind, msg) => Error::Invalid(format!(
            "{u}: the NBD server refused option {opt} (reply {kind:#x}){}",
            if msg.is_empty() {
                String::new()
            } else {
                format!(": {msg}")
            }
        )),
        proto::HandshakeError::Io(e) => Error::Invalid(format!("{u}: NBD handshake: {e}")),
    }
}

/// Cached slots of one block size, oldest dropped first.
struct Blocks {
    size: u64,
    cap: usize,
    map: HashMap<u64, Arc<Slot>>,
    order: VecDeque<u64>,
}

impl Blocks {
    fn new(size: u64, cap: usize) -> Blocks {
        Blocks {
            size,
            cap,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

/// An NBD export opened read-only, as a [`ReadAt`].
pub struct Nbd {
    conn: Arc<Conn>,
    export: Export,
    uri: Uri,
    size: u64,
    small: Arc<Mutex<Blocks>>,
    big: Arc<Mutex<Blocks>>,
    /// The server's minimum block size: every request starts and ends on it.
    min: u64,
    requests: AtomicU64,
}

/// The default maximum payload of a request when the server states none
/// (the protocol's portable limit).
const DEFAULT_MAX_PAYLOAD: u64 = 32 << 20;

/// The request sizes a server takes (`NBD_INFO_BLOCK_SIZE`): the minimum
/// block size (a power of two, 1 when the server states none or one the
/// protocol forbids) and the maximum payload (at least the minimum).
fn limits(export: &Export) -> (u64, u64) {
    let Some((min, _, max)) = export.block_size else {
        return (1, DEFAULT_MAX_PAYLOAD);
    };
    let min = u64::from(min);
    let min = if min.is_power_of_two() && min <= 64 * 1024 {
        min
    } else {
        1
    };
    (min, u64::from(max).max(min))
}

/// `from..to` widened to whole blocks of `min` bytes, within `size`.
fn aligned(from: u64, to: u64, min: u64, size: u64) -> (u64, u64) {
    let a = from - from % min;
    let b = to.div_ceil(min).saturating_mul(min).min(size);
    (a, b)
}

impl Nbd {
    /// Connect to the server of `uri` and open its export.
    pub fn open(uri: &Uri) -> Result<Nbd> {
        Nbd::open_with_timeout(uri, timeout())
    }

    /// [`Nbd::open`] with a deadline for every request other than the default.
    pub fn open_with_timeout(uri: &Uri, timeout: Duration) -> Result<Nbd> {
        let (conn, export) = Conn::connect(uri, timeout)?;
        // Pieces never exceed what the server takes in one request, and
        // start and end on its minimum block size (a power of two).
        let (min, max) = limits(&export);
        let max = max.min(PIECE).max(min);
        let piece = 1u64 << (63 - max.leading_zeros());
        let small = SMALL_BLOCK.min(piece);
        Ok(Nbd {
            size: export.size,
            export,
            uri: uri.clone(),
            conn: Arc::new(conn),
            small: Arc::new(Mutex::new(Blocks::new(small, SMALL_BLOCKS))),
            big: Arc::new(Mutex::new(Blocks::new(piece, PIECES))),
            min,
            requests: AtomicU64::new(0),
        })
    }

    /// What the server said of the export.
    pub fn export(&self) -> &Export {
        &self.export
    }

    /// The URI it was opened from.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Read requests sent so far (for benchmarks and tests).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Bytes the server sent as holes (`NBD_REPLY_TYPE_OFFSET_HOLE`) so far.
    pub fn hole_bytes(&self) -> u64 {
        lock(&self.conn.inflight).holes
    }

    /// The slots of blocks `first..=last` of `blocks`, requested where missing.
    fn slots(
        &self,
        blocks: &Mutex<Blocks>,
        first: u64,
        last: u64,
    ) -> io::Result<Vec<(u64, Arc<Slot>)>> {
        let mut b = lock(blocks);
        let size = b.size;
        let mut out = Vec::new();
        for i in first..=last {
            if let Some(s) = b.map.get(&i) {
                out.push((i, Arc::clone(s)));
                continue;
            }
            let start = i * size;
            let len = size.min(self.size - start) as u32;
            let slot = self
                .conn
                .request(start, len)
                .map_err(|why| self.conn.error(start, len, &why))?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            b.map.insert(i, Arc::clone(&slot));
            b.order.push_back(i);
            out.push((i, slot));
        }
        while b.order.len() > b.cap {
            if let Some(old) = b.order.pop_front() {
                b.map.remove(&old);
            }
        }
        Ok(out)
    }

    fn read_blocks(
        &self,
        blocks: &Mutex<Blocks>,
        offset: u64,
        buf: &mut [u8],
        ahead: bool,
    ) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        let size = lock(blocks).size;
        let first = offset / size;
        let mut last = (end - 1) / size;
        let wanted = last;
        if ahead && first > 0 && lock(blocks).map.contains_key(&(first - 1)) {
            // Going forward: keep the next pieces in flight.
            last = last.saturating_add(AHEAD).min((self.size - 1) / size);
        }
        let slots = self.slots(blocks, first, last)?;
        for (i, slot) in slots.into_iter().filter(|(i, _)| *i <= wanted) {
            let bstart = i * size;
            let data = match self.conn.wait(&slot) {
                Ok(d) => d,
                Err(e) => {
                    {
                        let mut b = lock(blocks);
                        if b.map.get(&i).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                            b.map.remove(&i);
                        }
                    }
                    // The block failed; the bytes asked may still be
                    // readable (a bad sector elsewhere in the block): ask
                    // for them alone, and report that range if it fails.
                    let from = offset.max(bstart);
                    let to = end.min(bstart + u64::from(slot.len));
                    // On the server's minimum block size, as every request.
                    let (a, b) = aligned(from, to, self.min, self.size);
                    if b - a >= u64::from(slot.len) || lock(&self.conn.inflight).dead.is_some() {
                        return Err(e);
                    }
                    let n = (b - a) as u32;
                    let direct = self
                        .conn
                        .request(a, n)
                        .map_err(|why| self.conn.error(a, n, &why))?;
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    let got = self.conn.wait(&direct)?;
                    let src = got
                        .get((from - a) as usize..(to - a) as usize)
                        .ok_or_else(|| self.conn.error(a, n, "short reply"))?;
                    buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
                    continue;
                }
            };
            let from = offset.max(bstart);
            let to = end.min(bstart + data.len() as u64);
            let src = data
                .get((from - bstart) as usize..(to - bstart) as usize)
                .ok_or_else(|| self.conn.error(bstart, slot.len, "short block"))?;
            buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
        }
        Ok(())
    }
}

impl ReadAt for Nbd {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| past_end(offset, buf.len(), self.size))?;
        let _ = end;
        if buf.len() <= SMALL_READ {
            self.read_blocks(&self.small, offset, buf, false)
        } else {
            self.read_blocks(&self.big, offset, buf, true)
        }
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn prefetch(&self, offset: u64, len: u64) {
        let end = offset.saturating_add(len).min(self.size);
        if end <= offset {
            return;
        }
        let size = lock(&self.small).size;
        let _ = self.slots(&self.small, offset / size, (end - 1) / size);
    }

    fn refresh(&self) -> io::Result<()> {
        for b in [&self.small, &self.big] {
            let mut b = lock(b);
            b.map.clear();
            b.order.clear();
        }
        Ok(())
    }

    fn network(&self) -> Option<&dyn NetworkDisk> {
        Some(self)
    }
}

/// What a repair says of an NBD export: nobody can tell who else uses it.
pub const NO_HOLDER_LIST: &str = "the NBD protocol has no list of clients: vmrescue cannot tell \
     whether the guest (or anything else) uses this export; make sure the VM is shut down before \
     you confirm";

impl NetworkDisk for Nbd {
    fn key(&self) -> PathBuf {
        PathBuf::from(&self.uri.text)
    }
    fn read_only(&self) -> Option<String> {
        read_only_reason(&self.uri.text, self.export.flags)
    }
    fn holders(&self) -> std::result::Result<Vec<String>, String> {
        Err(format!("{}: {NO_HOLDER_LIST}", self.uri.text))
    }
    fn open_writer(&self) -> Result<Box<dyn WriteAt>> {
        Ok(Box::new(NbdWriter::new(self)?))
    }
}

/// The transmission flags as words (`read-only`, `multi-conn`...).
pub fn flag_names(flags: u16) -> Vec<&'static str> {
    const NAMES: [(u16, &str); 12] = [
        (1 << 1, "read-only"),
        (1 << 2, "flush"),
        (1 << 3, "fua"),
        (1 << 4, "rotational"),
        (1 << 5, "trim"),
        (1 << 6, "write-zeroes"),
        (1 << 7, "df"),
        (1 << 8, "multi-conn"),
        (1 << 9, "resize"),
        (1 << 10, "cache"),
        (1 << 11, "fast-zero"),
        (1 << 12, "block-status-payload"),
    ];
    NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The facts shown for an opened export (`vmrescue info`, `layers`).
pub fn details(n: &Nbd) -> Vec<String> {
    let e = n.export();
    let mut out = vec![format!(
        "NBD export {:?} on {}",
        n.uri().export,
        match &n.uri().address {
            Address::Tcp { host, port } => format!("{host}:{port}"),
            Address::Unix(p) => p.display().to_string(),
        }
    )];
    let names = flag_names(e.flags);
    out.push(format!(
        "flags {:#06x} ({}){}",
        e.flags,
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        },
        if e.structured {
            ", structured replies"
        } else {
            ""
        }
    ));
    if let Some((min, pref, max)) = e.block_size {
        out.push(format!(
            "block sizes: minimum {min}, preferred {pref}, maximum {max}"
        ));
    }
    if let Some(d) = &e.description {
        out.push(format!("description: {}", crate::text::escape_str(d)));
    }
    out
}
