//! `doctor`'s links, notes and history checks on real Debian 12 guests
//! (`tests/fixtures/make/doctor.sh`, `doctor-notes.sh`), through the
//! library API as `vmrescue doctor` builds it: the whole guest (its
//! namespace), a [`doctor::Context`], [`doctor::examine`].
//!
//! * the healthy `debian12.img`: no links finding (libxcrypt's
//!   `libcrypt.so.1`, `/usr/bin/ld.so`, Debian's `libbz2.so.1` compatibility
//!   link are fine), no note, ld.so read as glibc 2.36;
//! * `doctor-notes.img`: `libz.so.1 -> libzstd.so.1.5.4` found first among
//!   the links findings with `libz.so.1.2.13` proposed; the pending relabel,
//!   SELinux enforcing without its policy (critical), the read-only root;
//!   the apt and dpkg history of the package installed in the guest;
//! * `doctor-notes-b.img`: the dangling loader link with the multiarch
//!   loader proposed (absolute); SELinux enforcing with its policy (a note);
//!   the yum and dnf logs.

use crate::common;

use vmrescue::doctor::{self, Check, Finding, Impact, Report, Severity};
use vmrescue::engine::userspace::Userspace;
use vmrescue::fs::{FsOptions, FsView};
use vmrescue::guest::Namespace;

/// The doctor's report on the whole guest of a fixture image, and ld.so's
/// (file name, release) as the doctor read it.
fn examine(name: &str) -> (Report, Option<(Vec<u8>, String)>) {
    examine_image(&common::fixture(name))
}

/// [`examine`] for an image file.
fn examine_image(image: &std::path::Path) -> (Report, Option<(Vec<u8>, String)>) {
    let name = image.display();
    let opener = Userspace::default();
    let opts = FsOptions::default();
    let mut layout = vmrescue::layers::scan(vec![vmrescue::image::open(image).unwrap()]);
    let inspection =
        vmrescue::layers::inspect::inspect(&layout, &|v| opener.open_fs(&layout, v, &opts));
    layout.apply_inspection(&inspection);
    let root = layout
        .volumes
        .iter()
        .find(|v| v.guest.os.is_some())
        .unwrap_or_else(|| panic!("{name}: no guest root"))
        .id;
    let ns = Namespace::build(&layout, root, &|v| opener.open_fs(&layout, v, &opts));
    let fs = ns.fs();
    let ctx = doctor::Context::new(&*fs as &dyn FsView, Some(&ns), Some(&layout));
    let report = doctor::examine(&ctx);
    (report, ctx.guest.ld_so.clone())
}

fn show(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{:?} {:?} {}: {}",
                f.check,
                f.severity,
                f.impact.kind(),
                f.summary
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn at<'a>(r: &'a Report, path: &str) -> &'a Finding {
    r.findings
        .iter()
        .find(|f| f.path.as_deref() == Some(path.as_bytes()))
        .unwrap_or_else(|| panic!("no finding at {path}:\n{}", show(&r.findings)))
}

#[test]
fn healthy_debian12_has_no_links_finding_and_no_note() {
    let (r, ld_so) = examine("debian12");
    let wrong: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| matches!(f.check, Check::Links | Check::Notes))
        .collect();
    assert!(wrong.is_empty(), "{}", show(&r.findings));
    // ld.so 2.36 defines GLIBC_2.35 at most: its release comes from its banner.
    assert_eq!(
        ld_so,
        Some((b"ld-linux-x86-64.so.2".to_vec(), "2.36".to_string()))
    );
    let links = r.checked.iter().find(|c| c.check == Check::Links).unwrap();
    assert!(
        links.summary.ends_with(", 0 suspicious"),
        "{}",
        links.summary
    );
    // mmdebstrap leaves no package logs.
    assert!(r.history.is_empty(), "{:?}", r.history);
}

#[test]
fn another_library_behind_libz_is_found_first_with_zlib_proposed() {
    let (r, _) = examine("doctor-notes");
    let link = "/usr/lib/x86_64-linux-gnu/libz.so.1";
    let f = at(&r, link);
    // The closure check may report it first (sshd needs libz.so.1); the
    // links check otherwise, first among its findings.
    if f.check == Check::Links {
        let first = r.findings.iter().find(|f| f.check == Check::Links).unwrap();
        assert_eq!(
            first.path.as_deref(),
            Some(link.as_bytes()),
            "{}",
            show(&r.findings)
        );
    }
    let a = f.relink().expect("a relink");
    assert_eq!(a.target, b"libzstd.so.1.5.4");
    assert!(
        a.problems[0].contains("SONAME is libzstd.so.1: another library than libz.so.1"),
        "{:?}",
        a.problems
    );
    let p = a.proposal().expect("a proposal");
    assert_eq!(p.target, b"libz.so.1.2.13");
    assert!(!p.guess);
}

#[test]
fn dangling_loader_link_gets_the_multiarch_loader() {
    let (r, _) = examine("doctor-notes-b");
    let f = at(&r, "/usr/lib64/ld-linux-x86-64.so.2");
    assert_eq!(f.severity, Severity::Critical, "{}", show(&r.findings));
    assert_eq!(f.impact, Impact::Boot);
    let a = f.relink().expect("a relink");
    assert!(a.problems[0].starts_with("dangling"), "{:?}", a.problems);
    let p = a.proposal().expect("a proposal");
    assert_eq!(p.target, b"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    assert_eq!(p.path, b"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    // /usr/bin/ld.so dangles through it: evidence, not a finding.
    assert!(
        r.findings
            .iter()
            .all(|f| f.path.as_deref() != Some(&b"/usr/bin/ld.so"[..])),
        "{}",
        show(&r.findings)
    );
}

#[test]
fn relinking_the_loader_to_the_proposal_leaves_no_links_finding() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::fixture_copy("doctor-notes-b", dir.path());
    let undo = dir.path().join("undo");
    let o = common::vmrescue(&[
        "relink",
        image.to_str().unwrap(),
        "/lib64/ld-linux-x86-64.so.2",
        "--yes",
        "--undo-dir",
        undo.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let (r, _) = examine_image(&image);
    assert!(
        r.findings.iter().all(|f| f.check != Check::Links),
        "{}",
        show(&r.findings)
    );
}

#[test]
fn notes_relabel_selinux_without_policy_and_read_only_root() {
    let (r, _) = examine("doctor-notes");
    let relabel = at(&r, "/.autorelabel");
    assert_eq!(
        (relabel.check, relabel.severity, relabel.impact.clone()),
        (Check::Notes, Severity::Note, Impact::Other)
    );
    assert!(relabel.summary.contains("relabel"), "{}", relabel.summary);
    let selinux = at(&r, "/etc/selinux/config");
    assert_eq!(
        (selinux.check, selinux.severity, selinux.impact.clone()),
        (Check::Notes, Severity::Critical, Impact::Boot)
    );
    assert!(
        selinux
            .summary
            .contains("/etc/selinux/targeted does not exist"),
        "{}",
        selinux.summary
    );
    let root = at(&r, "/etc/fstab");
    assert_eq!(
        (root.check, root.severity, root.impact.clone()),
        (Check::Notes, Severity::Note, Impact::Other)
    );
    assert!(root.summary.contains("read-only"), "{}", root.summary);
    assert!(
        root.summary.contains("ro,errors=remount-ro"),
        "{}",
        root.summary
    );
    // The critical one ranks first of all.
    assert_eq!(
        r.findings[0].path.as_deref(),
        Some(&b"/etc/selinux/config"[..])
    );
    // Recent changes (through the guest's merged tree): the files the
    // findings point at first.
    let pointed: Vec<&[u8]> = r
        .findings
        .iter()
        .filter_map(|f| f.path.as_deref())
        .collect();
    let first = r.recent.iter().take_while(|c| c.pointed).count();
    assert_eq!(first, pointed.len(), "{:?}", r.recent);
    for c in &r.recent[..first] {
        assert!(pointed.contains(&&c.path[..]), "{:?}", c.path);
    }
    assert!(r.recent[first..].iter().all(|c| !c.pointed));
}

#[test]
fn selinux_enforcing_with_its_policy_is_a_note() {
    let (r, _) = examine("doctor-notes-b");
    let selinux = at(&r, "/etc/selinux/config");
    assert_eq!(
        (selinux.check, selinux.severity, selinux.impact.clone()),
        (Check::Notes, Severity::Note, Impact::Other)
    );
    assert!(selinux.summary.contains("enforcing"), "{}", selinux.summary);
    // No relabel pending, a writable root.
    assert!(
        r.findings.iter().all(|f| !matches!(
            f.path.as_deref(),
            Some(b"/.autorelabel") | Some(b"/etc/fstab")
        )),
        "{}",
        show(&r.findings)
    );
}

#[test]
fn history_of_apt_and_dpkg_in_the_guest() {
    let (r, _) = examine("doctor-notes");
    let h = &r.history;
    assert_eq!(h.len(), 2, "{h:?}");
    // apt-get's transaction (its dpkg run is not repeated), then dpkg's remove.
    assert_eq!(h[0].source, b"/var/log/apt/history.log");
    assert!(
        h[0].what.starts_with(
            "apt-get install -y -q ./vmrescue-note_1.0-1_all.deb: install vmrescue-note 1.0-1"
        ),
        "{h:?}"
    );
    assert_eq!(h[1].source, b"/var/log/dpkg.log");
    assert_eq!(h[1].what, "dpkg: remove vmrescue-note 1.0-1");
    assert!(h[0].when <= h[1].when, "{h:?}");
}

#[test]
fn history_of_yum_and_dnf() {
    let (r, _) = examine("doctor-notes-b");
    let got: Vec<(String, String, String)> = r
        .history
        .iter()
        .map(|e| {
            (
                e.when.clone(),
                e.what.clone(),
                String::from_utf8_lossy(&e.source).into_owned(),
            )
        })
        .collect();
    let yum = "/var/log/yum.log".to_string();
    assert_eq!(
        got,
        [
            (
                "Mar 02 10:27:01 2017".to_string(),
                "Installed: gcc-4.4.7-17.el6.x86_64".to_string(),
                yum.clone()
            ),
            (
                "Mar 02 10:29:36 2017".to_string(),
                "Updated: glibc-common-2.12-1.192.el6.x86_64".to_string(),
                yum.clone()
            ),
            (
                "Mar 02 10:29:38 2017".to_string(),
                "Updated: glibc-2.12-1.192.el6.x86_64".to_string(),
                yum
            ),
            (
                "2017-03-03T09:00:01+0000".to_string(),
                "Upgrade: bash-4.1.2-48.el6.x86_64".to_string(),
                "/var/log/dnf.rpm.log".to_string()
            ),
        ]
    );
}

#[test]
fn demo_gets_no_notes_finding() {
    // Its /sbin/init links no libselinux: the enforcing config without a
    // policy stops nothing.
    let (r, _) = examine("demo");
    assert!(
        r.findings.iter().all(|f| f.check != Check::Notes),
        "{}",
        show(&r.findings)
    );
    assert!(!r.findings.is_empty());
}

// ------------------------------------------------------------------ doctor --json

/// `vmrescue doctor --json IMAGE`: exit code and the document.
fn doctor_json(name: &str) -> (i32, serde_json::Value) {
    let image = common::fixture(name);
    let o = common::vmrescue(&["doctor", "--json", image.to_str().unwrap()]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json: not JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code().unwrap_or(-1), v)
}

/// The findings of `check` in a `--json` document, as (path, severity,
/// impact kind, repair kind).
fn json_findings(v: &serde_json::Value, check: &str) -> Vec<(String, String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .map(|f| {
            (
                f["path"].as_str().unwrap_or("").to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["impact"]["kind"].as_str().unwrap().to_string(),
                f["repair"]["kind"].as_str().unwrap_or("none").to_string(),
            )
        })
        .collect()
}

#[test]
fn json_healthy_debian12_has_no_links_or_notes_and_no_history() {
    let (_, v) = doctor_json("debian12");
    assert!(json_findings(&v, "links").is_empty(), "{v}");
    assert!(json_findings(&v, "notes").is_empty(), "{v}");
    assert_eq!(v["history"], serde_json::json!([]), "{v}");
}

#[test]
fn json_notes_links_and_history() {
    let (code, v) = doctor_json("doctor-notes");
    assert_eq!(code, 1, "a critical finding");
    let s = |x: &str| x.to_string();
    assert_eq!(
        json_findings(&v, "notes"),
        [
            (
                s("/etc/selinux/config"),
                s("critical"),
                s("boot"),
                s("view")
            ),
            (s("/.autorelabel"), s("note"), s("other"), s("none")),
            (s("/etc/fstab"), s("note"), s("other"), s("view")),
        ],
        "{v}"
    );
    let selinux = &v["findings"][0];
    assert_eq!(selinux["rank"], 1);
    assert_eq!(selinux["repair"]["line"], 2);
    assert_eq!(
        selinux["evidence"][2],
        "/etc/selinux/targeted does not exist"
    );
    let fstab = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/fstab")
        .unwrap();
    assert_eq!(fstab["repair"]["line"], 3, "{fstab}");
    // The links check: libz.so.1 first among its findings (unless the
    // closure check reported it), with zlib proposed.
    let libz = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/usr/lib/x86_64-linux-gnu/libz.so.1")
        .unwrap_or_else(|| panic!("{v}"));
    if libz["check"] == "links" {
        assert_eq!(
            json_findings(&v, "links")[0],
            (
                s("/usr/lib/x86_64-linux-gnu/libz.so.1"),
                s("error"),
                s("other"),
                s("relink")
            )
        );
    }
    assert_eq!(libz["repair"]["kind"], "relink");
    assert_eq!(libz["repair"]["target"], "libzstd.so.1.5.4");
    assert_eq!(libz["repair"]["candidates"][0]["target"], "libz.so.1.2.13");
    // The package history, newest last.
    let h = v["history"].as_array().unwrap();
    assert_eq!(h.len(), 2, "{v}");
    assert_eq!(h[0]["source"], "/var/log/apt/history.log");
    assert_eq!(h[1]["source"], "/var/log/dpkg.log");
    assert_eq!(h[1]["what"], "dpkg: remove vmrescue-note 1.0-1");
}

#[test]
fn json_dangling_loader_and_enforcing_note() {
    let (code, v) = doctor_json("doctor-notes-b");
    assert_eq!(code, 1);
    let s = |x: &str| x.to_string();
    assert_eq!(
        json_findings(&v, "notes"),
        [(s("/etc/selinux/config"), s("note"), s("other"), s("none"))],
        "{v}"
    );
    let ld = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/usr/lib64/ld-linux-x86-64.so.2")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(ld["severity"], "critical");
    assert_eq!(ld["impact"]["kind"], "boot");
    assert_eq!(ld["repair"]["kind"], "relink");
    assert_eq!(
        ld["repair"]["candidates"][0]["target"],
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    );
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["path"] != "/usr/bin/ld.so"),
        "{v}"
    );
    let h: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        h,
        [
            "/var/log/yum.log",
            "/var/log/yum.log",
            "/var/log/yum.log",
            "/var/log/dnf.rpm.log"
        ]
    );
}
