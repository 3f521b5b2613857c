//! Access agreements in a real registry: a request the product's rule
//! covers is approved at once, others wait for an owner; owners approve,
//! deny and revoke, consumers withdraw their own; who sees which
//! agreements; bad requests and wrong transitions refused with their
//! reasons; every step in the write log.

use crate::common;

mesh_postgres::on_both_backends!(
    requests_rules_decisions_and_who_sees_what,
    row_scopes_name_only_columns_delivered_in_the_clear,
    every_agreement_is_listed_page_by_page,
);

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
            seconds: mesh_grpc::auth::test_tokens::now() + 7 * 86_400,
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
    // One agreement in force per consumer and product: the newer approval supersedes the older.
    let mine = ana
        .list_agreements(ListAgreementsRequest {
            product: "shop.orders".into(),
            include_inactive: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agreements;
    let older = mine.iter().find(|a| a.name == granted.name).unwrap();
    assert_eq!(older.state(), AgreementState::Superseded);
    assert_eq!(older.decision_note, format!("superseded by {}", approved.name));
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
        .revoke_agreement(RevokeAgreementRequest { name: approved.name.clone(), note: String::new() })
        .await;
    assert_eq!(theft.unwrap_err().code(), Code::PermissionDenied);
    let revoked = ana
        .revoke_agreement(RevokeAgreementRequest { name: approved.name.clone(), note: "done".into() })
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(revoked.state(), AgreementState::Revoked);
    let superseded = ana
        .revoke_agreement(RevokeAgreementRequest { name: granted.name.clone(), note: String::new() })
        .await;
    assert_eq!(superseded.unwrap_err().code(), Code::FailedPrecondition, "a superseded agreement is over");
    let renewed = ana.request_access(ask(&["amount", "customer_id"])).await.unwrap().into_inner();
    assert_eq!(renewed.agreement.unwrap().state(), AgreementState::Approved);

    // Who sees what: owners and the domain all of the product's; others their own.
    let listed = |client: &mut AccessServiceClient<MeshChannel>, inactive: bool| {
        let mut client = client.clone();
        async move {
            let request = ListAgreementsRequest {
                product: "shop.orders".into(),
                include_inactive: inactive,
                ..Default::default()
            };
            client.list_agreements(request).await.unwrap().into_inner().agreements
        }
    };
    assert_eq!(listed(&mut owner, true).await.len(), 4);
    assert_eq!(listed(&mut owner, false).await.len(), 1, "only the renewed one is in force");
    let mut domain = access(&registry, "shop-domain", &["service:shop"]).await;
    assert_eq!(listed(&mut domain, false).await.len(), 1);
    assert_eq!(listed(&mut bob, true).await.len(), 0);
    assert_eq!(listed(&mut ana, true).await.len(), 4);

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
        ("ana", "request access (approved by rule)"),
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

async fn row_scopes_name_only_columns_delivered_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(governed().register("shop.orders", ENDPOINT)).await.unwrap();
    let mut ana = access(&registry, "ana", &["analyst"]).await;
    let scoped = |columns: &[&str], raw: &[&str], scope: &str| RequestAccessRequest {
        row_scope: scope.into(),
        raw_columns: raw.iter().map(|c| (*c).to_owned()).collect(),
        ..ask(columns)
    };
    // A scope on a pseudonymized identifier's real value, on a quasi-identifier
    // not granted: refused at request time, naming the column and why.
    for (request, column) in [
        (scoped(&["amount", "customer_id"], &[], r#"customer_id = "C-0001""#), "customer_id"),
        (scoped(&["amount", "customer_id"], &[], r#"amount > 5 AND province = "서울""#), "province"),
        (scoped(&["amount"], &[], r#"NOT (province != "서울") OR amount > 1"#), "province"),
    ] {
        let refused = ana.request_access(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().starts_with(&format!(
                "row_scope: compares `{column}`, which the agreement would not deliver in the clear"
            )),
            "{}",
            refused.message()
        );
    }
    let broken = ana.request_access(scoped(&["amount"], &[], "amount >")).await.unwrap_err();
    assert_eq!(
        (broken.code(), broken.message()),
        (Code::InvalidArgument, "row_scope: the filter ends early; expected a value at column 9")
    );
    // A scope on what the agreement delivers in the clear is fine; the rule approves it.
    let fine = ana.request_access(scoped(&["amount", "customer_id"], &[], "amount > 5")).await.unwrap();
    assert_eq!(fine.into_inner().agreement.unwrap().state(), AgreementState::Approved);
    // Granted columns and raw identifiers may scope too (an owner decides those).
    let owned =
        scoped(&["province", "customer_id"], &["customer_id"], r#"customer_id = "C-1" AND province = "x""#);
    let owned = ana.request_access(owned).await.unwrap().into_inner().agreement.unwrap();
    assert_eq!(owned.state(), AgreementState::Pending);
}

async fn every_agreement_is_listed_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(governed().register("shop.orders", ENDPOINT)).await.unwrap();
    let consumers = 1_100;
    for i in 0..consumers {
        let mut client = access(&registry, &format!("consumer-{i}"), &["analyst"]).await;
        client.request_access(ask(&["amount"])).await.unwrap();
    }
    let mut domain = access(&registry, "shop-domain", &["service:shop"]).await;
    let mut request =
        ListAgreementsRequest { product: "shop.orders".into(), page_size: 400, ..Default::default() };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = domain.list_agreements(request.clone()).await.unwrap().into_inner();
        assert!(page.agreements.len() <= 400);
        seen.extend(page.agreements.into_iter().map(|a| a.principal));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), consumers, "every consumer's agreement, once");
    // A token is bound to its listing and caller.
    let mut first = domain.list_agreements(ListAgreementsRequest { page_size: 10, ..request.clone() });
    let token = first.await.unwrap().into_inner().next_page_token;
    first = domain.list_agreements(ListAgreementsRequest {
        include_inactive: true,
        page_token: token.clone(),
        ..request.clone()
    });
    assert_eq!(first.await.unwrap_err().code(), Code::InvalidArgument);
    let negative = ListAgreementsRequest { page_size: -1, ..request.clone() };
    let negative = domain.list_agreements(negative).await.unwrap_err();
    assert_eq!(
        (negative.code(), negative.message()),
        (Code::InvalidArgument, "page_size: is negative; use 1 to 1000, or 0")
    );
    let mut other = access(&registry, "lee", &["owner:shop"]).await;
    let stolen = ListAgreementsRequest { page_token: token, page_size: 10, ..request.clone() };
    assert_eq!(other.list_agreements(stolen).await.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_consumer_holds_a_bounded_number_of_agreements_granted_by_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let products = catalog_registry::access::MAX_AUTO_APPROVED + 1;
    for i in 0..products {
        registry
            .client
            .register_product(governed().register(&format!("shop.orders{i}"), ENDPOINT))
            .await
            .unwrap();
    }
    let mut ana = access(&registry, "ana", &["analyst"]).await;
    let mut states = Vec::new();
    for i in 0..products {
        let request = RequestAccessRequest { product: format!("shop.orders{i}"), ..ask(&["amount"]) };
        states.push(ana.request_access(request).await.unwrap().into_inner().agreement.unwrap().state());
    }
    let approved = states.iter().filter(|s| **s == AgreementState::Approved).count();
    assert_eq!(approved as i64, catalog_registry::access::MAX_AUTO_APPROVED);
    assert_eq!(states.last(), Some(&AgreementState::Pending), "past the cap an owner decides");
    // Asking again for a product already granted replaces that agreement, within the cap.
    let again =
        ana.request_access(RequestAccessRequest { product: "shop.orders0".into(), ..ask(&["amount"]) });
    assert_eq!(again.await.unwrap().into_inner().agreement.unwrap().state(), AgreementState::Approved);
}
