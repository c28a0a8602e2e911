//! Shell completions and man pages, generated from the command grammar
//! itself, so they never disagree with `--help`.
//!
//! `vmrescue completions SHELL` prints a completion script; the hidden
//! `vmrescue man DIR` writes `vmrescue.1` and one `vmrescue-COMMAND.1` per
//! visible command (what `scripts/release` packs into the `.deb`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, exit, report};

/// `vmrescue completions`.
#[derive(Args, Debug)]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

/// `vmrescue man`.
#[derive(Args, Debug)]
pub(crate) struct ManArgs {
    /// The directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Print the completion script for a shell.
pub(super) fn completions(args: &CompletionsArgs) -> u8 {
    let mut cmd = visible_command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "vmrescue", &mut out);
    out!("{}", String::from_utf8_lossy(&out));
    exit::OK
}

/// The grammar without its hidden commands (clap_complete would offer
/// them): the same arguments and visible subcommands on a new root.
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new("vmrescue")
        .version(full.get_version().map(str::to_string).unwrap_or_default())
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true);
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    for a in full.get_arguments() {
        cmd = cmd.arg(a.clone());
    }
    for s in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(s.clone());
    }
    cmd
}

/// Write the man pages into a directory.
pub(super) fn man(args: &ManArgs) -> u8 {
    match write_pages(&args.dir) {
        Ok(written) => {
            for p in written {
                outln!("{}", p.display());
            }
            exit::OK
        }
        Err(e) => {
            report(&format!("{}: {e}", args.dir.display()));
            exit::ERROR
        }
    }
}

/// The story the pages' EXAMPLES tell: a guest that no longer boots.
const STORY: &[(&str, &str)] = &[
    (
        "What is on the disk of VM 108 (its layers, filesystems and the guest's mount table):",
        "vmrescue layers /var/lib/vz/images/108/vm-108-disk-0.qcow2",
    ),
    (
        "Browse it, mark files and copy them out, in the full-screen browser:",
        "vmrescue /var/lib/vz/images/108/vm-108-disk-0.qcow2",
    ),
    (
        "On a Proxmox VE host, the same by VM ID (all of its disks):",
        "vmrescue 108",
    ),
    (
        "Why won't it boot? The findings, most urgent first, each with its repair:",
        "vmrescue doctor 108",
    ),
    (
        "Save the database before anything else:",
        "vmrescue cp 108 /var/lib/mysql ./rescued/",
    ),
    (
        "Restore the broken library link the doctor found (a plan, then a question):",
        "vmrescue relink 108 /lib64/libc.so.6",
    ),
    (
        "Put the old bytes back if the guest is worse afterwards (relink printed the undo file's path):",
        "vmrescue undo ~/.local/state/vmrescue/undo/FILE.json",
    ),
];

/// Per command, the examples its own page shows.
fn examples(command: &str) -> Vec<(&'static str, &'static str)> {
    let pick = |words: &[&str]| -> Vec<(&'static str, &'static str)> {
        STORY
            .iter()
            .filter(|(_, cmd)| words.iter().any(|w| cmd.starts_with(w)))
            .copied()
            .collect()
    };
    match command {
        "vmrescue" => STORY.to_vec(),
        "layers" => {
            let mut v = pick(&["vmrescue layers"]);
            v.push((
                "The same as data, for scripts:",
                "vmrescue layers --json host.img",
            ));
            v
        }
        "ls" => vec![
            (
                "The guest's /etc, as `ls -l` shows it:",
                "vmrescue ls -l vm-108-disk-0.qcow2 /etc",
            ),
            (
                "One volume alone, by the name the guest gives it:",
                "vmrescue ls vm-108-disk-0.qcow2 --volume /dev/vg_ta/lv_home /",
            ),
        ],
        "cat" => vec![(
            "A guest file on standard output:",
            "vmrescue cat vm-108-disk-0.qcow2 /etc/fstab",
        )],
        "find" => vec![(
            "What changed in the last day under /etc:",
            "vmrescue find vm-108-disk-0.qcow2 /etc -mtime -1",
        )],
        "cp" => pick(&["vmrescue cp"]),
        "doctor" => pick(&["vmrescue doctor", "vmrescue relink"]),
        "relink" => pick(&["vmrescue relink", "vmrescue undo"]),
        "undo" => pick(&["vmrescue undo"]),
        "info" => vec![
            (
                "Format, sizes, backing chain, snapshots and locks of a VM disk:",
                "vmrescue info /var/lib/vz/images/108/vm-108-disk-0.qcow2",
            ),
            (
                "The same as JSON:",
                "vmrescue info --output json vm-108-disk-0.qcow2",
            ),
        ],
        "mount" => vec![(
            "Mount the guest's root read-only through the kernel (as root) until Ctrl-C:",
            "vmrescue mount vm-108-disk-0.qcow2",
        )],
        "map" => vec![(
            "A read-only block device for fsck -n (as root) until Ctrl-C:",
            "vmrescue map vm-108-disk-0.qcow2 --volume vg_ta/lv_root",
        )],
        "cleanup" => vec![(
            "Remove what a killed session left behind (as root):",
            "vmrescue cleanup",
        )],
        "completions" => vec![(
            "Completions for bash, for this shell:",
            "source <(vmrescue completions bash)",
        )],
        _ => Vec::new(),
    }
}

/// Render one page: clap's sections, then EXAMPLES and SEE ALSO.
fn page(cmd: &clap::Command, name: &str, title: &str, see_also: &[String]) -> Vec<u8> {
    let man = clap_mangen::Man::new(cmd.clone()).title(title.to_uppercase());
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render(&mut out);
    let ex = examples(name);
    if !ex.is_empty() {
        let mut roff = roff::Roff::new();
        roff.control("SH", ["EXAMPLES"]);
        for (what, how) in ex {
            roff.control("TP", [] as [&str; 0]);
            roff.text([roff::roman(what)]);
            roff.control("IP", [] as [&str; 0]);
            roff.text([roff::bold(how)]);
        }
        let _ = out.write_all(roff.render().as_bytes());
    }
    if !see_also.is_empty() {
        let mut roff = roff::Roff::new();
        roff.control("SH", ["SEE ALSO"]);
        let refs: Vec<String> = see_also.iter().map(|s| format!("{s}(1)")).collect();
        roff.text([roff::roman(refs.join(", "))]);
        let _ = out.write_all(roff.render().as_bytes());
    }
    out
}

/// Write `vmrescue.1` and a page per visible command into `dir`.
fn write_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let sub_pages: Vec<String> = subs
        .iter()
        .map(|s| format!("vmrescue-{}", s.get_name()))
        .collect();
    let mut written = Vec::new();
    let top = page(&cmd, "vmrescue", "vmrescue", &sub_pages);
    let path = dir.join("vmrescue.1");
    std::fs::write(&path, top)?;
    written.push(path);
    for s in subs {
        let full = format!("vmrescue-{}", s.get_name());
        let named = s
            .clone()
            .name(full.clone())
            .version(cmd.get_version().map(str::to_string).unwrap_or_default());
        let bytes = page(&named, s.get_name(), &full, &["vmrescue".to_string()]);
        let path = dir.join(format!("{full}.1"));
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}
