//! Helpers for tests that check our results with real tools: hashing
//! images and trees, extracting a volume's bytes with dd at the offsets of
//! our mapping, asking e2fsprogs (e2fsck, debugfs, dumpe2fs) and, as root,
//! the kernel.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use vmrescue::io::Target;

/// SHA-256 of a whole file, hex.
pub fn sha256_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read image");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Run a tool; panics (naming the Debian package) when it cannot start.
pub fn tool(name: &str, args: &[&str], package: &str) -> std::process::Output {
    Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name} (Debian package {package}): {e}"))
}

/// The byte ranges of a volume on its image, from our mapping: (start in
/// the volume, offset in the image, length). Only linear segments on the
/// first disk (the fixtures used here have nothing else).
pub fn volume_ranges(image: &Path, volume: &str) -> Vec<(u64, u64, u64)> {
    let img = vmrescue::image::open(image).expect("open image");
    let layout = vmrescue::layers::scan(vec![img]);
    let v = layout
        .volumes
        .iter()
        .find(|v| v.name == volume)
        .unwrap_or_else(|| panic!("volume {volume} in {}", image.display()));
    v.mapping
        .segments()
        .iter()
        .map(|s| match &s.target {
            Target::Linear(a) => {
                assert_eq!(a.disk.0, 0, "one disk");
                (s.start, a.offset, s.len)
            }
            t => panic!("{volume}: segment {t:?} is not linear"),
        })
        .collect()
}

/// A file holding the bytes of `volume` (or the image itself for `disk0`),
/// copied out with dd at the offsets of our mapping.
pub fn volume_file(image: &Path, volume: &str, dir: &Path) -> PathBuf {
    if volume == "disk0" {
        return image.to_path_buf();
    }
    let out = dir.join(format!("{}.fs", volume.replace('/', "_")));
    let _ = std::fs::remove_file(&out);
    for (start, offset, len) in volume_ranges(image, volume) {
        let o = tool(
            "dd",
            &[
                &format!("if={}", image.display()),
                &format!("of={}", out.display()),
                "bs=1M",
                "iflag=skip_bytes,count_bytes",
                "oflag=seek_bytes",
                "conv=sparse,notrunc",
                "status=none",
                &format!("skip={offset}"),
                &format!("seek={start}"),
                &format!("count={len}"),
            ],
            "coreutils",
        );
        assert!(
            o.status.success(),
            "dd: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    out
}

/// `e2fsck -fn` on a filesystem file: panics with its report unless clean.
pub fn assert_e2fsck_clean(fs: &Path) {
    let o = tool("e2fsck", &["-fn", fs.to_str().unwrap()], "e2fsprogs");
    assert!(
        o.status.success(),
        "e2fsck -fn {} is not clean:\n{}{}",
        fs.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `debugfs -R REQUEST fs`: its output.
pub fn debugfs(fs: &Path, request: &str) -> String {
    let o = tool(
        "debugfs",
        &["-R", request, fs.to_str().unwrap()],
        "e2fsprogs",
    );
    assert!(o.status.success(), "debugfs -R {request:?} failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The target of a symlink as debugfs reads it: `Fast link dest` for fast
/// symlinks, the data (`cat`) for the others; checks `Size:` too.
pub fn debugfs_target(fs: &Path, link: &str) -> Vec<u8> {
    let stat = debugfs(fs, &format!("stat {link}"));
    assert!(stat.contains("Type: symlink"), "{link}: {stat}");
    let size: usize = stat
        .split("Size: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no size in {stat}"));
    let target = if let Some(rest) = stat.split("Fast link dest: \"").nth(1) {
        rest.rsplit_once('"')
            .map(|(t, _)| t)
            .unwrap_or("")
            .as_bytes()
            .to_vec()
    } else {
        let o = tool(
            "debugfs",
            &["-R", &format!("cat {link}"), fs.to_str().unwrap()],
            "e2fsprogs",
        );
        o.stdout
    };
    assert_eq!(target.len(), size, "{link}: i_size and target length");
    target
}

/// Whether the filesystem has a feature, as dumpe2fs lists them.
pub fn has_feature(fs: &Path, feature: &str) -> bool {
    let o = tool("dumpe2fs", &["-h", fs.to_str().unwrap()], "e2fsprogs");
    let text = String::from_utf8_lossy(&o.stdout);
    text.lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .is_some_and(|l| l.split_whitespace().any(|w| w == feature))
}

/// Files in a directory (none when it does not exist).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// As root: the target of `link` as the kernel reads it, from a read-only
/// loop device over `fs_file` mounted `ro` (and `noload` with a journal).
pub fn kernel_readlink(fs_file: &Path, link: &str) -> Vec<u8> {
    let o = tool(
        "losetup",
        &["-f", "--show", "-r", fs_file.to_str().unwrap()],
        "util-linux",
    );
    assert!(
        o.status.success(),
        "losetup: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let mnt = tempfile::tempdir().unwrap();
    // noload keeps the journal as it is; ext2 has none (and refuses the option).
    let opts = if has_feature(fs_file, "has_journal") {
        "ro,noload"
    } else {
        "ro"
    };
    let m = tool(
        "mount",
        &["-o", opts, &dev, mnt.path().to_str().unwrap()],
        "mount",
    );
    let result = if m.status.success() {
        let r = std::fs::read_link(mnt.path().join(link.trim_start_matches('/')));
        let _ = tool("umount", &[mnt.path().to_str().unwrap()], "mount");
        Some(r)
    } else {
        None
    };
    let _ = tool("losetup", &["-d", &dev], "util-linux");
    let r = result
        .unwrap_or_else(|| panic!("mount {dev} failed: {}", String::from_utf8_lossy(&m.stderr)));
    use std::os::unix::ffi::OsStrExt;
    r.unwrap_or_else(|e| panic!("readlink {link}: {e}"))
        .as_os_str()
        .as_bytes()
        .to_vec()
}

/// Every entry below `root` as (relative path, type, permissions, size,
/// SHA-256 of the contents or the link target), sorted: two trees with the
/// same digest hold the same files.
pub fn tree_digest(root: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.is_dir() {
                stack.push(p.clone());
                format!("dir {:o}", m.permissions().mode() & 0o7777)
            } else if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else {
                format!(
                    "file {:o} {} {}",
                    m.permissions().mode() & 0o7777,
                    m.len(),
                    sha256_file(&p)
                )
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

/// `debugfs -R "rdump GUEST_DIR OUT"` of a filesystem file: the reference
/// copy a real tool takes out. Returns OUT/<last component of GUEST_DIR>.
pub fn rdump(fs: &Path, guest_dir: &str, out: &Path) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    let o = tool(
        "debugfs",
        &[
            "-R",
            &format!("rdump {guest_dir} {}", out.display()),
            fs.to_str().unwrap(),
        ],
        "e2fsprogs",
    );
    assert!(
        o.status.success(),
        "debugfs rdump: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.join(guest_dir.rsplit('/').next().unwrap_or(guest_dir))
}
