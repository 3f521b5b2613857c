//! A gRPC codec that passes message bytes through untouched: product rows
//! are encoded straight from the domain's storage (SQLite or PostgreSQL)
//! and cached answers are kept encoded, so there is nothing left to
//! serialize. REST answers are written from the same bytes.

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

impl Decoder for RawCoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
