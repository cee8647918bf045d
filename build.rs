//! Stamps the version and git revision into the binary and rebuilds when `web/` changes,
//! so the embedded UI is never stale.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=CONFAB_GIT_REV");

    let rev = std::env::var("CONFAB_GIT_REV")
        .ok()
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CONFAB_GIT_REV={rev}");
}

fn git_revision() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|rev| !rev.is_empty())
}
