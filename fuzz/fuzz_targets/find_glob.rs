//! `find -name`'s glob matcher on hostile patterns and names: no panic and
//! no runaway backtracking (the fuzzer's timeout catches that), and a pattern
//! with no special byte matches exactly the name that equals it. A
//! case-sensitive match also matches folded, except through a negated
//! bracket: `[!a]` matches `A` but not under `-iname` (glibc folds both sides
//! the same way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::ops::find::fnmatch;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (pattern, name) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let plain = fnmatch(pattern, name, false);
    let folded = fnmatch(pattern, name, true);
    let negated = pattern.windows(2).any(|w| w == b"[!" || w == b"[^");
    assert!(
        !plain || folded || negated,
        "a case-sensitive match must match folded too"
    );
    if !pattern.iter().any(|b| b"*?[\\".contains(b)) {
        assert_eq!(plain, pattern == name);
    }
    assert!(fnmatch(b"*", name, false));
});
