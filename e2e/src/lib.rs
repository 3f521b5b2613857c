//! End-to-end tests of the mesh as its users meet it (see `tests/`): the
//! `mesh` binary against a mesh started in the test's process, the external
//! clients (grpcurl, buf curl, Go, Python) and `compose.yaml`.
//!
//! The tests live in a package of their own so that the `mesh` CLI's own
//! dependencies stay those of a consumer.

use std::path::PathBuf;

/// A binary of the workspace, built next to the running test's folder
/// (`scripts/test.sh` builds every binary first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}
