//! The mesh as a domain's own service identity sees it, for the SQL of a
//! derived product: its declared inputs are the only tables, the registry
//! is asked with the domain's token, and each input is read with a token
//! for the input's domain alone, so every owner enforces the agreement the
//! deriving domain holds.

use std::time::Duration;

use async_trait::async_trait;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_grpc::Credentials;
use tonic::Status;

use super::Mesh;
use crate::replicas::{Replicas, lookup};

/// A deriving domain's view of its inputs.
#[derive(Debug, Clone)]
pub struct DomainMesh {
    /// The registry the inputs are found in.
    pub registry: String,
    /// How long connecting and each registry call may take.
    pub timeout: Duration,
    /// The domain's own credentials.
    pub credentials: Credentials,
    /// The products its SQL may read.
    pub inputs: Vec<String>,
}

#[async_trait]
impl Mesh for DomainMesh {
    async fn products(&self) -> Result<Vec<String>, Status> {
        Ok(self.inputs.clone())
    }

    async fn replicas(&self, product: &str) -> Result<Replicas, Status> {
        if !self.inputs.iter().any(|input| input == product) {
            return Err(Status::not_found(format!(
                "{product} is not an input of this product: list it under source.sql.inputs"
            )));
        }
        let channel = mesh_grpc::client::channel(&self.registry, self.timeout, &self.credentials)
            .map_err(|e| Status::unavailable(format!("the registry at {}: {e}", self.registry)))?;
        let (found, domain) = lookup(&mut CatalogServiceClient::new(channel), product).await?;
        let credentials = self
            .credentials
            .for_domain(&self.registry, &domain)
            .await
            .map_err(|e| Status::permission_denied(format!("no token for domain `{domain}`: {e}")))?;
        Replicas::serving(&found, product, credentials)
    }
}
