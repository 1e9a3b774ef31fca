//! Approval token sign + verify (HMAC-SHA256 over id, nonce, expiry and the tested digest).
//! Run: `cargo bench -p shared --bench token`.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use shared::domain::token::{sign, verify, TokenClaims};
use shared::domain::ExecutionId;

fn bench(c: &mut Criterion) {
    let key = [7u8; 32];
    let digest = "sha256:188a33d7e0ee4c4a7b1d6f1b2b7b0c2d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";
    let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    let claims = TokenClaims {
        execution_id: ExecutionId::generate(now),
        nonce: "q1w2e3r4t5y6u7i8o9p0aZ".to_string(),
        expires_at: now + chrono::Duration::hours(72),
    };
    let token = sign(&key, &claims, digest);
    assert_eq!(verify(&key, &token, digest, now).expect("verifies"), claims);

    let mut g = c.benchmark_group("token");
    g.bench_function("sign", |b| {
        b.iter(|| sign(black_box(&key), black_box(&claims), black_box(digest)))
    });
    g.bench_function("verify", |b| {
        b.iter(|| verify(black_box(&key), black_box(&token), black_box(digest), now))
    });
    g.bench_function("sign_and_verify", |b| {
        b.iter(|| {
            let t = sign(black_box(&key), black_box(&claims), black_box(digest));
            verify(black_box(&key), &t, black_box(digest), now).expect("verifies")
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
