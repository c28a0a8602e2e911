//! Reading a large file's data for a copy: its pieces ([`Chunks`]), read
//! ahead by reader threads ([`ReadAhead`]) while the walk writes the last.

use super::*;

/// Read `buf.len()` bytes of `node` at `off` (fewer only where the data
/// ends): what was read.
pub(super) fn fill(fs: &dyn FsView, node: NodeId, off: u64, buf: &mut [u8]) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        match fs.read_at(node, off.saturating_add(done as u64), rest)? {
            0 => break,
            n => done = done.saturating_add(n),
        }
    }
    Ok(done.min(buf.len()))
}

/// The pieces of at most [`BUFFER`] bytes a file's data is read in: each
/// extent with data (not unwritten), cut at the file's size, in order.
pub(super) struct Chunks<'a> {
    pub(super) extents: std::slice::Iter<'a, crate::fs::FileExtent>,
    pub(super) size: u64,
    /// The rest of the current extent: [start, end).
    pub(super) at: u64,
    pub(super) end: u64,
}

impl<'a> Chunks<'a> {
    pub(super) fn new(extents: &'a [crate::fs::FileExtent], size: u64) -> Chunks<'a> {
        Chunks {
            extents: extents.iter(),
            size,
            at: 0,
            end: 0,
        }
    }

    /// The next piece that starts at `from` or later: (offset, length).
    pub(super) fn next_from(&mut self, from: u64) -> Option<(u64, usize)> {
        loop {
            if self.at < from {
                self.at = from.min(self.end);
            }
            if self.at < self.end {
                let len = usize::try_from(self.end - self.at)
                    .unwrap_or(usize::MAX)
                    .min(BUFFER);
                let off = self.at;
                self.at = self.at.saturating_add(len as u64);
                return Some((off, len));
            }
            let e = self.extents.find(|e| !e.unwritten)?;
            self.at = e.offset;
            self.end = e.offset.saturating_add(e.len).min(self.size);
        }
    }
}

/// A read asked of a reader thread: `len` bytes of `node` at `off`, into `buf`.
pub(super) struct Asked {
    pub(super) node: NodeId,
    pub(super) off: u64,
    pub(super) len: usize,
    pub(super) buf: Vec<u8>,
}

/// A read a reader thread did: the request, and what the read returned.
pub(super) struct Read {
    pub(super) asked: Asked,
    pub(super) result: Result<usize>,
}

/// The reader threads of one copy job: started once (at the first file of
/// more than one chunk), they read (and decompress) the next chunks of the
/// file being copied while the job writes the chunk before, one chunk per
/// thread at a time, so that reading, decompressing and writing use every
/// core. At most [`AHEAD`] chunks are asked at a time; their buffers go back
/// to a pool and are used again. The threads end when the job ends.
#[derive(Default)]
pub(super) struct ReadAhead {
    /// The reader threads (one per CPU, at most [`READERS`]), started at
    /// the first ask; asks are dealt to them in turn, and their reads come
    /// back in the same turn, so in the order asked.
    pub(super) threads: Vec<Reader>,
    /// Whether starting them was tried.
    pub(super) started: bool,
    /// The thread the next ask goes to.
    pub(super) next_ask: usize,
    /// The thread the first pending read comes from.
    pub(super) next_take: usize,
    /// What was asked and not yet taken, in the order asked: (node, offset, length).
    pub(super) pending: std::collections::VecDeque<(NodeId, u64, usize)>,
    /// Buffers of [`BUFFER`] bytes not in use.
    pub(super) free: Vec<Vec<u8>>,
}

/// Reader threads of one copy job at most: a chunk each in flight, so that
/// decompressing filesystems (btrfs, a compressed qcow2) keep every CPU busy
/// while the job writes.
pub(super) const READERS: usize = 4;

pub(super) struct Reader {
    pub(super) asks: Option<std::sync::mpsc::Sender<Asked>>,
    pub(super) reads: std::sync::mpsc::Receiver<Read>,
    pub(super) handle: Option<JoinHandle<()>>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        // No more asks: the thread ends after the read it is doing.
        self.asks = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl ReadAhead {
    /// A buffer of [`BUFFER`] bytes (from the pool when one is free).
    pub(super) fn buffer(&mut self) -> Vec<u8> {
        let mut b = self.free.pop().unwrap_or_default();
        if b.len() < BUFFER {
            b.resize(BUFFER, 0);
        }
        b
    }

    pub(super) fn give_back(&mut self, buf: Vec<u8>) {
        if self.free.len() <= AHEAD {
            self.free.push(buf);
        }
    }

    /// Ask the thread (started now if need be) for `len` bytes of `node` at
    /// `off`. False when no thread could be started (then reads stay on the
    /// job's thread).
    pub(super) fn ask(&mut self, fs: &Arc<dyn FsView>, node: NodeId, off: u64, len: usize) -> bool {
        if !self.started {
            self.started = true;
            let n = crate::io::parallelism().clamp(1, READERS);
            self.threads = (0..n)
                .map_while(|_| Reader::start(Arc::clone(fs)))
                .collect();
        }
        let buf = self.buffer();
        let Some(asks) = self
            .threads
            .get(self.next_ask)
            .and_then(|t| t.asks.as_ref())
        else {
            self.give_back(buf);
            return false;
        };
        if asks
            .send(Asked {
                node,
                off,
                len,
                buf,
            })
            .is_err()
        {
            self.stopped();
            return false;
        }
        self.pending.push_back((node, off, len));
        self.next_ask = (self.next_ask + 1) % self.threads.len();
        true
    }

    /// The read of `len` bytes of `node` at `off`, when it was asked: waits
    /// for it (dropping reads asked before it that are no longer wanted).
    /// `None` when it was not asked: read it on this thread.
    pub(super) fn take_ready(
        &mut self,
        node: NodeId,
        off: u64,
        len: usize,
    ) -> Option<(Vec<u8>, Result<usize>)> {
        while let Some(&(n, o, l)) = self.pending.front() {
            if n != node || o > off {
                return None;
            }
            let read = self.receive()?;
            if o == off && l == len {
                let Read { asked, result } = read;
                let r = result.map(|got| got.min(asked.len));
                return Some((asked.buf, r));
            }
            self.give_back(read.asked.buf);
        }
        None
    }

    /// The next read the thread did (the first pending one).
    pub(super) fn receive(&mut self) -> Option<Read> {
        self.pending.pop_front()?;
        let read = self.threads.get(self.next_take)?.reads.recv();
        self.next_take = (self.next_take + 1) % self.threads.len().max(1);
        match read {
            Ok(r) => Some(r),
            Err(_) => {
                self.stopped();
                None
            }
        }
    }

    /// Wait for the reads asked and not used, and drop them.
    pub(super) fn forget_pending(&mut self) {
        while !self.pending.is_empty() {
            match self.receive() {
                Some(r) => self.give_back(r.asked.buf),
                None => break,
            }
        }
    }

    /// The thread is gone (it panicked): the panic goes on on this thread,
    /// as a read there would have.
    pub(super) fn stopped(&mut self) {
        self.pending.clear();
        self.next_ask = 0;
        self.next_take = 0;
        let mut panicked = None;
        for mut t in std::mem::take(&mut self.threads) {
            t.asks = None;
            if let Some(h) = t.handle.take()
                && let Err(panic) = h.join()
            {
                panicked.get_or_insert(panic);
            }
        }
        if let Some(panic) = panicked {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Reader {
    pub(super) fn start(fs: Arc<dyn FsView>) -> Option<Reader> {
        let (asks, asked) = std::sync::mpsc::channel::<Asked>();
        let (done, reads) = std::sync::mpsc::channel::<Read>();
        let handle = std::thread::Builder::new()
            .name("vmrescue-read-ahead".into())
            .spawn(move || {
                // The job's readers are the parallelism: a read here does
                // not spread its own work over more threads.
                crate::io::no_fan_out_on_this_thread();
                for mut a in asked {
                    let len = a.len.min(a.buf.len());
                    let result = fill(&*fs, a.node, a.off, &mut a.buf[..len]);
                    if done.send(Read { asked: a, result }).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Reader {
            asks: Some(asks),
            reads,
            handle: Some(handle),
        })
    }
}
