//! What the operator asks for: one enum of imperative verbs.
//!
//! Keys become actions through the keymap (`assets/keymap.txt`); the
//! [`super::App`] changes its state in [`super::App::update`] and never
//! touches the terminal. Each action has a stable kebab-case name, used in the
//! keymap file.

/// Everything the operator can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Select the previous row.
    MoveUp,
    /// Select the next row.
    MoveDown,
    /// One page up.
    PageUp,
    /// One page down.
    PageDown,
    /// First row.
    Home,
    /// Last row.
    End,
    /// Open the selection: enter a directory, expand a layer, open a filesystem.
    Open,
    /// Go back: to the parent directory, or collapse a layer.
    Back,
    /// Switch between the layer tree and the file list.
    SwitchPane,
    /// Mark or unmark the selected file, then select the next one.
    MarkToggle,
    /// Mark every file shown in the current directory.
    MarkAll,
    /// Forget every mark, in every directory and volume.
    ClearMarks,
    /// Copy the marked files (or the selected one) out of the image.
    CopyMarked,
    /// Restore the selected symlink (the repair dialog).
    RestoreSymlink,
    /// Details of the selected file.
    ShowDetails,
    /// The doctor view: why the guest would not boot, and the repairs.
    Doctor,
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Start typing a filter for the file list.
    FilterStart,
    /// Restore dialog: type a target of your own.
    TypeTarget,
    /// Leave the program (asks first while a copy runs).
    Quit,
    /// Yes / accept / start (dialogs, text fields).
    Confirm,
    /// No / close / cancel (dialogs, text fields).
    Cancel,
    /// Delete the character before the cursor (text fields).
    DeleteBack,
    /// Move the cursor left (text fields).
    CursorLeft,
    /// Move the cursor right (text fields).
    CursorRight,
    /// Hide the copy progress dialog; the copy goes on.
    Background,
    /// Redraw the whole screen and read what is shown again from the image.
    Redraw,
    /// Delete from the cursor back to the start of the text field.
    DeleteToStart,
    /// Delete the word before the cursor (text fields).
    DeleteWord,
    /// Restore dialog: plan the chosen target again, allowing one that does
    /// not resolve inside the guest (`relink --force`); `y` still asks.
    Force,
    /// Copy dialog: what to do with names that exist in the destination
    /// (skip, overwrite, or copy into a new folder).
    CycleExisting,
    /// Open the file viewer on the selected file.
    View,
    /// Viewer: wrap long lines, or cut them.
    ToggleWrap,
    /// Viewer: hex view, or text.
    ToggleHex,
    /// Viewer: the next match of the search.
    SearchNext,
    /// Viewer: the previous match of the search.
    SearchPrev,
    /// Type a character into the active text field.
    Insert(char),
    /// The find dialog: search the guest by name, type, size, change time.
    Find,
    /// Find dialog: list the newest changes across the guest, newest first.
    RecentChanges,
    /// Type a guest path (`/etc/ssh`, `C:\Users` on a Windows guest) and
    /// show it: its folder, or the folder holding it with the cursor on it.
    GoTo,
}

impl Action {
    /// Every action that can be bound in the keymap, with its name.
    pub const NAMED: &'static [(&'static str, Action)] = &[
        ("move-up", Action::MoveUp),
        ("move-down", Action::MoveDown),
        ("page-up", Action::PageUp),
        ("page-down", Action::PageDown),
        ("home", Action::Home),
        ("end", Action::End),
        ("open", Action::Open),
        ("back", Action::Back),
        ("switch-pane", Action::SwitchPane),
        ("mark-toggle", Action::MarkToggle),
        ("mark-all", Action::MarkAll),
        ("clear-marks", Action::ClearMarks),
        ("copy-marked", Action::CopyMarked),
        ("restore-symlink", Action::RestoreSymlink),
        ("show-details", Action::ShowDetails),
        ("doctor", Action::Doctor),
        ("toggle-help", Action::ToggleHelp),
        ("filter-start", Action::FilterStart),
        ("type-target", Action::TypeTarget),
        ("quit", Action::Quit),
        ("confirm", Action::Confirm),
        ("cancel", Action::Cancel),
        ("delete-back", Action::DeleteBack),
        ("cursor-left", Action::CursorLeft),
        ("cursor-right", Action::CursorRight),
        ("background", Action::Background),
        ("redraw", Action::Redraw),
        ("delete-to-start", Action::DeleteToStart),
        ("delete-word", Action::DeleteWord),
        ("force", Action::Force),
        ("if-exists", Action::CycleExisting),
        ("view", Action::View),
        ("toggle-wrap", Action::ToggleWrap),
        ("toggle-hex", Action::ToggleHex),
        ("search-next", Action::SearchNext),
        ("search-prev", Action::SearchPrev),
        ("find", Action::Find),
        ("recent-changes", Action::RecentChanges),
        ("go-to", Action::GoTo),
    ];

    /// The action named `name` in the keymap.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
    }

    /// The keymap name of this action (`insert` for typed characters).
    pub fn name(self) -> &'static str {
        Action::NAMED
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("insert", |(n, _)| n)
    }
}

/// Where keys are read: the main screen, a text field, a question, a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The two panes.
    Main,
    /// A text field (the filter line, the copy destination).
    Edit,
    /// A yes/no question.
    Confirm,
    /// An information window (help, details, summaries).
    Dialog,
    /// The restore dialog and the doctor view: a list to choose from.
    Repair,
    /// The copy progress window.
    Progress,
    /// The file viewer.
    Viewer,
}

impl Context {
    /// All contexts, in the order the help lists them.
    pub const ALL: [Context; 7] = [
        Context::Main,
        Context::Edit,
        Context::Confirm,
        Context::Dialog,
        Context::Repair,
        Context::Progress,
        Context::Viewer,
    ];

    /// The context named `s` in the keymap file.
    pub fn from_name(s: &str) -> Option<Context> {
        Some(match s {
            "main" => Context::Main,
            "edit" => Context::Edit,
            "confirm" => Context::Confirm,
            "dialog" => Context::Dialog,
            "repair" => Context::Repair,
            "progress" => Context::Progress,
            "viewer" => Context::Viewer,
            _ => return None,
        })
    }
}
