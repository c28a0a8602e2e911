//! The writer threads of a copy: small files read whole by the walk are
//! made here ([`write_small`]), without a name first where the destination
//! allows it ([`write_unnamed`]), in batches sent by [`super::Exec`].

use super::*;

/// A small file's data ranges (offset, length), and their bytes one after
/// the other.
pub(super) type SmallData = (Vec<(u64, usize)>, Vec<u8>);

/// A small file handed to a writer thread, with all it needs to make it.
pub(super) struct SmallFile {
    /// The destination directory, and its [`Frame::id`].
    pub(super) dir: Arc<OwnedFd>,
    pub(super) dir_id: u64,
    pub(super) name: Vec<u8>,
    /// Its guest path and its path relative to the destination.
    pub(super) path: Vec<u8>,
    pub(super) rel: Vec<u8>,
    pub(super) made: Option<Made>,
    pub(super) given: Given,
    pub(super) meta: Metadata,
    pub(super) xattrs: Option<std::result::Result<Vec<Xattr>, String>>,
    /// Its data ranges (offset, length), their bytes one after the other in
    /// `data`.
    pub(super) ranges: Vec<(u64, usize)>,
    pub(super) data: Vec<u8>,
    /// The kernel would have moved the data: a failed write names the byte
    /// it failed at, as it does then (else the start of its range).
    pub(super) exact: bool,
}

impl SmallFile {
    /// Give the file open as `fd` its metadata ([`fd_meta`]): what failed.
    pub(super) fn set_meta(&mut self, fd: BorrowedFd<'_>, owner: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let xattrs = self.xattrs.take();
        fd_meta(fd, &self.meta, self.given, owner, xattrs, &mut problems);
        problems
    }
}

/// What the writer did with a [`SmallFile`].
pub(super) enum Written {
    /// Made, with what of its metadata could not be set.
    Copied(Vec<String>),
    Failed(String),
    /// Not made: the job was cancelled.
    Cancelled,
}

/// A [`SmallFile`] done, back from the writer.
pub(super) struct Done {
    pub(super) dir_id: u64,
    pub(super) path: Vec<u8>,
    pub(super) rel: Vec<u8>,
    pub(super) size: u64,
    /// Bytes of data it held.
    pub(super) held: usize,
    pub(super) written: Written,
}

/// What the writer threads share.
pub(super) struct WriterCtx {
    pub(super) dest: PathBuf,
    pub(super) existing: Existing,
    pub(super) owner: bool,
    /// Set when the job is cancelled: files not yet begun are left out.
    pub(super) stop: Arc<AtomicBool>,
    /// How a file made without a name (`O_TMPFILE`) gets its name, as
    /// learned on the first file: `UNNAMED_*`.
    pub(super) unnamed: std::sync::atomic::AtomicU8,
}

/// [`WriterCtx::unnamed`]: not tried yet.
pub(super) const UNNAMED_TRY: u8 = 0;
/// `linkat(fd, "", AT_EMPTY_PATH)` names it (root: `CAP_DAC_READ_SEARCH`).
pub(super) const UNNAMED_EMPTY_PATH: u8 = 1;
/// `linkat("/proc/self/fd/N", AT_SYMLINK_FOLLOW)` names it.
pub(super) const UNNAMED_PROC: u8 = 2;
/// Neither (or no `O_TMPFILE` on the destination): temporary names.
pub(super) const UNNAMED_NO: u8 = 3;

/// The writer threads of a copy job: the walk reads small files whole
/// ([`SMALL_FILE`]) and hands them over, the files of a directory to one
/// thread in the order listed; a writer creates each (unnamed, see
/// [`write_unnamed`]), writes it, gives it its metadata and names it, as
/// [`Exec::copy_file`] does, and sends back what happened, so that making
/// files (most of a small-file copy's time) runs beside the reading. At
/// most [`WRITER_FILES`] files and [`WRITER_BYTES`] bytes are handed over
/// and not written. A directory gets its own metadata only after its files
/// are written ([`Exec::finish_later`]); hard-linked files are not handed
/// over (a link needs its first name to exist).
pub(super) struct Writers {
    /// Each writer's queue.
    pub(super) jobs: Vec<std::sync::mpsc::Sender<Vec<SmallFile>>>,
    pub(super) done: std::sync::mpsc::Receiver<Vec<Done>>,
    /// Each writer's files not sent yet, and their bytes ([`WRITER_BATCH`]).
    pub(super) batches: Vec<(Vec<SmallFile>, usize)>,
    pub(super) threads: Vec<JoinHandle<()>>,
    pub(super) ctx: Arc<WriterCtx>,
    /// Files and bytes handed over and not yet back.
    pub(super) files: usize,
    pub(super) bytes: usize,
    /// Directories with files handed over and not back: how many.
    pub(super) pending: HashMap<u64, usize>,
}

impl Writers {
    pub(super) fn start(ctx: WriterCtx) -> Option<Writers> {
        let ctx = Arc::new(ctx);
        let (tell, done) = std::sync::mpsc::channel::<Vec<Done>>();
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..crate::io::parallelism().clamp(1, WRITERS) {
            let (ask, asked) = std::sync::mpsc::channel::<Vec<SmallFile>>();
            let (ctx, tell) = (Arc::clone(&ctx), tell.clone());
            match std::thread::Builder::new()
                .name("vmrescue-write".into())
                .spawn(move || write_files(&ctx, &asked, &tell))
            {
                Ok(t) => {
                    jobs.push(ask);
                    threads.push(t);
                }
                Err(_) => break,
            }
        }
        if threads.is_empty() {
            return None;
        }
        Some(Writers {
            batches: jobs.iter().map(|_| (Vec::new(), 0)).collect(),
            jobs,
            done,
            threads,
            ctx,
            files: 0,
            bytes: 0,
            pending: HashMap::new(),
        })
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        // (Normally nothing is left: the job waits for every file.)
        self.ctx.stop.store(true, Ordering::Relaxed);
        self.jobs.clear();
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

/// A writer thread: make the files asked, until no more are asked.
pub(super) fn write_files(
    ctx: &WriterCtx,
    asked: &std::sync::mpsc::Receiver<Vec<SmallFile>>,
    tell: &std::sync::mpsc::Sender<Vec<Done>>,
) {
    loop {
        let Ok(batch) = asked.recv() else {
            return;
        };
        let mut done = Vec::with_capacity(batch.len());
        for mut job in batch {
            let written = if ctx.stop.load(Ordering::Relaxed) {
                Written::Cancelled
            } else {
                write_small(ctx, &mut job)
            };
            done.push(Done::of(job, written));
        }
        if tell.send(done).is_err() {
            return;
        }
    }
}

impl Done {
    /// What became of `job`.
    pub(super) fn of(job: SmallFile, written: Written) -> Done {
        Done {
            dir_id: job.dir_id,
            held: job.data.len(),
            size: job.meta.size,
            path: job.path,
            rel: job.rel,
            written,
        }
    }
}

/// Make small file `job` as [`Exec::copy_file`] does, with the same
/// messages.
pub(super) fn write_small(ctx: &WriterCtx, job: &mut SmallFile) -> Written {
    if ctx.existing != Existing::Overwrite
        && ctx.unnamed.load(Ordering::Relaxed) != UNNAMED_NO
        && let Some(written) = write_unnamed(ctx, job)
    {
        return written;
    }
    let dir_fd = Arc::clone(&job.dir);
    let dir = dir_fd.as_fd();
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let parent_rel = split_rel(&job.rel).0;
    let parent = ctx.dest.join(OsStr::from_bytes(parent_rel));
    let mode = creation_mode(job.given, &job.meta);
    let mut writing = None;
    let (tmp, fd) = match make_temp_in(&ctx.dest, &job.name, &job.rel, |tmp| {
        writing = Some(Writing::new(parent.join(OsStr::from_bytes(tmp))));
        rustix::fs::openat(dir, tmp, flags, mode)
    }) {
        Ok(made) => made,
        Err(why) => return Written::Failed(why),
    };
    let file = File::from(fd);
    let wrote = if !job.ranges.is_empty() && ctx.stop.load(Ordering::Relaxed) {
        Err(None)
    } else {
        write_ranges(&file, job).map_err(Some)
    };
    if let Err(stop) = wrote {
        drop(file);
        finish_writing(writing, || {
            rustix::fs::unlinkat(dir, &tmp[..], AtFlags::empty()).is_ok()
        });
        return match stop {
            None => Written::Cancelled,
            Some(why) => {
                let tmp_host = host_of(&ctx.dest, &rel_join(parent_rel, &tmp));
                Written::Failed(format!("{why} (writing {tmp_host})"))
            }
        };
    }
    let problems = job.set_meta(file.as_fd(), ctx.owner);
    drop(file);
    let placed = finish_writing(writing, || {
        place_at(
            &ctx.dest,
            ctx.existing,
            &tmp,
            dir,
            &job.name,
            &job.rel,
            job.made,
        )
    });
    match placed {
        Ok(()) => Written::Copied(problems),
        Err(why) => Written::Failed(why),
    }
}

/// Make small file `job` without a name first (`O_TMPFILE`), then give it
/// its name with `linkat`, which never replaces (as `RENAME_NOREPLACE`):
/// nothing half-written ever has a name, even when the process is killed,
/// and there is no rename. `None` when the destination cannot (no
/// `O_TMPFILE`, or no way to link it): then [`WriterCtx::unnamed`] says so
/// and the caller makes the file under a temporary name instead.
pub(super) fn write_unnamed(ctx: &WriterCtx, job: &mut SmallFile) -> Option<Written> {
    let dir_fd = Arc::clone(&job.dir);
    let dir = dir_fd.as_fd();
    let mode = creation_mode(job.given, &job.meta);
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, c".", flags, mode) {
        Ok(fd) => fd,
        // No O_TMPFILE on this filesystem (EOPNOTSUPP; EISDIR or EINVAL
        // from kernels or filesystems that do not know the flag).
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOSYS) => {
            ctx.unnamed.store(UNNAMED_NO, Ordering::Relaxed);
            return None;
        }
        // Full, no inodes left, no permission...: this file fails, as it
        // would under a temporary name.
        Err(e) => {
            let parent = host_of(&ctx.dest, split_rel(&job.rel).0);
            return Some(Written::Failed(format!(
                "creating a file in {parent}: {}",
                io_err(e)
            )));
        }
    };
    let file = File::from(fd);
    if !job.ranges.is_empty() && ctx.stop.load(Ordering::Relaxed) {
        return Some(Written::Cancelled);
    }
    if let Err(why) = write_ranges(&file, job) {
        let host = host_of(&ctx.dest, &job.rel);
        return Some(Written::Failed(format!(
            "{why} (writing {host}, which is named only once complete)"
        )));
    }
    let problems = job.set_meta(file.as_fd(), ctx.owner);
    let linked = link_unnamed(ctx, file.as_fd(), dir, &job.name)?;
    Some(match linked {
        Ok(()) => Written::Copied(problems),
        Err(e) => Written::Failed(naming_failed(
            &ctx.dest,
            &job.rel,
            job.made,
            e,
            "naming the finished copy",
        )),
    })
}

/// Give the unnamed file `file` its `name` in `dir`, never replacing
/// (`EEXIST`), the way [`WriterCtx::unnamed`] says works, learning it on
/// the first file. `None` when no way works on this destination (then the
/// file is left to close, unnamed, and nothing was made).
pub(super) fn link_unnamed(
    ctx: &WriterCtx,
    file: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &[u8],
) -> Option<rustix::io::Result<()>> {
    let how = ctx.unnamed.load(Ordering::Relaxed);
    let learn = |works: u8| {
        if how == UNNAMED_TRY {
            ctx.unnamed.store(works, Ordering::Relaxed);
        }
    };
    if how != UNNAMED_PROC {
        let r = rustix::fs::linkat(file, c"", dir, name, AtFlags::EMPTY_PATH);
        match r {
            Ok(()) => learn(UNNAMED_EMPTY_PATH),
            // Without CAP_DAC_READ_SEARCH the kernel answers ENOENT.
            Err(Errno::NOENT | Errno::PERM | Errno::ACCESS) if how == UNNAMED_TRY => {}
            Err(_) => return Some(r),
        }
        if r.is_ok() {
            return Some(r);
        }
    }
    let r = rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path(file, None).as_path(),
        dir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    );
    match r {
        Ok(()) => learn(UNNAMED_PROC),
        // No /proc, or no right to link through it: no way works here.
        // (A full disk, a name already there...: this file fails alone.)
        Err(Errno::NOENT | Errno::PERM | Errno::ACCESS | Errno::XDEV | Errno::OPNOTSUPP)
            if how == UNNAMED_TRY =>
        {
            learn(UNNAMED_NO);
            return None;
        }
        Err(_) => {}
    }
    Some(r)
}

/// Write the data of `job` into `out`, leaving its holes (and giving it its
/// size when it ends in one).
pub(super) fn write_ranges(out: &File, job: &SmallFile) -> std::result::Result<(), String> {
    let mut at = 0usize;
    for &(off, len) in &job.ranges {
        let end = at.saturating_add(len);
        let bytes = job.data.get(at..end).unwrap_or_default();
        at = end;
        if !job.exact {
            out.write_all_at(bytes, off)
                .map_err(|e| format!("writing at byte {off}: {e}"))?;
            continue;
        }
        let mut done = 0usize;
        while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
            let pos = off.saturating_add(done as u64);
            match out.write_at(rest, pos) {
                Ok(0) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "failed to write whole buffer",
                    );
                    return Err(format!("writing at byte {pos}: {e}"));
                }
                Ok(n) => done = done.saturating_add(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("writing at byte {pos}: {e}")),
            }
        }
    }
    let data_end = job
        .ranges
        .iter()
        .map(|&(off, len)| off.saturating_add(len as u64))
        .max()
        .unwrap_or(0);
    if data_end < job.meta.size {
        out.set_len(job.meta.size)
            .map_err(|e| format!("setting the size: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::NodeId;
    use crate::ops::copy::{Existing, Given};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn ctx(dest: &Path, unnamed: u8) -> WriterCtx {
        WriterCtx {
            dest: dest.to_path_buf(),
            existing: Existing::Refuse,
            owner: false,
            stop: Arc::new(AtomicBool::new(false)),
            unnamed: std::sync::atomic::AtomicU8::new(unnamed),
        }
    }

    fn job(dest: &Path, name: &[u8], data: &[u8]) -> SmallFile {
        let t = Timestamp {
            sec: 1_360_000_000,
            nsec: 5,
        };
        let dir = rustix::fs::open(dest, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .expect("destination");
        SmallFile {
            dir: Arc::new(dir),
            dir_id: 0,
            name: name.to_vec(),
            path: [b"/".as_slice(), name].concat(),
            rel: name.to_vec(),
            made: None,
            given: Given {
                owner: false,
                mode: false,
            },
            meta: Metadata {
                node: NodeId(12),
                ino: 12,
                file_type: FileType::Regular,
                perm: 0o640,
                uid: 0,
                gid: 0,
                size: data.len() as u64 + 3,
                nlink: 1,
                atime: t,
                mtime: t,
                ctime: t,
                crtime: None,
                rdev: (0, 0),
                allocated: None,
            },
            xattrs: None,
            ranges: vec![(0, data.len())],
            data: data.to_vec(),
            exact: false,
        }
    }

    /// What is in `dir`: names, and nothing else (no temporary name left).
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("listing")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Every way of naming a finished small file (unnamed and linked by
    /// its descriptor, unnamed and linked through `/proc`, temporary name
    /// and rename) makes the same file, with its tail hole, mode and
    /// mtime, leaves no other name, and refuses to replace a name.
    #[test]
    fn each_way_of_naming_makes_the_same_file_and_never_replaces() {
        for way in [UNNAMED_TRY, UNNAMED_EMPTY_PATH, UNNAMED_PROC, UNNAMED_NO] {
            let tmp = tempfile::tempdir().expect("temporary directory");
            let c = ctx(tmp.path(), way);
            let mut j = job(tmp.path(), b"a.txt", b"hello");
            assert!(matches!(write_small(&c, &mut j), Written::Copied(p) if p.is_empty()));
            let path = tmp.path().join("a.txt");
            assert_eq!(std::fs::read(&path).expect("copy"), b"hello\0\0\0");
            let st = std::fs::metadata(&path).expect("stat");
            assert_eq!(st.permissions().mode() & 0o7777, 0o640, "way {way}");
            assert_eq!(st.mtime(), 1_360_000_000);
            assert_eq!(st.mtime_nsec(), 5);
            assert_eq!(names(tmp.path()), ["a.txt"], "way {way}");
            if way == UNNAMED_TRY {
                // The first file taught the writer a way that works here.
                assert_ne!(c.unnamed.load(Ordering::Relaxed), UNNAMED_TRY);
            }
            let mut again = job(tmp.path(), b"a.txt", b"other");
            match write_small(&c, &mut again) {
                Written::Failed(why) => assert!(why.contains("appeared while"), "{why}"),
                _ => panic!("way {way}: an existing name was replaced"),
            }
            assert_eq!(std::fs::read(&path).expect("kept"), b"hello\0\0\0");
            assert_eq!(names(tmp.path()), ["a.txt"], "way {way}");
        }
    }
}
