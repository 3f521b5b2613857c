//! `buf breaking` (run in CI against the previous commit) catches a change
//! that would break consumers of a published contract.

use std::path::{Path, PathBuf};
use std::process::Command;

fn buf() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/buf");
    assert!(path.exists(), "buf is missing: run scripts/install-tools.sh (scripts/test.sh does)");
    path
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn breaking(changed: &Path) -> std::process::Output {
    let published = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    Command::new(buf()).arg("breaking").arg(changed).arg("--against").arg(&published).output().unwrap()
}

#[test]
fn a_retyped_field_is_reported_and_an_added_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("proto");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("proto"), &proto);
    let payment = proto.join("woori/payment/v1/payment.proto");
    let original = std::fs::read_to_string(&payment).unwrap();

    let unchanged = breaking(&proto);
    assert!(unchanged.status.success(), "{}", String::from_utf8_lossy(&unchanged.stdout));

    std::fs::write(&payment, original.replace("int64 tot_use_am = 3", "string tot_use_am = 3")).unwrap();
    let retyped = breaking(&proto);
    assert!(!retyped.status.success(), "a retyped field passed buf breaking");
    let report =
        String::from_utf8_lossy(&retyped.stdout).into_owned() + &String::from_utf8_lossy(&retyped.stderr);
    assert!(report.contains("tot_use_am"), "{report}");

    std::fs::write(
        &payment,
        original.replace("message CardSpending {", "message CardSpending {\n  int64 extra_am = 99;"),
    )
    .unwrap();
    let added = breaking(&proto);
    assert!(
        added.status.success(),
        "an added field was reported: {}",
        String::from_utf8_lossy(&added.stdout)
    );
}
