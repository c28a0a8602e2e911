//! pmxcfs's database (`config.db`) and its WAL from arbitrary bytes: the
//! SQLite header, the schema table, table b-tree pages, overflow chains,
//! records, WAL frames, and the `tree` rows made into guest
//! configurations. The first two bytes (big-endian) say how many of the
//! rest are the database file; what follows is the WAL (none when empty).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::pve::hostdb::HostConfig;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (main, wal) = rest.split_at(split);
    let wal = (!wal.is_empty()).then_some(wal);
    if let Ok(h) = HostConfig::from_db(main, wal) {
        let _ = h.label("pve", "vm-100-disk-0");
    }
});
