//! The state file: every kernel object a session creates is written here
//! *before* it is created, and removed after it is gone, so `vmrescue
//! cleanup` can undo what a killed session left behind.
//!
//! Each session has a directory `/run/vmrescue/<session>/` holding
//! `state.json` and the mountpoints. The file is replaced atomically
//! (written beside, fsynced, renamed) on every change.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Where sessions live.
pub const RUN_DIR: &str = "/run/vmrescue";
/// The state file's name in a session directory.
pub const STATE_FILE: &str = "state.json";

/// A kernel object a session may have created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Object {
    /// A directory we made (a mountpoint).
    Dir {
        /// Its path.
        path: PathBuf,
    },
    /// A device node we made with mknod (no devtmpfs/udev).
    Node {
        /// Its path.
        path: PathBuf,
    },
    /// A loop device.
    Loop {
        /// `N` of `/dev/loopN`.
        number: u32,
        /// The backing file.
        backing: PathBuf,
        /// The tag in its `lo_file_name`.
        tag: String,
    },
    /// An nbd device served by `qemu-nbd`.
    Nbd {
        /// `/dev/nbdN`.
        device: PathBuf,
        /// The image it serves.
        image: PathBuf,
    },
    /// A device-mapper device.
    Dm {
        /// Its name.
        name: String,
        /// Its dm UUID.
        uuid: String,
    },
    /// A mount.
    Mount {
        /// The mountpoint.
        path: PathBuf,
    },
}

impl Object {
    /// A short description for messages: `mount /run/vmrescue/ab/p1`.
    pub fn describe(&self) -> String {
        match self {
            Object::Dir { path } => format!("directory {}", path.display()),
            Object::Node { path } => format!("device node {}", path.display()),
            Object::Loop {
                number, backing, ..
            } => format!("loop device /dev/loop{number} ({})", backing.display()),
            Object::Nbd { device, image } => {
                format!("nbd device {} ({})", device.display(), image.display())
            }
            Object::Dm { name, .. } => format!("device-mapper device {name}"),
            Object::Mount { path } => format!("mount {}", path.display()),
        }
    }
}

/// The contents of a state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version (1).
    pub version: u32,
    /// The session id.
    pub session: String,
    /// The process that owns the session.
    pub pid: u32,
    /// That process's start time (field 22 of `/proc/PID/stat`), so a
    /// reused pid is not taken for a live session.
    pub pid_start: u64,
    /// The objects, in creation order.
    pub objects: Vec<Object>,
}

/// A session's state file, kept in step with the objects.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// What it holds.
    pub state: State,
}

impl StateFile {
    /// Create the session directory and an empty state file.
    pub fn create(run_dir: &Path, session: &str) -> Result<StateFile> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::create_dir_all(run_dir).with_path(run_dir)?;
        let dir = run_dir.join(session);
        // Only root may enter: the guest's files are mounted in here with
        // the guest's owners and permissions.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_path(&dir)?;
        let pid = std::process::id();
        let f = StateFile {
            path: dir.join(STATE_FILE),
            state: State {
                version: 1,
                session: session.to_string(),
                pid,
                pid_start: process_start(pid).unwrap_or(0),
                objects: Vec::new(),
            },
        };
        f.save()?;
        Ok(f)
    }

    /// The session directory.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(RUN_DIR))
    }

    /// Record `obj` (before creating it).
    pub fn add(&mut self, obj: Object) -> Result<()> {
        self.state.objects.push(obj);
        self.save()
    }

    /// Forget `obj` (after it is gone).
    pub fn remove(&mut self, obj: &Object) -> Result<()> {
        if let Some(i) = self.state.objects.iter().rposition(|o| o == obj) {
            self.state.objects.remove(i);
        }
        self.save()
    }

    /// Write the state atomically.
    pub fn save(&self) -> Result<()> {
        write_atomic(&self.path, &self.state)
    }

    /// Remove the state file and the session directory (when empty).
    pub fn delete(self) -> Result<()> {
        std::fs::remove_file(&self.path).with_path(&self.path)?;
        let dir = self.dir().to_path_buf();
        std::fs::remove_dir(&dir).with_path(&dir)
    }
}

/// Write `state` to `path` atomically: a temporary beside it, fsync, rename, fsync the dir.
pub fn write_atomic(path: &Path, state: &State) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text =
        serde_json::to_vec_pretty(state).map_err(|e| Error::Invalid(format!("state file: {e}")))?;
    let mut f = File::create(&tmp).with_path(&tmp)?;
    f.write_all(&text).with_path(&tmp)?;
    f.sync_all().with_path(&tmp)?;
    std::fs::rename(&tmp, path).with_path(path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Read a state file.
pub fn read(path: &Path) -> Result<State> {
    let text = std::fs::read(path).with_path(path)?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::corrupt("vmrescue state file", 0, format!("{}: {e}", path.display())))
}

/// The start time of process `pid` (clock ticks after boot), if it exists.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields
    // count from after the last ')'. starttime is field 22 overall.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that owns `state` still runs.
pub fn owner_alive(state: &State) -> bool {
    match process_start(state.pid) {
        Some(start) => state.pid_start == 0 || start == state.pid_start,
        None => false,
    }
}

/// A new short session id: 8 hex digits from the kernel's random source.
pub fn new_session_id() -> String {
    let mut b = [0u8; 4];
    let ok = File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b = (t ^ std::process::id().rotate_left(16)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What `vmrescue cleanup` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// What was removed (or would be, in a dry run), one line each.
    pub removed: Vec<String>,
    /// Sessions left alone because their process still runs.
    pub skipped: Vec<String>,
    /// What could not be removed, with the reason.
    pub problems: Vec<String>,
}

/// The session id in a dm name (`vmrescue-<sid>-<volume>`) or loop tag
/// (`vmrescue-<sid>:<file>` for a disk, `vmrescue-<sid>-<volume>` for a volume).
pub fn session_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(super::dm::NAME_PREFIX)?;
    let end = rest.find(['-', ':']).unwrap_or(rest.len());
    let sid = &rest[..end];
    (!sid.is_empty() && sid.chars().all(|c| c.is_ascii_hexdigit())).then_some(sid)
}

struct Cleaner<'a> {
    run_dir: &'a Path,
    dry_run: bool,
    dm_ok: bool,
    report: CleanupReport,
    /// Objects already dealt with (a dry run finds them again in the scan for orphans).
    handled: HashSet<String>,
}

impl Cleaner<'_> {
    /// Whether `key` is seen for the first time.
    fn first(&mut self, key: String) -> bool {
        self.handled.insert(key)
    }

    fn done(&mut self, what: String) {
        if self.dry_run {
            self.report.removed.push(format!("would remove {what}"));
        } else {
            self.report.removed.push(format!("removed {what}"));
        }
    }

    fn unmount(&mut self, path: &Path) {
        if !super::mount::is_mountpoint(path) || !self.first(format!("mount {}", path.display())) {
            return;
        }
        if self.dry_run {
            return self.done(format!("mount {}", path.display()));
        }
        match super::mount::unmount(path, 20, true) {
            Ok(super::mount::Unmounted::Lazily) => self.report.problems.push(format!(
                "{} is busy: detached lazily, the kernel finishes when its last file is closed",
                path.display()
            )),
            Ok(_) => self.done(format!("mount {}", path.display())),
            Err(e) => self.report.problems.push(e.to_string()),
        }
    }

    fn remove_dm(&mut self, name: &str) {
        if !self.dm_ok {
            return;
        }
        let ours = match super::dm::list_ours() {
            Ok(list) => list.into_iter().find(|(n, _)| n == name),
            Err(e) => {
                self.report.problems.push(e.to_string());
                return;
            }
        };
        let Some((_, uuid)) = ours else { return };
        if !self.first(format!("dm {name}")) {
            return;
        }
        if !uuid
            .as_deref()
            .is_some_and(|u| u.starts_with(super::dm::UUID_PREFIX))
        {
            self.report.problems.push(format!(
                "device-mapper device {name} has a foreign UUID ({}): left alone",
                uuid.unwrap_or_default()
            ));
            return;
        }
        if self.dry_run {
            return self.done(format!("device-mapper device {name}"));
        }
        match super::dm::remove(name, true) {
            Ok(super::dm::Removed::Deferred) => self.report.problems.push(format!(
                "device-mapper device {name} is busy: the kernel removes it when released"
            )),
            Ok(super::dm::Removed::Now) => self.done(format!("device-mapper device {name}")),
            Ok(super::dm::Removed::Absent) => {}
            Err(e) => self.report.problems.push(e.to_string()),
        }
    }

    fn detach_loop(&mut self, number: u32, tag: &str) {
        match super::loopdev::status(number) {
            Ok(Some(st)) if st.tag == tag => {
                if !self.first(format!("loop {number}")) {
                    return;
                }
                let what = format!("loop device /dev/loop{number} ({tag})");
                if self.dry_run {
                    return self.done(what);
                }
                match super::loopdev::detach(number) {
                    Ok(_) => match super::loopdev::status(number) {
                        Ok(Some(st)) if st.tag == tag => self.report.problems.push(format!(
                            "/dev/loop{number} is still in use: it detaches itself when released"
                        )),
                        _ => self.done(what),
                    },
                    Err(e) => self.report.problems.push(e.to_string()),
                }
            }
            Ok(_) => {}
            Err(e) => self.report.problems.push(e.to_string()),
        }
    }

    fn undo(&mut self, sid: &str, obj: &Object) {
        let session_dir = self.run_dir.join(sid);
        match obj {
            Object::Mount { path } if path.starts_with(&session_dir) => self.unmount(path),
            Object::Dir { path } if path.starts_with(&session_dir) => {
                if path.is_dir()
                    && !super::mount::is_mountpoint(path)
                    && (self.dry_run || std::fs::remove_dir(path).is_ok())
                {
                    self.done(format!("directory {}", path.display()));
                }
            }
            Object::Dm { name, .. } if session_of(name) == Some(sid) => self.remove_dm(name),
            Object::Loop { number, tag, .. } if session_of(tag) == Some(sid) => {
                self.detach_loop(*number, tag)
            }
            Object::Nbd { device, image } => {
                if super::nbd::serves(device, image) {
                    if self.dry_run {
                        return self.done(obj.describe());
                    }
                    match super::nbd::disconnect_path(device) {
                        Ok(()) => self.done(obj.describe()),
                        Err(e) => self.report.problems.push(e.to_string()),
                    }
                }
            }
            Object::Node { path } if path.starts_with("/dev") => {
                use std::os::unix::fs::FileTypeExt;
                let is_blk = std::fs::symlink_metadata(path)
                    .map(|m| m.file_type().is_block_device())
                    .unwrap_or(false);
                if is_blk && (self.dry_run || std::fs::remove_file(path).is_ok()) {
                    self.done(obj.describe());
                }
            }
            other => self.report.problems.push(format!(
                "session {sid}: {} is not one of ours: left alone",
                other.describe()
            )),
        }
    }
}

/// Remove what killed sessions left: mounts, dm devices, loop and nbd
/// devices, nodes and directories, each only when it carries our prefix
/// and its session's process is gone. Live sessions are left alone.
pub fn cleanup(run_dir: &Path, dry_run: bool) -> CleanupReport {
    let mut c = Cleaner {
        run_dir,
        dry_run,
        dm_ok: super::dm::available().is_ok(),
        report: CleanupReport::default(),
        handled: HashSet::new(),
    };
    let mut live: Vec<String> = Vec::new();
    let mut dead: Vec<(String, Option<State>)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(run_dir) {
        for e in entries.flatten() {
            let sid = e.file_name().to_string_lossy().into_owned();
            if !e.path().is_dir()
                || session_of(&format!("{}{sid}", super::dm::NAME_PREFIX)).is_none()
            {
                continue;
            }
            match read(&e.path().join(STATE_FILE)) {
                Ok(st) if owner_alive(&st) => {
                    c.report.skipped.push(format!(
                        "session {sid} is still running (pid {}): left alone",
                        st.pid
                    ));
                    live.push(sid);
                }
                Ok(st) => dead.push((sid, Some(st))),
                Err(_) => dead.push((sid, None)),
            }
        }
    }
    // Dead sessions with a state file: undo in reverse order of creation.
    for (sid, st) in &dead {
        if let Some(st) = st {
            for obj in st.objects.iter().rev() {
                c.undo(sid, obj);
            }
        }
    }
    // Leftovers no state file knows of (a lost file): mounts under a dead
    // session's directory, dm devices and loop devices with our prefix.
    let is_live = |sid: &str| live.iter().any(|l| l == sid);
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        let mut points: Vec<PathBuf> = info
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .map(|m| PathBuf::from(m.replace("\\040", " ")))
            .filter(|p| {
                p.strip_prefix(run_dir)
                    .ok()
                    .and_then(|r| r.components().next())
                    .is_some_and(|sid| {
                        let sid = sid.as_os_str().to_string_lossy();
                        !is_live(&sid)
                    })
            })
            .collect();
        points.sort();
        points.dedup();
        for p in points.iter().rev() {
            c.unmount(p);
        }
    }
    if c.dm_ok
        && let Ok(list) = super::dm::list_ours()
    {
        for (name, _) in list.iter().rev() {
            if session_of(name).is_some_and(|sid| !is_live(sid)) {
                c.remove_dm(name);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir("/sys/block") {
        let mut loops: Vec<u32> = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("loop"))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        loops.sort_unstable();
        for n in loops {
            if let Ok(Some(st)) = super::loopdev::status(n)
                && session_of(&st.tag).is_some_and(|sid| !is_live(sid))
            {
                c.detach_loop(n, &st.tag);
            }
        }
    }
    // Finally the dead sessions' directories and state files.
    for (sid, _) in &dead {
        let dir = run_dir.join(sid);
        if dry_run {
            c.done(format!("session state {}", dir.display()));
            continue;
        }
        let mut clean = true;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.file_name() == Some(OsStr::new(STATE_FILE)) {
                    continue;
                }
                if p.is_dir() && !super::mount::is_mountpoint(&p) && std::fs::remove_dir(&p).is_ok()
                {
                    continue;
                }
                if p.extension() == Some(OsStr::new("tmp")) && std::fs::remove_file(&p).is_ok() {
                    continue;
                }
                clean = false;
                c.report.problems.push(format!(
                    "{} is left (not ours or still in use)",
                    p.display()
                ));
            }
        }
        if clean {
            let _ = std::fs::remove_file(dir.join(STATE_FILE));
            match std::fs::remove_dir(&dir) {
                Ok(()) => c.done(format!("session state {}", dir.display())),
                Err(e) => c.report.problems.push(format!("{}: {e}", dir.display())),
            }
        }
    }
    c.report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_recorded_and_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let mut f = StateFile::create(tmp.path(), "ab12cd34").unwrap();
        let obj = Object::Dm {
            name: "vmrescue-ab12cd34-p1".into(),
            uuid: "VMRESCUE-ab12cd34-p1".into(),
        };
        f.add(Object::Loop {
            number: 3,
            backing: "/x/disk.img".into(),
            tag: "vmrescue-ab12cd34:disk.img".into(),
        })
        .unwrap();
        f.add(obj.clone()).unwrap();
        let path = tmp.path().join("ab12cd34").join(STATE_FILE);
        let back = read(&path).unwrap();
        assert_eq!(back.objects.len(), 2);
        assert_eq!(back.objects[1], obj);
        assert_eq!(back.pid, std::process::id());
        assert!(owner_alive(&back));
        f.remove(&obj).unwrap();
        assert_eq!(read(&path).unwrap().objects.len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("ab12cd34"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        f.delete().unwrap();
        assert!(!tmp.path().join("ab12cd34").exists());
    }

    #[test]
    fn dead_and_reused_pids_are_not_alive() {
        let mut s = State {
            version: 1,
            session: "x".into(),
            pid: std::process::id(),
            pid_start: process_start(std::process::id()).unwrap(),
            objects: vec![],
        };
        assert!(owner_alive(&s));
        s.pid_start += 1;
        assert!(!owner_alive(&s));
        s.pid = u32::MAX - 1;
        assert!(!owner_alive(&s));
    }

    #[test]
    fn session_ids_come_back_out_of_names() {
        assert_eq!(session_of("vmrescue-ab12cd34-vg-lv"), Some("ab12cd34"));
        assert_eq!(session_of("vmrescue-ab12cd34:disk.img"), Some("ab12cd34"));
        assert_eq!(session_of("vmrescue-xyz-p1"), None);
        assert_eq!(session_of("pve-root"), None);
    }

    #[test]
    fn session_ids_are_short_hex() {
        let id = new_session_id();
        assert_eq!(id.len(), 8);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
