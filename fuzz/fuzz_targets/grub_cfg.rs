//! GRUB 2's `grub.cfg` on arbitrary text: the lexer, the parser, the run
//! that makes the menu (with a `grubenv` block from the bytes after the
//! first NUL), the default's selection from every `default` spelling, and
//! a BLS-style `$var` expansion. No panic, and bounded work: nesting,
//! variables and values are capped (the fuzzer's timeout catches a runaway).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmrescue::doctor::boot::grub;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (cfg, env) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let vars = grub::parse_env(env);
    let text = String::from_utf8_lossy(cfg);
    let menu = grub::read(&text, vars.clone(), &grub::NoHost);
    let path = grub::select(&menu.items, menu.vars.get("default").map(String::as_str));
    if !menu.items.is_empty() {
        assert!(!path.is_empty() || has_empty_submenu(&menu.items));
    }
    for spec in ["0", "1>0", "x>>y>z", "0x10", ""] {
        let _ = grub::select(&menu.items, Some(spec));
    }
    let _ = grub::expand_line(&text, &vars);
});

fn has_empty_submenu(items: &[grub::Item]) -> bool {
    items.iter().any(|i| match i {
        grub::Item::Submenu { items, .. } => items.is_empty() || has_empty_submenu(items),
        grub::Item::Entry(_) => false,
    })
}
