//! Statement handles and tickets of the Flight SQL service: the query's
//! text sealed with the caller's identity and an expiry, so a handle is
//! good only for the client it was given to, for a while. A handle grants
//! nothing by itself (every read carries the redeeming client's own
//! token); binding it keeps one client's queries out of another's hands.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_grpc::SealedTokens;
use mesh_grpc::auth::Principal;
use prost::Message;
use tonic::Status;

/// How long a handle can be used after it was issued (a prepared statement
/// is prepared again after that).
pub(crate) const HANDLE_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// What a handle holds.
#[derive(Clone, PartialEq, prost::Message)]
struct Claim {
    #[prost(string, tag = "1")]
    sql: String,
    #[prost(string, tag = "2")]
    issuer: String,
    #[prost(string, tag = "3")]
    subject: String,
    /// When it expires, ms since the epoch.
    #[prost(int64, tag = "4")]
    expires_ms: i64,
}

/// Seals and opens the handles of one service process.
pub(crate) struct Handles {
    sealed: SealedTokens,
}

impl Handles {
    /// Handles under a key made for this process.
    pub(crate) fn new() -> Self {
        Self { sealed: SealedTokens::new(SealedTokens::new_secret().to_vec()) }
    }

    /// The handle of `sql` for `caller`.
    pub(crate) fn issue(&self, sql: &str, caller: &Principal) -> Vec<u8> {
        let claim = Claim {
            sql: sql.to_owned(),
            issuer: caller.issuer.clone(),
            subject: caller.subject.clone(),
            expires_ms: now_ms().saturating_add(HANDLE_LIFETIME.as_millis() as i64),
        };
        self.sealed.seal(&claim.encode_to_vec()).into_bytes()
    }

    /// The SQL of `handle`, when `caller` may use it now.
    pub(crate) fn open(&self, handle: &[u8], caller: &Principal) -> Result<String, Status> {
        let refused = || {
            Status::invalid_argument(
                "the statement handle or ticket was altered, was issued by another service, or is not yours; \
                 run the query again",
            )
        };
        let text = std::str::from_utf8(handle).map_err(|_| refused())?;
        let claim = self.sealed.open(text).ok().and_then(|bytes| Claim::decode(bytes.as_slice()).ok());
        let claim = claim.ok_or_else(refused)?;
        if claim.issuer != caller.issuer || claim.subject != caller.subject {
            return Err(refused());
        }
        if claim.expires_ms < now_ms() {
            return Err(Status::failed_precondition(format!(
                "the statement handle or ticket expired ({} after it was issued); run the query again",
                humantime_minutes(HANDLE_LIFETIME)
            )));
        }
        Ok(claim.sql)
    }
}

fn humantime_minutes(duration: Duration) -> String {
    format!("{} minutes", duration.as_secs() / 60)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(subject: &str) -> Principal {
        Principal { subject: subject.into(), issuer: "mesh-local".into(), roles: vec![] }
    }

    #[test]
    fn a_handle_opens_for_its_caller_only() {
        let handles = Handles::new();
        let handle = handles.issue("SELECT 1", &principal("ana"));
        assert_eq!(handles.open(&handle, &principal("ana")).unwrap(), "SELECT 1");
        let other = handles.open(&handle, &principal("bo")).unwrap_err();
        assert_eq!(other.code(), tonic::Code::InvalidArgument, "{other:?}");
        let elsewhere = Handles::new().open(&handle, &principal("ana")).unwrap_err();
        assert_eq!(elsewhere.code(), tonic::Code::InvalidArgument, "{elsewhere:?}");
    }
}
