//! `mesh access` against a real mesh: an analyst's request for the
//! non-sensitive columns of payment.card_spending is approved at once by
//! the product's shipped rule; a request for sensitive columns waits for
//! the owners, who see it, approve it or deny it; `mesh describe` shows
//! the access mode and the agreements in force.

use crate::common;

use common::{Mesh, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_asks_and_the_owners_decide() {
    let mesh = Mesh::start(50, false).await;
    let analyst = mesh.token_as("e2e-analyst", &["analyst"]);
    let owner = mesh.token_as("lee", &["owner:payment"]);
    let as_ = |token: &str, args: &[&str]| {
        let output = mesh.mesh().env("MESH_TOKEN", token).args(args).output().unwrap();
        (output.status.code(), stdout(&output), stderr(&output))
    };

    let (code, out, err) = as_(
        &analyst,
        &[
            "access",
            "request",
            "payment.card_spending",
            "--purpose",
            "segment report",
            "--columns",
            "bas_yh,seq",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("agreements/1: approved at once (approved by the product's rule: role `analyst`"),
        "{out}"
    );

    // Reading under it: the withheld columns are left out, with a note.
    let started = std::time::Instant::now();
    let (out, err) = loop {
        let (code, out, err) =
            as_(&analyst, &["query", "payment.card_spending", "--limit", "2", "--format", "csv"]);
        if code == Some(0) || started.elapsed() > std::time::Duration::from_secs(10) {
            break (out, err);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(out.lines().next(), Some("bas_yh,seq"), "{out}{err}");
    assert!(err.contains("note: your agreement does not cover") && err.contains("tot_use_am"), "{err}");

    let (code, out, err) = as_(
        &analyst,
        &[
            "access",
            "request",
            "payment.card_spending",
            "--purpose",
            "spend study",
            "--columns",
            "seq,tot_use_am",
            "--days",
            "30",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        "agreements/2: pending; the owners of payment.card_spending decide (they see it with `mesh access list \
         payment.card_spending`)"
    );

    // The owner sees both, approves the pending one; the analyst sees their own.
    let (_, listed, _) = as_(&owner, &["access", "list", "payment.card_spending"]);
    assert!(listed.contains("agreements/1") && listed.contains("agreements/2"), "{listed}");
    assert!(listed.contains("e2e-analyst") && listed.contains("pending"), "{listed}");
    let (code, _, err) = as_(&analyst, &["access", "approve", "2"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("needs the role `owner:payment` or `admin`"), "{err}");
    let (code, out, err) = as_(&owner, &["access", "approve", "agreements/2", "--note", "ok"]);
    assert_eq!((code, out.trim()), (Some(0), "agreements/2: approved"), "{err}");
    let (code, _, err) = as_(&owner, &["access", "deny", "2", "--note", "too late"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("agreements/2 is approved; only a pending agreement can be denied"), "{err}");

    // Describe shows the access mode, the shipped rule and the caller's agreements.
    let (code, described, err) = as_(&analyst, &["describe", "payment.card_spending"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(described.contains("by agreement: mesh access request"), "{described}");
    assert!(described.contains("granted at once to role analyst"), "{described}");
    assert!(described.contains("agreements in force:"), "{described}");
    let (_, others, _) = as_(&mesh.token_as("bob", &["analyst"]), &["describe", "payment.card_spending"]);
    assert!(others.contains("no agreement of yours is in force"), "{others}");

    // One agreement in force per consumer and product: the approval superseded the first.
    let (_, mine, _) = as_(&analyst, &["access", "list", "--all"]);
    assert!(mine.contains("agreements/1") && mine.contains("superseded"), "{mine}");
    let (_, mine, _) = as_(&analyst, &["access", "list"]);
    assert!(!mine.contains("agreements/1 ") && mine.contains("agreements/2"), "{mine}");
    // The analyst withdraws the one in force; none is left.
    let (code, out, _) = as_(&analyst, &["access", "revoke", "2"]);
    assert_eq!((code, out.trim()), (Some(0), "agreements/2: revoked"));
    let (_, mine, _) = as_(&analyst, &["access", "list"]);
    assert!(!mine.contains("agreements/2 ") && !mine.contains("agreements/1 "), "{mine}");
}
