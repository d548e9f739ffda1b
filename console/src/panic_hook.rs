//! A panic hook that puts the terminal back before the panic message is
//! printed, for the TUI's guard and the attach's raw mode.

use std::panic::PanicHookInfo;
use std::sync::Arc;

type PanicHook = Arc<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// A panic hook that runs `restore` before the hook it replaces; dropping
/// it puts that hook back. Nested guards (the attach inside the TUI) chain.
pub struct PanicRestore {
    previous: PanicHook,
}

impl PanicRestore {
    pub fn install(restore: fn()) -> PanicRestore {
        let previous: PanicHook = Arc::from(std::panic::take_hook());
        let chained = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            chained(info);
        }));
        PanicRestore { previous }
    }
}

impl Drop for PanicRestore {
    fn drop(&mut self) {
        let previous = self.previous.clone();
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}
