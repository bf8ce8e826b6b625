//! Shipments and returns on the order event streams (Server-Sent Events), heard live and
//! replayed with `Last-Event-ID` in one sequence with the status changes, and on the bus.

use crate::helpers::{SoldShop, Sse, entry_id, open};
use eventsource_stream::Event;
use futures::StreamExt;

/// The next event of `kind`, passing the status changes (and a resumed stream's opening) before
/// it.
async fn next_of(sse: &mut Sse, kind: &str) -> (Event, serde_json::Value) {
    loop {
        let event = sse.next().await;
        if event.event == kind {
            let data = serde_json::from_str(&event.data).expect("JSON data");
            return (event, data);
        }
        assert!(
            matches!(event.event.as_str(), "status_changed" | "order"),
            "{event:?}"
        );
    }
}

#[tokio::test]
async fn shipments_and_returns_are_heard_live_and_replayed_after_a_disconnection() {
    let sold = SoldShop::open().await;
    let path = format!("/api/v1/orders/{}/events", sold.order);
    let mut live = open(&sold.address, &sold.customer, &path, None).await;
    let (opening, _) = live.next_of("order").await;
    let mut bus = sold
        .psp
        .client
        .subscribe(format!(
            "{}orders.evt.fulfilment_changed",
            sold.psp.subject_prefix
        ))
        .await
        .unwrap();

    let (_, fulfilment) = sold.shipped(&[(sold.mug, 3), (sold.plate, 2)]).await;
    let (shipped, change) = next_of(&mut live, "fulfilment_changed").await;
    assert_eq!(change["fulfilment_id"], fulfilment.as_str());
    assert_eq!(change["status"], "SHIPPED");
    assert_eq!(
        change["actor"], "staff",
        "a customer sees staff, not an account id"
    );
    assert!(entry_id(&shipped) > entry_id(&opening));
    let published = bus.next().await.expect("a fulfilment event on the bus");
    let envelope: serde_json::Value = serde_json::from_slice(&published.payload).unwrap();
    assert_eq!(envelope["data"]["fulfilment"]["id"], fulfilment.as_str());
    assert_eq!(envelope["data"]["order_status"], "SHIPPED");
    sold.deliver(&fulfilment).await;
    let (delivered, _) = next_of(&mut live, "fulfilment_changed").await;
    // DELIVERED is final: with nothing pending, the stream ends.
    while live.next_or_end().await.is_some() {}

    let asked = sold.returning(&sold.customer, &[(sold.mug, 1)]).await;
    let mut resumed = open(
        &sold.address,
        &sold.customer,
        &path,
        Some(&entry_id(&opening).to_string()),
    )
    .await;
    let mut replayed = Vec::new();
    for kind in ["fulfilment_changed", "fulfilment_changed", "return_changed"] {
        let (event, _) = next_of(&mut resumed, kind).await;
        replayed.push(entry_id(&event));
    }
    assert_eq!(
        &replayed[..2],
        [entry_id(&shipped), entry_id(&delivered)],
        "replayed in order, with the ids heard live"
    );
    let res = sold
        .step(
            &sold.admin,
            &format!("/returns/{asked}/reject"),
            serde_json::json!({"reason": "used"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (rejected, change) = next_of(&mut resumed, "return_changed").await;
    assert_eq!(change["return_id"], asked.as_str());
    assert_eq!(change["status"], "REJECTED");
    assert_eq!(change["reason"], "used");
    assert!(entry_id(&rejected) > replayed[2]);
    assert!(
        resumed.next_or_end().await.is_none(),
        "nothing pending any more: the stream ends"
    );
}
