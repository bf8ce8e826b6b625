//! Failed-login limits, per client address and per account, and registration limits per
//! client address.
//!
//! Only failed logins count, so a busy office behind one address is not locked out by its own
//! successful logins. Each failure takes a cell from a GCRA limiter (`governor`) of its key;
//! the failure that finds no cell left blocks its key until the limiter would allow one again,
//! and a blocked key is answered 429 with `Retry-After` before any password is checked. The
//! account key is the normalised email as typed, known or not, so the limit says nothing about
//! which accounts exist. Every registration attempt counts against its address.
//!
//! The keys live in capped caches (`moka`): at most [`MAX_TRACKED_KEYS`] of each kind, each
//! forgotten a minute after it was last seen (by then its limiter is full again, so forgetting
//! it changes nothing). When a flood of distinct keys fills a cache, the keys seen least often
//! go first (TinyLFU), so the account under attack, tried again and again, stays counted.
//!
//! State is per process: with several api replicas, each enforces the limits on its own.

use crate::error::ApiError;
use crate::refusals::Limit;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use moka::sync::Cache;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most keys of one kind (addresses, accounts) a process remembers: about 2 MiB of emails.
pub const MAX_TRACKED_KEYS: u64 = 4096;
/// A per-minute limiter is full again at most this long after its last cell was taken.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// The limiter of one key and, once it ran out, until when the key is blocked.
struct KeyState {
    limiter: DefaultDirectRateLimiter,
    blocked_until: Mutex<Option<Instant>>,
}

/// Attempts allowed per minute for one kind of key.
struct Allowance<K: Hash + Eq + Send + Sync + 'static> {
    quota: Quota,
    keys: Cache<K, Arc<KeyState>>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Allowance<K> {
    fn per_minute(attempts: u32, max_keys: u64) -> Self {
        let burst = NonZeroU32::new(attempts).unwrap_or(NonZeroU32::MIN);
        Allowance {
            quota: Quota::per_minute(burst),
            keys: Cache::builder()
                .max_capacity(max_keys)
                .time_to_idle(FORGET_AFTER)
                .build(),
            clock: DefaultClock::default(),
        }
    }

    /// How long `key` stays blocked, if it is.
    fn blocked_for(&self, key: &K) -> Option<Duration> {
        let state = self.keys.get(key)?;
        let until = (*state
            .blocked_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()))?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts an attempt; returns how long `key` is now blocked if it ran out of attempts.
    fn take(&self, key: &K) -> Option<Duration> {
        let state = self.keys.get_with_by_ref(key, || {
            Arc::new(KeyState {
                limiter: RateLimiter::direct(self.quota),
                blocked_until: Mutex::new(None),
            })
        });
        let wait = match state.limiter.check() {
            Ok(()) => return None,
            Err(not_until) => not_until.wait_time_from(self.clock.now()),
        };
        *state
            .blocked_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + wait);
        Some(wait)
    }

    /// Keys remembered now (after pending evictions).
    fn tracked(&self) -> u64 {
        self.keys.run_pending_tasks();
        self.keys.entry_count()
    }
}

/// The login and registration limits of one api process.
pub struct LoginLimiter {
    per_address: Allowance<IpAddr>,
    per_account: Allowance<String>,
    registrations: Allowance<IpAddr>,
}

impl LoginLimiter {
    pub fn new(
        per_address_per_minute: u32,
        per_account_per_minute: u32,
        registrations_per_minute: u32,
    ) -> Self {
        Self::with_capacity(
            per_address_per_minute,
            per_account_per_minute,
            registrations_per_minute,
            MAX_TRACKED_KEYS,
        )
    }

    fn with_capacity(
        per_address_per_minute: u32,
        per_account_per_minute: u32,
        registrations_per_minute: u32,
        max_keys: u64,
    ) -> Self {
        LoginLimiter {
            per_address: Allowance::per_minute(per_address_per_minute, max_keys),
            per_account: Allowance::per_minute(per_account_per_minute, max_keys),
            registrations: Allowance::per_minute(registrations_per_minute, max_keys),
        }
    }

    /// 429 if this address or this account is blocked; checked before any password work.
    pub fn check(&self, address: IpAddr, account: &str) -> Result<(), ApiError> {
        let address = client_key(address);
        refused_for(longest(
            (
                self.per_address.blocked_for(&address),
                Limit::LoginsPerAddress,
            ),
            (
                self.per_account.blocked_for(&account.to_owned()),
                Limit::LoginsPerAccount,
            ),
        ))
    }

    /// Records a failed login; 429 if it used up the address's or the account's allowance.
    pub fn record_failure(&self, address: IpAddr, account: &str) -> Result<(), ApiError> {
        let address = client_key(address);
        let wait = longest(
            (self.per_address.take(&address), Limit::LoginsPerAddress),
            (
                self.per_account.take(&account.to_owned()),
                Limit::LoginsPerAccount,
            ),
        );
        // Once per block: the blocked key's next attempts are refused by `check`.
        if wait.is_some() {
            tracing::warn!(%address, "login failures over the limit");
        }
        refused_for(wait)
    }

    /// Records a failed password confirmation of a logged-in account (password change).
    pub fn record_account_failure(&self, account: &str) -> Result<(), ApiError> {
        let wait = self.per_account.take(&account.to_owned());
        refused_for(wait.map(|w| (w, Limit::LoginsPerAccount)))
    }

    pub fn check_account(&self, account: &str) -> Result<(), ApiError> {
        let wait = self.per_account.blocked_for(&account.to_owned());
        refused_for(wait.map(|w| (w, Limit::LoginsPerAccount)))
    }

    /// Counts a registration from `address`; 429 once the address has used its allowance.
    pub fn record_registration(&self, address: IpAddr) -> Result<(), ApiError> {
        let address = client_key(address);
        let wait = match self.registrations.blocked_for(&address) {
            Some(wait) => Some(wait),
            None => {
                let wait = self.registrations.take(&address);
                // Once per block: the blocked address's next attempts are refused above.
                if wait.is_some() {
                    tracing::warn!(%address, "registrations over the limit");
                }
                wait
            }
        };
        refused_for(wait.map(|w| (w, Limit::RegistrationsPerAddress)))
    }

    /// How many addresses and accounts the failed-login limits remember now.
    pub fn tracked_keys(&self) -> (u64, u64) {
        (self.per_address.tracked(), self.per_account.tracked())
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

/// The longer of two limits' waits, with the limit that imposes it.
fn longest(
    (a, a_limit): (Option<Duration>, Limit),
    (b, b_limit): (Option<Duration>, Limit),
) -> Option<(Duration, Limit)> {
    match (a, b) {
        (Some(a), Some(b)) if b > a => Some((b, b_limit)),
        (Some(a), _) => Some((a, a_limit)),
        (None, b) => b.map(|b| (b, b_limit)),
    }
}

/// A 429 while `limit` still blocks for the wait, otherwise allowed.
fn refused_for(blocked: Option<(Duration, Limit)>) -> Result<(), ApiError> {
    blocked.map_or(Ok(()), |(wait, limit)| Err(limited(wait, limit)))
}

fn limited(wait: Duration, limit: Limit) -> ApiError {
    // Round up: retrying after the advertised time must succeed.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited {
        limit,
        retry_after_secs: secs.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_allowance_block_the_account_and_only_it() {
        let limits = LoginLimiter::new(100, 2, 10);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(limits.check(ip, "a@x.io").is_ok());
        assert!(limits.record_failure(ip, "a@x.io").is_ok());
        assert!(limits.record_failure(ip, "a@x.io").is_ok());
        let Err(ApiError::RateLimited {
            retry_after_secs, ..
        }) = limits.record_failure(ip, "a@x.io")
        else {
            panic!("third failure is limited");
        };
        assert!((1..=30).contains(&retry_after_secs), "{retry_after_secs}");
        assert!(limits.check(ip, "a@x.io").is_err());
        assert!(limits.check(ip, "b@x.io").is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_bit_prefix() {
        let limits = LoginLimiter::new(1, 100, 10);
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
        let limits = LoginLimiter::new(2, 100, 10);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(limits.record_failure(ip, "a@x.io").is_ok());
        assert!(limits.record_failure(ip, "b@x.io").is_ok());
        assert!(limits.record_failure(ip, "c@x.io").is_err());
        assert!(limits.check(ip, "d@x.io").is_err());
        assert!(limits.check([10, 0, 0, 2].into(), "d@x.io").is_ok());
    }

    #[test]
    fn registrations_beyond_the_allowance_are_refused_per_address() {
        let limits = LoginLimiter::new(100, 100, 2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(limits.record_registration(ip).is_ok());
        assert!(limits.record_registration(ip).is_ok());
        assert!(matches!(
            limits.record_registration(ip),
            Err(ApiError::RateLimited { .. })
        ));
        assert!(limits.record_registration([10, 0, 0, 2].into()).is_ok());
    }

    #[test]
    fn ten_thousand_distinct_failed_emails_leave_the_limiter_state_bounded() {
        let limits = LoginLimiter::with_capacity(1_000_000, 10, 10, 1000);
        for n in 0..10_000 {
            let ip = IpAddr::from([10, 1, (n / 256) as u8, (n % 256) as u8]);
            let _ = limits.record_failure(ip, &format!("user{n}@example.com"));
        }
        let (addresses, accounts) = limits.tracked_keys();
        assert!(addresses <= 1000, "{addresses} addresses remembered");
        assert!(accounts <= 1000, "{accounts} accounts remembered");
        assert!(accounts > 0, "failures are still counted");
    }

    #[test]
    fn an_account_tried_again_and_again_stays_counted_through_a_flood_of_other_emails() {
        let limits = LoginLimiter::with_capacity(1_000_000, 5, 10, 100);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let mut victim_blocked = false;
        for n in 0..5_000 {
            let _ = limits.record_failure(ip, &format!("junk{n}@example.com"));
            if n % 100 == 0 && limits.record_failure(ip, "victim@example.com").is_err() {
                victim_blocked = true;
                break;
            }
        }
        assert!(victim_blocked, "the victim's failures were forgotten");
    }
}
