//! The protobuf request messages of the Yandex gRPC services, decoded as the services decode
//! them (`yandex::codec::decode_message`). The first byte selects the message type.
//!
//! Properties: a malformed message is `INVALID_ARGUMENT` (the client's mistake, never
//! `INTERNAL`); what decodes re-encodes to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tessera_server::yandex::codec::decode_message;
use tessera_server::yandex::proto::endpoint::{GetApiEndpointRequest, ListApiEndpointsRequest};
use tessera_server::yandex::proto::iam::{
    CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest, GetServiceAccountRequest,
    RevokeIamTokenRequest,
};

fn check<M: Message + Default + PartialEq>(bytes: &[u8]) {
    match decode_message::<M>(bytes) {
        Ok(message) => {
            let again = decode_message::<M>(message.encode_to_vec().as_slice());
            assert!(
                again.as_ref().is_ok_and(|m| *m == message),
                "re-encoded message differs"
            );
        }
        Err(status) => assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => check::<CreateIamTokenRequest>(bytes),
        1 => check::<CreateIamTokenForServiceAccountRequest>(bytes),
        2 => check::<RevokeIamTokenRequest>(bytes),
        3 => check::<GetServiceAccountRequest>(bytes),
        4 => check::<GetApiEndpointRequest>(bytes),
        _ => check::<ListApiEndpointsRequest>(bytes),
    }
});
