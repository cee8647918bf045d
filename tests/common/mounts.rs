//! Filesystems mounted for one test (we run as root, which ignores permission bits): a small
//! tmpfs to fill, or to remount read-only.

use std::path::Path;
use std::process::Command;

/// A small tmpfs mounted for one test, unmounted on drop. `None` (with a message saying why
/// the test is skipped) where mounting is impossible, e.g. without root.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status();
        if status.is_ok_and(|s| s.success()) {
            Some(Tmpfs { dir })
        } else {
            eprintln!("skipping: cannot mount a tmpfs here (needs root)");
            None
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
