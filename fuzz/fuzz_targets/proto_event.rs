//! What the client decodes from the server: event frames (CONFCHG,
//! DELIVER, PARTIAL_DELIVER, TOTEM_CONFCHG, unknown ids) and the fields of
//! synchronous responses. Every accepted frame must describe only bytes
//! that exist, and a decoded event must survive re-encoding.
#![no_main]

use cpg_fuzz::Budget;
use cpg_rs::proto::{self, Event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The decoder holds at most one byte per frame byte (12-byte addresses
    // per 24 bytes, 4-byte members per 4); re-encoding and decoding again
    // below hold about two more.
    let _budget = Budget::new(data.len(), 4096, 4);
    match proto::event(data) {
        Ok(Event::Deliver { payload, .. }) => {
            assert_eq!(payload.start, proto::DELIVER_HDR_LEN);
            assert!(payload.end <= data.len());
            let _ = &data[payload];
        }
        Ok(Event::PartialDeliver { payload, .. }) => {
            assert_eq!(payload.start, proto::PARTIAL_DELIVER_HDR_LEN);
            assert!(payload.end <= data.len());
        }
        Ok(Event::Confchg {
            group,
            members,
            left,
            joined,
        }) => {
            let n = members.len() + left.len() + joined.len();
            assert!(n == 0 || proto::CONFCHG_HDR_LEN + n * proto::ADDRESS_LEN <= data.len());
            let again = proto::confchg_event(&group, &members, &left, &joined);
            assert_eq!(
                proto::event(&again),
                Ok(Event::Confchg {
                    group,
                    members,
                    left,
                    joined
                })
            );
        }
        Ok(Event::TotemConfchg { ring_id, members }) => {
            assert!(members.is_empty() || proto::TOTEM_CONFCHG_HDR_LEN + 4 * members.len() <= data.len());
            let again = proto::totem_confchg_event(ring_id, &members);
            assert_eq!(proto::event(&again), Ok(Event::TotemConfchg { ring_id, members }));
        }
        Ok(Event::Unknown(id)) => {
            assert!(!matches!(
                id,
                proto::res::CONFCHG | proto::res::DELIVER | proto::res::PARTIAL_DELIVER | proto::res::TOTEM_CONFCHG
            ));
        }
        Err(_) => {}
    }
    // Response fields.
    if proto::res_header(data).is_some() {
        // id, size and error: the padding after the error is never read.
        assert!(data.len() >= 20);
    }
    if let Some(list) = proto::membership_entries(data) {
        assert!(list.len() <= proto::MEMBERSHIP_MAX);
        assert!(list.is_empty() || proto::RES_HDR + 8 + list.len() * proto::ADDRESS_LEN <= data.len());
    }
    let _ = proto::local_nodeid(data);
    let _ = proto::iteration_handle(data);
    if let Some((name, _, _)) = proto::iteration_description(data) {
        assert!(name.bytes().len() <= proto::MAX_NAME);
    }
});
