//! What the operator should know before the next boot: a pending SELinux
//! relabel, SELinux's mode and whether its policy is there, a root mounted
//! read-only by the fstab.
//!
//! * `/.autorelabel` (left by `fixfiles onboot`, `touch /.autorelabel`, or a
//!   rescue that copied files in): the next boot relabels every file of
//!   every SELinux-labelled filesystem, which takes long on a big one, then
//!   reboots. A note.
//! * `/etc/selinux/config` (`SELINUX=enforcing|permissive|disabled`,
//!   `SELINUXTYPE=targeted|mls|…`, as selinux_getenforcemode and
//!   selinux_getpolicytype read it): enforcing with the policy of that type
//!   missing (`/etc/selinux/TYPE/` or its `policy/policy.N`) stops the boot
//!   when init loads the policy (systemd, or an init linked with
//!   libselinux like RHEL 6's upstart: "Unable to load SELinux Policy.
//!   Machine is in enforcing mode. Halting now."): critical. An init without
//!   libselinux loads no policy, so the boot is not stopped. Enforcing with
//!   its policy: a note (files put in without labels are denied). A kernel
//!   command line with `selinux=0` (or `enforcing=0` for the missing
//!   policy) overrides the file.
//! * the fstab's options for `/` contain `ro`: after the boot the root stays
//!   read-only (systemd-remount-fs applies the fstab's options); a note.

use super::{Check, Checked, Context, Finding, Impact, Repair, Severity};
use crate::fs::{FileType, path, read_small};
use crate::layers::fstab;

/// Largest `/etc/selinux/config` read.
const MAX_CONFIG: usize = 64 * 1024;
/// Most entries of a policy directory looked at.
const MAX_POLICY_ENTRIES: usize = 1024;

/// Run the check.
pub fn check(ctx: &Context<'_>, out: &mut Vec<Finding>) -> Checked {
    let fs = ctx.fs;
    let cmdline = ctx.kernel_cmdline().unwrap_or("");
    let kernel_arg = |name: &str| -> Option<&str> {
        cmdline
            .split_whitespace()
            .filter_map(|a| a.strip_prefix(name)?.strip_prefix('='))
            .next_back()
    };
    let selinux_off = kernel_arg("selinux") == Some("0");
    let mut looked = Vec::new();

    // A pending relabel.
    if let Ok(r) = path::resolve(fs, b"/.autorelabel", false)
        && fs.metadata(r.node).is_ok()
    {
        out.push(Finding {
            check: Check::Notes,
            severity: Severity::Note,
            impact: Impact::Other,
            summary: "an SELinux relabel is pending (/.autorelabel): the next boot relabels \
                      every file, which takes long on a big filesystem, then reboots"
                .into(),
            evidence: vec!["/.autorelabel exists".into()],
            path: Some(b"/.autorelabel".to_vec()),
            repair: None,
        });
    }
    looked.push("/.autorelabel");

    // SELinux's mode and policy.
    if let Some(text) = read_small(fs, b"/etc/selinux/config", MAX_CONFIG) {
        looked.push("/etc/selinux/config");
        let config = SelinuxConfig::parse(&String::from_utf8_lossy(&text));
        if config.mode.as_deref() == Some("enforcing") && !selinux_off {
            selinux_enforcing(ctx, &config, kernel_arg("enforcing") == Some("0"), out);
        }
    }

    // A read-only root.
    if let Some(root) = fstab::read(fs).into_iter().rfind(|e| e.mountpoint == b"/")
        && root.options().ro
    {
        out.push(Finding {
            check: Check::Notes,
            severity: Severity::Note,
            impact: Impact::Other,
            summary: format!(
                "the root is mounted read-only: /etc/fstab line {} gives / the options {}",
                root.line, root.options
            ),
            evidence: vec![format!(
                "/etc/fstab line {}: {} / {} {}",
                root.line, root.spec, root.fstype, root.options
            )],
            path: Some(b"/etc/fstab".to_vec()),
            repair: Some(Repair::View {
                path: b"/etc/fstab".to_vec(),
                line: u32::try_from(root.line).ok(),
                hint: "remove ro from the options of / if the root should be writable".into(),
            }),
        });
    }
    looked.push("/etc/fstab");

    Checked {
        check: Check::Notes,
        summary: format!("looked at {}", looked.join(", ")),
    }
}

/// SELinux enforcing: critical when the policy is missing (unless the
/// kernel's `enforcing=0` makes it permissive), else a note.
fn selinux_enforcing(
    ctx: &Context<'_>,
    config: &SelinuxConfig,
    permissive_by_kernel: bool,
    out: &mut Vec<Finding>,
) {
    let fs = ctx.fs;
    // libselinux's default type when SELINUXTYPE is absent.
    let kind = config.policy_type.as_deref().unwrap_or("targeted");
    let mut dir = b"/etc/selinux/".to_vec();
    dir.extend_from_slice(kind.as_bytes());
    let policy_dir = path::join(&dir, b"policy");
    let dir_exists = path::resolve(fs, &dir, true)
        .ok()
        .and_then(|r| fs.metadata(r.node).ok())
        .is_some_and(|m| m.file_type == FileType::Directory);
    let has_policy = path::resolve(fs, &policy_dir, true)
        .ok()
        .and_then(|r| fs.read_dir(r.node).ok())
        .is_some_and(|entries| {
            entries
                .iter()
                .take(MAX_POLICY_ENTRIES)
                .any(|e| e.name.starts_with(b"policy."))
        });
    let config_line = config.mode_line;
    let view = |hint: &str| Repair::View {
        path: b"/etc/selinux/config".to_vec(),
        line: config_line,
        hint: hint.into(),
    };
    let present = dir_exists && has_policy;
    if !present && !init_loads_policy(ctx) {
        return;
    }
    if present {
        out.push(Finding {
            check: Check::Notes,
            severity: Severity::Note,
            impact: Impact::Other,
            summary: format!(
                "SELinux is enforcing (policy {kind}): files put in without their labels \
                 are denied; touch /.autorelabel to relabel at the next boot"
            ),
            evidence: vec!["/etc/selinux/config: SELINUX=enforcing".into()],
            path: Some(b"/etc/selinux/config".to_vec()),
            repair: None,
        });
        return;
    }
    let missing = if dir_exists {
        format!(
            "{} holds no policy.N file",
            crate::text::escape(&policy_dir)
        )
    } else {
        format!("{} does not exist", crate::text::escape(&dir))
    };
    let mut evidence = vec![
        "/etc/selinux/config: SELINUX=enforcing".to_string(),
        format!(
            "/etc/selinux/config: SELINUXTYPE={}{}",
            kind,
            if config.policy_type.is_none() {
                " (the default)"
            } else {
                ""
            }
        ),
        missing.clone(),
    ];
    let (severity, impact, summary) = if permissive_by_kernel {
        evidence.push("the kernel command line has enforcing=0".into());
        (
            Severity::Warning,
            Impact::Other,
            format!(
                "SELinux is enforcing but its {kind} policy is missing ({missing}); \
                 the boot goes on only because the kernel command line says enforcing=0"
            ),
        )
    } else {
        (
            Severity::Critical,
            Impact::Boot,
            format!(
                "SELinux is enforcing but its {kind} policy is missing ({missing}): \
                 the policy cannot be loaded and the boot stops"
            ),
        )
    };
    out.push(Finding {
        check: Check::Notes,
        severity,
        impact,
        summary,
        evidence,
        path: Some(b"/etc/selinux/config".to_vec()),
        repair: Some(view(
            "set SELINUX=permissive (or install the policy) so the guest can boot",
        )),
    });
}

/// Whether the guest's init loads the SELinux policy at boot: systemd
/// does (every distribution builds it with SELinux), other inits when they
/// link libselinux. An init that cannot be read is assumed to.
fn init_loads_policy(ctx: &Context<'_>) -> bool {
    let cmdline = ctx.kernel_cmdline().unwrap_or("");
    let init = cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("init="))
        .next_back()
        .unwrap_or("/sbin/init");
    let Ok(r) = path::resolve(ctx.fs, init.as_bytes(), true) else {
        return true;
    };
    if path::split_last(&r.path).1.as_deref() == Some(&b"systemd"[..]) {
        return true;
    }
    match ctx.guest.elf(r.node) {
        Some(info) => info.needed.iter().any(|n| n.starts_with(b"libselinux.so")),
        None => true,
    }
}

/// What `/etc/selinux/config` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SelinuxConfig {
    /// `SELINUX=`, lowercased.
    mode: Option<String>,
    /// The 1-based line of `SELINUX=`.
    mode_line: Option<u32>,
    /// `SELINUXTYPE=`.
    policy_type: Option<String>,
}

impl SelinuxConfig {
    /// `KEY=value` lines, `#` comments, blanks around; the last one wins.
    fn parse(text: &str) -> SelinuxConfig {
        let mut c = SelinuxConfig::default();
        for (i, line) in text.lines().enumerate().take(10_000) {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "SELINUX" => {
                    c.mode = Some(value.to_ascii_lowercase());
                    c.mode_line = u32::try_from(i + 1).ok();
                }
                "SELINUXTYPE" if !value.is_empty() && !value.contains('/') => {
                    c.policy_type = Some(value.to_string());
                }
                _ => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mem::MemFs;

    /// The notes of a guest with this SELinux config and fstab, and
    /// whether it has the targeted policy.
    fn notes(config: &[u8], fstab: &[u8], policy: bool) -> Vec<Finding> {
        let mut fs = MemFs::new();
        let root = fs.root_id();
        let etc = fs.add_dir(root, b"etc", 0o755);
        let selinux = fs.add_dir(etc, b"selinux", 0o755);
        fs.add_file(selinux, b"config", 0o644, config);
        fs.add_file(etc, b"fstab", 0o644, fstab);
        if policy {
            let t = fs.add_dir(selinux, b"targeted", 0o755);
            let p = fs.add_dir(t, b"policy", 0o755);
            fs.add_file(p, b"policy.31", 0o644, b"");
        }
        let ctx = Context::new(&fs, None, None);
        let mut out = Vec::new();
        check(&ctx, &mut out);
        out
    }

    #[test]
    fn selinux_modes_and_policy() {
        let fstab = b"/dev/vda1 / ext4 defaults,errors=remount-ro 0 1\n";
        // No init to read: assumed to load the policy.
        let f = notes(b"SELINUX=enforcing\nSELINUXTYPE=targeted\n", fstab, false);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].severity, &f[0].impact),
            (Severity::Critical, &Impact::Boot)
        );
        assert!(matches!(
            f[0].repair,
            Some(Repair::View { line: Some(1), .. })
        ));
        // The default type is targeted.
        let f = notes(b"SELINUX=enforcing\n", fstab, true);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Note);
        for quiet in [
            &b"SELINUX=permissive\n"[..],
            b"SELINUX=disabled\n",
            b"# SELINUX=enforcing\n",
        ] {
            assert!(notes(quiet, fstab, false).is_empty());
        }
    }

    #[test]
    fn read_only_root() {
        let f = notes(
            b"SELINUX=disabled\n",
            b"# c\n/dev/vda1 / ext4 ro,noatime 0 1\n",
            false,
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Note);
        assert_eq!(f[0].path.as_deref(), Some(&b"/etc/fstab"[..]));
        assert!(
            matches!(f[0].repair, Some(Repair::View { line: Some(2), .. })),
            "{f:?}"
        );
        // The last line for / counts, as mount -a mounts over.
        let f = notes(
            b"",
            b"/dev/vda1 / ext4 ro 0 1\n/dev/vda2 / ext4 rw 0 1\n/dev/vda3 /srv ext4 ro 0 2\n",
            false,
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn selinux_config() {
        let c = SelinuxConfig::parse(
            "# This file controls the state of SELinux\nSELINUX=Enforcing\n\
             SELINUXTYPE=targeted # comment?\n",
        );
        assert_eq!(c.mode.as_deref(), Some("enforcing"));
        assert_eq!(c.mode_line, Some(2));
        assert_eq!(c.policy_type.as_deref(), Some("targeted # comment?"));
        let c = SelinuxConfig::parse("SELINUXTYPE=../../x\nSELINUX = disabled\n");
        assert_eq!(c.mode.as_deref(), Some("disabled"));
        assert_eq!(c.policy_type, None);
    }
}
