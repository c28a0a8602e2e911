//! The left pane: the layer tree, and facts about the selected node below it.

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use tui_tree_widget::{Tree, TreeItem, TreeState};

use super::layout::Screen;
use super::style;
use crate::layers::tree::Node;
use crate::text::columns;
use crate::text::{escape_mountpoint, escape_str};
use crate::tui::format::{cut_middle, safe, size};
use crate::tui::layers::{LayerPane, node_lines};
use crate::tui::strings as s;

/// The short line a node gets in the tree, in `room` columns: name, size,
/// content, mountpoint, badges. The name comes first (cut in the middle
/// only when it alone does not fit); then, as far as they fit, the problem
/// badge, the guest root badge, the mountpoint, the content and the size.
/// They are shown in that order of importance, and in the usual order on
/// the line.
pub fn node_label(n: &Node, room: usize, snapshot: Option<&str>) -> Line<'static> {
    let name = match snapshot {
        // The disk as of a qcow2 internal snapshot (already escaped).
        Some(snap) => format!("{}@{}", safe(&escape_str(&n.name)), safe(snap)),
        None => safe(&escape_str(&n.name)),
    };
    // The Proxmox guest a VM disk belongs to: part of its name.
    let name = match &n.guest {
        Some(g) => format!("{name} — {}", safe(&g.to_string())),
        None => name,
    };
    let problem = (!n.problems.is_empty()).then(|| format!(" {}", s::PROBLEM_BADGE));
    // A LUKS volume not unlocked: Enter asks for its passphrase.
    let locked = n
        .luks
        .as_ref()
        .is_some_and(|l| l.unlocked_by.is_none())
        .then(|| format!(" {}", s::LOCKED_BADGE));
    let root = n.os.is_some().then(|| format!(" {}", s::ROOT_BADGE));
    let mountpoint = n
        .mountpoint
        .as_ref()
        .map(|m| format!(" {}", safe(&escape_mountpoint(m))));
    let content = n
        .fstype
        .as_ref()
        .map(|fs| format!(" {}", safe(&escape_str(fs))));
    let size_text = (n.size > 0).then(|| format!(" {}", size(n.size)));
    let name = cut_middle(&name, room.max(1));
    let mut used = columns(&name);
    let mut fits = |t: Option<String>| {
        let t = t?;
        let w = columns(&t);
        (used + w <= room).then(|| {
            used += w;
            t
        })
    };
    // In order of importance.
    let locked = fits(locked);
    let problem = fits(problem);
    let root = fits(root);
    let mountpoint = fits(mountpoint);
    let content = fits(content);
    let size_text = fits(size_text);
    let mut spans = vec![Span::styled(
        name,
        if n.browsable {
            style::key()
        } else {
            ratatui::style::Style::new()
        },
    )];
    if let Some(t) = size_text {
        spans.push(Span::raw(t));
    }
    if let Some(t) = content {
        spans.push(Span::styled(t, style::dim()));
    }
    if let Some(t) = mountpoint {
        spans.push(Span::raw(t));
    }
    if let Some(t) = root {
        spans.push(Span::styled(t, style::warn()));
    }
    if let Some(t) = locked {
        spans.push(Span::styled(t, style::warn()));
    }
    if let Some(t) = problem {
        spans.push(Span::styled(t, style::bad()));
    }
    Line::from(spans)
}

/// The tree's items; `room` is what a label at the top level has (each
/// level down is indented by two more columns). The disks, at the top,
/// carry the name of the snapshot shown.
fn items(nodes: &[Node], room: usize, snapshot: Option<&str>) -> Vec<TreeItem<'static, usize>> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let children = items(&n.children, room.saturating_sub(2), None);
            // The guest's node is no disk: no snapshot name after it.
            let snap = snapshot.filter(|_| !crate::tui::layers::is_guest(n));
            let label = node_label(n, room, snap);
            TreeItem::new(i, label.clone(), children)
                .unwrap_or_else(|_| TreeItem::new_leaf(i, label))
        })
        .collect()
}

/// Draw the layer tree and the facts of the selected node; `focused` when
/// the pane has the keys, `snapshot` the qcow2 snapshot shown (escaped).
pub fn draw_layers(
    frame: &mut Frame<'_>,
    screen: &Screen,
    layers: &LayerPane,
    focused: bool,
    snapshot: Option<&str>,
) {
    // Inside the border: the highlight sign and the open/closed sign.
    let room = usize::from(screen.tree.width.saturating_sub(2 + 1 + 2));
    let tree_items = items(&layers.roots, room, snapshot);
    let mut state = TreeState::default();
    for p in &layers.opened {
        state.open(p.clone());
    }
    state.select(layers.selected.clone());
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(if focused {
            style::focused_border()
        } else {
            style::border()
        })
        .title(format!(" {} ", s::LAYERS_TITLE));
    match Tree::new(&tree_items) {
        Ok(tree) => {
            let tree = tree
                .block(block)
                .highlight_style(if focused {
                    style::selected()
                } else {
                    style::selected_unfocused()
                })
                .highlight_symbol(">");
            frame.render_stateful_widget(tree, screen.tree, &mut state);
        }
        Err(_) => frame.render_widget(block, screen.tree),
    }
    if screen.info.height > 0 {
        let lines: Vec<Line<'static>> = layers
            .current()
            .map(node_lines)
            .unwrap_or_default()
            .into_iter()
            .map(|l| Line::from(safe(&l)))
            .collect();
        let info = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(style::border())
                .title(format!(" {} ", s::LAYER_INFO_TITLE)),
        );
        frame.render_widget(info, screen.info);
    }
}
