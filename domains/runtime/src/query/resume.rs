//! Resume tokens: where a query's stream stopped, signed so that a client
//! cannot forge a position or reuse a token with another query.

use crate::values::Value;
use mesh_grpc::SealedTokens;

use crate::error::{DomainError, Result};

/// The position a token encodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResumePoint {
    /// Digest of the query (filter, mask, order, limit) the token belongs to.
    pub query: Vec<u8>,
    /// Rows delivered before this point.
    pub delivered: u64,
    /// The sort key of the last delivered row (order columns, then rowid).
    pub key: Vec<Value>,
    /// The load of the data the stream was reading.
    pub load: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TokenState {
    #[prost(bytes = "vec", tag = "1")]
    query: Vec<u8>,
    #[prost(uint64, tag = "2")]
    delivered: u64,
    #[prost(message, repeated, tag = "3")]
    key: Vec<KeyValue>,
    #[prost(string, tag = "4")]
    product: String,
    #[prost(fixed64, tag = "5")]
    load: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct KeyValue {
    #[prost(oneof = "KeyKind", tags = "1, 2, 3, 4")]
    kind: Option<KeyKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum KeyKind {
    #[prost(string, tag = "1")]
    Text(String),
    /// Written by earlier versions; read still.
    #[prost(sint64, tag = "2")]
    Integer(i64),
    #[prost(double, tag = "3")]
    Real(f64),
    /// Integers in eight bytes whatever their value, so a token's length
    /// tells nothing of a key (a rowid, a keyed order) it seals.
    #[prost(sfixed64, tag = "4")]
    Fixed(i64),
}

/// Signs and checks the resume tokens of one product with its domain's secret.
#[derive(Debug, Clone)]
pub(crate) struct ResumeTokens {
    sealed: SealedTokens,
    product: String,
}

impl ResumeTokens {
    /// Tokens of `product` signed with `secret`.
    pub(crate) fn new(secret: Vec<u8>, product: &str) -> Self {
        Self { sealed: SealedTokens::new(secret), product: product.to_owned() }
    }

    /// The token for `point`.
    pub(crate) fn issue(&self, point: &ResumePoint) -> String {
        let state = TokenState {
            query: point.query.clone(),
            delivered: point.delivered,
            key: point
                .key
                .iter()
                .map(|value| KeyValue {
                    kind: match value {
                        Value::Text(text) => Some(KeyKind::Text(text.clone())),
                        Value::Integer(n) => Some(KeyKind::Fixed(*n)),
                        Value::Real(x) => Some(KeyKind::Real(*x)),
                        Value::Null | Value::Blob(_) => None,
                    },
                })
                .collect(),
            product: self.product.clone(),
            load: point.load,
        };
        self.sealed.seal(&prost::Message::encode_to_vec(&state))
    }

    /// Reads a token issued for the query with digest `query`.
    pub(crate) fn check(&self, token: &str, query: &[u8]) -> Result<ResumePoint> {
        let tampered = || {
            DomainError::invalid(
                "resume_token",
                "the token is not one this domain issued (altered, truncated or from another product); \
                 run the query again without it",
            )
        };
        let payload = self.sealed.open(token).map_err(|_| tampered())?;
        let state: TokenState = prost::Message::decode(payload.as_slice()).map_err(|_| tampered())?;
        if state.product != self.product {
            return Err(DomainError::invalid(
                "resume_token",
                format!(
                    "the token belongs to another product ({}); resume with the product it came from",
                    if state.product.is_empty() { "an earlier version of the mesh" } else { &state.product }
                ),
            ));
        }
        if state.query != query {
            return Err(DomainError::invalid(
                "resume_token",
                "the token belongs to a query with another filter, read_mask, order_by or limit, or to \
                 another caller or agreement; resume with the same query it came from",
            ));
        }
        let key = state
            .key
            .into_iter()
            .map(|value| match value.kind {
                Some(KeyKind::Text(text)) => Value::Text(text),
                Some(KeyKind::Integer(n) | KeyKind::Fixed(n)) => Value::Integer(n),
                Some(KeyKind::Real(x)) => Value::Real(x),
                None => Value::Null,
            })
            .collect();
        Ok(ResumePoint { query: state.query, delivered: state.delivered, key, load: state.load })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_as_long_whatever_the_integers_it_seals() {
        let tokens = ResumeTokens::new(b"s".to_vec(), "p.one");
        let token = |rowid: i64| {
            let point = ResumePoint {
                query: vec![1; 16],
                delivered: 1,
                key: vec![Value::Text("2024Q1".into()), Value::Integer(rowid * 7), Value::Integer(rowid)],
                load: 9,
            };
            tokens.issue(&point).len()
        };
        assert!([0, 1, 63, 64, 8191, 8192, 1 << 20, i64::MAX / 7].iter().all(|&r| token(r) == token(5)));
    }

    #[test]
    fn a_point_survives_the_round_trip_with_every_key_kind() {
        let tokens = ResumeTokens::new(b"s".to_vec(), "p.one");
        let point = ResumePoint {
            query: vec![1, 2, 3],
            delivered: 12_345,
            key: vec![Value::Text("서울".into()), Value::Integer(-7), Value::Real(2.5), Value::Null],
            load: u64::MAX - 1,
        };
        let token = tokens.issue(&point);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(tokens.check(&token, &[1, 2, 3]).unwrap(), point);
    }

    #[test]
    fn a_token_for_another_query_or_signed_elsewhere_is_refused() {
        let tokens = ResumeTokens::new(b"s".to_vec(), "p.one");
        let token = tokens.issue(&ResumePoint {
            query: vec![9],
            delivered: 1,
            key: vec![Value::Integer(1)],
            load: 7,
        });
        assert!(tokens.check(&token, &[8]).unwrap_err().to_string().contains("another filter"));
        let sibling = ResumeTokens::new(b"s".to_vec(), "p.two");
        assert_eq!(
            sibling.check(&token, &[9]).unwrap_err().to_string(),
            "resume_token: the token belongs to another product (p.one); resume with the product it came from"
        );
        let elsewhere = ResumeTokens::new(b"t".to_vec(), "p.one");
        assert!(
            elsewhere.check(&token, &[9]).unwrap_err().to_string().contains("not one this domain issued")
        );
        for bad in ["", "x", "!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert!(tokens.check(bad, &[9]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_signed_payload_that_is_not_a_position_is_refused() {
        let secret = b"s".to_vec();
        let garbage = SealedTokens::new(secret.clone()).seal(&[0xff, 0xff, 0xff]);
        let err = ResumeTokens::new(secret, "p").check(&garbage, &[]).unwrap_err().to_string();
        assert!(err.contains("not one this domain issued"), "{err}");
    }
}
