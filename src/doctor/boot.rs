//! The boot loader's default entry: kernel, initramfs, root=. (Being written.)

use super::{Check, Checked, Context, Finding};

/// Run the check.
pub fn check(_ctx: &Context<'_>, _out: &mut Vec<Finding>) -> Checked {
    Checked {
        check: Check::Boot,
        summary: "not yet".into(),
    }
}

/// The kernel command line of the default boot entry, if one is found.
pub fn default_cmdline(_ctx: &Context<'_>) -> Option<String> {
    None
}
