//! Ceph RBD images as image sources: `rbd:POOL/IMAGE[@SNAP]`, read through
//! the system's librbd and librados.
//!
//! The libraries are loaded when an `rbd:` image is opened (`dlopen` of
//! `librbd.so.1` and `librados.so.2`), so neither the binary nor the package
//! depends on Ceph; without them opening says which package to install.
//! The image is opened with `rbd_open_read_only` (librbd takes no lock and
//! registers no watch for it) and never written. One image handle serves
//! every reader: librbd's I/O calls, synchronous and asynchronous, may be
//! made from several threads on one handle (its image context locks its own
//! state; QEMU's and rbd-nbd's I/O paths issue requests that way).
//!
//! Reads go out with librbd's asynchronous API (`rbd_aio_read`, waited on
//! with `rbd_aio_wait_for_complete`), several at once: a big read is split
//! into object-sized pieces (`rbd_stat`'s `obj_size`, 4 MiB by default)
//! requested together, and once big reads go forward in order the next
//! [`AHEAD`] objects are requested before they are asked for (a copy's
//! readahead). Small reads (metadata, read again and again) go through a
//! cache of 64 KiB blocks, which [`ReadAt::prefetch`] fills all at once.
//! Who else has the image open (a running VM's librbd: its watch, the
//! exclusive lock it holds; a lock taken with `rbd lock add`) is read
//! when it is opened ([`Rbd::holders`], [`holders`]).
//!
//! Options come from the command line (`--ceph-conf`, `--ceph-id`,
//! `--keyring`) or, in QEMU's own syntax, after the name:
//! `rbd:POOL/IMAGE[@SNAP][:conf=FILE][:id=ID][:keyring=FILE][:mon_host=H]`
//! (`\:` for a colon inside a value; any other `key=value` is handed to
//! `rados_conf_set`). Proxmox storage resolves to this form
//! ([`crate::pve::storage::resolve`]).

use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::io::{NetworkDisk, ReadAt, WriteAt};

use super::{Image, ImageFormat, OpenOptions};

/// How to reach the cluster, from the command line (the spec's own
/// options win).
#[derive(Debug, Clone, Default)]
pub struct CephOptions {
    /// ceph.conf to read (default: librados' search: `$CEPH_CONF`,
    /// /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf).
    pub conf: Option<PathBuf>,
    /// The client's ID without `client.` (default `admin`).
    pub id: Option<String>,
    /// The keyring file holding that client's key.
    pub keyring: Option<PathBuf>,
}

/// A parsed `rbd:` image name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The pool.
    pub pool: String,
    /// The RADOS namespace (`rbd:POOL/NS/IMAGE`), if any.
    pub namespace: Option<String>,
    /// The image.
    pub image: String,
    /// The snapshot named with `@`.
    pub snapshot: Option<String>,
    /// `conf=`, `id=`, `keyring=` and other `key=value` options, in order.
    pub options: Vec<(String, String)>,
}

impl Spec {
    /// `pool/image` or `pool/ns/image`, for messages.
    pub fn name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.pool, self.image),
            None => format!("{}/{}", self.pool, self.image),
        }
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `path` names an RBD image (`rbd:...`) rather than a file.
pub fn is_rbd(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with("rbd:")) && !path.exists()
}

/// Split on unescaped `:`, turning `\:` (and `\\`) into the character.
fn split_options(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next()
                    && let Some(last) = out.last_mut()
                {
                    last.push(n);
                }
            }
            ':' => out.push(String::new()),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

/// Parse `rbd:POOL/[NS/]IMAGE[@SNAP][:key=value...]`.
pub fn parse(text: &str) -> std::result::Result<Spec, String> {
    let rest = text
        .strip_prefix("rbd:")
        .ok_or_else(|| format!("\"{text}\" does not start with rbd:"))?;
    let parts = split_options(rest);
    let (name, opts) = parts
        .split_first()
        .ok_or_else(|| format!("\"{text}\": no POOL/IMAGE after rbd:"))?;
    let (name, snapshot) = match name.split_once('@') {
        Some((n, s)) if !s.is_empty() => (n, Some(s.to_string())),
        Some(_) => return Err(format!("\"{text}\": empty snapshot name after @")),
        None => (name.as_str(), None),
    };
    let fields: Vec<&str> = name.split('/').collect();
    let (pool, namespace, image) = match fields.as_slice() {
        [p, i] => (*p, None, *i),
        [p, ns, i] => (*p, Some(ns.to_string()), *i),
        _ => {
            return Err(format!(
                "\"{text}\": expected rbd:POOL/IMAGE[@SNAP] (or POOL/NAMESPACE/IMAGE)"
            ));
        }
    };
    if pool.is_empty() || image.is_empty() || namespace.as_deref() == Some("") {
        return Err(format!(
            "\"{text}\": expected rbd:POOL/IMAGE[@SNAP] with a pool and an image name"
        ));
    }
    let mut options = Vec::new();
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("\"{text}\": option \"{o}\" is not key=value"))?;
        options.push((k.to_string(), v.to_string()));
    }
    Ok(Spec {
        pool: pool.to_string(),
        namespace,
        image: image.to_string(),
        snapshot,
        options,
    })
}

// The C API, as librados.h and librbd.h declare it (Ceph 12 and later).
type RadosT = *mut c_void;
type IoctxT = *mut c_void;
type RbdImageT = *mut c_void;

#[repr(C)]
struct SnapInfo {
    id: u64,
    size: u64,
    name: *const c_char,
}

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

#[repr(C)]
struct Watcher {
    addr: *mut c_char,
    id: i64,
    cookie: u64,
}

/// `rbd_image_info_t` (librbd.h).
#[repr(C)]
struct ImageInfo {
    size: u64,
    obj_size: u64,
    num_objs: u64,
    order: c_int,
    block_name_prefix: [c_char; 24],
    parent_pool: i64,
    parent_name: [c_char; 96],
}

type Completion = *mut c_void;
type Callback = unsafe extern "C" fn(Completion, *mut c_void);

/// The completion callback: nothing to do, the reader waits on the completion.
extern "C" fn completed(_c: Completion, _arg: *mut c_void) {}

/// The functions used, resolved from the loaded libraries.
struct Api {
    rados_create2: unsafe extern "C" fn(*mut RadosT, *const c_char, *const c_char, u64) -> c_int,
    rados_conf_read_file: unsafe extern "C" fn(RadosT, *const c_char) -> c_int,
    rados_conf_set: unsafe extern "C" fn(RadosT, *const c_char, *const c_char) -> c_int,
    rados_connect: unsafe extern "C" fn(RadosT) -> c_int,
    rados_shutdown: unsafe extern "C" fn(RadosT),
    rados_ioctx_create: unsafe extern "C" fn(RadosT, *const c_char, *mut IoctxT) -> c_int,
    rados_ioctx_set_namespace: unsafe extern "C" fn(IoctxT, *const c_char),
    rados_ioctx_destroy: unsafe extern "C" fn(IoctxT),
    rados_get_instance_id: unsafe extern "C" fn(RadosT) -> u64,
    rbd_open: unsafe extern "C" fn(IoctxT, *const c_char, *mut RbdImageT, *const c_char) -> c_int,
    rbd_write: unsafe extern "C" fn(RbdImageT, u64, usize, *const c_char) -> isize,
    rbd_flush: unsafe extern "C" fn(RbdImageT) -> c_int,
    rbd_invalidate_cache: unsafe extern "C" fn(RbdImageT) -> c_int,
    rbd_open_read_only:
        unsafe extern "C" fn(IoctxT, *const c_char, *mut RbdImageT, *const c_char) -> c_int,
    rbd_close: unsafe extern "C" fn(RbdImageT) -> c_int,
    rbd_get_size: unsafe extern "C" fn(RbdImageT, *mut u64) -> c_int,
    rbd_read: unsafe extern "C" fn(RbdImageT, u64, usize, *mut c_char) -> isize,
    rbd_stat: unsafe extern "C" fn(RbdImageT, *mut ImageInfo, usize) -> c_int,
    rbd_aio_create_completion:
        unsafe extern "C" fn(*mut c_void, Option<Callback>, *mut Completion) -> c_int,
    rbd_aio_read: unsafe extern "C" fn(RbdImageT, u64, usize, *mut c_char, Completion) -> c_int,
    rbd_aio_wait_for_complete: unsafe extern "C" fn(Completion) -> c_int,
    rbd_aio_get_return_value: unsafe extern "C" fn(Completion) -> isize,
    rbd_aio_release: unsafe extern "C" fn(Completion),
    #[allow(clippy::type_complexity)]
    rbd_list_lockers: unsafe extern "C" fn(
        RbdImageT,
        *mut c_int,
        *mut c_char,
        *mut usize,
        *mut c_char,
        *mut usize,
        *mut c_char,
        *mut usize,
        *mut c_char,
        *mut usize,
    ) -> isize,
    rbd_snap_list: unsafe extern "C" fn(RbdImageT, *mut SnapInfo, *mut c_int) -> c_int,
    rbd_snap_list_end: unsafe extern "C" fn(*mut SnapInfo),
    rbd_snap_get_timestamp: unsafe extern "C" fn(RbdImageT, u64, *mut Timespec) -> c_int,
    rbd_watchers_list: unsafe extern "C" fn(RbdImageT, *mut Watcher, *mut usize) -> c_int,
    rbd_watchers_list_cleanup: unsafe extern "C" fn(*mut Watcher, usize),
    // Kept loaded while the function pointers above are used.
    _rados: libloading::Library,
    _rbd: libloading::Library,
}

const MISSING: &str = "Ceph RBD needs librbd1: apt install librbd1";

#[allow(unsafe_code)]
fn load() -> std::result::Result<Api, String> {
    // SAFETY: loading Ceph's client libraries runs their initialisers,
    // which only set up their own state.
    let rados = unsafe { libloading::Library::new("librados.so.2") }
        .map_err(|e| format!("{MISSING} (librados.so.2: {e})"))?;
    // SAFETY: as above.
    let rbd = unsafe { libloading::Library::new("librbd.so.1") }
        .map_err(|e| format!("{MISSING} (librbd.so.1: {e})"))?;
    macro_rules! sym {
        ($lib:expr, $name:literal) => {
            // SAFETY: the type is the function's C prototype from
            // librados.h / librbd.h.
            *unsafe { $lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("{MISSING} (a newer one: {}: {e})", $name))?
        };
    }
    Ok(Api {
        rados_create2: sym!(rados, "rados_create2"),
        rados_conf_read_file: sym!(rados, "rados_conf_read_file"),
        rados_conf_set: sym!(rados, "rados_conf_set"),
        rados_connect: sym!(rados, "rados_connect"),
        rados_shutdown: sym!(rados, "rados_shutdown"),
        rados_ioctx_create: sym!(rados, "rados_ioctx_create"),
        rados_ioctx_set_namespace: sym!(rados, "rados_ioctx_set_namespace"),
        rados_ioctx_destroy: sym!(rados, "rados_ioctx_destroy"),
        rados_get_instance_id: sym!(rados, "rados_get_instance_id"),
        rbd_open: sym!(rbd, "rbd_open"),
        rbd_write: sym!(rbd, "rbd_write"),
        rbd_flush: sym!(rbd, "rbd_flush"),
        rbd_invalidate_cache: sym!(rbd, "rbd_invalidate_cache"),
        rbd_open_read_only: sym!(rbd, "rbd_open_read_only"),
        rbd_close: sym!(rbd, "rbd_close"),
        rbd_get_size: sym!(rbd, "rbd_get_size"),
        rbd_read: sym!(rbd, "rbd_read"),
        rbd_stat: sym!(rbd, "rbd_stat"),
        rbd_aio_create_completion: sym!(rbd, "rbd_aio_create_completion"),
        rbd_aio_read: sym!(rbd, "rbd_aio_read"),
        rbd_aio_wait_for_complete: sym!(rbd, "rbd_aio_wait_for_complete"),
        rbd_aio_get_return_value: sym!(rbd, "rbd_aio_get_return_value"),
        rbd_aio_release: sym!(rbd, "rbd_aio_release"),
        rbd_list_lockers: sym!(rbd, "rbd_list_lockers"),
        rbd_snap_list: sym!(rbd, "rbd_snap_list"),
        rbd_snap_list_end: sym!(rbd, "rbd_snap_list_end"),
        rbd_snap_get_timestamp: sym!(rbd, "rbd_snap_get_timestamp"),
        rbd_watchers_list: sym!(rbd, "rbd_watchers_list"),
        rbd_watchers_list_cleanup: sym!(rbd, "rbd_watchers_list_cleanup"),
        _rados: rados,
        _rbd: rbd,
    })
}

/// A negative errno from librados/librbd as text.
fn errno_text(ret: i64) -> String {
    let code = i32::try_from(ret.unsigned_abs()).unwrap_or(i32::MAX);
    std::io::Error::from_raw_os_error(code).to_string()
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("{what} \"{s}\" contains a NUL byte")))
}

/// A cluster connection, an I/O context and an open image; closed in that
/// order's reverse on drop.
struct Handle {
    api: Arc<Api>,
    cluster: RadosT,
    ioctx: IoctxT,
    image: RbdImageT,
}

// SAFETY: librados/librbd handles may be used from any thread; librbd's
// I/O calls on one image are safe to make concurrently.
#[allow(unsafe_code)]
unsafe impl Send for Handle {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Sync for Handle {}

#[allow(unsafe_code)]
impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: each pointer came from its create/open call and is
        // released once, image before context before cluster.
        unsafe {
            if !self.image.is_null() {
                (self.api.rbd_close)(self.image);
            }
            if !self.ioctx.is_null() {
                (self.api.rados_ioctx_destroy)(self.ioctx);
            }
            if !self.cluster.is_null() {
                (self.api.rados_shutdown)(self.cluster);
            }
        }
    }
}

/// One RBD snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbdSnapshot {
    /// The snapshot ID.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The image size when it was taken.
    pub size: u64,
    /// When it was taken (seconds since the epoch), if librbd says.
    pub taken: Option<u32>,
}

/// A read that small goes through the 64 KiB block cache.
const SMALL_READ: usize = 128 * 1024;
/// The small-read cache's block size.
const SMALL_BLOCK: u64 = 64 * 1024;
/// Small blocks kept (32 MiB).
const SMALL_BLOCKS: usize = 512;
/// Objects requested ahead of big reads going forward in order.
pub const AHEAD: u64 = 4;
/// Objects kept for big reads (64 MiB of 4 MiB objects).
const PIECES_KEPT: usize = 16;
/// Smallest and largest piece used for big reads, whatever the object size says.
const PIECE_MIN: u64 = 64 * 1024;
const PIECE_MAX: u64 = 32 * 1024 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An `rbd_aio_read` in flight, with the buffer librbd writes into. Dropped
/// (even unread) only once librbd is done with the buffer.
struct Aio {
    api: Arc<Api>,
    completion: Completion,
    buf: Vec<u8>,
    /// Whether librbd took the read (else there is nothing to wait for).
    submitted: bool,
}

// SAFETY: a completion may be waited on and released from any thread; the
// buffer is only touched by librbd until the wait returns.
#[allow(unsafe_code)]
unsafe impl Send for Aio {}

#[allow(unsafe_code)]
impl Aio {
    /// Wait for the read; its bytes or why it failed.
    fn finish(mut self) -> std::result::Result<Arc<[u8]>, String> {
        // SAFETY: a live completion of a submitted read.
        let r = unsafe {
            (self.api.rbd_aio_wait_for_complete)(self.completion);
            (self.api.rbd_aio_get_return_value)(self.completion)
        };
        if r < 0 {
            return Err(errno_text(r as i64));
        }
        let n = usize::try_from(r).unwrap_or(0);
        if n != self.buf.len() {
            return Err(format!("short read: {n} of {} bytes", self.buf.len()));
        }
        Ok(Arc::from(std::mem::take(&mut self.buf)))
    }
}

#[allow(unsafe_code)]
impl Drop for Aio {
    fn drop(&mut self) {
        // SAFETY: waiting again on a finished completion returns at once;
        // the buffer outlives the read, the completion is released once.
        unsafe {
            if self.submitted {
                (self.api.rbd_aio_wait_for_complete)(self.completion);
            }
            (self.api.rbd_aio_release)(self.completion);
        }
    }
}

/// One piece of the image: requested, then read.
enum PieceState {
    InFlight(Aio),
    Done(std::result::Result<Arc<[u8]>, String>),
}

struct Piece {
    offset: u64,
    len: usize,
    state: Mutex<PieceState>,
}

impl Piece {
    /// Its bytes, waiting for them if they are still on the way.
    fn bytes(&self) -> std::result::Result<Arc<[u8]>, String> {
        let mut st = lock(&self.state);
        if matches!(*st, PieceState::InFlight(_)) {
            let old = std::mem::replace(&mut *st, PieceState::Done(Err(String::new())));
            if let PieceState::InFlight(aio) = old {
                *st = PieceState::Done(aio.finish());
            }
        }
        match &*st {
            PieceState::Done(r) => r.clone(),
            PieceState::InFlight(_) => Err("still in flight".into()),
        }
    }
}

/// Pieces of one size by index, oldest dropped first.
struct Pieces {
    size: u64,
    cap: usize,
    map: HashMap<u64, Arc<Piece>>,
    order: VecDeque<u64>,
}

impl Pieces {
    fn new(size: u64, cap: usize) -> Mutex<Pieces> {
        Mutex::new(Pieces {
            size,
            cap,
            map: HashMap::new(),
            order: VecDeque::new(),
        })
    }
}

/// An opened RBD image: the bytes of the head or of one snapshot.
pub struct Rbd {
    // Before `handle`: reads in flight are waited for before the image closes.
    small: Mutex<Pieces>,
    big: Mutex<Pieces>,
    requests: std::sync::atomic::AtomicU64,
    handle: Handle,
    size: u64,
    spec: Spec,
    /// The object size (`rbd_stat`), the size of the pieces big reads go in.
    pub object_size: u64,
    /// The image's snapshots.
    pub snapshots: Vec<RbdSnapshot>,
    /// Who else has the image: watchers (a running VM's librbd, `rbd
    /// watch`, a kernel mapping) and lock holders (the exclusive lock, `rbd
    /// lock add`), as `client.ID at ADDR (what)`.
    pub holders: Vec<String>,
    /// The snapshot shown, if any.
    pub shown: Option<String>,
    /// `client.ID`, for messages.
    pub client: String,
    /// How the cluster was reached (a repair's writer reaches it the same way).
    ceph: CephOptions,
}

/// Connect to the cluster as `spec` and `ceph` say and open the pool's I/O
/// context (and namespace); no image yet. Gives the handle and `client.ID`.
#[allow(unsafe_code)]
fn connect(spec: &Spec, ceph: &CephOptions) -> Result<(Handle, String)> {
    let name = spec.name();
    let api = Arc::new(load().map_err(Error::Unsupported)?);
    let id = spec
        .option("id")
        .map(str::to_string)
        .or_else(|| ceph.id.clone())
        .unwrap_or_else(|| "admin".into());
    let client = format!("client.{id}");
    let conf = spec
        .option("conf")
        .map(PathBuf::from)
        .or_else(|| ceph.conf.clone());
    let keyring = spec
        .option("keyring")
        .map(PathBuf::from)
        .or_else(|| ceph.keyring.clone());
    let fail = |what: String| Error::Invalid(format!("rbd:{name}: {what}"));
    for (what, file) in [("Ceph configuration", &conf), ("keyring", &keyring)] {
        if let Some(f) = file
            && !f.exists()
        {
            return Err(fail(format!("the {what} {} does not exist", f.display())));
        }
    }

    let mut h = Handle {
        api: api.clone(),
        cluster: std::ptr::null_mut(),
        ioctx: std::ptr::null_mut(),
        image: std::ptr::null_mut(),
    };
    let c_cluster = cstring("cluster name", "ceph")?;
    let c_client = cstring("client", &client)?;
    // SAFETY: valid out-pointer and NUL-terminated strings.
    let r =
        unsafe { (api.rados_create2)(&mut h.cluster, c_cluster.as_ptr(), c_client.as_ptr(), 0) };
    if r < 0 {
        h.cluster = std::ptr::null_mut();
        return Err(fail(format!(
            "rados_create2 for {client} failed: {}",
            errno_text(r.into())
        )));
    }
    match &conf {
        Some(path) => {
            let c = cstring("ceph.conf path", &path.to_string_lossy())?;
            // SAFETY: a created cluster handle and a C string.
            let r = unsafe { (api.rados_conf_read_file)(h.cluster, c.as_ptr()) };
            if r < 0 {
                return Err(fail(format!(
                    "cannot read the Ceph configuration {}: {}",
                    path.display(),
                    errno_text(r.into())
                )));
            }
        }
        None => {
            // SAFETY: NULL asks librados to search its default places.
            let r = unsafe { (api.rados_conf_read_file)(h.cluster, std::ptr::null()) };
            if r < 0 && spec.option("mon_host").is_none() {
                return Err(fail(format!(
                    "no Ceph configuration found (/etc/ceph/ceph.conf, $CEPH_CONF: {}); \
                     give one with --ceph-conf FILE",
                    errno_text(r.into())
                )));
            }
        }
    }
    let mut settings: Vec<(String, String)> = vec![
        // Bounded: an unreachable monitor or OSD is an error, not a hang.
        ("client_mount_timeout".into(), "20".into()),
        ("rados_mon_op_timeout".into(), "20".into()),
        ("rados_osd_op_timeout".into(), "60".into()),
    ];
    if let Some(k) = &keyring {
        settings.push(("keyring".into(), k.to_string_lossy().into_owned()));
    }
    for (k, v) in &spec.options {
        if !["id", "conf", "keyring"].contains(&k.as_str()) {
            settings.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in &settings {
        let ck = cstring("option", k)?;
        let cv = cstring("option value", v)?;
        // SAFETY: a created cluster handle and C strings.
        let r = unsafe { (api.rados_conf_set)(h.cluster, ck.as_ptr(), cv.as_ptr()) };
        if r < 0 {
            return Err(fail(format!(
                "Ceph option {k}={v} refused: {}",
                errno_text(r.into())
            )));
        }
    }
    // SAFETY: a configured cluster handle.
    let r = unsafe { (api.rados_connect)(h.cluster) };
    if r < 0 {
        let hint = match -r {
            1 | 13 => " (wrong key or keyring for this client? --ceph-id, --keyring)",
            110 => " (no monitor answered: check mon_host in the configuration)",
            _ => "",
        };
        return Err(fail(format!(
            "connecting to the Ceph cluster as {client}{} failed: {}{hint}",
            conf.as_ref()
                .map(|c| format!(" with {}", c.display()))
                .unwrap_or_default(),
            errno_text(r.into())
        )));
    }
    let c_pool = cstring("pool", &spec.pool)?;
    // SAFETY: a connected cluster, a C string and an out-pointer.
    let r = unsafe { (api.rados_ioctx_create)(h.cluster, c_pool.as_ptr(), &mut h.ioctx) };
    if r < 0 {
        h.ioctx = std::ptr::null_mut();
        let why = if r == -2 {
            format!("pool \"{}\" does not exist", spec.pool)
        } else {
            format!(
                "cannot open pool \"{}\": {}",
                spec.pool,
                errno_text(r.into())
            )
        };
        return Err(fail(why));
    }
    if let Some(ns) = &spec.namespace {
        let c = cstring("namespace", ns)?;
        // SAFETY: a live I/O context and a C string.
        unsafe { (api.rados_ioctx_set_namespace)(h.ioctx, c.as_ptr()) };
    }
    Ok((h, client))
}

impl Rbd {
    /// Connect and open the image `spec` names, read-only.
    #[allow(unsafe_code)]
    pub fn open(spec: &Spec, ceph: &CephOptions, snapshot: Option<&str>) -> Result<Rbd> {
        let name = spec.name();
        let snapshot = match (spec.snapshot.as_deref(), snapshot) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::Invalid(format!(
                    "rbd:{name}: the name says snapshot \"{a}\" and --snapshot says \"{b}\""
                )));
            }
            (a, b) => a.or(b).map(str::to_string),
        };
        let (mut h, client) = connect(spec, ceph)?;
        let api = Arc::clone(&h.api);
        let fail = |what: String| Error::Invalid(format!("rbd:{name}: {what}"));
        let c_image = cstring("image", &spec.image)?;
        // The head first: its snapshots and watchers.
        // SAFETY: a live I/O context, a C string, an out-pointer, NULL = head.
        let r = unsafe {
            (api.rbd_open_read_only)(h.ioctx, c_image.as_ptr(), &mut h.image, std::ptr::null())
        };
        if r < 0 {
            h.image = std::ptr::null_mut();
            let why = match -r {
                2 => format!("no image \"{}\" in pool \"{}\"", spec.image, spec.pool),
                1 | 13 => format!(
                    "{client} may not read image \"{}\" in pool \"{}\": {}",
                    spec.image,
                    spec.pool,
                    errno_text(r.into())
                ),
                _ => format!(
                    "cannot open image \"{}\": {}",
                    spec.image,
                    errno_text(r.into())
                ),
            };
            return Err(fail(why));
        }
        let snapshots = list_snapshots(&h)?;
        let holders = group_holders(list_watchers(&h).into_iter().chain(list_lockers(&h)));
        if let Some(s) = &snapshot {
            if !snapshots.iter().any(|x| &x.name == s) {
                let names: Vec<&str> = snapshots.iter().map(|x| x.name.as_str()).collect();
                return Err(fail(format!(
                    "no snapshot \"{s}\" (the image has {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )));
            }
            let c_snap = cstring("snapshot", s)?;
            // SAFETY: the head handle is closed once and replaced.
            unsafe { (api.rbd_close)(h.image) };
            h.image = std::ptr::null_mut();
            // SAFETY: as for the head.
            let r = unsafe {
                (api.rbd_open_read_only)(h.ioctx, c_image.as_ptr(), &mut h.image, c_snap.as_ptr())
            };
            if r < 0 {
                h.image = std::ptr::null_mut();
                return Err(fail(format!(
                    "cannot open snapshot \"{s}\": {}",
                    errno_text(r.into())
                )));
            }
        }
        let mut size = 0u64;
        // SAFETY: an open image and an out-pointer.
        let r = unsafe { (api.rbd_get_size)(h.image, &mut size) };
        if r < 0 {
            return Err(fail(format!(
                "cannot read the image size: {}",
                errno_text(r.into())
            )));
        }
        let mut info = ImageInfo {
            size: 0,
            obj_size: 0,
            num_objs: 0,
            order: 0,
            block_name_prefix: [0; 24],
            parent_pool: 0,
            parent_name: [0; 96],
        };
        // SAFETY: an open image, an out-pointer and its size.
        let r = unsafe { (api.rbd_stat)(h.image, &mut info, std::mem::size_of::<ImageInfo>()) };
        let object_size = if r < 0 || info.obj_size == 0 {
            4 << 20
        } else {
            info.obj_size.clamp(PIECE_MIN, PIECE_MAX)
        };
        Ok(Rbd {
            small: Pieces::new(SMALL_BLOCK, SMALL_BLOCKS),
            big: Pieces::new(object_size, PIECES_KEPT),
            requests: std::sync::atomic::AtomicU64::new(0),
            handle: h,
            size,
            spec: spec.clone(),
            object_size,
            snapshots,
            holders,
            shown: snapshot,
            client,
            ceph: ceph.clone(),
        })
    }

    /// Facts for the layer tree, like a qcow2's: snapshots, the one shown,
    /// who watches it.
    pub fn details(&self) -> Vec<String> {
        use humansize::{BINARY, format_size};
        let mut out = vec![format!("Ceph RBD {} as {}", self.spec.name(), self.client)];
        if !self.snapshots.is_empty() {
            let list: Vec<String> = self
                .snapshots
                .iter()
                .map(|s| {
                    format!(
                        "{} \"{}\" {}",
                        s.id,
                        crate::text::escape_str(&s.name),
                        format_size(s.size, BINARY)
                    )
                })
                .collect();
            out.push(super::snapshots_detail(&list));
        }
        if let Some(s) = &self.shown {
            out.push(format!(
                "showing snapshot \"{}\"",
                crate::text::escape_str(s)
            ));
        }
        if !self.holders.is_empty() {
            out.push(format!("{IN_USE}{}", self.holders.join(", ")));
        }
        out
    }

    /// Read requests sent to the cluster so far (for benchmarks and tests).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Send an asynchronous read of `len` bytes at `offset`.
    #[allow(unsafe_code)]
    fn request(&self, offset: u64, len: usize) -> std::io::Result<Arc<Piece>> {
        let api = &self.handle.api;
        let mut completion: Completion = std::ptr::null_mut();
        // SAFETY: a callback that does nothing and an out-pointer.
        let r = unsafe {
            (api.rbd_aio_create_completion)(
                std::ptr::null_mut(),
                Some(completed as Callback),
                &mut completion,
            )
        };
        if r < 0 || completion.is_null() {
            return Err(self.error(offset, len, &errno_text(r.into())));
        }
        let mut aio = Aio {
            api: Arc::clone(api),
            completion,
            buf: vec![0u8; len],
            submitted: false,
        };
        // SAFETY: the buffer has `len` bytes and lives in `aio`, whose drop
        // waits for the read before freeing it.
        let r = unsafe {
            (api.rbd_aio_read)(
                self.handle.image,
                offset,
                len,
                aio.buf.as_mut_ptr().cast(),
                completion,
            )
        };
        if r < 0 {
            // Never submitted: dropping `aio` releases the completion.
            return Err(self.error(offset, len, &errno_text(r.into())));
        }
        aio.submitted = true;
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Arc::new(Piece {
            offset,
            len,
            state: Mutex::new(PieceState::InFlight(aio)),
        }))
    }

    fn error(&self, offset: u64, len: usize, why: &str) -> std::io::Error {
        std::io::Error::other(format!(
            "rbd:{}: read of {len} bytes at {offset} failed: {why}",
            self.spec.name()
        ))
    }

    /// The pieces `first..=last` of `pieces`, requested where missing, all
    /// sent before any is waited for.
    fn pieces(
        &self,
        pieces: &Mutex<Pieces>,
        first: u64,
        last: u64,
    ) -> std::io::Result<Vec<(u64, Arc<Piece>)>> {
        let mut p = lock(pieces);
        let size = p.size;
        let mut out = Vec::new();
        for i in first..=last {
            if let Some(s) = p.map.get(&i) {
                out.push((i, Arc::clone(s)));
                continue;
            }
            let start = i.saturating_mul(size);
            if start >= self.size {
                break;
            }
            let len = usize::try_from(size.min(self.size - start)).unwrap_or(0);
            let piece = self.request(start, len)?;
            p.map.insert(i, Arc::clone(&piece));
            p.order.push_back(i);
            out.push((i, piece));
        }
        // Bounded: one removal per piece over the cap.
        while p.order.len() > p.cap {
            if let Some(old) = p.order.pop_front() {
                p.map.remove(&old);
            }
        }
        Ok(out)
    }

    /// Fill `buf` from the pieces of `pieces`; with `ahead`, keep the
    /// next [`AHEAD`] pieces in flight when reads go forward in order.
    fn read_pieces(
        &self,
        pieces: &Mutex<Pieces>,
        offset: u64,
        buf: &mut [u8],
        ahead: bool,
    ) -> std::io::Result<()> {
        let end = offset.saturating_add(buf.len() as u64);
        let size = lock(pieces).size;
        let first = offset / size;
        let wanted = (end - 1) / size;
        let mut last = wanted;
        if ahead && first > 0 && lock(pieces).map.contains_key(&(first - 1)) {
            last = last.saturating_add(AHEAD).min((self.size - 1) / size);
        }
        for (i, piece) in self.pieces(pieces, first, last)? {
            if i > wanted {
                continue;
            }
            let from = offset.max(piece.offset);
            let to = end.min(piece.offset.saturating_add(piece.len as u64));
            let dst = buf
                .get_mut((from - offset) as usize..(to - offset) as usize)
                .ok_or_else(|| self.error(from, piece.len, "piece outside the read"))?;
            match piece.bytes() {
                Ok(data) => {
                    let src = data
                        .get((from - piece.offset) as usize..(to - piece.offset) as usize)
                        .ok_or_else(|| self.error(piece.offset, piece.len, "short piece"))?;
                    dst.copy_from_slice(src);
                }
                Err(_) => {
                    // The piece failed: forget it, and read the bytes asked
                    // for alone (a bad object elsewhere in the piece), which
                    // names that range if it fails too.
                    {
                        let mut p = lock(pieces);
                        if p.map.get(&i).is_some_and(|s| Arc::ptr_eq(s, &piece)) {
                            p.map.remove(&i);
                        }
                    }
                    self.read_direct(from, dst)?;
                }
            }
        }
        Ok(())
    }

    /// One synchronous `rbd_read` of `buf` at `offset`, past any cache.
    #[allow(unsafe_code)]
    fn read_direct(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let mut done = 0usize;
        // Bounded: every pass reads at least one byte or fails.
        while done < buf.len() {
            let rest = &mut buf[done..];
            let at = offset.saturating_add(done as u64);
            // SAFETY: rest is a valid writable buffer of rest.len() bytes.
            let r = unsafe {
                (self.handle.api.rbd_read)(
                    self.handle.image,
                    at,
                    rest.len(),
                    rest.as_mut_ptr().cast(),
                )
            };
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if r < 0 {
                return Err(self.error(at, rest.len(), &errno_text(r as i64)));
            }
            if r == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("rbd:{}: read at {at} returned nothing", self.spec.name()),
                ));
            }
            done += (r as usize).min(rest.len());
        }
        Ok(())
    }
}

/// How [`Rbd::details`] starts the line naming who else has the image.
const IN_USE: &str = "in use by ";

/// Whether an opened image is an RBD image that another client has open (a
/// running VM): who, for the in-use warning.
pub fn in_use(image: &Image) -> Option<String> {
    if image.format != ImageFormat::Rbd {
        return None;
    }
    image
        .details
        .iter()
        .find_map(|d| d.strip_prefix(IN_USE))
        .map(|w| format!("Ceph RBD image in use by {w}"))
}

/// Who else has the RBD image `path` (`rbd:...`) open: its watchers and
/// lock holders ([`Rbd::holders`]), for the Proxmox guest list. The
/// cluster is given 5 s to answer.
pub fn holders(path: &Path) -> Result<Vec<String>> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::Invalid(format!("{}: not UTF-8", path.display())))?;
    let mut spec = parse(text).map_err(Error::Invalid)?;
    // The head: a snapshot is never written, its image is.
    spec.snapshot = None;
    for k in ["client_mount_timeout", "rados_mon_op_timeout"] {
        if spec.option(k).is_none() {
            spec.options.push((k.to_string(), "5".to_string()));
        }
    }
    Ok(Rbd::open(&spec, &CephOptions::default(), None)?.holders)
}

#[allow(unsafe_code)]
fn list_snapshots(h: &Handle) -> Result<Vec<RbdSnapshot>> {
    // Bounded: a few tries with the count librbd asks for, at most 65536.
    let mut max: c_int = 16;
    for _ in 0..4 {
        let cap = usize::try_from(max).unwrap_or(16).min(65536);
        let mut buf: Vec<SnapInfo> = (0..cap)
            .map(|_| SnapInfo {
                id: 0,
                size: 0,
                name: std::ptr::null(),
            })
            .collect();
        let mut n = c_int::try_from(cap).unwrap_or(16);
        // SAFETY: buf has room for n entries.
        let r = unsafe { (h.api.rbd_snap_list)(h.image, buf.as_mut_ptr(), &mut n) };
        if r == -34 {
            // ERANGE: n is the count needed.
            max = n.max(max.saturating_mul(2));
            continue;
        }
        if r < 0 {
            return Err(Error::Invalid(format!(
                "listing the snapshots failed: {}",
                errno_text(r.into())
            )));
        }
        let count = usize::try_from(r).unwrap_or(0).min(cap);
        let mut out = buf[..count]
            .iter()
            .map(|s| RbdSnapshot {
                id: s.id,
                // SAFETY: librbd filled in NUL-terminated names for `count` entries.
                name: if s.name.is_null() {
                    String::new()
                } else {
                    unsafe { CStr::from_ptr(s.name) }
                        .to_string_lossy()
                        .into_owned()
                },
                size: s.size,
                taken: None,
            })
            .collect::<Vec<_>>();
        // SAFETY: frees the names librbd allocated in buf.
        unsafe { (h.api.rbd_snap_list_end)(buf.as_mut_ptr()) };
        for snap in &mut out {
            let mut ts = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: an open image, a snapshot ID it listed, an out-pointer.
            let r = unsafe { (h.api.rbd_snap_get_timestamp)(h.image, snap.id, &mut ts) };
            if r == 0 {
                snap.taken = u32::try_from(ts.tv_sec).ok();
            }
        }
        return Ok(out);
    }
    Err(Error::Invalid(
        "listing the snapshots failed: their number kept changing".into(),
    ))
}

/// `client.ID at ADDR (what, what)` for each client, in the order seen.
fn group_holders(all: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (who, what) in all {
        match out.iter_mut().find(|(w, _)| *w == who) {
            Some((_, list)) => list.push(what),
            None => out.push((who, vec![what])),
        }
    }
    out.into_iter()
        .map(|(who, what)| format!("{who} ({})", what.join(", ")))
        .collect()
}

/// The image's watchers (`client.ID at ADDR`, `watch`); empty when they
/// cannot be listed.
#[allow(unsafe_code)]
fn list_watchers(h: &Handle) -> Vec<(String, String)> {
    let mut cap: usize = 16;
    for _ in 0..4 {
        let mut buf: Vec<Watcher> = (0..cap)
            .map(|_| Watcher {
                addr: std::ptr::null_mut(),
                id: 0,
                cookie: 0,
            })
            .collect();
        let mut n = cap;
        // SAFETY: buf has room for n entries.
        let r = unsafe { (h.api.rbd_watchers_list)(h.image, buf.as_mut_ptr(), &mut n) };
        if r == -34 {
            cap = n.clamp(cap.saturating_mul(2), 4096);
            continue;
        }
        if r < 0 {
            return Vec::new();
        }
        let count = n.min(cap);
        let out = buf[..count]
            .iter()
            .map(|w| {
                let addr = if w.addr.is_null() {
                    String::new()
                } else {
                    // SAFETY: librbd filled in a NUL-terminated address.
                    unsafe { CStr::from_ptr(w.addr) }
                        .to_string_lossy()
                        .into_owned()
                };
                (format!("client.{} at {addr}", w.id), "watch".to_string())
            })
            .collect();
        // SAFETY: frees what librbd allocated for `count` entries.
        unsafe { (h.api.rbd_watchers_list_cleanup)(buf.as_mut_ptr(), count) };
        return out;
    }
    Vec::new()
}

/// Split a buffer of NUL-terminated strings.
fn nul_list(buf: &[u8]) -> Vec<String> {
    buf.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The image's lock holders (`client.ID at ADDR`, what lock): the
/// exclusive lock a writing librbd takes (its cookie `auto ...`), and locks
/// taken with `rbd lock add`; empty when they cannot be listed.
#[allow(unsafe_code)]
fn list_lockers(h: &Handle) -> Vec<(String, String)> {
    let mut cap = [256usize; 4];
    // Bounded: a few tries with the lengths librbd asks for, at most 1 MiB each.
    for _ in 0..4 {
        let mut bufs: Vec<Vec<u8>> = cap.iter().map(|n| vec![0u8; *n]).collect();
        let mut lens = cap;
        let mut exclusive: c_int = 0;
        let [tag, clients, cookies, addrs] = &mut bufs[..] else {
            return Vec::new();
        };
        let [tag_len, clients_len, cookies_len, addrs_len] = &mut lens;
        // SAFETY: each buffer has the length passed with it.
        let r = unsafe {
            (h.api.rbd_list_lockers)(
                h.image,
                &mut exclusive,
                tag.as_mut_ptr().cast(),
                tag_len,
                clients.as_mut_ptr().cast(),
                clients_len,
                cookies.as_mut_ptr().cast(),
                cookies_len,
                addrs.as_mut_ptr().cast(),
                addrs_len,
            )
        };
        if r == -34 {
            for (c, l) in cap.iter_mut().zip(lens) {
                *c = l.clamp(*c, 1 << 20);
            }
            continue;
        }
        if r <= 0 {
            return Vec::new();
        }
        let clients = nul_list(clients.get(..lens[1].min(cap[1])).unwrap_or_default());
        let cookies = nul_list(cookies.get(..lens[2].min(cap[2])).unwrap_or_default());
        let addrs = nul_list(addrs.get(..lens[3].min(cap[3])).unwrap_or_default());
        let kind = if exclusive != 0 {
            "exclusive"
        } else {
            "shared"
        };
        return clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let addr = addrs.get(i).map(String::as_str).unwrap_or("?");
                let cookie = cookies.get(i).map(String::as_str).unwrap_or("");
                let what = if cookie.starts_with("auto ") {
                    "exclusive lock".to_string()
                } else {
                    format!("{kind} lock \"{}\"", crate::text::escape_str(cookie))
                };
                (format!("{c} at {addr}"), what)
            })
            .collect();
    }
    Vec::new()
}

impl ReadAt for Rbd {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.size)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "rbd:{}: read of {} bytes at {offset} is past the end ({} bytes)",
                        self.spec.name(),
                        buf.len(),
                        self.size
                    ),
                )
            })?;
        if buf.len() <= SMALL_READ {
            self.read_pieces(&self.small, offset, buf, false)
        } else {
            self.read_pieces(&self.big, offset, buf, true)
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
        // A hint: at most the cache's worth of blocks.
        let first = offset / SMALL_BLOCK;
        let last = ((end - 1) / SMALL_BLOCK).min(first + SMALL_BLOCKS as u64 - 1);
        let _ = self.pieces(&self.small, first, last);
    }

    #[allow(unsafe_code)]
    fn refresh(&self) -> std::io::Result<()> {
        for p in [&self.small, &self.big] {
            let mut p = lock(p);
            p.map.clear();
            p.order.clear();
        }
        // librbd's own cache too: a repair wrote through another handle.
        // SAFETY: an open image handle.
        let r = unsafe { (self.handle.api.rbd_invalidate_cache)(self.handle.image) };
        if r < 0 {
            return Err(std::io::Error::other(format!(
                "rbd:{}: dropping librbd's cache failed: {}",
                self.spec.name(),
                errno_text(r.into())
            )));
        }
        Ok(())
    }

    fn network(&self) -> Option<&dyn NetworkDisk> {
        Some(self)
    }
}

impl NetworkDisk for Rbd {
    fn key(&self) -> PathBuf {
        PathBuf::from(key(&self.spec, &self.ceph))
    }
    fn read_only(&self) -> Option<String> {
        self.shown
            .as_ref()
            .map(|snap| snapshot_refusal(&self.spec, snap))
    }
    fn holders(&self) -> std::result::Result<Vec<String>, String> {
        // This handle is read-only: it has no watch and no lock of its own.
        Ok(group_holders(
            list_watchers(&self.handle)
                .into_iter()
                .chain(list_lockers(&self.handle)),
        ))
    }
    fn open_writer(&self) -> Result<Box<dyn WriteAt>> {
        let mut spec = self.spec.clone();
        spec.snapshot = self.shown.clone();
        Ok(Box::new(RbdWriter::open(&spec, &self.ceph)?))
    }
}

/// Why a snapshot is not written.
fn snapshot_refusal(spec: &Spec, snap: &str) -> String {
    format!(
        "rbd:{}@{snap} is a snapshot, which vmrescue never writes: repair the image itself \
         (rbd:{}), or roll back to the snapshot with `rbd snap rollback` first",
        spec.name(),
        spec.name()
    )
}

/// The name undo records keep for the image: `rbd:POOL/IMAGE` with the
/// options that reach the cluster (the spec's own, then `conf`, `id` and
/// `keyring` from the command line), in QEMU's syntax (`\:` for a colon).
pub fn key(spec: &Spec, ceph: &CephOptions) -> String {
    let esc = |v: &str| v.replace('\\', "\\\\").replace(':', "\\:");
    let mut out = format!("rbd:{}", spec.name());
    for (k, v) in &spec.options {
        out.push_str(&format!(":{}={}", esc(k), esc(v)));
    }
    let extra = [
        (
            "conf",
            ceph.conf.as_ref().map(|p| p.to_string_lossy().into_owned()),
        ),
        ("id", ceph.id.clone()),
        (
            "keyring",
            ceph.keyring
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
        ),
    ];
    for (k, v) in extra {
        if let Some(v) = v
            && spec.option(k).is_none()
        {
            out.push_str(&format!(":{k}={}", esc(&v)));
        }
    }
    out
}

/// An RBD image's head opened read-write for one repair (or undo): writes
/// with `rbd_write`, `rbd_flush`, reads back with `rbd_read` on the same
/// handle. Opened only while no other client watches or locks the image.
pub struct RbdWriter {
    handle: Handle,
    spec: Spec,
    key: String,
    size: u64,
}

impl RbdWriter {
    /// Open the head of `spec` read-write. Refused for a snapshot, and while
    /// another client watches the image or holds a lock on it (its own
    /// watch, which opening registers, excepted).
    #[allow(unsafe_code)]
    pub fn open(spec: &Spec, ceph: &CephOptions) -> Result<RbdWriter> {
        let name = spec.name();
        if let Some(snap) = &spec.snapshot {
            return Err(Error::Refused(format!(
                "{}; nothing was written",
                snapshot_refusal(spec, snap)
            )));
        }
        let (mut h, client) = connect(spec, ceph)?;
        let api = Arc::clone(&h.api);
        let c_image = cstring("image", &spec.image)?;
        // SAFETY: a live I/O context, a C string, an out-pointer, NULL = head.
        let r =
            unsafe { (api.rbd_open)(h.ioctx, c_image.as_ptr(), &mut h.image, std::ptr::null()) };
        if r < 0 {
            h.image = std::ptr::null_mut();
            return Err(Error::Invalid(format!(
                "rbd:{name}: cannot open the image for writing as {client}: {}",
                errno_text(r.into())
            )));
        }
        // SAFETY: a connected cluster handle.
        let ours = unsafe { (api.rados_get_instance_id)(h.cluster) };
        let own = format!("client.{ours} at ");
        let others = group_holders(
            list_watchers(&h)
                .into_iter()
                .filter(|(who, _)| !who.starts_with(&own))
                .chain(list_lockers(&h)),
        );
        if !others.is_empty() {
            return Err(Error::Refused(format!(
                "rbd:{name} is in use by {}: stop the VM (or release the lock) first; nothing was \
                 written",
                others.join(", ")
            )));
        }
        let mut size = 0u64;
        // SAFETY: an open image and an out-pointer.
        let r = unsafe { (api.rbd_get_size)(h.image, &mut size) };
        if r < 0 {
            return Err(Error::Invalid(format!(
                "rbd:{name}: cannot read the image size: {}",
                errno_text(r.into())
            )));
        }
        Ok(RbdWriter {
            handle: h,
            spec: spec.clone(),
            key: key(spec, ceph),
            size,
        })
    }

    /// The result of a synchronous `rbd_read`/`rbd_write` of `len` bytes
    /// at `offset` (`r`: bytes moved, or a negative errno), naming the range.
    fn done(&self, what: &str, offset: u64, len: usize, r: isize) -> std::io::Result<()> {
        let end = offset.saturating_add(len as u64);
        match usize::try_from(r) {
            Ok(n) if n == len => Ok(()),
            Ok(n) => Err(std::io::Error::other(format!(
                "{what} of bytes {offset}..{end} of rbd:{} moved {n} bytes",
                self.spec.name()
            ))),
            Err(_) => Err(std::io::Error::other(format!(
                "{what} of bytes {offset}..{end} of rbd:{} failed: {}",
                self.spec.name(),
                errno_text(r as i64)
            ))),
        }
    }

    fn check(&self, offset: u64, len: usize) -> std::io::Result<()> {
        match offset.checked_add(len as u64) {
            Some(e) if e <= self.size => Ok(()),
            _ => Err(crate::io::past_end(offset, len, self.size)),
        }
    }
}

#[allow(unsafe_code)]
impl WriteAt for RbdWriter {
    fn key(&self) -> PathBuf {
        PathBuf::from(&self.key)
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.check(offset, buf.len())?;
        // SAFETY: an open image and a buffer of the length given.
        let r = unsafe {
            (self.handle.api.rbd_read)(
                self.handle.image,
                offset,
                buf.len(),
                buf.as_mut_ptr().cast(),
            )
        };
        self.done("read", offset, buf.len(), r)
    }
    fn write_all_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        self.check(offset, data.len())?;
        // SAFETY: an open image and a buffer of the length given.
        let r = unsafe {
            (self.handle.api.rbd_write)(self.handle.image, offset, data.len(), data.as_ptr().cast())
        };
        self.done("write", offset, data.len(), r)
    }
    fn sync(&self) -> std::io::Result<()> {
        // SAFETY: an open image.
        let r = unsafe { (self.handle.api.rbd_flush)(self.handle.image) };
        if r < 0 {
            return Err(std::io::Error::other(format!(
                "flush of rbd:{} failed: {}",
                self.spec.name(),
                errno_text(r.into())
            )));
        }
        Ok(())
    }
}

/// The RBD image an undo record names by `key` (`rbd:...`, with its
/// options) opened for writing ([`RbdWriter::open`]).
pub fn open_writer(key: &Path) -> Result<Box<dyn WriteAt>> {
    let text = key
        .to_str()
        .ok_or_else(|| Error::Invalid(format!("{}: not UTF-8", key.display())))?;
    let spec = parse(text).map_err(Error::Invalid)?;
    Ok(Box::new(RbdWriter::open(&spec, &CephOptions::default())?))
}

/// Open `path` (`rbd:...`) as an [`Image`].
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Image> {
    let text = path
        .to_str()
        .ok_or_else(|| Error::Invalid(format!("{}: not UTF-8", path.display())))?;
    let spec = parse(text).map_err(Error::Invalid)?;
    let rbd = Rbd::open(&spec, &opts.ceph, opts.snapshot.as_deref())?;
    let details = rbd.details();
    let snapshot = rbd.shown.clone();
    Ok(Image {
        path: path.to_path_buf(),
        source: Arc::new(rbd),
        format: ImageFormat::Rbd,
        details,
        snapshot,
        problems: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_grouped_by_client() {
        assert_eq!(
            nul_list(b"client.1\0client.22\0\0"),
            ["client.1", "client.22"]
        );
        let got = group_holders(
            [
                ("client.7 at 10.0.0.1:0/1", "watch"),
                ("client.8 at 10.0.0.2:0/2", "watch"),
                ("client.7 at 10.0.0.1:0/1", "exclusive lock"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string())),
        );
        assert_eq!(
            got,
            [
                "client.7 at 10.0.0.1:0/1 (watch, exclusive lock)",
                "client.8 at 10.0.0.2:0/2 (watch)"
            ]
        );
    }

    #[test]
    fn parses_names_and_qemu_options() {
        let s = parse("rbd:vms/vm-108-disk-0").unwrap();
        assert_eq!(
            (s.pool.as_str(), s.image.as_str(), s.snapshot, s.namespace),
            ("vms", "vm-108-disk-0", None, None)
        );
        let s = parse("rbd:vms/ns1/disk@snap1:id=pve:keyring=/k:mon_host=10.0.0.1\\:6789;10.0.0.2")
            .unwrap();
        assert_eq!(s.namespace.as_deref(), Some("ns1"));
        assert_eq!(s.snapshot.as_deref(), Some("snap1"));
        assert_eq!(s.option("id"), Some("pve"));
        assert_eq!(s.option("keyring"), Some("/k"));
        assert_eq!(s.option("mon_host"), Some("10.0.0.1:6789;10.0.0.2"));
        assert_eq!(s.name(), "vms/ns1/disk");
        for bad in [
            "rbd:",
            "rbd:pool",
            "rbd:/img",
            "rbd:p/",
            "rbd:p/i@",
            "rbd:a/b/c/d",
            "rbd:p/i:noequals",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
