//! Windows registry hives on hostile bytes: open, then walk the keys two
//! levels down with their values, and look the inspection's paths up. No
//! panic; what is found is bounded by the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::layers::windows::hive::Hive;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = Hive::new(data) else {
        return;
    };
    let Ok(root) = h.root() else {
        return;
    };
    let _ = h.values(root);
    if let Ok(keys) = h.subkeys(root) {
        for k in keys.into_iter().take(64) {
            let _ = h.name(k);
            if let Ok(values) = h.values(k) {
                for v in values {
                    assert!(v.data.len() <= data.len());
                    let _ = (v.text(), v.dword());
                }
            }
            if let Ok(sub) = h.subkeys(k) {
                for s in sub.into_iter().take(64) {
                    let _ = (h.name(s), h.values(s));
                }
            }
        }
    }
    for p in [r"Microsoft\Windows NT\CurrentVersion", r"Select", r"MountedDevices"] {
        let _ = h.key(p);
    }
});
