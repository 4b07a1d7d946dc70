use std::fmt::Write as _;

use spareplan::catalog::CodingRule;
use spareplan::interchange::{self, ImportError, Kind};

use crate::support::{cli, csv_content, fresh_db, repo_path, tiny};

#[tokio::test]
async fn a_network_imported_and_exported_comes_back_unchanged() {
    let t = fresh_db().await;
    let rule = CodingRule::default();
    interchange::import_dir(&t.db, &tiny(), &rule)
        .await
        .expect("tiny set imports");
    let out = tempfile::tempdir().expect("temp dir");
    interchange::export_dir(&t.db, out.path())
        .await
        .expect("export");
    for kind in Kind::IN_DEPENDENCY_ORDER {
        let name = kind.file_name();
        assert_eq!(
            csv_content(&out.path().join(name)),
            csv_content(&tiny().join(name)),
            "{name} differs after the round trip"
        );
    }
}

#[tokio::test]
async fn the_demo_data_set_makes_the_round_trip_unchanged() {
    let t = fresh_db().await;
    let demo = repo_path("data/demo");
    let (ok, _, err) = cli(
        &t.url,
        &["import", "--dir", demo.to_str().expect("utf-8 path")],
    );
    assert!(ok, "demo import failed: {err}");
    let out = tempfile::tempdir().expect("temp dir");
    interchange::export_dir(&t.db, out.path())
        .await
        .expect("export");
    for kind in Kind::IN_DEPENDENCY_ORDER {
        let name = kind.file_name();
        assert_eq!(
            csv_content(&out.path().join(name)),
            csv_content(&demo.join(name)),
            "{name} differs after the round trip"
        );
    }
}

/// 1,000 good fault lines on the tiny network with three bad ones among them.
fn faults_with_three_bad_rows() -> (String, [u64; 3]) {
    let mut text = String::from(
        "work_order,opened_on,serial,station_code,category,fault_level,part_code,qty,warranty\n",
    );
    let mut bad_lines = [0; 3];
    let mut line = 1;
    for i in 0..1_003 {
        line += 1;
        let row = match i {
            100 => {
                bad_lines[0] = line;
                "WO-X100,2025-02-01,SN9999,S001,hydraulic,A1,PT-HYD-000002,1,false".to_owned()
            }
            500 => {
                bad_lines[1] = line;
                "WO-X500,2025-02-30,SN0001,S001,hydraulic,A1,PT-HYD-000002,1,false".to_owned()
            }
            900 => {
                bad_lines[2] = line;
                "WO-X900,2025-03-01,SN0001,S001,mechanical,B1,PT-MEC-000010,-2,false".to_owned()
            }
            _ => format!(
                "WO-G{i:05},2025-03-{:02},SN0001,S001,mechanical,B1,PT-MEC-000010,1,false",
                1 + i % 28
            ),
        };
        let _ = writeln!(text, "{row}");
    }
    (text, bad_lines)
}

#[tokio::test]
async fn three_bad_rows_among_a_thousand_are_all_reported_and_nothing_is_written() {
    let t = fresh_db().await;
    interchange::import_dir(&t.db, &tiny(), &CodingRule::default())
        .await
        .expect("tiny set");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("faults.csv");
    let (text, bad) = faults_with_three_bad_rows();
    std::fs::write(&file, text).expect("write faults");

    let (ok, _, err) = cli(&t.url, &["import", "faults", file.to_str().expect("utf-8")]);

    assert!(!ok, "import must fail");
    let f = file.display();
    assert!(
        err.contains(&format!(
            "{f}:{}: serial: equipment 'SN9999' does not exist",
            bad[0]
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{f}:{}: opened_on:", bad[1])),
        "{err}"
    );
    assert!(err.contains(&format!("{f}:{}: qty:", bad[2])), "{err}");
    assert!(err.contains("3 bad row(s); nothing was imported"), "{err}");
    let out = tempfile::tempdir().expect("temp dir");
    let written = interchange::export_file(&t.db, Kind::Faults, &out.path().join("f.csv"))
        .await
        .expect("export");
    assert_eq!(written, 5, "only the tiny set's own fault lines remain");
}

#[tokio::test]
async fn a_part_code_breaking_the_rule_is_refused_with_its_reason() {
    let t = fresh_db().await;
    let dir = tempfile::tempdir().expect("temp dir");
    for kind in [Kind::Locations, Kind::Suppliers] {
        std::fs::copy(
            tiny().join(kind.file_name()),
            dir.path().join(kind.file_name()),
        )
        .expect("copy");
    }
    std::fs::write(
        dir.path().join("parts.csv"),
        "code,name,uom,product_line,criticality,wear_part,volume_l,weight_kg,supplier_code,lead_time_days,moq,pack_size,replaced_by,replaced_on\n\
         PT-HYD-000001,泵,pcs,PT,A,false,1,1,SUP1,10,1,1,,\n\
         PT-XYZ-000002,阀,pcs,PT,A,false,1,1,SUP1,10,1,1,,\n\
         PT-HYD-000003,阀,pcs,PT,D,false,1,1,NOPE,10,1,0,,\n",
    )
    .expect("write parts");
    let Err(ImportError::BadRows(rows)) =
        interchange::import_dir(&t.db, dir.path(), &CodingRule::default()).await
    else {
        panic!("bad parts must be refused");
    };
    let messages: Vec<String> = rows.iter().map(ToString::to_string).collect();
    assert!(messages.iter().any(|m| m.ends_with("parts.csv:3: code: part code 'PT-XYZ-000002': segment system 'XYZ' is not one of ELE, MEC, HYD, OTH")), "{messages:#?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("parts.csv:4: criticality:")),
        "{messages:#?}"
    );
    let written = interchange::export_file(&t.db, Kind::Locations, &dir.path().join("out.csv"))
        .await
        .expect("export");
    assert_eq!(
        written, 0,
        "the whole set is rolled back, locations included"
    );
}

#[tokio::test]
async fn bad_references_headers_and_duplicates_name_their_row_and_column() {
    let t = fresh_db().await;
    let rule = CodingRule::default();
    interchange::import_dir(&t.db, &tiny(), &rule)
        .await
        .expect("tiny set");
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(Kind, &str, &str); 6] = [
        (Kind::Lanes, "from_code,to_code,lead_time_days,cost_per_unit,currency\nC01,S404,1,1.00,CNY\n", "2: to_code: location 'S404' does not exist"),
        (Kind::Lanes, "from_code,to_code,lead_time_days,cost_per_unit,currency,extra\nC01,S001,1,1.00,CNY,x\n", "1: (header): columns must be exactly"),
        (Kind::Prices, "part_code,kind,amount,currency,effective_from\nPT-HYD-000002,cost,1.234,CNY,2026-01-01\n", "2: amount:"),
        (Kind::Equipment, "serial,model,product_line,station_code,delivered_on,warranty_until\nSN0001,SY5419,PT,S001,2024-01-01,2025-01-01\n", "2: serial: equipment serial 'SN0001' already exists"),
        (Kind::Credit, "station_code,limit,currency\nR-NW,100.00,CNY\n", "2: station_code: 'R-NW' is a regional location, not a station"),
        (Kind::Faults, "work_order,opened_on,serial,station_code,category,fault_level,part_code,qty,warranty\nWO-0001,2024-06-03,SN0001,S001,hydraulic,A1,PT-HYD-000001,1,true\n", "2: part_code: work order 'WO-0001' already lists part"),
    ];
    for (i, (kind, text, expected)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("case{i}.csv"));
        std::fs::write(&file, text).expect("write case");
        let outcome = interchange::import_file(&t.db, kind, &file, &rule).await;
        let Err(ImportError::BadRows(rows)) = outcome else {
            panic!("case {i} ({kind}) must be refused, got {outcome:?}");
        };
        let all = rows
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let want = format!("{}:{expected}", file.display());
        assert!(all.contains(&want), "case {i}: want `{want}` in\n{all}");
    }
}
