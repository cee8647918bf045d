//! The man pages the .deb ships are rendered by the binary from its own flags, so they list
//! every flag and `CONFAB_*` variable that `--help` does.

mod common;

use std::collections::BTreeSet;

fn words_like(text: &str, starts: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| w.starts_with(starts) && w.len() > starts.len())
        .map(str::to_owned)
        .collect()
}

#[test]
fn man_pages_cover_every_flag_and_variable_of_help() {
    let help = common::run_cli(&["--help"]);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout).into_owned();

    let dir = tempfile::tempdir().expect("temp dir");
    let out = common::run_cli(&["man-page", dir.path().to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(dir.path().join("confab.1")).expect("confab.1");
    // roff escapes '-' as '\-'.
    let page = page.replace("\\-", "-");
    assert!(
        page.starts_with(".ie") || page.contains(".TH confab 1"),
        "{page}"
    );

    let flags = words_like(&help, "--");
    let variables = words_like(&help, "CONFAB_");
    assert!(
        flags.contains("--metrics-token") && variables.len() >= 9,
        "{help}"
    );
    for word in flags.iter().chain(&variables) {
        assert!(page.contains(word.as_str()), "the man page lacks {word}");
    }
    assert!(
        !page.contains("man-page"),
        "the hidden man-page command is not documented"
    );

    // One page per documented command, and no page for the hidden one.
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read man dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "confab-backup.1",
            "confab-check.1",
            "confab-restore.1",
            "confab.1"
        ]
    );
}
