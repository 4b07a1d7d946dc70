use std::sync::Arc;

use spareplan::catalog::CodingRule;
use spareplan::db::Db;
use spareplan::interchange;
use spareplan::stock::{self, Applied, Movement, MovementKind, StockError};
use spareplan::units::Qty;
use spareplan::{sql_fetch_all, sql_fetch_optional};

use crate::support::{fresh_db, tiny};

async fn ids(db: &Db, part: &str, location: &str) -> (i64, i64) {
    let mut conn = db.acquire().await.expect("conn");
    let row = sql_fetch_optional!(
        (i64, i64),
        conn.conn(),
        "select p.id, l.id from parts p, locations l where p.code = $1 and l.code = $2",
        part,
        location
    )
    .expect("query");
    row.expect("part and location exist")
}

fn movement(kind: MovementKind, part_id: i64, location_id: i64, qty: i64, key: String) -> Movement {
    Movement {
        kind,
        part_id,
        location_id,
        qty: Qty::new(qty).expect("positive"),
        idempotency_key: key,
        reference: None,
        reason: None,
        actor: "test".into(),
    }
}

/// 8 tasks × 500 appends on two parts at two locations: receipts and issues interleave, some
/// issues are refused for lack of stock; afterwards every balance equals its ledger sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_keep_every_balance_equal_to_its_ledger_sum() {
    let t = fresh_db().await;
    interchange::import_dir(&t.db, &tiny(), &CodingRule::default())
        .await
        .expect("tiny set");
    let pairs = Arc::new([
        ids(&t.db, "PT-MEC-000010", "S001").await,
        ids(&t.db, "PT-MEC-000010", "C01").await,
        ids(&t.db, "RR-OTH-000030", "S001").await,
        ids(&t.db, "RR-OTH-000030", "R-GD").await,
    ]);
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (db, pairs) = (t.db.clone(), pairs.clone());
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for i in 0..500 {
                let (part, location) = pairs[(task + i) % pairs.len()];
                // Issues outnumber receipts in volume so some of them must be refused.
                let (kind, qty) = if i % 3 == 0 {
                    (MovementKind::Receipt, 2)
                } else {
                    (MovementKind::Issue, 1 + i as i64 % 2)
                };
                let m = movement(kind, part, location, qty, format!("t{task}-{i}"));
                match stock::record(&db, &m).await {
                    Ok(Applied::Moved(b)) => assert!(b.on_hand >= 0),
                    Ok(Applied::Replayed) => panic!("fresh key replayed"),
                    Err(StockError::WouldGoNegative { .. }) => refused += 1,
                    Err(e) => panic!("append failed: {e}"),
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for task in tasks {
        refused += task.await.expect("task");
    }
    assert!(refused > 0, "the mix must drive some balances to zero");
    for &(part, location) in pairs.iter() {
        let balance = stock::balance(&t.db, part, location)
            .await
            .expect("balance");
        let sum = stock::ledger_sum(&t.db, part, location).await.expect("sum");
        assert_eq!(
            balance, sum,
            "balance of part {part} at {location} is not its ledger sum"
        );
        assert!(balance.on_hand >= 0);
    }
    let mut conn = t.db.acquire().await.expect("conn");
    let bad = sql_fetch_all!(
        (i64, i64),
        conn.conn(),
        "select b.part_id, b.location_id from stock_balance b
         where b.on_hand <> (select coalesce(sum(d_on_hand), 0) from stock_ledger l
                             where l.part_id = b.part_id and l.location_id = b.location_id)"
    )
    .expect("query");
    assert!(bad.is_empty(), "balances off their ledger: {bad:?}");
}

#[tokio::test]
async fn an_issue_beyond_on_hand_is_refused_and_moves_nothing() {
    let t = fresh_db().await;
    interchange::import_dir(&t.db, &tiny(), &CodingRule::default())
        .await
        .expect("tiny set");
    let (part, location) = ids(&t.db, "PT-MEC-000010", "S001").await; // opening balance 4
    let err = stock::record(
        &t.db,
        &movement(MovementKind::Issue, part, location, 5, "too-many".into()),
    )
    .await
    .expect_err("5 > 4 on hand");
    assert!(
        err.to_string()
            .contains("issue of 5 refused: it would take on hand below zero")
            && err.to_string().contains("available 4"),
        "{err}"
    );
    assert_eq!(
        stock::balance(&t.db, part, location)
            .await
            .expect("balance")
            .on_hand,
        4
    );
    // The refused key was never written, so it can be used again for a valid movement.
    let ok = stock::record(
        &t.db,
        &movement(MovementKind::Issue, part, location, 4, "too-many".into()),
    )
    .await;
    assert!(
        matches!(ok, Ok(Applied::Moved(b)) if b.on_hand == 0),
        "{ok:?}"
    );
}

#[tokio::test]
async fn replaying_an_idempotency_key_moves_nothing_twice() {
    let t = fresh_db().await;
    interchange::import_dir(&t.db, &tiny(), &CodingRule::default())
        .await
        .expect("tiny set");
    let (part, location) = ids(&t.db, "PT-MEC-000010", "S001").await;
    let receipt = movement(
        MovementKind::Receipt,
        part,
        location,
        3,
        "po-77-line-1".into(),
    );
    let first = stock::record(&t.db, &receipt).await.expect("first");
    assert!(matches!(first, Applied::Moved(b) if b.on_hand == 7));
    for _ in 0..3 {
        assert_eq!(
            stock::record(&t.db, &receipt).await.expect("replay"),
            Applied::Replayed
        );
    }
    assert_eq!(
        stock::balance(&t.db, part, location)
            .await
            .expect("balance")
            .on_hand,
        7
    );
    let other = movement(
        MovementKind::Receipt,
        part,
        location,
        9,
        "po-77-line-1".into(),
    );
    assert!(matches!(
        stock::record(&t.db, &other).await,
        Err(StockError::KeyReused(_))
    ));
}

#[tokio::test]
async fn reimporting_opening_stock_is_refused() {
    let t = fresh_db().await;
    let rule = CodingRule::default();
    interchange::import_dir(&t.db, &tiny(), &rule)
        .await
        .expect("tiny set");
    let again = interchange::import_file(
        &t.db,
        interchange::Kind::Stock,
        &tiny().join("stock.csv"),
        &rule,
    )
    .await;
    let Err(interchange::ImportError::BadRows(rows)) = again else {
        panic!("must be refused: {again:?}")
    };
    assert_eq!(rows.len(), 4);
    assert!(
        rows[0]
            .to_string()
            .contains("opening balance 'opening:PT-HYD-000002@C01' already exists"),
        "{}",
        rows[0]
    );
    let (part, location) = ids(&t.db, "PT-HYD-000002", "C01").await;
    assert_eq!(
        stock::balance(&t.db, part, location)
            .await
            .expect("balance")
            .on_hand,
        6
    );
}
