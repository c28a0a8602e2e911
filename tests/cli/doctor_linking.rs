//! The doctor's linking check (`src/doctor/closure.rs`) on real guests:
//! the healthy Debian 12 guest (nothing found), the demo (the repointed
//! `libc.so.6` found and ranked first, relink to `libc-2.12.so`), and the
//! broken Debian guests of `tests/fixtures/make/doctor-linking.sh`, each
//! with one thing broken: a `libc.so.6` of an older glibc copied over the
//! real one, a library systemd needs deleted, a symbol version the
//! installed library lacks, a dangling `ld-linux-x86-64.so.2`.
//!
//! Each opens the guest as `vmrescue doctor` does (the guest namespace) and
//! runs `vmrescue::doctor::examine`.

use crate::common;

use vmrescue::doctor::{self, Check, Finding, Impact, Repair, Report, Severity};
use vmrescue::engine::{EngineChoice, Engines, select_volume};
use vmrescue::fs::FsOptions;
use vmrescue::guest::Namespace;

/// The doctor's report on fixture image `name`, over the whole guest.
fn examine(name: &str) -> Report {
    let image = vmrescue::image::open(&common::fixture(name)).unwrap();
    let mut layout = vmrescue::layers::scan(vec![image]);
    let engines = Engines::new(EngineChoice::Userspace);
    let opts = FsOptions::default();
    let found = vmrescue::layers::inspect::inspect(&layout, &|id| {
        engines.userspace().open_fs(&layout, id, &opts)
    });
    layout.apply_inspection(&found);
    let id = select_volume(&layout, None).unwrap();
    let ns = Namespace::build(&layout, id, &|v| engines.open_fs(&layout, v, &opts));
    let fs = ns.fs();
    let ctx = doctor::Context::new(&*fs, Some(&ns), Some(&layout));
    doctor::examine(&ctx)
}

fn linking(r: &Report) -> Vec<&Finding> {
    r.findings
        .iter()
        .filter(|f| f.check == Check::Linking)
        .collect()
}

fn show(f: &[&Finding]) -> String {
    f.iter()
        .map(|f| format!("{:?} {:?} {}\n  {}\n", f.severity, f.impact, f.summary, f.evidence.join("\n  ")))
        .collect()
}

fn checked(r: &Report) -> String {
    r.checked
        .iter()
        .find(|c| c.check == Check::Linking)
        .map(|c| c.summary.clone())
        .unwrap_or_default()
}

#[test]
fn healthy_debian_has_no_linking_finding() {
    let r = examine("debian12");
    let found = linking(&r);
    assert!(found.is_empty(), "{}", show(&found));
    let summary = checked(&r);
    eprintln!("{summary}");
    assert!(summary.contains("ELF objects for"), "{summary}");
}

#[test]
fn demo_libc_of_another_glibc_ranks_first_with_relink() {
    let r = examine("demo");
    let found = linking(&r);
    eprintln!("{}", show(&found));
    let first = &r.findings[0];
    assert_eq!(first.check, Check::Linking, "{}", show(&found));
    assert_eq!(first.severity, Severity::Critical);
    assert_eq!(first.impact, Impact::Boot);
    assert_eq!(first.path.as_deref(), Some(&b"/lib64/libc.so.6"[..]));
    assert!(first.summary.contains("glibc 2.14"), "{}", first.summary);
    assert!(
        first.evidence.iter().any(|e| e
            == "libc.so.6 -> /opt/glibc-2.14/lib/libc-2.14.so (via the symlink /lib64/libc.so.6)"),
        "{:#?}",
        first.evidence
    );
    let a = first.relink().expect("a relink repair");
    assert_eq!(a.proposal().unwrap().target, b"libc-2.12.so");
}
