//! Webhook hot path without I/O: `X-Hub-Signature-256` verification and push decoding of a
//! 100-commit push (built from `events/github/push.json` by repeating its commit with distinct
//! ids). Run: `cargo bench -p shared --bench github_push` (bench/run.sh collects the medians).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use shared::domain::github::{decode_push, sign_body, verify_signature};

const SECRET: &[u8] = b"shipgate-dev-webhook-secret";

/// The sample push with `n` commits (each a copy of the sample commit with its own id).
fn push_with_commits(n: usize) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/github/push.json");
    let text = std::fs::read_to_string(path).expect("events/github/push.json");
    let mut push: Value = serde_json::from_str(&text).expect("valid JSON");
    let template = push["commits"][0].clone();
    let commits: Vec<Value> = (0..n)
        .map(|i| {
            let mut c = template.clone();
            let id = format!("{:040x}", 0x9f2c_7a1e_u64 as u128 * 1_000_003 + i as u128);
            c["id"] = Value::String(id.clone());
            c["url"] = Value::String(format!(
                "https://github.com/shipgate-demo/hello/commit/{id}"
            ));
            c["message"] = Value::String(format!("Commit {i} of the push\n\nSome longer text."));
            c
        })
        .collect();
    push["commits"] = Value::Array(commits);
    serde_json::to_vec(&push).expect("serializes")
}

fn bench(c: &mut Criterion) {
    for n in [1usize, 100] {
        let body = push_with_commits(n);
        let header = sign_body(SECRET, &body);
        // sanity: the benchmarked calls succeed on this input
        verify_signature(&[SECRET], &body, Some(&header)).expect("signature verifies");
        decode_push(&body).expect("push decodes");

        let mut g = c.benchmark_group(format!("github_push/{n}_commits"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function("verify_signature", |b| {
            b.iter(|| verify_signature(&[SECRET], black_box(&body), Some(black_box(&header))))
        });
        g.bench_function("decode_push", |b| b.iter(|| decode_push(black_box(&body))));
        g.bench_function("verify_and_decode", |b| {
            b.iter(|| {
                verify_signature(&[SECRET], black_box(&body), Some(black_box(&header)))
                    .expect("verifies");
                decode_push(black_box(&body)).expect("decodes")
            })
        });
        // reference points (not shipgate code): the cost of only parsing the same JSON
        g.bench_function("reference_serde_json_ignored_any", |b| {
            b.iter(|| {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).expect("JSON")
            })
        });
        g.bench_function("reference_serde_json_value", |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).expect("JSON"))
        });
        g.finish();
        println!("payload {n}_commits: {} bytes", body.len());
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
