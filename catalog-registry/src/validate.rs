//! Checks of request fields, each failing with a message naming the field.

use crate::error::{RegistryError, Result};

/// Longest identifier part (domain or product) accepted.
const MAX_IDENT: usize = 63;
/// Longest endpoint URL accepted.
const MAX_ENDPOINT: usize = 2048;
/// Names SQL over the mesh gives schemas of its own (`mesh sql`, Flight
/// SQL): a domain so named would stand where they do.
const RESERVED_DOMAINS: [&str; 2] = ["information_schema", "public"];

/// Checks a lowercase identifier: a letter, then letters, digits or `_`.
fn check_ident(field: &'static str, value: &str, what: &str) -> Result<()> {
    let mut chars = value.chars();
    let valid_start = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if value.is_empty() {
        return Err(RegistryError::invalid(field, format!("{what} is required")));
    }
    if !valid_start || !valid_rest || value.len() > MAX_IDENT {
        return Err(RegistryError::invalid(
            field,
            format!(
                "`{value}` is not a valid {what}: use a lowercase letter, then lowercase letters, \
                 digits or `_` (at most {MAX_IDENT} characters), e.g. `payment`"
            ),
        ));
    }
    Ok(())
}

/// Checks a domain name such as `payment`.
pub fn domain(field: &'static str, value: &str) -> Result<()> {
    check_ident(field, value, "domain name")?;
    not_reserved(field, value)
}

/// Refuses a domain name SQL over the mesh keeps for its own schemas.
fn not_reserved(field: &'static str, domain: &str) -> Result<()> {
    if RESERVED_DOMAINS.contains(&domain) {
        return Err(RegistryError::invalid(
            field,
            format!(
                "`{domain}` is reserved: SQL over the mesh has a schema of that name; choose another domain \
                 name, e.g. `payment`"
            ),
        ));
    }
    Ok(())
}

/// Checks a product id such as `payment.card_spending` and returns its domain part.
pub fn product_id<'a>(field: &'static str, value: &'a str) -> Result<&'a str> {
    let Some((domain, product)) = value.split_once('.') else {
        return Err(RegistryError::invalid(
            field,
            if value.is_empty() {
                "a product name is required, e.g. `payment.card_spending`".to_owned()
            } else {
                format!(
                    "`{value}` is not a product name: expected `<domain>.<product>`, e.g. `payment.card_spending`"
                )
            },
        ));
    };
    check_ident(field, domain, "domain part of the product name")?;
    not_reserved(field, domain)?;
    check_ident(field, product, "product part of the product name")?;
    Ok(domain)
}

/// Reads a product resource name (`products/{id}`) or a bare product id, and
/// returns the product id.
pub fn product_name<'a>(field: &'static str, value: &'a str) -> Result<&'a str> {
    let id = value.strip_prefix("products/").unwrap_or(value);
    product_id(field, id)?;
    Ok(id)
}

/// Checks a fully qualified protobuf service name such as `woori.payment.v1.CardSpendingService`.
pub fn service_name(field: &'static str, value: &str) -> Result<()> {
    let valid_part = |part: &str| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if value.is_empty() {
        return Err(RegistryError::invalid(
            field,
            "the product service's full name is required, e.g. `woori.payment.v1.CardSpendingService`",
        ));
    }
    if !value.contains('.') || !value.split('.').all(valid_part) {
        return Err(RegistryError::invalid(
            field,
            format!(
                "`{value}` is not a fully qualified service name: expected `<package>.<Service>`, e.g. `woori.payment.v1.CardSpendingService`"
            ),
        ));
    }
    Ok(())
}

/// Checks an endpoint URL (`http://host:port` or `https://host[:port]`) and
/// returns it normalised: no trailing slash.
pub fn endpoint(field: &'static str, value: &str) -> Result<String> {
    let bad = |reason: &str| {
        RegistryError::invalid(
            field,
            format!(
                "`{value}` is not a usable endpoint: {reason}; expected a URL such as `http://127.0.0.1:50052`"
            ),
        )
    };
    if value.is_empty() {
        return Err(RegistryError::invalid(
            field,
            "an endpoint URL is required, e.g. `http://127.0.0.1:50052`",
        ));
    }
    if value.len() > MAX_ENDPOINT {
        return Err(bad(&format!("longer than {MAX_ENDPOINT} characters")));
    }
    let uri: http::Uri = value.parse().map_err(|_| bad("it does not parse as a URL"))?;
    let scheme = uri.scheme_str().ok_or_else(|| bad("it has no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad(&format!("scheme `{scheme}` is not http or https")));
    }
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("it has no host"))?;
    if uri.port_u16().is_none() && scheme == "http" {
        return Err(bad("it has no port"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("it carries user information"));
    }
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        return Err(bad("it has a path or query; gRPC endpoints are just scheme, host and port"));
    }
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}"))
}

/// Refuses a checked endpoint URL that is `http://` on a host other than
/// loopback: callers would send their tokens to it in plaintext.
pub fn encrypted_off_loopback(field: &'static str, endpoint: &str) -> Result<()> {
    let uri: http::Uri = endpoint.parse().map_err(|_| RegistryError::invalid(field, "not a URL"))?;
    let host = uri.host().unwrap_or_default();
    if uri.scheme_str() == Some("http") && !mesh_grpc::auth::credentials::is_loopback_host(host) {
        return Err(RegistryError::invalid(
            field,
            format!(
                "`{endpoint}` is plaintext on a host other than loopback, where callers' tokens would cross \
                 the network in clear; serve TLS and register `https://` (or start the registry with \
                 --insecure-plaintext-endpoints if a proxy in front encrypts)"
            ),
        ));
    }
    Ok(())
}

/// Most quality results a domain may report for one product.
const MAX_QUALITY_RESULTS: usize = 200;
/// Most consumers a domain reports for a product.
pub const MAX_CONSUMERS: usize = 1000;

/// Checks what a domain reports about a product's data.
pub fn data_status(data: &mesh_contracts::catalog::DataStatus) -> Result<()> {
    if data.row_count < 0 {
        return Err(RegistryError::invalid("data.row_count", format!("{} is negative", data.row_count)));
    }
    // 1970-01-01 to 9999-12-31: what every reader can show.
    if let Some(loaded) = &data.last_loaded_time
        && !(0..=253_402_300_799).contains(&loaded.seconds)
    {
        return Err(RegistryError::invalid(
            "data.last_loaded_time",
            format!("{} s since 1970 is not a time a load happened; report the load's time", loaded.seconds),
        ));
    }
    if data.consumers.len() > MAX_CONSUMERS {
        return Err(RegistryError::invalid(
            "data.consumers",
            format!("{} consumers; at most {MAX_CONSUMERS} are kept", data.consumers.len()),
        ));
    }
    if data.quality_results.len() > MAX_QUALITY_RESULTS {
        return Err(RegistryError::invalid(
            "data.quality_results",
            format!("{} results; at most {MAX_QUALITY_RESULTS} are kept", data.quality_results.len()),
        ));
    }
    for result in &data.quality_results {
        if result.rule.trim().is_empty() {
            return Err(RegistryError::invalid("data.quality_results", "every result needs a rule name"));
        }
        if result.failed_rows < 0 || result.checked_rows < 0 || result.failed_rows > result.checked_rows {
            return Err(RegistryError::invalid(
                "data.quality_results",
                format!(
                    "rule `{}`: failed_rows {} and checked_rows {} must be 0 <= failed <= checked",
                    result.rule, result.failed_rows, result.checked_rows
                ),
            ));
        }
    }
    Ok(())
}

/// The default page size of list calls.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page size of list calls.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Checks a page size: 0 means the default; negative or above the maximum is refused.
pub fn page_size(value: i32) -> Result<usize> {
    match value {
        0 => Ok(DEFAULT_PAGE_SIZE),
        v if v < 0 => Err(RegistryError::invalid(
            "page_size",
            format!("{v} is negative; use 1 to {MAX_PAGE_SIZE}, or 0 for the default {DEFAULT_PAGE_SIZE}"),
        )),
        v if v as usize > MAX_PAGE_SIZE => Err(RegistryError::invalid(
            "page_size",
            format!(
                "{v} is above the maximum {MAX_PAGE_SIZE}; ask for at most {MAX_PAGE_SIZE} and follow next_page_token"
            ),
        )),
        v => Ok(v as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_reports_a_bounded_number_of_consumers() {
        let consumer = mesh_contracts::catalog::Consumer { principal: "ana".into(), ..Default::default() };
        let mut data = mesh_contracts::catalog::DataStatus {
            consumers: vec![consumer; MAX_CONSUMERS],
            ..Default::default()
        };
        assert!(data_status(&data).is_ok());
        data.consumers.push(Default::default());
        assert_eq!(
            data_status(&data).unwrap_err().to_string(),
            "data.consumers: 1001 consumers; at most 1000 are kept"
        );
    }

    #[test]
    fn the_sql_schemas_are_no_domain() {
        for reserved in ["information_schema", "public"] {
            let message = format!(
                "product: `{reserved}` is reserved: SQL over the mesh has a schema of that name; choose another \
                 domain name, e.g. `payment`"
            );
            assert_eq!(
                product_id("product", &format!("{reserved}.tables")).unwrap_err().to_string(),
                message
            );
            let message = message.replacen("product:", "domain:", 1);
            assert_eq!(domain("domain", reserved).unwrap_err().to_string(), message);
        }
        assert_eq!(product_id("product", "public_data.tables").unwrap(), "public_data");
    }

    #[test]
    fn endpoints_are_normalised_or_refused() {
        assert_eq!(endpoint("endpoint", "http://127.0.0.1:50052/").unwrap(), "http://127.0.0.1:50052");
        assert_eq!(endpoint("endpoint", "https://payment.internal").unwrap(), "https://payment.internal");
        for encrypted_or_local in
            ["https://payment.internal", "http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1"]
        {
            encrypted_off_loopback("endpoint", encrypted_or_local).unwrap();
        }
        let plaintext =
            encrypted_off_loopback("endpoint", "http://payment.internal:50052").unwrap_err().to_string();
        assert!(plaintext.contains("plaintext on a host other than loopback"), "{plaintext}");
        assert!(plaintext.contains("--insecure-plaintext-endpoints"), "{plaintext}");
        for bad in
            ["", "127.0.0.1:50052", "ftp://x:1", "http://x", "http://x:1/path", "http://u@x:1", "not a url"]
        {
            assert!(endpoint("endpoint", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn product_ids_need_domain_and_product() {
        assert_eq!(product_id("product_id", "payment.card_spending").unwrap(), "payment");
        for bad in
            ["", "payment", "Payment.x", "payment.", ".x", "a.b.c", "pay-ment.x", "payment.card spending"]
        {
            assert!(product_id("product_id", bad).is_err(), "{bad} accepted");
        }
        assert_eq!(product_name("name", "products/payment.x").unwrap(), "payment.x");
    }

    #[test]
    fn page_sizes_have_bounds() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7).unwrap(), 7);
        assert!(page_size(-1).is_err());
        assert!(page_size(MAX_PAGE_SIZE as i32 + 1).is_err());
    }
}
