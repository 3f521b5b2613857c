//! Who may do what in the catalog, against a real registry trusting a key
//! made for the test: every call needs a token it accepts (each bad kind
//! refused with its own message); a domain's service identity writes its
//! own domain's products only; owners deprecate; only admins delete; every
//! version records who registered it; `WhoAmI` shows the caller.

use crate::common;

use std::time::Duration;

use common::{Fixture, TestRegistry};
use mesh_contracts::catalog::{
    DeleteProductRequest, DeprecateProductRequest, GetProductRequest, ListProductsRequest, RenewLeaseRequest,
    UndeprecateProductRequest, WhoAmIRequest,
};
use tonic::Code;

const ENDPOINT: &str = "http://127.0.0.1:6001";

async fn registry(dir: &tempfile::TempDir) -> TestRegistry {
    TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await
}

#[tokio::test]
async fn every_call_needs_a_token_the_registry_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(&dir).await;
    let anonymous = common::channel(registry.addr, mesh_grpc::Credentials::none()).await;
    let mut client = mesh_contracts::catalog::catalog_service_client::CatalogServiceClient::new(anonymous);
    let refused = client.list_products(ListProductsRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(
        refused.message(),
        "the call carries no bearer token; send `authorization: Bearer <token>` (mesh token print)"
    );
    let refused =
        client.get_product(GetProductRequest { name: "shop.orders".into(), ..Default::default() }).await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated, "the encoded GetProduct route too");
    for (what, token, message) in registry.issuer.bad_tokens() {
        let channel = common::channel(registry.addr, mesh_grpc::Credentials::token(&token).unwrap()).await;
        let mut client = mesh_contracts::catalog::catalog_service_client::CatalogServiceClient::new(channel);
        let status =
            client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::Unauthenticated, message.as_str()), "{what}");
    }
    // Any authenticated caller reads the catalog.
    let mut reader = registry.client_as("kim", &[]).await;
    assert!(
        reader.list_products(ListProductsRequest::default()).await.unwrap().into_inner().products.is_empty()
    );
}

#[tokio::test]
async fn a_domain_writes_its_own_products_only() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(&dir).await;
    let mut shop = registry.client_as("shop-domain", &["service:shop"]).await;
    let registered =
        shop.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    assert_eq!(registered.into_inner().schema_version, 1);

    // Another domain's identity cannot register, hijack with a second
    // endpoint, renew or deregister shop's product.
    let mut other = registry.client_as("card-domain", &["service:card"]).await;
    let hijack = other
        .register_product(Fixture::default().register("shop.orders", "http://127.0.0.1:7777"))
        .await
        .unwrap_err();
    assert_eq!(hijack.code(), Code::PermissionDenied);
    assert_eq!(
        hijack.message(),
        "`card-domain` may not register `shop.orders`: only the shop domain's service identity may, which \
         needs the role `service:shop` or `admin` (mesh whoami shows your roles)"
    );
    let renew = other
        .renew_lease(RenewLeaseRequest { name: "shop.orders".into(), endpoint: ENDPOINT.into(), data: None })
        .await
        .unwrap_err();
    assert_eq!(renew.code(), Code::PermissionDenied);
    // Without any role, neither.
    let mut nobody = registry.client_as("kim", &[]).await;
    let refused =
        nobody.register_product(Fixture::default().register("card.txns", ENDPOINT)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let entry = registry
        .client
        .clone()
        .get_product(GetProductRequest { name: "shop.orders".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(entry.endpoints.iter().map(|e| e.uri.as_str()).collect::<Vec<_>>(), [ENDPOINT]);
    assert_eq!(entry.versions[0].registered_by, "shop-domain");
    // A renewal records who made it on the endpoint.
    shop.renew_lease(RenewLeaseRequest { name: "shop.orders".into(), endpoint: ENDPOINT.into(), data: None })
        .await
        .unwrap();
    let db = rusqlite::Connection::open(dir.path().join("r.sqlite")).unwrap();
    let written_by: String = db
        .query_row("SELECT written_by FROM endpoints WHERE product_id = 'shop.orders'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(written_by, "shop-domain");

    // The major version rises one at a time, for the owner too.
    let mut jump = Fixture::default().register("shop.orders", ENDPOINT);
    jump.major_version = 4_294_967_295;
    let refused = shop.register_product(jump).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn owners_deprecate_and_only_admins_delete() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = registry(&dir).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let deprecate =
        || DeprecateProductRequest { name: "shop.orders".into(), message: "use shop.orders_v2".into() };

    let mut service = registry.client_as("shop-domain", &["service:shop"]).await;
    let refused = service.deprecate_product(deprecate()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.message(),
        "`shop-domain` may not deprecate `shop.orders`: only an owner of the shop domain may, which needs the \
         role `owner:shop` or `admin` (mesh whoami shows your roles)"
    );
    let mut owner = registry.client_as("lee", &["owner:shop"]).await;
    owner.deprecate_product(deprecate()).await.unwrap();
    owner.undeprecate_product(UndeprecateProductRequest { name: "shop.orders".into() }).await.unwrap();

    let refused =
        owner.delete_product(DeleteProductRequest { name: "shop.orders".into() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.message(),
        "`lee` may not delete `shop.orders`: only an admin may, which needs the role `admin` (mesh whoami \
         shows your roles)"
    );
    registry.client.delete_product(DeleteProductRequest { name: "shop.orders".into() }).await.unwrap();

    // Every write is in the write log, with who made it.
    let db = rusqlite::Connection::open(dir.path().join("r.sqlite")).unwrap();
    let mut statement = db.prepare("SELECT subject, action FROM catalog_writes ORDER BY id").unwrap();
    let log: Vec<(String, String)> =
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let expected =
        [("test-admin", "register"), ("lee", "deprecate"), ("lee", "undeprecate"), ("test-admin", "delete")];
    assert_eq!(log, expected.map(|(s, a)| (s.to_owned(), a.to_owned())));
}

#[tokio::test]
async fn who_am_i_shows_the_caller_as_the_registry_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(&dir).await;
    let me = registry.client_as("kim", &["analyst", "owner:shop"]).await.who_am_i(WhoAmIRequest {}).await;
    let me = me.unwrap().into_inner();
    assert_eq!(
        (me.subject.as_str(), me.issuer.as_str(), me.roles),
        (
            "kim",
            mesh_grpc::auth::test_tokens::TEST_ISSUER,
            vec!["analyst".to_owned(), "owner:shop".to_owned()]
        )
    );
}

#[tokio::test]
async fn a_page_token_is_the_callers_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = registry(&dir).await;
    for id in ["shop.orders", "shop.returns"] {
        registry.client.register_product(Fixture::default().register(id, ENDPOINT)).await.unwrap();
    }
    let first = ListProductsRequest { page_size: 1, ..Default::default() };
    let page = registry.client_as("kim", &[]).await.list_products(first).await.unwrap().into_inner();
    assert!(!page.next_page_token.is_empty());
    let next =
        ListProductsRequest { page_size: 1, page_token: page.next_page_token.clone(), ..Default::default() };
    let mut kim = registry.client_as("kim", &[]).await;
    assert_eq!(kim.list_products(next.clone()).await.unwrap().into_inner().products.len(), 1);
    let stolen = registry.client_as("lee", &[]).await.list_products(next).await.unwrap_err();
    assert_eq!(stolen.code(), Code::InvalidArgument);
    assert!(stolen.message().contains("or to another caller"), "{}", stolen.message());
}
