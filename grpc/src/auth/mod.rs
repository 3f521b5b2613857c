//! Who is calling, and proving who we are: everything about identity that
//! the servers and clients of the mesh share.
//!
//! - [`verifier`]: checking a bearer JWT (keys, audience, issuer, lifetime,
//!   roles) into a [`Principal`]; [`keys`] keeps the trusted keys current
//!   and [`verified`] remembers tokens already checked;
//! - [`layer`]: the server layer that demands a token on every call, and
//!   [`args`] the flags that configure it;
//! - [`issuer`]: the local ES256 issuer for a mesh without a company IdP;
//!   [`oidc`] talks to one that exists;
//! - [`credentials`]: the token a client sends, and [`exchange`] trading it
//!   for one good at a single domain (RFC 8693 with RFC 8707);
//! - `test_tokens` (feature `test-support`): real keys and every kind of
//!   bad token, for other crates' tests.

pub mod args;
pub mod credentials;
pub mod exchange;
pub mod issuer;
mod jwt_crypto;
mod keys;
pub mod layer;
pub mod oidc;
#[cfg(feature = "test-support")]
pub mod test_tokens;
mod verified;
pub mod verifier;

pub use verifier::{
    ADMIN, AuthError, KeySource, Principal, Verifier, VerifierConfig, owner_role, service_role,
};
