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
/// signature (the domain checks that): what a client may send it to.
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
    let mut domains = audiences.into_iter().filter_map(domain_of);
    match (domains.next(), domains.next()) {
        (Some(domain), None) => Some(domain.to_owned()),
        _ => None,
    }
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
            let built = crate::oidc::http_client().map_err(|e| e.to_string())?;
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
    let (status, answer) = crate::oidc::post_form(http, url, &form).await?;
    if !status.is_success() {
        let error = answer["error"].as_str().unwrap_or("error");
        let description = answer["error_description"].as_str().unwrap_or("");
        return Err(format!("{url} refused the token exchange ({status}, {error}): {description}"));
    }
    exchanged(&answer).ok_or_else(|| format!("{url} answered the token exchange without an access_token"))
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
        assert_eq!(
            token_domain(&jwt(serde_json::json!({"aud": ["x", payment]}))).as_deref(),
            Some("payment")
        );
        let two = serde_json::json!({"aud": [payment, domain_audience("customer")]});
        assert_eq!(token_domain(&jwt(two)), None, "a token for two domains names neither");
        assert_eq!(token_domain(&jwt(serde_json::json!({"aud": "woori-mesh"}))), None);
        assert_eq!(token_domain("not a token"), None);
    }
}
