//! Flight tickets: what `GetFlightInfo` granted, sealed so that only the
//! caller it was issued to can redeem it, for that product, query and
//! agreement, until it expires — at any replica of the domain (they share
//! the database's secret). A ticket carries a resume point when a client
//! goes on after a replica died.

use mesh_contracts::product::{FlightTicket, QueryRequest};
use mesh_grpc::SealedTokens;
use mesh_grpc::auth::Principal;
use prost::Message;
use tonic::Status;

use crate::query::part::Part;

/// What a ticket grants.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Claim {
    /// The product's id.
    #[prost(string, tag = "1")]
    pub product: String,
    /// The query, without a resume token.
    #[prost(message, optional, tag = "2")]
    pub query: Option<QueryRequest>,
    /// The caller's token issuer and subject.
    #[prost(string, tag = "3")]
    pub issuer: String,
    #[prost(string, tag = "4")]
    pub subject: String,
    /// Who reads under which agreement (the grant's binding).
    #[prost(bytes = "vec", tag = "5")]
    pub binding: Vec<u8>,
    /// When it expires, ms since the epoch.
    #[prost(int64, tag = "6")]
    pub expires_ms: i64,
    /// The part of the read it is, when the read was split.
    #[prost(message, optional, tag = "7")]
    pub part: Option<Part>,
}

/// Seals and opens the tickets of one domain.
#[derive(Debug, Clone)]
pub(crate) struct Tickets {
    sealed: SealedTokens,
    /// The key of [`Tickets::load_tag`].
    load_key: [u8; 32],
}

impl Tickets {
    /// Tickets under a key derived from the domain's token `secret`
    /// (another key than its resume tokens').
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            sealed: SealedTokens::new([secret, b"\0arrow flight tickets"].concat()),
            load_key: blake3::derive_key("mesh arrow flight load tag", secret),
        }
    }

    /// What a plan in parts says of the load they were planned on: the
    /// same at every replica for the same load, and nothing else of it. A
    /// client planning the read again mid-way compares them, so that no
    /// read takes parts of two loads.
    pub(crate) fn load_tag(&self, load: u64) -> Vec<u8> {
        let hash = blake3::keyed_hash(&self.load_key, &load.to_le_bytes());
        format!("mesh-load:{}", &hash.to_hex()[..32]).into_bytes()
    }

    /// The ticket's bytes for `claim`.
    pub(crate) fn issue(&self, claim: &Claim) -> Vec<u8> {
        FlightTicket { sealed: self.sealed.seal(&claim.encode_to_vec()), resume_token: String::new() }
            .encode_to_vec()
    }

    /// What `ticket` claims, if this domain sealed it, with the query's
    /// resume token set from the ticket; [`Claim::check`] says whether the
    /// caller may redeem it.
    pub(crate) fn open(&self, ticket: &[u8]) -> Result<Claim, Status> {
        let foreign = || {
            Status::invalid_argument(
                "ticket: not one this domain issued (altered, truncated or from elsewhere); ask GetFlightInfo \
                 for a ticket",
            )
        };
        let ticket = FlightTicket::decode(ticket).map_err(|_| foreign())?;
        let payload = self.sealed.open(&ticket.sealed).map_err(|_| foreign())?;
        let mut claim = Claim::decode(payload.as_slice()).map_err(|_| foreign())?;
        if let Some(query) = claim.query.as_mut() {
            query.resume_token = ticket.resume_token;
        }
        Ok(claim)
    }
}

impl Claim {
    /// Whether `caller` may redeem the ticket at `now_ms`: it was issued
    /// to them and has not expired (tickets last `lifetime`, named in the
    /// refusal). (That the same agreement is in force is checked by the
    /// read, against [`Claim::binding`].)
    pub(crate) fn check(
        &self,
        caller: &Principal,
        now_ms: i64,
        lifetime: std::time::Duration,
    ) -> Result<(), Status> {
        if self.issuer != caller.issuer || self.subject != caller.subject {
            return Err(Status::permission_denied(
                "ticket: it was issued to another caller; ask GetFlightInfo for a ticket of your own",
            ));
        }
        if now_ms >= self.expires_ms {
            return Err(Status::failed_precondition(format!(
                "ticket: it expired {} after it was issued; ask GetFlightInfo for a new one",
                humantime::format_duration(lifetime)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(subject: &str) -> Principal {
        Principal { subject: subject.into(), issuer: "mesh-local".into(), roles: Vec::new() }
    }

    fn claim(expires_ms: i64) -> Claim {
        Claim {
            product: "payment.card_spending".into(),
            query: Some(QueryRequest { filter: "a > 1".into(), ..Default::default() }),
            issuer: "mesh-local".into(),
            subject: "kim".into(),
            binding: b"agreements/7".to_vec(),
            expires_ms,
            part: Some(Part { after: 10, up_to: 20, load: 3, keyed: true }),
        }
    }

    #[test]
    fn a_ticket_is_redeemed_by_its_caller_until_it_expires_with_a_resume_point() {
        let tickets = Tickets::new(b"secret");
        let lifetime = std::time::Duration::from_secs(90);
        let ticket = tickets.issue(&claim(1_000));
        let opened = tickets.open(&ticket).unwrap();
        assert_eq!(opened, claim(1_000));
        assert!(opened.check(&caller("kim"), 999, lifetime).is_ok());
        let denied = opened.check(&caller("lee"), 999, lifetime).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        let other_issuer = Principal { issuer: "elsewhere".into(), ..caller("kim") };
        assert_eq!(
            opened.check(&other_issuer, 999, lifetime).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        let expired = opened.check(&caller("kim"), 1_000, lifetime).unwrap_err();
        assert_eq!(expired.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            expired.message(),
            "ticket: it expired 1m 30s after it was issued; ask GetFlightInfo for a new one"
        );
        let mut resumed = FlightTicket::decode(ticket.as_slice()).unwrap();
        resumed.resume_token = "after-row-9".into();
        let claim = tickets.open(&resumed.encode_to_vec()).unwrap();
        assert_eq!(claim.query.unwrap().resume_token, "after-row-9");
    }

    #[test]
    fn a_ticket_sealed_elsewhere_or_altered_is_refused() {
        let ticket = Tickets::new(b"secret").issue(&claim(1_000));
        let other = Tickets::new(b"another secret");
        assert_eq!(other.open(&ticket).unwrap_err().code(), tonic::Code::InvalidArgument);
        let mut altered = FlightTicket::decode(ticket.as_slice()).unwrap();
        let flipped = if altered.sealed.as_bytes()[10] == b'A' { "B" } else { "A" };
        altered.sealed.replace_range(10..11, flipped);
        let refused = Tickets::new(b"secret").open(&altered.encode_to_vec()).unwrap_err();
        assert!(refused.message().starts_with("ticket: not one this domain issued"));
        assert!(Tickets::new(b"secret").open(b"\xff\xff").is_err());
    }
}
