//! Ceph RBD images as image sources, against a one-node cluster that
//! `tests/rbd/cluster.sh` starts (and this test stops): the seed-shaped
//! guest disk imported as `rbd/guest`, snapshot `before`, then a write into
//! the head. Needs the packages of scripts/lib.sh's TEST_PACKAGES; fails
//! with the script's reason and log tails when the cluster cannot start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::common::{self, fixture, vmrescue};
use crate::rbd_support::{Cluster, pve_tree};
use vmrescue::io::ReadAt;

fn run(args: &[String]) -> (i32, String, String) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vmrescue(&a);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn with(cmd: &[&str], cluster: &Cluster) -> Vec<String> {
    let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    v.extend(cluster.args());
    v
}

/// SHA-256 of every regular file under `dir`, by relative path.
fn sums(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                let bytes = std::fs::read(e.path()).unwrap();
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, Sha256::digest(&bytes).to_vec());
            }
        }
    }
    out
}

/// The table rows of `layers` without the disk's own name and format (the
/// first two rows' first cells differ: `guest-a.img`/`raw` and `guest`/`rbd`).
fn volume_rows(out: &str) -> Vec<String> {
    out.lines()
        .skip(2)
        .take_while(|l| l.starts_with(['├', '└', '│', ' ']))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn rbd_image_reads_like_its_raw_file_with_snapshot_errors_and_watchers() {
    let raw = fixture("guest-a");
    let cluster = Cluster::start(&raw);
    let spec = "rbd:rbd/guest";

    // layers: the same volumes as the raw file.
    let (code, rbd_layers, err) = run(&with(&["layers", spec], &cluster));
    let (layers_code, raw_layers, _) = run(&["layers".into(), raw.display().to_string()]);
    assert_eq!(code, layers_code, "{err}");
    let rows = volume_rows(&rbd_layers);
    assert!(rows.len() >= 8, "{rbd_layers}");
    assert_eq!(rows, volume_rows(&raw_layers), "{rbd_layers}\n{raw_layers}");
    assert!(
        rbd_layers.contains("Ceph RBD rbd/guest as client.vmrescue")
            && rbd_layers.contains("1 snapshot: ")
            && rbd_layers.contains("\"before\""),
        "{rbd_layers}"
    );

    // cp: every file's SHA-256 equal to the raw file's copy.
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (out.path().join("rbd"), out.path().join("raw"));
    let (code, _, err) = run(&with(&["cp", spec, "/", a.to_str().unwrap()], &cluster));
    let (cp_code, _, raw_err) = run(&[
        "cp".into(),
        raw.display().to_string(),
        "/".into(),
        b.display().to_string(),
    ]);
    assert_eq!(code, cp_code, "{err}\n{raw_err}");
    let (sa, sb) = (sums(&a), sums(&b));
    assert!(sa.len() > 20, "{err}");
    assert_eq!(sa, sb);

    // The snapshot shows the bytes from before the write into the head.
    let mut want = vec![0u8; 4096];
    std::fs::File::open(&raw)
        .and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut want, 512 * 1024))
        .unwrap();
    let ceph = vmrescue::image::rbd::CephOptions {
        conf: Some(cluster.conf()),
        id: Some("vmrescue".into()),
        keyring: Some(cluster.keyring()),
    };
    let open = |snapshot: Option<&str>| {
        vmrescue::image::open_with(
            Path::new(spec),
            &vmrescue::image::OpenOptions {
                snapshot: snapshot.map(str::to_string),
                ceph: ceph.clone(),
            },
        )
        .unwrap()
    };
    let mut got = vec![0u8; 4096];
    let head = open(None);
    assert_eq!(head.format, vmrescue::image::ImageFormat::Rbd);
    assert_eq!(head.source.size(), std::fs::metadata(&raw).unwrap().len());
    head.source.read_exact_at(512 * 1024, &mut got).unwrap();
    assert!(got.starts_with(b"vmrescue-rbd-head"), "head not written");
    let snap = open(Some("before"));
    assert_eq!(snap.snapshot.as_deref(), Some("before"));
    snap.source.read_exact_at(512 * 1024, &mut got).unwrap();
    assert_eq!(got, want, "the snapshot should show the imported bytes");
    let (code, layers, err) = run(&with(&["layers", spec, "--snapshot", "before"], &cluster));
    assert_eq!(code, layers_code, "{err}");
    assert!(layers.contains("showing snapshot \"before\""), "{layers}");
    // The same snapshot named in the spec, in QEMU's option syntax.
    let qemu_style = format!(
        "rbd:rbd/guest@before:conf={}:id=vmrescue:keyring={}",
        cluster.conf().display(),
        cluster.keyring().display()
    );
    let (code, layers, err) = run(&["layers".into(), qemu_style]);
    assert_eq!(code, layers_code, "{err}");
    assert!(layers.contains("showing snapshot \"before\""), "{layers}");

    // info lists the snapshot.
    let (code, info, err) = run(&with(&["info", spec], &cluster));
    assert_eq!(code, 0, "{err}");
    assert!(
        info.contains("file format: rbd")
            && info.contains("before")
            && !info.contains("1970-01-01"),
        "{info}"
    );

    // Clear errors: wrong pool, image, snapshot, keyring.
    for (cmd, want) in [
        (
            with(&["layers", "rbd:nopool/guest"], &cluster),
            "pool \"nopool\" does not exist",
        ),
        (
            with(&["layers", "rbd:rbd/nope"], &cluster),
            "no image \"nope\" in pool \"rbd\"",
        ),
        (
            with(&["layers", "rbd:rbd/guest@gone"], &cluster),
            "no snapshot \"gone\" (the image has before)",
        ),
    ] {
        let (code, _, err) = run(&cmd);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(err.contains(want), "{cmd:?}: {err}");
    }
    // The admin keyring holds no key for client.vmrescue.
    let (code, _, err) = run(&[
        "layers".into(),
        spec.into(),
        "--ceph-conf".into(),
        cluster.conf().display().to_string(),
        "--ceph-id".into(),
        "vmrescue".into(),
        "--keyring".into(),
        cluster.dir.path().join("keyring").display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("connecting to the Ceph cluster as client.vmrescue")
            && err.contains("wrong key or keyring"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "layers".into(),
        spec.into(),
        "--ceph-conf".into(),
        cluster.conf().display().to_string(),
        "--keyring".into(),
        "/nonexistent/keyring".into(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the keyring /nonexistent/keyring does not exist"),
        "{err}"
    );

    // client.vmrescue may only read (`profile rbd-read-only`): the repair
    // fails and the link is as it was.
    let undo = out.path().join("undo");
    let ls_link = || run(&with(&["ls", "-l", spec, "/root/notes-link"], &cluster)).1;
    let link_before = ls_link();
    let (code, _, err) = run(&with(
        &[
            "relink",
            spec,
            "/root/notes-link",
            "--to",
            "/etc/hostname",
            "--yes",
            "--undo-dir",
            undo.to_str().unwrap(),
        ],
        &cluster,
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("rbd:rbd/guest") && err.contains("Operation not permitted"),
        "{err}"
    );
    assert_eq!(ls_link(), link_before);

    // A client watching the image (a running VM's librbd): a warning.
    let watch = Held::watch(&cluster);
    let mut warned = String::new();
    // Bounded: the watch registers within seconds.
    for _ in 0..50 {
        let (_, _, err) = run(&with(&["layers", spec], &cluster));
        if err.contains("is in use (Ceph RBD image in use by client.") {
            warned = err;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(watch);
    assert!(
        warned.contains("warning: rbd:rbd/guest is in use (Ceph RBD image in use by client.")
            && warned.contains("(watch)"),
        "no in-use warning while `rbd watch` held the image"
    );
}

/// A command holding the image until dropped (`rbd watch` needs its stdin
/// open).
struct Held(std::process::Child);

impl Held {
    fn watch(cluster: &Cluster) -> Held {
        Held(
            Command::new("rbd")
                .arg("-c")
                .arg(cluster.conf())
                .args(["watch", "rbd/guest"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rbd -c CONF ARGS...` as the cluster's admin; panics on failure.
fn rbd_admin(cluster: &Cluster, args: &[&str]) {
    let out = Command::new("rbd")
        .arg("-c")
        .arg(cluster.conf())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rbd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The status of guest 108 in the tree at `root`, as `vmrescue` alone lists it.
fn status_108(root: &Path) -> vmrescue::pve::Status {
    let guests = vmrescue::pve::list(&vmrescue::pve::Host::new(root)).unwrap();
    guests
        .into_iter()
        .find(|g| g.vmid == 108)
        .map(|g| g.status)
        .unwrap()
}

/// Wait (bounded) until guest 108 is listed as running; its reason.
fn running_108(root: &Path) -> String {
    for _ in 0..50 {
        if let vmrescue::pve::Status::Running(why) = status_108(root) {
            return why;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("guest 108 was never listed as running");
}

#[test]
fn a_proxmox_guest_on_rbd_storage_opens_and_is_running_while_held() {
    let raw = fixture("guest-a");
    let cluster = Cluster::start(&raw);
    let (_pve, root) = pve_tree(&cluster);
    let pve_run = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(["--pve-root".to_string(), root.display().to_string()]);
        run(&all)
    };

    // layers, ls and cp of `108` read the image on the cluster.
    let (code, layers, err) = pve_run(&["layers", "108"]);
    assert_eq!(code, 0, "{err}");
    let (_, raw_layers, _) = run(&["layers".into(), raw.display().to_string()]);
    assert_eq!(volume_rows(&layers), volume_rows(&raw_layers), "{layers}");
    assert!(
        layers.contains("Ceph RBD rbd/guest as client.vmrescue"),
        "{layers}"
    );
    let (code, ls, err) = pve_run(&["ls", "108", "/etc"]);
    assert_eq!(code, 0, "{err}");
    let (_, raw_ls, _) = run(&["ls".into(), raw.display().to_string(), "/etc".into()]);
    assert!(ls.contains("hostname"), "{ls}");
    assert_eq!(ls, raw_ls);
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (out.path().join("rbd"), out.path().join("raw"));
    let (code, _, err) = pve_run(&["cp", "108", "/etc", a.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&[
        "cp".into(),
        raw.display().to_string(),
        "/etc".into(),
        b.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let sa = sums(&a);
    assert!(sa.len() >= 5, "{sa:?}");
    assert_eq!(sa, sums(&b));

    // Nobody else has it: stopped, in the guest list too.
    assert_eq!(status_108(&root), vmrescue::pve::Status::Stopped);
    let (code, list, err) = pve_run(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        list.contains("108   VM    on-ceph") && list.contains("stopped"),
        "{list}"
    );

    // A lock taken with `rbd lock add` (as a VM's librbd takes the
    // exclusive lock): running, naming the client and its address.
    rbd_admin(&cluster, &["lock", "add", "rbd/guest", "vmrescue-test"]);
    let why = running_108(&root);
    assert!(
        why.starts_with("scsi0: Ceph RBD image in use by client.")
            && why.contains(" at 127.0.0.1:")
            && why.contains("(exclusive lock \"vmrescue-test\")"),
        "{why}"
    );
    let (code, list, err) = pve_run(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        list.contains("running") && list.contains("exclusive lock \"vmrescue-test\""),
        "{list}"
    );
    // The lock's client, from `rbd lock ls`, to remove it.
    let locker = why
        .trim_start_matches("scsi0: Ceph RBD image in use by ")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    rbd_admin(
        &cluster,
        &["lock", "remove", "rbd/guest", "vmrescue-test", &locker],
    );
    assert_eq!(status_108(&root), vmrescue::pve::Status::Stopped);

    // A watcher (a running VM's librbd, `rbd watch`): running too.
    let watch = Held::watch(&cluster);
    let why = running_108(&root);
    assert!(
        why.starts_with("scsi0: Ceph RBD image in use by client.") && why.contains("(watch)"),
        "{why}"
    );
    drop(watch);
}

/// `--ceph-conf`, `--ceph-id admin`: the cluster's admin, who may write.
fn admin_args(cluster: &Cluster) -> Vec<String> {
    vec![
        "--ceph-conf".into(),
        cluster.conf().display().to_string(),
        "--ceph-id".into(),
        "admin".into(),
    ]
}

/// `rbd export rbd/guest` into `dir/name`; its path.
fn export(cluster: &Cluster, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let _ = std::fs::remove_file(&out);
    rbd_admin(
        cluster,
        &[
            "export",
            "--no-progress",
            "rbd/guest",
            out.to_str().unwrap(),
        ],
    );
    out
}

#[test]
fn relink_and_undo_write_an_rbd_image_unless_another_client_holds_it() {
    use crate::image_support::{
        assert_e2fsck_clean, debugfs_target, files_in, sha256_file, volume_file,
    };
    let cluster = Cluster::start(&fixture("demo"));
    let tmp = tempfile::tempdir().unwrap();
    let undo_dir = tmp.path().join("undo");
    let before = sha256_file(&export(&cluster, tmp.path(), "before.raw"));
    let relink = |spec: &str| {
        let mut a: Vec<String> = ["relink", spec, "/lib64/libc.so.6", "--yes", "--undo-dir"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(undo_dir.display().to_string());
        a.extend(admin_args(&cluster));
        run(&a)
    };

    // A snapshot is never written.
    let (code, _, err) = relink("rbd:rbd/guest@before");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("rbd:rbd/guest@before is a snapshot, which vmrescue never writes"),
        "{err}"
    );

    // Another client's lock: refused, naming it.
    rbd_admin(&cluster, &["lock", "add", "rbd/guest", "vmrescue-test"]);
    let (code, _, err) = relink("rbd:rbd/guest");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is in use by client.")
            && err.contains("(exclusive lock \"vmrescue-test\")")
            && err.contains("nothing was written"),
        "{err}"
    );
    let locker = err
        .split("in use by ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .to_string();
    // A Proxmox guest with its disk there runs while the lock is held:
    // `relink 108` is refused, naming the holder.
    let (_pve, root) = pve_tree(&cluster);
    let (code, _, err) = run(&[
        "relink".into(),
        "108".into(),
        "/lib64/libc.so.6".into(),
        "--yes".into(),
        "--undo-dir".into(),
        undo_dir.display().to_string(),
        "--pve-root".into(),
        root.display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("is in use by {locker}"))
            && err.contains("(exclusive lock \"vmrescue-test\")")
            && err.contains("nothing was written"),
        "{err}"
    );
    rbd_admin(
        &cluster,
        &["lock", "remove", "rbd/guest", "vmrescue-test", &locker],
    );
    // A watcher (a running VM's librbd): refused too.
    let watch = Held::watch(&cluster);
    // Bounded: the watch registers within seconds (`layers` warns then).
    for _ in 0..50 {
        let (_, _, err) = run(&with(&["layers", "rbd:rbd/guest"], &cluster));
        if err.contains("(watch)") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, _, refused) = relink("rbd:rbd/guest");
    drop(watch);
    assert_eq!(
        code, 2,
        "written while `rbd watch` held the image: {refused}"
    );
    assert!(
        refused.contains("is in use by client.") && refused.contains("(watch)"),
        "{refused}"
    );
    assert!(files_in(&undo_dir).is_empty(), "an undo file was written");
    // A killed `rbd watch` leaves its watch until the OSD times it out
    // (30 s): wait, bounded, until nobody watches.
    for _ in 0..60 {
        let (_, _, err) = run(&with(&["layers", "rbd:rbd/guest"], &cluster));
        if !err.contains("(watch)") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1000));
    }
    assert_eq!(
        sha256_file(&export(&cluster, tmp.path(), "after-refusals.raw")),
        before
    );

    // Nobody holds it: written, and `rbd export` shows the new target.
    let (code, out, err) = relink("rbd:rbd/guest");
    assert_eq!(code, 0, "{out}{err}");
    let undo = common::undo_record(&out);
    let record = std::fs::read_to_string(&undo).unwrap();
    assert!(
        record.contains("\"image\": \"rbd:rbd/guest:conf="),
        "{record}"
    );
    let written = export(&cluster, tmp.path(), "written.raw");
    let fs = volume_file(&written, "vg_ta/lv_root", tmp.path());
    assert_e2fsck_clean(&fs);
    assert_eq!(debugfs_target(&fs, "/lib64/libc.so.6"), b"libc-2.12.so");

    // undo: the exact old bytes.
    let (code, out, err) = run(&["undo".into(), undo.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        sha256_file(&export(&cluster, tmp.path(), "undone.raw")),
        before
    );
}
