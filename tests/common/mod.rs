//! What the integration tests share: an in-process cpgd on a private
//! service name, and a raw protocol client of it.
#![allow(dead_code)] // each test binary uses a part

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpg_rs::error::CsError;
use cpg_rs::ipc::{self, Events, Requester};
use cpg_rs::proto::{self, Event};
use cpg_rs::server::{flow::Limits, log, Config, IpcMode, Server, Stopper};

/// Tests share /dev/shm and check it is left clean: one server at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// How long `expect_event` and `next` wait.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Running {
    pub service: String,
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    pub fn start(ipc: IpcMode, limits: Limits, nodeid: u32) -> Running {
        log::set_quiet(true);
        let service = format!(
            "cpgd-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let server = Server::bind(Config {
            service: service.clone(),
            ipc,
            nodeid,
            limits,
            ..Config::default()
        })
        .expect("bind");
        let stopper = server.stopper();
        let thread = Some(std::thread::spawn(move || server.run().expect("run")));
        Running {
            service,
            stopper,
            thread,
        }
    }

    /// Stops the server and waits for it (it removes its files).
    pub fn stop(&mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

impl Drop for Running {
    /// Stops the server, which must leave nothing in /dev/shm.
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            assert_eq!(leftovers(), Vec::<String>::new(), "left in /dev/shm");
        }
    }
}

/// Connection directories this process (as a server) still has.
pub fn leftovers() -> Vec<String> {
    let prefix = format!("qb-{}-", std::process::id());
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// A raw protocol client: it sends frames of our choosing (a join with any
/// pid, say) and reads event frames.
pub struct Client {
    pub req: Requester,
    pub ev: Events,
    pub buf: Vec<u8>,
}

impl Client {
    pub fn connect(r: &Running) -> Client {
        let (req, ev) = ipc::connect(&r.service, 1 << 20).expect("connect");
        Client {
            req,
            ev,
            buf: vec![0; 2 << 20],
        }
    }

    /// Sends a request, returns the response frame.
    pub fn call(&mut self, frame: &[u8]) -> Vec<u8> {
        let n = self.req.request(&[frame], &mut self.buf).expect("request");
        self.buf[..n].to_vec()
    }

    /// The error field of the response to `frame`.
    pub fn error_of(&mut self, frame: &[u8]) -> i32 {
        let r = self.call(frame);
        proto::res_header(&r).unwrap().error
    }

    /// Multicasts `payload` (AGREED) without waiting for a reply.
    pub fn mcast(&mut self, payload: &[u8]) -> Result<(), CsError> {
        let hdr = proto::mcast_header(2, payload.len());
        self.req.send(&[&hdr, payload], 2)
    }

    /// The next event frame, waiting at most `timeout`.
    pub fn event(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let start = Instant::now();
        loop {
            if let Some(n) = self.ev.try_recv(&mut self.buf).expect("event channel") {
                return Some(self.buf[..n].to_vec());
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn expect_event(&mut self) -> Event {
        let frame = self.event(WAIT).expect("an event in time");
        proto::event(&frame).expect("well-formed event")
    }

    /// The next event, with DELIVER payloads resolved.
    pub fn next(&mut self) -> (Event, Vec<u8>) {
        let frame = self.event(WAIT).expect("an event in time");
        let ev = proto::event(&frame).expect("well-formed event");
        let payload = match &ev {
            Event::Deliver { payload, .. } => frame[payload.clone()].to_vec(),
            _ => Vec::new(),
        };
        (ev, payload)
    }
}
