//! Kernel-engine commands: `mount`, `cleanup`, and the hidden `walk`
//! (every file with its SHA-256, for engine parity).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use clap::Args;
use sha2::{Digest, Sha256};
use vmrescue::engine::{EngineChoice, Engines, kernel};
use vmrescue::fs::FsOptions;
use vmrescue::fs::{FileType, FsView, NodeId, path};
use vmrescue::text::escape;

use super::{Target, exit, open_volume, report};

/// Arguments of `mount`.
#[derive(Args, Debug)]
pub(super) struct MountArgs {
    #[command(flatten)]
    target: Target,
    /// The volume to mount (default: the guest root, or the only filesystem).
    #[arg(long, value_name = "V")]
    volume: Option<String>,
}

/// Arguments of `cleanup`.
#[derive(Args, Debug)]
pub(super) struct CleanupArgs {
    /// Only say what would be removed.
    #[arg(long)]
    dry_run: bool,
}

/// Arguments of `walk`.
#[derive(Args, Debug)]
pub(super) struct WalkArgs {
    #[command(flatten)]
    target: Target,
    /// The volume to walk.
    #[arg(long, value_name = "V")]
    volume: Option<String>,
    /// Go at most this many directories deep (the root's entries are depth 1).
    #[arg(long, value_name = "N")]
    max_depth: Option<usize>,
    /// Do not read file contents (no SHA-256 column).
    #[arg(long)]
    no_hash: bool,
}

/// Run `mount` (or `map` when not `mount_it`).
pub(super) fn mount(args: &MountArgs, mount_it: bool) -> u8 {
    let cmd = if mount_it { "mount" } else { "map" };
    if args.target.source.engine == EngineChoice::Userspace {
        report(&format!(
            "`{cmd}` works through the kernel engine only (leave out --engine userspace)"
        ));
        return exit::ERROR;
    }
    let engines = Engines::new(EngineChoice::Kernel);
    let (layout, id) = match open_volume(&args.target, args.volume.as_deref(), &engines) {
        Ok(x) => x,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    if let Err(why) = vmrescue::engine::kernel_available() {
        report(&why);
        return exit::ERROR;
    }
    let session = match engines.kernel() {
        Ok(s) => s,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let v = layout.volume(id);
    if mount_it {
        let dir = match session.mount(&layout, id, false) {
            Ok(d) => d,
            Err(e) => {
                report(&e);
                return exit::ERROR;
            }
        };
        outln!("{}", dir.display());
        let _ = std::io::stdout().flush();
        eprintln!(
            "vmrescue: {} ({}) is mounted read-only at {}; press Ctrl-C to unmount",
            v.name,
            v.content.kind.name(),
            dir.display()
        );
    } else {
        let dev = match session.map(&layout, id, false) {
            Ok(d) => d,
            Err(e) => {
                report(&e);
                return exit::ERROR;
            }
        };
        outln!("{}", dev.node().display());
        let _ = std::io::stdout().flush();
        let how = match &dev {
            kernel::VolumeDevice::Dm(d) => format!("device-mapper {}", d.name),
            kernel::VolumeDevice::Loop { .. } => "a loop device over its bytes".to_string(),
        };
        eprintln!(
            "vmrescue: {} is mapped read-only as {} ({how}); press Ctrl-C to remove it",
            v.name,
            dev.node().display(),
        );
    }
    // The signal watcher tears the session down and ends the process.
    loop {
        std::thread::park();
    }
}

/// Run `cleanup`.
pub(super) fn cleanup(args: &CleanupArgs) -> u8 {
    if !nix::unistd::Uid::effective().is_root() {
        report(&"cleanup removes mounts and devices: run it as root");
        return exit::ERROR;
    }
    let r = kernel::state::cleanup(Path::new(kernel::state::RUN_DIR), args.dry_run);
    for l in &r.removed {
        outln!("{l}");
    }
    for l in &r.skipped {
        eprintln!("vmrescue: {l}");
    }
    for p in &r.problems {
        report(p);
    }
    if r.removed.is_empty() && r.problems.is_empty() {
        outln!("nothing to clean up");
    }
    if r.problems.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "file",
        FileType::Directory => "dir",
        FileType::Symlink => "link",
        FileType::CharDevice => "chr",
        FileType::BlockDevice => "blk",
        FileType::Fifo => "fifo",
        FileType::Socket => "sock",
        FileType::Unknown => "unknown",
    }
}

fn sha256(fs: &dyn FsView, node: NodeId, size: u64) -> vmrescue::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < size {
        let n = fs.read_at(node, off, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// One line per node: path, type, permissions, size, link target, SHA-256;
/// sorted by path. Problems are returned separately.
pub(super) fn manifest(
    fs: &dyn FsView,
    max_depth: Option<usize>,
    hash: bool,
) -> (Vec<(Vec<u8>, String)>, Vec<String>) {
    const MAX_NODES: usize = 10_000_000;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<(NodeId, Vec<u8>, usize)> = vec![(fs.root(), b"/".to_vec(), 0)];
    while let Some((node, p, depth)) = stack.pop() {
        if out.len() >= MAX_NODES {
            problems.push(format!("stopped after {MAX_NODES} entries"));
            break;
        }
        let meta = match fs.metadata(node) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{}: {e}", escape(&p)));
                continue;
            }
        };
        let mut target = String::new();
        let mut digest = String::new();
        match meta.file_type {
            FileType::Symlink => match fs.read_link(node) {
                Ok(t) => target = escape(&t),
                Err(e) => problems.push(format!("{}: {e}", escape(&p))),
            },
            FileType::Regular if hash => match sha256(fs, node, meta.size) {
                Ok(d) => digest = d,
                Err(e) => problems.push(format!("{}: {e}", escape(&p))),
            },
            _ => {}
        }
        let size = if meta.file_type == FileType::Directory {
            "-".to_string()
        } else {
            meta.size.to_string()
        };
        out.push((
            p.clone(),
            format!(
                "{}\t{}\t{:04o}\t{}\t{}\t{}",
                escape(&p),
                type_name(meta.file_type),
                meta.perm,
                size,
                target,
                digest
            ),
        ));
        if meta.file_type == FileType::Directory
            && max_depth.is_none_or(|m| depth < m)
            && seen.insert(node)
        {
            match fs.read_dir(node) {
                Ok(entries) => {
                    for e in entries {
                        stack.push((e.node, path::join(&p, &e.name), depth + 1));
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", escape(&p))),
            }
        }
    }
    out.sort();
    (out, problems)
}

/// Run `walk`.
pub(super) fn walk(args: &WalkArgs) -> u8 {
    let engines = Engines::new(args.target.source.engine);
    let (layout, id) = match open_volume(&args.target, args.volume.as_deref(), &engines) {
        Ok(x) => x,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let decision = engines.decide(&layout, id);
    let fs = match engines.open_fs(&layout, id, &FsOptions::default()) {
        Ok(fs) => fs,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    if let Some(e) = decision.engine {
        eprintln!(
            "vmrescue: {}: {} engine ({})",
            layout.volume(id).name,
            e.name(),
            decision.reason
        );
    }
    let (lines, problems) = manifest(&*fs, args.max_depth, !args.no_hash);
    let mut stdout = std::io::stdout().lock();
    for (_, l) in &lines {
        if writeln!(stdout, "{l}").is_err() {
            return exit::ERROR;
        }
    }
    drop(stdout);
    drop(fs);
    let mut problems = problems;
    problems.extend(engines.close());
    for p in &problems {
        report(p);
    }
    if problems.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}
