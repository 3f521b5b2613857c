//! Server reflection: serving both versions (v1 for buf curl, v1alpha for
//! grpcurl) and listing what a server advertises.

use tonic::service::Routes;

use crate::error::{GrpcError, Result};

/// Reflection v1 and v1alpha advertising `services` and health, described
/// from `descriptor_sets` (encoded `FileDescriptorSet`s holding them; a file
/// several hold is taken once).
pub fn reflection_routes(descriptor_sets: &[&[u8]], services: &[&str]) -> Result<Routes> {
    let builder = || {
        // A file two sets both hold (the mesh's shared protos) is taken once.
        let mut builder =
            descriptor_sets.iter().fold(tonic_reflection::server::Builder::configure(), |builder, set| {
                builder.register_encoded_file_descriptor_set(set)
            });
        builder = builder
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for service in services {
            builder = builder.with_service_name(*service);
        }
        builder
    };
    Ok(Routes::new(builder().build_v1()?).add_service(builder().build_v1alpha()?))
}

/// The services a server advertises through reflection v1 (for clients
/// that discover what an endpoint serves).
pub async fn reflected_services(channel: crate::MeshChannel) -> Result<Vec<String>> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut client = ServerReflectionClient::new(channel);
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await?.into_inner();
    match responses.message().await?.and_then(|r| r.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => Err(GrpcError::UnexpectedAnswer(format!("{other:?}"))),
    }
}
