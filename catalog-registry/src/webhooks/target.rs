//! Where webhooks may go: `https://` URLs of public hosts. Loopback,
//! link-local, private, shared and reserved addresses (and plain `http://`)
//! are refused unless the registry runs with `--insecure-webhook-targets`:
//! a subscription must not make the registry reach into its own network.
//! Names are checked when a subscription is created and again at every
//! connection (the resolver below drops non-public addresses), so a name
//! that later resolves inward is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::{RegistryError, Result};

/// The longest URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// The flag that lets webhooks reach private addresses and plain HTTP.
pub const INSECURE_FLAG: &str = "--insecure-webhook-targets";

/// `url` checked as a webhook target.
pub fn checked(url: &str, allow_private: bool) -> Result<Url> {
    let url = url.trim();
    if url.len() > MAX_URL_BYTES {
        return Err(RegistryError::invalid(
            "url",
            format!("is {} bytes long; use at most {MAX_URL_BYTES}", url.len()),
        ));
    }
    let parsed = Url::parse(url).map_err(|e| {
        RegistryError::invalid(
            "url",
            format!("is not a URL ({e}); write e.g. https://hooks.example.com/mesh"),
        )
    })?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(RegistryError::invalid(
                "url",
                format!(
                    "is plain http: deliveries would cross the network unencrypted; use https (a registry run \
                     with {INSECURE_FLAG} accepts http for tests)"
                ),
            ));
        }
        other => {
            return Err(RegistryError::invalid("url", format!("has scheme `{other}`; use an https:// URL")));
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(RegistryError::invalid(
            "url",
            "carries a user name or password; remove them (receivers check each delivery's signature instead)",
        ));
    }
    let inward = match parsed.host() {
        None => {
            return Err(RegistryError::invalid(
                "url",
                "names no host; write e.g. https://hooks.example.com/mesh",
            ));
        }
        Some(url::Host::Ipv4(ip)) => !public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !public(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if inward && !allow_private {
        return Err(private_refused());
    }
    Ok(parsed)
}

fn private_refused() -> RegistryError {
    RegistryError::invalid(
        "url",
        format!(
            "points at a loopback, link-local or private address, which webhooks may not reach; use a public \
             host (a registry run with {INSECURE_FLAG} accepts them for tests)"
        ),
    )
}

/// How long a name may take to resolve.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves `url`'s host now and refuses it unless it names addresses
/// webhooks may reach, and only those (one message for a name that does
/// not resolve and one that resolves inward: neither says which).
pub async fn resolves(url: &Url, allow_private: bool) -> Result<()> {
    let Some(url::Host::Domain(name)) = url.host() else { return Ok(()) };
    let port = url.port_or_known_default().unwrap_or(443);
    let found = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port))).await;
    let found: Vec<SocketAddr> = match found {
        Ok(Ok(found)) => found.collect(),
        _ => Vec::new(),
    };
    if found.is_empty() || (!allow_private && found.iter().any(|addr| !public(addr.ip()))) {
        return Err(RegistryError::invalid(
            "url",
            format!(
                "its host `{name}` does not resolve, from the registry, to public addresses only; use a public \
                 host (a registry run with {INSECURE_FLAG} accepts private ones for tests)"
            ),
        ));
    }
    Ok(())
}

/// Whether `ip` is an address of the public internet.
pub fn public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(ip) => public_v4(ip),
        IpAddr::V6(ip) => public_v6(ip),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // IPv4-compatible (::a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d).
        || segments[..6] == [0, 0, 0, 0, 0, 0]
        || segments[..6] == [0, 0, 0, 0, 0xffff, 0]
        // Local-use NAT64 (64:ff9b:1::/48).
        || segments[..3] == [0x64, 0xff9b, 1]
        // Unique local (fc00::/7), link-local (fe80::/10), site-local (fec0::/10).
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // Documentation (2001:db8::/32), Teredo (2001::/32), 6to4 (2002::/16).
        || (segments[0] == 0x2001 && (segments[1] == 0x0db8 || segments[1] == 0))
        || segments[0] == 0x2002)
}

/// Resolves names for deliveries, keeping only addresses webhooks may reach.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver {
    /// Keep private addresses too (`--insecure-webhook-targets`).
    pub allow_private: bool,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let kept: Vec<SocketAddr> = found.filter(|addr| allow_private || public(addr.ip())).collect();
            if kept.is_empty() {
                return Err(format!("`{}` resolves to no public address", name.as_str()).into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_targets_pass_by_default() {
        for url in
            ["https://hooks.example.com/mesh", "https://93.184.216.34/x", "https://[2606:4700::1111]/x"]
        {
            assert!(checked(url, false).is_ok(), "{url}");
        }
        for (url, said) in [
            ("http://hooks.example.com/x", "plain http"),
            ("ftp://hooks.example.com/x", "scheme `ftp`"),
            ("https://user:pw@hooks.example.com/x", "user name or password"),
            ("not a url", "is not a URL"),
            ("https://127.0.0.1:9/x", "loopback"),
            ("https://localhost/x", "loopback"),
            ("https://api.LOCALHOST./x", "loopback"),
            ("https://10.1.2.3/x", "private"),
            ("https://172.16.0.1/x", "private"),
            ("https://192.168.1.1/x", "private"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://100.64.0.1/x", "private"),
            ("https://0.0.0.0/x", "private"),
            ("https://[::1]/x", "loopback"),
            ("https://[::ffff:127.0.0.1]/x", "loopback"),
            ("https://[fd00::1]/x", "private"),
            ("https://[fe80::1]/x", "link-local"),
            ("https://[64:ff9b::a00:1]/x", "private"),
            ("https://[::7f00:1]/x", "private"),
            ("https://[64:ff9b:1::1]/x", "private"),
            ("https://[fec0::1]/x", "private"),
            ("https://[2001:0:4136:e378::1]/x", "private"),
            ("https://2130706433/x", "loopback"),
            ("https://0x7f.1/x", "loopback"),
            ("https://0177.0.0.1/x", "loopback"),
        ] {
            let error = checked(url, false).unwrap_err().to_string();
            assert!(error.contains(said) && error.starts_with("url"), "{url}: {error}");
        }
        assert!(checked("http://127.0.0.1:9/x", true).is_ok());
        assert!(checked(&format!("https://a.example.com/{}", "x".repeat(MAX_URL_BYTES)), true).is_err());
    }
}
