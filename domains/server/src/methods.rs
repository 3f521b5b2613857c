//! The product methods a product-file server offers beyond `Query` and
//! `Describe`: `rpc Reload(mesh.product.v1.ReloadRequest)` (any rpc taking
//! that request) loads the product again now, for its domain's owners and admins, and
//! answers `mesh.product.v1.ReloadResponse`. A method the contract
//! declares that no server of product files can serve answers
//! UNIMPLEMENTED, naming the one to call instead.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use mesh_contracts::product::ReloadResponse;
use mesh_grpc::auth::owner_role;
use mesh_runtime::service::UnaryHandler;
use prost::Message;
use tonic::Status;

use crate::refresh::Refresher;

/// The request type of a refresh method.
const RELOAD_REQUEST: &str = "mesh.product.v1.ReloadRequest";

/// The extra methods of `refresher`'s product, by name.
pub fn handlers(refresher: &Arc<Refresher>) -> HashMap<String, UnaryHandler> {
    let service = &refresher.published().declared.shape.service;
    let refresh: Vec<String> = service
        .methods()
        .filter(|m| m.input().full_name() == RELOAD_REQUEST && !m.is_server_streaming())
        .map(|m| m.name().to_owned())
        .collect();
    let mut handlers = HashMap::new();
    for method in service.methods() {
        let name = method.name().to_owned();
        if refresh.contains(&name) {
            handlers.insert(name, refresh_handler(Arc::clone(refresher)));
        } else if !["Query", "Describe"].contains(&name.as_str()) {
            let instead = if refresh.is_empty() {
                String::new()
            } else {
                format!("; call {} instead", refresh.join(" or "))
            };
            let said = format!(
                "`{name}` is declared by the contract but not served by this product's server{instead}"
            );
            handlers.insert(name, unimplemented_handler(said));
        }
    }
    handlers
}

fn refresh_handler(refresher: Arc<Refresher>) -> UnaryHandler {
    Arc::new(move |request: tonic::Request<Bytes>| {
        let refresher = Arc::clone(&refresher);
        Box::pin(async move {
            let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
            let product = Arc::clone(&refresher.published().product);
            let needed = owner_role(product.spec.domain());
            if !caller.has_role_or_admin(&needed) {
                return Err(Status::permission_denied(format!(
                    "`{}` may not load {} again: that needs the role `{needed}` or `admin` (mesh whoami shows your roles)",
                    caller.subject, product.spec.id
                )));
            }
            refresher.refresh(&format!("asked by {}", caller.subject)).await.map_err(Status::from)?;
            let status = tokio::task::spawn_blocking(move || product.data_status())
                .await
                .map_err(|e| mesh_grpc::internal_status("refresh", &e))?
                .map_err(Status::from)?;
            let response = ReloadResponse { rows: status.row_count, loaded_time: status.last_loaded_time };
            Ok(Bytes::from(response.encode_to_vec()))
        })
    })
}

fn unimplemented_handler(said: String) -> UnaryHandler {
    Arc::new(move |_request: tonic::Request<Bytes>| {
        let said = said.clone();
        Box::pin(async move { Err(Status::unimplemented(said)) })
    })
}
