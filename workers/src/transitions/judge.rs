//! Whether a transition applies to an order as it stands: a pure function of the order's
//! status, the statuses it has reached, and what is asked.

use common::domain::OrderStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The transition applies, from `from`.
    Transition { from: OrderStatus },
    /// The order reached the target before (the same command delivered again, possibly
    /// after the order moved on): nothing changes, the recorded event is published again.
    Again,
    /// The lifecycle, or the statuses the asker allowed, forbid it from `current`.
    Refused { current: OrderStatus },
    /// No such order.
    Missing,
}

/// `order` is the current status and every status reached so far, if the order exists.
pub fn judge(
    order: Option<(OrderStatus, &[OrderStatus])>,
    to: OrderStatus,
    allowed_from: Option<&[OrderStatus]>,
) -> Verdict {
    let Some((current, reached)) = order else {
        return Verdict::Missing;
    };
    // Each status is reached at most once (the lifecycle has no cycles), so having reached it
    // means this transition was made.
    if reached.contains(&to) {
        return Verdict::Again;
    }
    let allowed = allowed_from.is_none_or(|allowed| allowed.contains(&current));
    if current.can_become(to) && allowed {
        Verdict::Transition { from: current }
    } else {
        Verdict::Refused { current }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn a_transition_the_lifecycle_allows_is_made() {
        assert_eq!(
            judge(Some((Confirmed, &[Confirmed])), Paid, None),
            Verdict::Transition { from: Confirmed }
        );
    }

    #[test]
    fn a_transition_the_lifecycle_forbids_is_refused_naming_the_status() {
        assert_eq!(
            judge(Some((Confirmed, &[Confirmed])), Shipped, None),
            Verdict::Refused { current: Confirmed }
        );
    }

    #[test]
    fn a_cancel_allowed_only_before_payment_is_refused_once_the_order_is_paid() {
        let reached = [Confirmed, Paid];
        assert_eq!(
            judge(Some((Paid, &reached)), Cancelled, Some(&[Confirmed])),
            Verdict::Refused { current: Paid }
        );
        assert_eq!(
            judge(Some((Paid, &reached)), Cancelled, Some(&[Confirmed, Paid])),
            Verdict::Transition { from: Paid }
        );
    }

    #[test]
    fn a_transition_made_before_is_made_again_only_as_its_event() {
        let reached = [Confirmed, Paid, Shipped];
        assert_eq!(judge(Some((Shipped, &reached)), Paid, None), Verdict::Again);
        assert_eq!(
            judge(Some((Shipped, &reached)), Shipped, None),
            Verdict::Again
        );
    }

    #[test]
    fn an_unknown_order_is_missing() {
        assert_eq!(judge(None, Paid, None), Verdict::Missing);
    }
}
