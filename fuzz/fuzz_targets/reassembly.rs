//! The client's reassembly of fragmented messages (PARTIAL_DELIVER
//! events), fed any sequence of fragments from a few senders. Checked
//! against a model of the documented rule: a message is delivered whole,
//! exactly as its fragments carried it, or not at all; memory held stays
//! proportional to the fragment bytes received.
#![no_main]

use std::collections::HashMap;

use cpg_fuzz::{Budget, Input};
use cpg_rs::cpg::reassembly::Reassembly;
use cpg_rs::proto::{FRAG_CONTINUED, FRAG_FIRST, FRAG_LAST};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Model {
    open: HashMap<(u32, u32), (u32, Vec<u8>)>,
}

impl Model {
    fn add(&mut self, key: (u32, u32), kind: u32, msglen: u32, frag: &[u8]) -> Option<Vec<u8>> {
        if kind == FRAG_FIRST {
            self.open.insert(key, (msglen, Vec::new()));
        } else if kind != FRAG_CONTINUED && kind != FRAG_LAST {
            self.open.remove(&key);
            return None;
        }
        let (want, data) = self.open.get_mut(&key)?;
        if data.len() + frag.len() > *want as usize {
            self.open.remove(&key);
            return None;
        }
        data.extend_from_slice(frag);
        if kind == FRAG_LAST {
            let (want, data) = self.open.remove(&key)?;
            if data.len() == msglen as usize && msglen == want {
                return Some(data);
            }
        }
        None
    }
}

fuzz_target!(|data: &[u8]| {
    // The harness's model holds a second copy of every fragment.
    let budget = Budget::new(data.len(), 64 << 10, 8);
    let mut input = Input::new(data);
    let mut r = Reassembly::default();
    let mut model = Model::default();
    let mut ops = 0;
    while !input.is_empty() && ops < 4096 {
        ops += 1;
        let op = input.u8();
        let key = (1 + (op as u32 >> 6 & 1), 100 + (op as u32 >> 4 & 3));
        if op & 0xf == 0xf {
            r.forget(key.0, key.1);
            model.open.remove(&key);
            continue;
        }
        let kind = match op & 0xf {
            0..=3 => FRAG_FIRST,
            4..=8 => FRAG_CONTINUED,
            9..=12 => FRAG_LAST,
            13 => 0,
            _ => input.u32(),
        };
        let msglen = match input.u8() % 4 {
            0 => input.u8() as u32,
            1 => input.u16() as u32,
            _ => input.interesting_u32(),
        };
        let n = input.u8() as usize;
        let frag = input.bytes(n);
        let got = r.add(key.0, key.1, kind, msglen, frag);
        let want = model.add(key, kind, msglen, frag);
        assert_eq!(got, want, "op {ops}: kind {kind} msglen {msglen} frag {}", frag.len());
    }
    drop(budget);
});
