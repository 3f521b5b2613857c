//! Checking metrics with Debian's `promtool check metrics` (feature
//! `test-support`): what every test of a `/metrics` page runs.

use std::io::Write;
use std::process::{Command, Stdio};

/// `promtool check metrics` on `text`: its complaints when it has any.
pub fn check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool (Debian's prometheus; scripts/install-tools.sh installs it): {e}"))?;
    child.stdin.take().ok_or("promtool's stdin")?.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
    }
}
