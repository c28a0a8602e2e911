//! The app's state and [`App::update`]: everything the screen shows, changed
//! only by actions and job results, never by the terminal.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::action::Action;
use super::copier::{CopyRequest, CopySource, volume_folder};
use super::dialogs::restore::relink_setup;
use super::dialogs::{
    Confirm, ConfirmKind, CopyJob, CopySetup, Ctx, Dialog, DoctorView, Outcome, RestoreDialog,
    ViewerDialog,
};
use super::event::{Effect, Event, JobResult};
use super::files::{FilePane, Loading, parent_of};
use super::keymap::{Context, Key, Keymap};
use super::layers::{LayerPane, volume_of};
use super::marks::{Mark, Marks};
use super::strings as s;
use super::text_field::TextField;
use super::views::layout::Screen;
use crate::fs::path::join;
use crate::fs::{FileType, FsStatus, FsView};
use crate::guest::{MountState, Namespace};
use crate::layers::{Layout, VolumeId};
use crate::repair::candidates::Analysis;
use crate::repair::relink::GuestView;
use crate::repair::relink::Plan;
use crate::text::{escape, escape_str};
use crate::tui::tree::Tree;

/// Settings the app starts with.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Engine name for the status bar (`userspace`, `kernel`).
    pub engine: String,
    /// The engine serving each volume (by volume index), when known; the
    /// status bar shows the open volume's.
    pub volume_engines: Vec<String>,
    /// The volume asked for with `--volume`, else the guest root is opened.
    pub volume: Option<String>,
    /// Where copies go by default (`./rescued`); the image stem and volume follow.
    pub rescue_dir: String,
    /// Where symlink repairs save their undo files.
    pub undo_dir: std::path::PathBuf,
    /// The Proxmox configuration root, to ask whether a guest using the image runs.
    pub pve_root: std::path::PathBuf,
    /// The qcow2 internal snapshot shown (`--snapshot`, as the operator named
    /// it); else the one the first disk reports, if any.
    pub snapshot: Option<String>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            engine: "userspace".into(),
            volume_engines: Vec::new(),
            volume: None,
            rescue_dir: "./rescued".into(),
            undo_dir: crate::repair::undo::default_undo_dir(),
            pve_root: crate::pve::DEFAULT_ROOT.into(),
            snapshot: None,
        }
    }
}

/// Which pane has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The layer tree.
    Layers,
    /// The file list.
    Files,
}

/// A volume's filesystem, as far as it is known.
pub enum FsSlot {
    /// Being opened.
    Opening,
    /// Open.
    Open {
        /// The filesystem.
        fs: Arc<dyn FsView>,
        /// What it reported when opened (journal replay, checksum
        /// problems) and has found since, as of the last job's result.
        status: FsStatus,
        /// The guest's mount table, for the guest's tree.
        guest: Option<Arc<Namespace>>,
    },
    /// Cannot be read, and why.
    Failed(String),
}

/// What the right pane shows.
pub enum Right {
    /// Nothing opened yet.
    Empty,
    /// A filesystem is being opened.
    Opening(Tree),
    /// A filesystem could not be opened.
    Failed(Tree, String),
    /// A directory of an open filesystem.
    Browsing(Box<FilePane>),
}

/// The last message for the status bar. It is cleared by the next action,
/// and a message that is not an error also goes after [`MESSAGE_SECONDS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The text (escaped).
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
    /// When it was said.
    pub since: Instant,
}

/// How long a message that is not an error stays without a key pressed.
pub const MESSAGE_SECONDS: u64 = 8;
/// An image that changes again within this many seconds of the last change
/// read is changing all the time (a running guest writes it).
pub const BUSY_SECONDS: u64 = 10;
/// How often an image that keeps changing is read again.
pub const BUSY_RELOAD_SECONDS: u64 = 5;

/// What identifies an image file's contents cheaply: a change of any of
/// these means it was written (or replaced) under the TUI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageStamp {
    /// Device and inode (a replaced file has another).
    pub dev_ino: (u64, u64),
    /// Size in bytes.
    pub len: u64,
    /// Last modification, in nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl ImageStamp {
    /// The stamp of the file at `path` now (`None` when it cannot be read).
    pub fn of(path: &std::path::Path) -> Option<ImageStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(ImageStamp {
            dev_ino: (m.dev(), m.ino()),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

/// The whole state of the TUI.
pub struct App {
    /// The disks and volumes.
    pub layout: Arc<Layout>,
    /// Settings.
    pub config: AppConfig,
    /// Keys.
    pub keymap: Keymap,
    /// The first disk's file name, escaped, with `@snapshot` when a qcow2
    /// internal snapshot is shown.
    pub image: String,
    /// The qcow2 internal snapshot shown, escaped (`None`: the live disk).
    pub snapshot: Option<String>,
    /// The first disk's file name without extension (for the default destination).
    pub image_stem: String,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    /// Which pane has the keys.
    pub focus: Focus,
    /// The layer tree.
    pub layers: LayerPane,
    /// Filesystems opened (or being opened).
    pub fss: HashMap<Tree, FsSlot>,
    /// The right pane.
    pub right: Right,
    /// The last directory shown of each volume.
    pub last_paths: HashMap<Tree, Vec<u8>>,
    /// Marks.
    pub marks: Marks,
    /// The window over the panes.
    pub dialog: Option<Dialog>,
    /// The running copy.
    pub copy: Option<CopyJob>,
    /// The last message.
    pub message: Option<Message>,
    /// Set when the program should end.
    pub quit: bool,
    /// Set by the redraw action: the runtime clears the terminal once.
    pub redraw: bool,
    /// The signal that ended the program, if one did.
    pub signal: Option<i32>,
    quit_after_copy: bool,
    /// The windows under [`App::dialog`], the last one on top: Esc on the
    /// top window shows the one under it (help over the restore dialog, the
    /// question over it before writing).
    pub under: Vec<Dialog>,
    /// A repair is being written.
    pub writing: bool,
    /// Repairs written by this session (the status bar stops saying read-only).
    pub written: usize,
    /// The image files as last seen, to notice a change made elsewhere
    /// (`vmrescue undo` in another shell).
    image_stamps: Vec<Option<ImageStamp>>,
    /// When a change made elsewhere was last read.
    last_reload: Option<Instant>,
    /// Show the last message on the status line even over the selected
    /// entry's flag, until the next action (the outcome of a repair).
    pub message_first: bool,
    /// The entry to select when the volume shown is listed again (after a repair).
    reselect: Option<Vec<u8>>,
    wanted: Option<Tree>,
    next_gen: u64,
    effects: Vec<Effect>,
    /// The passphrases that opened LUKS volumes in the passphrase dialog,
    /// by volume name: the disks are scanned again with all of them when
    /// another volume is unlocked. Wiped when the app ends.
    luks_keys: Vec<(String, crate::layers::luks::Secret)>,
}

impl App {
    /// A new app over `layout`; call [`App::start`] to open the guest root.
    pub fn new(layout: Arc<Layout>, config: AppConfig) -> App {
        let (image, image_stem) = match layout.disks.first() {
            Some(d) => {
                let name = d.origin.short_name();
                let stem = d
                    .origin
                    .host_path()
                    .and_then(|p| p.file_stem())
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "image".into());
                (escape_str(&name), stem)
            }
            None => (String::new(), "image".into()),
        };
        let layers = LayerPane::new(&layout);
        let snapshot = config
            .snapshot
            .clone()
            .or_else(|| layout.disks.first().and_then(|d| d.snapshot.clone()))
            .map(|s| escape_str(&s));
        let image = match &snapshot {
            Some(snap) => format!("{image}@{snap}"),
            None => image,
        };
        let image_stamps = image_stamps(&layout);
        App {
            layout,
            config,
            keymap: Keymap::builtin(),
            image,
            image_stem,
            snapshot,
            size: (80, 24),
            focus: Focus::Layers,
            layers,
            fss: HashMap::new(),
            right: Right::Empty,
            last_paths: HashMap::new(),
            marks: Marks::default(),
            dialog: None,
            copy: None,
            message: None,
            quit: false,
            redraw: false,
            signal: None,
            quit_after_copy: false,
            under: Vec::new(),
            writing: false,
            written: 0,
            image_stamps,
            last_reload: None,
            message_first: false,
            reselect: None,
            wanted: None,
            next_gen: 1,
            effects: Vec::new(),
            luks_keys: Vec::new(),
        }
    }

    /// Open the volume asked for, or the guest as it boots (its root with
    /// the volumes its fstab mounts), else the volume the subcommands choose.
    pub fn start(&mut self) {
        if self.config.volume.is_none()
            && self.layers.first_is_chosen
            && let Some(root) = self.layers.guest_at(&[0])
        {
            self.layers.selected = vec![0];
            self.open_tree(Tree::Guest(root));
            return;
        }
        match crate::engine::select(&self.layout, self.config.volume.as_deref()) {
            // A volume holding a guest's disk: that guest as it boots.
            Ok(sel) if sel.guest && self.layers.path_of_guest(sel.volume).is_some() => {
                if let Some(path) = self.layers.path_of_guest(sel.volume) {
                    self.layers.selected = path;
                }
                self.open_tree(Tree::Guest(sel.volume));
            }
            Ok(crate::engine::Selection {
                volume: id,
                subvolume: Some(sub),
                ..
            }) => {
                let name = self.layout.subvolume_name(id, sub);
                self.layers.reveal_volume(&name);
                self.open_tree(Tree::Subvolume(id, sub));
            }
            Ok(crate::engine::Selection { volume: id, .. }) => {
                let name = self.layout.volume(id).name.clone();
                self.layers.reveal_volume(&name);
                self.open_volume(id);
            }
            Err(e) => {
                self.focus = Focus::Layers;
                self.say_error(e.to_string());
            }
        }
    }

    /// The work asked for since the last call (the runtime runs it).
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The terminal's new size.
    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = (width, height);
        let page = self.files_page();
        if let Right::Browsing(p) = &mut self.right {
            p.scroll_into_view(page);
        }
        self.refresh_viewers();
    }

    /// Compute again the page of every open viewer (after a resize or a job result).
    fn refresh_viewers(&mut self) {
        let size = self.size;
        for d in self.dialogs_mut() {
            if let Dialog::Viewer(v) = d {
                v.refresh(size);
            }
        }
    }

    /// The viewer waiting for request `req` (its open or its search).
    fn viewer_waiting(&mut self, req: u64) -> Option<&mut ViewerDialog> {
        self.dialogs_mut().find_map(|d| match d {
            Dialog::Viewer(v)
                if v.req == req || v.search.as_ref().is_some_and(|r| r.req == req) =>
            {
                Some(&mut **v)
            }
            _ => None,
        })
    }

    /// The screen's parts at the current size.
    pub fn screen(&self) -> Screen {
        Screen::new(ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1))
    }

    /// Rows of the file list.
    pub fn files_page(&self) -> usize {
        self.screen().files_rows()
    }

    /// Where keys are read now.
    pub fn context(&self) -> Context {
        if let Some(d) = &self.dialog {
            return d.context();
        }
        if self.copy.as_ref().is_some_and(|c| !c.hidden) {
            return Context::Progress;
        }
        if self.focus == Focus::Files
            && let Right::Browsing(p) = &self.right
            && (p.editing_filter || p.goto.is_some())
        {
            return Context::Edit;
        }
        Context::Main
    }

    /// A tree's name as shown: `guest`, `vg_ta/lv_root`, or
    /// `vg_ta/lv_root@before-upgrade` when a qcow2 snapshot is shown, so a
    /// snapshot is never taken for the live disk.
    pub fn volume_label(&self, tree: Tree) -> String {
        let name = &self.tree_name(tree);
        match &self.snapshot {
            Some(snap) => format!("{name}@{snap}"),
            None => name.clone(),
        }
    }

    /// A tree's name: `guest`, or the volume's name (`vg_ta/lv_root`).
    pub fn tree_name(&self, tree: Tree) -> String {
        match tree {
            Tree::Guest(root) => match self.layout.holder(root) {
                Some(h) => s::guest_tree_in(&self.layout.volume(h).name),
                None => s::GUEST_TREE.to_string(),
            },
            Tree::Volume(v) => self.layout.volume(v).name.clone(),
            Tree::Subvolume(v, id) => self.layout.subvolume_name(v, id),
        }
    }

    /// The file pane, when a directory is shown.
    pub fn pane(&self) -> Option<&FilePane> {
        match &self.right {
            Right::Browsing(p) => Some(p),
            _ => None,
        }
    }

    fn pane_mut(&mut self) -> Option<&mut FilePane> {
        match &mut self.right {
            Right::Browsing(p) => Some(p),
            _ => None,
        }
    }

    /// The open filesystem of `tree`.
    pub fn fs(&self, tree: Tree) -> Option<&Arc<dyn FsView>> {
        match self.fss.get(&tree) {
            Some(FsSlot::Open { fs, .. }) => Some(fs),
            _ => None,
        }
    }

    /// The status of the filesystem shown on the right.
    pub fn fs_status(&self) -> Option<&FsStatus> {
        let v = self.pane()?.tree;
        match self.fss.get(&v) {
            Some(FsSlot::Open { status, .. }) => Some(status),
            _ => None,
        }
    }

    fn next_req(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    fn say(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
            since: Instant::now(),
        });
    }

    fn say_error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
            since: Instant::now(),
        });
    }

    /// A message about a repair: shown first on the status line until the next action.
    fn announce(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some(Message {
            text: text.into(),
            error,
            since: Instant::now(),
        });
        self.message_first = true;
    }

    /// The clock moved on (about once a second): messages that are not
    /// errors go after [`MESSAGE_SECONDS`], and an image written under the
    /// TUI is noticed.
    pub fn tick(&mut self, now: Instant) {
        if let Some(m) = &self.message
            && !m.error
            && !self.writing
            && now.saturating_duration_since(m.since) >= Duration::from_secs(MESSAGE_SECONDS)
        {
            self.message = None;
            self.message_first = false;
        }
        self.check_images_at(now);
    }

    /// Whether an image file changed since it was last seen (written by
    /// another program: `vmrescue undo`, `relink`, a guest); if so, say so
    /// and read every open filesystem again. Returns true when the operator
    /// should look before acting (the key that led here is not acted on).
    pub fn check_images(&mut self) -> bool {
        self.check_images_at(Instant::now())
    }

    /// [`App::check_images`] at time `now`. An image that keeps changing
    /// (a running guest writes it) is read again at most every
    /// [`BUSY_RELOAD_SECONDS`], and keys are not held back for it.
    pub fn check_images_at(&mut self, now: Instant) -> bool {
        if self.writing {
            // Our own write: its result re-reads the volume.
            return false;
        }
        let stamps = image_stamps(&self.layout);
        if stamps == self.image_stamps {
            return false;
        }
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        let busy = since(self.last_reload).is_some_and(|d| d < Duration::from_secs(BUSY_SECONDS));
        if busy
            && since(self.last_reload).is_some_and(|d| d < Duration::from_secs(BUSY_RELOAD_SECONDS))
        {
            // Not now: a later check reads it (the stamps stay old).
            return false;
        }
        self.image_stamps = stamps;
        self.last_reload = Some(now);
        self.reload();
        let text = if busy {
            s::image_changing(&self.image)
        } else {
            s::image_changed(&self.image)
        };
        self.announce(text, false);
        !busy
    }

    /// Drop what was read of every filesystem (the readers' caches go with
    /// them) and of the disks' container tables (a qcow2's L1/L2 tables),
    /// and show the current directory again, read afresh.
    pub fn reload(&mut self) {
        self.effects.push(Effect::RefreshDisks);
        let open: Vec<Tree> = self.fss.keys().copied().collect();
        let mut forget: Vec<VolumeId> = Vec::new();
        for t in open {
            match self.fss.remove(&t) {
                Some(slot @ FsSlot::Opening) => {
                    self.fss.insert(t, slot);
                    continue;
                }
                // The guest's tree holds the volumes it mounts.
                Some(FsSlot::Open {
                    guest: Some(ns), ..
                }) => {
                    forget.extend(ns.mounts().iter().filter_map(|m| m.volume));
                }
                _ => {}
            }
            if let Some(v) = t.volume() {
                forget.push(v);
            }
        }
        forget.sort();
        forget.dedup();
        for v in forget {
            self.effects.push(Effect::ForgetFs(v));
        }
        let shown = match &self.right {
            Right::Browsing(p) => {
                Some((p.tree, p.path.clone(), p.current().map(|e| e.name.clone())))
            }
            Right::Failed(v, _) => Some((*v, Vec::new(), None)),
            _ => None,
        };
        if let Some((tree, path, select)) = shown {
            if !path.is_empty() {
                self.last_paths.insert(tree, path);
            }
            self.reselect = select;
            let focus = self.focus;
            self.open_tree(tree);
            self.focus = focus;
        }
    }

    /// The disks were read again with the passphrase typed for LUKS volume
    /// `volume`: show the new layout with what the volume holds beneath
    /// it, or say why not (the dialog stays for another try after a wrong
    /// passphrase, up to [`crate::layers::luks::MAX_ATTEMPTS`]).
    fn unlocked(
        &mut self,
        req: u64,
        volume: String,
        result: Result<Arc<Layout>, (String, bool)>,
        pass: crate::layers::luks::Secret,
    ) {
        // Cancelled meanwhile: the result goes (and the passphrase is wiped).
        let Some(Dialog::Passphrase(p)) = &mut self.dialog else {
            return;
        };
        if p.req != Some(req) {
            return;
        }
        let shown = escape_str(&volume);
        match result {
            Ok(layout) => {
                self.close_dialog();
                self.luks_keys.retain(|(n, _)| *n != volume);
                self.luks_keys.push((volume.clone(), pass));
                self.replace_layout(layout);
                if self.layers.reveal_volume(&volume) {
                    self.layers.expand();
                }
                self.focus = Focus::Layers;
                self.say(s::unlocked(&shown));
            }
            Err((why, wrong)) => {
                if !(wrong && p.failed(req, why.clone())) {
                    self.close_dialog();
                    self.say_error(s::still_locked(&shown, &why));
                }
            }
        }
    }

    /// Show `layout` (the same disks read again) in place of the one shown.
    /// When the volumes shown so far keep their numbers (the new ones come
    /// after them) what is open stays; else it is forgotten.
    fn replace_layout(&mut self, layout: Arc<Layout>) {
        let same = self.layout.volumes.len() <= layout.volumes.len()
            && self
                .layout
                .volumes
                .iter()
                .zip(&layout.volumes)
                .all(|(a, b)| a.name == b.name);
        if !same {
            for v in &self.layout.volumes {
                self.effects.push(Effect::ForgetFs(v.id));
            }
            self.fss.clear();
            self.last_paths.clear();
            self.marks = Marks::default();
            self.right = Right::Empty;
            self.wanted = None;
        }
        self.layout = layout;
        self.layers = LayerPane::new(&self.layout);
        self.image_stamps = image_stamps(&self.layout);
        // vmrescue decrypts a LUKS volume itself.
        let n = self.layout.volumes.len();
        self.config.volume_engines.resize(n, "userspace".into());
    }

    /// Show `d` over the window shown now (which comes back when it closes).
    fn push_dialog(&mut self, d: Dialog) {
        if let Some(cur) = self.dialog.take() {
            self.under.push(cur);
        }
        self.dialog = Some(d);
    }

    /// Close the window on top: the one under it, if any, shows again.
    fn close_dialog(&mut self) {
        self.dialog = self.under.pop();
    }

    /// Close the viewer waiting for request `req`, wherever it is in the stack.
    fn close_viewer(&mut self, req: u64) {
        let is_it = |d: &Dialog| matches!(d, Dialog::Viewer(v) if v.req == req);
        if self.dialog.as_ref().is_some_and(is_it) {
            self.close_dialog();
        } else {
            self.under.retain(|d| !is_it(d));
        }
    }

    /// A file opened with Enter holds a disk image: show the layout with
    /// its disk under the volume holding the file, and open its first
    /// filesystem on the right (or say why it could not be opened).
    fn image_opened(
        &mut self,
        req: u64,
        path: &[u8],
        result: Result<super::event::GrownLayout, String>,
    ) {
        self.close_viewer(req);
        let shown = escape(path);
        let (layout, ids) = match result {
            Ok(r) => r,
            Err(e) => {
                self.say_error(s::image_not_opened(&shown, &e));
                return;
            }
        };
        if !Arc::ptr_eq(&layout, &self.layout) {
            self.layout = layout;
            self.layers = LayerPane::new(&self.layout);
            self.image_stamps = image_stamps(&self.layout);
            // vmrescue reads a disk image stored in a filesystem itself.
            let n = self.layout.volumes.len();
            self.config.volume_engines.resize(n, "userspace".into());
        }
        // A guest inside: that guest as it boots, as for the image itself.
        if let Some(root) = ids
            .iter()
            .copied()
            .find(|&v| self.layers.path_of_guest(v).is_some())
            && let Some(path) = self.layers.path_of_guest(root)
        {
            let name = self.layout.volume(root).name.clone();
            self.layers.selected = path;
            self.say(s::image_opened(&shown, &escape_str(&name)));
            self.open_tree(Tree::Guest(root));
            return;
        }
        let first = ids
            .iter()
            .copied()
            .find(|v| self.layout.volume(*v).is_filesystem());
        match first {
            Some(v) => {
                let name = self.layout.volume(v).name.clone();
                self.layers.reveal_volume(&name);
                self.say(s::image_opened(&shown, &escape_str(&name)));
                self.open_volume(v);
            }
            None => {
                if let Some(v) = ids.first() {
                    let name = self.layout.volume(*v).name.clone();
                    self.layers.reveal_volume(&name);
                }
                self.focus = Focus::Layers;
                self.say(s::image_without_filesystem(&shown));
            }
        }
    }

    /// Close every window.
    fn close_all_dialogs(&mut self) {
        self.dialog = None;
        self.under.clear();
    }

    /// Every window, the top one first.
    fn dialogs_mut(&mut self) -> impl Iterator<Item = &mut Dialog> {
        self.dialog.iter_mut().chain(self.under.iter_mut().rev())
    }

    /// The find dialog whose search is request `req`, wherever it is in the stack.
    fn find_dialog(&mut self, req: u64) -> Option<&mut super::dialogs::FindDialog> {
        self.dialogs_mut().find_map(|d| match d {
            Dialog::Find(f) if f.search.as_ref().is_some_and(|s| s.req == req) => Some(&mut **f),
            _ => None,
        })
    }

    /// The restore dialog waiting for the answer to request `req`, wherever it is in the stack.
    fn restore_waiting(&mut self, req: u64) -> Option<&mut RestoreDialog> {
        self.dialogs_mut().find_map(|d| match d {
            Dialog::Restore(r) if r.req == req => Some(&mut **r),
            _ => None,
        })
    }

    /// Handle one event from the channel.
    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Key(k) => self.key(k),
            Event::Resize(w, h) => self.resize(w, h),
            Event::Signal(sig) => {
                self.signal = Some(sig);
                if let Some(c) = &self.copy {
                    c.cancel.store(true, Ordering::Relaxed);
                }
                self.quit = true;
            }
            Event::InputError(e) => {
                self.say_error(e);
                self.quit = true;
            }
            Event::Job(j) => self.apply(j),
            Event::Tick => self.tick(Instant::now()),
        }
    }

    /// Handle a key: look it up in the keymap for the current context.
    pub fn key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        // A key is a good moment to look: the operator is about to act on
        // what is shown. If it changed, the key is not acted on: what it
        // was meant for is being read again.
        if self.check_images() {
            return;
        }
        let ctx = self.context();
        let action = Key::from_event(&k).and_then(|key| self.keymap.lookup(ctx, key));
        match action {
            Some(a) => self.update(&a),
            None if ctx == Context::Edit => {
                if let KeyCode::Char(c) = k.code
                    && !k.modifiers.contains(KeyModifiers::CONTROL)
                    && !k.modifiers.contains(KeyModifiers::ALT)
                {
                    self.update(&Action::Insert(c));
                }
            }
            None => {}
        }
    }

    /// Do what `action` asks, in the current context.
    pub fn update(&mut self, action: &Action) {
        // A message answers the last action: the next one clears it.
        self.message_first = false;
        self.message = None;
        if let Some(outcome) = self.update_top(action) {
            self.follow(outcome);
            return;
        }
        match self.context() {
            Context::Main => self.update_main(action),
            Context::Edit => self.update_edit(action),
            Context::Confirm => self.update_confirm(action),
            Context::Dialog => self.update_dialog(action),
            // The restore dialog and the doctor view take their own keys.
            Context::Repair | Context::Viewer => {}
            Context::Progress => self.update_progress(action),
        }
    }

    /// Give `action` to the window on top, when it is a dialog with its own
    /// `update` (the copy and restore dialogs, the doctor view).
    fn update_top(&mut self, action: &Action) -> Option<Outcome> {
        let page = self.screen().dialog_rows();
        let size = self.size;
        let find_rows = super::views::find::result_rows(&self.screen());
        let mut ctx = Ctx {
            undo_dir: &self.config.undo_dir,
            pve_root: &self.config.pve_root,
            page,
            writing: self.writing,
            last_req: &mut self.next_gen,
            effects: &mut self.effects,
        };
        match self.dialog.as_mut()? {
            Dialog::CopySetup(c) => Some(c.update(action, &mut ctx)),
            Dialog::Restore(r) => Some(r.update(action, &mut ctx)),
            Dialog::Doctor(d) => Some(d.update(action, &mut ctx)),
            Dialog::Passphrase(p) => Some(p.update(action, &mut ctx)),
            Dialog::Viewer(v) => {
                let outcome = v.update(action, &mut ctx);
                v.refresh(size);
                Some(outcome)
            }
            Dialog::Find(f) => {
                let outcome = f.update(action, &mut ctx);
                f.scroll_into_view(find_rows);
                Some(outcome)
            }
            _ => None,
        }
    }

    /// Do what the window on top asked for.
    fn follow(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Stay => {}
            Outcome::Close => self.close_dialog(),
            Outcome::Help => self.push_dialog(Dialog::Help { scroll: 0 }),
            Outcome::AskQuit => self.ask_quit(),
            Outcome::CloseAllAndQuit => {
                self.close_all_dialogs();
                self.ask_quit();
            }
            Outcome::Push(d) => self.push_dialog(d),
            Outcome::Say(text) => self.say(text),
            Outcome::SayError(text) => self.say_error(text),
            Outcome::Announce(text, error) => self.announce(text, error),
            Outcome::CopyStarted(job) => {
                self.copy = Some(job);
                self.close_dialog();
            }
            Outcome::JumpTo { tree, dir, name } => self.jump_to(tree, dir, name),
            Outcome::View { tree, path } => self.view_path(tree, path),
            Outcome::RestoreLink {
                tree,
                link,
                target,
                problems,
            } => {
                // The restore dialog takes the doctor's place.
                self.dialog = None;
                if let Some((dir, name)) = parent_of(&link)
                    && self.pane().is_some_and(|p| p.tree == tree)
                {
                    self.focus = Focus::Files;
                    self.list(dir, Some(name));
                }
                self.open_restore_for(tree, link, target, problems);
            }
        }
    }

    fn update_main(&mut self, action: &Action) {
        match action {
            Action::MoveUp => self.move_by(-1),
            Action::MoveDown => self.move_by(1),
            Action::PageUp => self.move_page(false),
            Action::PageDown => self.move_page(true),
            Action::Home => self.move_to(false),
            Action::End => self.move_to(true),
            Action::Open => match self.focus {
                Focus::Layers => self.open_layer(),
                Focus::Files => self.open_entry(),
            },
            Action::Back => match self.focus {
                Focus::Layers => self.layers.collapse_or_parent(),
                Focus::Files => self.go_up(),
            },
            Action::SwitchPane => self.switch_pane(),
            Action::MarkToggle => self.mark_toggle(),
            Action::MarkAll => self.mark_all(),
            Action::ClearMarks => {
                let n = self.marks.clear();
                self.say(s::cleared_marks(n));
            }
            Action::CopyMarked => self.open_copy(),
            Action::RestoreSymlink => self.open_restore(),
            Action::ShowDetails => self.show_details(),
            Action::View => self.open_viewer(),
            Action::Doctor => self.open_doctor(),
            Action::Find => self.open_find(),
            Action::ToggleHelp => self.push_dialog(Dialog::Help { scroll: 0 }),
            Action::FilterStart => self.start_filter(),
            Action::GoTo => self.start_goto(),
            Action::Quit => self.ask_quit(),
            Action::Redraw => {
                // Redraw, and read what is shown again from the image.
                self.redraw = true;
                self.image_stamps = image_stamps(&self.layout);
                self.reload();
                self.say(s::RELOADED);
            }
            Action::Cancel => {
                let page = self.files_page();
                if let Some(p) = self.pane_mut()
                    && !p.filter.text.is_empty()
                {
                    p.filter = TextField::default();
                    p.refilter(None);
                    p.scroll_into_view(page);
                } else {
                    self.message = None;
                }
            }
            _ => {}
        }
    }

    fn ask_quit(&mut self) {
        if self.copy.is_some() {
            self.push_dialog(Dialog::Confirm(Confirm {
                kind: ConfirmKind::QuitDuringCopy,
                title: s::QUIT_TITLE.into(),
                lines: vec![s::QUIT_DURING_COPY.into()],
            }));
        } else {
            self.quit = true;
        }
    }

    /// Keys in the filter line or the go-to prompt (the dialogs with a text
    /// field take their own).
    fn update_edit(&mut self, action: &Action) {
        let page = self.files_page();
        let Some(p) = self.pane_mut() else { return };
        if let Some(field) = &mut p.goto {
            if field.edit(action) {
                return;
            }
            match action {
                Action::Confirm => {
                    let typed = field.text.clone();
                    p.goto = None;
                    self.go_to(&typed);
                }
                Action::Cancel => p.goto = None,
                Action::Quit => self.ask_quit(),
                _ => {}
            }
            return;
        }
        let before = p.filter.text.clone();
        if p.filter.edit(action) {
            if p.filter.text != before {
                p.refilter(None);
                p.scroll_into_view(page);
            }
            return;
        }
        match action {
            Action::MoveUp => p.select_row(p.selected.saturating_sub(1), page),
            Action::MoveDown => p.select_row(p.selected.saturating_add(1), page),
            Action::Confirm => p.editing_filter = false,
            Action::Cancel => {
                p.editing_filter = false;
                p.filter = TextField::default();
                p.refilter(None);
                p.scroll_into_view(page);
            }
            Action::Quit => self.ask_quit(),
            _ => {}
        }
    }

    fn update_confirm(&mut self, action: &Action) {
        let Some(Dialog::Confirm(c)) = &self.dialog else {
            return;
        };
        let kind = c.kind;
        match action {
            Action::Confirm => {
                // The question goes; for a repair, the restore dialog under
                // it is taken by the write.
                self.close_dialog();
                match kind {
                    ConfirmKind::CancelCopy => self.cancel_copy(),
                    ConfirmKind::QuitDuringCopy => {
                        self.quit_after_copy = true;
                        self.cancel_copy();
                    }
                    ConfirmKind::ApplyRelink => self.start_relink(),
                }
            }
            Action::Cancel => self.close_dialog(),
            Action::Quit => {
                // Ctrl-C on a question about quitting means yes.
                if kind == ConfirmKind::QuitDuringCopy {
                    self.close_all_dialogs();
                    self.quit_after_copy = true;
                    self.cancel_copy();
                } else {
                    self.ask_quit();
                }
            }
            _ => {}
        }
    }

    fn update_dialog(&mut self, action: &Action) {
        let page = self.screen().dialog_rows();
        match action {
            Action::Cancel => self.close_dialog(),
            Action::ToggleHelp => {
                if matches!(self.dialog, Some(Dialog::Help { .. })) {
                    self.close_dialog();
                } else {
                    self.push_dialog(Dialog::Help { scroll: 0 });
                }
            }
            Action::Quit => {
                self.close_all_dialogs();
                self.ask_quit();
            }
            Action::MoveUp | Action::MoveDown | Action::PageUp | Action::PageDown => {
                if let Some(scroll) = self.dialog.as_mut().and_then(Dialog::scroll_mut) {
                    *scroll = match action {
                        Action::MoveUp => scroll.saturating_sub(1),
                        Action::MoveDown => scroll.saturating_add(1),
                        Action::PageUp => scroll.saturating_sub(page),
                        _ => scroll.saturating_add(page),
                    };
                }
            }
            _ => {}
        }
    }

    fn update_progress(&mut self, action: &Action) {
        match action {
            Action::Cancel if self.copy.as_ref().is_some_and(|c| !c.cancelling) => {
                self.push_dialog(Dialog::Confirm(Confirm {
                    kind: ConfirmKind::CancelCopy,
                    title: s::CANCEL_COPY_TITLE.into(),
                    lines: vec![s::CANCEL_COPY_QUESTION.into()],
                }));
            }
            Action::Background => {
                if let Some(c) = &mut self.copy {
                    c.hidden = true;
                }
                self.say(s::COPY_IN_BACKGROUND);
            }
            Action::Quit => self.ask_quit(),
            _ => {}
        }
    }

    // ----- moving -----

    fn move_by(&mut self, delta: isize) {
        match self.focus {
            Focus::Layers => self.layers.move_by(delta),
            Focus::Files => {
                let page = self.files_page();
                if let Some(p) = self.pane_mut() {
                    let row = if delta < 0 {
                        p.selected.saturating_sub(delta.unsigned_abs())
                    } else {
                        p.selected.saturating_add(delta as usize)
                    };
                    p.select_row(row, page);
                }
            }
        }
    }

    fn move_page(&mut self, down: bool) {
        let (tree_page, files_page) = {
            let sc = self.screen();
            (sc.tree_rows().max(1), sc.files_rows().max(1))
        };
        match self.focus {
            Focus::Layers => {
                let d = tree_page as isize;
                self.layers.move_by(if down { d } else { -d });
            }
            Focus::Files => self.move_by(if down {
                files_page as isize
            } else {
                -(files_page as isize)
            }),
        }
    }

    fn move_to(&mut self, end: bool) {
        match self.focus {
            Focus::Layers => self.layers.move_to(end),
            Focus::Files => {
                let page = self.files_page();
                if let Some(p) = self.pane_mut() {
                    let row = if end { usize::MAX } else { 0 };
                    p.select_row(row, page);
                }
            }
        }
    }

    fn switch_pane(&mut self) {
        self.focus = match self.focus {
            Focus::Layers if matches!(self.right, Right::Empty) => {
                self.say(s::OPEN_A_FILESYSTEM_FIRST);
                Focus::Layers
            }
            Focus::Layers => Focus::Files,
            Focus::Files => Focus::Layers,
        };
    }

    // ----- layers -----

    fn open_layer(&mut self) {
        let Some(node) = self.layers.current().cloned() else {
            return;
        };
        if let Some(root) = self.layers.guest_at(&self.layers.selected) {
            self.open_tree(Tree::Guest(root));
            return;
        }
        // A locked LUKS volume: its passphrase.
        if let Some(luks) = node.luks.as_ref().filter(|l| l.unlocked_by.is_none())
            && let Some(id) = volume_of(&self.layout, &node)
        {
            let name = self.layout.volume(id).name.clone();
            let describe = escape_str(&luks.describe());
            let known = self.luks_keys.clone();
            self.push_dialog(Dialog::Passphrase(Box::new(
                super::dialogs::PassphraseDialog::new(&name, describe, known),
            )));
            return;
        }
        if node.browsable
            && node.subvolume.is_some()
            && let Some((id, Some(sub))) = node
                .volume
                .as_deref()
                .and_then(|n| self.layout.find_volume_or_subvolume(n).ok())
        {
            self.open_tree(Tree::Subvolume(id, sub));
            return;
        }
        if node.browsable
            && let Some(id) = volume_of(&self.layout, &node)
        {
            self.open_tree(Tree::Volume(id));
            return;
        }
        if !node.children.is_empty() {
            if !self.layers.expand() {
                self.layers.move_by(1);
            }
            return;
        }
        let why = node
            .problems
            .first()
            .map(|p| super::format::safe(&p.to_string()))
            .unwrap_or_else(|| {
                s::not_browsable(
                    &escape_str(&node.name),
                    node.fstype.as_deref().map(escape_str).as_deref(),
                )
            });
        self.say_error(why);
    }

    /// Show volume `id` on the right, opening its filesystem first if needed.
    pub fn open_volume(&mut self, id: VolumeId) {
        self.open_tree(Tree::Volume(id));
    }

    /// Show `tree` on the right, opening it first if needed.
    pub fn open_tree(&mut self, tree: Tree) {
        self.wanted = Some(tree);
        match self.fss.get(&tree) {
            None => {
                self.fss.insert(tree, FsSlot::Opening);
                self.effects.push(Effect::OpenFs(tree));
                self.right = Right::Opening(tree);
                self.focus = Focus::Files;
            }
            Some(FsSlot::Opening) => self.right = Right::Opening(tree),
            Some(FsSlot::Failed(e)) => {
                let e = e.clone();
                self.right = Right::Failed(tree, e.clone());
                self.say_error(e);
            }
            Some(FsSlot::Open { .. }) => self.show_tree(tree),
        }
    }

    fn show_tree(&mut self, tree: Tree) {
        let path = self
            .last_paths
            .get(&tree)
            .cloned()
            .unwrap_or_else(|| b"/".to_vec());
        self.right = Right::Browsing(Box::new(FilePane::new(tree, path.clone())));
        self.focus = Focus::Files;
        let select = self.reselect.take();
        self.list(path, select);
    }

    fn list(&mut self, path: Vec<u8>, select: Option<Vec<u8>>) {
        let req = self.next_req();
        let Some(tree) = self.pane().map(|p| p.tree) else {
            return;
        };
        let Some(fs) = self.fs(tree).cloned() else {
            return;
        };
        if let Some(p) = self.pane_mut() {
            if p.path != path {
                // Another directory: its filter starts empty. A reload of the
                // same one keeps what the operator typed.
                p.filter = TextField::default();
                p.editing_filter = false;
            }
            p.loading = Some(Loading {
                req,
                path: path.clone(),
                count: 0,
                select,
            });
        }
        self.effects.push(Effect::ListDir {
            req,
            tree,
            fs,
            path,
        });
    }

    // ----- files -----

    fn open_entry(&mut self) {
        let Some(p) = self.pane() else { return };
        let Some(e) = p.current() else { return };
        let path = join(&p.path, &e.name);
        let follow = e.opens_as_dir()
            || (e.file_type() == FileType::Symlink
                && matches!(e.target_type, None | Some(FileType::Unknown)));
        let file = e.file_type() == FileType::Regular
            || (e.file_type() == FileType::Symlink && e.target_type == Some(FileType::Regular));
        if follow {
            self.list(path, None);
        } else if file {
            // A disk image opens as a disk; any other file in the viewer.
            let tree = p.tree;
            self.open_path(tree, path, true);
        } else {
            self.show_details();
        }
    }

    /// Open the viewer on the selected file (a symlink is followed inside the guest).
    fn open_viewer(&mut self) {
        let selected = (self.focus == Focus::Files)
            .then(|| self.pane())
            .flatten()
            .and_then(|p| p.current().map(|e| (p, e)));
        let Some((p, e)) = selected else {
            self.say(s::VIEW_NEEDS_FILE);
            return;
        };
        let path = join(&p.path, &e.name);
        if e.opens_as_dir() {
            self.say(s::VIEW_NEEDS_FILE);
            return;
        }
        self.view_path(p.tree, path);
    }

    /// Open the viewer on `path` of `tree`, over the window on top.
    fn view_path(&mut self, tree: Tree, path: Vec<u8>) {
        self.open_path(tree, path, false);
    }

    /// Open `path` of `tree` in the viewer, over the window on top; with
    /// `image`, a file that holds a disk image opens as a disk instead
    /// ([`JobResult::ImageOpened`]).
    fn open_path(&mut self, tree: Tree, path: Vec<u8>, image: bool) {
        let Some(fs) = self.fs(tree).cloned() else {
            self.say_error(s::OPEN_A_FILESYSTEM_FIRST);
            return;
        };
        let req = self.next_req();
        let cancel = Arc::new(AtomicBool::new(false));
        let mut v = ViewerDialog::new(req, escape(&path), Arc::clone(&cancel));
        v.refresh(self.size);
        self.push_dialog(Dialog::Viewer(Box::new(v)));
        if image {
            let guest = match self.fss.get(&tree) {
                Some(FsSlot::Open { guest, .. }) => guest.clone(),
                _ => None,
            };
            self.effects.push(Effect::OpenFile {
                req,
                tree,
                fs,
                guest,
                path,
                cancel,
            });
            return;
        }
        self.effects.push(Effect::OpenViewer {
            req,
            fs,
            path,
            cancel,
        });
    }

    fn go_up(&mut self) {
        let Some(p) = self.pane() else { return };
        match parent_of(&p.path) {
            Some((dir, name)) => self.list(dir, Some(name)),
            None => self.focus = Focus::Layers,
        }
    }

    fn mark_toggle(&mut self) {
        if self.focus != Focus::Files {
            self.say(s::MARKS_ARE_FOR_FILES);
            return;
        }
        let Some(p) = self.pane() else { return };
        let Some(e) = p.current() else { return };
        let path = join(&p.path, &e.name);
        let mark = Mark {
            file_type: e.file_type(),
            size: if e.file_type() == FileType::Regular {
                e.size()
            } else {
                0
            },
        };
        let tree = p.tree;
        self.marks.toggle(tree, path, mark);
        self.move_by(1);
    }

    fn mark_all(&mut self) {
        if self.focus != Focus::Files {
            self.say(s::MARKS_ARE_FOR_FILES);
            return;
        }
        let Some(p) = self.pane() else { return };
        let tree = p.tree;
        let items: Vec<(Vec<u8>, Mark)> = p
            .visible
            .iter()
            .filter_map(|&i| p.entries.get(i))
            .map(|e| {
                (
                    join(&p.path, &e.name),
                    Mark {
                        file_type: e.file_type(),
                        size: if e.file_type() == FileType::Regular {
                            e.size()
                        } else {
                            0
                        },
                    },
                )
            })
            .collect();
        let n = items.len();
        for (path, m) in items {
            self.marks.insert(tree, path, m);
        }
        self.say(s::marked_all(n));
    }

    fn start_filter(&mut self) {
        if matches!(self.right, Right::Browsing(_)) {
            self.focus = Focus::Files;
        }
        if let Some(p) = self.pane_mut() {
            p.editing_filter = true;
            p.filter.cursor = p.filter.text.chars().count();
        }
    }

    fn start_goto(&mut self) {
        if matches!(self.right, Right::Browsing(_)) {
            self.focus = Focus::Files;
        }
        match self.pane_mut() {
            Some(p) => {
                p.editing_filter = false;
                p.goto = Some(TextField::default());
            }
            None => self.say(s::GOTO_NEEDS_FS),
        }
    }

    /// Show the guest path `typed` (from the go-to prompt) in the tree
    /// shown: its folder, or the folder holding it with the cursor on it.
    /// Read as every command reads a guest path
    /// ([`crate::guest::operator_path`]): `C:\Users` on a Windows guest; a
    /// path without a leading `/` from the folder shown.
    fn go_to(&mut self, typed: &str) {
        let Some((tree, here)) = self.pane().map(|p| (p.tree, p.path.clone())) else {
            return;
        };
        let Some(fs) = self.fs(tree).cloned() else {
            self.say(s::GOTO_NEEDS_FS);
            return;
        };
        let typed = typed.trim();
        if typed.is_empty() {
            return;
        }
        let ns = self.namespace(tree);
        // A Windows guest's volume on its own: its drive letter (`C:\`).
        let drive = match tree {
            Tree::Volume(v) => self.layout.volume(v).guest.mountpoint.clone(),
            _ => None,
        }
        .filter(|m| !m.starts_with('/'));
        let mut path =
            crate::guest::operator_path(&*fs, ns.as_deref(), drive.as_deref(), typed.as_bytes());
        if !path.starts_with(b"/") {
            path = join(&here, &path);
        }
        // As `cd` and `ls` would: a link to a folder is entered, any other
        // link (a broken one too: the seed story's libc.so.6) is shown
        // itself, in its own folder.
        let kind = |follow: bool| {
            crate::fs::path::resolve(&*fs, &path, follow)
                .and_then(|r| fs.metadata(r.node).map(|m| (r.path, m.file_type)))
        };
        let found = match kind(false) {
            Ok((link, FileType::Symlink)) => match kind(true) {
                Ok((dir, FileType::Directory)) => Ok((dir, FileType::Directory)),
                _ => Ok((link, FileType::Symlink)),
            },
            other => other,
        };
        match found {
            Ok((dir, FileType::Directory)) => self.jump_to(tree, dir, None),
            Ok((file, _)) => {
                let (dir, name) = crate::fs::path::split_last(&file);
                self.jump_to(tree, dir, name);
            }
            // As typed (the operator's own text, backslashes and all).
            Err(e) => self.say_error(s::goto_failed(&super::format::safe(typed), &e.to_string())),
        }
    }

    fn show_details(&mut self) {
        match self.focus {
            Focus::Layers => {
                if let Some(n) = self.layers.current() {
                    let lines = super::layers::node_lines(n);
                    self.dialog = Some(Dialog::Message {
                        title: escape_str(&n.name),
                        lines,
                        scroll: 0,
                    });
                }
            }
            Focus::Files => {
                let req = self.next_req();
                let Some(p) = self.pane() else { return };
                let Some(e) = p.current() else { return };
                let Some(fs) = self.fs(p.tree).cloned() else {
                    return;
                };
                let title = super::details::shown_path(&p.path, e);
                let effect = Effect::LoadDetails {
                    req,
                    fs,
                    dir: p.path.clone(),
                    entry: Box::new(e.clone()),
                };
                self.effects.push(effect);
                self.dialog = Some(Dialog::Details {
                    req,
                    title,
                    details: None,
                    scroll: 0,
                });
            }
        }
    }

    fn open_restore(&mut self) {
        let entry = (self.focus == Focus::Files)
            .then(|| self.pane())
            .flatten()
            .and_then(|p| p.current().map(|e| (p, e)));
        match entry {
            Some((p, e)) if e.file_type() == FileType::Symlink => {
                let problems = e
                    .suspect
                    .as_deref()
                    .map(|r| r.split("; ").map(str::to_string).collect())
                    .unwrap_or_default();
                let (tree, link) = (p.tree, join(&p.path, &e.name));
                let target = e.target_shown.clone().unwrap_or_default();
                self.open_restore_for(tree, link, target, problems);
            }
            _ => self.say(s::RESTORE_NEEDS_SYMLINK),
        }
    }

    /// Open the restore dialog for the link at `link` in `tree` and start
    /// looking for its candidates.
    fn open_restore_for(
        &mut self,
        tree: Tree,
        link: Vec<u8>,
        target: String,
        problems: Vec<String>,
    ) {
        let Some(fs) = self.fs(tree).cloned() else {
            self.say_error(s::OPEN_A_FILESYSTEM_FIRST);
            return;
        };
        // The volume that holds the link, and the link's path on it.
        let (volume, subvolume, inner) = match self.locate(tree, &link) {
            Ok(found) => found,
            Err(e) => {
                self.say_error(s::relink_failed(&super::format::safe(&e)));
                return;
            }
        };
        let req = self.next_req();
        let mut dialog = RestoreDialog::new(
            volume,
            inner.clone(),
            &link,
            target,
            problems,
            req,
            &self.config.undo_dir,
        );
        dialog.subvolume = subvolume;
        // In the guest's tree, every plan (a candidate chosen, a target
        // typed) judges its target in the whole guest.
        dialog.guest = tree.is_guest().then(|| GuestView {
            fs: Arc::clone(&fs),
            link: link.clone(),
        });
        self.dialog = Some(Dialog::Restore(Box::new(dialog)));
        let setup = relink_setup(&self.config.undo_dir, &self.config.pve_root, false);
        self.effects.push(Effect::AnalyzeLink {
            req,
            volume,
            subvolume,
            fs,
            link,
            // The path on the volume differs from the tree's in the guest's
            // tree and in a subvolume's.
            inner: (!matches!(tree, Tree::Volume(_))).then_some(inner),
            setup,
        });
    }

    /// The volume that holds guest path `path` of `tree`, the btrfs
    /// subvolume the path on it starts in when that is not the volume's
    /// default one, and the path (the same path, for a volume's or a
    /// subvolume's own tree).
    fn locate(&self, tree: Tree, path: &[u8]) -> Result<(VolumeId, Option<u64>, Vec<u8>), String> {
        match tree {
            Tree::Volume(v) => Ok((v, None, path.to_vec())),
            // Paths inside the volume start at its default subvolume; one
            // outside it is written through a mount of that subvolume.
            Tree::Subvolume(v, id) => {
                let subs = self
                    .layout
                    .subvolumes
                    .iter()
                    .find(|(x, _)| *x == v)
                    .map(|(_, s)| s.as_slice())
                    .unwrap_or_default();
                Ok(match crate::fs::rooted::path_from_default(subs, id) {
                    Ok(prefix) => (
                        v,
                        None,
                        crate::fs::path::components(path)
                            .fold(prefix, |acc, c| crate::fs::path::join(&acc, c)),
                    ),
                    Err(_) => (v, Some(id), path.to_vec()),
                })
            }
            Tree::Guest(_) => match self.namespace(tree) {
                Some(ns) => ns
                    .locate_in_subvolume(path)
                    .map(|(v, outside, inner)| (v, outside.map(|o| o.id), inner))
                    .map_err(|e| e.to_string()),
                None => Err(s::OPEN_A_FILESYSTEM_FIRST.to_string()),
            },
        }
    }

    /// In the guest's tree: the mountpoints on or below `paths` whose volume
    /// cannot be read, with the reason.
    fn unavailable(&self, tree: Tree, paths: &[Vec<u8>]) -> Vec<(Vec<u8>, String)> {
        let Some(ns) = self.namespace(tree) else {
            return Vec::new();
        };
        let mut out: Vec<(Vec<u8>, String)> = Vec::new();
        for p in paths {
            for m in ns.unavailable(p, true) {
                let why = m
                    .state
                    .reason()
                    .unwrap_or_else(|| m.state.name().to_string());
                if !out.iter().any(|(at, _)| *at == m.mountpoint) {
                    out.push((m.mountpoint.clone(), why));
                }
            }
        }
        out
    }

    /// A guest's mount table, once its tree is open (none for a volume's tree).
    pub fn namespace(&self, tree: Tree) -> Option<Arc<Namespace>> {
        if !tree.is_guest() {
            return None;
        }
        match self.fss.get(&tree) {
            Some(FsSlot::Open { guest, .. }) => guest.clone(),
            _ => None,
        }
    }

    fn open_find(&mut self) {
        let Some(tree) = self.pane().map(|p| p.tree) else {
            self.say(s::FIND_NEEDS_FS);
            return;
        };
        let Some(fs) = self.fs(tree).cloned() else {
            self.say(s::FIND_NEEDS_FS);
            return;
        };
        let name = self.volume_label(tree);
        self.push_dialog(Dialog::Find(Box::new(super::dialogs::FindDialog::new(
            tree, name, fs,
        ))));
    }

    /// Show `name` in folder `dir` of `tree` in the right pane; the find
    /// dialog (and any window) closes.
    fn jump_to(&mut self, tree: Tree, dir: Vec<u8>, name: Option<Vec<u8>>) {
        self.close_all_dialogs();
        self.focus = Focus::Files;
        if self.pane().is_some_and(|p| p.tree == tree) {
            self.list(dir, name);
        } else {
            self.last_paths.insert(tree, dir);
            self.reselect = name;
            self.open_tree(tree);
        }
    }

    fn open_doctor(&mut self) {
        let Some(p) = self.pane() else {
            self.say(s::DOCTOR_NEEDS_FS);
            return;
        };
        let tree = p.tree;
        let Some(fs) = self.fs(tree).cloned() else {
            self.say(s::DOCTOR_NEEDS_FS);
            return;
        };
        let req = self.next_req();
        self.dialog = Some(Dialog::Doctor(Box::new(DoctorView {
            tree,
            volume_name: self.volume_label(tree),
            req,
            report: None,
            selected: 0,
            scroll: 0,
        })));
        let guest = self.namespace(tree);
        self.effects.push(Effect::RunDoctor { req, fs, guest });
    }

    /// The question was answered yes: write the plan on a job thread.
    fn start_relink(&mut self) {
        let Some(Dialog::Restore(r)) = self.dialog.take() else {
            return;
        };
        self.close_dialog();
        let Some(plan) = r.plan else { return };
        self.writing = true;
        self.announce(s::writing(&escape(&plan.link)), false);
        let setup = relink_setup(&self.config.undo_dir, &self.config.pve_root, r.force);
        self.effects.push(Effect::ApplyRelink {
            volume: r.volume,
            plan,
            setup,
        });
    }

    /// The analysis arrived: fill the dialog.
    fn link_analyzed(
        &mut self,
        req: u64,
        analysis: Result<Box<Analysis>, String>,
        plan: Option<Result<Box<Plan>, String>>,
    ) {
        if let Some(r) = self.restore_waiting(req) {
            r.analyzed(analysis, plan);
        }
    }

    /// A repair was written (or not): say so and show the volume again.
    fn relinked(
        &mut self,
        volume: VolumeId,
        link: Vec<u8>,
        new_target: Vec<u8>,
        result: Result<Vec<std::path::PathBuf>, String>,
    ) {
        self.writing = false;
        // Our own write changed the image: not news from elsewhere.
        self.image_stamps = image_stamps(&self.layout);
        match result {
            Ok(undo) => {
                self.written += 1;
                let files: Vec<String> = undo.iter().map(|p| home_short(p)).collect();
                self.announce(
                    s::relinked(&escape(&link), &escape(&new_target), &files.join(" ")),
                    false,
                );
                // The open reader caches metadata: open the volume afresh,
                // and the guests' trees, which may hold it.
                let changed = |t: &Tree| t.volume() == Some(volume) || t.is_guest();
                self.fss.retain(|t, _| !changed(t));
                self.effects.push(Effect::ForgetFs(volume));
                if let Some(p) = self.pane()
                    && changed(&p.tree)
                {
                    let (tree, path) = (p.tree, p.path.clone());
                    self.reselect = parent_of(&link).map(|(_, name)| name);
                    self.last_paths.insert(tree, path);
                    self.open_tree(tree);
                }
            }
            Err(e) => self.announce(s::relink_failed(&super::format::safe(&e)), true),
        }
    }

    // ----- copy -----

    /// The default destination for a copy from `volumes`.
    pub fn default_dest(&self, trees: &[Tree]) -> String {
        // A snapshot's files are not the live disk's: their own folder.
        let image = match &self.snapshot {
            Some(snap) => format!(
                "{}@{}",
                volume_folder(&self.image_stem),
                volume_folder(snap)
            ),
            None => volume_folder(&self.image_stem),
        };
        let base = format!(
            "{}/{}/",
            self.config.rescue_dir.trim_end_matches('/'),
            image
        );
        match trees {
            // One volume on its own: a folder of its own. The guest's tree
            // (its files where the guest has them), or several trees (a
            // folder each, made by the copy): the image's folder.
            [Tree::Volume(v)] => format!("{base}{}/", volume_folder(&self.layout.volume(*v).name)),
            [t @ Tree::Subvolume(..)] => format!("{base}{}/", volume_folder(&self.tree_name(*t))),
            _ => base,
        }
    }

    fn open_copy(&mut self) {
        if let Some(c) = &mut self.copy {
            c.hidden = false;
            self.say(s::ALREADY_COPYING);
            return;
        }
        let mut sources = Vec::new();
        if !self.marks.is_empty() {
            for t in self.marks.trees() {
                let Some(fs) = self.fs(t).cloned() else {
                    continue;
                };
                sources.push(CopySource {
                    tree: t,
                    volume_name: self.tree_name(t),
                    fs,
                    unavailable: self.unavailable(t, &self.marks.paths(t)),
                    paths: self.marks.paths(t),
                });
            }
        } else if self.focus == Focus::Files
            && let Some(p) = self.pane()
            && let Some(e) = p.current()
            && let Some(fs) = self.fs(p.tree).cloned()
        {
            sources.push(CopySource {
                tree: p.tree,
                volume_name: self.tree_name(p.tree),
                fs,
                unavailable: self.unavailable(p.tree, &[join(&p.path, &e.name)]),
                paths: vec![join(&p.path, &e.name)],
            });
        }
        if sources.is_empty() {
            self.say(s::NOTHING_TO_COPY);
            return;
        }
        let trees: Vec<Tree> = sources.iter().map(|s| s.tree).collect();
        let count: usize = sources.iter().map(|s| s.paths.len()).sum();
        let first = sources
            .first()
            .and_then(|s| s.paths.first())
            .map(|p| escape(p))
            .unwrap_or_default();
        let req = self.next_req();
        let cancel = Arc::new(AtomicBool::new(false));
        let dest = self.default_dest(&trees);
        let volumes: Vec<String> = sources.iter().map(|s| self.volume_label(s.tree)).collect();
        let setup = CopySetup::new(&dest, req, count, volumes, first, Arc::clone(&cancel));
        self.dialog = Some(Dialog::CopySetup(setup));
        self.effects.push(Effect::PlanCopy {
            req,
            request: CopyRequest { sources },
            cancel,
        });
    }

    fn cancel_copy(&mut self) {
        if let Some(c) = &mut self.copy {
            c.cancel.store(true, Ordering::Relaxed);
            c.cancelling = true;
            self.say(s::CANCELLING);
        } else if self.quit_after_copy {
            self.quit = true;
        }
    }

    // ----- job results -----

    /// Take a job's result. After each one but progress reports, what the
    /// open filesystems have found since they were opened (a bad checksum
    /// in a directory read later) reaches the header ([`App::fs_status`]).
    pub fn apply(&mut self, result: JobResult) {
        let progress = matches!(
            result,
            JobResult::ListProgress { .. } | JobResult::CopyProgress(_)
        );
        self.apply_result(result);
        if !progress {
            self.refresh_fs_status();
        }
    }

    /// Ask every open filesystem for its status again (a lock and a copy
    /// of at most [`crate::fs::problems::MAX_PROBLEMS`] problems each).
    fn refresh_fs_status(&mut self) {
        for slot in self.fss.values_mut() {
            if let FsSlot::Open { fs, status, .. } = slot
                && fs.problem_count() != status.problems.len()
            {
                *status = fs.status();
            }
        }
    }

    fn apply_result(&mut self, result: JobResult) {
        match result {
            JobResult::FsOpened { tree, result } => {
                let slot = match result {
                    Ok(opened) => {
                        let status = opened.fs.status();
                        FsSlot::Open {
                            fs: opened.fs,
                            status,
                            guest: opened.guest,
                        }
                    }
                    Err(e) => FsSlot::Failed(e),
                };
                self.fss.insert(tree, slot);
                if self.wanted == Some(tree) {
                    self.open_tree(tree);
                }
            }
            JobResult::ListProgress { req, count } => {
                if let Some(p) = self.pane_mut()
                    && let Some(l) = &mut p.loading
                    && l.req == req
                {
                    l.count = count;
                }
            }
            JobResult::Listed { req, result } => self.listed(req, result),
            JobResult::Details { req, details } => {
                if let Some(d) = self.dialogs_mut().find_map(|d| match d {
                    Dialog::Details {
                        req: g, details: d, ..
                    } if *g == req => Some(d),
                    _ => None,
                }) {
                    *d = Some(details);
                }
            }
            JobResult::CopyPlanned { req, result } => {
                if let Some(c) = self.dialogs_mut().find_map(|d| match d {
                    Dialog::CopySetup(c) if c.req == req => Some(c),
                    _ => None,
                }) {
                    c.planned(result);
                }
            }
            JobResult::CopyProgress(p) => {
                if let Some(c) = &mut self.copy {
                    c.progress = p;
                }
            }
            JobResult::LinkAnalyzed {
                req,
                analysis,
                plan,
            } => self.link_analyzed(req, analysis, plan),
            JobResult::RelinkPlanned { req, result } => {
                if let Some(r) = self.restore_waiting(req) {
                    r.planned(result);
                }
            }
            JobResult::Relinked {
                volume,
                link,
                new_target,
                result,
            } => self.relinked(volume, link, new_target, result),
            JobResult::ImageOpened { req, path, result } => self.image_opened(req, &path, result),
            JobResult::ViewerOpened { req, result } => {
                if let Some(v) = self.viewer_waiting(req) {
                    v.opened(result);
                }
                self.refresh_viewers();
            }
            JobResult::ViewerGrew { req } => {
                if let Some(v) = self.viewer_waiting(req) {
                    v.grew();
                }
                self.refresh_viewers();
            }
            JobResult::ViewerSearchProgress { req, done, total } => {
                if let Some(v) = self.viewer_waiting(req) {
                    v.search_progress(req, done, total);
                }
            }
            JobResult::ViewerSearchDone { req, outcome } => {
                if let Some(v) = self.viewer_waiting(req) {
                    v.search_done(req, outcome);
                }
                self.refresh_viewers();
            }
            JobResult::FindFound { req, hits, replace } => {
                if let Some(f) = self.find_dialog(req) {
                    f.found(req, hits, replace);
                }
            }
            JobResult::FindProgress { req, counts } => {
                if let Some(f) = self.find_dialog(req) {
                    f.progress(req, counts);
                }
            }
            JobResult::FindDone {
                req,
                counts,
                problems,
                error,
            } => {
                if let Some(f) = self.find_dialog(req) {
                    f.done(req, counts, problems, error);
                }
            }
            JobResult::Unlocked {
                req,
                volume,
                result,
                pass,
            } => self.unlocked(req, volume, result, pass),
            JobResult::DisksRefreshed(problems) => {
                if !problems.is_empty() {
                    self.say_error(escape_str(&problems.join("; ")));
                }
            }
            JobResult::DoctorDone { req, report } => {
                if let Some(d) = self.dialogs_mut().find_map(|d| match d {
                    Dialog::Doctor(d) if d.req == req => Some(d),
                    _ => None,
                }) {
                    d.report = Some(*report);
                }
            }
            JobResult::CopyDone(summary) => {
                self.copy = None;
                if self.quit_after_copy {
                    self.quit = true;
                }
                if summary.is_clean() {
                    self.say(s::copied(
                        summary.files,
                        &super::format::size(summary.bytes),
                        &escape_str(&summary.dest.display().to_string()),
                    ));
                } else {
                    self.say_error(s::copy_ended_with_problems(
                        summary.failed_count,
                        summary.cancelled,
                    ));
                }
                self.push_dialog(Dialog::Summary { summary, scroll: 0 });
            }
        }
    }

    fn listed(&mut self, req: u64, result: Result<super::files::Listing, String>) {
        let page = self.files_page();
        let guest = self.pane().and_then(|p| self.namespace(p.tree));
        let layout = Arc::clone(&self.layout);
        let tree;
        {
            let Some(p) = self.pane_mut() else { return };
            let Some(l) = p.loading.take_if(|l| l.req == req) else {
                return;
            };
            tree = p.tree;
            match result {
                Ok(mut listing) => {
                    if let Some(ns) = guest.as_deref() {
                        p.on = ns.mount_of(listing.node).and_then(|m| m.volume);
                        mark_mountpoints(ns, &layout, &mut listing.entries);
                    }
                    p.set_listing(listing, l.select.as_deref());
                    p.scroll_into_view(page);
                }
                Err(e) => {
                    if !p.loaded {
                        p.error = Some(e.clone());
                    }
                    self.say_error(e);
                    return;
                }
            }
        }
        if let Some(p) = self.pane() {
            let path = p.path.clone();
            self.last_paths.insert(tree, path);
        }
    }
}

/// In the guest's tree: say on each mountpoint what is mounted there.
fn mark_mountpoints(ns: &Namespace, layout: &Layout, entries: &mut [super::files::Entry]) {
    for e in entries {
        if !ns.is_mountpoint(e.node) {
            continue;
        }
        e.mounted = ns.mount_of(e.node).map(|m| match (&m.volume, &m.state) {
            (Some(v), MountState::Mounted) => escape_str(&layout.volume(*v).name),
            (_, MountState::Bind { from }) => s::bind_of(&escape(from)),
            (_, MountState::Virtual) => escape_str(&m.fstype),
            (_, MountState::Missing(why) | MountState::Unreadable(why)) => escape_str(why),
            (_, MountState::NoAuto) => s::noauto(&escape_str(&m.spec)),
            _ => escape_str(&m.spec),
        });
    }
}

/// The stamps of the image files of `layout`, in disk order.
fn image_stamps(layout: &Layout) -> Vec<Option<ImageStamp>> {
    layout
        .disks
        .iter()
        .map(|d| d.origin.host_path().and_then(ImageStamp::of))
        .collect()
}

/// A path for the status line, escaped, with the home folder as `~`.
fn home_short(p: &std::path::Path) -> String {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
        && let Ok(rest) = p.strip_prefix(&home)
    {
        return escape_str(&format!("~/{}", rest.display()));
    }
    escape_str(&p.display().to_string())
}
