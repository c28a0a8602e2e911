//! Job threads: opening filesystems, listing directories, reading details,
//! planning and running copies, analysing, planning and writing symlink
//! repairs, and the doctor's scan. Each job runs off the UI thread and sends its
//! results on the one channel; [`Jobs::run_inline`] runs them in place for
//! tests and benchmarks.
//!
//! Seams: [`VolumeOpener`] (which engine opens a volume, from
//! [`crate::engine`]) and [`super::copier::Copier`] (how files are copied out).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::app::App;
use super::copier::{Copier, CopyRequest, CopySummary, PlannedCopy};
use super::event::{Effect, Event, JobResult, RelinkSetup};
use super::files::Entry;
use super::tree::{Opened, Tree};
use crate::doctor;
use crate::engine::VolumeOpener;
use crate::fs::FsView;
use crate::layers::{Layout, VolumeId};
use crate::repair::candidates::Guest;
use crate::repair::relink;
use crate::repair::relink::GuestView;

/// Name of job threads (the panic hook leaves the terminal alone for them).
pub const JOB_THREAD: &str = "vmrescue-job";

/// What jobs need: the layout, the opener and the copier.
#[derive(Clone)]
pub struct Jobs {
    /// The disks and volumes.
    pub layout: Arc<Layout>,
    /// How volumes are opened.
    pub opener: Arc<dyn VolumeOpener>,
    /// How files are copied out.
    pub copier: Arc<dyn Copier>,
}

impl Jobs {
    /// Who plans and writes a repair of `volume`: in place, or through the
    /// kernel engine when it serves the volume
    /// ([`relink::Writer::for_volume`], as `vmrescue relink` chooses).
    fn writer(&self, volume: VolumeId) -> crate::error::Result<relink::Writer> {
        relink::Writer::for_volume(&*self.opener, &self.layout, volume)
    }

    /// Plan pointing `link` at `target` with the volume's writer.
    fn plan(
        &self,
        (volume, subvolume): (VolumeId, Option<u64>),
        link: &[u8],
        target: &[u8],
        guest: Option<&GuestView>,
        setup: &RelinkSetup,
    ) -> Result<Box<relink::Plan>, String> {
        self.writer(volume)
            .and_then(|w| {
                relink::plan_in_subvolume(
                    &w,
                    &self.layout,
                    volume,
                    subvolume,
                    link,
                    guest,
                    Some(target),
                    &setup.options,
                )
            })
            .map(Box::new)
            .map_err(|e| e.to_string())
    }
}

static JOB_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Remember a job thread's panic message (called by the panic hook).
pub fn record_panic(msg: String) {
    if let Ok(mut g) = JOB_PANIC.lock() {
        *g = Some(msg);
    }
}

fn panic_message() -> String {
    let msg = JOB_PANIC.lock().ok().and_then(|mut g| g.take());
    super::strings::internal_error(msg.as_deref())
}

impl Jobs {
    /// Run one effect to the end, reporting through `emit`. A panic inside
    /// the job becomes an error result.
    pub fn run(&self, effect: Effect, emit: &mut dyn FnMut(JobResult)) {
        match effect {
            Effect::OpenFs(tree) => self.open_fs(tree, emit),
            Effect::ForgetFs(volume) => self.opener.forget(volume),
            Effect::RefreshDisks => emit(JobResult::DisksRefreshed(self.layout.refresh_disks())),
            Effect::ListDir { req, fs, path, .. } => list_dir(req, &*fs, &path, emit),
            Effect::LoadDetails {
                req,
                fs,
                dir,
                entry,
            } => load_details(req, &*fs, &dir, &entry, emit),
            Effect::PlanCopy {
                req,
                request,
                cancel,
            } => self.plan_copy(req, request, &cancel, emit),
            Effect::AnalyzeLink {
                req,
                volume,
                subvolume,
                fs,
                link,
                inner,
                setup,
            } => self.analyze_link(req, (volume, subvolume, inner), &fs, &link, &setup, emit),
            Effect::PlanRelink {
                req,
                volume,
                subvolume,
                link,
                guest,
                target,
                setup,
            } => self.plan_relink(
                req,
                (volume, subvolume, guest),
                &link,
                &target,
                &setup,
                emit,
            ),
            Effect::ApplyRelink {
                volume,
                plan,
                setup,
            } => self.apply_relink(volume, &plan, &setup, emit),
            Effect::RunDoctor { req, fs, guest } => self.run_doctor(req, &*fs, guest, emit),
            Effect::Find {
                req,
                fs,
                start,
                query,
                keep,
                cancel,
            } => find(req, &*fs, &start, &query, keep, &cancel, emit),
            Effect::StartCopy { plan, dest, cancel } => copy(plan, &dest, &cancel, emit),
            Effect::OpenViewer {
                req,
                fs,
                path,
                cancel,
            } => open_viewer(req, &fs, &path, &cancel, emit),
            Effect::ViewerSearch {
                req,
                content,
                query,
                cancel,
            } => viewer_search(req, &content, &query, &cancel, emit),
            Effect::Unlock {
                req,
                volume,
                pass,
                known,
            } => {
                let result = unlock(&self.layout, &volume, &pass, &known);
                emit(JobResult::Unlocked {
                    req,
                    volume,
                    result,
                    pass,
                });
            }
            Effect::OpenFile {
                req,
                tree,
                fs,
                guest,
                path,
                cancel,
            } => match self.open_image(tree, &fs, guest.as_deref(), &path) {
                None => open_viewer(req, &fs, &path, &cancel, emit),
                Some(result) => emit(JobResult::ImageOpened { req, path, result }),
            },
        }
    }

    /// When the file at `path` of `tree` holds a disk image: the layout
    /// with it added as a disk under the volume holding the file (or as
    /// it is, when that image was opened already) and the image's volumes,
    /// or why it cannot be opened. `None` when the file is no disk image.
    fn open_image(
        &self,
        tree: Tree,
        fs: &Arc<dyn FsView>,
        guest: Option<&crate::guest::Namespace>,
        path: &[u8],
    ) -> Option<Result<super::event::GrownLayout, String>> {
        catch_unwind(AssertUnwindSafe(|| {
            let r = crate::fs::path::resolve(&**fs, path, true).ok()?;
            let file = crate::fs::FileReader::new(Arc::clone(fs), r.node, &r.path).ok()?;
            if !crate::layers::inner::is_disk_image(&file) {
                return None;
            }
            let holder = match tree {
                Tree::Volume(v) | Tree::Subvolume(v, _) => Ok(v),
                Tree::Guest(_) => guest
                    .ok_or_else(|| "the guest's mount table is not open".to_string())
                    .and_then(|ns| ns.locate(&r.path).map_err(|e| e.to_string()))
                    .map(|(v, _)| v),
            };
            let holder = match holder {
                Ok(h) => h,
                Err(e) => return Some(Err(e)),
            };
            let shown = crate::text::escape(&r.path);
            let holder_name = &self.layout.volume(holder).name;
            // Opened before: its volumes as they are.
            let known = self.layout.disks.iter().find(|d| {
                d.parent == Some(holder)
                    && matches!(&d.origin, crate::layers::DiskOrigin::File { path, volume, .. }
                        if *path == shown && volume == holder_name)
            });
            if let Some(d) = known {
                let ids = self.layout.volumes_from_disk(d.id);
                return Some(Ok((Arc::clone(&self.layout), ids)));
            }
            let src = match crate::layers::inner::open_image_file(
                &self.layout,
                holder,
                Arc::clone(fs),
                &r.path,
                &crate::image::OpenOptions::default(),
            ) {
                Ok(s) => s,
                Err(e) => return Some(Err(e.to_string())),
            };
            let mut layout = (*self.layout).clone();
            let ids = layout.add_image_file(holder, src);
            // Its guest root, OS and fstab roles, as the commands inspect
            // every disk (vmrescue reads an image file itself).
            let userspace = crate::engine::userspace::Userspace::default();
            let found = crate::layers::inspect::inspect(&layout, &|id| {
                crate::engine::VolumeOpener::open(&userspace, &layout, id)
                    .map_err(crate::error::Error::Unsupported)
            });
            layout.apply_inspection(&found);
            Some(Ok((Arc::new(layout), ids)))
        }))
        .unwrap_or_else(|_| Some(Err(panic_message())))
    }

    /// Open a tree: a volume's filesystem through the engine, or the
    /// guest's tree over every volume it mounts.
    fn open_fs(&self, tree: Tree, emit: &mut dyn FnMut(JobResult)) {
        let r = catch_unwind(AssertUnwindSafe(|| match tree {
            Tree::Volume(v) => self.opener.open(&self.layout, v).map(Opened::volume),
            Tree::Subvolume(v, id) => self
                .opener
                .open(&self.layout, v)
                .and_then(|fs| crate::fs::rooted::subvolume_view(fs, id).map_err(|e| e.to_string()))
                .map(Opened::volume),
            Tree::Guest(root) => Opened::guest(&self.layout, root, &*self.opener),
        }))
        .unwrap_or_else(|_| Err(panic_message()));
        emit(JobResult::FsOpened { tree, result: r });
    }

    /// Plan a copy (counting what it would copy) unless it is cancelled.
    fn plan_copy(
        &self,
        req: u64,
        request: CopyRequest,
        cancel: &AtomicBool,
        emit: &mut dyn FnMut(JobResult),
    ) {
        let r = catch_unwind(AssertUnwindSafe(|| self.copier.plan(request, cancel)))
            .unwrap_or_else(|_| Err(panic_message()));
        if !cancel.load(Ordering::Relaxed) {
            emit(JobResult::CopyPlanned { req, result: r });
        }
    }

    /// Look for a link's candidate targets, and plan the best one.
    fn analyze_link(
        &self,
        req: u64,
        (volume, subvolume, inner): (VolumeId, Option<u64>, Option<Vec<u8>>),
        fs: &Arc<dyn FsView>,
        link: &[u8],
        setup: &RelinkSetup,
        emit: &mut dyn FnMut(JobResult),
    ) {
        let (analysis, plan) = catch_unwind(AssertUnwindSafe(|| {
            let guest = Guest::new(&**fs);
            match guest.analyze(link) {
                Err(e) => (Err(e.to_string()), None),
                Ok(a) => {
                    let plan = a.proposal().map(|c| match &inner {
                        // In the guest's tree: the link's path on its volume,
                        // and the target judged in the whole guest.
                        Some(inner) => {
                            let view = GuestView {
                                fs: Arc::clone(fs),
                                link: a.link.clone(),
                            };
                            self.plan((volume, subvolume), inner, &c.target, Some(&view), setup)
                        }
                        None => self.plan((volume, subvolume), &a.link, &c.target, None, setup),
                    });
                    (Ok(Box::new(a)), plan)
                }
            }
        }))
        .unwrap_or_else(|_| (Err(panic_message()), None));
        emit(JobResult::LinkAnalyzed {
            req,
            analysis,
            plan,
        });
    }

    /// Run the doctor's checks on a tree (with the guest's mounts, for the guest's tree).
    fn run_doctor(
        &self,
        req: u64,
        fs: &dyn FsView,
        guest: Option<Arc<crate::guest::Namespace>>,
        emit: &mut dyn FnMut(JobResult),
    ) {
        let report = catch_unwind(AssertUnwindSafe(|| {
            let ctx = doctor::Context::new(fs, guest.as_deref(), Some(&self.layout));
            doctor::examine(&ctx)
        }))
        .unwrap_or_default();
        emit(JobResult::DoctorDone {
            req,
            report: Box::new(report),
        });
    }

    /// Plan pointing `link` at `target`.
    fn plan_relink(
        &self,
        req: u64,
        (volume, subvolume, guest): (VolumeId, Option<u64>, Option<GuestView>),
        link: &[u8],
        target: &[u8],
        setup: &RelinkSetup,
        emit: &mut dyn FnMut(JobResult),
    ) {
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.plan((volume, subvolume), link, target, guest.as_ref(), setup)
        }))
        .unwrap_or_else(|_| Err(panic_message()));
        emit(JobResult::RelinkPlanned { req, result });
    }

    /// Write a planned symlink repair.
    fn apply_relink(
        &self,
        volume: VolumeId,
        plan: &relink::Plan,
        setup: &RelinkSetup,
        emit: &mut dyn FnMut(JobResult),
    ) {
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.writer(volume)
                .and_then(|w| {
                    relink::apply_with(
                        &w,
                        &self.layout,
                        volume,
                        plan,
                        &setup.undo_dir,
                        &setup.options,
                    )
                })
                .map(|a| a.undo_files)
                .map_err(|e| e.to_string())
        }))
        .unwrap_or_else(|_| Err(panic_message()));
        // The filesystem changed under any view opened before.
        self.opener.forget(volume);
        emit(JobResult::Relinked {
            volume,
            link: plan.link.clone(),
            new_target: plan.new_target.clone(),
            result,
        });
    }

    /// Run `effect` on a job thread; results go to `tx`.
    pub fn spawn(&self, effect: Effect, tx: Sender<Event>) {
        // Forgetting is quick and must happen before the opens after it;
        // so must reading the disks' tables again.
        match effect {
            Effect::ForgetFs(volume) => {
                self.opener.forget(volume);
                return;
            }
            Effect::RefreshDisks => {
                let problems = self.layout.refresh_disks();
                if !problems.is_empty() {
                    let _ = tx.send(Event::Job(JobResult::DisksRefreshed(problems)));
                }
                return;
            }
            _ => {}
        }
        let jobs = self.clone();
        let spawned = std::thread::Builder::new()
            .name(JOB_THREAD.into())
            .spawn(move || {
                jobs.run(effect, &mut |r| {
                    let _ = tx.send(Event::Job(r));
                })
            });
        if let Err(e) = spawned {
            record_panic(e.to_string());
        }
    }

    /// Run the app's effects in place, and the effects those cause, until
    /// there are none (tests and benchmarks).
    pub fn run_inline(&self, app: &mut App) {
        for _ in 0..1000 {
            let effects = app.take_effects();
            if effects.is_empty() {
                return;
            }
            for e in effects {
                let mut results = Vec::new();
                // The app's layout grows when a disk image file is opened.
                let jobs = Jobs {
                    layout: Arc::clone(&app.layout),
                    ..self.clone()
                };
                jobs.run(e, &mut |r| results.push(r));
                for r in results {
                    app.apply(r);
                }
            }
        }
    }
}

/// Scan the disks of `layout` again with `pass` for the LUKS volume
/// `volume` (and the passphrases `known` for the volumes they opened): the
/// new layout when it opened, else why not and whether that was the
/// passphrase (another may be tried).
fn unlock(
    layout: &Layout,
    volume: &str,
    pass: &crate::layers::luks::Secret,
    known: &[(String, crate::layers::luks::Secret)],
) -> Result<Arc<Layout>, (String, bool)> {
    let unlocker = |r: &crate::layers::luks::UnlockRequest<'_>| {
        if r.attempt > 0 {
            return None;
        }
        if r.volume == volume {
            return Some(pass.clone());
        }
        known
            .iter()
            .find(|(name, _)| name == r.volume)
            .map(|(_, k)| k.clone())
    };
    let options = crate::layers::ScanOptions {
        unlock: Some(&unlocker),
        ..Default::default()
    };
    let mut again = crate::layers::rescan(layout, options);
    // Disk images opened from files in the disks' filesystems are not on
    // the disks: open them again over the new layout.
    again.keep_image_files(layout);
    let Some(v) = again.volumes.iter().find(|v| v.name == volume) else {
        return Err((
            super::strings::volume_gone(&crate::text::escape_str(volume)),
            false,
        ));
    };
    let summary = again
        .luks
        .iter()
        .find(|(id, _)| *id == v.id)
        .map(|(_, s)| s);
    match summary {
        Some(s) if s.unlocked_by.is_some() => Ok(Arc::new(again)),
        Some(_) => {
            let why = v
                .problems
                .iter()
                .map(|p| p.to_string())
                .find(|p| p.contains("LUKS"));
            // No keyslot opened: the passphrase; anything else is damage.
            match why {
                Some(w) if !w.contains("no keyslot opens") => Err((super::format::safe(&w), false)),
                _ => Err((super::strings::PASSPHRASE_WRONG.to_string(), true)),
            }
        }
        None => Err((
            super::strings::not_luks(&crate::text::escape_str(volume)),
            false,
        )),
    }
}

/// List a directory, reporting progress.
fn list_dir(req: u64, fs: &dyn FsView, path: &[u8], emit: &mut dyn FnMut(JobResult)) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        super::files::list_dir(fs, path, &mut |count| {
            emit(JobResult::ListProgress { req, count })
        })
    }))
    .unwrap_or_else(|_| Err(panic_message()));
    emit(JobResult::Listed { req, result: r });
}

/// Read the details of one file.
fn load_details(
    req: u64,
    fs: &dyn FsView,
    dir: &[u8],
    entry: &Entry,
    emit: &mut dyn FnMut(JobResult),
) {
    let d = catch_unwind(AssertUnwindSafe(|| super::details::load(fs, dir, entry))).unwrap_or_else(
        |_| {
            let mut d = super::details::load_failed(dir, entry);
            d.problems.push(panic_message());
            d
        },
    );
    emit(JobResult::Details {
        req,
        details: Box::new(d),
    });
}

/// Most problems a search reports to the find dialog.
const FIND_PROBLEMS: usize = 20;

/// Walk a guest for the find dialog: results in batches and progress at
/// most every 50 ms; with `keep`, only the newest changes, sorted, at the end.
fn find(
    req: u64,
    fs: &dyn FsView,
    start: &[u8],
    query: &crate::ops::find::Query,
    keep: Option<usize>,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(JobResult),
) {
    use super::dialogs::find::Hit;
    use crate::ops::find::{Event as Found, newest, walk};
    let every = Duration::from_millis(50);
    let mut last = Instant::now();
    let mut batch: Vec<Hit> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        // One handler for both kinds of walk; `newest` keeps its results.
        let mut on = |ev: Found| match ev {
            Found::Found(f) => {
                batch.push(Hit::from_found(f));
                if last.elapsed() >= every {
                    last = Instant::now();
                    emit(JobResult::FindFound {
                        req,
                        hits: std::mem::take(&mut batch),
                        replace: false,
                    });
                }
            }
            Found::Problem(p) => {
                if problems.len() < FIND_PROBLEMS {
                    problems.push(p);
                }
            }
            Found::Progress(counts) => {
                if last.elapsed() >= every {
                    last = Instant::now();
                    if !batch.is_empty() {
                        emit(JobResult::FindFound {
                            req,
                            hits: std::mem::take(&mut batch),
                            replace: false,
                        });
                    }
                    emit(JobResult::FindProgress { req, counts });
                }
            }
        };
        match keep {
            Some(n) => newest(fs, start, query, n, cancel, &mut |ev| match ev {
                Found::Problem(p) => on(Found::Problem(p.clone())),
                Found::Progress(c) => on(Found::Progress(*c)),
                Found::Found(_) => {}
            })
            .map(|(top, counts)| (Some(top), counts)),
            None => walk(fs, start, query, cancel, &mut on).map(|c| (None, c)),
        }
        .map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|_| Err(panic_message()));
    let (counts, error) = match r {
        Ok((top, c)) => {
            if let Some(top) = top {
                batch = top.into_iter().map(Hit::from_found).collect();
            }
            (c, None)
        }
        Err(e) => (Default::default(), Some(e)),
    };
    emit(JobResult::FindFound {
        req,
        hits: batch,
        replace: keep.is_some(),
    });
    emit(JobResult::FindDone {
        req,
        counts,
        problems,
        error,
    });
}

/// Run a planned copy, reporting progress at most every 40 ms.
fn copy(
    plan: Box<dyn PlannedCopy>,
    dest: &Path,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(JobResult),
) {
    let mut last = Instant::now() - Duration::from_secs(1);
    let summary = catch_unwind(AssertUnwindSafe(|| {
        plan.execute(dest, cancel, &mut |p| {
            if last.elapsed() >= Duration::from_millis(40) {
                last = Instant::now();
                emit(JobResult::CopyProgress(p.clone()));
            }
        })
    }))
    .unwrap_or_else(|_| {
        let mut s = CopySummary {
            dest: dest.to_path_buf(),
            ..CopySummary::default()
        };
        s.fail(panic_message(), String::new());
        s
    });
    emit(JobResult::CopyDone(summary));
}

/// Open a file for the viewer; a compressed file or a journal is then
/// made into text in memory here, reported at most every 100 ms.
fn open_viewer(
    req: u64,
    fs: &Arc<dyn FsView>,
    path: &[u8],
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(JobResult),
) {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        crate::ops::pager::source::open(fs, path)
    }))
    .unwrap_or_else(|_| Err(panic_message()));
    let (result, producer) = match opened {
        Ok(mut o) => {
            let p = o.producer.take();
            (Ok(Box::new(o)), p)
        }
        Err(e) => (Err(e), None),
    };
    emit(JobResult::ViewerOpened { req, result });
    if let Some(p) = producer {
        let mut last = Instant::now();
        let _ = catch_unwind(AssertUnwindSafe(|| {
            p.run(cancel, &mut || {
                if last.elapsed() >= Duration::from_millis(100) {
                    last = Instant::now();
                    emit(JobResult::ViewerGrew { req });
                }
            })
        }));
        emit(JobResult::ViewerGrew { req });
    }
}

/// Search the viewer's content, reporting progress at most every 50 ms.
fn viewer_search(
    req: u64,
    content: &crate::ops::pager::Content,
    query: &crate::ops::pager::search::Query,
    cancel: &AtomicBool,
    emit: &mut dyn FnMut(JobResult),
) {
    use crate::ops::pager::search;
    let mut last = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        search::find(content, query, cancel, &mut |done, total| {
            if last.elapsed() >= Duration::from_millis(50) {
                last = Instant::now();
                emit(JobResult::ViewerSearchProgress { req, done, total });
            }
        })
    }))
    .unwrap_or_else(|_| search::Outcome::Failed(panic_message()));
    emit(JobResult::ViewerSearchDone { req, outcome });
}
