//! Ceph RBD images as image sources: `rbd:POOL/IMAGE[@SNAP]`, read through
//! the system's librbd and librados.
//!
//! The libraries are loaded when an `rbd:` image is opened (`dlopen` of
//! `librbd.so.1` and `librados.so.2`), so neither the binary nor the package
//! depends on Ceph; without them opening says which package to install.
//! The image is opened with `rbd_open_read_only` (librbd takes no lock and
//! registers no watch for it) and never written. One image handle serves
//! every reader: librbd's synchronous I/O calls may be made from several
//! threads on one handle, as QEMU's and rbd-nbd's I/O paths do.
//!
//! Options come from the command line (`--ceph-conf`, `--ceph-id`,
//! `--keyring`) or, in QEMU's own syntax, after the name:
//! `rbd:POOL/IMAGE[@SNAP][:conf=FILE][:id=ID][:keyring=FILE][:mon_host=H]`
//! (`\:` for a colon inside a value; any other `key=value` is handed to
//! `rados_conf_set`). Proxmox storage resolves to this form
//! ([`crate::pve::storage::resolve`]).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::ReadAt;

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
    rbd_open_read_only:
        unsafe extern "C" fn(IoctxT, *const c_char, *mut RbdImageT, *const c_char) -> c_int,
    rbd_close: unsafe extern "C" fn(RbdImageT) -> c_int,
    rbd_get_size: unsafe extern "C" fn(RbdImageT, *mut u64) -> c_int,
    rbd_read: unsafe extern "C" fn(RbdImageT, u64, usize, *mut c_char) -> isize,
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
        rbd_open_read_only: sym!(rbd, "rbd_open_read_only"),
        rbd_close: sym!(rbd, "rbd_close"),
        rbd_get_size: sym!(rbd, "rbd_get_size"),
        rbd_read: sym!(rbd, "rbd_read"),
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

/// An opened RBD image: the bytes of the head or of one snapshot.
pub struct Rbd {
    handle: Handle,
    size: u64,
    spec: Spec,
    /// The image's snapshots.
    pub snapshots: Vec<RbdSnapshot>,
    /// Clients watching the image (a running VM's librbd), `client.ID at ADDR`.
    pub watchers: Vec<String>,
    /// The snapshot shown, if any.
    pub shown: Option<String>,
    /// `client.ID`, for messages.
    pub client: String,
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
        let r = unsafe {
            (api.rados_create2)(&mut h.cluster, c_cluster.as_ptr(), c_client.as_ptr(), 0)
        };
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
        let watchers = list_watchers(&h);
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
        Ok(Rbd {
            handle: h,
            size,
            spec: spec.clone(),
            snapshots,
            watchers,
            shown: snapshot,
            client,
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
        if !self.watchers.is_empty() {
            out.push(format!("{IN_USE}{}", self.watchers.join(", ")));
        }
        out
    }
}

/// How [`Rbd::details`] starts the line naming the image's watchers.
const IN_USE: &str = "in use: watched by ";

/// Whether an opened image is an RBD image that a client watches (a
/// running VM): the watchers, for the in-use warning.
pub fn in_use(image: &Image) -> Option<String> {
    if image.format != ImageFormat::Rbd {
        return None;
    }
    image
        .details
        .iter()
        .find_map(|d| d.strip_prefix(IN_USE))
        .map(|w| format!("Ceph RBD watchers: {w}"))
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

/// The image's watchers; empty when they cannot be listed.
#[allow(unsafe_code)]
fn list_watchers(h: &Handle) -> Vec<String> {
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
                format!("client.{} at {addr}", w.id)
            })
            .collect();
        // SAFETY: frees what librbd allocated for `count` entries.
        unsafe { (h.api.rbd_watchers_list_cleanup)(buf.as_mut_ptr(), count) };
        return out;
    }
    Vec::new()
}

impl ReadAt for Rbd {
    #[allow(unsafe_code)]
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
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
        let _ = end;
        let mut done = 0usize;
        // Bounded: every pass reads at least one byte or fails.
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: rest is a valid writable buffer of rest.len() bytes.
            let r = unsafe {
                (self.handle.api.rbd_read)(
                    self.handle.image,
                    offset + done as u64,
                    rest.len(),
                    rest.as_mut_ptr().cast(),
                )
            };
            if r < 0 {
                return Err(std::io::Error::other(format!(
                    "rbd:{}: read of {} bytes at {} failed: {}",
                    self.spec.name(),
                    rest.len(),
                    offset + done as u64,
                    errno_text(r as i64)
                )));
            }
            if r == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "rbd:{}: read at {} returned nothing",
                        self.spec.name(),
                        offset + done as u64
                    ),
                ));
            }
            done += (r as usize).min(rest.len());
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }
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
