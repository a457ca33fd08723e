//! Insights end to end, on the CDNOW sample of the BG/NBD paper: imported into an empty
//! deployment's shop, fitted as of 1997-09-30, and every customer's insights read back
//! through GraphQL (`customerBySourceKey(source: SHOP, key: "00004")`) and compared with
//! the golden files within the reference README's tolerances.

use std::collections::BTreeMap;

use c360::auth::Role;
use c360::insights::import::{self, Format};
use c360::insights::refresh;
use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, codes, statements};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/cdnow/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The rows of a golden CSV, by its header's names.
fn golden(name: &str) -> Vec<BTreeMap<String, String>> {
    let text = fixture(name);
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().expect("header").split(',').map(str::to_owned).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_owned)).collect()).collect()
}

fn num(row: &BTreeMap<String, String>, column: &str) -> f64 {
    row[column].parse().unwrap_or_else(|_| panic!("{column}: {}", row[column]))
}

fn close(found: &Value, expected: f64, relative: f64, what: &str) {
    let found = found.as_f64().unwrap_or_else(|| panic!("{what}: {found}"));
    assert!((found - expected).abs() <= relative * expected.abs().max(1e-12), "{what}: {found} vs {expected}");
}

const INSIGHTS: &str =
    "insights { asOf rfm { recency frequency monetary score segment daysSinceLastPurchase purchaseDays }
    lifecycleStage probabilityAlive churnRisk e12: expectedPurchases(days: 84) e39: expectedPurchases(days: 273)
    e52: expectedPurchases(days: 364) predictedClv historicalValue valueTier }";

/// The RFM segment's name as GraphQL spells it: "Can't Lose Them" → CANT_LOSE_THEM.
fn segment_enum(name: &str) -> String {
    name.replace('\'', "").replace(' ', "_").to_uppercase()
}

fn analyst_token(app: &TestApp) -> String {
    app.token(Role::Analyst, None, None)
}

async fn cdnow(layout: Layout) {
    // k = 140: of the CDNOW segments only At Risk (137) is smaller, so the next smallest
    // (Need Attention, 147) is withheld with it.
    // Customers are read 200 to a request, with four aliases each: a bulk client, for
    // which an operator raises the operation limits.
    let app = TestApp::spawn_with(layout, 0, |c| {
        c.insights.min_group_size = 140;
        c.graphql.max_root_fields = 200;
        c.graphql.max_aliases = 800;
    })
    .await;
    let purchases = import::parse(Format::Cdnow, &fixture("CDNOW_sample.txt")).expect("CDNOW");
    let imported = import::import(&app.sources, &purchases, "USD").await.expect("import");
    assert_eq!((imported.accounts, imported.orders), (2357, 6919));
    app.resolver.run().await.expect("resolve");

    // Before the first fit, insight fields say so.
    let query = format!(r#"{{ customerBySourceKey(source: SHOP, key: "00004") {{ {INSIGHTS} }} }}"#);
    assert_eq!(codes(&app.query(&query, json!({})).await), ["MODEL_NOT_READY"]);

    let as_of = NaiveDate::from_ymd_opt(1997, 9, 30).expect("date");
    let report = refresh::refresh(&app.sources, as_of).await.expect("fit");
    assert_eq!((report.customers, report.repeat_customers), (2357, 946));
    let reference = [0.24259454342, 4.41360271608, 0.79292183335, 2.42590572872];
    let fitted = report.purchase_model.expect("BG/NBD fitted");
    for (found, expected) in fitted.iter().zip(reference) {
        assert!((found - expected).abs() <= 1e-4 * expected, "{fitted:?}");
    }
    assert!(report.log_likelihood.expect("likelihood") >= -9582.429206673936 - 1e-6, "{report:?}");
    let expected_segments = [
        ("Champions", 539),
        ("Loyal Customers", 183),
        ("Potential Loyalist", 283),
        ("Need Attention", 147),
        ("About To Sleep", 268),
        ("At Risk", 137),
        ("Can't Lose Them", 189),
        ("Hibernating", 339),
        ("Lost", 272),
    ];
    assert_eq!(report.segments, BTreeMap::from(expected_segments), "{report:?}");

    // Every customer, through GraphQL, by the CDNOW id as the file writes it.
    let btyd = golden("cdnow_sample_btyd.csv");
    let rfm = golden("cdnow_sample_rfm.csv");
    assert_eq!(btyd.len(), 2357);
    for (chunk, rfm_chunk) in btyd.chunks(200).zip(rfm.chunks(200)) {
        let fields: String = chunk
            .iter()
            .enumerate()
            .map(|(i, row)| {
                format!(r#"c{i}: customerBySourceKey(source: SHOP, key: "{}") {{ {INSIGHTS} }} "#, row["master_id"])
            })
            .collect();
        let data = app.data(&format!("{{ {fields} }}"), json!({})).await;
        for (i, (b, r)) in chunk.iter().zip(rfm_chunk).enumerate() {
            assert_eq!(b["master_id"], r["master_id"]);
            let got = &data[format!("c{i}")]["insights"];
            let who = format!("customer {}", b["master_id"]);
            assert_eq!(got["asOf"], "1997-09-30");
            // RFM: exact.
            let scores =
                [&got["rfm"]["recency"], &got["rfm"]["frequency"], &got["rfm"]["monetary"], &got["rfm"]["score"]];
            let expected = [num(r, "r_score"), num(r, "f_score"), num(r, "m_score"), num(r, "rfm_code")];
            let scores: Vec<f64> = scores.iter().map(|v| v.as_f64().expect("score")).collect();
            assert_eq!(scores, expected, "{who}");
            assert_eq!(got["rfm"]["segment"], segment_enum(&r["rfm_segment"]), "{who}");
            assert_eq!(got["rfm"]["daysSinceLastPurchase"].as_f64(), Some(num(r, "recency_days")), "{who}");
            assert_eq!(got["rfm"]["purchaseDays"].as_f64(), Some(num(r, "frequency_count")), "{who}");
            close(&got["historicalValue"], num(r, "monetary_total_cents") / 100.0, 1e-12, &who);
            // The models, with our own fit: P(alive) to 1e-4 absolute, the rest to 1e-3 relative.
            let p_alive = got["probabilityAlive"].as_f64().expect("P(alive)");
            assert!((p_alive - num(b, "p_alive")).abs() <= 1e-4, "{who}: {p_alive}");
            close(&got["churnRisk"], 1.0 - p_alive, 1e-12, &who);
            close(&got["e12"], num(b, "exp_purchases_12w"), 1e-3, &who);
            close(&got["e39"], num(b, "exp_purchases_39w"), 1e-3, &who);
            close(&got["e52"], num(b, "exp_purchases_52w"), 1e-3, &who);
            close(&got["predictedClv"], num(b, "clv_12m"), 1e-3, &who);
        }
    }

    // Stages and tiers cover everyone, and the tiers follow the 80/20 rule.
    assert_eq!(report.lifecycle.values().sum::<usize>(), 2357);
    let top = report.value_tiers["TOP"];
    assert!(top > 0 && top < 2357 / 2, "{report:?}");

    // Analysts see insights but not who the customer is; frontends with the scope too;
    // a token without `insights:read` does not see the field at all.
    let analyst = analyst_token(&app);
    let response = app.query_as(&analyst, r#"{ customerBySourceKey(source: SHOP, key: "4") { id } }"#, json!({})).await;
    assert_eq!(codes(&response), ["GRAPHQL_VALIDATION_FAILED"], "source lookups are internal: {response}");
    let page = app
        .query_as(
            &analyst,
            "{ customers(first: 3) { edges { node { insights { valueTier lifecycleStage } } } } }",
            json!({}),
        )
        .await;
    assert!(page.get("errors").is_none(), "{page}");
    assert_eq!(page["data"]["customers"]["edges"].as_array().map(Vec::len), Some(3));
    let no_scope = app.token(Role::Agent, Some("customers:read"), None);
    let response = app
        .query_as(&no_scope, "{ customers(first: 1) { edges { node { insights { valueTier } } } } }", json!({}))
        .await;
    assert_eq!(codes(&response), ["GRAPHQL_VALIDATION_FAILED"], "{response}");

    // Aggregates: admins see every segment as the golden file counts them.
    let segments = "{ segments { segment customers revenueShare averagePredictedClv averageChurnRisk suppressed } }";
    let all = app.data(segments, json!({})).await["segments"].as_array().expect("segments").clone();
    assert_eq!(all.len(), 11);
    let count = |name: &str| all.iter().find(|s| s["segment"] == segment_enum(name)).expect(name)["customers"].clone();
    for (name, n) in expected_segments {
        assert_eq!(count(name), n, "{name}");
    }
    assert_eq!((count("New Customers"), count("Promising")), (json!(0), json!(0)));
    let shares: f64 = all.iter().map(|s| s["revenueShare"].as_f64().expect("share")).sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");
    assert!(all.iter().all(|s| s["suppressed"] == false));
    // Analysts do not know who the customers are: groups under k are withheld, and a
    // lone one takes the next smallest with it.
    let seen = app.query_as(&analyst_token(&app), segments, json!({})).await;
    let withheld: Vec<&str> = seen["data"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter(|s| s["suppressed"] == true)
        .inspect(|s| assert!(s["customers"].is_null() && s["revenueShare"].is_null(), "{s}"))
        .map(|s| s["segment"].as_str().expect("name"))
        .collect();
    assert_eq!(withheld, ["NEED_ATTENTION", "AT_RISK"]);
    let stages = app
        .query_as(&analyst_token(&app), "{ lifecycleDistribution { stage customers share suppressed } }", json!({}))
        .await;
    for stage in stages["data"]["lifecycleDistribution"].as_array().expect("stages") {
        let n = stage["customers"].as_i64();
        assert!(stage["suppressed"] == true || n == Some(0) || n >= Some(140), "{stage}");
    }
    let total: i64 = app.data("{ lifecycleDistribution { customers } }", json!({})).await["lifecycleDistribution"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["customers"].as_i64().expect("count"))
        .sum();
    assert_eq!(total, 2357);

    // The Pareto curve climbs to everyone and all revenue; for analysts each step covers
    // at least k customers (2357 / 140: 16 points at most).
    let curve = "{ paretoCurve(points: 100) { customerShare customers revenueShare } }";
    let points = app.data(curve, json!({})).await["paretoCurve"].as_array().expect("curve").clone();
    assert_eq!(points.len(), 100);
    let last = &points[99];
    assert_eq!((last["customerShare"].as_f64(), last["customers"].as_i64()), (Some(1.0), Some(2357)));
    close(&last["revenueShare"], 1.0, 1e-12, "all revenue");
    assert!(points.windows(2).all(|w| w[0]["revenueShare"].as_f64() <= w[1]["revenueShare"].as_f64()));
    let top_fifth = points[19]["revenueShare"].as_f64().expect("share");
    assert!(top_fifth > 0.5, "the top 20% of CDNOW customers bring most of the revenue: {top_fifth}");
    let capped = app.query_as(&analyst_token(&app), curve, json!({})).await;
    let capped = capped["data"]["paretoCurve"].as_array().expect("curve").clone();
    assert_eq!(capped.len(), 16);
    assert!(capped.windows(2).all(|w| w[1]["customers"].as_i64() >= w[0]["customers"].as_i64().map(|n| n + 140)));
    // Whatever `points` an analyst asks for, every point is on one grid: no two points of
    // any two answers differ by fewer than k customers (neighbouring curves, 21 and 22
    // points, once differed by one customer, whose share of revenue that gave away).
    let mut released = std::collections::BTreeSet::from([0]);
    for points in 1..=100 {
        let q = format!("{{ paretoCurve(points: {points}) {{ customers }} }}");
        let answer = app.query_as(&analyst_token(&app), &q, json!({})).await;
        let curve = answer["data"]["paretoCurve"].as_array().cloned().unwrap_or_default();
        assert_eq!(curve.len(), points.min(16), "{answer}");
        released.extend(curve.iter().filter_map(|p| p["customers"].as_i64()));
    }
    let released: Vec<i64> = released.into_iter().collect();
    assert!(released.windows(2).all(|w| w[1] - w[0] >= 140), "{released:?}");
    assert_eq!(released.last(), Some(&2357), "the last step ends at everyone");

    // A segment withheld from analysts cannot be listed by filter either; a big one can.
    let segments = app.data("{ segments { segment customers } }", json!({})).await;
    let segments = segments["segments"].as_array().cloned().unwrap_or_default();
    let small = |s: &&Value| s["customers"].as_i64().is_some_and(|n| (1..140).contains(&n));
    let withheld = segments.iter().find(small).expect("a segment of fewer than k customers");
    let by_segment =
        "query($s: RfmSegment) { customers(first: 5, filter: {rfmSegment: $s}) { edges { node { id } } } }";
    let refused = app.query_as(&analyst_token(&app), by_segment, json!({ "s": withheld["segment"] })).await;
    assert_eq!(codes(&refused), ["GROUP_TOO_SMALL"], "{refused:#}");
    assert!(refused["data"]["customers"].is_null(), "{refused:#}");
    let listed = app.query(by_segment, json!({ "s": withheld["segment"] })).await;
    assert!(listed.get("errors").is_none(), "admins see who customers are: {listed:#}");
    let champions = app.query_as(&analyst_token(&app), by_segment, json!({ "s": "CHAMPIONS" })).await;
    assert!(champions.get("errors").is_none(), "{champions:#}");

    // Lists filtered by insights, paged, counted, and in as many statements as a list
    // without a filter.
    let list = "query($f: CustomerFilter, $after: String) { customers(first: 100, after: $after, filter: $f) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id insights { rfm { segment } churnRisk lifecycleStage valueTier } } } } }";
    let unfiltered = app.query(list, json!({})).await;
    let filtered = app.query(list, json!({ "f": { "rfmSegment": "CHAMPIONS" } })).await;
    assert_eq!(filtered["data"]["customers"]["totalCount"], 539);
    assert_eq!(statements(&filtered), statements(&unfiltered), "{filtered:#}");
    let mut champions = std::collections::BTreeSet::new();
    let mut after = Value::Null;
    loop {
        let page = app.data(list, json!({ "f": { "rfmSegment": "CHAMPIONS" }, "after": after })).await;
        for edge in page["customers"]["edges"].as_array().expect("edges") {
            assert_eq!(edge["node"]["insights"]["rfm"]["segment"], "CHAMPIONS");
            assert!(champions.insert(edge["node"]["id"].as_str().expect("id").to_owned()), "listed twice");
        }
        if page["customers"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["customers"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(champions.len(), 539);
    let risky = app.data(list, json!({ "f": { "minChurnRisk": 0.5 } })).await;
    for edge in risky["customers"]["edges"].as_array().expect("edges") {
        assert!(edge["node"]["insights"]["churnRisk"].as_f64() >= Some(0.5 - 1e-12), "{edge}");
    }
    let count = |r: &Value| r["customers"]["totalCount"].as_i64().expect("count");
    assert!(count(&risky) > 0, "{risky}");
    // Filters combine: the tiers of the risky add up to the risky.
    let mut by_tier = 0;
    for tier in ["TOP", "CORE", "TAIL"] {
        let page = app.data(list, json!({ "f": { "minChurnRisk": 0.5, "valueTier": tier } })).await;
        for edge in page["customers"]["edges"].as_array().expect("edges") {
            assert_eq!(edge["node"]["insights"]["valueTier"], tier);
        }
        by_tier += count(&page);
    }
    assert_eq!(by_tier, count(&risky));
    let top = app.data(list, json!({ "f": { "valueTier": "TOP" } })).await;
    assert_eq!(top["customers"]["totalCount"].as_u64(), Some(report.value_tiers["TOP"] as u64));
    let bad = app.query(list, json!({ "f": { "minChurnRisk": 1.5 } })).await;
    assert_eq!(codes(&bad), ["BAD_USER_INPUT"]);

    // Ranked lists page by keyset: every champion once, churn risk never rising.
    let ranked = "query($after: String) { customers(first: 100, after: $after, filter: { rfmSegment: CHAMPIONS },
        orderBy: { churnRisk: DESC }) { totalCount pageInfo { hasNextPage endCursor } edges { node { id insights { churnRisk } } } } }";
    let (mut risks, mut ids, mut after) = (Vec::new(), std::collections::BTreeSet::new(), Value::Null);
    loop {
        let page = app.data(ranked, json!({ "after": after })).await;
        assert_eq!(page["customers"]["totalCount"], 539);
        for edge in page["customers"]["edges"].as_array().expect("edges") {
            risks.push(edge["node"]["insights"]["churnRisk"].as_f64().expect("risk"));
            assert!(ids.insert(edge["node"]["id"].as_str().expect("id").to_owned()), "listed twice");
        }
        if page["customers"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["customers"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(ids.len(), 539);
    assert!(risks.windows(2).all(|w| w[0] >= w[1] - 1e-12), "churn risk descending");
    assert!(risks[0] > risks[538], "{} {}", risks[0], risks[538]);
    let top_clv = app
        .data(
            "{ customers(first: 1, orderBy: { predictedClv: DESC }) { edges { node { insights { predictedClv } } } } }",
            json!({}),
        )
        .await;
    let best = btyd.iter().map(|r| num(r, "clv_12m")).fold(f64::MIN, f64::max);
    close(&top_clv["customers"]["edges"][0]["node"]["insights"]["predictedClv"], best, 1e-3, "the highest CLV first");
    let both = app
        .query("{ customers(first: 1, orderBy: { predictedClv: DESC, churnRisk: ASC }) { totalCount } }", json!({}))
        .await;
    assert_eq!(codes(&both), ["BAD_USER_INPUT"]);
    let wrong = app.query(ranked, json!({ "after": unfiltered["data"]["customers"]["pageInfo"]["endCursor"] })).await;
    assert_eq!(codes(&wrong), ["INVALID_CURSOR"], "an unranked list's cursor does not page a ranked one");

    // The model is visible to whoever reads insights.
    let model = app
        .query_as(&analyst, "{ insightModel { asOf customers purchaseModel { r logLikelihood } } }", json!({}))
        .await;
    assert_eq!(model["data"]["insightModel"]["customers"], 2357, "{model}");
    close(&model["data"]["insightModel"]["purchaseModel"]["r"], 0.24259454342, 1e-4, "r");

    // Admins fit again on demand; the new model replaces the old, whose rows go.
    let refit = "mutation { refreshInsights(asOf: \"1997-09-30\") { id asOf fittedAt customers } }";
    assert_eq!(codes(&app.query_as(&analyst, refit, json!({})).await), ["FORBIDDEN"]);
    let before = app.data("{ insightModel { id } }", json!({})).await;
    let after = app.data(refit, json!({})).await;
    assert_eq!(after["refreshInsights"]["customers"], 2357);
    assert_ne!(after["refreshInsights"]["id"], before["insightModel"]["id"]);
    let served = app.data("{ insightModel { id } }", json!({})).await;
    assert_eq!(served["insightModel"]["id"], after["refreshInsights"]["id"], "served at once");
    let rows = app
        .sources
        .hub()
        .fetch_count(&Default::default(), "select count(*) as n from customer_insights", &[])
        .await
        .expect("count");
    assert_eq!(rows, 2357);

    // Incremental refreshes: nothing changed since the fit, nobody is scored again.
    let unchanged = refresh::update(&app.sources, as_of).await.expect("update").expect("a model to update");
    assert_eq!((unchanged.changed, unchanged.scored), (0, 0), "{unchanged:?}");
    // A new order of customer 00004 on the model's date, and a new customer.
    let read = |key: &str| {
        format!(
            r#"{{ customerBySourceKey(source: SHOP, key: "{key}") {{ id insights {{ asOf rfm {{ purchaseDays
               daysSinceLastPurchase }} historicalValue }} }} }}"#
        )
    };
    let before = app.data(&read("00004"), json!({})).await["customerBySourceKey"]["insights"].clone();
    let groups = "{ insightModel { customers updatedAt } segments { customers } }";
    let now = chrono::Utc::now();
    let shop = app.sources.shop();
    let day = c360::sources::midnight(as_of) + chrono::TimeDelta::hours(12);
    let order =
        "insert into orders (id, account_id, number, ordered_at, status, channel, currency, total_cents, updated_at)
                 values (?, ?, ?, ?, 'delivered', 'web', 'USD', ?, ?)";
    let account = "insert into accounts (id, is_guest, created_at, updated_at) values (?, ?, ?, ?)";
    let trace = Default::default();
    shop.execute(&trace, account, &[99_999i64.into(), true.into(), now.into(), now.into()]).await.expect("account");
    for (id, account) in [(9_000_001i64, 4i64), (9_000_002, 99_999)] {
        let args = [id.into(), account.into(), format!("N{id}").into(), day.into(), 2_500i64.into(), now.into()];
        shop.execute(&trace, order, &args).await.expect("order");
    }
    app.resolver.run().await.expect("resolve the new account");
    let changed_only =
        "mutation { refreshInsights(asOf: \"1997-09-30\", changedOnly: true) { id customers updatedAt } }";
    let updated = app.data(changed_only, json!({})).await;
    assert_eq!(updated["refreshInsights"]["id"], after["refreshInsights"]["id"], "the same model, updated");
    let changed = app.data(&read("00004"), json!({})).await["customerBySourceKey"]["insights"].clone();
    assert_eq!(changed["rfm"]["purchaseDays"].as_i64(), before["rfm"]["purchaseDays"].as_i64().map(|n| n + 1));
    assert_eq!((&changed["asOf"], &changed["rfm"]["daysSinceLastPurchase"]), (&json!("1997-09-30"), &json!(0)));
    close(&changed["historicalValue"], before["historicalValue"].as_f64().expect("value") + 25.0, 1e-9, "money");
    let newcomer = app.data(&read("99999"), json!({})).await["customerBySourceKey"]["insights"].clone();
    assert_eq!(newcomer["rfm"]["purchaseDays"], 1, "{newcomer}");
    // The population's figures follow: one customer more, in the model and its groups.
    let model = app.data(groups, json!({})).await;
    assert_eq!(model["insightModel"]["customers"], 2358, "{model}");
    assert!(model["insightModel"]["updatedAt"].is_string(), "{model}");
    let sum: i64 = model["segments"].as_array().expect("segments").iter().filter_map(|s| s["customers"].as_i64()).sum();
    assert_eq!(sum, 2358, "{model}");
    // Once read, the changes are not read again.
    let again = refresh::update(&app.sources, as_of).await.expect("update").expect("a model to update");
    assert_eq!(again.changed, 0, "{again:?}");
}

#[tokio::test]
async fn cdnow_on_sqlite() {
    cdnow(Layout::all(Backend::Sqlite)).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn cdnow_on_postgres() {
    cdnow(Layout::all(Backend::Postgres)).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn cdnow_on_mysql() {
    cdnow(Layout::all(Backend::Mysql)).await;
}

/// The demo data gets plausible insights: every stage and most segments occur.
#[tokio::test]
async fn the_demo_gets_insights() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 300).await;
    let report = refresh::refresh(&app.sources, crate::helpers::as_of()).await.expect("fit");
    assert!(report.customers > 200, "{report:?}");
    assert!(report.purchase_model.is_some() && report.spend_model.is_some(), "{report:?}");
    assert!(report.segments.len() >= 6, "{report:?}");
    let data = app
        .data("{ customers(first: 50) { edges { node { insights { lifecycleStage valueTier } } } } }", json!({}))
        .await;
    let stages: std::collections::BTreeSet<&str> = data["customers"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["insights"]["lifecycleStage"].as_str())
        .collect();
    assert!(stages.len() >= 2, "{stages:?}");

    // Satisfaction agrees with the helpdesk as the customer's service summary reads it
    // live, and the quadrant with the value tier; customers who had not bought get it
    // too (read now, in the tail tier), in one more statement for the whole page.
    let service = "query($f: CustomerFilter) { customers(first: 100, filter: $f) { totalCount edges { node {
        serviceSummary { ticketCount complaintCount averageCsat }
        insights { valueTier rfm { segment }
                   satisfaction { averageCsat complaintRate index tickets openComplaints quadrant } } } } } }";
    let response = app.query(service, json!({})).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let data = &response["data"];
    let mut judged = 0;
    let mut non_buyers = 0;
    for edge in data["customers"]["edges"].as_array().expect("edges") {
        let (live, scored) = (&edge["node"]["serviceSummary"], &edge["node"]["insights"]);
        let Some(satisfaction) = scored["satisfaction"].as_object() else { continue };
        assert_eq!(satisfaction["tickets"], live["ticketCount"], "{edge}");
        match live["averageCsat"].as_f64() {
            Some(csat) => close(&satisfaction["averageCsat"], csat, 1e-12, "CSAT"),
            None => assert!(satisfaction["averageCsat"].is_null() && satisfaction["index"].is_null(), "{edge}"),
        }
        let rate =
            live["complaintCount"].as_f64().expect("complaints") / live["ticketCount"].as_f64().expect("tickets");
        close(&satisfaction["complaintRate"], rate, 1e-12, "complaint rate");
        let Some(quadrant) = satisfaction["quadrant"].as_str() else { continue };
        judged += 1;
        if scored["rfm"].is_null() {
            non_buyers += 1;
            assert_eq!(scored["valueTier"], "TAIL", "{edge}");
        }
        let top = scored["valueTier"] == "TOP";
        let dissatisfied = satisfaction["openComplaints"].as_i64() > Some(0)
            || satisfaction["index"].as_f64() < Some(0.0) && !satisfaction["index"].is_null();
        let expected = match (top, dissatisfied) {
            (true, false) => "RETAIN",
            (true, true) => "WIN_BACK",
            (false, false) => "MAINTAIN",
            (false, true) => "DEPRIORITIZE",
        };
        assert_eq!(quadrant, expected, "{edge}");
    }
    assert!(judged > 10, "{judged} customers with a quadrant");
    assert!(non_buyers > 0, "customers who had not bought are judged too");
    // The live service summary and the non-buyers' satisfaction: one statement each.
    let (_, per_source) = statements(&response);
    assert_eq!(per_source["helpdesk"], 2, "batched: {per_source}");
    let win_back = app.data(service, json!({ "f": { "quadrant": "MAINTAIN" } })).await;
    let listed = win_back["customers"]["edges"].as_array().expect("edges");
    assert!(!listed.is_empty());
    assert!(listed.iter().all(|e| e["node"]["insights"]["satisfaction"]["quadrant"] == "MAINTAIN"));

    // Next best actions follow their rules, in batches: a page of 50 costs what a page
    // of 5 costs.
    let actions = "query($n: Int!) { customers(first: $n) { edges { node {
        insights { lifecycleStage valueTier satisfaction { openComplaints }
                   nextBestActions { kind sku productName reason } } } } } }";
    let (five, fifty) = (app.query(actions, json!({ "n": 5 })).await, app.query(actions, json!({ "n": 50 })).await);
    assert!(fifty.get("errors").is_none(), "{fifty:#}");
    assert_eq!(statements(&five), statements(&fifty));
    let mut kinds = std::collections::BTreeSet::new();
    for edge in fifty["data"]["customers"]["edges"].as_array().expect("edges") {
        let insights = &edge["node"]["insights"];
        let valuable = insights["valueTier"] == "TOP" || insights["valueTier"] == "CORE";
        let list = insights["nextBestActions"].as_array().expect("actions");
        assert!(list.len() <= 5);
        for action in list {
            let kind = action["kind"].as_str().expect("kind");
            kinds.insert(kind.to_owned());
            assert!(!action["reason"].as_str().expect("reason").is_empty());
            match kind {
                "SERVICE_RECOVERY" => {
                    assert!(valuable && insights["satisfaction"]["openComplaints"].as_i64() > Some(0), "{edge}")
                }
                "WIN_BACK" => assert!(valuable && insights["lifecycleStage"] == "DECLINE", "{edge}"),
                _ => assert!(action["sku"].is_string() && action["productName"].is_string(), "{edge}"),
            }
        }
    }
    assert!(kinds.contains("UP_SELL"), "{kinds:?}");

    // Data quality: what resolution found, the records no customer links to yet, and
    // contact data the resolver could not read.
    let quality = "{ dataQuality { customers mergedCustomers conflicts { kind count } sharedKeys { kind count }
        sources { source records unlinked invalidEmails invalidPhones } } customers { totalCount } }";
    let seen = app.query_as(&analyst_token(&app), quality, json!({})).await;
    assert!(seen.get("errors").is_none(), "{seen:#}");
    let report = &seen["data"]["dataQuality"];
    assert_eq!(report["customers"], seen["data"]["customers"]["totalCount"]);
    let sources = report["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 4);
    assert!(sources.iter().all(|s| s["records"].as_i64() > Some(0) && s["unlinked"] == 0), "{report}");
    assert!(report["conflicts"].as_array().is_some_and(|c| !c.is_empty()), "the demo has conflicts: {report}");
    let shop_quality = |r: &Value| {
        r["data"]["dataQuality"]["sources"].as_array().expect("sources").iter().find(|s| s["source"] == "SHOP").cloned()
    };
    let before = shop_quality(&seen).expect("the shop");
    let now = chrono::Utc::now();
    let account = "insert into accounts (id, email, phone, country, is_guest, created_at, updated_at)
                   values (?, ?, ?, ?, ?, ?, ?)";
    for (id, email, phone) in [
        (987_654_321i64, None, None),
        (987_654_322, Some("jane.doe@"), Some("12")),
        (987_654_323, Some("  "), Some("+49 151 2345 6789")),
    ] {
        let text = |v: Option<&str>| c360::sources::Arg::OptText(v.map(str::to_owned));
        app.sources
            .shop()
            .execute(
                &Default::default(),
                account,
                &[id.into(), text(email), text(phone), "DE".into(), true.into(), now.into(), now.into()],
            )
            .await
            .expect("a new account");
    }
    let after = app.query_as(&analyst_token(&app), quality, json!({})).await;
    assert_eq!(shop_quality(&after).map(|s| s["unlinked"].clone()), Some(json!(3)));
    app.resolver.run().await.expect("resolve");
    let resolved = shop_quality(&app.query_as(&analyst_token(&app), quality, json!({})).await).expect("the shop");
    assert_eq!(resolved["unlinked"], 0, "{resolved}");
    // One unreadable email and one unreadable phone; blank is missing, not invalid.
    assert_eq!(resolved["invalidEmails"].as_i64(), before["invalidEmails"].as_i64().map(|n| n + 1), "{resolved}");
    assert_eq!(resolved["invalidPhones"].as_i64(), before["invalidPhones"].as_i64().map(|n| n + 1), "{resolved}");

    // A partner with `insights:read` filters its own list only: consenting customers.
    let partner = app.token(Role::Partner, Some("customers:read insights:read"), Some("acme-insurance"));
    let list = "query($f: CustomerFilter) { customers(first: 100, filter: $f) { totalCount edges { node { id insights { lifecycleStage } } } } }";
    let all = app.query_as(&partner, list, json!({})).await;
    assert!(all["data"]["customers"]["totalCount"].as_u64() <= Some(100), "one page holds them all: {all}");
    let formation = app.query_as(&partner, list, json!({ "f": { "lifecycleStage": "FORMATION" } })).await;
    let ids = |r: &Value| -> std::collections::BTreeSet<String> {
        r["data"]["customers"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let expected: std::collections::BTreeSet<String> = all["data"]["customers"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["node"]["insights"]["lifecycleStage"] == "FORMATION")
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(!expected.is_empty(), "{all}");
    assert_eq!(ids(&formation), expected);
    assert_eq!(formation["data"]["customers"]["totalCount"].as_u64(), Some(expected.len() as u64));
}
