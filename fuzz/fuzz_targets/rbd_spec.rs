//! The `rbd:POOL/IMAGE[@SNAP][:key=value...]` name parser and Proxmox's
//! `rbd` storage resolution on arbitrary text: no panic; a parsed name has
//! a pool and an image, and what storage.cfg resolves to parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::image::rbd;
use vmrescue::pve::storage;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(spec) = rbd::parse(&format!("rbd:{text}")) {
        assert!(!spec.pool.is_empty() && !spec.image.is_empty());
    }
    let cfg = format!("rbd: s\n\tpool p\n{text}");
    let storages = storage::parse(&cfg);
    let volume = text.lines().last().unwrap_or_default();
    if let Ok(p) = storage::resolve(
        std::path::Path::new("/etc/pve"),
        &storages,
        &format!("s:{volume}"),
    ) && let Some(s) = p.to_str()
        && s.starts_with("rbd:")
    {
        assert!(rbd::parse(s).is_ok(), "{s}");
    }
});
