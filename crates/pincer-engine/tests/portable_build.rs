//! The builds run on every machine of this kind: nothing compiles for the
//! CPU it happens to be built on. A native llama.cpp build on a CPU that
//! advertises AMX enabled ggml's AMX backend, which died with SIGSEGV at
//! its first matrix multiply; a `target-cpu=native` Rust build turns into
//! exactly that (llama-cpp-sys-2 maps it to GGML_NATIVE).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn repo_file(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn no_build_compiles_for_the_machine_it_runs_on() {
    let cargo = repo_file(".cargo/config.toml");
    let flags: Vec<&str> = cargo
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        flags.iter().any(|l| l.contains("target-cpu=x86-64-v3")),
        "{cargo}"
    );
    assert!(!flags.iter().any(|l| l.contains("native")), "{cargo}");

    let deps = repo_file("scripts/test-deps");
    assert!(
        deps.contains("-DGGML_NATIVE=OFF"),
        "llama-server is built portable"
    );
    for line in deps.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains("march=native"), "{line}");
        assert!(!line.contains("GGML_NATIVE=ON"), "{line}");
    }
}
