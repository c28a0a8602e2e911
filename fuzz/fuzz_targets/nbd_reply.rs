//! The NBD client's handshake and reply reader on arbitrary server bytes:
//! the first half of the input is the server's side of the handshake, the
//! second a stream of replies to one 64 KiB read request. No panic, no
//! allocation beyond the caps (an option reply's 64 KiB, the request's
//! own buffer), and never a byte written outside the request.
#![no_main]

use std::io::{Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;
use vmrescue::image::nbd::proto;

/// The server's bytes to read; what the client writes is dropped.
struct Peer(Cursor<Vec<u8>>);

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let (hs, replies) = data.split_at(data.len() / 2);
    let _ = proto::handshake(&mut Peer(Cursor::new(hs.to_vec())), "fuzz");
    let mut r = Cursor::new(replies.to_vec());
    'requests: for _ in 0..64 {
        let mut buf = vec![0u8; 64 * 1024];
        let mut p = proto::Pending::new(1 << 20, &mut buf);
        for _ in 0..256 {
            let Ok(h) = proto::read_reply_header(&mut r, true) else {
                break 'requests;
            };
            match proto::read_reply_body(&mut r, &h, &mut p) {
                Ok(proto::Step::Done) => {
                    assert!(p.error.is_some() || p.covered == 64 * 1024);
                    continue 'requests;
                }
                Ok(proto::Step::More) => {}
                Err(_) => break 'requests,
            }
        }
    }
});
