//! The `mesh-domain` binary serving the shipped payment product file:
//! starts, serves, and stops cleanly on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_binary_serves_and_stops_on_signals() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let issuer =
            mesh_grpc::auth::issuer::LocalIssuer::open_or_create(&dir.path().join("issuer")).unwrap();
        let generator = woori_data::Generator { customers: 50, quarters: 1, seed: 1 };
        let shipped = woori_data::shipped::write(&dir.path().join("files"), &generator).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-domain"))
            .args(["--addr", "127.0.0.1:0", "--registry", "http://127.0.0.1:9"])
            .arg("--product")
            .arg(&shipped.payment)
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--auth-jwks")
            .arg(issuer.jwks_file())
            .arg("--pseudonym-key")
            .arg(common_key(dir.path()))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let serving = lines.by_ref().map_while(Result::ok).find(|line| line.contains("serving addr="));
        assert!(serving.is_some(), "mesh-domain exited before serving");
        // Keep draining the log so the process never blocks on a full pipe.
        let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
        assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("mesh-domain ignored {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = drain.join().unwrap().join("\n");
        assert!(status.success(), "mesh-domain exited with {status} after {signal}: {log}");
        assert!(log.contains("shutting down"), "{log}");
        assert!(dir.path().join("payment.sqlite").exists());
    }
}

/// A pseudonym key in `dir`.
fn common_key(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("pseudonym.key");
    mesh_grpc::private_files::create_secret(&path).unwrap();
    path
}
