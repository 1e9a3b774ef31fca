//! Every local command in the README and `docs/*.md` works as written: the fenced blocks tagged
//! ` ```sh local ` are extracted and run, one bash script per file (`set -euo pipefail`, the
//! blocks in order, so a variable set in one block is there in the next), against a fresh
//! `shipgate dev` — what `make dev` runs — from a directory laid out like the repository's root
//! (`./target/debug/shipgate`, `examples/`, `events/`, `.shipgate/dev.env`).
//!
//! The one difference from `make dev`: the sandbox listens on a free port instead of 9000, so
//! `SHIPGATE_DEV_URL` (which `shipgate dev push` reads, default `http://127.0.0.1:9000`) is set
//! to it. Everything else a block needs it must set up itself (e.g. `. .shipgate/dev.env`).
//! Blocks of other languages (`sh`, `console`, AWS commands in `infra/README.md`) are not run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::DevSandbox;

/// What marks a block to run.
const MARKER: &str = "```sh local";
/// A file's script is stopped after this (a wait that never ends is a failure, not a hang).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(first line number, text)` of every ` ```sh local ` block.
fn local_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut other_fence = false;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            Some((_, body)) => {
                if trimmed.starts_with("```") {
                    blocks.push(current.take().unwrap());
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None if other_fence => {
                if trimmed.starts_with("```") {
                    other_fence = false;
                }
            }
            None => {
                if trimmed.trim_end() == MARKER {
                    current = Some((n + 2, String::new()));
                } else if trimmed.starts_with("```") {
                    other_fence = true;
                }
            }
        }
    }
    assert!(current.is_none(), "an unclosed {MARKER} block");
    blocks
}

/// The README and every `docs/*.md`, in a fixed order.
fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    let mut all = vec![root.join("README.md")];
    all.extend(docs);
    all
}

/// A directory laid out like the repository's root, for the commands' relative paths.
fn workdir(tag: &str) -> PathBuf {
    let dir = DevSandbox::state_dir(tag);
    let root = repo_root().canonicalize().unwrap();
    for entry in [
        "examples",
        "events",
        "docs",
        "infra",
        "scripts",
        "Makefile",
        "Cargo.toml",
    ] {
        std::os::unix::fs::symlink(root.join(entry), dir.join(entry)).unwrap();
    }
    std::fs::create_dir_all(dir.join("target/debug")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_shipgate"),
        dir.join("target/debug/shipgate"),
    )
    .unwrap();
    dir
}

/// Run `script` with bash in `dir`; (success, everything printed).
fn run_script(dir: &Path, script: &str, dev_url: &str) -> (bool, String) {
    use std::os::unix::process::CommandExt;
    let path = dir.join("doc-commands.sh");
    std::fs::write(&path, script).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_shipgate")).parent().unwrap();
    let out_path = dir.join("doc-commands.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new("bash")
        .arg(&path)
        .current_dir(dir)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", dir)
        .env("SHIPGATE_DEV_URL", dev_url)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("bash");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut printed = std::fs::read_to_string(&out_path).unwrap_or_default();
    if status.is_none() {
        printed.push_str(&format!("\n(stopped after {}s)", SCRIPT_TIMEOUT.as_secs()));
    }
    (status.is_some_and(|s| s.success()), printed)
}

#[test]
fn local_blocks_are_found_and_others_are_not() {
    let text = "intro\n```sh local\na=1\necho \"$a\"\n```\n```sh\naws s3 ls\n```\n```console\n$ x\n```\n  ```sh local\nb\n  ```\n```\n```sh local\n```\n";
    let blocks = local_blocks(text);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!(blocks[0], (3, "a=1\necho \"$a\"\n".to_string()));
    assert_eq!(blocks[1].1, "b\n");
}

#[test]
fn every_local_command_in_the_docs_works_as_written() {
    let mut found = 0;
    let mut failures = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let blocks = local_blocks(&text);
        if blocks.is_empty() {
            continue;
        }
        found += blocks.len();
        let name = doc
            .strip_prefix(repo_root())
            .unwrap_or(&doc)
            .display()
            .to_string();
        let tag = format!(
            "doc-{}",
            doc.file_stem().unwrap().to_string_lossy().to_lowercase()
        );
        let dir = workdir(&tag);
        let Some(sb) = DevSandbox::start_in(dir.join(".shipgate"), &[]) else {
            return; // moto not installed (said so); SHIPGATE_REQUIRE_MOTO=1 fails instead
        };
        let mut script = String::from("set -euo pipefail\n");
        for (line, body) in &blocks {
            script.push_str(&format!("# ---- {name}:{line}\n{body}"));
        }
        let started = Instant::now();
        let (ok, printed) = run_script(&dir, &script, &sb.base);
        shipgate_tests::say(&format!(
            "{name}: {} block(s), {} in {:.1}s",
            blocks.len(),
            if ok { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        ));
        if !ok {
            failures.push(format!(
                "{name}: the commands failed\n--- script\n{script}--- output\n{printed}\n--- sandbox\n{}",
                sb.printed()
            ));
        }
        drop(sb);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        found >= 5,
        "only {found} `{MARKER}` blocks found in README.md and docs/"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
