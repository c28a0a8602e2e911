//! The file viewer's model over files made on the host (read through the
//! host-directory `FsView`): lazy reads of a large sparse file, the end
//! found backwards, line numbers, search across buffer boundaries, hex,
//! escapes, and the compressed formats as the real `gzip`, `xz`, `zstd`
//! and `bzip2` write them.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use vmrescue::fs::FsView;
use vmrescue::fs::host::HostFs;
use vmrescue::ops::pager::search::{self, Outcome};
use vmrescue::ops::pager::source::{self, Format};
use vmrescue::ops::pager::{Mode, Pager};

fn host(dir: &Path) -> Arc<dyn FsView> {
    Arc::new(HostFs::open(dir).unwrap())
}

/// Open `name` in `dir` as the TUI does, running its producer to the end.
fn open(dir: &Path, name: &str) -> (Pager, source::Opened) {
    let fs = host(dir);
    let mut o = source::open(&fs, format!("/{name}").as_bytes()).unwrap();
    if let Some(p) = o.producer.take() {
        p.run(&AtomicBool::new(false), &mut || {});
    }
    let mut pager = Pager::new(o.content.clone(), o.format);
    if o.hex {
        pager.toggle_hex(80);
    }
    (pager, o)
}

fn texts(p: &mut Pager, rows: usize, width: usize) -> Vec<String> {
    p.page(rows, width).into_iter().map(|r| r.text).collect()
}

fn log_text(lines: usize) -> String {
    (1..=lines)
        .map(|i| format!("line {i} kernel: message number {i}\n"))
        .collect()
}

#[test]
fn first_page_and_end_of_a_large_sparse_file_read_little() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let f = std::fs::File::create(&path).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(log_text(1000).as_bytes(), 0).unwrap();
    let size: u64 = 4 << 30;
    let tail = b"\nlast but one\nthe very last line\n";
    f.write_all_at(tail, size - tail.len() as u64).unwrap();
    drop(f);

    let (mut p, o) = open(dir.path(), "big.log");
    assert_eq!(o.format, Format::Plain);
    assert_eq!(p.mode, Mode::Text);
    let rows = p.page(22, 80);
    assert_eq!(rows[0].text, "line 1 kernel: message number 1");
    assert_eq!(rows[0].number, Some(1));
    assert_eq!(rows[21].number, Some(22));
    assert!(
        p.bytes_read <= 128 << 10,
        "first page read {}",
        p.bytes_read
    );

    let before = p.bytes_read;
    p.end(22, 80);
    let rows = p.page(22, 80);
    let last = rows.last().unwrap();
    assert_eq!(last.text, "the very last line");
    // Not counted: shown as unknown.
    assert_eq!(last.number, None);
    assert!(
        p.bytes_read - before <= 128 << 10,
        "the end read {}",
        p.bytes_read - before
    );
    assert_eq!(p.percent(), 100);
    // Back home, numbered again.
    p.home();
    assert_eq!(p.page(1, 80)[0].number, Some(1));
}

#[test]
fn scrolling_counts_lines_and_the_end_of_a_small_file_is_numbered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), log_text(1000)).unwrap();
    let (mut p, _) = open(dir.path(), "a.log");
    p.down(30, 20, 80);
    assert_eq!(p.top_line(), Some(31));
    assert_eq!(texts(&mut p, 1, 80)[0], "line 31 kernel: message number 31");
    p.up(10, 80);
    assert_eq!(p.top_line(), Some(21));
    p.end(20, 80);
    let rows = p.page(20, 80);
    assert_eq!(rows[19].number, Some(1000));
    assert_eq!(rows[0].number, Some(981));
    // Down at the end stays at the last full page.
    p.down(5, 20, 80);
    assert_eq!(p.page(20, 80)[19].number, Some(1000));
}

#[test]
fn wrap_cut_tabs_escapes_and_long_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"a\tb\x1b[31mred\xffend\\\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 10_000));
    data.extend(b"\nshort\n");
    std::fs::write(dir.path().join("t"), &data).unwrap();
    let (mut p, _) = open(dir.path(), "t");
    assert_eq!(p.mode, Mode::Text, "a few odd bytes are still text");
    let rows = p.page(400, 40);
    assert_eq!(rows[0].text, "a       b\\x1b[31mred\\xffend\\\\");
    // 10 000 bytes: pieces of 4096 bytes, each wrapped at 40 columns.
    let xs: Vec<_> = rows
        .iter()
        .skip(1)
        .take_while(|r| r.text.starts_with('x'))
        .collect();
    assert_eq!(xs.iter().map(|r| r.text.len()).sum::<usize>(), 10_000);
    assert_eq!(xs.iter().filter(|r| r.first).count(), 1);
    assert_eq!(xs[0].number, Some(2));
    assert!(xs.iter().skip(1).all(|r| r.number.is_none()));
    assert_eq!(rows.last().unwrap().text, "short");
    assert_eq!(rows.last().unwrap().number, Some(3));
    // Cut instead of wrapped, scrolled sideways.
    p.toggle_wrap();
    p.hscroll = 2;
    let rows = p.page(3, 5);
    assert_eq!(rows[0].text, "     ");
    assert_eq!(rows[1].text, "xxxxx");
}

#[test]
fn binary_files_open_in_hex() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"\x7fELF\x02\x01\x01\0\0\0".to_vec();
    data.extend((0..=255u8).cycle().take(5000));
    std::fs::write(dir.path().join("bin"), &data).unwrap();
    let (mut p, _) = open(dir.path(), "bin");
    assert_eq!(p.mode, Mode::Hex);
    let rows = texts(&mut p, 2, 80);
    assert_eq!(
        rows[0],
        "00000000  7f 45 4c 46 02 01 01 00 00 00 00 01 02 03 04 05  .ELF............"
    );
    assert!(rows[1].starts_with("00000010  06 07"));
    // Narrow: fewer bytes a row.
    assert_eq!(Pager::hex_row_bytes(41), 4);
    p.end(3, 80);
    let rows = texts(&mut p, 3, 80);
    assert!(rows[2].starts_with("00001390  "), "{rows:?}");
    p.toggle_hex(80);
    assert_eq!(p.mode, Mode::Text);
}

#[test]
fn search_finds_matches_across_buffer_boundaries_and_numbers_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Lines of 64 bytes; the needle straddles the first 8 MiB boundary.
    let line = format!("{:063}\n", 0);
    let mut data = line.repeat((search::CHUNK / 64) + 10).into_bytes();
    let at = search::CHUNK - 3;
    data[at..at + 6].copy_from_slice(b"NEEDLE");
    let at2 = search::CHUNK * 2 + 100;
    data.resize(at2 + 200, b'.');
    data[at2..at2 + 6].copy_from_slice(b"NEEDLE");
    std::fs::write(dir.path().join("s"), &data).unwrap();
    let (p, _) = open(dir.path(), "s");
    let c = p.content().clone();
    let no = AtomicBool::new(false);
    let mut seen = Vec::new();
    let r = search::find(
        &c,
        &search::Query::new(b"NEEDLE", 0, true, Some((0, 1))),
        &no,
        &mut |a, b| seen.push((a, b)),
    );
    let Outcome::Found(f) = r else {
        panic!("{r:?}")
    };
    assert_eq!(f.offset, at as u64);
    assert_eq!(f.line, Some(at as u64 / 64 + 1));
    let r = search::find(
        &c,
        &search::Query::new(b"NEEDLE", f.offset + 1, true, None),
        &no,
        &mut |_, _| {},
    );
    assert!(matches!(r, Outcome::Found(g) if g.offset == at2 as u64 && g.line.is_none()));
    // Backwards from the end: the second, then the first.
    let end = data.len() as u64;
    let r = search::find(
        &c,
        &search::Query::new(b"NEEDLE", end, false, None),
        &no,
        &mut |_, _| {},
    );
    assert!(matches!(r, Outcome::Found(g) if g.offset == at2 as u64));
    let r = search::find(
        &c,
        &search::Query::new(b"NEEDLE", at2 as u64, false, None),
        &no,
        &mut |_, _| {},
    );
    assert!(matches!(r, Outcome::Found(g) if g.offset == at as u64));
    let r = search::find(
        &c,
        &search::Query::new(b"NEEDLE", at as u64, false, None),
        &no,
        &mut |_, _| {},
    );
    assert_eq!(r, Outcome::NotFound);
    // A pattern across lines.
    let r = search::find(
        &c,
        &search::Query::new(b"0\n000", 0, true, None),
        &no,
        &mut |_, _| {},
    );
    assert!(matches!(r, Outcome::Found(g) if g.offset == 62));
    // Cancelled.
    let yes = AtomicBool::new(true);
    let r = search::find(
        &c,
        &search::Query::new(b"absent", 0, true, None),
        &yes,
        &mut |_, _| {},
    );
    assert_eq!(r, Outcome::Cancelled);
    // The pager shows the match's line at the top, numbered.
    let mut p = p;
    p.goto(f.offset, f.line, 80);
    assert_eq!(p.top_line(), f.line);
    assert!(p.page(1, 80)[0].hit || p.hit.is_none());
}

/// Compress `plain` with `tool args` into `dir/name`.
fn compress(dir: &Path, name: &str, plain: &[u8], tool: &str, args: &[&str]) {
    let src = dir.join("plain.tmp");
    std::fs::write(&src, plain).unwrap();
    let out = Command::new(tool).args(args).arg(&src).output().unwrap();
    assert!(out.status.success(), "{tool}: {out:?}");
    std::fs::write(dir.join(name), &out.stdout).unwrap();
    std::fs::remove_file(&src).unwrap();
}

#[test]
fn compressed_logs_made_by_the_real_tools_are_shown_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let plain = log_text(20_000);
    let cases = [
        ("messages.1.gz", "gzip", vec!["-c"], Format::Gzip),
        ("messages.2.xz", "xz", vec!["-c"], Format::Xz),
        ("messages.3.zst", "zstd", vec!["-q", "-c"], Format::Zstd),
        ("messages.4.bz2", "bzip2", vec!["-c"], Format::Bzip2),
        // Detected by the magic number, not the name.
        ("rotated", "gzip", vec!["-c"], Format::Gzip),
    ];
    for (name, tool, args, format) in cases {
        compress(dir.path(), name, plain.as_bytes(), tool, &args);
        let (mut p, o) = open(dir.path(), name);
        assert_eq!(o.format, format, "{name}");
        assert_eq!(p.content().len(), plain.len() as u64, "{name}");
        assert!(p.content().complete());
        let rows = p.page(2, 80);
        assert_eq!(rows[0].text, "line 1 kernel: message number 1", "{name}");
        p.end(2, 80);
        let rows = p.page(2, 80);
        assert_eq!(rows[1].text, "line 20000 kernel: message number 20000");
        assert_eq!(rows[1].number, Some(20000), "{name}: counted in memory");
        let Content::Memory(g) = p.content() else {
            panic!("{name}: in memory")
        };
        assert_eq!(g.error(), None, "{name}");
    }
}

use vmrescue::ops::pager::Content;

#[test]
fn a_truncated_gzip_shows_what_was_decompressed_and_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let plain = log_text(50_000);
    compress(dir.path(), "full.gz", plain.as_bytes(), "gzip", &["-c"]);
    let full = std::fs::read(dir.path().join("full.gz")).unwrap();
    std::fs::write(dir.path().join("cut.gz"), &full[..full.len() / 2]).unwrap();
    let mut corrupt = full.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid..mid + 64].fill(0x55);
    std::fs::write(dir.path().join("bad.gz"), &corrupt).unwrap();
    for name in ["cut.gz", "bad.gz"] {
        let (mut p, _) = open(dir.path(), name);
        let Content::Memory(g) = p.content().clone() else {
            panic!("in memory")
        };
        let err = g.error().unwrap_or_default();
        assert!(err.starts_with("gz: "), "{name}: {err}");
        assert!(!g.is_empty() && g.len() < plain.len() as u64, "{name}");
        assert!(
            plain
                .as_bytes()
                .starts_with(&read_all(&g_content(&p))[..1000])
        );
        assert_eq!(p.page(1, 80)[0].text, "line 1 kernel: message number 1");
    }
}

fn g_content(p: &Pager) -> Content {
    p.content().clone()
}

fn read_all(c: &Content) -> Vec<u8> {
    let mut buf = vec![0u8; c.len() as usize];
    let n = c.read_at(0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn symlinks_are_followed_inside_the_guest_and_folders_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("var")).unwrap();
    std::fs::write(dir.path().join("var/messages"), "hello\n").unwrap();
    // An absolute link: resolved in the guest, not on the host.
    std::os::unix::fs::symlink("/var/messages", dir.path().join("link")).unwrap();
    let fs = host(dir.path());
    let o = source::open(&fs, b"/link").unwrap();
    assert_eq!(o.path, "/var/messages");
    assert_eq!(o.size, 6);
    let e = source::open(&fs, b"/var").err().unwrap();
    assert_eq!(e, "/var: not a regular file");
}

/// A binary journal written by systemd's own `systemd-journal-remote` from
/// an export stream of `n` entries.
fn make_journal(path: &Path, n: u32) {
    let mut export = String::new();
    for i in 1..=n {
        let ts = 1_764_662_400_000_000u64 + u64::from(i) * 1_000_000;
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={ts}\n__MONOTONIC_TIMESTAMP={i}000000\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _MACHINE_ID=fedcba9876543210fedcba9876543210\n_HOSTNAME=guest\n\
             SYSLOG_IDENTIFIER=sshd\n_PID={}\nPRIORITY=6\n\
             MESSAGE=Accepted publickey for root from 10.0.0.{i} port 22\n\n",
            1000 + i
        ));
    }
    let src = path.with_extension("export");
    std::fs::write(&src, export).unwrap();
    let out = Command::new("/lib/systemd/systemd-journal-remote")
        .arg(format!("--output={}", path.display()))
        .arg(&src)
        .output()
        .expect("systemd-journal-remote (package systemd-journal-remote)");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_binary_journal_is_text_through_journalctl() {
    let dir = tempfile::tempdir().unwrap();
    make_journal(&dir.path().join("system.journal"), 50);
    let fs = host(dir.path());
    let o = source::open(&fs, b"/system.journal").unwrap();
    assert_eq!(o.format, Format::Journal);
    assert!(
        source::find_journalctl().is_some(),
        "the tests need the host's journalctl (package systemd)"
    );
    assert!(!o.hex && o.note.is_none());
    let (mut p, _) = open(dir.path(), "system.journal");
    let Content::Memory(g) = p.content() else {
        panic!("journalctl's text")
    };
    assert_eq!(g.error(), None);
    let rows = p.page(50, 200);
    assert_eq!(rows.len(), 50);
    assert_eq!(
        rows[0].text,
        "2025-12-02T08:00:01+0000 guest sshd[1001]: Accepted publickey for root from 10.0.0.1 port 22"
    );
    assert!(
        rows[49]
            .text
            .ends_with("sshd[1050]: Accepted publickey for root from 10.0.0.50 port 22")
    );
    // The temporary copy is gone.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("vmrescue-journal-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
