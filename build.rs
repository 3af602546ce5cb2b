//! Records the commit the binary is built from: `evalcot merge` refuses to join shards written by
//! different builds, whose numbers need not agree.
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=EVALCOT_COMMIT={commit}");
    // A new commit moves the branch ref (or HEAD itself when detached). Only existing paths are
    // watched: a missing one would rerun this script, and rebuild the binary, on every build.
    // A directory is watched by its own mtime, which a commit on an existing branch does not
    // change, so the checked-out branch's ref file is watched too.
    let branch = std::fs::read_to_string(".git/HEAD")
        .ok()
        .and_then(|h| h.trim().strip_prefix("ref: ").map(|r| format!(".git/{r}")));
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"]
        .into_iter()
        .map(String::from)
        .chain(branch)
    {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
