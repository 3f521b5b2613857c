//! A gRPC codec that passes message bytes through untouched: product rows
//! are encoded straight from the domain's storage (SQLite or PostgreSQL)
//! and cached answers are kept encoded, so there is nothing left to
//! serialize. REST answers are written from the same bytes.
//!
//! [`PiecesCodec`] streams messages kept in two pieces (a Flight batch's
//! fields, then its Arrow body): the body is copied once, into gRPC's
//! frame, not first behind its head into a message of its own.

use bytes::{Buf, BufMut, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends and receives already-encoded protobuf messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// The encoder and decoder of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCoder;
    type Decoder = RawCoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawCoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCoder
    }
}

impl Encoder for RawCoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

/// An encoded message in two pieces: its first bytes, then the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pieces {
    /// The message's first bytes.
    pub head: Bytes,
    /// The rest of it (empty for a message in one piece).
    pub body: Bytes,
}

impl From<Bytes> for Pieces {
    fn from(head: Bytes) -> Self {
        Self { head, body: Bytes::new() }
    }
}

impl Pieces {
    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message in one piece (copied only when it is in two).
    pub fn into_bytes(self) -> Bytes {
        if self.body.is_empty() {
            return self.head;
        }
        let mut whole = Vec::with_capacity(self.len());
        whole.extend_from_slice(&self.head);
        whole.extend_from_slice(&self.body);
        Bytes::from(whole)
    }
}

/// Sends already-encoded messages kept in [`Pieces`]; receives bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PiecesCodec;

/// The encoder of [`PiecesCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PiecesCoder;

impl Codec for PiecesCodec {
    type Encode = Pieces;
    type Decode = Bytes;
    type Encoder = PiecesCoder;
    type Decoder = RawCoder;

    fn encoder(&mut self) -> Self::Encoder {
        PiecesCoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCoder
    }
}

impl Encoder for PiecesCoder {
    type Item = Pieces;
    type Error = Status;

    fn encode(&mut self, item: Pieces, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item.head);
        dst.put(item.body);
        Ok(())
    }
}

impl Decoder for RawCoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_in_pieces_is_its_head_then_its_body() {
        let two = Pieces { head: Bytes::from_static(b"head"), body: Bytes::from_static(b" and body") };
        assert_eq!(two.len(), 13);
        assert_eq!(two.into_bytes(), Bytes::from_static(b"head and body"));
        let one = Pieces::from(Bytes::from_static(b"whole"));
        assert_eq!((one.len(), one.body.is_empty()), (5, true));
        assert_eq!(one.into_bytes(), Bytes::from_static(b"whole"));
        assert!(Pieces::default().is_empty());
    }
}
