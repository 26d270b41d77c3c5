//! The libqb connection handshake: the server decodes the client's
//! 24-byte request, the client decodes the server's 12 328-byte response
//! (paths it will open). Decoded values must survive re-encoding; paths
//! are NUL-free and shorter than PATH_MAX.
#![no_main]

use cpg_fuzz::Budget;
use cpg_rs::ipc::handshake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _budget = Budget::new(data.len(), 64 << 10, 2);
    if let Some(max) = handshake::decode_request(data) {
        let again = handshake::encode_request(max);
        assert_eq!(
            handshake::decode_request(&again),
            Some(max.max(handshake::RESPONSE_LEN as u32))
        );
    }
    if let Some(r) = handshake::decode_response(data) {
        for p in [&r.request, &r.response, &r.event] {
            assert!(p.len() < handshake::PATH_MAX && !p.contains('\0'));
        }
        let again = handshake::encode_response(&r, 7);
        assert_eq!(again.len(), handshake::RESPONSE_LEN);
        assert_eq!(handshake::decode_response(&again), Some(r));
    }
});
