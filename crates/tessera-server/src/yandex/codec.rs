//! The protobuf codec of the gRPC services: prost's, except that a request that is not a valid
//! message of its type is the client's mistake, `INVALID_ARGUMENT` (tonic's default codec
//! answers `INTERNAL`, which blames the server). Used by the generated code through
//! `build.rs` (`codec_path`), for servers and clients alike.

use prost::Message;
use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::ProstEncoder;

/// Decodes one message; the error names the type and what is wrong, never the bytes.
pub fn decode_message<M: Message + Default>(bytes: impl prost::bytes::Buf) -> Result<M, Status> {
    M::decode(bytes).map_err(|e| {
        Status::invalid_argument(format!("the request is not a valid protobuf message: {e}"))
    })
}

/// [`tonic_prost::ProstCodec`] with [`decode_message`]'s error mapping.
#[derive(Debug, Clone)]
pub struct StrictCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        StrictCodec {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder { _type: PhantomData }
    }
}

/// Decodes `U` with [`decode_message`].
#[derive(Debug, Clone)]
pub struct StrictDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        decode_message(buf).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yandex::proto::iam::CreateIamTokenRequest;

    #[test]
    fn a_malformed_message_is_the_clients_mistake() {
        // Field 1 (an oauth token, a string) with a length running past the end.
        let status = decode_message::<CreateIamTokenRequest>(&b"\x0a\x05ab"[..]).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("not a valid protobuf"),
            "{status:?}"
        );
        // Invalid UTF-8 in a string field.
        let status = decode_message::<CreateIamTokenRequest>(&b"\x0a\x01\xff"[..]).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}
