//! The web catalog's defences, over real HTTP against a real registry:
//! hostile catalog text escaped on every page; the security headers and
//! cookie attributes; sign-in forms and one-time links that work once;
//! CSRF and origin checks on every form; no open redirect; the session's
//! token readable only by the catalog's own script.

use crate::common;

use std::time::Duration;

use common::{Fixture, TestRegistry};

const HOSTILE_TITLE: &str = "<script>alert(1)</script>";
const HOSTILE_PURPOSE: &str = "\\\"><img src=x onerror=alert(2)>";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of cookie `name` set by `response`, and its whole Set-Cookie line.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        let value = line.strip_prefix(&format!("{name}="))?.split(';').next()?.to_owned();
        Some((value, line.to_owned()))
    })
}

/// The value of hidden field `name` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Signs in with `token` through the sign-in form; the session cookie.
async fn sign_in(base: &str, token: &str, next: &str) -> (String, reqwest::Response) {
    let http = client();
    let page = http.get(format!("{base}/catalog/signin")).send().await.unwrap();
    let (signin_cookie, _) = set_cookie(&page, "mesh_signin").expect("a sign-in cookie");
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    let response = http
        .post(format!("{base}/catalog/signin"))
        .header("cookie", format!("mesh_signin={signin_cookie}"))
        .form(&[("csrf", csrf.as_str()), ("next", next), ("token", token)])
        .send()
        .await
        .unwrap();
    let (session, _) = set_cookie(&response, "mesh_session").expect("a session cookie");
    (session, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_pages_escape_what_they_show_and_guard_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry =
        TestRegistry::start(&dir.path().join("registry.sqlite"), Duration::from_secs(30)).await;
    let options = common::ORDER_OPTIONS
        .replace("Orders per customer", HOSTILE_TITLE)
        .replace("Answers how much each customer orders, by province", HOSTILE_PURPOSE)
        .replace("shop-data@example.com", "javascript:alert(3)");
    let fixture = Fixture { options, ..Fixture::default() };
    registry.client.register_product(fixture.register("shop.orders", "http://127.0.0.1:7001")).await.unwrap();
    let base = format!("http://{}", registry.addr);
    let http = client();

    // Not signed in: sent to sign in, and back after.
    let response = http.get(format!("{base}/catalog/products/shop.orders")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/catalog/signin?next=%2Fcatalog%2Fproducts%2Fshop.orders");
    assert_eq!(http.get(format!("{base}/")).send().await.unwrap().headers()["location"], "/catalog");

    // A pasted token signs in; the session cookie is HttpOnly and SameSite=Strict.
    let owner = registry.token("olga", &["owner:shop"]);
    let (session, response) = sign_in(&base, &owner, "/catalog/products/shop.orders").await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/catalog/products/shop.orders");
    let (_, line) = set_cookie(&response, "mesh_session").unwrap();
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict") && line.contains("Path=/catalog"),
        "{line}"
    );
    assert!(!line.contains("Secure"), "plain HTTP on loopback: {line}");
    let cookie = format!("mesh_session={session}");

    // Hostile catalog text is shown as text on every page.
    for path in ["/catalog", "/catalog?q=orders", "/catalog/products/shop.orders"] {
        let response = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script>alert"), "{path} carries the raw title");
        assert!(!html.contains("<img src=x"), "{path} carries the raw purpose");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{path}: {html}");
        assert!(!html.contains("href=\"javascript:"), "{path}");
    }
    let product = http
        .get(format!("{base}/catalog/products/shop.orders"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csp = product.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("connect-src 'self' http://127.0.0.1:7001"),
        "the domain is reachable for previews: {csp}"
    );
    let html = product.text().await.unwrap();
    assert!(
        html.contains("data-rows-urls=\"http://127.0.0.1:7001/v1/products/shop.orders/rows?page_size=50\"")
    );

    // Forms need the session's CSRF token and the catalog's own origin.
    let csrf = hidden(&html, "csrf");
    let request = |csrf: &str, origin: Option<&str>| {
        let mut request = http
            .post(format!("{base}/catalog/products/shop.orders/access"))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf), ("purpose", "forged"), ("columns", "amount"), ("days", "30")]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(request("forged", None).await.unwrap().status(), 403);
    assert_eq!(request(&csrf, Some("https://evil.example")).await.unwrap().status(), 403);
    let accepted = request(&csrf, Some(&base)).await.unwrap();
    assert_eq!(accepted.status(), 303, "the owner's own form goes through (and is answered on the page)");

    // The product page shows the newest events the visitor may see: an
    // analyst's request to the owners, not to another analyst.
    let credentials = mesh_grpc::Credentials::token(&registry.token("ana", &["analyst"])).unwrap();
    let mut ana = mesh_contracts::catalog::access_service_client::AccessServiceClient::new(
        common::channel(registry.addr, credentials).await,
    );
    let ask = mesh_contracts::catalog::RequestAccessRequest {
        product: "shop.orders".into(),
        purpose: "report".into(),
        columns: vec!["amount".into()],
        ..Default::default()
    };
    ana.request_access(ask).await.unwrap();
    let page = |cookie: String| {
        let request = http.get(format!("{base}/catalog/products/shop.orders")).header("cookie", cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let owners = page(cookie.clone()).await;
    assert!(owners.contains("Recent events") && owners.contains("mesh.product.registered.v1"), "{owners}");
    assert!(
        owners.contains("mesh.access.requested.v1") && owners.contains("consumer=&#34;ana&#34;"),
        "{owners}"
    );
    let (bob, _) = sign_in(&base, &registry.token("bob", &["analyst"]), "/catalog").await;
    let bobs = page(format!("mesh_session={bob}")).await;
    assert!(
        bobs.contains("mesh.product.registered.v1") && !bobs.contains("mesh.access.requested.v1"),
        "{bobs}"
    );

    // A sign-in form without its browser's cookie is refused; `next` never leaves the catalog.
    let forged = http
        .post(format!("{base}/catalog/signin"))
        .form(&[("csrf", "x"), ("next", "/catalog"), ("token", owner.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(set_cookie(&forged, "mesh_session").is_none());
    let (_, response) = sign_in(&base, &owner, "https://evil.example/x").await;
    assert_eq!(response.headers()["location"], "/catalog");
    let bad = {
        let page = http.get(format!("{base}/catalog/signin")).send().await.unwrap();
        let (signin_cookie, _) = set_cookie(&page, "mesh_signin").unwrap();
        let csrf = hidden(&page.text().await.unwrap(), "csrf");
        http.post(format!("{base}/catalog/signin"))
            .header("cookie", format!("mesh_signin={signin_cookie}"))
            .form(&[("csrf", csrf.as_str()), ("next", "/catalog"), ("token", "not.a.token")])
            .send()
            .await
            .unwrap()
    };
    assert_eq!(bad.status(), 401);
    assert!(bad.text().await.unwrap().contains("The token was refused"));

    // A form is at most 64 KiB.
    let huge = "x".repeat(70 * 1024);
    let too_large = http
        .post(format!("{base}/catalog/products/shop.orders/access"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("purpose", huge.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    assert!(too_large.text().await.unwrap().contains("The form is larger than 65536 bytes."));

    // The session's token goes only to the catalog's own script.
    let token_url = format!("{base}/catalog/session/token");
    let no_header = http.get(&token_url).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(no_header.status(), 403);
    let no_session = http.get(&token_url).header("x-mesh-catalog", "1").send().await.unwrap();
    assert_eq!(no_session.status(), 401);
    // The session's own token never leaves: a page asks for one domain's,
    // which this registry (exchanging nothing) cannot make.
    let ask = |url: String| http.get(url).header("cookie", &cookie).header("x-mesh-catalog", "1").send();
    let no_domain = ask(token_url.clone()).await.unwrap();
    assert_eq!(no_domain.status(), 400);
    let text = no_domain.text().await.unwrap();
    assert!(text.contains("?domain=payment") && !text.contains(owner.as_str()), "{text}");
    let no_exchange = ask(format!("{token_url}?domain=shop")).await.unwrap();
    assert!(no_exchange.status().is_client_error(), "{}", no_exchange.status());
    let text = no_exchange.text().await.unwrap();
    assert!(text.contains("does not exchange tokens") && !text.contains(owner.as_str()), "{text}");
    // Its token endpoint says so in OAuth's words, without a token.
    let exchange = http.post(format!("{base}/v1/token")).form(&[("grant_type", "x")]).send().await.unwrap();
    assert_eq!(exchange.status(), 400);
    let answer: serde_json::Value = exchange.json().await.unwrap();
    assert_eq!(answer["error"], "unsupported_grant_type");
    let description = answer["error_description"].as_str().unwrap();
    assert!(description.starts_with("this registry does not exchange tokens"), "{description}");

    // A one-time link works once.
    let code = registry.links.create(registry.token("lee", &["admin"]));
    let link = format!("{base}/catalog/signin/link?code={code}");
    let first = http.get(&link).send().await.unwrap();
    assert_eq!(first.status(), 303);
    assert!(set_cookie(&first, "mesh_session").is_some());
    let again = http.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert!(again.text().await.unwrap().contains("already used or has expired"));

    // Signing out ends the session.
    let page = http
        .get(format!("{base}/catalog"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let out = http
        .post(format!("{base}/catalog/signout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = http.get(format!("{base}/catalog")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), 303, "the old cookie no longer signs in");
}
