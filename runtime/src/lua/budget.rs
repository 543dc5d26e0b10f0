//! A flow's run budget: the deadline the sandbox's instruction hook enforces, and the check
//! that Rust code which runs long without executing Lua (the pattern matcher) makes itself.
//! Apart from the sandbox so that the matcher and the sandbox need not import each other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mlua::Lua;

/// The message a budget stop raises; a flow's `pcall` re-raises it.
pub const BUDGET_EXCEEDED: &str = "budget_exceeded: the flow ran longer than its budget and was stopped";

/// Per-state run budget, checked by an instruction hook.
#[derive(Default)]
pub struct Budget {
    pub deadline: Option<Instant>,
    pub exceeded: Arc<AtomicBool>,
    /// When the running flow last gave its tokio worker back.
    pub(super) last_yield: std::cell::Cell<Option<Instant>>,
}

impl Budget {
    /// Raises [`BUDGET_EXCEEDED`] (and marks the budget spent, so that the wrapped `pcall`
    /// re-raises it) once the deadline has passed or the budget was already spent.
    pub(super) fn check(&self, now: Instant) -> mlua::Result<()> {
        if self.exceeded.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| now >= d) {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(mlua::Error::runtime(BUDGET_EXCEEDED));
        }
        Ok(())
    }
}

/// The budget check for Rust code that runs long without executing Lua instructions (the
/// pattern matcher), which the instruction hook cannot interrupt. No budget: no limit.
pub fn check_budget(lua: &Lua) -> mlua::Result<()> {
    match lua.app_data_ref::<Budget>() {
        Some(b) => b.check(Instant::now()),
        None => Ok(()),
    }
}
