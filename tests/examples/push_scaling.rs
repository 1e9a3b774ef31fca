//! Push latency against the number of pipelines in the table (issue 19: "a push's cost must not
//! grow with the size of the organisation"). Not a test: run it with `make bench-push` (or
//! `cargo run -p shipgate-tests --example push_scaling`).
//!
//! One moto server and a provisioned sandbox (the demo pipeline on `shipgate-demo/hello`); the
//! table is grown to each size in `BENCH_SIZES` with pipelines on other repositories, then
//! `BENCH_PUSHES` signed pushes to the demo repository (each a new body, so each starts an
//! execution and a CodeBuild build) go through the real webhook handler with the real DynamoDB,
//! Secrets Manager and CodeBuild adapters. Printed per size: the push's wall time (median, p90),
//! the time and items of its pipeline query, the time of its `TransactWriteItems` (moto
//! deep-copies the whole table for every item of a transaction, so that call grows with the
//! table in moto; DynamoDB's does not), and what the previous lookup (every pipeline from the
//! `PIPELINES` partition, then filtered) costs on the same table, for comparison.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use shared::domain::{RefKind, Source};
use shipgate_tests::{signed_push, World, PUSH};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (median, p90, max) in ms.
fn summary(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| ms(v[((v.len() - 1) as f64 * q).round() as usize]);
    (
        at(0.5),
        at(0.9),
        ms(*v.last().expect("at least one sample")),
    )
}

/// DynamoDB calls seen since the last [`Calls::take`]: (operation, time, items returned).
#[derive(Debug, Default)]
struct Calls(Mutex<Vec<(String, Duration, u64)>>);

impl Calls {
    fn take(&self) -> Vec<(String, Duration, u64)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[derive(Debug)]
struct TimeCalls(Arc<Calls>);

#[derive(Debug, Clone)]
struct InFlight(String, Instant);

impl Storable for InFlight {
    type Storer = StoreReplace<Self>;
}

impl Intercept for TimeCalls {
    fn name(&self) -> &'static str {
        "TimeCalls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_string();
        cfg.interceptor_state()
            .store_put(InFlight(operation, Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(InFlight(operation, at)) = cfg.load::<InFlight>() {
            let items = context
                .response()
                .and_then(|r| r.body().bytes())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v["Count"].as_u64())
                .unwrap_or(0);
            self.0 .0.lock().unwrap_or_else(|e| e.into_inner()).push((
                operation.clone(),
                at.elapsed(),
                items,
            ));
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    std::env::set_var("SHIPGATE_REQUIRE_MOTO", "1");
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "1,10,100,400,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let pushes: usize = env_or("BENCH_PUSHES", 30);
    let mut w = World::start().await.expect("moto");
    let calls = Arc::new(Calls::default());
    let conf = aws_sdk_dynamodb::config::Builder::from(&w.moto.sdk)
        .interceptor(TimeCalls(calls.clone()))
        .build();
    w.services.store = Arc::new(shared::adapters::dynamodb::DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        &w.provisioned.sandbox.table,
    ));
    let store = w.services.store.clone();
    let demo = w.provisioned.pipeline.clone();
    let source = demo.source.clone();

    println!("| pipelines in the table | push: median | p90 | its pipeline query: median, items read | its TransactWriteItems (moto: O(table)): median | push without it: median | all pipelines read and filtered (the lookup before): median, items read |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut in_table = store.list_pipelines().await.expect("list").len();
    let mut seq = 0u64;
    for size in sizes {
        while in_table < size {
            let mut other = demo.clone();
            other.name = format!("other-{in_table:05}");
            other.source = Source::Github(format!("shipgate-demo/other-{in_table:05}"));
            store
                .put_pipeline(&other, chrono::Utc::now())
                .await
                .expect("put pipeline");
            in_table += 1;
        }
        let mut push_times = Vec::with_capacity(pushes);
        let mut by_op: BTreeMap<String, (Vec<Duration>, u64)> = BTreeMap::new();
        let mut outside_transactions = Vec::with_capacity(pushes);
        for i in 0..pushes + 3 {
            seq += 1;
            let body = PUSH.replace("1795219200", &(1795219200 + seq).to_string());
            let req = signed_push(
                &body,
                &format!("bench-{seq}"),
                shipgate_sandbox::DEV_WEBHOOK_SECRET,
            );
            calls.take();
            let t = Instant::now();
            let resp = webhook::handler::handle(&w.services, req).await;
            let took = t.elapsed();
            let made = calls.take();
            let text = shared::http::body_text(&resp);
            assert!(
                resp.status_code == 202 && text.contains("execution_id"),
                "{text}"
            );
            if i >= 3 {
                push_times.push(took); // the first three warm the connection pool
                let transacting: Duration = made
                    .iter()
                    .filter(|c| c.0 == "TransactWriteItems")
                    .map(|c| c.1)
                    .sum();
                outside_transactions.push(took.saturating_sub(transacting));
                for (op, d, items) in made {
                    let e = by_op.entry(op).or_default();
                    e.0.push(d);
                    e.1 = e.1.max(items);
                }
            }
        }
        let mut scan_times = Vec::with_capacity(pushes);
        let mut scan_items = 0;
        for _ in 0..pushes.min(10) {
            calls.take();
            let t = Instant::now();
            let matched = store
                .list_pipelines()
                .await
                .expect("list")
                .into_iter()
                .filter(|p| p.definition.matches(&source, RefKind::Branch, "main", None))
                .count();
            scan_times.push(t.elapsed());
            scan_items = calls.take().iter().map(|c| c.2).sum::<u64>();
            assert_eq!(matched, 1);
        }
        let (med, p90, _) = summary(push_times);
        let (outside, _, _) = summary(outside_transactions);
        let (scan, _, _) = summary(scan_times);
        let (query, query_items) = by_op
            .remove("Query")
            .map(|(d, items)| (summary(d).0, items))
            .expect("the push queried its pipelines");
        let transact = by_op
            .remove("TransactWriteItems")
            .map(|(d, _)| summary(d).0)
            .unwrap_or(0.0);
        println!(
            "| {in_table} | {med:.1} ms | {p90:.1} ms | {query:.1} ms, {query_items} | {transact:.1} ms | {outside:.1} ms | {scan:.1} ms, {scan_items} |"
        );
    }
}
