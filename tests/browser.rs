//! Runs the browser suite in `tests/e2e` (Playwright driving Debian's Chromium) against the real
//! binary, so `cargo test` covers the web UI too.

use std::path::Path;
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn web_ui_browser_suite() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the browser tests drive Debian's Chromium. \
         Install it with `apt-get install chromium` (as root), then run the tests again."
    );
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("e2e");

    // The lock file pins playwright-core; `npm ci` installs exactly that, once.
    if !e2e.join("node_modules").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&e2e)
            .status()
            .expect("run npm: install Node.js and npm to run the browser tests");
        assert!(status.success(), "`npm ci` in tests/e2e failed: {status}");
    }

    // Explicit file names work the same on every Node version (directory arguments do not).
    let mut files: Vec<_> = std::fs::read_dir(&e2e)
        .expect("read tests/e2e")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.test.mjs files in {}",
        e2e.display()
    );

    // Output is inherited, so progress streams while the suite runs.
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(&files)
        .current_dir(&e2e)
        .env("CONFAB_BIN", env!("CARGO_BIN_EXE_confab"))
        .status()
        .expect("run node: install Node.js to run the browser tests");
    assert!(
        status.success(),
        "the browser suite failed ({status}); see the output above and target/e2e-artifacts/"
    );
}
