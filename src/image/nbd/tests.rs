use std::io::{Cursor, Read, Write};
use std::time::{Duration, Instant};

use super::proto::*;
use super::*;

/// A server's bytes to read, and what the client wrote.
struct Mock {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Mock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Mock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn mock(input: Vec<u8>) -> Mock {
    Mock {
        input: Cursor::new(input),
        output: Vec::new(),
    }
}

fn greeting(flags: u16) -> Vec<u8> {
    let mut v = NBDMAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&IHAVEOPT.to_be_bytes());
    v.extend_from_slice(&flags.to_be_bytes());
    v
}

fn opt_reply(v: &mut Vec<u8>, opt: u32, kind: u32, data: &[u8]) {
    v.extend_from_slice(&REPLY_MAGIC.to_be_bytes());
    v.extend_from_slice(&opt.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
}

fn info_export(size: u64, flags: u16) -> Vec<u8> {
    let mut d = INFO_EXPORT.to_be_bytes().to_vec();
    d.extend_from_slice(&size.to_be_bytes());
    d.extend_from_slice(&flags.to_be_bytes());
    d
}

#[test]
fn handshake_go_with_structured_replies() {
    let mut v = greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    opt_reply(&mut v, OPT_STRUCTURED_REPLY, REP_ACK, &[]);
    opt_reply(
        &mut v,
        OPT_GO,
        REP_INFO,
        &info_export(1 << 20, FLAG_HAS_FLAGS | FLAG_READ_ONLY),
    );
    let mut bs = INFO_BLOCK_SIZE.to_be_bytes().to_vec();
    for n in [1u32, 4096, 32 << 20] {
        bs.extend_from_slice(&n.to_be_bytes());
    }
    opt_reply(&mut v, OPT_GO, REP_INFO, &bs);
    opt_reply(&mut v, OPT_GO, REP_ACK, &[]);
    let mut m = mock(v);
    let e = handshake(&mut m, "disk").unwrap();
    assert_eq!(e.size, 1 << 20);
    assert_eq!(e.flags, FLAG_HAS_FLAGS | FLAG_READ_ONLY);
    assert_eq!(e.block_size, Some((1, 4096, 32 << 20)));
    assert!(e.structured);
    // Client flags, then NBD_OPT_STRUCTURED_REPLY, then NBD_OPT_GO "disk".
    assert_eq!(&m.output[..4], &3u32.to_be_bytes());
    assert_eq!(&m.output[4..12], &IHAVEOPT.to_be_bytes());
    assert_eq!(&m.output[12..16], &OPT_STRUCTURED_REPLY.to_be_bytes());
    assert_eq!(&m.output[16..20], &0u32.to_be_bytes());
    assert_eq!(&m.output[28..32], &OPT_GO.to_be_bytes());
    assert_eq!(&m.output[36..40], &4u32.to_be_bytes());
    assert_eq!(&m.output[40..44], b"disk");
}

#[test]
fn handshake_without_structured_replies_and_without_go() {
    let mut v = greeting(FLAG_FIXED_NEWSTYLE);
    opt_reply(&mut v, OPT_STRUCTURED_REPLY, REP_ERR_UNSUP, &[]);
    opt_reply(&mut v, OPT_GO, REP_ERR_UNSUP, &[]);
    // NBD_OPT_EXPORT_NAME: size, flags, 124 zeros (no NO_ZEROES).
    v.extend_from_slice(&4096u64.to_be_bytes());
    v.extend_from_slice(&FLAG_HAS_FLAGS.to_be_bytes());
    v.extend_from_slice(&[0u8; 124]);
    let mut m = mock(v);
    let e = handshake(&mut m, "").unwrap();
    assert_eq!(e.size, 4096);
    assert!(!e.structured);
    assert_eq!(&m.output[..4], &1u32.to_be_bytes());
}

#[test]
fn handshake_refusals_are_told_apart() {
    let mut v = greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    opt_reply(&mut v, OPT_STRUCTURED_REPLY, REP_ERR_TLS_REQD, b"TLS first");
    assert!(matches!(
        handshake(&mut mock(v), "x"),
        Err(HandshakeError::TlsRequired)
    ));

    let mut v = greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    opt_reply(&mut v, OPT_STRUCTURED_REPLY, REP_ACK, &[]);
    opt_reply(&mut v, OPT_GO, REP_ERR_UNKNOWN, b"no such export");
    match handshake(&mut mock(v), "nope") {
        Err(HandshakeError::UnknownExport(m)) => assert_eq!(m, "no such export"),
        other => panic!("{other:?}"),
    }

    let mut v = NBDMAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&CLISERV_MAGIC.to_be_bytes());
    assert!(matches!(
        handshake(&mut mock(v), ""),
        Err(HandshakeError::Oldstyle)
    ));

    let v = b"HTTP/1.1 400 Bad Request\r\n".to_vec();
    match handshake(&mut mock(v), "") {
        Err(HandshakeError::Io(e)) => assert!(e.to_string().contains("not an NBD server")),
        other => panic!("{other:?}"),
    }

    // GO acknowledged without the export's size.
    let mut v = greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    opt_reply(&mut v, OPT_STRUCTURED_REPLY, REP_ACK, &[]);
    opt_reply(&mut v, OPT_GO, REP_ACK, &[]);
    match handshake(&mut mock(v), "") {
        Err(HandshakeError::Io(e)) => assert!(e.to_string().contains("NBD_INFO_EXPORT")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn huge_option_reply_is_refused_before_allocating() {
    let mut v = greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    v.extend_from_slice(&REPLY_MAGIC.to_be_bytes());
    v.extend_from_slice(&OPT_STRUCTURED_REPLY.to_be_bytes());
    v.extend_from_slice(&REP_ACK.to_be_bytes());
    v.extend_from_slice(&u32::MAX.to_be_bytes());
    match handshake(&mut mock(v), "") {
        Err(HandshakeError::Io(e)) => assert!(e.to_string().contains("limit"), "{e}"),
        other => panic!("{other:?}"),
    }
}

fn chunk(v: &mut Vec<u8>, flags: u16, kind: u16, handle: u64, payload: &[u8]) {
    v.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    v.extend_from_slice(&flags.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&handle.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
}

fn data_payload(at: u64, data: &[u8]) -> Vec<u8> {
    let mut p = at.to_be_bytes().to_vec();
    p.extend_from_slice(data);
    p
}

fn hole_payload(at: u64, len: u32) -> Vec<u8> {
    let mut p = at.to_be_bytes().to_vec();
    p.extend_from_slice(&len.to_be_bytes());
    p
}

/// Read every reply in `v` for one request of `len` bytes at `offset`.
fn run(v: Vec<u8>, offset: u64, len: usize) -> io::Result<(Vec<u8>, Option<String>)> {
    let mut r = Cursor::new(v);
    let mut buf = vec![0xAAu8; len];
    let mut p = Pending::new(offset, &mut buf);
    for _ in 0..100 {
        let h = read_reply_header(&mut r, true)?;
        if read_reply_body(&mut r, &h, &mut p)? == Step::Done {
            let err = p.error.take();
            return Ok((buf, err));
        }
    }
    panic!("no end");
}

#[test]
fn structured_data_and_holes_fill_the_request() {
    let mut v = Vec::new();
    chunk(&mut v, 0, REPLY_TYPE_OFFSET_HOLE, 7, &hole_payload(1004, 4));
    chunk(
        &mut v,
        0,
        REPLY_TYPE_OFFSET_DATA,
        7,
        &data_payload(1000, b"abcd"),
    );
    chunk(&mut v, REPLY_FLAG_DONE, REPLY_TYPE_NONE, 7, &[]);
    let (buf, err) = run(v, 1000, 8).unwrap();
    assert_eq!(err, None);
    assert_eq!(buf, b"abcd\0\0\0\0");
}

#[test]
fn a_reply_that_covers_too_little_is_an_error() {
    let mut v = Vec::new();
    chunk(
        &mut v,
        REPLY_FLAG_DONE,
        REPLY_TYPE_OFFSET_DATA,
        7,
        &data_payload(0, b"ab"),
    );
    let (_, err) = run(v, 0, 4).unwrap();
    assert!(err.unwrap().contains("covered 2 of the 4 bytes"));
}

#[test]
fn error_chunks_and_simple_errors_name_the_error() {
    let mut v = Vec::new();
    let mut p = 5u32.to_be_bytes().to_vec();
    p.extend_from_slice(&3u16.to_be_bytes());
    p.extend_from_slice(b"bad");
    chunk(&mut v, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, 1, &p);
    let (_, err) = run(v, 0, 512).unwrap();
    let err = err.unwrap();
    assert!(err.contains("EIO") && err.contains("bad"), "{err}");

    let mut v = SIMPLE_REPLY_MAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&22u32.to_be_bytes());
    v.extend_from_slice(&1u64.to_be_bytes());
    let (_, err) = run(v, 0, 512).unwrap();
    assert!(err.unwrap().contains("EINVAL"));

    let mut v = SIMPLE_REPLY_MAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(&1u64.to_be_bytes());
    v.extend_from_slice(b"wxyz");
    let (buf, err) = run(v, 0, 4).unwrap();
    assert_eq!((buf.as_slice(), err), (&b"wxyz"[..], None));
}

#[test]
fn chunks_outside_the_request_or_oversized_are_refused() {
    // Data past the request's end.
    let mut v = Vec::new();
    chunk(
        &mut v,
        REPLY_FLAG_DONE,
        REPLY_TYPE_OFFSET_DATA,
        1,
        &data_payload(2, b"abcd"),
    );
    assert!(run(v, 0, 4).is_err());
    // Data before the request's start.
    let mut v = Vec::new();
    chunk(
        &mut v,
        REPLY_FLAG_DONE,
        REPLY_TYPE_OFFSET_DATA,
        1,
        &data_payload(0, b"ab"),
    );
    assert!(run(v, 100, 2).is_err());
    // A hole of 4 GiB: refused from the header alone.
    let mut v = Vec::new();
    chunk(
        &mut v,
        REPLY_FLAG_DONE,
        REPLY_TYPE_OFFSET_HOLE,
        1,
        &hole_payload(0, u32::MAX),
    );
    assert!(run(v, 0, 4).is_err());
    // A data chunk claiming 4 GiB of payload (only the header is there).
    let mut v = STRUCTURED_REPLY_MAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&REPLY_FLAG_DONE.to_be_bytes());
    v.extend_from_slice(&REPLY_TYPE_OFFSET_DATA.to_be_bytes());
    v.extend_from_slice(&1u64.to_be_bytes());
    v.extend_from_slice(&u32::MAX.to_be_bytes());
    v.extend_from_slice(&0u64.to_be_bytes());
    assert!(run(v, 0, 4).is_err());
    // An error chunk whose message is longer than the chunk.
    let mut v = Vec::new();
    let mut p = 5u32.to_be_bytes().to_vec();
    p.extend_from_slice(&60000u16.to_be_bytes());
    chunk(&mut v, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, 1, &p);
    assert!(run(v, 0, 4).is_err());
    // An unknown non-error chunk type.
    let mut v = Vec::new();
    chunk(&mut v, REPLY_FLAG_DONE, 77, 1, &[]);
    assert!(run(v, 0, 4).is_err());
    // Truncated: a header cut short.
    let mut v = Vec::new();
    chunk(
        &mut v,
        REPLY_FLAG_DONE,
        REPLY_TYPE_OFFSET_DATA,
        1,
        &data_payload(0, b"abcd"),
    );
    v.truncate(v.len() - 2);
    let e = run(v, 0, 4).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    // A structured magic when structured replies were not negotiated.
    let mut v = Vec::new();
    chunk(&mut v, REPLY_FLAG_DONE, REPLY_TYPE_NONE, 1, &[]);
    assert!(read_reply_header(&mut Cursor::new(v), false).is_err());
}

#[test]
fn garbage_never_panics() {
    // A small deterministic generator: the same garbage every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..2000 {
        let len = (next() % 200) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half of the rounds start with valid magics, to get deeper.
        if round % 2 == 0 {
            let mut v = greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
            v.extend_from_slice(&REPLY_MAGIC.to_be_bytes());
            v.extend_from_slice(&OPT_STRUCTURED_REPLY.to_be_bytes());
            v.append(&mut bytes.clone());
            let _ = handshake(&mut mock(v), "x");
            let mut v = STRUCTURED_REPLY_MAGIC.to_be_bytes().to_vec();
            v.append(&mut bytes);
            bytes = v;
        } else {
            let _ = handshake(&mut mock(bytes.clone()), "x");
        }
        let _ = run_lenient(bytes);
    }
}

fn run_lenient(v: Vec<u8>) -> io::Result<()> {
    let mut r = Cursor::new(v);
    let mut buf = vec![0u8; 4096];
    let mut p = Pending::new(0, &mut buf);
    for _ in 0..100 {
        let h = read_reply_header(&mut r, true)?;
        read_reply_body(&mut r, &h, &mut p)?;
    }
    Ok(())
}

#[test]
fn uris_parse_as_qemu_writes_them() {
    let u = parse_uri("nbd://127.0.0.1/disk").unwrap();
    assert_eq!(
        u.address,
        Address::Tcp {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT
        }
    );
    assert_eq!(u.export, "disk");
    let u = parse_uri("nbd://host:1234").unwrap();
    assert_eq!(
        u.address,
        Address::Tcp {
            host: "host".into(),
            port: 1234
        }
    );
    assert_eq!(u.export, "");
    let u = parse_uri("nbd://[::1]:10810/a%20b").unwrap();
    assert_eq!(
        u.address,
        Address::Tcp {
            host: "::1".into(),
            port: 10810
        }
    );
    assert_eq!(u.export, "a b");
    let u = parse_uri("nbd+unix:///vm?socket=/run/x%2Cy.sock").unwrap();
    assert_eq!(u.address, Address::Unix("/run/x,y.sock".into()));
    assert_eq!(u.export, "vm");
    let u = parse_uri("nbd+unix://?socket=/s").unwrap();
    assert_eq!(u.export, "");
    for bad in [
        "nbd://",
        "nbd://:10809/x",
        "nbd://h:port/x",
        "nbd://[::1/x",
        "nbd+unix:///x",
        "nbd+unix://host/x?socket=/s",
        "nbd://h/%zz",
        "http://h/x",
    ] {
        assert!(parse_uri(bad).is_err(), "{bad}");
    }
    let e = parse_uri("nbds://h/x").unwrap_err().to_string();
    assert!(e.contains("TLS"), "{e}");
    assert!(is_uri("nbd+unix:///x?socket=/s") && !is_uri("/var/lib/vz/x.raw"));
}

/// How the fake server below behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Answers every read, out of order in pairs, structured.
    Serve,
    /// Answers the handshake, then never a read.
    Silent,
    /// Closes the connection at the first read.
    Die,
}

/// Accept one client on `l` and answer its handshake: an export of `size`
/// bytes with transmission `flags`; other options answered with `other`
/// (`REP_ACK`: structured replies).
fn accept_handshake(
    l: &std::net::TcpListener,
    size: u64,
    flags: u16,
    other: u32,
) -> std::net::TcpStream {
    accept_handshake_with(l, size, flags, other, None)
}

/// [`accept_handshake`], stating `block_size` (minimum, preferred,
/// maximum) in `NBD_INFO_BLOCK_SIZE` when given.
fn accept_handshake_with(
    l: &std::net::TcpListener,
    size: u64,
    flags: u16,
    other: u32,
    block_size: Option<(u32, u32, u32)>,
) -> std::net::TcpStream {
    let (mut s, _) = l.accept().unwrap();
    s.write_all(&greeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
        .unwrap();
    let mut b4 = [0u8; 4];
    s.read_exact(&mut b4).unwrap();
    loop {
        let mut h = [0u8; 16];
        s.read_exact(&mut h).unwrap();
        let opt = u32::from_be_bytes(h[8..12].try_into().unwrap());
        let len = u32::from_be_bytes(h[12..16].try_into().unwrap());
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data).unwrap();
        let mut v = Vec::new();
        if opt == OPT_GO {
            opt_reply(&mut v, OPT_GO, REP_INFO, &info_export(size, flags));
            if let Some((min, pref, max)) = block_size {
                let mut bs = INFO_BLOCK_SIZE.to_be_bytes().to_vec();
                for n in [min, pref, max] {
                    bs.extend_from_slice(&n.to_be_bytes());
                }
                opt_reply(&mut v, OPT_GO, REP_INFO, &bs);
            }
            opt_reply(&mut v, OPT_GO, REP_ACK, &[]);
            s.write_all(&v).unwrap();
            return s;
        }
        opt_reply(&mut v, opt, other, &[]);
        s.write_all(&v).unwrap();
    }
}

/// A fake NBD server on 127.0.0.1 serving `disk`; its URI.
fn fake_server(disk: Vec<u8>, mode: Mode) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut s = accept_handshake(
            &l,
            disk.len() as u64,
            FLAG_HAS_FLAGS | FLAG_READ_ONLY,
            REP_ACK,
        );
        let mut held: Vec<(u64, u64, u32)> = Vec::new();
        loop {
            let mut r = [0u8; 28];
            if s.read_exact(&mut r).is_err() {
                return;
            }
            let kind = u16::from_be_bytes(r[6..8].try_into().unwrap());
            if kind == CMD_DISC {
                return;
            }
            assert_eq!(kind, CMD_READ, "the client sent a command other than READ");
            match mode {
                Mode::Silent => continue,
                Mode::Die => return,
                Mode::Serve => {}
            }
            let handle = u64::from_be_bytes(r[8..16].try_into().unwrap());
            let off = u64::from_be_bytes(r[16..24].try_into().unwrap());
            let len = u32::from_be_bytes(r[24..28].try_into().unwrap());
            held.push((handle, off, len));
            // Answer in pairs, the second request first; a lone one after 5 ms.
            if held.len() < 2 {
                s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
                let mut peek = [0u8; 1];
                let more = matches!(s.peek(&mut peek), Ok(n) if n > 0);
                s.set_read_timeout(None).unwrap();
                if more {
                    continue;
                }
            }
            for (handle, off, len) in held.drain(..).rev() {
                let mut v = Vec::new();
                let bytes = &disk[off as usize..(off + u64::from(len)) as usize];
                let half = bytes.len() / 2;
                if bytes[half..].iter().all(|&b| b == 0) {
                    chunk(
                        &mut v,
                        0,
                        REPLY_TYPE_OFFSET_HOLE,
                        handle,
                        &hole_payload(off + half as u64, (bytes.len() - half) as u32),
                    );
                } else {
                    chunk(
                        &mut v,
                        0,
                        REPLY_TYPE_OFFSET_DATA,
                        handle,
                        &data_payload(off + half as u64, &bytes[half..]),
                    );
                }
                chunk(
                    &mut v,
                    REPLY_FLAG_DONE,
                    REPLY_TYPE_OFFSET_DATA,
                    handle,
                    &data_payload(off, &bytes[..half]),
                );
                s.write_all(&v).unwrap();
            }
        }
    });
    format!("nbd://127.0.0.1:{port}/")
}

fn disk_bytes(len: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
    // A zero run, served as a hole.
    d[3 << 20..(3 << 20) + (2 << 20)].fill(0);
    d
}

#[test]
fn reads_through_a_socket_equal_the_disk() {
    let disk = disk_bytes(8 << 20);
    let uri = fake_server(disk.clone(), Mode::Serve);
    let n = Nbd::open_with_timeout(&parse_uri(&uri).unwrap(), Duration::from_secs(10)).unwrap();
    assert_eq!(n.size(), disk.len() as u64);
    assert!(n.export().structured);
    let n = Arc::new(n);
    let mut threads = Vec::new();
    for t in 0..4u64 {
        let n = Arc::clone(&n);
        let disk = disk.clone();
        threads.push(std::thread::spawn(move || {
            for (off, len) in [
                (t * 1000 + 1, 10usize),
                (t * 65536 + 65530, 20),
                (t * (1 << 20) + 12345, 3 << 20),
                (0, 512),
                ((8 << 20) - 700, 700),
            ] {
                let mut buf = vec![0u8; len];
                n.read_exact_at(off, &mut buf).unwrap();
                assert_eq!(&buf[..], &disk[off as usize..off as usize + len]);
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let mut b = [0u8; 2];
    assert!(n.read_exact_at((8 << 20) - 1, &mut b).is_err());
}

#[test]
fn a_silent_server_ends_in_an_error_naming_the_range() {
    let uri = fake_server(vec![0u8; 1 << 20], Mode::Silent);
    let n = Nbd::open_with_timeout(&parse_uri(&uri).unwrap(), Duration::from_secs(1)).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 100];
    let e = n.read_exact_at(4096, &mut buf).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(
        e.contains(&uri) && e.contains("bytes 0..65536") && e.contains("no reply"),
        "{e}"
    );
    // The connection is given up: the next read fails at once.
    let t = Instant::now();
    assert!(n.read_exact_at(1 << 19, &mut buf).is_err());
    assert!(t.elapsed() < Duration::from_millis(500));
}

#[test]
fn a_server_that_dies_ends_in_an_error() {
    let uri = fake_server(vec![0u8; 1 << 20], Mode::Die);
    let n = Nbd::open_with_timeout(&parse_uri(&uri).unwrap(), Duration::from_secs(20)).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 100];
    let e = n.read_exact_at(0, &mut buf).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(e.contains("closed the connection"), "{e}");
}

/// A fake writable NBD server (simple replies) on 127.0.0.1 with
/// transmission `flags`; writes fail with EIO when `fail_writes`. Its URI,
/// the disk and the commands received.
#[allow(clippy::type_complexity)]
fn fake_rw_server(
    disk: Vec<u8>,
    flags: u16,
    fail_writes: bool,
) -> (String, Arc<Mutex<Vec<u8>>>, Arc<Mutex<Vec<u16>>>) {
    let (uri, disk, cmds, _) = fake_rw_server_with(disk, flags, fail_writes, None);
    (uri, disk, cmds)
}

/// [`fake_rw_server`] stating `block_size` (minimum, preferred, maximum):
/// a request that does not keep to it is answered with EINVAL and kept in
/// the list returned last (command, offset, length).
#[allow(clippy::type_complexity)]
fn fake_rw_server_with(
    disk: Vec<u8>,
    flags: u16,
    fail_writes: bool,
    block_size: Option<(u32, u32, u32)>,
) -> (
    String,
    Arc<Mutex<Vec<u8>>>,
    Arc<Mutex<Vec<u16>>>,
    Arc<Mutex<Vec<(u16, u64, u32)>>>,
) {
    let bad = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&bad);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let disk = Arc::new(Mutex::new(disk));
    let cmds = Arc::new(Mutex::new(Vec::new()));
    let (d, c) = (Arc::clone(&disk), Arc::clone(&cmds));
    let size = disk.lock().unwrap().len() as u64;
    std::thread::spawn(move || {
        // No structured replies: simple ones only.
        let mut s = accept_handshake_with(&l, size, flags, REP_ERR_UNSUP, block_size);
        loop {
            let mut r = [0u8; 28];
            if s.read_exact(&mut r).is_err() {
                return;
            }
            let kind = u16::from_be_bytes(r[6..8].try_into().unwrap());
            c.lock().unwrap().push(kind);
            let handle = u64::from_be_bytes(r[8..16].try_into().unwrap());
            let off = u64::from_be_bytes(r[16..24].try_into().unwrap()) as usize;
            let len = u32::from_be_bytes(r[24..28].try_into().unwrap()) as usize;
            let mut reply = Vec::new();
            reply.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
            let misfit = block_size.is_some_and(|(min, _, max)| {
                matches!(kind, CMD_READ | CMD_WRITE)
                    && (!off.is_multiple_of(min as usize)
                        || !len.is_multiple_of(min as usize)
                        || len > max as usize)
            });
            if misfit {
                b.lock().unwrap().push((kind, off as u64, len as u32));
                if kind == CMD_WRITE {
                    let mut data = vec![0u8; len];
                    s.read_exact(&mut data).unwrap();
                }
                reply.extend_from_slice(&22u32.to_be_bytes());
                reply.extend_from_slice(&handle.to_be_bytes());
                s.write_all(&reply).unwrap();
                continue;
            }
            match kind {
                CMD_DISC => return,
                CMD_WRITE => {
                    let mut data = vec![0u8; len];
                    s.read_exact(&mut data).unwrap();
                    let error: u32 = if fail_writes { 5 } else { 0 };
                    if !fail_writes {
                        d.lock().unwrap()[off..off + len].copy_from_slice(&data);
                    }
                    reply.extend_from_slice(&error.to_be_bytes());
                    reply.extend_from_slice(&handle.to_be_bytes());
                }
                CMD_READ => {
                    reply.extend_from_slice(&0u32.to_be_bytes());
                    reply.extend_from_slice(&handle.to_be_bytes());
                    reply.extend_from_slice(&d.lock().unwrap()[off..off + len]);
                }
                _ => {
                    reply.extend_from_slice(&0u32.to_be_bytes());
                    reply.extend_from_slice(&handle.to_be_bytes());
                }
            }
            s.write_all(&reply).unwrap();
        }
    });
    (format!("nbd://127.0.0.1:{port}/"), disk, cmds, bad)
}

/// The writer of `uri`'s export, on the connection of a reader opened
/// with a 10 s deadline.
fn writer(uri: &str) -> Result<NbdWriter> {
    NbdWriter::new(&Nbd::open_with_timeout(
        &parse_uri(uri).unwrap(),
        Duration::from_secs(10),
    )?)
}

#[test]
fn the_writer_writes_flushes_and_reads_back_on_the_readers_connection() {
    let (uri, disk, cmds) =
        fake_rw_server(vec![7u8; 8192], FLAG_HAS_FLAGS | FLAG_SEND_FLUSH, false);
    let w = writer(&uri).unwrap();
    assert_eq!(w.size(), 8192);
    assert_eq!(w.key(), PathBuf::from(&uri));
    w.write_all_at(b"abcd", 100).unwrap();
    w.sync().unwrap();
    let mut back = [0u8; 6];
    w.read_exact_at(99, &mut back).unwrap();
    assert_eq!(&back, b"\x07abcd\x07");
    // Past the end: refused before anything is sent.
    assert!(w.write_all_at(b"xy", 8191).is_err());
    drop(w);
    assert_eq!(&disk.lock().unwrap()[100..104], b"abcd");
    // The server sees the disconnect after the last request.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cmds.lock().unwrap().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        *cmds.lock().unwrap(),
        vec![CMD_WRITE, CMD_FLUSH, CMD_READ, CMD_DISC]
    );
}

#[test]
fn the_writer_refuses_a_read_only_export_and_names_failed_ranges() {
    let (uri, disk, cmds) = fake_rw_server(vec![0u8; 4096], FLAG_HAS_FLAGS | FLAG_READ_ONLY, false);
    let e = writer(&uri).err().unwrap().to_string();
    assert!(
        e.contains("NBD_FLAG_READ_ONLY") && e.contains(&uri) && e.contains("nothing was written"),
        "{e}"
    );
    assert!(cmds.lock().unwrap().iter().all(|&c| c != CMD_WRITE));
    assert!(disk.lock().unwrap().iter().all(|&b| b == 0));

    // A server without SEND_FLUSH: no flush is sent; a failed write names its range.
    let (uri, disk, cmds) = fake_rw_server(vec![0u8; 4096], FLAG_HAS_FLAGS, true);
    let w = writer(&uri).unwrap();
    w.sync().unwrap();
    let e = w.write_all_at(b"abcd", 100).unwrap_err().to_string();
    assert!(
        e.contains("write of bytes 100..104 failed") && e.contains("EIO"),
        "{e}"
    );
    drop(w);
    assert!(disk.lock().unwrap().iter().all(|&b| b == 0));
    assert!(!cmds.lock().unwrap().contains(&CMD_FLUSH));
}

#[test]
fn reads_and_writes_keep_to_the_block_sizes_the_server_states() {
    let disk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let (uri, served, cmds, bad) = fake_rw_server_with(
        disk.clone(),
        FLAG_HAS_FLAGS | FLAG_SEND_FLUSH,
        false,
        Some((4096, 4096, 8192)),
    );
    let n = Nbd::open_with_timeout(&parse_uri(&uri).unwrap(), Duration::from_secs(10)).unwrap();
    // The reader: unaligned reads, small and big, and the blocks cached.
    for (off, len) in [(5000u64, 10usize), (100, 30_000), (65_530, 6)] {
        let mut buf = vec![0u8; len];
        n.read_exact_at(off, &mut buf).unwrap();
        assert_eq!(&buf[..], &disk[off as usize..off as usize + len]);
    }
    // The writer, on the same connection: a write inside one block, one
    // across three blocks with both edges unaligned, one aligned.
    let w = NbdWriter::new(&n).unwrap();
    let mut want = disk.clone();
    for (off, len, fill) in [
        (5000usize, 10usize, 0xaau8),
        (3000, 9000, 0xbb),
        (16384, 8192, 0xcc),
    ] {
        let data = vec![fill; len];
        w.write_all_at(&data, off as u64).unwrap();
        want[off..off + len].copy_from_slice(&data);
    }
    w.sync().unwrap();
    let mut back = vec![0u8; 20_000];
    w.read_exact_at(2999, &mut back).unwrap();
    assert_eq!(&back[..], &want[2999..22_999]);
    assert_eq!(
        *served.lock().unwrap(),
        want,
        "the edges kept the server's bytes"
    );
    // The reader's cached blocks of the written ranges were dropped.
    let mut again = vec![0u8; 10];
    n.read_exact_at(5000, &mut again).unwrap();
    assert_eq!(&again[..], &want[5000..5010]);
    let mut all = vec![0u8; want.len()];
    n.read_exact_at(0, &mut all).unwrap();
    assert_eq!(all, want);
    assert!(bad.lock().unwrap().is_empty(), "{:?}", bad.lock().unwrap());
    // One connection: the writer's requests went on the reader's socket.
    let c = cmds.lock().unwrap();
    assert!(c.contains(&CMD_WRITE) && c.contains(&CMD_FLUSH), "{c:?}");
}

#[test]
fn a_write_on_a_dead_connection_names_its_range() {
    let (uri, _, _) = fake_rw_server(vec![0u8; 4096], FLAG_HAS_FLAGS, false);
    let n = Nbd::open_with_timeout(&parse_uri(&uri).unwrap(), Duration::from_secs(10)).unwrap();
    let w = NbdWriter::new(&n).unwrap();
    n.conn.die("the test closed it".into());
    let e = w.write_all_at(b"ab", 10).unwrap_err().to_string();
    assert!(
        e.contains(&uri) && e.contains("write of bytes 10..12") && e.contains("the test closed it"),
        "{e}"
    );
}
