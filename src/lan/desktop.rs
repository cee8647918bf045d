//! Opening the browser when confab was started by a double-click on a desktop, where nobody
//! would see the printed link; never on a server, in a terminal or under systemd.

/// What decides whether a browser may be opened, gathered once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surroundings {
    /// A terminal on stdin or stdout: someone can read the printed link.
    pub terminal: bool,
    /// Linux and the like need an X11 or Wayland session; Windows and macOS always have one.
    pub graphical: bool,
    /// systemd sets `INVOCATION_ID` (and `JOURNAL_STREAM` when logging to the journal).
    pub service: bool,
}

impl Surroundings {
    pub fn detect() -> Surroundings {
        use std::io::IsTerminal;
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Surroundings {
            terminal: std::io::stdin().is_terminal() || std::io::stdout().is_terminal(),
            graphical: cfg!(any(target_os = "windows", target_os = "macos"))
                || set("DISPLAY")
                || set("WAYLAND_DISPLAY"),
            service: set("INVOCATION_ID") || set("JOURNAL_STREAM"),
        }
    }
}

/// Only a desktop start with nobody watching a terminal opens a browser.
pub fn should_open_browser(s: Surroundings) -> bool {
    s.graphical && !s.terminal && !s.service
}

/// Opens `url` in the default browser; a failure is logged, never fatal.
pub fn open_browser(url: String) {
    // xdg-open may wait for the browser to exit, so it gets a thread of its own.
    std::thread::spawn(move || {
        if let Err(e) = opener::open_browser(&url) {
            tracing::warn!(error = %e, "could not open a browser; open {url} by hand");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOUBLE_CLICK: Surroundings = Surroundings {
        terminal: false,
        graphical: true,
        service: false,
    };

    #[test]
    fn a_double_click_on_a_desktop_opens_the_browser() {
        assert!(should_open_browser(DOUBLE_CLICK));
    }

    #[test]
    fn a_terminal_a_server_or_systemd_never_does() {
        let in_terminal = Surroundings {
            terminal: true,
            ..DOUBLE_CLICK
        };
        let headless = Surroundings {
            graphical: false,
            ..DOUBLE_CLICK
        };
        let under_systemd = Surroundings {
            service: true,
            ..DOUBLE_CLICK
        };
        for s in [in_terminal, headless, under_systemd] {
            assert!(!should_open_browser(s), "{s:?}");
        }
    }
}
