//! The details window (`i`): inode, times, owner, link target, xattrs, ELF facts.

use crate::text::escape;
use ratatui::Frame;
use ratatui::text::Line;

use super::layout::Screen;
use super::style;
use super::window::{draw_window, field, plain};
use crate::tui::details::Details;
use crate::tui::format::{full, size};
use crate::tui::strings as s;

/// The details as lines.
pub fn details_lines(d: &Details) -> Vec<Line<'static>> {
    let mut out = vec![field(s::F_PATH, &d.path)];
    if let Some(m) = &d.meta {
        out.push(field(s::F_INODE, &m.ino.to_string()));
        out.push(field(s::F_TYPE, s::file_type_name(m.file_type)));
        out.push(field(
            s::F_MODE,
            &format!("{} ({:04o})", m.mode_string(), m.perm & 0o7777),
        ));
        out.push(field(
            s::F_OWNER,
            &s::owner(
                m.uid,
                d.owner_names.0.as_deref(),
                m.gid,
                d.owner_names.1.as_deref(),
            ),
        ));
        out.push(field(
            s::F_SIZE,
            &format!("{} ({} bytes)", size(m.size), m.size),
        ));
        if let Some(a) = m.allocated {
            out.push(field(s::F_ALLOCATED, &format!("{} ({} bytes)", size(a), a)));
        }
        out.push(field(s::F_LINKS, &m.nlink.to_string()));
        out.push(field(s::F_MTIME, &full(m.mtime)));
        out.push(field(s::F_CTIME, &full(m.ctime)));
        out.push(field(s::F_ATIME, &full(m.atime)));
        if let Some(c) = m.crtime {
            out.push(field(s::F_CRTIME, &full(c)));
        }
        if matches!(
            m.file_type,
            crate::fs::FileType::CharDevice | crate::fs::FileType::BlockDevice
        ) {
            out.push(field(s::F_DEVICE, &format!("{}, {}", m.rdev.0, m.rdev.1)));
        }
    }
    if let Some(t) = &d.target {
        out.push(field(s::F_TARGET, t));
    }
    match &d.resolved {
        Some(Ok(p)) => out.push(field(s::F_LEADS_TO, p)),
        Some(Err(e)) => out.push(Line::styled(
            format!("{}: {}", s::F_LEADS_TO, crate::tui::format::safe(e)),
            style::bad(),
        )),
        None => {}
    }
    if let Some(r) = &d.suspect {
        out.push(Line::styled(
            format!("{} {}", s::SUSPECT_SIGN, crate::tui::format::safe(r)),
            style::bad(),
        ));
    }
    if let Some(e) = &d.elf {
        out.push(field(s::F_ELF, &e.summary()));
        if let Some(so) = &e.soname {
            out.push(field(s::F_SONAME, &escape(so)));
        }
        if !e.needed.is_empty() {
            let needed: Vec<String> = e.needed.iter().map(|n| escape(n)).collect();
            out.push(field(s::F_NEEDED, &needed.join(", ")));
        }
        if let Some(v) = e.glibc_version() {
            out.push(field(s::F_GLIBC, &v));
        }
    }
    if d.xattrs.is_empty() {
        out.push(field(s::F_XATTRS, s::NONE));
    } else {
        out.push(field(s::F_XATTRS, ""));
        for (k, v) in &d.xattrs {
            out.push(plain(&format!("  {k} = {v}")));
        }
    }
    for p in &d.problems {
        out.push(Line::styled(
            format!("{}: {}", s::F_PROBLEM, crate::tui::format::safe(p)),
            style::bad(),
        ));
    }
    out
}

/// Draw the details window.
pub fn draw_details(
    frame: &mut Frame<'_>,
    screen: &Screen,
    title: &str,
    d: Option<&Details>,
    scroll: usize,
) {
    let lines = match d {
        Some(d) => details_lines(d),
        None => vec![plain(s::READING_DETAILS)],
    };
    draw_window(
        frame,
        screen.big_window(),
        title,
        lines,
        scroll,
        s::FOOTER_CLOSE_SCROLL,
    );
}
