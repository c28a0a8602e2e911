//! A Proxmox VE host disk as the operator sees it (`pve-host`, built by
//! `tests/fixtures/make/pve-host.sh` with sgdisk, sfdisk, lvm2,
//! thin-provisioning-tools, mke2fs, sqlite3 and qemu-img): VG `pve` with the
//! host's root, swap, the `data` thin pool holding VM disks and a thin
//! snapshot, a plain LV holding a GPT guest. Each VM disk is labelled with
//! its guest from pmxcfs's `config.db` (and its WAL) on the host's root; the
//! SQLite reader behind it is fed damaged databases made by sqlite3.

use std::path::Path;
use std::process::Command;

use vmrescue::pve::hostdb::HostConfig;
use vmrescue::pve::sqlite::Db;

use crate::common;

fn image() -> String {
    common::fixture("pve-host").to_str().unwrap().to_string()
}

fn run(args: &[&str]) -> (Vec<u8>, String, i32) {
    let out = common::vmrescue(args);
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn cat(volume: &str, path: &str) -> Vec<u8> {
    let img = image();
    let (out, err, code) = run(&["cat", &img, "--volume", volume, path]);
    assert_eq!(code, 0, "{volume} {path}: {err}");
    out
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The node of volume `vol` in a JSON tree of `layers --json`.
fn find<'a>(n: &'a serde_json::Value, vol: &str) -> Option<&'a serde_json::Value> {
    if n["volume"].as_str() == Some(vol) {
        return Some(n);
    }
    n["children"].as_array()?.iter().find_map(|c| find(c, vol))
}

#[test]
fn pve_host_layers_show_the_tree_and_each_vm_disk_with_its_guest() {
    let img = image();
    let (out, err, code) = run(&["layers", &img]);
    let text = String::from_utf8_lossy(&out);
    assert!(code == 0 || code == 1, "{code}: {err}\n{text}");
    let line = |want: &str| {
        text.lines()
            .find(|l| l.contains(want))
            .unwrap_or_else(|| panic!("no line with {want:?} in\n{text}"))
            .to_string()
    };
    // The host's own volumes.
    assert!(line("─root ").contains("guest root: Debian GNU/Linux 12"));
    assert!(line("─swap ").contains("swap"));
    // The VM disks, with VM ID and name (VM 101's name only in the WAL).
    assert!(line("─vm-100-disk-0 — VM 100 `db01`").contains("thin"));
    line("─vm-101-disk-0 — VM 101 `mail01`");
    assert!(!text.contains("mail-old"), "{text}");
    line("─snap_vm-100-disk-0_before — VM 100 `db01`, snapshot `before`");
    assert!(line("─vm-102-disk-0 — VM 102 `files01`").contains("linear"));
    assert!(line("─vm-105-disk-0 — CT 105 `web`").contains("ext4"));
    // The guests' own layers under them, the guest VG `pve` inside `pve`.
    assert!(line("─pve/vm-100-disk-0/p1 ").contains("g100boot"));
    line("─pve/vm-100-disk-0/pve ");
    assert!(line("guest root: Guest 100 Linux").contains("g100root"));
    assert!(line("─pve/vm-101-disk-0/p1 ").contains("g101data"));
    assert!(line("─pve/vm-102-disk-0/p1 ").contains("g102data"));
    // Nothing but VM disks is labelled.
    assert!(!line("─root ").contains(" — "));
    assert!(text.contains("pve/root: config.db: WAL: 1 committed frame(s) applied"));
}

#[test]
fn pve_host_json_gives_each_vm_disk_a_guest_object() {
    let img = image();
    let (out, err, _) = run(&["layers", "--json", &img]);
    let doc: serde_json::Value =
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    let disk = &doc["disks"][0];
    let guest = |vol: &str| {
        find(disk, vol)
            .unwrap_or_else(|| panic!("{vol} not in the tree"))
            .get("guest")
            .cloned()
    };
    assert_eq!(
        guest("pve/vm-100-disk-0"),
        Some(serde_json::json!({"kind": "qemu", "id": 100, "name": "db01", "key": "scsi0"}))
    );
    assert_eq!(
        guest("pve/vm-101-disk-0"),
        Some(serde_json::json!({"kind": "qemu", "id": 101, "name": "mail01", "key": "sata0"}))
    );
    assert_eq!(
        guest("pve/vm-102-disk-0"),
        Some(serde_json::json!({"kind": "qemu", "id": 102, "name": "files01", "key": "virtio0"}))
    );
    assert_eq!(
        guest("pve/vm-105-disk-0"),
        Some(serde_json::json!({"kind": "lxc", "id": 105, "name": "web", "key": "rootfs"}))
    );
    assert_eq!(
        guest("pve/snap_vm-100-disk-0_before"),
        Some(serde_json::json!({
            "kind": "qemu", "id": 100, "name": "db01", "key": "scsi0", "snapshot": "before"
        }))
    );
    for plain in ["pve/root", "pve/swap", "pve/vm-100-disk-0/pve/root"] {
        assert_eq!(guest(plain), None, "{plain}");
    }
    // The snapshot's guest VG has its origin's UUIDs (a thin snapshot is a
    // copy): it is still shown with its own LVs, under the snapshot.
    let snap = find(disk, "pve/snap_vm-100-disk-0_before").expect("snapshot");
    assert!(
        find(snap, "pve/snap_vm-100-disk-0_before/pve/root").is_some(),
        "{snap:#}"
    );
    let text = String::from_utf8_lossy(&run(&["layers", &img]).0).into_owned();
    assert!(!text.contains("shown under its first PV"), "{text}");
    // A long content text does not widen the table: it is printed below.
    assert!(text.contains("unreadable (see below)"), "{text}");
    assert!(
        text.contains("pve/data: unreadable (a thin pool holds no filesystem"),
        "{text}"
    );
}

#[test]
fn pve_host_files_match_their_sha256() {
    let sums = common::report("pve-host.sha256");
    let mut n = 0;
    for l in sums.lines() {
        let (sum, at) = l.split_once("  ").unwrap();
        let (volume, path) = at.split_once(':').unwrap();
        assert_eq!(sha256(&cat(volume, path)), sum, "{at}");
        n += 1;
    }
    assert!(n >= 12, "only {n} files in pve-host.sha256");
}

#[test]
fn pve_host_snapshot_differs_from_its_origin_in_one_file() {
    let origin = "pve/vm-100-disk-0/pve/root";
    let snap = "pve/snap_vm-100-disk-0_before/pve/root";
    assert_eq!(
        cat(origin, "/etc/note.txt"),
        b"note: version B, after the snapshot!\n"
    );
    assert_eq!(
        cat(snap, "/etc/note.txt"),
        b"note: version A, before the snapshot\n"
    );
    for same in [
        "/data/blob.bin",
        "/etc/fstab",
        "/etc/hostname",
        "/etc/os-release",
    ] {
        assert_eq!(cat(origin, same), cat(snap, same), "{same}");
    }
}

#[test]
fn pve_host_config_db_read_with_and_without_its_wal() {
    let main = cat("pve/root", "/var/lib/pve-cluster/config.db");
    let wal = cat("pve/root", "/var/lib/pve-cluster/config.db-wal");
    let with = HostConfig::from_db(&main, Some(&wal)).unwrap();
    let without = HostConfig::from_db(&main, None).unwrap();
    let name = |h: &HostConfig, id: u32| {
        h.guests
            .iter()
            .find(|g| g.vmid == id)
            .and_then(|g| g.config.name.clone())
    };
    assert_eq!(name(&with, 101).as_deref(), Some("mail01"));
    assert_eq!(name(&without, 101).as_deref(), Some("mail-old"));
    // 100.conf's long description spills onto overflow pages.
    assert_eq!(name(&with, 100).as_deref(), Some("db01"));
    let g100 = with.guests.iter().find(|g| g.vmid == 100).unwrap();
    assert_eq!(g100.config.snapshots, ["before"]);
    assert_eq!(g100.node, "pve1");
    assert_eq!(with.guests.len(), 5);
    assert!(with.storages.iter().any(|s| s.id == "local-lvm"));

    // A WAL whose last frame is damaged: that commit is dropped, the file
    // still reads.
    let mut bad = wal.clone();
    let last = bad.len() - 100;
    bad[last] ^= 0xff;
    let h = HostConfig::from_db(&main, Some(&bad)).unwrap();
    assert_eq!(name(&h, 101).as_deref(), Some("mail-old"));
    assert!(
        h.notes.iter().any(|n| n.contains("checksum")),
        "{:?}",
        h.notes
    );
    // A WAL of another database (other salts) or garbage: ignored.
    let h = HostConfig::from_db(&main, Some(b"garbage")).unwrap();
    assert_eq!(name(&h, 101).as_deref(), Some("mail-old"));
}

/// A database made by sqlite3: table `tree` of pmxcfs's shape with `rows`
/// rows, each `blob` bytes of data.
fn made_db(dir: &Path, rows: usize, blob: usize) -> Vec<u8> {
    let db = dir.join(format!("t{rows}-{blob}.db"));
    let sql = format!(
        "CREATE TABLE tree (inode INTEGER PRIMARY KEY NOT NULL, parent INTEGER NOT NULL, \
         version INTEGER NOT NULL, writer INTEGER NOT NULL, mtime INTEGER NOT NULL, \
         type INTEGER NOT NULL, name TEXT NOT NULL, data BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO tree SELECT i, 0, 1, 0, 1700000000, 8, i || '.conf', \
         CAST('name: vm' || i || char(10) || substr(hex(zeroblob({blob})), 1, {blob}) AS BLOB) FROM n;"
    );
    let st = Command::new("sqlite3").arg(&db).arg(sql).status();
    assert!(
        st.is_ok_and(|s| s.success()),
        "sqlite3 failed (is it installed?)"
    );
    std::fs::read(&db).unwrap()
}

fn rows_of(main: &[u8]) -> Result<usize, String> {
    let db = Db::open(main, None).map_err(|e| e.to_string())?;
    let root = db.table_root("tree").map_err(|e| e.to_string())?;
    db.table_rows(root)
        .map(|r| r.len())
        .map_err(|e| e.to_string())
}

#[test]
fn sqlite_reader_reads_what_sqlite3_wrote_and_survives_damage() {
    let dir = tempfile::tempdir().unwrap();
    // Many rows: interior pages. Page 2 is the table's root.
    let many = made_db(dir.path(), 800, 40);
    assert_eq!(rows_of(&many), Ok(800));
    let page = usize::from(u16::from_be_bytes([many[16], many[17]]));
    let root = page; // page 2 starts here
    assert_eq!(many[root], 0x05, "page 2 should be an interior page");

    // A loop in the page pointers: the root's right-most child is itself.
    let mut looped = many.clone();
    looped[root + 8..root + 12].copy_from_slice(&2u32.to_be_bytes());
    let e = rows_of(&looped).unwrap_err();
    assert!(e.contains("twice"), "{e}");
    // A page number past the end.
    let mut past = many.clone();
    past[root + 8..root + 12].copy_from_slice(&999_999u32.to_be_bytes());
    let e = rows_of(&past).unwrap_err();
    assert!(e.contains("past"), "{e}");
    // An absurd varint as a cell's payload size.
    let mut absurd = many.clone();
    let first_leaf = {
        let cell = usize::from(u16::from_be_bytes([many[root + 12], many[root + 13]]));
        let child = u32::from_be_bytes(many[root + cell..root + cell + 4].try_into().unwrap());
        (child as usize - 1) * page
    };
    let cell = usize::from(u16::from_be_bytes([
        many[first_leaf + 8],
        many[first_leaf + 9],
    ]));
    absurd[first_leaf + cell..first_leaf + cell + 9].copy_from_slice(&[0xff; 9]);
    let e = rows_of(&absurd).unwrap_err();
    assert!(e.contains("too large"), "{e}");

    // One big row: an overflow chain (pages 3, 4, ...). Make it loop.
    let big = made_db(dir.path(), 1, 20_000);
    assert_eq!(rows_of(&big), Ok(1));
    let mut chain = big.clone();
    let p4 = 3 * page;
    chain[p4..p4 + 4].copy_from_slice(&3u32.to_be_bytes());
    let e = rows_of(&chain).unwrap_err();
    assert!(e.contains("loops"), "{e}");
    // Cut short: the chain runs past the end.
    let e = rows_of(&big[..4 * page]).unwrap_err();
    assert!(e.contains("past"), "{e}");

    // Every single-byte change of the first pages: an answer, never a panic.
    for at in (0..many.len().min(3 * page)).step_by(7) {
        let mut m = many.clone();
        m[at] = m[at].wrapping_add(0x5a);
        let _ = rows_of(&m);
        let _ = HostConfig::from_db(&m, None);
    }
}

/// A private copy of the host disk and the byte where its pool's metadata
/// LV (`pve/data_tmeta`) starts.
fn copy_with_tmeta(dir: &Path) -> (std::path::PathBuf, u64) {
    let img = common::fixture_copy("pve-host", dir);
    let layout = vmrescue::layers::scan(vec![vmrescue::image::open(&img).unwrap()]);
    let tmeta = layout
        .volumes
        .iter()
        .find(|v| {
            matches!(&v.kind, vmrescue::layers::VolumeKind::LogicalVolume { lv, .. } if lv == "data_tmeta")
        })
        .unwrap();
    let vmrescue::io::Target::Linear(a) = &tmeta.mapping.segments()[0].target else {
        panic!("data_tmeta is not linear");
    };
    (img, a.offset)
}

/// Block `nr` of the metadata at `base`, changed by `f`, its checksum
/// (dm-persistent-data's: crc32c of bytes 4.., inverted, xor `xor`) redone.
fn patch_block(img: &Path, base: u64, nr: u64, xor: u32, f: impl FnOnce(&mut [u8])) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut b = vec![0u8; 4096];
    file.read_exact_at(&mut b, base + nr * 4096).unwrap();
    f(&mut b);
    let sum = !crc32c::crc32c(&b[4..]) ^ xor;
    b[..4].copy_from_slice(&sum.to_le_bytes());
    file.write_all_at(&b, base + nr * 4096).unwrap();
}

/// The superblock's checksum constant, and the btree nodes'.
const SUPERBLOCK_XOR: u32 = 160_774;
const BTREE_XOR: u32 = 121_107;

fn problems_of(img: &Path) -> Vec<String> {
    let layout = vmrescue::layers::scan(vec![vmrescue::image::open(img).unwrap()]);
    layout
        .all_problems()
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn pve_host_thin_pool_names_its_thin_lvs_and_checks_transaction_ids() {
    let img = image();
    let (out, _, _) = run(&["layers", &img]);
    let text = String::from_utf8_lossy(&out);
    // The row says where to look; the line under the table says it all.
    let row = text.lines().find(|l| l.contains("─data ")).unwrap();
    assert!(row.contains("unreadable (see below)"), "{row}");
    let line = text.lines().find(|l| l.starts_with("pve/data: ")).unwrap();
    assert!(
        line.contains(
            "a thin pool holds no filesystem: its 4 thin LVs hold the data (vm-100-disk-0, \
             vm-101-disk-0, snap_vm-100-disk-0_before, vm-105-disk-0)"
        ),
        "{line}"
    );
    assert!(!text.contains("not readable yet"), "{text}");
    assert_eq!(problems_of(Path::new(&img)), Vec::<String>::new());

    // The thin metadata one transaction ahead of lvm2's.
    let dir = tempfile::tempdir().unwrap();
    let (copy, base) = copy_with_tmeta(dir.path());
    patch_block(&copy, base, 0, SUPERBLOCK_XOR, |b| {
        // trans_id, after csum, flags, blocknr, uuid, magic, version, time.
        b[48..56].copy_from_slice(&7u64.to_le_bytes());
    });
    let p = problems_of(&copy);
    assert!(
        p.iter()
            .any(|p| p
                .contains("transaction_id is 4 in the LVM metadata but 7 in the thin metadata")),
        "{p:?}"
    );
    // Still read: the thin LVs' files are there.
    let out = common::vmrescue(&[
        "cat",
        copy.to_str().unwrap(),
        "--volume",
        "pve/vm-101-disk-0/p1",
        "/srv/mail.txt",
    ]);
    assert_eq!(out.stdout, b"mail spool of VM 101\n");
}

#[test]
fn pve_host_thin_device_whose_mapped_blocks_disagree_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (copy, base) = copy_with_tmeta(dir.path());
    // The device details tree's root (superblock byte 328), a leaf here.
    let mut sb = vec![0u8; 4096];
    {
        use std::os::unix::fs::FileExt;
        std::fs::File::open(&copy)
            .unwrap()
            .read_exact_at(&mut sb, base)
            .unwrap();
    }
    let details = u64::from_le_bytes(sb[328..336].try_into().unwrap());
    patch_block(&copy, base, details, BTREE_XOR, |b| {
        let n = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
        let max = u32::from_le_bytes(b[20..24].try_into().unwrap()) as usize;
        let vsize = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
        assert_eq!(vsize, 24, "device details are 24 bytes");
        let i = (0..n)
            .find(|&i| u64::from_le_bytes(b[32 + i * 8..40 + i * 8].try_into().unwrap()) == 2)
            .expect("device 2 in the details leaf");
        let v = 32 + max * 8 + i * vsize;
        b[v..v + 8].copy_from_slice(&99u64.to_le_bytes());
    });
    let p = problems_of(&copy);
    assert!(
        p.iter().any(|p| p.contains("vm-101-disk-0")
            && p.contains("the device details say 99 mapped blocks, its mapping tree holds 6")),
        "{p:?}"
    );
}

/// The layout as `vmrescue` loads it: scanned, then inspected with the
/// userspace engine (which reads the host's config.db).
fn inspected_layout() -> vmrescue::layers::Layout {
    let img = common::fixture("pve-host");
    let mut layout = vmrescue::layers::scan(vec![vmrescue::image::open(&img).unwrap()]);
    let options = vmrescue::fs::FsOptions::default();
    let userspace = vmrescue::engine::userspace::Userspace::new(options.clone());
    let found =
        vmrescue::layers::inspect::inspect(&layout, &|id| userspace.open_fs(&layout, id, &options));
    layout.apply_inspection(&found);
    layout
}

#[test]
fn pve_host_tui_left_pane_names_each_vm_disk_with_its_guest() {
    let layout = inspected_layout();
    let mut pane = vmrescue::tui::layers::LayerPane::new(&layout);
    for (volume, want) in [
        ("pve/vm-100-disk-0", "vm-100-disk-0 — VM 100 `db01`"),
        ("pve/vm-105-disk-0", "vm-105-disk-0 — CT 105 `web`"),
        (
            "pve/snap_vm-100-disk-0_before",
            "snap_vm-100-disk-0_before — VM 100 `db01`, snapshot `before`",
        ),
    ] {
        assert!(pane.reveal_volume(volume), "{volume}");
        let n = pane.current().unwrap();
        let line = vmrescue::tui::views::layers::node_label(n, 120, None);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert!(text.starts_with(want), "{text}");
        let facts = vmrescue::tui::layers::node_lines(n);
        assert!(
            facts.iter().any(|l| l.starts_with("Proxmox guest: ")),
            "{facts:?}"
        );
    }
    assert!(pane.reveal_volume("pve/root"));
    let n = pane.current().unwrap();
    assert_eq!(n.guest, None);
}

/// The qcow2 on the node's `local` storage opens from inside the host's root
/// filesystem, as the operator would reach it (`--open`).
#[test]
fn pve_host_qcow2_on_local_storage_opens_with_open() {
    let img = image();
    let (out, err, code) = run(&[
        "cat",
        &img,
        "--open",
        "/var/lib/vz/images/103/vm-103-disk-0.qcow2",
        "/hello.txt",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, b"VM 103 lives in a qcow2 file on local storage\n");
}
