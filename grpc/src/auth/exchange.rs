//! OAuth 2.0 Token Exchange (RFC 8693) with resource indicators (RFC 8707):
//! a client trades its sign-in token, good at the registry, for a
//! short-lived token whose audience is one domain, good there alone. The
//! registry (or a company IdP that supports token exchange) answers at its
//! token endpoint; this module holds what both sides share and the client.

use serde_json::Value;

/// Where a registry exchanges tokens (a POST of an HTML form).
pub const TOKEN_PATH: &str = "/v1/token";
/// The `grant_type` of a token exchange.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The token type of a JWT.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The prefix of a domain's audience (and resource indicator).
const DOMAIN_AUDIENCE: &str = "urn:woori-mesh:domain:";

/// The audience of tokens for domain `domain`, e.g.
/// `urn:woori-mesh:domain:payment`: what a domain's tokens must carry in
/// `aud`, and the `resource` a client asks a token for.
pub fn domain_audience(domain: &str) -> String {
    format!("{DOMAIN_AUDIENCE}{domain}")
}

/// The domain `audience` names, if it is a domain's.
pub fn domain_of(audience: &str) -> Option<&str> {
    audience.strip_prefix(DOMAIN_AUDIENCE).filter(|d| !d.is_empty())
}

/// The domain a JWT is for, read from its `aud` claim without checking the
/// signature (the domain checks that): what a client may send it to. Only
/// a token whose every audience is that one domain's names it: a token
/// also good at the registry or at another domain names none.
pub fn token_domain(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let audiences = match &claims["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let first = *audiences.first()?;
    let domain = domain_of(first)?;
    audiences.iter().all(|a| *a == first).then(|| domain.to_owned())
}

/// A token received from an exchange.
#[derive(Debug, Clone)]
pub struct Exchanged {
    /// The token.
    pub token: String,
    /// Seconds it is good for from now.
    pub expires_in: u64,
}

/// Exchanges `subject_token` at the token endpoint `url` for a token for
/// `audience`; an error says why, in the endpoint's words.
pub async fn exchange(url: &str, subject_token: &str, audience: &str) -> Result<Exchanged, String> {
    // One client for the process: its connections to the endpoint are kept.
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let http = match HTTP.get() {
        Some(http) => http,
        None => {
            let built = crate::auth::oidc::http_client().map_err(|e| e.to_string())?;
            HTTP.get_or_init(|| built)
        }
    };
    let form = [
        ("grant_type", GRANT_TYPE),
        ("subject_token", subject_token),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("resource", audience),
        ("audience", audience),
    ];
    let (status, answer) = crate::auth::oidc::post_form(http, url, &form).await?;
    if !status.is_success() {
        let error = answer["error"].as_str().unwrap_or("error");
        let description = answer["error_description"].as_str().unwrap_or("");
        return Err(format!("{url} refused the token exchange ({status}, {error}): {description}"));
    }
    let exchanged = exchanged(&answer)
        .ok_or_else(|| format!("{url} answered the token exchange without an access_token"))?;
    // A token good elsewhere too (or whose audience cannot be read) is not
    // sent to the domain: it would be good wherever that endpoint took it.
    if domain_of(audience).is_some() && token_domain(&exchanged.token).as_deref() != domain_of(audience) {
        return Err(format!("{url} answered with a token that is not for `{audience}` alone; refused"));
    }
    Ok(exchanged)
}

fn exchanged(answer: &Value) -> Option<Exchanged> {
    let token = answer["access_token"].as_str().filter(|t| !t.is_empty())?.to_owned();
    Some(Exchanged { token, expires_in: answer["expires_in"].as_u64().unwrap_or(0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_audience_names_its_domain() {
        assert_eq!(domain_audience("payment"), "urn:woori-mesh:domain:payment");
        assert_eq!(domain_of("urn:woori-mesh:domain:payment"), Some("payment"));
        assert_eq!(domain_of("urn:woori-mesh:domain:"), None);
        assert_eq!(domain_of("woori-mesh"), None);
        let answer = serde_json::json!({"access_token": "t", "expires_in": 300, "token_type": "Bearer"});
        assert_eq!(exchanged(&answer).map(|e| (e.token, e.expires_in)), Some(("t".into(), 300)));
        assert!(exchanged(&serde_json::json!({"access_token": ""})).is_none());
    }

    #[test]
    fn a_token_names_the_domain_it_is_for() {
        use base64::Engine;
        let jwt = |claims: serde_json::Value| {
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
            format!("eyJhbGciOiJFUzI1NiJ9.{payload}.c2ln")
        };
        let payment = domain_audience("payment");
        assert_eq!(token_domain(&jwt(serde_json::json!({"aud": payment}))).as_deref(), Some("payment"));
        assert_eq!(token_domain(&jwt(serde_json::json!({"aud": [payment]}))).as_deref(), Some("payment"));
        let also_registry = serde_json::json!({"aud": ["woori-mesh", payment]});
        assert_eq!(
            token_domain(&jwt(also_registry)),
            None,
            "a token good at the registry too names no domain"
        );
        let two = serde_json::json!({"aud": [payment, domain_audience("customer")]});
        assert_eq!(token_domain(&jwt(two)), None, "a token for two domains names neither");
        assert_eq!(token_domain(&jwt(serde_json::json!({"aud": "woori-mesh"}))), None);
        assert_eq!(token_domain("not a token"), None);
    }

    /// A token endpoint on loopback answering every exchange with `token`.
    async fn endpoint_answering(token: String) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 300});
        let app = axum::Router::new()
            .route(TOKEN_PATH, axum::routing::post(move || async move { axum::Json(answer.clone()) }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}{TOKEN_PATH}")
    }

    #[tokio::test]
    async fn an_exchanged_token_good_elsewhere_too_is_refused() {
        use base64::Engine;
        let jwt = |aud: serde_json::Value| {
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::json!({"aud": aud}).to_string());
            format!("eyJhbGciOiJFUzI1NiJ9.{payload}.c2ln")
        };
        let payment = domain_audience("payment");
        let good = endpoint_answering(jwt(serde_json::json!(payment))).await;
        assert_eq!(exchange(&good, "sign-in", &payment).await.unwrap().expires_in, 300);
        for aud in
            [serde_json::json!(["woori-mesh", payment]), serde_json::json!(domain_audience("customer"))]
        {
            let url = endpoint_answering(jwt(aud.clone())).await;
            let error = exchange(&url, "sign-in", &payment).await.unwrap_err();
            assert!(
                error.contains("not for `urn:woori-mesh:domain:payment` alone; refused"),
                "{aud}: {error}"
            );
        }
        let opaque = endpoint_answering("opaque-token".into()).await;
        assert!(exchange(&opaque, "sign-in", &payment).await.is_err(), "an audience that cannot be read");
    }
}
