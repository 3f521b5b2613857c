//! Contracts of the Woori Card data mesh: the code generated from `proto/`
//! and the encoded descriptor set for reflection and dynamic decoding.

pub mod access;
pub mod arrow_metadata;
pub mod cloudevent;
pub mod compat;
#[cfg(feature = "compile")]
pub mod compile;
pub mod descriptor;
pub mod time;

/// Generated code, one module per proto package.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    /// `mesh.*` packages: what every product and the registry share.
    pub mod mesh {
        /// `mesh.product.v1`: governance options and the shared query shapes.
        pub mod product {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/mesh.product.v1.rs"));
            }
        }
        /// `mesh.catalog.v1`: the catalog registry's service.
        pub mod catalog {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/mesh.catalog.v1.rs"));
            }
        }
    }
    /// `woori.*` packages: the Woori Card domains' products.
    pub mod woori {
        /// `woori.customer.v1`: customer profiles.
        pub mod customer {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/woori.customer.v1.rs"));
            }
        }
        /// `woori.payment.v1`: card spending.
        pub mod payment {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/woori.payment.v1.rs"));
            }
        }
        /// `woori.insight.v1`: segment spending.
        pub mod insight {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/woori.insight.v1.rs"));
            }
        }
    }
}

pub use proto::mesh::catalog::v1 as catalog;
pub use proto::mesh::product::v1 as product;
pub use proto::woori;

/// Encoded `FileDescriptorSet` of every file under `proto/` and its imports,
/// with source info and custom options kept.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mesh_descriptor.bin"));
