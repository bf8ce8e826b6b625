//! Handling many messages in one transaction.
//!
//! A batch handler settles the common case of every message it received together with a
//! few set-based statements and one commit, then leaves whatever is unusual (a redelivery, an
//! order id seen twice, an unknown order) to the one-message handler, which knows every case.
//! If the batch transaction fails as a whole, each message is handled on its own, so one bad
//! message cannot fail the others.

use crate::consumer::{Delivery, Failure};
use std::future::Future;

/// The outcomes of a batch being settled: one slot per delivery, filled in any order.
pub struct Outcomes {
    slots: Vec<Option<Result<(), Failure>>>,
}

impl Outcomes {
    pub fn new(len: usize) -> Self {
        Outcomes {
            slots: (0..len).map(|_| None).collect(),
        }
    }

    pub fn set(&mut self, index: usize, outcome: Result<(), Failure>) {
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(outcome);
        }
    }

    /// Runs the steps (each the rest of one delivery's handling, by index) concurrently, each
    /// in the trace of its delivery, and records their outcomes.
    pub async fn settle_each<Fut>(
        &mut self,
        deliveries: &[Delivery],
        steps: impl IntoIterator<Item = (usize, Fut)>,
    ) where
        Fut: Future<Output = Result<(), Failure>>,
    {
        let done = futures::future::join_all(steps.into_iter().map(|(i, step)| {
            let trace = deliveries.get(i).map(|d| d.trace);
            async move {
                let outcome = match trace {
                    Some(trace) => trace.scope(step).await,
                    None => step.await,
                };
                (i, outcome)
            }
        }))
        .await;
        for (i, outcome) in done {
            self.set(i, outcome);
        }
    }

    /// Gives the deliveries at `to` the outcome of the one at `from` (copies of one message).
    pub fn copy(&mut self, from: usize, to: &[usize]) {
        let Some(Some(outcome)) = self.slots.get(from) else {
            return;
        };
        let copied: Vec<Result<(), Failure>> = to
            .iter()
            .map(|_| outcome.as_ref().map(|_| ()).map_err(Failure::duplicate))
            .collect();
        for (&i, outcome) in to.iter().zip(copied) {
            self.set(i, outcome);
        }
    }

    /// Handles every delivery that has no outcome yet with `single`, concurrently, and returns
    /// all outcomes in the order of `deliveries`.
    pub async fn finish_with<F, Fut>(
        self,
        deliveries: &[Delivery],
        single: F,
    ) -> Vec<Result<(), Failure>>
    where
        F: Fn(Delivery) -> Fut,
        Fut: Future<Output = Result<(), Failure>>,
    {
        let open: Vec<Delivery> = self
            .slots
            .iter()
            .zip(deliveries)
            .filter(|(slot, _)| slot.is_none())
            .map(|(_, delivery)| delivery.clone())
            .collect();
        let mut rest = futures::future::join_all(open.into_iter().map(|delivery| {
            let trace = delivery.trace;
            trace.scope(single(delivery))
        }))
        .await
        .into_iter();
        self.slots
            .into_iter()
            .map(|slot| match slot {
                Some(outcome) => outcome,
                None => rest.next().unwrap_or_else(|| {
                    Err(Failure::Transient(anyhow::anyhow!(
                        "message left unhandled"
                    )))
                }),
            })
            .collect()
    }
}
