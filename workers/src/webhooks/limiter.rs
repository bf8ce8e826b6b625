//! How many attempts each endpoint gets at once. Every delivery in hand runs in a task of its
//! own, so a slow endpoint holds up only its own deliveries: at most `concurrency` attempts to
//! it run at once, and a bounded number wait for a turn, each for [`SLOT_WAIT`] at most. What
//! finds the queue full, or waits in vain, goes back to the stream for about as long as the
//! queue ahead of it takes (the endpoint's average answer time), instead of holding the
//! worker's capacity for other endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Deliveries that may wait for a turn, per attempt slot.
pub const QUEUE_PER_SLOT: usize = 16;
/// The longest a delivery waits for a turn in the worker; then it goes back to the stream.
pub const SLOT_WAIT: Duration = Duration::from_secs(10);
/// Shortest and longest wait of a delivery sent back because its endpoint's queue was full.
const MIN_BACK_OFF: Duration = Duration::from_millis(50);
const MAX_BACK_OFF: Duration = Duration::from_secs(60);

/// Endpoints whose average answer time is remembered while they have nothing in hand.
const REMEMBERED: usize = 10_000;
/// What an endpoint not heard from yet is assumed to take per attempt.
const FIRST_GUESS: Duration = Duration::from_millis(100);

pub struct Limiter {
    concurrency: usize,
    endpoints: Mutex<Endpoints>,
}

#[derive(Default)]
struct Endpoints {
    /// Those with deliveries in hand.
    busy: HashMap<Uuid, Endpoint>,
    /// Moving averages of the attempts' durations (seconds), kept across idle spells so a
    /// burst to a known endpoint is paced by what it really takes.
    averages: HashMap<Uuid, f64>,
}

struct Endpoint {
    slots: Arc<Semaphore>,
    /// Deliveries in hand: running or waiting.
    in_hand: usize,
    /// Moving average of the attempts' durations, in seconds.
    average: f64,
}

/// A turn of one delivery: held while it waits and runs.
pub struct Turn<'a> {
    limiter: &'a Limiter,
    endpoint: Uuid,
    slots: Arc<Semaphore>,
}

impl Limiter {
    pub fn new(concurrency: usize) -> Self {
        Limiter {
            concurrency: concurrency.max(1),
            endpoints: Mutex::new(Endpoints::default()),
        }
    }

    /// A place in `endpoint`'s queue, or how long to wait before asking again when it is full.
    pub fn enter(&self, endpoint: Uuid) -> Result<Turn<'_>, Duration> {
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Endpoints { busy, averages } = &mut *endpoints;
        let state = busy.entry(endpoint).or_insert_with(|| Endpoint {
            slots: Arc::new(Semaphore::new(self.concurrency)),
            in_hand: 0,
            average: averages
                .get(&endpoint)
                .copied()
                .unwrap_or(FIRST_GUESS.as_secs_f64()),
        });
        if state.in_hand >= self.concurrency * (1 + QUEUE_PER_SLOT) {
            return Err(self.back_off(state));
        }
        state.in_hand += 1;
        Ok(Turn {
            limiter: self,
            endpoint,
            slots: Arc::clone(&state.slots),
        })
    }

    /// About how long the queue ahead takes to drain.
    fn back_off(&self, state: &Endpoint) -> Duration {
        let rounds = state.in_hand as f64 / self.concurrency as f64;
        Duration::from_secs_f64(state.average * rounds).clamp(MIN_BACK_OFF, MAX_BACK_OFF)
    }

    /// Endpoints with deliveries in hand.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .busy
            .len()
    }
}

impl Turn<'_> {
    /// Waits for one of the endpoint's attempt slots, [`SLOT_WAIT`] at most; `Err` says how
    /// long to wait before asking again.
    pub async fn slot(&self) -> Result<OwnedSemaphorePermit, Duration> {
        match tokio::time::timeout(SLOT_WAIT, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                let endpoints = self
                    .limiter
                    .endpoints
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                Err(endpoints
                    .busy
                    .get(&self.endpoint)
                    .map_or(MIN_BACK_OFF, |state| self.limiter.back_off(state)))
            }
        }
    }

    /// Counts an attempt's duration into the endpoint's average.
    pub fn took(&self, duration: Duration) {
        let mut endpoints = self
            .limiter
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = endpoints.busy.get_mut(&self.endpoint) {
            state.average = 0.8 * state.average + 0.2 * duration.as_secs_f64();
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut endpoints = self
            .limiter
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Endpoints { busy, averages } = &mut *endpoints;
        if let Some(state) = busy.get_mut(&self.endpoint) {
            state.in_hand = state.in_hand.saturating_sub(1);
            // An endpoint with nothing in hand leaves the busy map (which so holds at most the
            // endpoints with deliveries in hand); its average stays, within a bound.
            if state.in_hand == 0 {
                let average = state.average;
                busy.remove(&self.endpoint);
                if averages.len() >= REMEMBERED {
                    averages.clear();
                }
                averages.insert(self.endpoint, average);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_endpoint_sends_deliveries_back_and_leaves_others_alone() {
        let limiter = Limiter::new(2);
        let (slow, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let turns: Vec<_> = (0..34)
            .map(|_| limiter.enter(slow).expect("room"))
            .collect();
        for turn in &turns {
            turn.took(Duration::from_secs(10));
        }
        let wait = limiter.enter(slow).err().expect("full");
        assert!(wait >= Duration::from_secs(10), "{wait:?}");
        let turn = limiter.enter(other).expect("another endpoint has room");
        assert!(turn.slot().await.is_ok());
        drop(turn);
        drop(turns);
        assert_eq!(limiter.tracked(), 0, "idle endpoints are forgotten");
    }

    #[tokio::test]
    async fn a_fast_endpoint_is_asked_again_soon() {
        let limiter = Limiter::new(1);
        let endpoint = Uuid::from_u128(1);
        let turns: Vec<_> = (0..17)
            .map(|_| limiter.enter(endpoint).expect("room"))
            .collect();
        for _ in 0..30 {
            turns[0].took(Duration::from_millis(2));
        }
        let wait = limiter.enter(endpoint).err().expect("full");
        assert!(wait < Duration::from_millis(100), "{wait:?}");
    }
}
