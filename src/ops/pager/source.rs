//! What the pager reads: a guest file read in place by offset, or bytes
//! produced in memory by a background job (a decompressed log, a binary
//! journal turned into text by the host's `journalctl`).

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::fs::{FsView, NodeId};

/// Most bytes kept in memory for a decompressed file or a journal's text
/// (256 MiB); past it the pager shows what it has and says it stopped.
pub const MEMORY_CAP: usize = 256 << 20;

/// Most bytes of a binary journal copied to a temporary file for `journalctl` (1 GiB).
pub const JOURNAL_COPY_CAP: u64 = 1 << 30;

/// What a file holds, by its first bytes (magic numbers, not the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Shown as it is.
    Plain,
    /// gzip (`1f 8b`).
    Gzip,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// bzip2 (`BZh1`..`BZh9`).
    Bzip2,
    /// A binary systemd journal (`LPKSHHRH`).
    Journal,
}

impl Format {
    /// The format of a file starting with `head`.
    pub fn detect(head: &[u8]) -> Format {
        if head.starts_with(&[0x1f, 0x8b]) {
            Format::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Format::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Format::Zstd
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Format::Bzip2
        } else if head.starts_with(b"LPKSHHRH") {
            Format::Journal
        } else {
            Format::Plain
        }
    }

    /// Its short name for the status line (`gz`, `xz`, `journal`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Plain => "text",
            Format::Gzip => "gz",
            Format::Xz => "xz",
            Format::Zstd => "zst",
            Format::Bzip2 => "bz2",
            Format::Journal => "journal",
        }
    }
}

/// Bytes made by a background job, readable while they grow.
#[derive(Debug, Default)]
pub struct Growing {
    data: RwLock<Vec<u8>>,
    len: AtomicU64,
    done: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Growing {
    /// A new, empty buffer.
    pub fn new() -> Arc<Growing> {
        Arc::new(Growing::default())
    }

    /// Bytes so far.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Whether nothing arrived yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append `bytes` (up to [`MEMORY_CAP`]); false when the cap was reached.
    pub fn push(&self, bytes: &[u8]) -> bool {
        let Ok(mut d) = self.data.write() else {
            return false;
        };
        let room = MEMORY_CAP.saturating_sub(d.len());
        let take = bytes.len().min(room);
        d.extend_from_slice(&bytes[..take]);
        self.len.store(d.len() as u64, Ordering::Release);
        take == bytes.len()
    }

    /// No more bytes will come; `error` says why it stopped early, if it did.
    pub fn finish(&self, error: Option<String>) {
        if let Ok(mut e) = self.error.lock() {
            *e = error;
        }
        self.done.store(true, Ordering::Release);
    }

    /// Whether the job ended.
    pub fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Why it stopped early, if it did.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    /// Run `f` over the bytes from `offset` to at most `len` further.
    pub fn with_slice<T>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        let d = self.data.read();
        let d: &[u8] = match &d {
            Ok(d) => d,
            Err(_) => &[],
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(d.len());
        let end = start.saturating_add(len).min(d.len());
        f(&d[start..end])
    }
}

/// The bytes the pager shows.
#[derive(Clone)]
pub enum Content {
    /// A regular file of the guest, read in place.
    File {
        /// Its filesystem.
        fs: Arc<dyn FsView>,
        /// The file.
        node: NodeId,
        /// Its size.
        size: u64,
    },
    /// Bytes made in memory (decompressed, or a journal's text).
    Memory(Arc<Growing>),
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::File { node, size, .. } => write!(f, "File({}, {size})", node.0),
            Content::Memory(g) => write!(f, "Memory({})", g.len()),
        }
    }
}

impl Content {
    /// Bytes known now (a memory buffer may still grow).
    pub fn len(&self) -> u64 {
        match self {
            Content::File { size, .. } => *size,
            Content::Memory(g) => g.len(),
        }
    }

    /// Whether there are no bytes (yet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the length is final.
    pub fn complete(&self) -> bool {
        match self {
            Content::File { .. } => true,
            Content::Memory(g) => g.done(),
        }
    }

    /// Read at `offset` into `buf`; fewer bytes only at the end.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, String> {
        match self {
            Content::File { fs, node, size } => {
                let want = usize::try_from(size.saturating_sub(offset))
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let mut done = 0;
                while done < want {
                    let n = fs
                        .read_at(*node, offset + done as u64, &mut buf[done..want])
                        .map_err(|e| format!("at byte {}: {e}", offset + done as u64))?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                Ok(done)
            }
            Content::Memory(g) => Ok(g.with_slice(offset, buf.len(), |s| {
                buf[..s.len()].copy_from_slice(s);
                s.len()
            })),
        }
    }
}

/// A guest file as a `Read` (for decompressors), from its start.
pub struct NodeReader {
    fs: Arc<dyn FsView>,
    node: NodeId,
    pos: u64,
}

impl NodeReader {
    /// A reader of `node` from its first byte.
    pub fn new(fs: Arc<dyn FsView>, node: NodeId) -> NodeReader {
        NodeReader { fs, node, pos: 0 }
    }
}

impl Read for NodeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self
            .fs
            .read_at(self.node, self.pos, buf)
            .map_err(|e| std::io::Error::other(format!("at byte {}: {e}", self.pos)))?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The decoder for a compressed `format` over `input` (`None` for the others).
pub fn decoder<'a>(format: Format, input: impl Read + 'a) -> Option<Box<dyn Read + 'a>> {
    let input = std::io::BufReader::with_capacity(256 << 10, input);
    Some(match format {
        Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Format::Xz => Box::new(lzma_rust2::XzReader::new(input, true)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input).ok()?),
        Format::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Format::Plain | Format::Journal => return None,
    })
}

/// Fill `out` from `reader` until its end, an error, [`MEMORY_CAP`] or
/// `cancel`; `grew` is called after each chunk. The buffer is finished with
/// the reason it stopped early, if it did (`what` names the format).
pub fn fill(
    what: &str,
    reader: &mut dyn Read,
    out: &Growing,
    cancel: &AtomicBool,
    grew: &mut dyn FnMut(),
) {
    let mut buf = vec![0u8; 1 << 20];
    let error = loop {
        if cancel.load(Ordering::Relaxed) {
            break Some("stopped".to_string());
        }
        match reader.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                let all = out.push(&buf[..n]);
                grew();
                if !all {
                    break Some(format!(
                        "stopped at {} MiB of {what} output (the viewer keeps at most that in memory)",
                        MEMORY_CAP >> 20
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                break Some(format!("{what}: {e} (after {} bytes of output)", out.len()));
            }
        }
    };
    out.finish(error);
}

/// Turn a binary journal into text with the host's `journalctl`: the file
/// is copied to a private temporary folder (removed afterwards) and
/// `journalctl --file=COPY -o short-iso` (times in UTC) fills `out`. `Err` when the host
/// has no `journalctl` or it could not run (the caller shows hex).
pub fn journal_text(
    fs: &Arc<dyn FsView>,
    node: NodeId,
    size: u64,
    out: &Growing,
    cancel: &AtomicBool,
    grew: &mut dyn FnMut(),
) -> Result<(), String> {
    let Some(journalctl) = find_journalctl() else {
        return Err("the host has no journalctl: the journal is shown in hex".into());
    };
    let dir = tempfile::Builder::new()
        .prefix("vmrescue-journal-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let copy = dir.path().join("copy.journal");
    {
        let mut f = std::fs::File::create(&copy)
            .map_err(|e| format!("cannot write {}: {e}", copy.display()))?;
        let mut r = NodeReader::new(Arc::clone(fs), node).take(size.min(JOURNAL_COPY_CAP));
        std::io::copy(&mut r, &mut f).map_err(|e| format!("reading the journal: {e}"))?;
    }
    let mut child = std::process::Command::new(journalctl)
        .arg(format!("--file={}", copy.display()))
        .args(["-o", "short-iso", "--no-pager", "-q"])
        // Times in UTC, as everywhere else in vmrescue.
        .env("TZ", "UTC")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run journalctl: {e}"))?;
    let Some(mut stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("journalctl gave no output pipe".into());
    };
    fill("journalctl", &mut stdout, out, cancel, grew);
    drop(stdout);
    let _ = child.kill();
    let status = child.wait();
    let mut err = String::new();
    if let Some(e) = child.stderr.take() {
        let _ = e.take(4096).read_to_string(&mut err);
    }
    if out.is_empty()
        && let Ok(s) = status
        && !s.success()
    {
        out.finish(Some(format!("journalctl failed ({s}): {}", err.trim())));
    }
    Ok(())
}

/// The host's `journalctl`, if it has one (looked up on `PATH`).
pub fn find_journalctl() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("journalctl"))
        .find(|p| p.is_file())
}

/// A file opened for viewing.
pub struct Opened {
    /// Its guest path (symlinks followed), escaped.
    pub path: String,
    /// Its size in the guest.
    pub size: u64,
    /// What it holds.
    pub format: Format,
    /// What the pager shows (the file, or the memory a [`Producer`] fills).
    pub content: Content,
    /// The job that fills the memory, when there is one.
    pub producer: Option<Producer>,
    /// Something to say at once (no `journalctl` on the host).
    pub note: Option<String>,
    /// Show it in hex whatever it looks like.
    pub hex: bool,
}

/// Decompresses a file, or runs `journalctl`, into memory.
pub struct Producer {
    fs: Arc<dyn FsView>,
    node: NodeId,
    size: u64,
    format: Format,
    out: Arc<Growing>,
}

impl Producer {
    /// Fill the memory until the end, an error, the cap or `cancel`;
    /// `grew` is called as bytes arrive.
    pub fn run(self, cancel: &AtomicBool, grew: &mut dyn FnMut()) {
        if self.format == Format::Journal {
            if let Err(e) = journal_text(&self.fs, self.node, self.size, &self.out, cancel, grew) {
                self.out.finish(Some(e));
            }
            return;
        }
        let input = NodeReader::new(Arc::clone(&self.fs), self.node);
        match decoder(self.format, input) {
            Some(mut d) => fill(self.format.name(), &mut d, &self.out, cancel, grew),
            None => self
                .out
                .finish(Some(format!("{}: no decoder", self.format.name()))),
        }
    }
}

/// Open the file at guest `path` for viewing: symlinks are followed inside
/// the guest; the first bytes say whether it is compressed or a journal.
pub fn open(fs: &Arc<dyn FsView>, path: &[u8]) -> Result<Opened, String> {
    let r = crate::fs::path::resolve(&**fs, path, true).map_err(|e| e.to_string())?;
    let meta = fs.metadata(r.node).map_err(|e| e.to_string())?;
    let shown = crate::text::escape(&r.path);
    if meta.file_type != crate::fs::FileType::Regular {
        return Err(format!("{shown}: not a regular file"));
    }
    let file = Content::File {
        fs: Arc::clone(fs),
        node: r.node,
        size: meta.size,
    };
    let mut head = [0u8; 8];
    let n = file.read_at(0, &mut head)?;
    let format = Format::detect(&head[..n]);
    let mut opened = Opened {
        path: shown,
        size: meta.size,
        format,
        content: file,
        producer: None,
        note: None,
        hex: false,
    };
    if format == Format::Plain {
        return Ok(opened);
    }
    if format == Format::Journal && find_journalctl().is_none() {
        opened.note = Some("the host has no journalctl: the journal is shown in hex".into());
        opened.hex = true;
        return Ok(opened);
    }
    let out = Growing::new();
    opened.content = Content::Memory(Arc::clone(&out));
    opened.producer = Some(Producer {
        fs: Arc::clone(fs),
        node: r.node,
        size: meta.size,
        format,
        out,
    });
    Ok(opened)
}
