//! Logging to stderr: errors and notices always, debug with `-v`.
#![forbid(unsafe_code)]

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Silences notices (used by in-process tests); warnings still print.
pub fn set_quiet(on: bool) {
    QUIET.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

fn emit(level: &str, args: Arguments<'_>) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "cpgd[{}]: {level}: {args}",
        std::process::id()
    );
}

pub fn warn(args: Arguments<'_>) {
    emit("warning", args);
}

pub fn notice(args: Arguments<'_>) {
    if !QUIET.load(Ordering::Relaxed) {
        emit("notice", args);
    }
}

pub fn debug(args: Arguments<'_>) {
    if verbose() {
        emit("debug", args);
    }
}
