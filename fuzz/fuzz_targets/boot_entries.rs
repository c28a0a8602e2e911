//! The other boot configurations on arbitrary text: a BLS entry file (and
//! GRUB's and systemd-boot's orders over it and a copy of it), systemd-boot's
//! `loader.conf` with its `default` glob, GRUB legacy's `grub.conf` and its
//! `default` file. No panic; rpm's version order stays antisymmetric.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::doctor::boot::{bls, legacy};

fuzz_target!(|data: &[u8]| {
    let e = bls::parse_entry("fuzz.conf", data);
    let mut other = e.clone();
    other.id = "other".into();
    let mut v = vec![e.clone(), other];
    bls::sort_for_grub(&mut v);
    bls::sort_for_systemd_boot(&mut v);
    let _ = e.to_entry();
    let pattern = bls::loader_default(data);
    let _ = bls::systemd_boot_default(&v, pattern.as_ref().map(|(p, _)| p.as_str()));
    let text = String::from_utf8_lossy(data);
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid += 1;
    }
    let (a, b) = text.split_at(mid);
    assert_eq!(bls::vercmp(a, b), bls::vercmp(b, a).reverse());
    let c = legacy::parse(data);
    assert!(c.entries.len() <= 4096);
    let _ = legacy::saved_default(data);
});
