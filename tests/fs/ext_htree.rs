//! Directory index hashes against debugfs, and lookups through the htree.

use crate::common;
use crate::ext_support;

use std::process::Command;

use vmrescue::fs::FsView;
use vmrescue::fs::ext::hash::dx_hash;
use vmrescue::fs::path::resolve;

/// debugfs's `dx_hash` of `name` with hash version `version` and seed `seed` (UUID form).
fn debugfs_hash(version: u8, seed: Option<&str>, name: &[u8]) -> u32 {
    let image = common::fixture("ext-ext4-4k");
    let mut req = format!("dx_hash -h {version} ");
    if let Some(s) = seed {
        req.push_str(&format!("-s {s} "));
    }
    let mut arg = req.into_bytes();
    arg.extend_from_slice(name);
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(std::ffi::OsStr::from_bytes(&arg))
        .arg(&image)
        .output()
        .expect("run debugfs");
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text
        .split(" is 0x")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("debugfs said: {text}"));
    u32::from_str_radix(hex, 16).unwrap()
}

fn seed_words(uuid: &str) -> [u32; 4] {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let w = |i: usize| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    [w(0), w(1), w(2), w(3)]
}

#[test]
fn hashes_match_debugfs() {
    let names: Vec<Vec<u8>> = vec![
        b"a".to_vec(),
        b"abc".to_vec(),
        b"entry-000123-with-a-longer-name".to_vec(),
        b"caf\xe9-a-much-longer-name-exceeding-32-bytes-and-then-some-more-bytes".to_vec(),
        b"\xff\xfe\x80high-bytes".to_vec(),
        vec![b'n'; 255],
    ];
    let seed = "01234567-89ab-cdef-0123-456789abcdef";
    for name in &names {
        for version in 0..=5u8 {
            for s in [None, Some(seed)] {
                let want = debugfs_hash(version, s, name);
                let words = s.map_or([0; 4], seed_words);
                let got = dx_hash(name, version, words).expect("known version");
                assert_eq!(
                    got,
                    want,
                    "version {version}, seed {s:?}, name {}",
                    ext_support::esc(name)
                );
            }
        }
    }
}

#[test]
fn every_name_is_found_through_the_index() {
    for (name, dir) in [
        ("ext-ext4-4k", "/big"),
        ("ext-ext4-1k", "/big"),
        ("ext-ext3-2k", "/big"),
    ] {
        let fs = ext_support::open(name);
        let big = resolve(&fs, dir.as_bytes(), false).unwrap().node;
        let entries = fs.read_dir(big).unwrap();
        assert!(entries.len() >= 3000, "{name}: {} entries", entries.len());
        for e in &entries {
            assert_eq!(
                fs.htree_lookup(big, &e.name).unwrap(),
                Some(Some(e.node)),
                "{name}: {}",
                ext_support::esc(&e.name)
            );
            assert_eq!(fs.lookup(big, &e.name).unwrap(), Some(e.node));
        }
        assert!(matches!(
            fs.htree_lookup(big, b"no-such-name").unwrap(),
            Some(None) | None
        ));
        assert_eq!(fs.lookup(big, b"no-such-name").unwrap(), None);
        assert!(
            fs.status().problems.is_empty(),
            "{:?}",
            fs.status().problems
        );
    }
}
