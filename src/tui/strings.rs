//! Every text the TUI shows, in one place.

use super::action::{Action, Context};
use crate::fs::FileType;

// ----- screen furniture -----

/// The program's name in the header.
pub const PROGRAM: &str = concat!("vmrescue ", env!("CARGO_PKG_VERSION"));
/// The header when the filesystem reported nothing.
pub const HEADER_CALM: &str = "read-only unless you confirm a repair (r)";
/// The header's right side.
pub const HEADER_HINT: &str = "? help  q quit ";
/// Left pane title.
pub const LAYERS_TITLE: &str = "Layers";
/// Title of the facts box under the tree.
pub const LAYER_INFO_TITLE: &str = "Selected";
/// Right pane title before anything is open.
pub const FILES_TITLE: &str = "Files";
/// Right pane text before anything is open.
pub const NOTHING_OPEN: &str =
    "No filesystem open. Choose one in the layer tree (Enter), or start with --volume.";
/// Badge on a guest root in the tree.
pub const ROOT_BADGE: &str = "(root)";
/// Badge on a node with problems in the tree.
pub const PROBLEM_BADGE: &str = "(!)";
/// Status bar: the image is never written.
pub const READ_ONLY: &str = "read-only";

/// Status bar once this session wrote repairs into the image.
pub fn written_status(n: usize) -> String {
    format!(
        "WRITTEN: {}",
        crate::text::count(n as u64, "repair", "repairs")
    )
}

/// The details' owner line: `uid 27 (mysql) gid 27 (mysql)`; numbers
/// alone where the guest has no name for them.
pub fn owner(uid: u32, user: Option<&str>, gid: u32, group: Option<&str>) -> String {
    let named = |id: u32, name: Option<&str>| match name {
        Some(n) => format!("{id} ({n})"),
        None => id.to_string(),
    };
    format!("uid {} gid {}", named(uid, user), named(gid, group))
}

/// The header once this session wrote into the image.
pub const HEADER_WRITTEN: &str = "the image was written by a repair (an undo file was saved)";

/// Ctrl-L: what is shown was read again.
pub const RELOADED: &str = "read again from the image";

/// The image file keeps changing (a running guest?).
pub fn image_changing(image: &str) -> String {
    format!("{image} keeps changing (a running guest?): read again every 5 s")
}

/// The image file changed under the TUI (written elsewhere).
pub fn image_changed(image: &str) -> String {
    format!("{image} changed on disk (another program wrote it): read again")
}
/// Marked entries.
pub const MARK_SIGN: &str = "*";
/// Flagged (suspicious) entries.
pub const SUSPECT_SIGN: &str = "!";
/// Entries whose metadata could not be read.
pub const ERROR_SIGN: &str = "?";
/// Between a link and its target.
pub const ARROW: &str = "→";
/// Mode column when the metadata is unknown.
pub const UNKNOWN_MODE: &str = "??????????";
/// Column titles.
pub const COL_NAME: &str = "Name";
/// Column titles.
pub const COL_SIZE: &str = "Size";
/// Column titles (times are UTC).
pub const COL_MODIFIED: &str = "Modified (UTC)";
/// Column titles, narrow screens.
pub const COL_DATE: &str = "Modified";
/// Column titles.
pub const COL_MODE: &str = "Mode";
/// An empty directory.
pub const EMPTY_DIR: &str = "(empty directory)";
/// A filter that matches nothing.
pub const NO_MATCH: &str = "(nothing matches the filter; Esc clears it)";

/// Key hints on the second status line when there is nothing else to say.
pub const HINTS: &[(Action, &str)] = &[
    (Action::ToggleHelp, "help"),
    (Action::SwitchPane, "pane"),
    (Action::MarkToggle, "mark"),
    (Action::CopyMarked, "copy"),
    (Action::ShowDetails, "details"),
    (Action::FilterStart, "filter"),
    (Action::Quit, "quit"),
];

/// Right pane: a filesystem being opened.
pub fn opening(volume: &str) -> String {
    format!("Opening the filesystem of {volume}…")
}

/// Right pane: a filesystem that cannot be opened.
pub fn cannot_open(volume: &str) -> String {
    format!("Cannot browse {volume}:")
}

/// A directory being read.
pub fn reading(count: usize) -> String {
    if count == 0 {
        "reading…".into()
    } else {
        format!("reading… {count}")
    }
}

/// The guest node's description: its root and how many volumes it mounts.
pub fn guest_description(root: &str, mounted: usize) -> String {
    match mounted {
        0 => format!("the guest as it boots: root {root}"),
        1 => format!("the guest as it boots: root {root} and 1 more volume"),
        n => format!("the guest as it boots: root {root} and {n} more volumes"),
    }
}

/// In the guest's tree, after a mountpoint's name: what is mounted there.
pub fn mounted_here(what: &str) -> String {
    format!("[{what}]")
}

/// A bind mount's source, after the mountpoint's name.
pub fn bind_of(from: &str) -> String {
    format!("bind of {from}")
}

/// An fstab entry the guest does not mount at boot (`noauto`).
pub fn noauto(spec: &str) -> String {
    format!("{spec}, noauto: not mounted at boot")
}

/// After a nested guest's name in the tree: the volume holding its disk.
pub fn guest_in(holder: &str) -> String {
    format!(" (in {holder})")
}

/// A guest's tree name in the status bar: `guest` for the one the commands
/// choose, `guest in pve/vm-100-disk-0` for one on a nested disk.
pub fn guest_tree_in(holder: &str) -> String {
    format!("{GUEST_TREE} in {holder}")
}

/// The guest node's facts: a mountpoint and the volume mounted there.
pub fn guest_mount_line(at: &str, volume: &str) -> String {
    format!("{at} {volume}")
}

/// In the guest's tree: the volume the folder shown lies on.
pub fn on_volume(volume: &str) -> String {
    format!("on {volume}")
}

/// Status bar: marks.
pub fn marks_status(count: usize, total: &str, dirs: usize) -> String {
    match dirs {
        0 => format!("marked {count} ({total})"),
        1 => format!("marked {count} ({total} + 1 folder)"),
        d => format!("marked {count} ({total} + {d} folders)"),
    }
}

/// Status bar: a copy running in the background.
pub fn copying_status(percent: u64) -> String {
    format!("copying {percent}% (c shows it)")
}

/// Header: what a filesystem reader found wrong.
pub fn fs_problems(count: usize, first: &str) -> String {
    if count == 1 {
        format!("filesystem problem: {first}")
    } else {
        format!("{count} filesystem problems, first: {first}")
    }
}

// ----- layer facts -----

/// What a tree node kind is called.
pub fn kind_name(kind: &str) -> &'static str {
    match kind {
        "disk" => "Disk",
        "partition" => "Partition",
        "vg" => "Volume group",
        "lv" => "Logical volume",
        "md" => "MD array",
        "guest" => "Guest",
        _ => "Node",
    }
}

/// Field names in the facts box and the details window.
pub const F_VOLUME: &str = "volume";
/// Field name.
pub const F_SIZE: &str = "size";
/// Field name.
pub const F_START: &str = "starts at";
/// Field name.
pub const F_CONTENT: &str = "content";
/// Field name.
pub const F_LABEL: &str = "label";
/// Field name.
pub const F_UUID: &str = "UUID";
/// Field name.
pub const F_MOUNTPOINT: &str = "mounted on";
/// Field name.
pub const F_GUEST_ROOT: &str = "guest root";
/// The Proxmox guest a VM disk belongs to.
pub const F_PVE_GUEST: &str = "Proxmox guest";
/// Field name.
pub const F_PROBLEM: &str = "problem";
/// Field name.
pub const F_PATH: &str = "path";
/// Field name.
pub const F_INODE: &str = "inode";
/// Field name.
pub const F_TYPE: &str = "type";
/// Field name.
pub const F_MODE: &str = "mode";
/// Field name.
pub const F_OWNER: &str = "owner";
/// Field name.
pub const F_ALLOCATED: &str = "allocated";
/// Field name.
pub const F_LINKS: &str = "links";
/// Field name.
pub const F_MTIME: &str = "modified";
/// Field name.
pub const F_CTIME: &str = "changed";
/// Field name.
pub const F_ATIME: &str = "accessed";
/// Field name.
pub const F_CRTIME: &str = "created";
/// Field name.
pub const F_DEVICE: &str = "device";
/// Field name.
pub const F_TARGET: &str = "target";
/// Field name.
pub const F_LEADS_TO: &str = "leads to";
/// Field name.
pub const F_LINK: &str = "link";
/// Field name.
pub const F_ELF: &str = "ELF";
/// Field name.
pub const F_SONAME: &str = "SONAME";
/// Field: the highest glibc symbol version a library defines.
pub const F_GLIBC: &str = "glibc version";
/// Field: needed libraries.
pub const F_NEEDED: &str = "needs";
/// Field name.
pub const F_XATTRS: &str = "xattrs";
/// Field name.
pub const F_DESTINATION: &str = "destination";
/// No value.
pub const NONE: &str = "none";

/// Where a node starts.
pub fn start_at(byte: u64) -> String {
    if byte.is_multiple_of(512) {
        format!("byte {byte} (sector {})", byte / 512)
    } else {
        format!("byte {byte}")
    }
}

/// A volume that cannot be browsed, and what it holds.
pub fn not_browsable(name: &str, content: Option<&str>) -> String {
    match content {
        Some(c) => format!("{name} holds {c}: not a filesystem vmrescue can browse"),
        None => format!("{name}: nothing recognised on it"),
    }
}

/// A file type in words.
pub fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::CharDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Fifo => "named pipe",
        FileType::Socket => "socket",
        FileType::Unknown => "unknown (corrupt mode)",
    }
}

// ----- suspicious links -----

/// A link whose target does not exist in the guest.
pub fn dangling(target: &str) -> String {
    format!("dangling: {target} is not in the guest")
}

/// A link that cannot be followed (a loop, a damaged directory).
pub fn unresolvable(why: &str) -> String {
    format!("cannot be followed: {why}")
}

/// A library link that leaves the library directories.
pub fn outside_library_dirs(dir: &str) -> String {
    format!("outside lib dirs: {dir}")
}

/// A link changed long after its neighbours.
pub fn suspect_recent(changed: &str, neighbours: &str) -> String {
    format!("changed {changed}, others {neighbours}")
}

/// The path asked for is not a directory.
pub fn not_a_directory(path: &str) -> String {
    format!("{path}: not a directory")
}

// ----- messages -----

/// Enter on a disk image file opened it as a disk; `volume` is shown.
pub fn image_opened(path: &str, volume: &str) -> String {
    format!("{path} holds a disk image: opened it as a disk, showing {volume}")
}

/// Enter on a disk image file opened it, but it holds nothing to browse.
pub fn image_without_filesystem(path: &str) -> String {
    format!(
        "{path} holds a disk image: opened it as a disk (its layers are on the left), \
         but it holds no filesystem vmrescue can browse"
    )
}

/// Enter on a disk image file that cannot be opened (a backing file missing...).
pub fn image_not_opened(path: &str, why: &str) -> String {
    format!("{path} holds a disk image that cannot be opened: {why}")
}

/// After `u`.
pub fn cleared_marks(n: usize) -> String {
    match n {
        0 => "no marks to clear".into(),
        1 => "cleared 1 mark".into(),
        n => format!("cleared {n} marks"),
    }
}

/// After `a`.
pub fn marked_all(n: usize) -> String {
    format!("marked every entry shown here ({n})")
}

/// The guest tree's name (its volumes mounted where its fstab says).
pub const GUEST_TREE: &str = "guest";
/// Tab with nothing on the right.
pub const OPEN_A_FILESYSTEM_FIRST: &str = "open a filesystem first: Enter on a volume in the tree";
/// Marking in the tree.
pub const MARKS_ARE_FOR_FILES: &str = "marks are for files: Tab to the file list";
/// `r` on something else than a symlink.
pub const RESTORE_NEEDS_SYMLINK: &str = "r restores a symbolic link: select one in the file list";
/// `c` with nothing to copy.
pub const NOTHING_TO_COPY: &str =
    "nothing to copy: mark files with Space, or select one in the file list";
/// `c` while a copy runs.
pub const ALREADY_COPYING: &str = "a copy is running; Esc cancels it, b hides this window";
/// Enter in the copy dialog before the plan is ready.
pub const STILL_COUNTING: &str = "still counting the files to copy…";
/// Enter with an empty destination.
pub const NEED_DESTINATION: &str = "type a destination folder first";

/// The copy destination cannot take files (checked before the copy starts).
pub fn cannot_copy_there(why: &str) -> String {
    format!("cannot copy there: {why}; type another folder")
}
/// Enter with a plan larger than the destination's free space (holes of
/// sparse files take none, so it may all fit).
pub fn copy_too_big(needs: &str, free: &str) -> String {
    format!("{free} free there, the copy needs up to {needs}; Enter again copies what fits")
}
/// The copy dialog's line when the plan is larger than the free space.
pub fn plan_too_big(free: &str) -> String {
    format!("more than the {free} free there: what does not fit will fail")
}
/// After `b`.
pub const COPY_IN_BACKGROUND: &str = "the copy goes on in the background; c shows its progress";
/// After asking to cancel.
pub const CANCELLING: &str = "stopping the copy: the file being written will be removed…";

/// After a copy with no problems.
pub fn copied(files: u64, bytes: &str, dest: &str) -> String {
    format!(
        "copied {files} file{} ({bytes}) to {dest}",
        if files == 1 { "" } else { "s" }
    )
}

/// After a copy with problems.
pub fn copy_ended_with_problems(failed: u64, cancelled: bool) -> String {
    match (cancelled, failed) {
        (true, _) => "copy cancelled; see the summary".into(),
        (false, 1) => "copy finished, 1 item failed; see the summary".into(),
        (false, n) => format!("copy finished, {n} items failed; see the summary"),
    }
}

// ----- copy dialog, progress, summary -----

/// Copy dialog title.
pub const COPY_TITLE: &str = "Copy out of the image";
/// Above the destination field.
pub const DESTINATION: &str = "Destination folder on this host:";
/// When marks span volumes.
pub const ONE_FOLDER_PER_VOLUME: &str = "(one folder per volume inside it)";
/// While planning.
pub const COUNTING: &str = "counting files…";
/// The copy rules.
pub const COPY_RULES: &str = "Symlinks are copied as links, never followed; holes are kept; nothing is written outside the folder.";

/// What one selected item will be copied.
pub fn copy_one(path: &str, volume: &str) -> String {
    format!("Copy {path} from {volume}")
}

/// What several marked items will be copied.
pub fn copy_many(n: usize, volumes: &str) -> String {
    format!("Copy {n} marked items from {volumes}")
}

/// `1 file`, `2 files`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    crate::text::count(n, one, many)
}

/// The plan's counts.
pub fn plan_summary(files: u64, bytes: &str, dirs: u64, links: u64) -> String {
    format!(
        "{} ({bytes}), {}, {}",
        count(files, "file", "files"),
        count(dirs, "folder", "folders"),
        count(links, "symlink", "symlinks")
    )
}

/// Entries the plan will skip.
pub fn plan_skipped(n: u64) -> String {
    format!("{n} entries will be skipped (device nodes, pipes, sockets or unsafe names)")
}

/// Progress title.
pub fn copying_to(dest: &str) -> String {
    format!("Copying to {dest}")
}

/// Progress: amounts.
pub fn progress_bytes(done: &str, total: &str, files_done: u64, files_total: u64) -> String {
    format!(
        "{done} of {total}   {files_done} of {}",
        count(files_total, "file", "files")
    )
}

/// Progress: speed and time.
pub fn progress_rate(rate: &str, elapsed: &str, eta: &str) -> String {
    format!("{rate}   elapsed {elapsed}   left {eta}")
}

/// Progress: the file being copied.
pub const NOW: &str = "now: ";
/// Summary title.
pub const SUMMARY_TITLE: &str = "Copy finished";
/// Summary of a cancelled copy.
pub const SUMMARY_CANCELLED: &str =
    "Cancelled. The file being written was removed; files already copied are kept.";
/// Summary without problems.
pub const SUMMARY_ALL_GOOD: &str = "Nothing was skipped and nothing failed.";

/// Summary counts.
pub fn summary_counts(files: u64, bytes: &str, dirs: u64, links: u64, took: &str) -> String {
    format!("{} in {took}", plan_summary(files, bytes, dirs, links))
}

/// Summary: files already in the destination and the same, left alone
/// (worded as `cp --skip-existing` says it).
pub fn summary_unchanged(n: u64) -> String {
    format!(
        "{} already there and the same (left alone).",
        count(n, "file was", "files were")
    )
}

/// The copy job's hint for a file that exists and differs, as the CLI says it…
pub const CLI_OVERWRITE_HINT: &str = "(--overwrite replaces it)";
/// …and as the browser says it.
pub const TUI_OVERWRITE_HINT: &str = "(choose \"overwrite it\" to replace it)";

/// Summary: failures.
pub fn summary_failed(n: u64) -> String {
    format!("Failed ({n}):")
}

/// Summary: skipped entries.
pub fn summary_skipped(n: u64) -> String {
    format!("Skipped ({n}):")
}

/// Summary: the end of a list cut at its cap.
pub fn summary_not_listed(more: u64, listed: usize) -> String {
    format!("  ... and {more} more (the first {listed} are listed)")
}

/// A cancelled plan.
pub const CANCELLED: &str = "cancelled";

// ----- questions -----

/// Title of the quit question.
pub const QUIT_TITLE: &str = "Quit?";
/// Quitting while a copy runs.
pub const QUIT_DURING_COPY: &str =
    "A copy is running. Stop it (the file being written is removed) and quit?";
/// Title of the cancel question.
pub const CANCEL_COPY_TITLE: &str = "Stop the copy?";
/// Cancelling a copy.
pub const CANCEL_COPY_QUESTION: &str =
    "Stop the copy? The file being written is removed; files already copied stay.";

// ----- details, restore, doctor -----

/// While the details are read.
pub const READING_DETAILS: &str = "reading…";

/// Restore dialog title.
pub const RESTORE_TITLE: &str = "Restore symlink";
/// A link with nothing wrong found.
pub const RESTORE_NO_PROBLEM: &str = "Nothing wrong was found with this link.";
/// While the candidates are looked for.
pub const RESTORE_LOOKING: &str = "looking for candidate targets…";
/// Above the candidates.
pub const RESTORE_CANDIDATES: &str = "Candidates (↑↓ choose, Enter plans the highlighted one):";
/// No candidate.
pub const RESTORE_NO_CANDIDATE: &str = "No candidate target found: t types one of your own.";
/// Above the field where a target is typed.
pub const RESTORE_TYPE_TARGET: &str =
    "Your target (relative to the link's folder, or absolute inside the guest):";
/// Why a typed target is a candidate.
pub const TYPED_TARGET: &str = "typed by you; the plan checks it";
/// `t` before the analysis is back.
pub const RESTORE_STILL_LOOKING: &str =
    "still looking for candidates: t works once they are listed";
/// The guest picker's bottom line.
pub const FOOTER_PICKER: &str = "↑↓ choose  Enter open its disks  q quit";
/// Footer of the restore dialog while a target is typed.
pub const FOOTER_TYPE_TARGET: &str = "Enter plan it  Esc back";
/// A candidate that is a name-based guess.
pub const GUESS: &str = "(a guess)";
/// The candidate the link points at now.
pub const CURRENT: &str = "(the current target)";
/// The candidate the plan is for.
pub const CHOSEN_SIGN: &str = "*";
/// While the plan is made.
pub const PLANNING: &str = "planning…";
/// What `y` does when the plan can be written.
pub const RESTORE_READY: &str = "y writes it (you are asked first); the old bytes are saved to an undo file before anything changes.";
/// `y` before there is a plan.
pub const RESTORE_NOT_READY: &str = "nothing to write yet: choose a candidate with Enter";
/// `y` while a repair is written.
pub const ALREADY_WRITING: &str = "a repair is being written; wait for it to finish";
/// Footer of the restore dialog.
pub const FOOTER_RESTORE: &str = "↑↓ choose  Enter plan  t type  y write  Esc close";
/// A blocker the force key lifts, as the repair reports it (for the CLI).
pub const CLI_FORCE_HINT: &str = "--force writes it anyway";
/// A warning the force key turned a blocker into, as the repair reports it.
pub const CLI_FORCED_NOTE: &str = "written anyway (--force)";
/// The same note in the TUI.
pub const TUI_FORCED_NOTE: &str = "allowed with f";
/// The same hint in the TUI, where `f` does it.
pub const TUI_FORCE_HINT: &str = "f allows it (y still asks)";
/// The plan was made with force.
pub const FORCED: &str =
    "forced: a target that does not resolve in the guest is allowed (f again: not)";
/// `f` without a chosen candidate.
pub const FORCE_NEEDS_PLAN: &str = "choose a candidate first (Enter or t), then f";
/// Title of the question before writing.
pub const APPLY_TITLE: &str = "Write the repair?";

/// The line above the plan.
pub fn plan_for(target: &str) -> String {
    format!("Plan for {target}:")
}

/// Why the plan cannot be written.
pub fn cannot_apply(why: &str) -> String {
    format!("Cannot write: {why}")
}

/// Where the undo file goes.
pub fn undo_under(dir: &str) -> String {
    format!("undo file: saved under {dir} before writing")
}

/// The analysis failed.
pub fn cannot_analyze(why: &str) -> String {
    format!("The link could not be analysed: {why}")
}

/// The question before writing.
pub fn apply_question(link: &str, old: &str, new: &str, bytes: usize, images: &str) -> Vec<String> {
    vec![
        format!("Relink {link}"),
        format!("from {old}"),
        format!("to   {new}?"),
        format!("{bytes} bytes of {images} change; the old ones go to an undo file first."),
    ]
}

/// The question before writing through the kernel engine.
pub fn apply_question_kernel(link: &str, old: &str, new: &str, volume: &str) -> Vec<String> {
    vec![
        format!("Relink {link}"),
        format!("from {old}"),
        format!("to   {new}?"),
        format!("{volume} is mounted READ-WRITE by the kernel engine (its journal is replayed,"),
        "as at boot), a new symlink is renamed over the old one, and it is unmounted.".into(),
        "The old target goes to an undo file first.".into(),
    ]
}

/// While the repair is written.
pub fn writing(link: &str) -> String {
    format!("writing the repair of {link}…")
}

/// After the repair.
pub fn relinked(link: &str, new: &str, undo: &str) -> String {
    format!("relinked {link} → {new}; undo with: vmrescue undo {undo}")
}

/// The repair failed.
pub fn relink_failed(why: &str) -> String {
    format!("the repair was not made: {why}")
}

/// Doctor view title.
pub const DOCTOR_TITLE: &str = "Doctor";
/// While the doctor scans.
pub const DOCTOR_SCANNING: &str =
    "checking what the guest needs to start: libraries, mounts, boot entries, space, accounts…";
/// `!` without an open filesystem.
pub const DOCTOR_NEEDS_FS: &str = "! examines a guest filesystem: open a volume first";
/// Footer of the doctor view.
pub const FOOTER_DOCTOR: &str = "↑↓ choose  Enter go to the file  r repair  v view  Esc close";
/// Above the recent changes of a Windows guest.
pub const DOCTOR_RECENT_WINDOWS: &str = "Files under Windows\\System32 written or installed last (the newer of modification and creation time):";
/// Above the recent changes.
pub const DOCTOR_RECENT: &str =
    "Most recently changed files (inode change time; * a finding points at it, then newest first):";
/// Above the checks' summaries.
pub const DOCTOR_CHECKED: &str = "Checked:";
/// Above the package history.
pub const DOCTOR_HISTORY: &str = "The package manager's last transactions:";
/// `r` on a finding without an automatic repair.
pub const DOCTOR_NO_REPAIR: &str =
    "no automatic repair for this finding: v views the file, Enter goes to it";
/// Enter or `v` on a finding that names no file.
pub const DOCTOR_NO_FILE: &str = "this finding names no file";
/// A finding without a candidate.
pub const NO_PROPOSAL: &str = "no candidate target found";

/// Doctor: nothing found.
pub fn doctor_none(volume: &str) -> String {
    format!("No reason found why {volume} would not boot.")
}

/// Doctor: findings.
pub fn doctor_found(n: usize, volume: &str) -> String {
    format!(
        "{n} finding{} in {volume}, most urgent first (Enter goes to the file, r repairs):",
        if n == 1 { "" } else { "s" }
    )
}

/// Doctor: the repair proposed for a finding.
pub fn proposed(target: &str, guess: bool, reasons: &str) -> String {
    format!(
        "proposed: {target}{} ({reasons})",
        if guess { " (a guess)" } else { "" }
    )
}

// ----- help -----

/// Help title.
pub const HELP_TITLE: &str = "Keys";
/// Help: typing in a text field.
pub const ANY_CHARACTER: &str = "any character";
/// Help: typing in a text field.
pub const TYPE_CHARACTER: &str = "Type it into the field";
/// Notes at the end of the help.
pub const HELP_NOTES: &[&str] = &[
    "Marks: * in the first column. Flags: ! marks a suspicious symlink;",
    "its reason is shown on the bottom line when it is selected.",
    "Times are UTC. The image is only read; r writes a symlink repair after",
    "you confirm it, saving the old bytes to an undo file first.",
];
/// Footers.
pub const FOOTER_CLOSE: &str = "Esc close";
/// Footers.
pub const FOOTER_CLOSE_SCROLL: &str = "↑↓ PgUp PgDn scroll  Esc close";
/// Footers.
pub const FOOTER_YES_NO: &str = "y yes  n no";
/// Footers.
pub const FOOTER_COPY: &str = "Enter copy  Tab if exists  Esc cancel";

/// The copy dialog: the destination holds files already.
pub fn dest_not_empty(n: usize) -> String {
    format!(
        "The folder holds {} already. A name that exists (Tab):",
        crate::text::count(n as u64, "entry", "entries")
    )
}

/// The copy dialog: the choices for names that exist.
pub const EXISTING_SKIP: &str = "skip it";
/// The copy dialog: the choices for names that exist.
pub const EXISTING_OVERWRITE: &str = "overwrite it";
/// The copy dialog: the choices for names that exist.
pub const EXISTING_RENAME: &str = "copy into a new folder:";
/// Footers.
pub const FOOTER_PROGRESS: &str = "Esc cancel  b hide";

/// A context's title in the help and the README.
pub fn context_title(c: Context) -> &'static str {
    match c {
        Context::Main => "Browsing (both panes)",
        Context::Edit => "Typing (filter line, go-to path, copy destination, restore target, find)",
        Context::Confirm => "Questions",
        Context::Dialog => "Windows (help, details, summaries)",
        Context::Repair => "Restore dialog and doctor view",
        Context::Progress => "While a copy runs",
        Context::Viewer => "File viewer",
    }
}

/// What an action does, for the help and the README.
pub fn action_help(c: Context, a: Action) -> &'static str {
    match (c, a) {
        (Context::Viewer, Action::MoveUp) => "One line up",
        (Context::Viewer, Action::MoveDown) => "One line down",
        (Context::Viewer, Action::PageUp) => "One page up",
        (Context::Viewer, Action::PageDown) => "One page down",
        (Context::Viewer, Action::Home) => "The start of the file",
        (Context::Viewer, Action::End) => "The end of the file (read backwards, not the middle)",
        (Context::Viewer, Action::CursorLeft) => "Scroll left (wrap off)",
        (Context::Viewer, Action::CursorRight) => "Scroll right (wrap off)",
        (Context::Viewer, Action::FilterStart) => "Search forwards (Enter starts it)",
        (Context::Viewer, Action::Cancel) => "Stop the search, or close the viewer",
        (Context::Viewer, Action::Quit) => "Quit (asks first while a copy runs)",
        (_, Action::View) => "View the file (text, hex, decompressed logs, journals)",
        (_, Action::ToggleWrap) => "Wrap long lines, or cut them",
        (_, Action::ToggleHex) => "Hex view, or text",
        (_, Action::SearchNext) => "Next match",
        (_, Action::SearchPrev) => "Previous match",
        (Context::Edit, Action::Home) => "Cursor to the start",
        (Context::Edit, Action::End) => "Cursor to the end",
        (Context::Repair, Action::MoveUp) => "Previous candidate or finding",
        (Context::Repair, Action::MoveDown) => "Next candidate or finding",
        (Context::Repair, Action::PageUp) => "Scroll a page up",
        (Context::Repair, Action::PageDown) => "Scroll a page down",
        (Context::Repair, Action::Open) => {
            "Restore: plan the highlighted candidate; doctor: go to the finding's file"
        }
        (Context::Repair, Action::RestoreSymlink) => {
            "Doctor: repair the highlighted finding (its restore dialog)"
        }
        (Context::Repair, Action::Confirm) => {
            "Write the planned repair (asks first; an undo file is saved)"
        }
        (Context::Repair, Action::ToggleHelp) => "Show the help",
        (_, Action::TypeTarget) => "Restore: type a target of your own, then Enter plans it",
        (_, Action::MoveUp) if c == Context::Dialog => "Scroll up",
        (_, Action::MoveDown) if c == Context::Dialog => "Scroll down",
        (_, Action::PageUp) if c == Context::Dialog => "Scroll a page up",
        (_, Action::PageDown) if c == Context::Dialog => "Scroll a page down",
        (_, Action::MoveUp) => "Previous row",
        (_, Action::MoveDown) => "Next row",
        (_, Action::PageUp) => "Page up",
        (_, Action::PageDown) => "Page down",
        (_, Action::Home) => "First row",
        (_, Action::End) => "Last row",
        (_, Action::Open) => {
            "Open: enter a folder, view a file (disk images open as disks), browse a layer"
        }
        (_, Action::Back) => "Back: parent folder, collapse a layer",
        (_, Action::SwitchPane) => "Switch between the layer tree and the file list",
        (_, Action::MarkToggle) => "Mark or unmark, then go to the next row",
        (_, Action::MarkAll) => "Mark everything shown in this folder",
        (_, Action::ClearMarks) => "Clear all marks (every folder and volume)",
        (_, Action::CopyMarked) => "Copy the marked files (or the selected one) out of the image",
        (_, Action::RestoreSymlink) => "Restore the selected symlink",
        (_, Action::ShowDetails) => "Details: inode, times, xattrs, ELF SONAME",
        (_, Action::Doctor) => "Doctor: why the guest would not boot, and the repairs",
        (_, Action::ToggleHelp) if c == Context::Dialog => "Show or hide this help",
        (Context::Viewer, Action::ToggleHelp) => "Show the help",
        (_, Action::ToggleHelp) => "This help",
        (_, Action::FilterStart) => "Filter the file list by name",
        (_, Action::GoTo) => "Go to a path (`/etc/ssh`; `C:\\Users` on a Windows guest)",
        (Context::Edit, Action::Quit)
        | (Context::Confirm, Action::Quit)
        | (Context::Dialog, Action::Quit)
        | (Context::Repair, Action::Quit)
        | (Context::Progress, Action::Quit) => "Quit (asks first while a copy runs)",
        (_, Action::Quit) => "Quit",
        (Context::Edit, Action::Confirm) => {
            "Accept (filter), go to the path, start the copy, plan the typed target, or search (find)"
        }
        (_, Action::Confirm) => "Yes",
        (Context::Main, Action::Cancel) => "Clear the filter, or the message",
        (Context::Edit, Action::Cancel) => {
            "Cancel (clears the filter); find: stop the search, then close"
        }
        (Context::Confirm, Action::Cancel) => "No",
        (Context::Progress, Action::Cancel) => "Cancel the copy (asks first)",
        (_, Action::Cancel) => "Close",
        (_, Action::DeleteBack) => "Delete the character before the cursor",
        (_, Action::CursorLeft) => "Cursor left",
        (_, Action::CursorRight) => "Cursor right",
        (_, Action::Background) => "Hide this window; the copy goes on (c shows it)",
        (_, Action::Redraw) => "Redraw, and read the image again (changes made elsewhere show)",
        (_, Action::DeleteToStart) => "Delete everything before the cursor",
        (_, Action::DeleteWord) => "Delete the word before the cursor",
        (_, Action::Force) => {
            "Restore: allow a target that does not resolve in the guest (y still asks)"
        }
        (_, Action::CycleExisting) => {
            "Copy: names that exist already: skip, overwrite, or a new folder; find: next field"
        }
        (_, Action::Insert(_)) => TYPE_CHARACTER,
        (_, Action::Find) => "Find files: name, type, size, changed within; newest changes",
        (_, Action::RecentChanges) => "Find: the newest changes across the guest, newest first",
    }
}

/// The find dialog's title.
pub fn find_title(volume: &str) -> String {
    format!("Find in {volume}")
}
/// The find dialog: field labels (padded to one width).
pub const FIND_LABELS: [&str; 4] = ["Name      ", "Type      ", "Size      ", "Changed < "];
/// The find dialog: what each field takes.
pub const FIND_FIELD_HINTS: [&str; 4] = [
    "glob (*.conf), or text found anywhere in the name, any case",
    "f d l b c p s, or a list: f,l",
    "as find: +10M more, -1k less, 4k (k M G c)",
    "30m, 6h, 2d",
];
/// The find dialog: keys.
pub const FOOTER_FIND: &str = "Enter search/open  ^R newest changes  Tab/↓ next  Esc stop/close";
/// The find dialog before a search.
pub const FIND_START: &str = "Enter searches the whole guest from /; Ctrl-R lists its newest changes (what changed before it broke?).";
/// The find dialog: no results.
pub const FIND_NONE: &str = "(nothing found)";
/// A search running.
pub fn find_running(dirs: u64, seen: u64, found: usize) -> String {
    format!("searching… {dirs} folders, {seen} entries, {found} found (Esc stops)")
}
/// A search ended.
pub fn find_done(
    seen: u64,
    found: usize,
    recent: bool,
    cancelled: bool,
    truncated: bool,
    problems: u64,
) -> String {
    let what = if recent {
        format!("the {found} newest changes of {seen} entries, newest first")
    } else {
        format!("{found} found in {seen} entries")
    };
    let mut s = what;
    if cancelled {
        s.push_str(" (stopped)");
    }
    if truncated {
        s.push_str(" (stopped at the limit: narrow the search)");
    }
    if problems > 0 {
        s.push_str(&format!(
            "; {}",
            crate::text::count(problems, "problem", "problems")
        ));
    }
    s
}
/// "changed within" that is not a time.
pub fn find_bad_within(s: &str) -> String {
    format!("changed within {s:?}: give minutes, hours or days (30m, 6h, 2d)")
}
/// The go-to prompt, at the foot of the file list.
pub const GOTO_PROMPT: &str = "go to:";
/// The go-to prompt with nothing open.
pub const GOTO_NEEDS_FS: &str = "Go to a path in a guest filesystem: open a volume first";

/// The go-to prompt's path could not be shown.
pub fn goto_failed(typed: &str, why: &str) -> String {
    format!("Go to {typed}: {why}")
}

/// Ctrl-F with nothing open.
pub const FIND_NEEDS_FS: &str = "Ctrl-F searches a guest filesystem: open a volume first";

/// A job that failed inside (a bug): what the operator sees.
pub fn internal_error(msg: Option<&str>) -> String {
    match msg {
        Some(m) => format!("internal error (please report it): {m}"),
        None => "internal error (please report it)".into(),
    }
}

/// stdout is not a terminal.
pub const NOT_A_TERMINAL: &str = "the full-screen browser needs a terminal (stdout is not one); \
in scripts use the subcommands: vmrescue layers, ls, cat, cp";

/// Viewer: what the line position shows (`line 12`, `line ?`).
pub fn viewer_line(n: &str) -> String {
    format!("line {n}")
}

/// Viewer: the mode of a decompressed file (`text, from gz`).
pub fn viewer_decoded(mode: &str, format: &str) -> String {
    format!("{mode}, from {format}")
}

/// Viewer: wrap is off.
pub const VIEWER_NOWRAP: &str = ", no wrap";

/// Viewer: `n`/`N` before any search.
pub const VIEWER_NO_PATTERN: &str = "no search yet: / types one";

/// Viewer: the search was stopped (Esc).
pub const VIEWER_SEARCH_STOPPED: &str = "search stopped";

/// Viewer: the footer while a pattern is typed.
pub const VIEWER_SEARCH_PROMPT: &str = "/";

/// Viewer: the keys, on the title line.
pub const VIEWER_KEYS: &str = "/ search  n/N  w wrap  x hex  q close";

/// Viewer: the file is being opened.
pub const VIEWER_OPENING: &str = "opening...";

/// Viewer: nothing more was found.
pub fn viewer_not_found(pattern: &str, forward: bool) -> String {
    let whence = if forward { "below" } else { "above" };
    format!("not found {whence}: {}", crate::text::escape_str(pattern))
}

/// Viewer: a search under way.
pub fn viewer_searching(pattern: &str, done: u64, total: u64, done_shown: &str) -> String {
    let pct = done.saturating_mul(100).checked_div(total).unwrap_or(0);
    format!(
        "searching {}: {pct}% ({done_shown})  Esc stops",
        crate::text::escape_str(pattern)
    )
}

/// Viewer: decompression under way.
pub fn viewer_decoding(format: &str, got: &str) -> String {
    format!("decompressing {format}: {got} so far")
}

/// The viewer is for files.
pub const VIEW_NEEDS_FILE: &str = "the viewer shows files: select one in the file list";

// ----- the LUKS passphrase dialog -----

/// After a LUKS volume not unlocked, in the left pane.
pub const LOCKED_BADGE: &str = "locked";
/// The passphrase dialog's title.
pub fn passphrase_title(volume: &str) -> String {
    format!("Unlock {volume}")
}
/// The passphrase dialog's prompt.
pub const PASSPHRASE_PROMPT: &str = "Passphrase (not shown):";
/// The passphrase dialog's footer.
pub const FOOTER_PASSPHRASE: &str = "Enter unlock  Esc cancel";
/// While the keyslots are tried.
pub const PASSPHRASE_TRYING: &str = "trying the keyslots…";
/// Enter with nothing typed.
pub const PASSPHRASE_EMPTY: &str = "type the passphrase first (Esc cancels)";
/// No keyslot opened with the passphrase.
pub const PASSPHRASE_WRONG: &str = "wrong passphrase";
/// Tries left, after a wrong passphrase.
pub fn passphrase_tries_left(left: u32) -> String {
    format!("{left} {} left", if left == 1 { "try" } else { "tries" })
}
/// The dialog closed after the last try.
pub fn still_locked(volume: &str, why: &str) -> String {
    format!("{volume} stays locked: {why}")
}
/// The volume unlocked: what it holds shows beneath it.
pub fn unlocked(volume: &str) -> String {
    format!("{volume} unlocked; what it holds is shown beneath it")
}
/// The volume is not in the layout scanned again.
pub fn volume_gone(volume: &str) -> String {
    format!("{volume} is not found when the disks are read again")
}
/// The volume has no LUKS header any more.
pub fn not_luks(volume: &str) -> String {
    format!("{volume}: no LUKS header is read any more")
}
