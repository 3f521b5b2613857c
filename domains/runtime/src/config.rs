//! Flags every domain binary shares, with `MESH_*` environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where a domain listens, keeps its data and registers.
#[derive(Debug, Clone, clap::Args)]
pub struct DomainArgs {
    /// Address to serve gRPC on [default: the domain's own port on 127.0.0.1].
    #[arg(long, env = "MESH_DOMAIN_ADDR")]
    pub addr: Option<SocketAddr>,

    /// Directory for the domain's SQLite file [default: .mesh/<domain>].
    #[arg(long, env = "MESH_DOMAIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The catalog registry to register the domain's products in.
    #[arg(long, env = "MESH_REGISTRY", default_value = "http://127.0.0.1:50050")]
    pub registry: String,

    /// The URL consumers should call, as registered in the catalog
    /// [default: http://<addr>, with 127.0.0.1 for an unspecified address].
    #[arg(long, env = "MESH_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
}

impl DomainArgs {
    /// The listen address, or `default_port` on 127.0.0.1.
    pub fn addr_or(&self, default_port: u16) -> SocketAddr {
        self.addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], default_port)))
    }

    /// The data directory, or `.mesh/<domain>`.
    pub fn data_dir_or(&self, domain: &str) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from(".mesh").join(domain))
    }

    /// The URL to register for a server bound to `bound`.
    pub fn advertise(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.advertise_url {
            return url.trim_end_matches('/').to_owned();
        }
        let ip =
            if bound.ip().is_unspecified() { "127.0.0.1".parse().expect("valid ip") } else { bound.ip() };
        format!("http://{}", SocketAddr::new(ip, bound.port()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(addr: Option<&str>, advertise: Option<&str>) -> DomainArgs {
        DomainArgs {
            addr: addr.map(|a| a.parse().unwrap()),
            data_dir: None,
            registry: "http://127.0.0.1:50050".into(),
            advertise_url: advertise.map(str::to_owned),
        }
    }

    #[test]
    fn defaults_give_a_port_on_loopback_and_a_folder_per_domain() {
        assert_eq!(args(None, None).addr_or(50052).to_string(), "127.0.0.1:50052");
        assert_eq!(args(Some("0.0.0.0:9000"), None).addr_or(50052).to_string(), "0.0.0.0:9000");
        assert_eq!(args(None, None).data_dir_or("payment"), PathBuf::from(".mesh/payment"));
    }

    #[test]
    fn the_advertised_url_is_the_flag_or_the_bound_address() {
        let bound: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        assert_eq!(args(None, None).advertise(bound), "http://127.0.0.1:7000");
        assert_eq!(args(None, None).advertise("10.1.2.3:7000".parse().unwrap()), "http://10.1.2.3:7000");
        assert_eq!(args(None, Some("http://payment:50052/")).advertise(bound), "http://payment:50052");
    }
}
