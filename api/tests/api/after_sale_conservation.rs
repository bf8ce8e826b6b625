//! A mix of shipments, cancellations of what is left, deliveries and returns over several paid
//! orders, chosen by a seeded generator, keeps stock and money conservation exact and every
//! line within its bounds.

use crate::helpers::{PaymentSystem, Shop, SoldShop, id_of, order_of};
use serde_json::{Value, json};

/// A small deterministic generator (xorshift), so a failing mix can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// Takes one random step on `order`, as staff or its customer; refusals are part of the mix.
async fn random_step(shop: &Shop, dice: &mut Dice, id: &str) {
    let order = shop.orders().read(&shop.admin, id).await;
    let items = order["items"].as_array().unwrap().clone();
    let line = &items[dice.roll(items.len() as u64) as usize];
    let product = line["product_id"].as_str().unwrap().to_owned();
    let quantity = 1 + dice.roll(2) as i64;
    let path = |rest: &str| format!("/api/v1/orders/{id}{rest}");
    let wait = [("prefer", "wait=10")];
    let lines = json!([{"product_id": product, "quantity": quantity}]);
    let res = match dice.roll(6) {
        0 | 1 => {
            let body = json!({"lines": lines, "carrier": "UPS", "tracking_number": "1Z"});
            shop.post_as(&shop.admin, &path("/fulfilments"), &body, &wait)
                .await
        }
        2 => {
            let undelivered = order["fulfilments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["status"] == "SHIPPED")
                .map(id_of);
            let Some(f) = undelivered else { return };
            shop.post_empty_as(
                &shop.admin,
                &path(&format!("/fulfilments/{f}/delivered")),
                &wait,
            )
            .await
        }
        3 => {
            let body = json!({"reason": "the rest is out of stock"});
            shop.post_as(&shop.admin, &path("/cancel-remaining"), &body, &wait)
                .await
        }
        4 => {
            let body = json!({"lines": lines, "reason": "changed my mind"});
            shop.post_as(&shop.customer, &path("/returns"), &body, &wait)
                .await
        }
        _ => {
            let open = order["returns"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["status"] == "REQUESTED")
                .map(id_of);
            let Some(r) = open else { return };
            let body = json!({"lines": [{"product_id": product, "restock": dice.roll(2) == 0}]});
            shop.post_as(
                &shop.admin,
                &path(&format!("/returns/{r}/receive")),
                &body,
                &wait,
            )
            .await
        }
    };
    let status = res.status().as_u16();
    assert!(
        matches!(status, 200 | 201 | 409),
        "{status}: {}",
        res.text().await.unwrap()
    );
}

#[tokio::test]
async fn a_random_mix_of_steps_after_the_sale_keeps_stock_and_money_exact() {
    let shop = Shop::open().await;
    let psp = PaymentSystem::connect(&shop).await;
    let mug = shop.products().create("Mug", 1250, 50).await;
    let plate = shop.products().create("Plate", 800, 50).await;
    let mut orders = Vec::new();
    for n in 0..3 {
        let placed = shop
            .orders()
            .place_body_settled(&shop.customer, &order_of(&[(mug, 3), (plate, 2)]))
            .await;
        let id = id_of(&placed);
        psp.pay(&id, 5350, &format!("psp-mix-{n}")).await;
        shop.order_in(&id, "PAID").await;
        orders.push(id);
    }
    let mut dice = Dice(0x2545_f491_4f6c_dd1d);

    for _ in 0..36 {
        let id = orders[dice.roll(orders.len() as u64) as usize].clone();
        random_step(&shop, &mut dice, &id).await;
    }
    shop.bus().quiescent().await;

    let report: Value = shop.payments().reconciliation(&shop.admin).await;
    assert_eq!(report["consistent"], true, "{report}");
    crate::reconciliation::assert_balances_match_history(&shop.state.db).await;
    for id in &orders {
        let order = shop.orders().read(&shop.admin, id).await;
        for product in [mug, plate] {
            let line = SoldShop::line(&order, product);
            let n = |f: &str| line[f].as_i64().unwrap();
            assert!(
                n("fulfilled_quantity") + n("cancelled_quantity") <= n("quantity"),
                "{line}"
            );
            assert!(n("returned_quantity") <= n("delivered_quantity"), "{line}");
        }
        let refunded: i64 = order["refunds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["amount"].as_i64().unwrap())
            .sum();
        assert!(refunded <= 5350, "never more refunded than paid: {order}");
    }
}
