//! Flow control and the slow-consumer policy (pure decisions; the event
//! loop applies them).
//!
//! Every connection has a server-side queue of events (and, rarely,
//! replies) that did not fit its ring/socket. Memory stays bounded by:
//! - **congestion**: when any queue exceeds `soft`, the flow-control word
//!   of every connection becomes 2 (libcpg's `cpg_mcast_joined` then
//!   returns CS_ERR_TRY_AGAIN) and multicasts already queued in request
//!   rings are left there (a connection's requests are taken in order, so
//!   its later requests wait behind it); it ends when every queue is at
//!   most `soft / 2`. A connection whose own queue is above `soft / 2` is
//!   exempt from the holding: it may be blocked in a synchronous call
//!   behind its multicast, and holding it would keep it from ever reading
//!   the events that keep the server congested. Zero-copy multicasts
//!   (ZC_EXECUTE) are synchronous and libcpg sends them whatever the word
//!   says: while congested they get the CS_ERR_TRY_AGAIN reply instead
//!   (as from corosync when its queue is full), exempt or not. A
//!   connection in the middle of a fragmented message keeps its word at 0
//!   until the last fragment (it cannot read its own fragments first);
//! - **stall**: a connection whose queue stays above `soft` (above
//!   `soft / 2` while congested, i.e. one that keeps the congestion going)
//!   for `stall` is disconnected (its members get a PROCDOWN confchg);
//! - **hard**: a queue above `hard` is disconnected at once.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub soft: usize,
    pub hard: usize,
    pub stall: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            soft: 8 << 20,
            hard: 64 << 20,
            stall: Duration::from_secs(15),
        }
    }
}

/// What to do with one connection's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// Above the soft limit since the returned instant.
    Over(Instant),
    Disconnect(&'static str),
}

impl Limits {
    pub fn congests(&self, queued: usize) -> bool {
        queued > self.soft
    }

    pub fn relieved(&self, queued: usize) -> bool {
        queued <= self.soft / 2
    }

    /// Whether a connection's flow-controlled requests may be held back
    /// while the server is congested.
    pub fn may_hold(&self, queued: usize) -> bool {
        self.relieved(queued)
    }

    pub fn judge(&self, queued: usize, over_since: Option<Instant>, now: Instant, congested: bool) -> Verdict {
        if queued > self.hard {
            return Verdict::Disconnect("event queue above the hard limit");
        }
        if queued <= self.soft && (!congested || self.relieved(queued)) {
            return Verdict::Fine;
        }
        let since = over_since.unwrap_or(now);
        if now.duration_since(since) >= self.stall {
            Verdict::Disconnect("event queue above the soft limit for too long (client not reading)")
        } else {
            Verdict::Over(since)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let l = Limits {
            soft: 100,
            hard: 1000,
            stall: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        assert_eq!(l.judge(50, None, t0, false), Verdict::Fine);
        assert_eq!(l.judge(150, None, t0, false), Verdict::Over(t0));
        assert_eq!(
            l.judge(150, Some(t0), t0 + Duration::from_secs(5), false),
            Verdict::Over(t0)
        );
        let late = t0 + Duration::from_secs(10);
        assert!(matches!(l.judge(150, Some(t0), late, false), Verdict::Disconnect(_)));
        assert!(matches!(l.judge(1001, None, t0, false), Verdict::Disconnect(_)));
        // Between soft/2 and soft: fine, unless it keeps the server congested.
        assert_eq!(l.judge(80, None, t0, false), Verdict::Fine);
        assert_eq!(l.judge(80, None, t0, true), Verdict::Over(t0));
        assert!(l.may_hold(50) && !l.may_hold(80));
        assert!(l.congests(101) && !l.congests(100));
        assert!(l.relieved(50) && !l.relieved(51));
    }
}
