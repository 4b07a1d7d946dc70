use chrono::NaiveDate;
use spareplan::catalog::{self, CodingRule, LookupError};
use spareplan::interchange;

use crate::support::{fresh_db, tiny};

fn day(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

#[tokio::test]
async fn a_superseded_code_resolves_to_its_successor_once_the_change_is_in_force() {
    let t = fresh_db().await;
    let rule = CodingRule::default();
    interchange::import_dir(&t.db, &tiny(), &rule)
        .await
        .expect("tiny set");
    let after = catalog::resolve_current(&t.db, &rule, "PT-HYD-000001", day("2025-06-01"))
        .await
        .expect("resolves");
    assert_eq!(after.code, "PT-HYD-000002");
    let before = catalog::resolve_current(&t.db, &rule, "PT-HYD-000001", day("2025-05-31"))
        .await
        .expect("resolves");
    assert_eq!(before.code, "PT-HYD-000001");
    let current = catalog::resolve_current(&t.db, &rule, "PT-MEC-000010", day("2026-01-01"))
        .await
        .expect("resolves");
    assert_eq!(current.code, "PT-MEC-000010");
}

#[tokio::test]
async fn codes_breaking_the_rule_or_unknown_are_told_apart() {
    let t = fresh_db().await;
    let rule = CodingRule::default();
    interchange::import_dir(&t.db, &tiny(), &rule)
        .await
        .expect("tiny set");
    let bad = catalog::resolve_current(&t.db, &rule, "PT-HYD-1", day("2026-01-01")).await;
    assert!(matches!(bad, Err(LookupError::BadCode(_))), "{bad:?}");
    let unknown = catalog::resolve_current(&t.db, &rule, "PT-HYD-999999", day("2026-01-01")).await;
    assert!(
        matches!(unknown, Err(LookupError::Unknown(_))),
        "{unknown:?}"
    );
}
