//! `/etc/ld.so.cache` on hostile bytes: parse (old and new formats), then
//! look every key up for a few ABIs. No panic; a lookup finds only what
//! was parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::elf::ldcache;

fuzz_target!(|data: &[u8]| {
    let Ok(cache) = ldcache::parse(data) else {
        return;
    };
    for e in cache.entries.iter().take(64) {
        for (class, machine) in [(64, 62), (32, 3), (64, 183), (32, 40)] {
            if let Some(v) = cache.lookup(&e.key, class, machine) {
                assert!(cache.entries.iter().any(|x| x.value == v));
            }
        }
    }
});
