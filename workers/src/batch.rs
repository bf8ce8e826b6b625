//! Handling many messages in one transaction, without letting one bad message fail the rest.

use crate::consumer::Failure;
use std::future::Future;

/// Runs `step` on all `items` in one go (one transaction). Should it fail for a reason in the
/// data (a permanent failure, such as a database constraint), it runs on each item alone, so
/// only the item at fault fails; a transient failure (the database unreachable) is every
/// item's. `step` gives one result per item, in order.
pub async fn all_or_each<T, R, F, Fut>(items: Vec<T>, step: F) -> Vec<Result<R, Failure>>
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<Result<R, Failure>>, Failure>>,
{
    if items.is_empty() {
        return Vec::new();
    }
    match step(items.clone()).await {
        Ok(results) => results,
        Err(Failure::Permanent(reason)) if items.len() > 1 => {
            tracing::warn!(
                reason,
                size = items.len(),
                "a batch failed on its data; handling its messages one by one"
            );
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                match step(vec![item]).await {
                    Ok(mut one) => results.append(&mut one),
                    Err(failure) => results.push(Err(failure)),
                }
            }
            results
        }
        Err(failure) => items.iter().map(|_| Err(failure.shared())).collect(),
    }
}

/// Checks every item with `check`, runs those that pass through [`all_or_each`], and gives one
/// result per item, in order: a failed check is that item's result.
pub async fn checked<I, A, R, C, F, Fut>(items: &[I], check: C, step: F) -> Vec<Result<R, Failure>>
where
    A: Clone,
    C: Fn(&I) -> Result<A, Failure>,
    F: Fn(Vec<A>) -> Fut,
    Fut: Future<Output = Result<Vec<Result<R, Failure>>, Failure>>,
{
    let mut results: Vec<Option<Result<R, Failure>>> = Vec::with_capacity(items.len());
    let mut passed = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match check(item) {
            Ok(checked) => {
                passed.push(checked);
                positions.push(i);
                results.push(None);
            }
            Err(failure) => results.push(Some(Err(failure))),
        }
    }
    for (i, result) in positions.into_iter().zip(all_or_each(passed, step).await) {
        results[i] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::transient("message left unhandled"))))
        .collect()
}
