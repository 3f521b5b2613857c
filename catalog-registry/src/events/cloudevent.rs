//! A stored event as the contracts carry it.

use mesh_contracts::catalog::Event;
use mesh_contracts::cloudevent::SOURCE;

use crate::store::events::StoredEvent;

/// `event` as an `mesh.catalog.v1.Event`.
pub fn to_proto(event: &StoredEvent) -> Event {
    Event {
        sequence: event.sequence,
        id: event.id.clone(),
        source: SOURCE.to_owned(),
        r#type: event.kind.clone(),
        subject: event.product.clone(),
        time: Some(mesh_contracts::time::timestamp(event.time_ms)),
        data: event.data.clone(),
    }
}
