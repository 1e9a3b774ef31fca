//! The execution store on one DynamoDB table (single-table design).
//!
//! | item | pk | sk | other keys |
//! | --- | --- | --- | --- |
//! | pipeline | `PIPELINE#<name>` | `CONFIG` | gsi1: `PIPELINES` / `<name>`; gsi2: `SOURCE#<Source::index_key>` / `<name>` |
//! | replaced pipeline version | `PIPELINE#<name>` | `CONFIG#v<version, 10 digits>` | |
//! | execution | `EXEC#<ulid>` | `EXEC` | gsi1: `PIPELINE#<name>` / `EXEC#<ulid>`; gsi2 (active only): `STATUS#<status>` / `<ulid>`; gsi3 (keys only): `BUILD#<build id>` or `DEPLOY#<deployment id>` / `<ulid>` |
//! | idempotency claim | `IDEM#<key>` | `IDEM` | `ttl` |
//! | environment revisions | `ENV#<pipeline>#<test or prod>` | `REVISION` | |
//! | schema marker | `SCHEMA` | `PIPELINE_SOURCE_INDEX` | |
//!
//! Items carry `version` (optimistic locking) and `body` (the domain value as JSON).
//!
//! gsi3 holds what an execution waits on (`Execution::awaited`): the build, then the test
//! deployment, then the prod deployment. It lives on the execution item, so a transition costs
//! one write rather than a transaction with a separate link item; build and deployment events
//! find their execution with one query of that index.
//!
//! gsi2 also finds a push's pipelines by their source (`SOURCE#github:acme/hello`), so a push
//! reads its repository's pipelines only. Pipeline items written before that key existed are
//! given it once per table: the first lookup that finds no schema marker writes the key into
//! every pipeline item lacking it (conditional on the item's version), then the marker; tables
//! made by [`DynamoStore::create_table`] start with the marker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::OnceCell;
use tracing::info;

use super::classify;
use crate::domain::{
    Environment, Execution, ExecutionId, Link, PipelineDefinition, Source, Status,
};
use crate::ports::*;

type Item = HashMap<String, AttributeValue>;

const TRANSACTION_RETRIES: usize = 6;

/// Most pipelines `list_pipelines` reads.
const MAX_PIPELINES: usize = 10_000;
/// Most pipelines one repository's push starts.
pub const MAX_PIPELINES_PER_SOURCE: usize = 1_000;

/// The item that says every pipeline item carries its gsi2 source key.
const SCHEMA_PK: &str = "SCHEMA";
const SOURCE_INDEX_SK: &str = "PIPELINE_SOURCE_INDEX";

/// The store on DynamoDB.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Set once this process has seen the table's schema marker (or written it).
    source_index_ready: Arc<OnceCell<()>>,
}

/// The marker's cell of `table`, one per process and table: shared by every store on it, so the
/// cold-start warm-up's read serves the store the handlers use.
fn source_index_cell(table: &str) -> Arc<OnceCell<()>> {
    static CELLS: OnceLock<Mutex<HashMap<String, Arc<OnceCell<()>>>>> = OnceLock::new();
    CELLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(table.to_string())
        .or_default()
        .clone()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn body<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let key = format!(
        "{}/{}",
        get_s(item, "pk").unwrap_or("?"),
        get_s(item, "sk").unwrap_or("?")
    );
    let raw = get_s(item, "body").ok_or_else(|| StoreError::Corrupt {
        key: key.clone(),
        message: "no body attribute".into(),
    })?;
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        key,
        message: e.to_string(),
    })
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("domain values serialize")
}

fn exec_pk(id: &ExecutionId) -> String {
    format!("EXEC#{id}")
}

fn link_pk(link: &Link) -> String {
    match link {
        Link::Build(b) => format!("BUILD#{b}"),
        Link::Deployment(d) => format!("DEPLOY#{d}"),
    }
}

/// Sort key of a replaced pipeline version (zero-padded: sorts by version).
fn pipeline_version_sk(version: u64) -> String {
    format!("CONFIG#v{version:010}")
}

fn source_pk(source: &Source) -> String {
    format!("SOURCE#{}", source.index_key())
}

fn pipeline_item(stored: &StoredPipeline) -> Item {
    let name = &stored.definition.name;
    let mut item = key(format!("PIPELINE#{name}"), "CONFIG");
    item.insert("gsi1pk".into(), s("PIPELINES"));
    item.insert("gsi1sk".into(), s(name.clone()));
    item.insert("gsi2pk".into(), s(source_pk(&stored.definition.source)));
    item.insert("gsi2sk".into(), s(name.clone()));
    item.insert("version".into(), n(stored.version));
    item.insert("body".into(), s(to_json(stored)));
    item
}

fn env_pk(pipeline: &str, env: Environment) -> String {
    format!("ENV#{pipeline}#{env}")
}

fn exec_item(e: &Execution) -> Item {
    let mut item = key(exec_pk(&e.id), "EXEC");
    item.insert("gsi1pk".into(), s(format!("PIPELINE#{}", e.pipeline)));
    item.insert("gsi1sk".into(), s(format!("EXEC#{}", e.id)));
    if e.status.is_active() {
        item.insert("gsi2pk".into(), s(format!("STATUS#{}", e.status)));
        item.insert("gsi2sk".into(), s(e.id.to_string()));
    }
    if let Some(link) = e.awaited() {
        item.insert("gsi3pk".into(), s(link_pk(&link)));
        item.insert("gsi3sk".into(), s(e.id.to_string()));
    }
    item.insert("status".into(), s(e.status.as_str()));
    item.insert("version".into(), n(e.version));
    item.insert("updated_at".into(), s(e.updated_at.to_rfc3339()));
    item.insert("body".into(), s(to_json(e)));
    item
}

fn claim_item(k: &IdempotencyKey, value: &str) -> Item {
    let mut item = key(format!("IDEM#{}", k.key), "IDEM");
    item.insert("value".into(), s(value));
    item.insert("ttl".into(), n(k.expires_at.timestamp()));
    item
}

/// A claim whose TTL passed may be taken again (DynamoDB deletes expired items lazily).
const CLAIM_CONDITION: &str = "attribute_not_exists(pk) OR #ttl < :now";

/// What a conditional put did.
enum Conditional {
    Written,
    /// The condition refused it: the item that was there, if DynamoDB returned one (none when
    /// there was no item).
    Refused(Option<Item>),
}

impl Conditional {
    fn is_written(&self) -> bool {
        matches!(self, Conditional::Written)
    }
}

/// What a transaction did.
enum Transaction {
    Committed,
    /// Cancelled by a condition of one of its items.
    Cancelled,
}

impl Transaction {
    fn is_committed(&self) -> bool {
        matches!(self, Transaction::Committed)
    }
}

/// Send a conditional put.
async fn send_conditional(
    req: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
) -> Result<Conditional, StoreError> {
    let req =
        req.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    match req.send().await {
        Ok(_) => Ok(Conditional::Written),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
            Ok(Conditional::Refused(match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                _ => None,
            }))
        }
        Err(e) => Err(unavailable(classify(&e))),
    }
}

/// "Equal jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): a uniformly random
/// wait in `[cap/2, cap]`, so writers that conflicted once do not retry in lock-step, and none
/// retries at once.
fn jittered(cap: StdDuration, random: u64) -> StdDuration {
    let cap_us = cap.as_micros().max(2) as u64;
    let half = cap_us / 2;
    StdDuration::from_micros(half + random % (cap_us - half + 1))
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // no entropy: the clock's nanoseconds still differ between writers
    if getrandom::fill(&mut bytes).is_err() {
        return u64::from(Utc::now().timestamp_subsec_nanos());
    }
    u64::from_le_bytes(bytes)
}

fn unavailable(e: ServiceError) -> StoreError {
    match e {
        ServiceError::Throttled(m) | ServiceError::Unavailable(m) => StoreError::Unavailable(m),
        // the request itself is invalid (item size, key length): permanent, never 503
        ServiceError::Rejected(m) if m.starts_with("ValidationException") => {
            StoreError::Rejected(m)
        }
        ServiceError::NotFound(m) | ServiceError::Rejected(m) => {
            StoreError::Unavailable(format!("DynamoDB rejected the request: {m}"))
        }
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: &str) -> DynamoStore {
        DynamoStore {
            client,
            table: table.to_string(),
            source_index_ready: source_index_cell(table),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client (the sandbox creates the table through it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One cheap call (used during a cold start so the TLS handshake is not billed to the first
    /// event): it reads the schema marker, so pushes need not.
    pub async fn warm_up(&self) {
        if let Ok(Some(_)) = self.get(SCHEMA_PK.into(), SOURCE_INDEX_SK).await {
            let _ = self.source_index_ready.set(());
        }
    }

    /// Make sure every pipeline item carries its gsi2 source key: once per process, one read of
    /// the schema marker; once per table (when the marker is missing), the backfill.
    async fn ensure_source_index(&self) -> Result<(), StoreError> {
        self.source_index_ready
            .get_or_try_init(|| async {
                if self.get(SCHEMA_PK.into(), SOURCE_INDEX_SK).await?.is_none() {
                    let keyed = self.backfill_source_index().await?;
                    info!(pipelines = keyed, "pipeline source index backfilled");
                    self.put_source_index_marker().await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Give each pipeline item written before the source index its gsi2 key. Each put is
    /// conditional on the version read, so a concurrent apply (which writes its own key) wins.
    async fn backfill_source_index(&self) -> Result<usize, StoreError> {
        let items = self
            .query_all("gsi1", "gsi1pk", "PIPELINES".into(), true, MAX_PIPELINES)
            .await?;
        let mut keyed = 0;
        for item in items.iter().filter(|i| !i.contains_key("gsi2pk")) {
            let stored: StoredPipeline = body(item)?;
            let Some(version) = get_n(item, "version") else {
                continue; // not written by put_pipeline: left alone
            };
            // the item as it is (body and version byte for byte), plus its key
            let mut keyed_item = item.clone();
            keyed_item.insert("gsi2pk".into(), s(source_pk(&stored.definition.source)));
            keyed_item.insert("gsi2sk".into(), s(stored.definition.name.clone()));
            if self.put_versioned(keyed_item, Some(version)).await? {
                keyed += 1;
            }
        }
        Ok(keyed)
    }

    pub async fn put_source_index_marker(&self) -> Result<(), StoreError> {
        let mut item = key(SCHEMA_PK.into(), SOURCE_INDEX_SK);
        item.insert("version".into(), n(1));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable(classify(&e)))?;
        Ok(())
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(classify(&e)))?;
        Ok(out.item)
    }

    fn put(&self, item: Item, condition: Option<&str>, values: Option<Item>) -> Put {
        let mut b = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            b = b
                .condition_expression(c)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        if let Some(v) = values {
            for (k, val) in v {
                if k.starts_with('#') {
                    if let AttributeValue::S(name) = val {
                        b = b.expression_attribute_names(k, name);
                    }
                } else {
                    b = b.expression_attribute_values(k, val);
                }
            }
        }
        b.build().expect("table and item are set")
    }

    /// Write puts atomically. A transaction conflict (another writer on the same items) is
    /// retried with jittered exponential backoff; a failed condition answers `Cancelled`.
    async fn transact(&self, puts: Vec<Put>) -> Result<Transaction, StoreError> {
        let items: Vec<TransactWriteItem> = puts
            .into_iter()
            .map(|p| TransactWriteItem::builder().put(p).build())
            .collect();
        let mut delay = StdDuration::from_millis(20);
        for attempt in 0..TRANSACTION_RETRIES {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Transaction::Committed),
                Err(e) => e,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => Some(
                    tc.cancellation_reasons()
                        .iter()
                        .map(|r| r.code().filter(|c| *c != "None").map(str::to_string))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            };
            if let Some(cancelled) = reasons {
                let conflict = cancelled
                    .iter()
                    .any(|c| c.as_deref() == Some("TransactionConflict"));
                let condition = cancelled
                    .iter()
                    .any(|c| c.as_deref() == Some("ConditionalCheckFailed"));
                if conflict && !condition && attempt + 1 < TRANSACTION_RETRIES {
                    tokio::time::sleep(jittered(delay, random_u64())).await;
                    delay *= 2;
                    continue;
                }
                if condition || cancelled.is_empty() {
                    return Ok(Transaction::Cancelled);
                }
                // an item too large or a key too long: permanent (retrying cannot succeed)
                if cancelled
                    .iter()
                    .any(|c| c.as_deref() == Some("ValidationError"))
                {
                    return Err(StoreError::Rejected(format!(
                        "transaction cancelled: {cancelled:?}"
                    )));
                }
                return Err(StoreError::Unavailable(format!(
                    "transaction cancelled: {cancelled:?}"
                )));
            }
            if err.code() == Some("TransactionCanceledException") {
                return Ok(Transaction::Cancelled);
            }
            return Err(unavailable(classify(&err)));
        }
        Err(StoreError::Unavailable(
            "transaction kept conflicting with concurrent writes".into(),
        ))
    }

    async fn read_claim(&self, claim_key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(format!("IDEM#{claim_key}"), "IDEM")
            .await?
            .and_then(|i| get_s(&i, "value").map(str::to_string)))
    }

    fn claim_put(&self, k: &IdempotencyKey, value: &str, now: DateTime<Utc>) -> Put {
        self.put(
            claim_item(k, value),
            Some(CLAIM_CONDITION),
            Some(HashMap::from([
                ("#ttl".to_string(), s("ttl")),
                (":now".to_string(), n(now.timestamp())),
            ])),
        )
    }

    async fn current_execution(&self, id: &ExecutionId) -> Result<Execution, StoreError> {
        self.get_execution(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    async fn query_all(
        &self,
        index: &str,
        pk_name: &str,
        pk_value: String,
        forward: bool,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(pk_value.clone()))
                .scan_index_forward(forward)
                .limit(limit.clamp(1, 1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(classify(&e)))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if out.len() < limit => start = Some(k),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

#[async_trait]
impl ExecutionStore for DynamoStore {
    async fn put_pipeline_by(
        &self,
        definition: &PipelineDefinition,
        at: DateTime<Utc>,
        applied_by: &str,
    ) -> Result<PipelineWrite, StoreError> {
        let pk = format!("PIPELINE#{}", definition.name);
        let existing = self.get(pk.clone(), "CONFIG").await?;
        let (previous, old_version) = match &existing {
            Some(item) => (Some(body::<StoredPipeline>(item)?), get_n(item, "version")),
            None => (None, None),
        };
        let version = old_version.unwrap_or(0) + 1;
        let stored = StoredPipeline {
            definition: definition.clone(),
            version,
            applied_at: at,
            applied_by: Some(applied_by.to_string()),
        };
        // the whole item is replaced: a changed source moves it to its new gsi2 key
        let item = pipeline_item(&stored);
        let written = match (&previous, old_version) {
            // an update keeps the replaced version as its own item (a pipeline is a few KB; each
            // version its own item, so the 400 KB item limit never applies), in one transaction
            (Some(prev), Some(old)) => {
                let mut kept = key(pk, &pipeline_version_sk(prev.version));
                kept.insert("version".into(), n(prev.version));
                kept.insert("body".into(), s(to_json(prev)));
                let puts = vec![
                    self.put(
                        item,
                        Some("#v = :v"),
                        Some(HashMap::from([
                            ("#v".to_string(), s("version")),
                            (":v".to_string(), n(old)),
                        ])),
                    ),
                    self.put(kept, None, None),
                ];
                self.transact(puts).await?.is_committed()
            }
            _ => self.put_versioned(item, old_version).await?,
        };
        if written {
            Ok(PipelineWrite {
                version,
                previous: previous.map(|p| p.definition),
            })
        } else {
            Err(StoreError::PipelineConflict(definition.name.clone()))
        }
    }

    async fn pipeline_history(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<StoredPipeline>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        let limit = limit.clamp(1, 1000);
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
                .expression_attribute_values(":pk", s(format!("PIPELINE#{name}")))
                .expression_attribute_values(":v", s("CONFIG#v"))
                .scan_index_forward(false)
                .limit(limit as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(classify(&e)))?;
            for item in page.items() {
                out.push(body(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if out.len() < limit => start = Some(k),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn get_pipeline(&self, name: &str) -> Result<Option<StoredPipeline>, StoreError> {
        self.get(format!("PIPELINE#{name}"), "CONFIG")
            .await?
            .map(|i| body(&i))
            .transpose()
    }

    async fn list_pipelines(&self) -> Result<Vec<StoredPipeline>, StoreError> {
        self.query_all("gsi1", "gsi1pk", "PIPELINES".into(), true, MAX_PIPELINES)
            .await?
            .iter()
            .map(body)
            .collect()
    }

    async fn list_pipelines_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredPipeline>, StoreError> {
        let limit = limit.clamp(1, MAX_PIPELINES);
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .expression_attribute_values(":pk", s("PIPELINES"))
                .limit((limit - out.len()) as i32)
                .set_exclusive_start_key(start.take());
            q = match after {
                Some(a) => q
                    .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                    .expression_attribute_values(":after", s(a)),
                None => q.key_condition_expression("gsi1pk = :pk"),
            };
            let page = q.send().await.map_err(|e| unavailable(classify(&e)))?;
            for item in page.items() {
                out.push(body(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if out.len() < limit => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn pipelines_for_source(
        &self,
        source: &Source,
    ) -> Result<Vec<StoredPipeline>, StoreError> {
        self.ensure_source_index().await?;
        self.query_all(
            "gsi2",
            "gsi2pk",
            source_pk(source),
            true,
            MAX_PIPELINES_PER_SOURCE,
        )
        .await?
        .iter()
        .map(body)
        .collect()
    }

    async fn create_execution(
        &self,
        execution: &Execution,
        claim: Option<&IdempotencyKey>,
    ) -> Result<Created, StoreError> {
        let mut puts = vec![self.put(exec_item(execution), Some("attribute_not_exists(pk)"), None)];
        if let Some(k) = claim {
            puts.push(self.claim_put(k, execution.id.as_str(), execution.created_at));
        }
        match self.transact(puts).await? {
            Transaction::Committed => Ok(Created::Created),
            Transaction::Cancelled => match claim {
                Some(k) => match self.read_claim(&k.key).await? {
                    Some(existing) if existing != execution.id.as_str() => {
                        Ok(Created::Duplicate(existing.parse().map_err(|_| {
                            StoreError::Corrupt {
                                key: format!("IDEM#{}", k.key),
                                message: "value is not an execution id".into(),
                            }
                        })?))
                    }
                    _ => Err(StoreError::Unavailable(
                        "execution could not be created; try again".into(),
                    )),
                },
                None => Err(StoreError::Unavailable(format!(
                    "execution {} already exists",
                    execution.id
                ))),
            },
        }
    }

    async fn get_execution(&self, id: &ExecutionId) -> Result<Option<Execution>, StoreError> {
        self.get(exec_pk(id), "EXEC")
            .await?
            .map(|i| body(&i))
            .transpose()
    }

    async fn list_executions(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.query_all(
            "gsi1",
            "gsi1pk",
            format!("PIPELINE#{pipeline}"),
            false,
            limit,
        )
        .await?
        .iter()
        .map(body)
        .collect()
    }

    async fn list_by_status(
        &self,
        status: Status,
        limit: usize,
    ) -> Result<Vec<Execution>, StoreError> {
        self.query_all("gsi2", "gsi2pk", format!("STATUS#{status}"), true, limit)
            .await?
            .iter()
            .map(body)
            .collect()
    }

    /// One conditional put of the execution item (its gsi3 keys included): no transaction.
    async fn save(&self, previous: &Execution, next: &Execution) -> Result<(), StoreError> {
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(exec_item(next)))
            .condition_expression("#v = :v AND #s = :s")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":v", n(previous.version))
            .expression_attribute_values(":s", s(previous.status.as_str()));
        match send_conditional(req).await? {
            Conditional::Written => Ok(()),
            Conditional::Refused(old) => {
                let current = match old {
                    Some(item) => body(&item)?,
                    None => self.current_execution(&previous.id).await?,
                };
                Err(StoreError::Conflict(Box::new(current)))
            }
        }
    }

    async fn claim(&self, k: &IdempotencyKey, value: &str) -> Result<Claim, StoreError> {
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(claim_item(k, value)))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", n(Utc::now().timestamp()));
        match send_conditional(req).await? {
            Conditional::Written => Ok(Claim::Claimed),
            Conditional::Refused(old) => {
                let existing = match old.and_then(|item| get_s(&item, "value").map(str::to_string))
                {
                    Some(v) => Some(v),
                    None => self.read_claim(&k.key).await?,
                };
                Ok(Claim::Existing(existing.unwrap_or_default()))
            }
        }
    }

    async fn find_by_build(&self, build_id: &str) -> Result<Option<ExecutionId>, StoreError> {
        self.find_link(&Link::Build(build_id.to_string())).await
    }

    async fn find_by_deployment(
        &self,
        deployment_id: &str,
    ) -> Result<Option<ExecutionId>, StoreError> {
        self.find_link(&Link::Deployment(deployment_id.to_string()))
            .await
    }

    async fn get_revisions(
        &self,
        pipeline: &str,
        environment: Environment,
    ) -> Result<Option<Versioned<EnvironmentRevisions>>, StoreError> {
        let Some(item) = self.get(env_pk(pipeline, environment), "REVISION").await? else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            value: body(&item)?,
            version: get_n(&item, "version").unwrap_or(0),
        }))
    }

    async fn put_revisions(
        &self,
        pipeline: &str,
        environment: Environment,
        revisions: &EnvironmentRevisions,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut item = key(env_pk(pipeline, environment), "REVISION");
        item.insert("version".into(), n(expected.unwrap_or(0) + 1));
        item.insert("body".into(), s(to_json(revisions)));
        self.put_versioned(item, expected).await
    }
}

impl DynamoStore {
    /// Put `item` if the stored one still has version `expected` (`None`: if there is none).
    /// Answers false when another writer got there first.
    async fn put_versioned(&self, item: Item, expected: Option<u64>) -> Result<bool, StoreError> {
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let req = match expected {
            Some(v) => req
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(v)),
            None => req.condition_expression("attribute_not_exists(pk)"),
        };
        Ok(send_conditional(req).await?.is_written())
    }

    /// The execution waiting on `link` (gsi3; one query, keys only). Should two wait on the same
    /// id (ECS deployment ids are unique; a test double's may not be), the newest one.
    async fn find_link(&self, link: &Link) -> Result<Option<ExecutionId>, StoreError> {
        let items = self
            .query_all("gsi3", "gsi3pk", link_pk(link), false, 1)
            .await?;
        let Some(item) = items.first() else {
            return Ok(None);
        };
        let pk = get_s(item, "pk").unwrap_or_default();
        pk.strip_prefix("EXEC#")
            .and_then(|id| id.parse().ok())
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                key: link_pk(link),
                message: format!("gsi3 item {pk:?} is not an execution"),
            })
    }
}

#[cfg(test)]
mod jitter_tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_the_cap() {
        let cap = StdDuration::from_millis(20);
        for random in [0, 1, 9_999, 10_000, 10_001, u64::MAX, 123_456_789] {
            let d = jittered(cap, random);
            assert!(d >= cap / 2 && d <= cap, "{d:?}");
        }
        assert_eq!(jittered(cap, 0), cap / 2);
        assert_eq!(jittered(cap, 10_000), cap);
    }

    #[test]
    fn jitter_spreads_writers() {
        let cap = StdDuration::from_millis(40);
        let waits: std::collections::HashSet<_> =
            (0..32).map(|_| jittered(cap, random_u64())).collect();
        assert!(waits.len() > 16, "{waits:?}");
    }
}
