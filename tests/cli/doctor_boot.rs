//! The doctor's boot check (issue #20) on guests made by
//! `tests/fixtures/make/doctor-boot.sh` from a real Debian 12 install:
//! each breaks one thing the boot loader's default entry needs, and the
//! healthy guests (Debian 12 with GRUB 2, a RHEL-like BLS layout with a
//! separate /boot, the CentOS 6 demo with GRUB legacy) give no boot finding.
//! The guest is examined through the library, as `vmrescue doctor` does:
//! the layout scanned and inspected, the guest's namespace built.

use crate::common;

use vmrescue::doctor::{self, Check, Finding, Impact, Repair, Report, Severity};
use vmrescue::engine::select_volume;
use vmrescue::engine::userspace::Userspace;
use vmrescue::fs::FsOptions;
use vmrescue::guest::Namespace;

/// What the boot check says it looked at.
fn boot_summary(report: &Report) -> String {
    report
        .checked
        .iter()
        .find(|c| c.check == Check::Boot)
        .map(|c| c.summary.clone())
        .unwrap_or_default()
}

/// `doctor::examine` on the guest of fixture `name`.
fn examine(name: &str) -> Report {
    with_guest(name, doctor::examine)
}

/// `f` on a doctor context over the guest of fixture `name`, opened as
/// `vmrescue doctor` opens it (the whole guest: root and the volumes its
/// fstab mounts).
fn with_guest<T>(name: &str, f: impl FnOnce(&doctor::Context<'_>) -> T) -> T {
    let image = common::fixture(name);
    let img = vmrescue::image::open(&image).unwrap();
    let mut layout = vmrescue::layers::scan(vec![img]);
    let us = Userspace::default();
    let opts = FsOptions::default();
    let found = vmrescue::layers::inspect::inspect(&layout, &|id| us.open_fs(&layout, id, &opts));
    layout.apply_inspection(&found);
    let id = select_volume(&layout, None).unwrap();
    let ns = Namespace::build(&layout, id, &|v| us.open_fs(&layout, v, &opts));
    let fs = ns.fs();
    let ctx = doctor::Context::new(&*fs, Some(&ns), Some(&layout));
    f(&ctx)
}

fn boot_findings(r: &Report) -> Vec<&Finding> {
    r.findings
        .iter()
        .filter(|f| f.check == Check::Boot)
        .collect()
}

fn only_one(r: &Report) -> &Finding {
    let b = boot_findings(r);
    assert_eq!(b.len(), 1, "one boot finding expected: {b:#?}");
    b[0]
}

/// The one boot finding of fixture `name`, of this severity and impact,
/// with the whole report.
fn finding(name: &str, severity: Severity, impact: Impact) -> (Report, Finding) {
    let r = examine(name);
    let f = only_one(&r).clone();
    assert_eq!((f.severity, &f.impact), (severity, &impact), "{name}");
    (r, f)
}

fn view(f: &Finding) -> (String, Option<u32>, String) {
    match &f.repair {
        Some(Repair::View { path, line, hint }) => (
            String::from_utf8_lossy(path).into_owned(),
            *line,
            hint.clone(),
        ),
        other => panic!("a View repair expected, got {other:?}"),
    }
}

/// The 1-based line of `grub.cfg` text holding `needle` after `after`.
fn line_of(text: &str, after: &str, needle: &str) -> u32 {
    let start = text.find(after).expect("anchor in grub.cfg");
    let at = start + text[start..].find(needle).expect("needle in grub.cfg");
    u32::try_from(text[..at].matches('\n').count() + 1).unwrap()
}

fn guest_file(fixture: &str, path: &str) -> String {
    let img = common::fixture(fixture);
    let o = common::vmrescue(&["cat", img.to_str().unwrap(), path]);
    assert!(
        o.status.success(),
        "cat {path}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn healthy_debian_has_no_boot_finding() {
    let r = examine("debian12");
    assert!(boot_findings(&r).is_empty(), "{:#?}", boot_findings(&r));
    let s = boot_summary(&r);
    assert!(
        s.starts_with("GRUB 2 /boot/grub/grub.cfg (3 entries): default 'Debian GNU/Linux'"),
        "{s}"
    );
    assert!(s.contains("its files are there"), "{s}");
}

#[test]
fn demo_grub_legacy_with_separate_boot_has_no_boot_finding() {
    let r = examine("demo");
    assert!(boot_findings(&r).is_empty(), "{:#?}", boot_findings(&r));
    let s = boot_summary(&r);
    assert!(
        s.starts_with(
            "GRUB legacy /boot/grub/grub.conf (1 entry): default 'CentOS (2.6.32-358.el6.x86_64)'"
        ),
        "{s}"
    );
}

#[test]
fn healthy_bls_layout_has_no_boot_finding() {
    let r = examine("doctor-boot-bls");
    assert!(boot_findings(&r).is_empty(), "{:#?}", boot_findings(&r));
    let s = boot_summary(&r);
    assert!(s.starts_with("GRUB 2 /boot/grub2/grub.cfg (2 entries): default 'Debian GNU/Linux 12 (bookworm) (6.1.0-"), "{s}");
    // The default's command line comes from grubenv's kernelopts.
    let cmdline = with_guest("doctor-boot-bls", |ctx| {
        ctx.kernel_cmdline().map(str::to_string)
    });
    assert_eq!(
        cmdline.as_deref(),
        Some(
            "root=UUID=5e1f0c3a-9d2b-4c7e-8a61-2b3c4d5e6f12 ro console=ttyS0,115200n8 no_timer_check net.ifnames=0"
        )
    );
}

#[test]
fn missing_initramfs_of_the_default_entry() {
    let (_, f) = finding("doctor-boot-initrd", Severity::Critical, Impact::Boot);
    assert!(
        f.summary.starts_with("the default boot entry 'Debian GNU/Linux' cannot start: its initramfs /boot/initrd.img-6.1.0-"),
        "{}",
        f.summary
    );
    assert!(f.summary.ends_with(" is missing"), "{}", f.summary);
    assert_eq!(f.path.as_deref(), Some(b"/boot/grub/grub.cfg".as_slice()));
    // grubenv -> default -> the entry -> the file, and the entry that works.
    assert_eq!(f.evidence[0], "grubenv saved_entry=0 (/boot/grub/grubenv)");
    assert!(
        f.evidence[1].starts_with("/boot/grub/grub.cfg line "),
        "{:?}",
        f.evidence
    );
    assert!(f.evidence[1].ends_with(": default=0"), "{:?}", f.evidence);
    assert!(
        f.evidence[2].starts_with("menuentry 'Debian GNU/Linux' (/boot/grub/grub.cfg line "),
        "{:?}",
        f.evidence
    );
    assert!(
        f.evidence[3].starts_with("initrd /boot/initrd.img-6.1.0-")
            && f.evidence[3].ends_with(": missing"),
        "{:?}",
        f.evidence
    );
    let cfg = guest_file("doctor-boot-initrd", "/boot/grub/grub.cfg");
    let (path, line, hint) = view(&f);
    assert_eq!(path, "/boot/grub/grub.cfg");
    assert_eq!(
        line,
        Some(line_of(&cfg, "menuentry 'Debian GNU/Linux'", "initrd\t"))
    );
    // The previous kernel, in the submenu, has all its files.
    let good = "the entry 'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-49-cloud-amd64' has all its files";
    assert_eq!(f.evidence[4], good, "{:?}", f.evidence);
    assert!(hint.contains("6.1.0-49-cloud-amd64' the default"), "{hint}");
}

#[test]
fn root_uuid_of_no_volume() {
    let (_, f) = finding("doctor-boot-root", Severity::Critical, Impact::Boot);
    assert_eq!(
        f.summary,
        "the default boot entry 'Debian GNU/Linux' cannot mount its root: root=UUID=0dead000-1111-4222-8333-444455556666 names no volume of this guest (the guest's root filesystem is UUID=5e1f0c3a-9d2b-4c7e-8a61-2b3c4d5e6f01)"
    );
    assert_eq!(
        f.evidence.last().unwrap(),
        "root=UUID=0dead000-1111-4222-8333-444455556666: no volume is UUID=0dead000-1111-4222-8333-444455556666"
    );
    let cfg = guest_file("doctor-boot-root", "/boot/grub/grub.cfg");
    let (path, line, _) = view(&f);
    assert_eq!(path, "/boot/grub/grub.cfg");
    assert_eq!(
        line,
        Some(line_of(&cfg, "menuentry 'Debian GNU/Linux'", "linux\t"))
    );
}

#[test]
fn modules_of_the_default_kernel_missing() {
    let (_, f) = finding("doctor-boot-modules", Severity::Error, Impact::Boot);
    assert!(
        f.summary.starts_with("the default boot entry 'Debian GNU/Linux' has no modules for its kernel: /lib/modules/6.1.0-"),
        "{}",
        f.summary
    );
    assert!(f.evidence.last().unwrap().ends_with(": missing"));
    let (path, line, _) = view(&f);
    assert_eq!(path, "/boot/grub/grub.cfg");
    assert!(line.is_some());
}

#[test]
fn empty_kernel_of_the_default_bls_entry() {
    let (_, f) = finding("doctor-boot-bls-empty", Severity::Critical, Impact::Boot);
    let entry = "/boot/loader/entries/8b5d1f0e2c3a4b6d9e7f0a1b2c3d4e5f-6.1.0-50-cloud-amd64.conf";
    assert_eq!(
        f.summary,
        "the default boot entry 'Debian GNU/Linux 12 (bookworm) (6.1.0-50-cloud-amd64)' cannot start: its kernel /boot/vmlinuz-6.1.0-50-cloud-amd64 is empty (0 bytes)"
    );
    assert_eq!(
        f.evidence,
        vec![
            "grubenv saved_entry=8b5d1f0e2c3a4b6d9e7f0a1b2c3d4e5f-6.1.0-50-cloud-amd64 (/boot/grub2/grubenv)".to_string(),
            format!("/boot/grub2/grub.cfg line 22: default=8b5d1f0e2c3a4b6d9e7f0a1b2c3d4e5f-6.1.0-50-cloud-amd64"),
            format!("BLS entry {entry} ('Debian GNU/Linux 12 (bookworm) (6.1.0-50-cloud-amd64)')"),
            "kernel /vmlinuz-6.1.0-50-cloud-amd64: empty (0 bytes)".to_string(),
            "the entry 'Debian GNU/Linux 12 (bookworm) (0-rescue-8b5d1f0e2c3a4b6d9e7f0a1b2c3d4e5f)' has all its files".to_string(),
        ]
    );
    assert_eq!(f.path.as_deref(), Some(entry.as_bytes()));
    let (path, line, _) = view(&f);
    assert_eq!(path, entry);
    assert_eq!(line, Some(3), "the linux line of the entry");
}

#[test]
fn rd_lvm_lv_of_no_logical_volume_with_grub_legacy() {
    let (_, f) = finding("doctor-boot-lvm", Severity::Critical, Impact::Boot);
    assert_eq!(
        f.summary,
        "the default boot entry 'CentOS (2.6.32-358.el6.x86_64)' cannot start: rd_LVM_LV=vg_ta/lv_swap2 names a logical volume these disks do not have"
    );
    assert_eq!(
        f.evidence,
        vec![
            "/boot/grub/grub.conf line 10: default 0".to_string(),
            "title 'CentOS (2.6.32-358.el6.x86_64)' (/boot/grub/grub.conf line 14)".to_string(),
            "rd_LVM_LV=vg_ta/lv_swap2: no volume is /dev/vg_ta/lv_swap2".to_string(),
        ]
    );
    let (path, line, _) = view(&f);
    assert_eq!(path, "/boot/grub/grub.conf");
    assert_eq!(line, Some(16), "the kernel line");
}

#[test]
fn no_boot_configuration_is_a_note() {
    let (r, f) = finding("doctor-boot-none", Severity::Note, Impact::Other);
    assert_eq!(
        f.summary,
        "no boot loader configuration found in the guest: the host may boot it directly"
    );
    assert_eq!(f.path, None);
    assert_eq!(f.repair, None);
    assert_eq!(boot_summary(&r), "no boot loader configuration found");
    // A note: nothing is wrong, the exit code stays 0 for it.
    let image = common::fixture("doctor-boot-none");
    let out = common::vmrescue(&["doctor", image.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "boot")
        .collect();
    assert_eq!(notes.len(), 1, "{v:#}");
    assert_eq!(notes[0]["severity"], "note");
    assert_eq!(notes[0]["impact"]["kind"], "other");
    assert_eq!(notes[0]["summary"], f.summary.as_str());
    assert!(notes[0]["repair"].is_null());
    assert!(notes[0]["path"].is_null());
}

#[test]
fn a_menu_without_entries() {
    let (_, f) = finding("doctor-boot-empty", Severity::Critical, Impact::Boot);
    assert_eq!(
        f.summary,
        "GRUB 2 finds no boot entry in /boot/grub/grub.cfg"
    );
    assert_eq!(f.path.as_deref(), Some(b"/boot/grub/grub.cfg".as_slice()));
    let (path, line, _) = view(&f);
    assert_eq!((path.as_str(), line), ("/boot/grub/grub.cfg", None));
}

/// `doctor --json` carries every boot finding as the library makes it
/// (check, severity, what it breaks, summary, evidence, the file and the
/// line to view, the hint), and the boot check's summary; the healthy
/// guests have no boot finding there either.
#[test]
fn each_boot_finding_in_doctor_json() {
    let json = |name: &str| -> (Option<i32>, serde_json::Value) {
        let image = common::fixture(name);
        let out = common::vmrescue(&["doctor", image.to_str().unwrap(), "--json"]);
        (
            out.status.code(),
            serde_json::from_slice(&out.stdout).unwrap(),
        )
    };
    let boot = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "boot")
            .cloned()
            .collect()
    };
    for name in [
        "doctor-boot-initrd",
        "doctor-boot-root",
        "doctor-boot-modules",
        "doctor-boot-bls-empty",
        "doctor-boot-lvm",
        "doctor-boot-empty",
    ] {
        let lib = examine(name);
        let expected = boot_findings(&lib);
        assert_eq!(expected.len(), 1, "{name}");
        let f = expected[0];
        let (code, v) = json(name);
        assert_eq!(code, Some(1), "{name}");
        let got = boot(&v);
        assert_eq!(got.len(), 1, "{name}: {got:#?}");
        let j = &got[0];
        assert_eq!(j["severity"], f.severity.as_str(), "{name}");
        assert_eq!(j["impact"]["kind"], "boot", "{name}");
        assert_eq!(j["impact"]["heading"], "The guest cannot start", "{name}");
        assert_eq!(j["summary"], f.summary.as_str(), "{name}");
        let evidence: Vec<&str> = j["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(evidence, f.evidence, "{name}");
        let (path, line, hint) = view(f);
        assert_eq!(j["path"], path.as_str(), "{name}");
        assert_eq!(j["repair"]["kind"], "view", "{name}");
        assert_eq!(j["repair"]["path"], path.as_str(), "{name}");
        assert_eq!(j["repair"]["line"].as_u64(), line.map(u64::from), "{name}");
        assert_eq!(j["repair"]["hint"], hint.as_str(), "{name}");
        let checked = v["checked"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "boot")
            .unwrap();
        assert_eq!(checked["summary"], boot_summary(&lib).as_str(), "{name}");
    }
    for name in ["debian12", "doctor-boot-bls", "demo"] {
        let (_, v) = json(name);
        assert!(boot(&v).is_empty(), "{name}: {v:#}");
        let checked = v["checked"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "boot")
            .unwrap();
        assert!(
            checked["summary"]
                .as_str()
                .unwrap()
                .ends_with("its files are there"),
            "{name}: {checked}"
        );
    }
}
