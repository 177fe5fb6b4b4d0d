//! `fd.sip.name`: Falco resolves the host names a rule compares against and matches the server address
//! of the connection against their addresses. moat does the same: names used in conditions are
//! registered at load time and resolved (through the system resolver, so /etc/hosts counts) the first
//! time an event needs them, then every five minutes.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Cache {
    names: BTreeSet<String>,
    by_ip: HashMap<IpAddr, String>,
    resolved_at: Option<Instant>,
}

fn cache() -> &'static Mutex<Cache> {
    static C: OnceLock<Mutex<Cache>> = OnceLock::new();
    C.get_or_init(|| {
        Mutex::new(Cache {
            names: BTreeSet::new(),
            by_ip: HashMap::new(),
            resolved_at: None,
        })
    })
}

/// Registers a host name a condition compares `fd.sip.name` with.
pub fn register(name: &str) {
    if let Ok(mut c) = cache().lock()
        && c.names.insert(name.to_string())
    {
        c.resolved_at = None;
    }
}

/// The registered name `ip` belongs to, if any.
pub fn name_of(ip: IpAddr) -> Option<String> {
    let mut c = cache().lock().ok()?;
    if c.names.is_empty() {
        return None;
    }
    let stale = c
        .resolved_at
        .is_none_or(|t| t.elapsed() > Duration::from_secs(300));
    if stale {
        let mut by_ip = HashMap::new();
        for n in c.names.iter() {
            if let Ok(addrs) = (n.as_str(), 0u16).to_socket_addrs() {
                for a in addrs {
                    by_ip.insert(a.ip(), n.clone());
                }
            }
        }
        c.by_ip = by_ip;
        c.resolved_at = Some(Instant::now());
    }
    c.by_ip.get(&ip).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn localhost_resolves_through_the_system_resolver() {
        register("localhost");
        assert_eq!(
            name_of("127.0.0.1".parse().unwrap()).as_deref(),
            Some("localhost")
        );
        assert_eq!(name_of("192.0.2.7".parse().unwrap()), None);
    }
}
