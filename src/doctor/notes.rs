//! SELinux relabel and mode, a read-only root. (Being written.)

use super::{Check, Checked, Context, Finding};

/// Run the check.
pub fn check(_ctx: &Context<'_>, _out: &mut Vec<Finding>) -> Checked {
    Checked {
        check: Check::Notes,
        summary: "not yet".into(),
    }
}
