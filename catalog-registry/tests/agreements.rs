//! Access agreements in a real registry: a request the product's rule
//! covers is approved at once, others wait for an owner; owners approve,
//! deny and revoke, consumers withdraw their own; who sees which
//! agreements; bad requests and wrong transitions refused with their
//! reasons; every step in the write log.

mod common;

on_both_backends!(requests_rules_decisions_and_who_sees_what,);

use std::time::Duration;

use common::{Fixture, ORDER_OPTIONS, TestRegistry};
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::{
    AgreementState, ApproveAgreementRequest, DenyAgreementRequest, ListAgreementsRequest,
    RequestAccessRequest, RevokeAgreementRequest,
};
use mesh_grpc::{Credentials, MeshChannel};
use tonic::Code;

const ENDPOINT: &str = "http://127.0.0.1:6001";

/// The fixture product with a rule: analysts get PUBLIC columns and
/// pseudonymized identifiers for up to 30 days.
fn governed() -> Fixture {
    Fixture {
        options: format!(
            "{ORDER_OPTIONS}
    access_mode: ACCESS_MODE_BY_AGREEMENT
    auto_approvals: [{{ role: \"analyst\" classifications: [CLASSIFICATION_PUBLIC, CLASSIFICATION_PII_IDENTIFIER] max_days: 30 }}]"
        ),
        ..Fixture::default()
    }
}

async fn access(registry: &TestRegistry, subject: &str, roles: &[&str]) -> AccessServiceClient<MeshChannel> {
    let credentials = Credentials::token(&registry.token(subject, roles)).unwrap();
    AccessServiceClient::new(common::channel(registry.addr, credentials).await)
}

fn ask(columns: &[&str]) -> RequestAccessRequest {
    RequestAccessRequest {
        product: "shop.orders".into(),
        purpose: "monthly order report".into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        end_time: Some(prost_types::Timestamp {
            seconds: mesh_grpc::test_tokens::now() + 7 * 86_400,
            nanos: 0,
        }),
        ..Default::default()
    }
}

async fn requests_rules_decisions_and_who_sees_what() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(governed().register("shop.orders", ENDPOINT)).await.unwrap();

    // The rule covers an analyst asking for PUBLIC columns and identifiers.
    let mut ana = access(&registry, "ana", &["analyst"]).await;
    let granted =
        ana.request_access(ask(&["amount", "customer_id"])).await.unwrap().into_inner().agreement.unwrap();
    assert_eq!(granted.state(), AgreementState::Approved);
    assert_eq!((granted.principal.as_str(), granted.decided_by.as_str()), ("ana", "policy"));
    assert!(
        granted.decision_note.starts_with("approved by the product's rule: role `analyst`"),
        "{granted:?}"
    );

    // A quasi-identifier, a raw identifier: they wait for an owner.
    let pending =
        ana.request_access(ask(&["amount", "province"])).await.unwrap().into_inner().agreement.unwrap();
    assert_eq!(pending.state(), AgreementState::Pending);
    let raw = RequestAccessRequest { raw_columns: vec!["customer_id".into()], ..ask(&["customer_id"]) };
    let raw = ana.request_access(raw).await.unwrap().into_inner().agreement.unwrap();
    assert_eq!(raw.state(), AgreementState::Pending);

    // Only owners decide.
    let refused = ana
        .approve_agreement(ApproveAgreementRequest { name: pending.name.clone(), note: String::new() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("needs the role `owner:shop` or `admin`"), "{}", refused.message());
    let mut owner = access(&registry, "lee", &["owner:shop"]).await;
    let approved = owner
        .approve_agreement(ApproveAgreementRequest {
            name: pending.name.clone(),
            note: "ok for the report".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!((approved.state(), approved.decided_by.as_str()), (AgreementState::Approved, "lee"));
    let no_reason =
        owner.deny_agreement(DenyAgreementRequest { name: raw.name.clone(), note: " ".into() }).await;
    assert_eq!(no_reason.unwrap_err().code(), Code::InvalidArgument);
    let denied = owner
        .deny_agreement(DenyAgreementRequest { name: raw.name.clone(), note: "pseudonyms are enough".into() })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(denied.state(), AgreementState::Denied);
    let again = owner
        .approve_agreement(ApproveAgreementRequest { name: raw.name.clone(), note: String::new() })
        .await;
    let again = again.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(
        again.message().contains("is denied; only a pending agreement can be approved"),
        "{}",
        again.message()
    );

    // The consumer withdraws one of its own; another consumer may not.
    let mut bob = access(&registry, "bob", &["analyst"]).await;
    let theft = bob
        .revoke_agreement(RevokeAgreementRequest { name: granted.name.clone(), note: String::new() })
        .await;
    assert_eq!(theft.unwrap_err().code(), Code::PermissionDenied);
    let revoked = ana
        .revoke_agreement(RevokeAgreementRequest { name: granted.name.clone(), note: "done".into() })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(revoked.state(), AgreementState::Revoked);

    // Who sees what: owners and the domain all of the product's; others their own.
    let listed = |client: &mut AccessServiceClient<MeshChannel>, inactive: bool| {
        let mut client = client.clone();
        async move {
            let request = ListAgreementsRequest { product: "shop.orders".into(), include_inactive: inactive };
            client.list_agreements(request).await.unwrap().into_inner().agreements
        }
    };
    assert_eq!(listed(&mut owner, true).await.len(), 3);
    assert_eq!(listed(&mut owner, false).await.len(), 1, "only the approved one is in force");
    let mut domain = access(&registry, "shop-domain", &["service:shop"]).await;
    assert_eq!(listed(&mut domain, false).await.len(), 1);
    assert_eq!(listed(&mut bob, true).await.len(), 0);
    assert_eq!(listed(&mut ana, true).await.len(), 3);

    // Bad requests name their field.
    let unknown = ana.request_access(ask(&["nope"])).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(
        unknown.message().starts_with("columns: `nope` is not a column of shop.orders"),
        "{}",
        unknown.message()
    );
    let missing =
        ana.request_access(RequestAccessRequest { product: "shop.nothing".into(), ..ask(&[]) }).await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);
    let nothing = ApproveAgreementRequest { name: "agreements/999".into(), note: String::new() };
    let nothing = owner.approve_agreement(nothing).await.unwrap_err();
    assert_eq!(
        (nothing.code(), nothing.message()),
        (Code::NotFound, "agreements/999 does not exist; mesh access list shows yours")
    );
    let bad = ApproveAgreementRequest { name: "agreements/x".into(), note: String::new() };
    let bad = owner.approve_agreement(bad).await.unwrap_err();
    assert_eq!(
        (bad.code(), bad.message()),
        (Code::InvalidArgument, "name: `agreements/x` is not an agreement; expected agreements/<number>")
    );

    let log: Vec<(String, String)> = registry
        .stored(
            &dir.path().join("r.sqlite"),
            "SELECT subject, action FROM catalog_writes WHERE action LIKE '%access%' ORDER BY id",
        )
        .await
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let expected = [
        ("ana", "request access (approved by rule)"),
        ("ana", "request access"),
        ("ana", "request access"),
        ("lee", "approve access"),
        ("lee", "deny access"),
        ("ana", "revoke access"),
    ];
    assert_eq!(log, expected.map(|(s, a)| (s.to_owned(), a.to_owned())));
}

#[tokio::test]
async fn a_consumer_cannot_flood_the_owners_with_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(governed().register("shop.orders", ENDPOINT)).await.unwrap();
    let mut ana = access(&registry, "ana", &["analyst"]).await;
    let waiting =
        || RequestAccessRequest { raw_columns: vec!["customer_id".into()], ..ask(&["customer_id"]) };
    for _ in 0..catalog_registry::access::MAX_PENDING {
        ana.request_access(waiting()).await.unwrap();
    }
    let refused = ana.request_access(waiting()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("already waiting for owners"), "{}", refused.message());
    // Another consumer is not held up by ana's requests.
    access(&registry, "bob", &["analyst"]).await.request_access(waiting()).await.unwrap();
}
