//! Command line of `cpgd`.
#![forbid(unsafe_code)]

use std::time::Duration;

use super::{Config, IpcMode};

pub const USAGE: &str = "\
usage: cpgd [options]

A single-host server for corosync's CPG service (closed process groups):
programs using libcpg.so.4 (corosync's or cpg-rs's) talk to it as to corosync.
Runs in the foreground, logs to stderr, stops on SIGTERM / SIGINT.

options:
  --ipc shm|socket       IPC transport offered to clients (default: shm)
  --nodeid N             node id reported to clients (default: 1; not 0)
  --allow-uid UID        also admit clients running as UID (repeatable)
  --allow-gid GID        also admit clients whose primary group is GID (repeatable)
                         (always admitted: root and the uid cpgd runs as)
  --queue-soft MIB       per-client event queue that turns flow control on (default: 8)
  --queue-hard MIB       per-client event queue that disconnects the client (default: 64)
  --stall-timeout SECS   disconnect a client whose queue stays above the soft
                         limit this long (default: 15)
  --max-connections N    connections served at once (default: 4096)
  --busy-poll USECS      after a request, keep polling this long before
                         sleeping (default: 50; 0: sleep at once)
  --service NAME         libqb service name to listen on (default: cpg)
  -f, --foreground       accepted for compatibility (always in the foreground)
  -v, --verbose          debug messages
  -h, --help             this text
  -V, --version          version
";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

fn number<T: std::str::FromStr>(opt: &str, value: Option<String>) -> Result<T, String> {
    let v = value.ok_or_else(|| format!("{opt} needs a value"))?;
    v.parse().map_err(|_| format!("{opt}: not a valid number: {v}"))
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut c = Config::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match opt.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-v" | "--verbose" => c.verbose = true,
            "-f" | "--foreground" => {}
            "--ipc" => {
                c.ipc = match value().as_deref() {
                    Some("shm") | Some("native") => IpcMode::Shm,
                    Some("socket") => IpcMode::Socket,
                    other => return Err(format!("--ipc: expected shm or socket, got {other:?}")),
                }
            }
            "--nodeid" => {
                c.nodeid = number(&opt, value())?;
                if c.nodeid == 0 {
                    return Err("--nodeid must not be 0".into());
                }
            }
            "--allow-uid" => c.allow_uids.push(number(&opt, value())?),
            "--allow-gid" => c.allow_gids.push(number(&opt, value())?),
            "--queue-soft" => c.limits.soft = number::<usize>(&opt, value())?.saturating_mul(1 << 20),
            "--queue-hard" => c.limits.hard = number::<usize>(&opt, value())?.saturating_mul(1 << 20),
            "--stall-timeout" => c.limits.stall = Duration::from_secs(number(&opt, value())?),
            "--max-connections" => c.max_connections = number(&opt, value())?,
            "--busy-poll" => c.busy_poll = Duration::from_micros(number(&opt, value())?),
            "--service" => c.service = value().ok_or("--service needs a value")?,
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    if c.limits.soft == 0 || c.limits.hard < c.limits.soft {
        return Err("need 0 < --queue-soft <= --queue-hard".into());
    }
    Ok(Command::Run(Box::new(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(c) => Ok(*c),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn options() {
        let c = run(&[
            "--ipc",
            "socket",
            "--nodeid=7",
            "--allow-uid",
            "1000",
            "--allow-gid",
            "189",
            "-v",
            "--busy-poll",
            "0",
        ])
        .unwrap();
        assert_eq!(c.ipc, IpcMode::Socket);
        assert_eq!(c.nodeid, 7);
        assert_eq!(c.allow_uids, vec![1000]);
        assert_eq!(c.allow_gids, vec![189]);
        assert!(c.verbose);
        assert_eq!(c.busy_poll, Duration::ZERO);
        assert_eq!(run(&[]).unwrap().busy_poll, Duration::from_micros(50));
        assert!(run(&["--nodeid", "0"]).is_err());
        assert!(run(&["--ipc", "mq"]).is_err());
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--queue-soft", "10", "--queue-hard", "5"]).is_err());
        assert!(matches!(parse(["--help".to_string()]), Ok(Command::Help)));
    }
}
