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

/// The shipped payment product file with `customers` x `quarters` of
/// generated data, written under `dir` (made once); the path of the product
/// file, for `mesh-domain --product`.
pub fn payment_product(dir: &std::path::Path, customers: u64, quarters: u32) -> String {
    let generator = woori_data::Generator { customers, quarters, ..Default::default() };
    let shipped =
        woori_data::shipped::write(&dir.join("files"), &generator).expect("the product files are written");
    shipped.payment.display().to_string()
}

/// A child process, killed when dropped.
#[derive(Debug)]
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command`, a mesh service logging to stderr, and waits until it
/// logs that it is serving; returns it and the address it serves on. Its
/// later log lines are read and dropped.
pub fn serve(mut command: std::process::Command) -> (Running, String) {
    use std::io::BufRead;
    let mut child = command
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the service starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let running = Running(child);
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("the service exited before serving").expect("a log line");
        if let Some(rest) = line.split("serving addr=").nth(1) {
            break rest.split_whitespace().next().unwrap_or_default().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (running, addr)
}
