//! What the server decodes from a client: request frames. Payloads must
//! be sub-slices of the frame, and decoded requests must survive
//! re-encoding with the client's encoders.
#![no_main]

use cpg_fuzz::Budget;
use cpg_rs::proto::{self, Request};
use cpg_rs::server::service::Service;
use libfuzzer_sys::fuzz_target;

fn inside(frame: &[u8], part: &[u8]) -> bool {
    let (f, p) = (frame.as_ptr() as usize, part.as_ptr() as usize);
    p >= f && p + part.len() <= f + frame.len()
}

fuzz_target!(|data: &[u8]| {
    let _budget = Budget::new(data.len(), 4096, 2);
    let _ = Service::admission(data);
    match proto::request(data) {
        Request::Join { group, pid, flags } => {
            assert_eq!(
                proto::request(&proto::join(&group, pid, flags)),
                Request::Join { group, pid, flags }
            );
        }
        Request::Leave { group, pid } => {
            assert_eq!(
                proto::request(&proto::leave(&group, pid)),
                Request::Leave { group, pid }
            );
        }
        Request::Membership { group } => {
            assert_eq!(
                proto::request(&proto::membership(&group)),
                Request::Membership { group }
            );
        }
        Request::Mcast { guarantee, payload } => {
            assert!(inside(data, payload));
            let mut again = proto::mcast_header(guarantee, payload.len()).to_vec();
            again.extend_from_slice(payload);
            assert_eq!(proto::request(&again), Request::Mcast { guarantee, payload });
        }
        Request::PartialMcast {
            guarantee,
            msglen,
            kind,
            payload,
        } => {
            assert!(inside(data, payload));
            let mut again = proto::partial_header(guarantee, msglen as usize, payload.len(), kind).to_vec();
            again.extend_from_slice(payload);
            assert_eq!(
                proto::request(&again),
                Request::PartialMcast {
                    guarantee,
                    msglen,
                    kind,
                    payload
                }
            );
        }
        Request::IterationInitialize { group, kind } => {
            assert_eq!(
                proto::request(&proto::iteration_initialize(Some(&group), kind)),
                Request::IterationInitialize { group, kind }
            );
        }
        Request::IterationNext { handle } => {
            let again = proto::with_handle(proto::req::ITERATION_NEXT, handle);
            assert_eq!(proto::request(&again), Request::IterationNext { handle });
        }
        Request::ZcAlloc { map_size, path } => {
            assert!(path.len() < 128 && !path.contains('\0'));
            assert_eq!(
                proto::request(&proto::zc_alloc(map_size, &path)),
                Request::ZcAlloc { map_size, path }
            );
        }
        Request::ZcFree {
            map_size,
            server_address,
        } => {
            assert_eq!(
                proto::request(&proto::zc_free(map_size, server_address)),
                Request::ZcFree {
                    map_size,
                    server_address
                }
            );
        }
        Request::Malformed(id) => assert!((proto::req::JOIN..proto::req::END).contains(&id)),
        Request::Unknown(id) => assert!(!(proto::req::JOIN..proto::req::END).contains(&id)),
        Request::LocalGet | Request::IterationFinalize { .. } | Request::Finalize | Request::ZcExecute { .. } => {}
    }
});
