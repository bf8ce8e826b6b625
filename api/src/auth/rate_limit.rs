//! Failed-login limits, per client address and per account.
//!
//! Only failures count, so a busy office behind one address is not locked out by its own
//! successful logins. Each failure takes a cell from a GCRA limiter (`governor`); the failure
//! that finds no cell left blocks its key until the limiter would allow one again, and a
//! blocked key is answered 429 with `Retry-After` before any password is checked. The account
//! key is the normalised email as typed, known or not, so the limit says nothing about which
//! accounts exist.
//!
//! State is per process: with several api replicas, each enforces the limits on its own.

use crate::error::ApiError;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many blocked keys, expired ones are swept on the next insert.
const SWEEP_ABOVE: usize = 10_000;

/// Failures allowed per minute for one kind of key, and the keys currently blocked.
struct FailureLimit<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    blocked: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> FailureLimit<K> {
    fn per_minute(failures: u32) -> Self {
        let burst = NonZeroU32::new(failures).unwrap_or(NonZeroU32::MIN);
        FailureLimit {
            limiter: RateLimiter::keyed(Quota::per_minute(burst)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` stays blocked, if it is.
    fn blocked_for(&self, key: &K) -> Option<Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(key)?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failure; returns how long `key` is now blocked if it ran out of failures.
    fn fail(&self, key: &K) -> Option<Duration> {
        let wait = match self.limiter.check_key(key) {
            Ok(()) => return None,
            Err(not_until) => not_until.wait_time_from(self.limiter.clock().now()),
        };
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() > SWEEP_ABOVE {
            blocked.retain(|_, until| *until > now);
            self.limiter.retain_recent();
        }
        blocked.insert(key.clone(), now + wait);
        Some(wait)
    }
}

/// The login limits of one api process.
pub struct LoginLimiter {
    per_address: FailureLimit<IpAddr>,
    per_account: FailureLimit<String>,
}

impl LoginLimiter {
    pub fn new(per_address_per_minute: u32, per_account_per_minute: u32) -> Self {
        LoginLimiter {
            per_address: FailureLimit::per_minute(per_address_per_minute),
            per_account: FailureLimit::per_minute(per_account_per_minute),
        }
    }

    /// 429 if this address or this account is blocked; checked before any password work.
    pub fn check(&self, address: IpAddr, account: &str) -> Result<(), ApiError> {
        let address = client_key(address);
        let wait = longest(
            self.per_address.blocked_for(&address),
            self.per_account.blocked_for(&account.to_owned()),
        );
        match wait {
            Some(wait) => Err(limited(wait)),
            None => Ok(()),
        }
    }

    /// Records a failed login; 429 if it used up the address's or the account's allowance.
    pub fn record_failure(&self, address: IpAddr, account: &str) -> Result<(), ApiError> {
        let address = client_key(address);
        let wait = longest(
            self.per_address.fail(&address),
            self.per_account.fail(&account.to_owned()),
        );
        match wait {
            Some(wait) => {
                tracing::warn!(%address, "login failures over the limit");
                Err(limited(wait))
            }
            None => Ok(()),
        }
    }

    /// Records a failed password confirmation of a logged-in account (password change).
    pub fn record_account_failure(&self, account: &str) -> Result<(), ApiError> {
        match self.per_account.fail(&account.to_owned()) {
            Some(wait) => Err(limited(wait)),
            None => Ok(()),
        }
    }

    pub fn check_account(&self, account: &str) -> Result<(), ApiError> {
        match self.per_account.blocked_for(&account.to_owned()) {
            Some(wait) => Err(limited(wait)),
            None => Ok(()),
        }
    }
}

/// The key of a client address: IPv4 as is, IPv6 by its /64 prefix (one host usually owns a
/// whole /64, so counting single addresses would let it rotate past the limit).
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

fn longest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn limited(wait: Duration) -> ApiError {
    // Round up: retrying after the advertised time must succeed.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited {
        retry_after_secs: secs.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_allowance_block_the_account_and_only_it() {
        let limits = LoginLimiter::new(100, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(limits.check(ip, "a@x.io").is_ok());
        assert!(limits.record_failure(ip, "a@x.io").is_ok());
        assert!(limits.record_failure(ip, "a@x.io").is_ok());
        let Err(ApiError::RateLimited { retry_after_secs }) = limits.record_failure(ip, "a@x.io")
        else {
            panic!("third failure is limited");
        };
        assert!((1..=30).contains(&retry_after_secs), "{retry_after_secs}");
        assert!(limits.check(ip, "a@x.io").is_err());
        assert!(limits.check(ip, "b@x.io").is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_bit_prefix() {
        let limits = LoginLimiter::new(1, 100);
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        assert!(limits.record_failure(a, "a@x.io").is_ok());
        assert!(limits.record_failure(b, "b@x.io").is_err());
        assert!(
            limits
                .check("2001:db8:1:3::1".parse().expect("ip"), "c@x.io")
                .is_ok()
        );
    }

    #[test]
    fn failures_beyond_the_allowance_block_the_address_for_every_account() {
        let limits = LoginLimiter::new(2, 100);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(limits.record_failure(ip, "a@x.io").is_ok());
        assert!(limits.record_failure(ip, "b@x.io").is_ok());
        assert!(limits.record_failure(ip, "c@x.io").is_err());
        assert!(limits.check(ip, "d@x.io").is_err());
        assert!(limits.check([10, 0, 0, 2].into(), "d@x.io").is_ok());
    }
}
