//! Disks served over NBD: qemu-nbd and nbdkit (real servers, Debian
//! packages qemu-utils and nbdkit) serve the demo fixture over TCP on
//! 127.0.0.1 and over Unix sockets; what vmrescue reads through them must
//! equal what it reads from the file. Faults: read errors on a range
//! (nbdkit's ddrescue filter), a server killed mid-copy, a server that
//! wants TLS, an export that does not exist.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, fixture, vmrescue};
use crate::image_support::tree_digest;
use crate::nbd_support::{Listen, free_port, nbdkit, nbdkit_writable, qemu_nbd, qemu_nbd_writable};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `layers` table without its header and first row (the disk's name)
/// and without the description under it; columns (whose widths follow the
/// longest name) as single spaces.
fn table_rows(out: &str) -> Vec<String> {
    out.lines()
        .skip(2)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn layers_over_nbd_equal_layers_of_the_file() {
    let img = fixture("demo");
    let want = vmrescue(&["layers", img.to_str().unwrap()]);
    assert_eq!(want.status.code(), Some(0), "{}", text(&want.stderr));
    let want = table_rows(&text(&want.stdout));
    assert!(want.len() >= 5, "{want:?}");
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("q.sock");
    let ksock = tmp.path().join("k.sock");
    let servers = [
        qemu_nbd(&img, "demo", Listen::Tcp(free_port())),
        qemu_nbd(&img, "demo", Listen::Unix(&sock)),
        nbdkit(
            &[],
            &["file".into(), img.display().to_string()],
            &[],
            Listen::Tcp(free_port()),
        ),
        nbdkit(
            &[],
            &["file".into(), img.display().to_string()],
            &[],
            Listen::Unix(&ksock),
        ),
    ];
    for s in &servers {
        let got = vmrescue(&["layers", &s.uri]);
        assert_eq!(
            got.status.code(),
            Some(0),
            "{}: {}",
            s.uri,
            text(&got.stderr)
        );
        let out = text(&got.stdout);
        assert!(out.starts_with("NAME"), "{out}");
        assert!(out.lines().nth(1).unwrap().starts_with(&s.uri), "{out}");
        assert_eq!(table_rows(&out), want, "{}", s.uri);
        assert!(
            out.contains("nbd, dos partition table, NBD export"),
            "{out}"
        );
    }
    // `info` shows the export's size, name and flags.
    let info = vmrescue(&["info", &servers[0].uri]);
    assert_eq!(info.status.code(), Some(0), "{}", text(&info.stderr));
    let info = text(&info.stdout);
    assert!(info.contains("file format: nbd"), "{info}");
    assert!(
        info.contains("virtual size: 2 GiB (2147483648 bytes)"),
        "{info}"
    );
    assert!(info.contains("export: \"demo\""), "{info}");
    assert!(info.contains("read-only"), "{info}");
    let json = vmrescue(&["info", "--json", &servers[1].uri]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["format"], "nbd");
    assert_eq!(v["nbd"]["export"], "demo");
    assert_eq!(
        v["virtual-size"].as_u64().or(v["virtual_size"].as_u64()),
        Some(2 << 30)
    );
}

/// Copy `what` of the demo guest from `source` into a new directory under `tmp`.
fn copy_out(source: &str, what: &str, tmp: &Path, name: &str) -> (std::process::Output, PathBuf) {
    let dest = tmp.join(name);
    std::fs::create_dir(&dest).unwrap();
    let o = vmrescue(&["cp", source, what, dest.to_str().unwrap()]);
    (o, dest)
}

#[test]
fn files_copied_over_nbd_equal_the_file_copies() {
    let img = fixture("demo");
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("k.sock");
    let (o, want) = copy_out(img.to_str().unwrap(), "/", tmp.path(), "file");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // Device nodes are not hashed (opening /dev/console would block).
    std::fs::remove_dir_all(want.join("dev")).unwrap();
    let want = tree_digest(&want);
    assert!(want.len() > 20, "{want:?}");
    let servers = [
        qemu_nbd(&img, "demo", Listen::Tcp(free_port())),
        nbdkit(
            &[],
            &["file".into(), img.display().to_string()],
            &[],
            Listen::Unix(&sock),
        ),
    ];
    for (i, s) in servers.iter().enumerate() {
        let (o, got) = copy_out(&s.uri, "/", tmp.path(), &format!("nbd{i}"));
        assert_eq!(o.status.code(), Some(0), "{}: {}", s.uri, text(&o.stderr));
        std::fs::remove_dir_all(got.join("dev")).unwrap();
        assert_eq!(tree_digest(&got), want, "{}", s.uri);
    }
}

#[test]
fn holes_read_as_zeros() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sparse.img");
    let mut want = vec![0u8; 64 << 20];
    for (at, len) in [
        (1usize << 20, 5000usize),
        (40 << 20, 3 << 20),
        ((64 << 20) - 512, 512),
    ] {
        for (i, b) in want[at..at + len].iter_mut().enumerate() {
            *b = (i % 251) as u8 + 1;
        }
    }
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(want.len() as u64).unwrap();
        for (at, len) in [
            (1usize << 20, 5000usize),
            (40 << 20, 3 << 20),
            ((64 << 20) - 512, 512),
        ] {
            f.write_all_at(&want[at..at + len], at as u64).unwrap();
        }
    }
    let check = |uri: &str, expect_holes: bool| {
        let parsed = vmrescue::image::nbd::parse_uri(uri).unwrap();
        let n = vmrescue::image::nbd::Nbd::open(&parsed).unwrap();
        assert!(n.export().structured, "{uri}: no structured replies");
        use vmrescue::io::ReadAt;
        let mut got = vec![0xEEu8; want.len()];
        for (i, c) in got.chunks_mut(3 << 20).enumerate() {
            n.read_exact_at((i * (3 << 20)) as u64, c).unwrap();
        }
        assert!(got == want, "{uri}: bytes differ");
        // Small reads in the holes too (the block cache path).
        let mut small = [0xEEu8; 100];
        n.read_exact_at(20 << 20, &mut small).unwrap();
        assert_eq!(small, [0u8; 100]);
        if expect_holes {
            assert!(
                n.hole_bytes() >= 32 << 20,
                "{uri}: only {} bytes came as holes",
                n.hole_bytes()
            );
        }
    };
    // qemu-nbd sends the zeros of a sparse file as NBD_REPLY_TYPE_OFFSET_HOLE.
    let q = qemu_nbd(&path, "s", Listen::Tcp(free_port()));
    check(&q.uri, true);
    // nbdkit's sparse memory export (data plugin): mostly zeros.
    let k = nbdkit(
        &[],
        &[
            "data".into(),
            "data=@1048576 1 2 3 4 @41943040 9 9 9".into(),
            "size=64M".into(),
        ],
        &[],
        Listen::Tcp(free_port()),
    );
    let parsed = vmrescue::image::nbd::parse_uri(&k.uri).unwrap();
    let n = vmrescue::image::nbd::Nbd::open(&parsed).unwrap();
    use vmrescue::io::ReadAt;
    let mut got = vec![0xEEu8; 2 << 20];
    n.read_exact_at(0, &mut got).unwrap();
    assert_eq!(&got[1 << 20..(1 << 20) + 5], &[1, 2, 3, 4, 0]);
    assert!(got[..1 << 20].iter().all(|&b| b == 0));
    let mut nine = [0u8; 4];
    n.read_exact_at(40 << 20, &mut nine).unwrap();
    assert_eq!(nine, [9, 9, 9, 0]);
}

/// The byte offset of `guest_file`'s first block in the demo image, by debugfs.
fn demo_file_offset(img: &Path, lv_root_start: u64, guest_file: &str) -> u64 {
    let dev = format!("{}?offset={lv_root_start}", img.display());
    let o = Command::new("debugfs")
        .args(["-R", &format!("bmap {guest_file} 0"), &dev])
        .output()
        .expect("debugfs (e2fsprogs)");
    let block: u64 = text(&o.stdout).trim().parse().unwrap_or_else(|_| {
        panic!(
            "debugfs bmap {guest_file}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        )
    });
    lv_root_start + block * 4096
}

/// The start of vg_ta/lv_root in the demo image, from `layers --json`.
fn lv_root_start(img: &Path) -> u64 {
    let o = vmrescue(&["layers", "--json", img.to_str().unwrap()]);
    let out = text(&o.stdout);
    // The table shows it; the JSON is long: take the table instead.
    let _ = out;
    let o = vmrescue(&["layers", img.to_str().unwrap()]);
    let table = text(&o.stdout);
    let line = table
        .lines()
        .find(|l| l.contains("lv_root"))
        .unwrap_or_else(|| panic!("{table}"));
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn a_bad_range_fails_its_file_only() {
    let img = fixture("demo");
    let tmp = tempfile::tempdir().unwrap();
    let start = lv_root_start(&img);
    let bad = demo_file_offset(&img, start, "/etc/passwd");
    // A GNU ddrescue map: everything read ('+') but passwd's block ('-').
    let size = std::fs::metadata(&img).unwrap().len();
    let map = tmp.path().join("map");
    std::fs::write(
        &map,
        format!(
            "# Mapfile\n0x0 +\n0x0 {bad:#x} +\n{bad:#x} 0x1000 -\n{:#x} {:#x} +\n",
            bad + 4096,
            size - bad - 4096
        ),
    )
    .unwrap();
    let s = nbdkit(
        &["ddrescue"],
        &[
            "file".into(),
            img.display().to_string(),
            format!("ddrescue-mapfile={}", map.display()),
        ],
        &[],
        Listen::Tcp(free_port()),
    );
    let (o, dest) = copy_out(&s.uri, "/etc", tmp.path(), "out");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("passwd"), "{err}");
    assert!(err.contains(&s.uri), "the error names the source: {err}");
    assert!(
        err.contains(&format!("read of bytes {bad}..")),
        "the error names the range: {err}"
    );
    let etc = dest.join("etc");
    assert!(
        !etc.join("passwd").exists(),
        "a failed file is not left behind"
    );
    assert!(etc.join("group").exists() && etc.join("fstab").exists());
    for e in std::fs::read_dir(&etc).unwrap() {
        let name = e.unwrap().file_name();
        assert!(
            !name.to_string_lossy().contains(".vmrescue-"),
            "half-written file left: {name:?}"
        );
    }
    // What was copied equals the file's copy.
    let (o, want) = copy_out(img.to_str().unwrap(), "/etc", tmp.path(), "want");
    assert_eq!(o.status.code(), Some(0));
    std::fs::remove_file(want.join("etc/passwd")).unwrap();
    assert_eq!(tree_digest(&dest), tree_digest(&want));
}

#[test]
fn a_server_killed_mid_copy_ends_the_copy_with_an_error() {
    let img = fixture("demo");
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("k.sock");
    // 50 ms per read: the copy of / takes a while.
    let mut s = nbdkit(
        &["delay"],
        &[
            "file".into(),
            img.display().to_string(),
            "rdelay=50ms".into(),
        ],
        &[],
        Listen::Unix(&sock),
    );
    let dest = tmp.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vmrescue"))
        .args(["cp", &s.uri, "/", dest.to_str().unwrap()])
        .env("VMRESCUE_NBD_TIMEOUT", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let started = Instant::now();
    let mut child = child;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("vmrescue cp still running 30 s after the server died");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        matches!(status.code(), Some(1) | Some(2)),
        "{status:?}: {err}"
    );
    assert!(err.contains(&s.uri), "{err}");
    assert!(
        err.contains("closed the connection")
            || err.contains("Broken pipe")
            || err.contains("reset"),
        "{err}"
    );
    // Nothing half-written under a temporary name.
    let mut stack = vec![dest];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            assert!(
                !e.file_name().to_string_lossy().contains(".vmrescue-"),
                "half-written file left: {:?}",
                e.path()
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn tls_servers_and_unknown_exports_are_refused_clearly() {
    let img = fixture("demo");
    let tmp = tempfile::tempdir().unwrap();
    let psk = tmp.path().join("psk");
    std::fs::write(&psk, "alice:0123456789abcdef0123456789abcdef\n").unwrap();
    let tls_arg = format!("--tls-psk={}", psk.display());
    let s = nbdkit(
        &[],
        &["file".into(), img.display().to_string()],
        &["--tls=require", &tls_arg],
        Listen::Tcp(free_port()),
    );
    let o = vmrescue(&["layers", &s.uri]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("requires TLS"), "{err}");
    assert!(err.contains(&s.uri), "{err}");

    let q = qemu_nbd(&img, "demo", Listen::Tcp(free_port()));
    let other = q.uri.replace("/demo", "/nosuch");
    let o = vmrescue(&["layers", &other]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("export \"nosuch\""), "{err}");

    // Nobody listening.
    let o = vmrescue(&["layers", &format!("nbd://127.0.0.1:{}/x", free_port())]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot connect"), "{err}");

    let o = vmrescue(&["layers", "nbds://127.0.0.1/x"]);
    assert!(text(&o.stderr).contains("TLS is not supported"));
}

/// A single-client qemu-nbd already serving someone (a vmrescue browser,
/// say) takes a second connection into its backlog and never greets it:
/// said as that, not as a timed-out read.
#[test]
fn a_server_busy_with_another_client_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("demo.img");
    std::fs::copy(fixture("demo"), &img).unwrap();
    let s = qemu_nbd_writable(&img, "demo", tmp.path());
    let sock = tmp.path().join("demo.sock");
    // The first client: greeted, and holding the server.
    let mut first = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let mut magic = [0u8; 8];
    std::io::Read::read_exact(&mut first, &mut magic).unwrap();
    assert_eq!(&magic, b"NBDMAGIC");
    let o = vmrescue(&["layers", &s.uri]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&s.uri), "{err}");
    assert!(
        err.contains("accepted the connection but sent nothing")
            && err.contains("serving another client")
            && err.contains("--shared"),
        "{err}"
    );
    // Once it is free, the same command reads the disk.
    drop(first);
    let o = vmrescue(&["layers", &s.uri]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("ext"), "{}", text(&o.stdout));
}

#[test]
fn host_file_operations_refuse_an_nbd_disk() {
    let img = fixture("demo");
    let q = qemu_nbd(&img, "demo", Listen::Tcp(free_port()));
    let image = vmrescue::image::open(Path::new(&q.uri)).unwrap();
    assert_eq!(image.format, vmrescue::image::ImageFormat::Nbd);
    let layout = vmrescue::layers::scan(vec![image]);
    let disk = &layout.disks[0];
    assert!(disk.origin.host_path().is_none());
    // Loop devices and the in-use checks of host files ask this (a repair
    // reaches the export through its own writer instead).
    let e = disk.host_path("a loop device").unwrap_err().to_string();
    assert!(e.contains("served over NBD") && e.contains(&q.uri), "{e}");
    let e = vmrescue::engine::kernel::exposable(vmrescue::image::ImageFormat::Nbd).unwrap_err();
    assert!(e.contains("NBD"), "{e}");
}

/// A client that ends while read-ahead replies are still on their way waits
/// for them (after `NBD_CMD_DISC`) instead of closing under them: nbdkit
/// 1.32 aborts when a client closes in the middle of a reply, which took the
/// server down for the next command.
#[test]
fn the_server_outlives_commands_that_end_with_reads_in_flight() {
    // An ext4 image whose 24 MiB file is copied with read-ahead running
    // past its end (the image goes on).
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..24usize << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(tree.join("big.bin"), &data).unwrap();
    let img = tmp.path().join("big.img");
    let o = std::process::Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("128M")
        .output()
        .expect("mke2fs (e2fsprogs)");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let sock = tmp.path().join("k.sock");
    let s = nbdkit(
        &["delay"],
        &[
            "file".into(),
            img.display().to_string(),
            "rdelay=20ms".into(),
        ],
        &[],
        Listen::Unix(&sock),
    );
    for i in 0..4 {
        let (o, got) = copy_out(&s.uri, "/big.bin", tmp.path(), &format!("out{i}"));
        assert_eq!(
            o.status.code(),
            Some(0),
            "command {i} against the same server: {}",
            text(&o.stderr)
        );
        assert!(
            std::fs::read(got.join("big.bin")).unwrap() == data,
            "command {i}"
        );
    }
}

/// `vmrescue relink URI /lib64/libc.so.6 ARGS... --undo-dir DIR`.
fn relink_over(uri: &str, args: &[&str], undo: &Path) -> std::process::Output {
    let mut all = vec!["relink", uri, "/lib64/libc.so.6"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--undo-dir", undo.to_str().unwrap()]);
    vmrescue(&all)
}

/// `relink --yes` through `uri`: written; its undo record.
fn relink_yes(uri: &str, undo: &Path) -> PathBuf {
    let o = relink_over(uri, &["--yes"], undo);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("relinked /lib64/libc.so.6 -> libc-2.12.so"),
        "{out}"
    );
    common::undo_record(&out)
}

/// The relink and its undo through qemu-nbd with its default of one
/// client at a time (no `--shared`): the repair reads and writes on one
/// connection.
#[test]
fn relink_and_undo_write_through_a_writable_nbd_export() {
    use crate::image_support::{
        assert_e2fsck_clean, debugfs_target, files_in, sha256_file, volume_file,
    };
    let tmp = tempfile::tempdir().unwrap();
    let img = crate::common::fixture_copy("demo", tmp.path());
    let before = sha256_file(&img);
    let q = qemu_nbd_writable(&img, "demo", tmp.path());
    let undo_dir = tmp.path().join("undo");

    // The plan says that nobody can tell whether the guest uses the export.
    let o = relink_over(&q.uri, &["--dry-run"], &undo_dir);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("cannot tell whether the guest") && out.contains(&q.uri),
        "{out}"
    );
    assert!(out.contains(&format!("bytes of {}", q.uri)), "{out}");
    // Without --yes and without a terminal: refused.
    let o = relink_over(&q.uri, &[], &undo_dir);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(sha256_file(&img), before);

    let undo = relink_yes(&q.uri, &undo_dir);
    // The record is keyed by the URI.
    let record = std::fs::read_to_string(&undo).unwrap();
    assert!(
        record.contains(&format!("\"image\": \"{}\"", q.uri)),
        "{record}"
    );

    // The raw file behind the export holds the new target, and e2fsck is clean.
    let fs = volume_file(&img, "vg_ta/lv_root", tmp.path());
    assert_e2fsck_clean(&fs);
    assert_eq!(debugfs_target(&fs, "/lib64/libc.so.6"), b"libc-2.12.so");
    // Read through the export again.
    let o = vmrescue(&["ls", "-l", &q.uri, "/lib64/libc.so.6"]);
    assert!(
        text(&o.stdout).contains("-> libc-2.12.so"),
        "{}",
        text(&o.stdout)
    );

    // undo asks first (nobody can tell who uses the export), or takes --yes.
    let o = vmrescue(&["undo", undo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_ne!(sha256_file(&img), before);
    let o = vmrescue(&["undo", "--yes", undo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("cannot tell whether the guest"));
    assert_eq!(sha256_file(&img), before, "undo restores every byte");
    // Once is enough: a second undo is refused and changes nothing.
    let o = vmrescue(&["undo", "--yes", undo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("already undone"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(sha256_file(&img), before);
    assert_eq!(files_in(&undo_dir).len(), 1);
}

#[test]
fn relink_on_a_read_only_nbd_export_is_refused_and_writes_nothing() {
    use crate::image_support::{files_in, sha256_file};
    let tmp = tempfile::tempdir().unwrap();
    let img = crate::common::fixture_copy("demo", tmp.path());
    let before = sha256_file(&img);
    let q = qemu_nbd(&img, "demo", Listen::Tcp(free_port()));
    let undo_dir = tmp.path().join("undo");
    let o = relink_over(&q.uri, &["--yes"], &undo_dir);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the NBD server serves the export read-only (NBD_FLAG_READ_ONLY")
            && err.contains(&q.uri)
            && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(sha256_file(&img), before);
    assert!(files_in(&undo_dir).is_empty());
}

/// nbdkit states block sizes (minimum 4096, maximum payload 64 KiB) with
/// its blocksize-policy filter and answers EINVAL to any request that does
/// not keep to them (`blocksize-error-policy=error`); the blocksize filter
/// under it passes only such requests to the file. The relink's 256 bytes
/// go as a read-modify-write of whole blocks: the file behind the export
/// holds the new target, e2fsck finds it clean, and undo puts every byte back.
#[test]
fn relink_keeps_to_the_block_sizes_the_server_states() {
    use crate::image_support::{assert_e2fsck_clean, debugfs_target, sha256_file, volume_file};
    let tmp = tempfile::tempdir().unwrap();
    let img = crate::common::fixture_copy("demo", tmp.path());
    let before = sha256_file(&img);
    let sock = tmp.path().join("k.sock");
    let s = nbdkit_writable(
        &["blocksize-policy", "blocksize"],
        &[
            "file".into(),
            img.display().to_string(),
            "blocksize-error-policy=error".into(),
            "blocksize-minimum=4096".into(),
            "blocksize-maximum=65536".into(),
            "minblock=4096".into(),
            "maxdata=65536".into(),
        ],
        &[],
        Listen::Unix(&sock),
    );
    let info = vmrescue(&["info", &s.uri]);
    let out = text(&info.stdout);
    assert!(info.status.success(), "{out}{}", text(&info.stderr));
    assert!(
        out.contains("block sizes: minimum 4096") && out.contains("maximum 65536"),
        "{out}"
    );
    let undo_dir = tmp.path().join("undo");
    let undo = relink_yes(&s.uri, &undo_dir);
    let fs = volume_file(&img, "vg_ta/lv_root", tmp.path());
    assert_e2fsck_clean(&fs);
    assert_eq!(debugfs_target(&fs, "/lib64/libc.so.6"), b"libc-2.12.so");
    let o = vmrescue(&["undo", "--yes", undo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(sha256_file(&img), before, "undo restores every byte");
}
