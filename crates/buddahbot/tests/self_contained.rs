//! The repository stands alone: a clone builds, runs and passes its tests with nothing beside
//! it. The project grew up next to a workplace folder (`../shared`: a spec, test vectors, a
//! load harness); no file the repository tracks may reach into it, so a test or a document
//! that needs something from there must bring a copy in (as `tests/vectors/` does). The one
//! exception is the mention, in README and the chat benchmark, of the neutral load harness the
//! performance targets are judged with: nothing runs it.

use std::{path::Path, process::Command};

/// What points out of the checkout into the workplace folder.
const OUTSIDE: &[&str] = &[
    "../shared",
    "shared/vectors",
    "shared/DESIGN",
    "shared/bench",
];

#[test]
fn no_tracked_file_reaches_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .expect("git runs in the checkout");
    assert!(listed.status.success(), "git ls-files failed");
    let mut found = Vec::new();
    let mut files = 0;
    for path in listed.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path).into_owned();
        if path.ends_with("tests/self_contained.rs") {
            continue; // this file names what it looks for
        }
        let Ok(bytes) = std::fs::read(root.join(&path)) else {
            continue; // listed but deleted in the work tree
        };
        files += 1;
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            let harness_mention = (path == "README.md" || path.starts_with("benches/"))
                && line.contains("../shared/bench/chat.sh")
                && !line
                    .replace("../shared/bench/chat.sh", "")
                    .contains("shared/");
            if !harness_mention && OUTSIDE.iter().any(|o| line.contains(o)) {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(files > 100, "only {files} tracked files read");
    assert!(
        found.is_empty(),
        "tracked files reach outside the repository (copy what they need in):\n{}",
        found.join("\n")
    );
    // What the tests once read from outside lives here now.
    assert!(root.join("tests/vectors/authjs/vectors.json").is_file());
}
