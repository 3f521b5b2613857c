//! The event types, CloudEvents `type` values: `mesh.<what>.<happened>.v<N>`,
//! the version bumped when an event's data changes incompatibly. Each
//! constructor returns the event a change appends.

use serde_json::json;

use crate::store::events::{Audience, NewEvent};

/// A product's first registration.
pub const PRODUCT_REGISTERED: &str = "mesh.product.registered.v1";
/// A new schema version in force (data: version, major, changes, breaking).
pub const VERSION_PUBLISHED: &str = "mesh.product.version.published.v1";
/// Deprecated by its owners (data: message).
pub const DEPRECATED: &str = "mesh.product.deprecated.v1";
/// Its deprecation withdrawn.
pub const UNDEPRECATED: &str = "mesh.product.undeprecated.v1";
/// Deleted from the catalog.
pub const DELETED: &str = "mesh.product.deleted.v1";
/// An endpoint began serving it (data: endpoint).
pub const ENDPOINT_SERVING: &str = "mesh.endpoint.serving.v1";
/// An endpoint's lease ran out without renewal: callers skip it until it
/// renews (data: endpoint, lease_expire_time).
pub const ENDPOINT_STALE: &str = "mesh.endpoint.stale.v1";
/// An endpoint stopped serving it (data: endpoint, why).
pub const ENDPOINT_REMOVED: &str = "mesh.endpoint.removed.v1";
/// A new load of the product's data (data: rows, load_id, loaded_time,
/// quality: rules passed and the names of those failing).
pub const DATA_LOADED: &str = "mesh.data.loaded.v1";
/// A quality rule that passed on the previous load fails on this one
/// (data: rule, description, failed_rows, checked_rows).
pub const QUALITY_FAILED: &str = "mesh.quality.rule.failed.v1";
/// A quality rule that failed on the previous load passes on this one.
pub const QUALITY_RECOVERED: &str = "mesh.quality.rule.recovered.v1";
/// Access asked for (data: agreement, consumer, columns, state).
pub const ACCESS_REQUESTED: &str = "mesh.access.requested.v1";
/// Access approved (by an owner or a rule).
pub const ACCESS_APPROVED: &str = "mesh.access.approved.v1";
/// Access denied.
pub const ACCESS_DENIED: &str = "mesh.access.denied.v1";
/// An agreement ended early.
pub const ACCESS_REVOKED: &str = "mesh.access.revoked.v1";
/// An agreement in force ends within seven days (data: as other agreement
/// events, and end_time).
pub const ACCESS_EXPIRING: &str = "mesh.access.expiring.v1";
/// An agreement ended because a newer one for the same consumer and
/// product came into force.
pub const ACCESS_SUPERSEDED: &str = "mesh.access.superseded.v1";

/// Every type, for help text and checks.
pub const ALL: &[&str] = &[
    PRODUCT_REGISTERED,
    VERSION_PUBLISHED,
    DEPRECATED,
    UNDEPRECATED,
    DELETED,
    ENDPOINT_SERVING,
    ENDPOINT_STALE,
    ENDPOINT_REMOVED,
    DATA_LOADED,
    QUALITY_FAILED,
    QUALITY_RECOVERED,
    ACCESS_REQUESTED,
    ACCESS_APPROVED,
    ACCESS_DENIED,
    ACCESS_REVOKED,
    ACCESS_EXPIRING,
    ACCESS_SUPERSEDED,
];

/// An event everyone who may see `product` may see.
pub fn about(kind: &'static str, product: &str, data: serde_json::Value) -> NewEvent {
    NewEvent { kind, product: product.to_owned(), data, audience: Audience::Catalog }
}

/// A schema version (number, major) put in force, `breaking` when it
/// raises the major version.
pub fn version_published(
    product: &str,
    (version, major): (i64, u32),
    changes: &[String],
    breaking: bool,
) -> NewEvent {
    about(
        VERSION_PUBLISHED,
        product,
        json!({ "version": version, "major_version": major, "changes": changes, "breaking": breaking }),
    )
}

/// What an agreement event says, seen by its consumer and the product's
/// overseers only.
pub struct AgreementChange<'a> {
    /// The agreement's resource name, e.g. `agreements/12`.
    pub name: &'a str,
    /// The product.
    pub product: &'a str,
    /// The consumer's issuer and subject.
    pub consumer: (&'a str, &'a str),
    /// Its state after the change, e.g. `APPROVED`.
    pub state: &'a str,
    /// Who made the change (a subject, or `policy`).
    pub by: &'a str,
}

/// An event about one agreement.
pub fn agreement(kind: &'static str, change: &AgreementChange<'_>) -> NewEvent {
    NewEvent {
        kind,
        product: change.product.to_owned(),
        data: json!({
            "agreement": change.name,
            "consumer": change.consumer.1,
            "issuer": change.consumer.0,
            "state": change.state,
            "by": change.by,
        }),
        audience: Audience::Agreement {
            issuer: change.consumer.0.to_owned(),
            subject: change.consumer.1.to_owned(),
        },
    }
}
